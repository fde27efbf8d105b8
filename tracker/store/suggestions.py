"""Suggestions beyond the query, as stored: the papers PubMed links to a topic's included papers or seeds that the
topic does not hold, how each was found and from which seeds, the reader's choice (add or dismiss), and how far the
topic's links have been asked (tracker/runs/suggest.py decides what to ask and when).

A suggestion is keyed by topic and PMID and its paper is stored like any other. Pending ones wait for the reader;
an added one joined the topic in the same transaction (membership source "suggestion"); a dismissed one stays, so
that it is never suggested to that topic again. A pending suggestion whose paper joined the topic some other way
(its query found it later, an import) is dropped: the topic holds it now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import bindparam, delete, func, insert, select, update

from tracker.store.database import Store
from tracker.store.membership import MANUAL, QUERY, SUGGESTION, link_members
from tracker.store.models import PaperRow, Suggestion, SuggestionSeed, SuggestionState, TopicPaper
from tracker.store.relevance import PaperText
from tracker.store.rows import chunked
from tracker.text import utcnow

SIMILAR, CITES, CITED_BY = "similar", "cites", "cited by"
WAYS = (SIMILAR, CITES, CITED_BY)  # the order `ways` and the faces list them in
PENDING, ADDED, DISMISSED = "pending", "added", "dismissed"
STATUSES = (PENDING, ADDED, DISMISSED)
# PRISMA 2020's names for the other methods a suggestion's way belongs to (tracker/review/prisma.py).
SIMILAR_ARTICLES, CITATION_SEARCHING = "similar articles", "citation searching"

_suggestion = Suggestion.__table__
_state = SuggestionState.__table__
_seed = SuggestionSeed.__table__
_membership = TopicPaper.__table__
_paper = PaperRow.__table__


@dataclass(frozen=True)
class Found:
    """A paper a pass found through links: the seeds that led to it, by way, and PubMed's summed similarity."""

    pmid: int
    seeds: Mapping[str, Sequence[int]]
    similarity: int | None = None


@dataclass(frozen=True)
class StoredSuggestion:
    topic: str
    pmid: int
    status: str
    ways: tuple[str, ...]
    seeds: dict[str, tuple[int, ...]] = field(default_factory=dict)
    similarity: int | None = None
    relevance: float | None = None
    first_found_at: datetime | None = None
    last_found_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None

    @property
    def seed_pmids(self) -> tuple[int, ...]:
        """Every seed that led to it, each once, in the order of WAYS."""
        return tuple(dict.fromkeys(pmid for way in WAYS for pmid in self.seeds.get(way, ())))

    @property
    def method(self) -> str:
        """PRISMA's other method that found it: similar articles, else citation searching."""
        return SIMILAR_ARTICLES if SIMILAR in self.ways else CITATION_SEARCHING


def _ways(seeds: Mapping[str, Sequence[int]]) -> str:
    return "; ".join(way for way in WAYS if seeds.get(way))


def _merged(old: Mapping[str, Sequence[int]], new: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    return {way: list(dict.fromkeys([*old.get(way, ()), *new.get(way, ())])) for way in WAYS
            if old.get(way) or new.get(way)}


def _stored(row) -> StoredSuggestion:
    seeds = {way: tuple(int(pmid) for pmid in pmids) for way, pmids in (row.seeds or {}).items() if way in WAYS}
    return StoredSuggestion(topic=row.topic, pmid=row.pmid, status=row.status,
                            ways=tuple(way for way in (row.ways or "").split("; ") if way), seeds=seeds,
                            similarity=row.similarity, relevance=row.relevance, first_found_at=row.first_found_at,
                            last_found_at=row.last_found_at, decided_at=row.decided_at, decided_by=row.decided_by)


def save_found(store: Store, topic: str, found: Sequence[Found], *, run_id: int | None,
               now: datetime | None = None) -> int:
    """Keep `found` as the topic's pending suggestions; returns how many are new.

    A paper the topic holds is left out; one already pending gains the new seeds (and the new similarity, when
    this pass had scores); one the reader added or dismissed is left as it is. Every paper must be stored.
    """
    now = now or utcnow()
    wanted = {item.pmid: item for item in found if any(item.seeds.values())}
    if not wanted:
        return 0
    new = 0
    with store.engine.begin() as connection:
        members: set[int] = set()
        existing: dict[int, StoredSuggestion] = {}
        for chunk in chunked(sorted(wanted)):
            members.update(connection.execute(select(_membership.c.pmid).where(
                _membership.c.topic == topic, _membership.c.pmid.in_(chunk))).scalars())
            existing.update((row.pmid, _stored(row)) for row in connection.execute(
                select(_suggestion).where(_suggestion.c.topic == topic, _suggestion.c.pmid.in_(chunk))))
        rows = []
        for pmid, item in wanted.items():
            if pmid in members:
                continue
            before = existing.get(pmid)
            seeds = _merged(before.seeds if before else {}, item.seeds)
            if before is None:
                rows.append({"topic": topic, "pmid": pmid, "status": PENDING, "ways": _ways(seeds), "seeds": seeds,
                             "similarity": item.similarity, "relevance": None, "first_found_at": now,
                             "last_found_at": now, "run_id": run_id, "decided_at": None, "decided_by": None})
            elif before.status == PENDING:
                connection.execute(update(_suggestion).where(
                    _suggestion.c.topic == topic, _suggestion.c.pmid == pmid).values(
                    ways=_ways(seeds), seeds=seeds, last_found_at=now,
                    similarity=item.similarity if item.similarity is not None else before.similarity))
        for batch in chunked(rows, 500):
            connection.execute(insert(_suggestion), batch)
        new = len(rows)
    return new


def drop_joined(store: Store, topic: str) -> int:
    """Forget the pending suggestions whose paper joined the topic some other way; returns how many."""
    joined = select(_membership.c.pmid).where(_membership.c.topic == topic)
    with store.engine.begin() as connection:
        return connection.execute(delete(_suggestion).where(
            _suggestion.c.topic == topic, _suggestion.c.status == PENDING, _suggestion.c.pmid.in_(joined))).rowcount


def load_suggestions(store: Store, topic: str, *, statuses: Sequence[str] = (PENDING,),
                     pmids: Sequence[int] | None = None) -> list[StoredSuggestion]:
    """The topic's suggestions in `statuses` (of `pmids`, when given), in PMID order."""
    statement = select(_suggestion).where(_suggestion.c.topic == topic, _suggestion.c.status.in_(list(statuses)))
    found: list[StoredSuggestion] = []
    with store.connect() as connection:
        if pmids is None:
            found = [_stored(row) for row in connection.execute(statement.order_by(_suggestion.c.pmid))]
        else:
            for chunk in chunked(sorted(set(pmids))):
                found += [_stored(row) for row in connection.execute(statement.where(_suggestion.c.pmid.in_(chunk)))]
    return sorted(found, key=lambda item: item.pmid)


def suggestion_counts(store: Store, topics: Sequence[str]) -> dict[str, dict[str, int]]:
    """Each topic's suggestions by status ({"pending": 3, ...}; every status present, zero when none)."""
    counts = {slug: dict.fromkeys(STATUSES, 0) for slug in topics}
    with store.connect() as connection:
        for slug, status, count in connection.execute(
                select(_suggestion.c.topic, _suggestion.c.status, func.count())
                .where(_suggestion.c.topic.in_(list(topics))).group_by(_suggestion.c.topic, _suggestion.c.status)):
            counts[slug][status] = count
    return counts


def decide_suggestions(store: Store, topic: str, pmids: Sequence[int], status: str, *, reviewer: str,
                       now: datetime | None = None) -> None:
    """Add (status "added") or dismiss the topic's suggestions `pmids` in one transaction; an added paper joins the
    topic with source "suggestion". Every PMID must be a suggestion of the topic (the caller checked)."""
    if status not in (ADDED, DISMISSED):
        raise ValueError(f"a suggestion is added or dismissed, not {status!r}")
    now = now or utcnow()
    with store.session() as session:
        for chunk in chunked(sorted(set(pmids))):
            session.execute(update(_suggestion).where(
                _suggestion.c.topic == topic, _suggestion.c.pmid.in_(chunk), _suggestion.c.status != ADDED).values(
                status=status, decided_at=now, decided_by=reviewer))
        if status == ADDED:
            link_members(store, session, topic, pmids, None, now, source=SUGGESTION)
        session.commit()


def restore_suggestions(store: Store, topic: str, pmids: Sequence[int]) -> int:
    """Take back dismissals: the dismissed suggestions among `pmids` are pending again; returns how many."""
    with store.engine.begin() as connection:
        return sum(connection.execute(update(_suggestion).where(
            _suggestion.c.topic == topic, _suggestion.c.pmid.in_(chunk), _suggestion.c.status == DISMISSED).values(
            status=PENDING, decided_at=None, decided_by=None)).rowcount for chunk in chunked(sorted(set(pmids))))


def last_dismissed(store: Store, topic: str, reviewer: str) -> int | None:
    """The PMID of the suggestion `reviewer` dismissed last in `topic`, if any is still dismissed."""
    with store.connect() as connection:
        return connection.execute(
            select(_suggestion.c.pmid).where(_suggestion.c.topic == topic, _suggestion.c.status == DISMISSED,
                                             _suggestion.c.decided_by == reviewer)
            .order_by(_suggestion.c.decided_at.desc(), _suggestion.c.pmid.desc()).limit(1)).scalar_one_or_none()


def add_by_hand(store: Store, topic: str, pmids: Sequence[int], *, now: datetime | None = None) -> int:
    """Link stored papers that were never suggested to `topic`, as added by hand (source "manual")."""
    with store.session() as session:
        linked = link_members(store, session, topic, pmids, None, now or utcnow(), source=MANUAL)
        session.commit()
    return linked


# -- how far the links were asked -----------------------------------------------------------------

def suggestion_state(store: Store, topic: str) -> SuggestionState | None:
    with store.connect() as connection:
        row = connection.execute(select(_state).where(_state.c.topic == topic)).mappings().first()
    return SuggestionState(**row) if row else None


def save_suggestion_state(store: Store, topic: str, *, checked_through: date, refreshed: bool = False,
                          now: datetime | None = None) -> None:
    """Where the next pass's window starts (never moved back); `refreshed` records a refresh's time."""
    now = now or utcnow()
    before = suggestion_state(store, topic)
    values = {"topic": topic, "checked_through": max(checked_through, before.checked_through) if before else checked_through,
              "refreshed_at": now if refreshed else (before.refreshed_at if before else None), "updated_at": now}
    with store.engine.begin() as connection:
        connection.execute(delete(_state).where(_state.c.topic == topic))
        connection.execute(insert(_state).values(**values))


def asked_seeds(store: Store, topic: str) -> set[int]:
    """The seeds whose links were asked without a date limit."""
    with store.connect() as connection:
        return set(connection.execute(select(_seed.c.pmid).where(_seed.c.topic == topic)).scalars())


def mark_seeds_asked(store: Store, topic: str, pmids: Iterable[int], *, now: datetime | None = None) -> None:
    rows = [{"topic": topic, "pmid": pmid, "asked_at": now or utcnow()} for pmid in dict.fromkeys(pmids)]
    with store.engine.begin() as connection:
        store.upsert(connection, _seed, rows, ["topic", "pmid"], update=False)


# -- relevance --------------------------------------------------------------------------------------

def paper_texts(store: Store, pmids: Sequence[int]) -> list[PaperText]:
    """What the relevance model reads about each of `pmids` that the store holds, in PMID order."""
    found: list[PaperText] = []
    with store.connect() as connection:
        for chunk in chunked(sorted(set(pmids))):
            for row in connection.execute(select(
                    _paper.c.pmid, _paper.c.title, _paper.c.abstract, _paper.c.mesh_terms, _paper.c.keywords_text,
                    _paper.c.publication_types_text, _paper.c.journal).where(_paper.c.pmid.in_(chunk))):
                found.append(PaperText(row.pmid, row.title or "", row.abstract or "", _listed(row.mesh_terms, marks=True),
                                       _listed(row.keywords_text), _listed(row.publication_types_text), row.journal))
    return sorted(found, key=lambda text: text.pmid)


def _listed(text: str | None, *, marks: bool = False) -> tuple[str, ...]:
    items = [item.strip() for item in (text or "").split("; ")]
    return tuple(item.rstrip("*") if marks else item for item in items if item)


def pending_texts(store: Store, topic: str) -> list[PaperText]:
    """The texts of the topic's pending suggestions, for its relevance model to score."""
    with store.connect() as connection:
        pmids = list(connection.execute(select(_suggestion.c.pmid).where(
            _suggestion.c.topic == topic, _suggestion.c.status == PENDING)).scalars())
    return paper_texts(store, pmids)


def unscored_suggestions(store: Store, topic: str) -> int:
    """Pending suggestions of `topic` without a relevance score."""
    with store.connect() as connection:
        return connection.execute(select(func.count()).select_from(_suggestion).where(
            _suggestion.c.topic == topic, _suggestion.c.status == PENDING,
            _suggestion.c.relevance.is_(None))).scalar_one()


def save_suggestion_scores(store: Store, topic: str, scores: Mapping[int, float | None]) -> None:
    """Set the relevance of the topic's suggestions (None: the topic has no model)."""
    if not scores:
        return
    statement = (update(_suggestion).where(_suggestion.c.topic == topic, _suggestion.c.pmid == bindparam("key"))
                 .values(relevance=bindparam("score")))
    with store.engine.begin() as connection:
        connection.execute(statement, [{"key": pmid, "score": score} for pmid, score in scores.items()])


def clear_suggestion_scores(store: Store, topic: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(update(_suggestion).where(_suggestion.c.topic == topic).values(relevance=None))


# -- what the faces count ----------------------------------------------------------------------------

def added_by_method(store: Store, topic: str, *, since: datetime | None = None) -> dict[str, int]:
    """The papers that joined `topic` from its suggestions (at `since` or later) by PRISMA's other method: similar
    articles when similarity found them (whether or not a citation did too), else citation searching."""
    statement = (select(_suggestion.c.ways).join(_membership, (_membership.c.topic == _suggestion.c.topic)
                                                 & (_membership.c.pmid == _suggestion.c.pmid))
                 .where(_suggestion.c.topic == topic, _membership.c.source == SUGGESTION))
    if since is not None:
        statement = statement.where(_membership.c.first_seen_at >= since)
    counts = {SIMILAR_ARTICLES: 0, CITATION_SEARCHING: 0}
    with store.connect() as connection:
        for (ways,) in connection.execute(statement):
            counts[SIMILAR_ARTICLES if SIMILAR in (ways or "").split("; ") else CITATION_SEARCHING] += 1
    return counts


def member_texts(store: Store, topic: str, *, sources: Sequence[str] = (QUERY,), limit: int | None = None) -> list[PaperText]:
    """The texts of the topic's papers that came in from `sources`, the `limit` the topic saw last."""
    statement = (select(_membership.c.pmid).where(_membership.c.topic == topic, _membership.c.source.in_(list(sources)))
                 .order_by(_membership.c.first_seen_at.desc(), _membership.c.pmid.desc()))
    if limit is not None:
        statement = statement.limit(limit)
    with store.connect() as connection:
        pmids = list(connection.execute(statement).scalars())
    return paper_texts(store, pmids)


__all__ = [
    "SIMILAR", "CITES", "CITED_BY", "WAYS", "PENDING", "ADDED", "DISMISSED", "STATUSES", "SIMILAR_ARTICLES",
    "CITATION_SEARCHING", "Found", "StoredSuggestion", "save_found", "drop_joined", "load_suggestions",
    "suggestion_counts", "decide_suggestions", "restore_suggestions", "last_dismissed", "add_by_hand",
    "suggestion_state", "save_suggestion_state", "asked_seeds", "mark_seeds_asked", "paper_texts", "pending_texts",
    "unscored_suggestions", "save_suggestion_scores", "clear_suggestion_scores", "added_by_method", "member_texts",
]
