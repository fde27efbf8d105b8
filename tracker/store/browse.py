"""Reading a topic's papers a page at a time: filters, sort orders, keyset pagination and the screening queue.

Pages are keyset pages, not offsets: a page starts after (or ends before) the last row the reader saw, by
the sort's own key, so page 50 of a 100,000-paper topic costs what page 1 does. Newest first walks the
(topic, first_seen_at) index; the evidence-tier order and filter use the stored, indexed `paper.evidence_tier`.
The screening state of each row is computed in SQL (`view_state_column`), as a blind reviewer may see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, literal, literal_column, or_, select, text, tuple_
from sqlalchemy.sql.elements import ColumnElement

from tracker.ncbi.evidence import TIER_RULES
from tracker.store.database import Store
from tracker.store.decisions import state_column, view_state_column
from tracker.store.models import CurrentDecision, PaperRow, RelevanceScore, Screening, TopicPaper

SORTS = ("newest", "oldest", "tier", "relevance")

_membership = TopicPaper.__table__
_paper = PaperRow.__table__
_screening = Screening.__table__
_current = CurrentDecision.__table__
_score = RelevanceScore.__table__


@dataclass(frozen=True)
class PaperFilter:
    state: str | None = None  # a screening state (as the reviewer sees it)
    tier: str | None = None  # an evidence tier key (tracker/ncbi/evidence.py)
    year_from: int | None = None
    year_to: int | None = None
    late: bool = False  # only late arrivals (PubMed listed them long after their create date)
    retracted: bool = False  # only papers PubMed now marks retracted
    pmids: tuple[int, ...] | None = None  # only these (the matches of a search within the topic)


@dataclass(frozen=True)
class Cursor:
    """Where a page starts or ends: the sort key of a row (its tier rank, first seen, PMID)."""

    first_seen_at: datetime
    pmid: int
    rank: int = 0

    def encode(self) -> str:
        return f"{self.rank}.{self.first_seen_at.strftime('%Y%m%dT%H%M%S.%f')}.{self.pmid}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor `encode` wrote, or None for anything else (a hand-edited URL starts from the top)."""
        try:
            rank, day, clock, pmid = text.split(".")
            return cls(datetime.strptime(f"{day}.{clock}", "%Y%m%dT%H%M%S.%f"), int(pmid), int(rank))
        except ValueError:
            return None


@dataclass(frozen=True)
class ListedRow:
    pmid: int
    first_seen_at: datetime
    state: str
    tier: str
    title: str
    authors: str
    journal: str | None
    year: int | None
    status: str | None
    late_arrival: bool
    relevance: float | None = None  # the topic's relevance score, read for the relevance order only

    def cursor(self, sort: str = "newest") -> Cursor:
        if sort == "relevance":
            return Cursor(self.first_seen_at, self.pmid, score_rank(self.relevance))
        return Cursor(self.first_seen_at, self.pmid, tier_rank(self.tier))


def score_rank(score: float | None) -> int:
    """A score as an exact integer key, unscored papers (-1) below every score: the bits of a positive double order
    as the doubles do, so a keyset page resumes exactly where the last one ended."""
    import struct

    return -1 if score is None else struct.unpack(">q", struct.pack(">d", score))[0]


def rank_score(rank: int) -> float:
    """`score_rank` undone: the score itself, or -1.0 for the unscored papers."""
    import struct

    return -1.0 if rank < 0 else struct.unpack(">d", struct.pack(">q", rank))[0]


@dataclass(frozen=True)
class Page:
    rows: list[ListedRow]
    more_after: bool  # a next page exists
    more_before: bool  # a previous page exists


def tier_rank(tier: str) -> int:
    return next((index for index, rule in enumerate(TIER_RULES) if rule.key == tier), len(TIER_RULES))


FACETS = ("pmid", "evidence_tier", "pub_year", "late_arrival", "status")


def _facets(store: Store):
    """The paper columns the filters read; on SQLite from the covering index `ix_paper_browse` (models.PaperRow),
    which its planner passes over for the rowid unless told (SQLAlchemy renders no hints for SQLite)."""
    if store.dialect != "sqlite":
        return select(*(_paper.c[name] for name in FACETS)).subquery("facets")
    columns = [literal_column(name, type_=_paper.c[name].type) for name in FACETS]
    return select(*columns).select_from(text("paper INDEXED BY ix_paper_browse")).subquery("facets")


def _joined(store: Store, topic: str, blind_reviewer: str | None):
    mine = _current.alias("mine")
    facets = _facets(store)
    joined = (_membership.join(facets, facets.c.pmid == _membership.c.pmid)
              .outerjoin(_screening, and_(_screening.c.topic == _membership.c.topic,
                                          _screening.c.pmid == _membership.c.pmid)))
    if blind_reviewer is not None:
        joined = joined.outerjoin(mine, and_(mine.c.topic == _membership.c.topic, mine.c.pmid == _membership.c.pmid,
                                             mine.c.reviewer == blind_reviewer))
    return joined, mine, facets


def _conditions(topic: str, filters: PaperFilter, state: ColumnElement, facets) -> list[ColumnElement]:
    found: list[ColumnElement] = [_membership.c.topic == topic]
    if filters.state is not None:
        found.append(state == filters.state)
    if filters.tier is not None:
        found.append(facets.c.evidence_tier == filters.tier)
    if filters.year_from is not None:
        found.append(facets.c.pub_year >= filters.year_from)
    if filters.year_to is not None:
        found.append(facets.c.pub_year <= filters.year_to)
    if filters.late:
        found.append(facets.c.late_arrival.is_(True))
    if filters.retracted:
        found.append(facets.c.status == "retracted")
    if filters.pmids is not None:
        found.append(_membership.c.pmid.in_(list(filters.pmids) or [-1]))
    return found


RARE = 5000  # a filter matching at most this many papers in the whole store is read from its own index


def list_topic_page(store: Store, topic: str, reviewers: int, *, filters: PaperFilter = PaperFilter(),
                    sort: str = "newest", blind_reviewer: str | None = None, after: Cursor | None = None,
                    before: Cursor | None = None, limit: int = 50) -> Page:
    """One page of the topic's papers that pass `filters`, in `sort` order, after `after` (or before `before`).

    The page's keys come first, filtered through the covering index `ix_paper_browse` (never a paper's row),
    then the shown columns of the page's papers only. A filter that few papers in the store pass (a rare
    tier, the retracted, the decided) narrows the topic to those papers first, through its own index; by
    tier, each tier is read newest first in turn, so no page sorts the whole topic."""
    filters = _narrowed(store, topic, filters)
    anchor, backwards = (before, True) if before is not None else (after, False)
    scores: dict[int, float | None] = {}
    if sort == "tier" and filters.tier is None:
        keys, more = _tier_keys(store, topic, reviewers, filters, blind_reviewer, anchor, backwards, limit)
    elif sort == "relevance":
        keys, more, scores = _relevance_keys(store, topic, reviewers, filters, blind_reviewer, anchor, backwards, limit)
    else:
        order = "oldest" if sort == "oldest" else "newest"
        keys, more = _keys(store, topic, reviewers, filters, order, blind_reviewer, anchor, backwards, limit)
    with store.engine.connect() as connection:
        shown = {row.pmid: row for row in connection.execute(
            select(_paper.c.pmid, _paper.c.title, _paper.c.author_names, _paper.c.journal, _paper.c.pub_year,
                   _paper.c.status, _paper.c.late_arrival).where(_paper.c.pmid.in_([key[0] for key in keys])))}
    rows = [ListedRow(pmid, seen, state, tier, title, authors, journal, year, status, late, scores.get(pmid))
            for pmid, seen, state, tier in keys if pmid in shown
            for _, title, authors, journal, year, status, late in [tuple(shown[pmid])]]
    if backwards:
        return Page(rows, more_after=True, more_before=more)
    return Page(rows, more_after=more, more_before=anchor is not None)


def _narrowed(store: Store, topic: str, filters: PaperFilter) -> PaperFilter:
    """`filters` with `pmids` set to the papers of the rarest of its filters, when one is rare in the store."""
    from dataclasses import replace

    probes = []
    if filters.tier is not None:
        probes.append(select(_paper.c.pmid).where(_paper.c.evidence_tier == filters.tier))
    if filters.retracted:
        probes.append(select(_paper.c.pmid).where(_paper.c.status == "retracted"))
    if filters.state is not None and filters.state != "unscreened":
        probes.append(select(_screening.c.pmid).where(_screening.c.topic == topic))  # decided papers only
    narrowest: set[int] | None = None
    with store.engine.connect() as connection:
        for probe in probes:
            found = set(connection.execute(probe.limit(RARE + 1)).scalars())
            if len(found) <= RARE and (narrowest is None or len(found) < len(narrowest)):
                narrowest = found
    if narrowest is None:
        return filters
    if filters.pmids is not None:
        narrowest &= set(filters.pmids)
    return replace(filters, pmids=tuple(sorted(narrowest)))


def _keys(store: Store, topic: str, reviewers: int, filters: PaperFilter, order: str, blind_reviewer: str | None,
          anchor: Cursor | None, backwards: bool, limit: int) -> tuple[list[tuple], bool]:
    """(pmid, first seen, state, tier) of up to `limit` papers in `order` after `anchor` (before it, `backwards`,
    still returned in `order`), and whether more follow in the direction read."""
    joined, mine, facets = _joined(store, topic, blind_reviewer)
    state = view_state_column(reviewers, blind_reviewer, mine).label("state")
    seen, pmid = _membership.c.first_seen_at, _membership.c.pmid
    descending = (order == "newest") != backwards
    conditions = _conditions(topic, filters, state, facets)
    if anchor is not None:
        key, at = tuple_(seen, pmid), tuple_(anchor.first_seen_at, anchor.pmid)
        conditions.append(key < at if descending else key > at)
    ordering = [seen.desc(), pmid.desc()] if descending else [seen.asc(), pmid.asc()]
    statement = (select(pmid, seen, state, facets.c.evidence_tier).select_from(joined).where(*conditions)
                 .order_by(*ordering).limit(limit + 1))
    with store.engine.connect() as connection:
        keys = [tuple(row) for row in connection.execute(statement)]
    more = len(keys) > limit
    keys = keys[:limit]
    return (keys[::-1] if backwards else keys), more


def _relevance_keys(store: Store, topic: str, reviewers: int, filters: PaperFilter, blind_reviewer: str | None,
                    anchor: Cursor | None, backwards: bool, limit: int) -> tuple[list[tuple], bool, dict]:
    """`_keys` most relevant first (unscored papers last, newest first among them), with each key's score."""
    joined, mine, facets = _joined(store, topic, blind_reviewer)
    joined = joined.outerjoin(_score, and_(_score.c.topic == _membership.c.topic, _score.c.pmid == _membership.c.pmid))
    state = view_state_column(reviewers, blind_reviewer, mine).label("state")
    key_score = func.coalesce(_score.c.score, -1.0)
    seen, pmid = _membership.c.first_seen_at, _membership.c.pmid
    conditions = _conditions(topic, filters, state, facets)
    if anchor is not None:
        at = rank_score(anchor.rank)
        after = or_(key_score < at, and_(key_score == at, tuple_(seen, pmid) < tuple_(anchor.first_seen_at, anchor.pmid)))
        before = or_(key_score > at, and_(key_score == at, tuple_(seen, pmid) > tuple_(anchor.first_seen_at, anchor.pmid)))
        conditions.append(before if backwards else after)
    ordering = ([key_score.asc(), seen.asc(), pmid.asc()] if backwards else [key_score.desc(), seen.desc(), pmid.desc()])
    statement = (select(pmid, seen, state, facets.c.evidence_tier, _score.c.score).select_from(joined)
                 .where(*conditions).order_by(*ordering).limit(limit + 1))
    with store.engine.connect() as connection:
        found = [tuple(row) for row in connection.execute(statement)]
    more = len(found) > limit
    found = found[:limit]
    if backwards:
        found.reverse()
    return [row[:4] for row in found], more, {row[0]: row[4] for row in found}


def _tier_keys(store: Store, topic: str, reviewers: int, filters: PaperFilter, blind_reviewer: str | None,
               anchor: Cursor | None, backwards: bool, limit: int) -> tuple[list[tuple], bool]:
    """`_keys` strongest tier first, newest first within a tier: the tiers read one after the other."""
    from dataclasses import replace

    ranks = list(range(len(TIER_RULES)))
    if anchor is not None:
        ranks = [rank for rank in ranks if (rank <= anchor.rank if backwards else rank >= anchor.rank)]
    if backwards:
        ranks.reverse()
    found: list[tuple] = []
    for rank in ranks:
        wanted = limit + 1 - len(found)  # one more than the page: whether another page follows
        if wanted <= 0:
            break
        within = anchor if anchor is not None and rank == anchor.rank else None
        tier = _narrowed(store, topic, replace(filters, tier=TIER_RULES[rank].key))
        keys, _ = _keys(store, topic, reviewers, tier, "newest", blind_reviewer, within, backwards, wanted)
        found = keys + found if backwards else found + keys
    return (found[-limit:] if backwards else found[:limit]), len(found) > limit


def count_topic_page(store: Store, topic: str, reviewers: int, *, filters: PaperFilter = PaperFilter(),
                     blind_reviewer: str | None = None) -> int:
    joined, mine, facets = _joined(store, topic, blind_reviewer)
    state = view_state_column(reviewers, blind_reviewer, mine)
    statement = select(func.count()).select_from(joined).where(*_conditions(topic, filters, state, facets))
    with store.engine.connect() as connection:
        return connection.execute(statement).scalar_one()


def count_members(store: Store, topic: str) -> int:
    from tracker.store.membership import member_counts

    return member_counts(store, [topic])[topic]


# -- the screening queue -----------------------------------------------------------------------

def _queue_condition(reviewers: int, reviewer: str, mine) -> ColumnElement:
    """Papers waiting for `reviewer`: with one reviewer, undecided by anyone; with two, undecided by them and
    not settled by a resolution."""
    if reviewers <= 1:
        return _screening.c.latest.is_(None)
    return and_(mine.c.decision.is_(None), state_column(reviewers).in_(("unscreened", "awaiting")))


def _queue_statement(topic: str, reviewers: int, reviewer: str, *, scored: bool = False):
    """The columns of a ListedRow (and the score, when `scored`) over `reviewer`'s waiting papers, and the
    conditions that make them waiting, for the caller to extend."""
    mine = _current.alias("mine")
    joined = (_membership.join(_paper, _paper.c.pmid == _membership.c.pmid)
              .outerjoin(_screening, and_(_screening.c.topic == _membership.c.topic,
                                          _screening.c.pmid == _membership.c.pmid))
              .outerjoin(mine, and_(mine.c.topic == _membership.c.topic, mine.c.pmid == _membership.c.pmid,
                                    mine.c.reviewer == reviewer)))
    columns = [_membership.c.pmid, _membership.c.first_seen_at, literal("unscreened"), _paper.c.evidence_tier,
               _paper.c.title, _paper.c.author_names, _paper.c.journal, _paper.c.pub_year, _paper.c.status,
               _paper.c.late_arrival]
    if scored:
        joined = joined.outerjoin(_score, and_(_score.c.topic == _membership.c.topic,
                                               _score.c.pmid == _membership.c.pmid))
        columns.append(_score.c.score)
    conditions = [_membership.c.topic == topic, _queue_condition(reviewers, reviewer, mine)]
    return select(*columns).select_from(joined), conditions


def queue_pmids(store: Store, topic: str, reviewers: int, reviewer: str, *, after: Cursor | None = None,
                limit: int = 1) -> list[ListedRow]:
    """The next papers of `reviewer`'s queue, newest first seen first, after `after`."""
    statement, conditions = _queue_statement(topic, reviewers, reviewer)
    seen, pmid = _membership.c.first_seen_at, _membership.c.pmid
    if after is not None:
        conditions.append(tuple_(seen, pmid) < tuple_(after.first_seen_at, after.pmid))
    statement = statement.where(*conditions).order_by(seen.desc(), pmid.desc()).limit(limit)
    with store.engine.connect() as connection:
        return [ListedRow(*row) for row in connection.execute(statement)]


def queue_by_relevance(store: Store, topic: str, reviewers: int, reviewer: str, *, skip: int | None = None,
                       offset: int = 0) -> ListedRow | None:
    """The paper at `offset` in `reviewer`'s queue most relevant first (unscored last, then newest), `skip` left out;
    None when the queue is shorter."""
    statement, conditions = _queue_statement(topic, reviewers, reviewer, scored=True)
    seen, pmid = _membership.c.first_seen_at, _membership.c.pmid
    if skip is not None:
        conditions.append(pmid != skip)
    statement = (statement.where(*conditions)
                 .order_by(func.coalesce(_score.c.score, -1.0).desc(), seen.desc(), pmid.desc())
                 .offset(offset).limit(1))
    with store.engine.connect() as connection:
        row = connection.execute(statement).first()
    if row is None:
        return None
    pmid_, seen_, state, tier, title, authors, journal, year, status, late, score = tuple(row)
    return ListedRow(pmid_, seen_, state, tier, title, authors, journal, year, status, late, score)


def screened_count(store: Store, topic: str, reviewers: int, reviewer: str) -> int:
    """How many of the topic's papers are out of `reviewer`'s queue: read from the decisions, not the papers."""
    if reviewers <= 1:
        statement = (select(func.count()).select_from(_screening)
                     .where(_screening.c.topic == topic, _screening.c.latest.is_not(None)))
    else:
        mine = _current.alias("mine")
        statement = (select(func.count()).select_from(_screening.outerjoin(mine, and_(
            mine.c.topic == _screening.c.topic, mine.c.pmid == _screening.c.pmid, mine.c.reviewer == reviewer)))
            .where(_screening.c.topic == topic, or_(mine.c.decision.is_not(None),
                                                    state_column(reviewers).not_in(("unscreened", "awaiting")))))
    with store.engine.connect() as connection:
        return connection.execute(statement).scalar_one()


def neighbours(store: Store, topic: str, at: Cursor) -> tuple[int | None, int | None]:
    """The PMIDs just before and just after `at` in the topic's newest-first order (any state)."""
    seen, pmid = _membership.c.first_seen_at, _membership.c.pmid
    key = tuple_(seen, pmid)
    newer = (select(pmid).where(_membership.c.topic == topic, key > tuple_(at.first_seen_at, at.pmid))
             .order_by(seen.asc(), pmid.asc()).limit(1))
    older = (select(pmid).where(_membership.c.topic == topic, key < tuple_(at.first_seen_at, at.pmid))
             .order_by(seen.desc(), pmid.desc()).limit(1))
    with store.engine.connect() as connection:
        return connection.execute(newer).scalar_one_or_none(), connection.execute(older).scalar_one_or_none()


def stored_pmid(store: Store, pmid: int) -> bool:
    with store.engine.connect() as connection:
        return connection.execute(select(_paper.c.pmid).where(_paper.c.pmid == pmid)).first() is not None


__all__ = ["SORTS", "PaperFilter", "Cursor", "ListedRow", "Page", "tier_rank", "list_topic_page", "count_topic_page",
           "count_members", "queue_pmids", "screened_count", "neighbours",
           "stored_pmid"]
