"""Reading a topic's papers a page at a time: filters, sort orders, keyset pagination and the screening queue.

Pages are keyset pages, not offsets: a page starts after (or ends before) the last row the reader saw, by
the sort's own key, so page 50 of a 100,000-paper topic costs what page 1 does. Newest first walks the
(topic, first_seen_at) index; the evidence-tier order and filter use the stored, indexed `paper.evidence_tier`.
The screening state of each row is computed in SQL by the topic's rule (tracker/review/states.py), as a blind
reviewer may see it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    DateTime,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
)
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import LargeBinary

from tracker.errors import ConfigError
from tracker.ncbi.evidence import TIER_RULES
from tracker.store.database import Store
from tracker.store.decisions import StateRule
from tracker.store.membership import memberships
from tracker.store.models import CurrentDecision, PaperRow, RelevanceScore, Screening, TopicPaper
from tracker.store.relevance import score_column
from tracker.store.rows import POPULATION_BITS, chunked
from tracker.text import parse_pmid, whole_number

SORTS = ("newest", "oldest", "tier", "relevance")

_membership = TopicPaper.__table__
_paper = PaperRow.__table__
_screening = Screening.__table__
_current = CurrentDecision.__table__
_score = RelevanceScore.__table__


@dataclass(frozen=True)
class PaperFilter:
    state: str | None = None  # a screening state (as the reviewer sees it; with several topics: in any of them)
    tier: str | None = None  # an evidence tier key (tracker/ncbi/evidence.py)
    year_from: int | None = None
    year_to: int | None = None
    late: bool = False  # only late arrivals (PubMed listed them long after their create date)
    retracted: bool = False  # only papers PubMed now marks retracted
    pmids: tuple[int, ...] | None = None  # only these (the matches of a search within the topic)
    since: date | None = None  # only papers the topics first saw on or after this day (UTC)
    design: str | None = None  # a study design read from the paper (tracker.facts.DESIGNS)
    population: str | None = None  # a population its study facts name (tracker.facts.POPULATIONS)
    states_dose: bool = False  # only papers whose title or abstract states a dose of a vasoactive drug


@dataclass(frozen=True)
class Cursor:
    """Where a page starts or ends: the sort key of a row. Every order ends in (first seen, PMID); the tier order
    starts with the tier's rank, the relevance order with the score (-1.0 for an unscored paper)."""

    first_seen_at: datetime
    pmid: int
    tier: int = 0
    score: float | None = None

    def encode(self) -> str:
        key = f"{self.tier}.{self.first_seen_at.strftime('%Y%m%dT%H%M%S.%f')}.{self.pmid}"
        # float.hex is exact, so a page in relevance order resumes exactly where the last one ended.
        return key if self.score is None else f"{key}~{self.score.hex()}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor `encode` wrote, or None for anything else (a hand-edited URL starts from the top)."""
        try:
            key, _, score = text.partition("~")
            tier, day, clock, pmid = key.split(".")
            number, rank = parse_pmid(pmid), whole_number(tier, high=len(TIER_RULES))
            value = float.fromhex(score) if score else None
            if number is None or rank is None or (value is not None and not math.isfinite(value)):
                return None
            return cls(datetime.strptime(f"{day}.{clock}", "%Y%m%dT%H%M%S.%f"), number, rank, value)
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
    design: str = "other"  # the study facts' design (tracker/facts), read for the topic page
    sample_size: int | None = None
    tier_from_abstract: bool = False  # the tier is the design read from the abstract (tracker.facts.arrival_tier)

    def cursor(self, sort: str = "newest") -> Cursor:
        if sort == "relevance":
            return Cursor(self.first_seen_at, self.pmid, score=UNSCORED if self.relevance is None else self.relevance)
        return Cursor(self.first_seen_at, self.pmid, tier=tier_rank(self.tier))


UNSCORED = -1.0  # below every score: unscored papers come last in the relevance order


@dataclass(frozen=True)
class Page:
    rows: list[ListedRow]
    more_after: bool  # a next page exists
    more_before: bool  # a previous page exists


def tier_rank(tier: str) -> int:
    return next((index for index, rule in enumerate(TIER_RULES) if rule.key == tier), len(TIER_RULES))


FACETS = ("pmid", "evidence_tier", "pub_year", "late_arrival", "status", "design", "states_dose", "population_bits")


def _facets(store: Store):
    """The paper columns the filters read; on SQLite from the covering index `ix_paper_browse` (models.PaperRow),
    which its planner passes over for the rowid unless told (SQLAlchemy renders no hints for SQLite)."""
    if store.dialect != "sqlite":
        return select(*(_paper.c[name] for name in FACETS)).subquery("facets")
    columns = [literal_column(name, type_=_paper.c[name].type) for name in FACETS]
    return select(*columns).select_from(text("paper INDEXED BY ix_paper_browse")).subquery("facets")


@dataclass(frozen=True)
class Screened:
    """A listing's join to what the screening says of each paper at the rule's stage: its `summary` row there,
    `mine` (the viewer's current decision there; None without a viewer), and `eligible`, the condition that the
    paper reached this stage (included at the stage before; None at the first stage)."""

    joined: Any
    summary: Any
    mine: Any
    eligible: ColumnElement | None


def screened(joined, membership, rule: StateRule, viewer: str | None, suffix: str = "") -> Screened:
    """`joined` (which holds `membership`, a topic_paper table or alias) outer-joined to the rule's stage."""
    summary = _screening.alias(f"summary{suffix}")
    joined = joined.outerjoin(summary, and_(summary.c.topic == membership.c.topic, summary.c.pmid == membership.c.pmid,
                                            summary.c.stage == rule.stage))
    mine = None
    if viewer is not None:
        mine = _current.alias(f"mine{suffix}")
        joined = joined.outerjoin(mine, and_(mine.c.topic == membership.c.topic, mine.c.pmid == membership.c.pmid,
                                             mine.c.stage == rule.stage, mine.c.reviewer == viewer))
    eligible = None
    if rule.previous is not None:
        before = _screening.alias(f"before{suffix}")
        joined = joined.outerjoin(before, and_(before.c.topic == membership.c.topic, before.c.pmid == membership.c.pmid,
                                               before.c.stage == rule.previous.stage))
        eligible = rule.previous.state_sql(before) == "included"
    return Screened(joined, summary, mine, eligible)


def reached(store: Store, topic: str, rule: StateRule):
    """A select of the topic's papers that reached the rule's stage (all of them at the first stage)."""
    if rule.previous is None:
        return select(_membership.c.pmid).where(_membership.c.topic == topic)
    found = screened(_membership, _membership, rule, None)
    assert found.eligible is not None  # a later stage has the condition of the one before
    return select(_membership.c.pmid).select_from(found.joined).where(_membership.c.topic == topic, found.eligible)


def count_reached(store: Store, topic: str, rule: StateRule) -> int:
    with store.connect() as connection:
        return connection.execute(select(func.count()).select_from(reached(store, topic, rule).subquery())).scalar_one()


def _joined(store: Store, topic: str, rule: StateRule, blind_reviewer: str | None):
    facets = _facets(store)
    found = screened(_membership.join(facets, facets.c.pmid == _membership.c.pmid), _membership, rule, blind_reviewer)
    return found, facets


def _conditions(topic: str, filters: PaperFilter, state: ColumnElement, facets,
                screening: Screened) -> list[ColumnElement]:
    found: list[ColumnElement] = [_membership.c.topic == topic]
    if screening.eligible is not None:
        found.append(screening.eligible)
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
    if filters.since is not None:
        found.append(_membership.c.first_seen_at >= datetime.combine(filters.since, time.min, tzinfo=timezone.utc))
    found += _facts_conditions(filters, facets)
    return found


def _facts_conditions(filters: PaperFilter, columns) -> list[ColumnElement]:
    """The study-facts filters over `columns` (the facets, or the paper table)."""
    found: list[ColumnElement] = []
    if filters.design is not None:
        found.append(columns.c.design == filters.design)
    if filters.population is not None:
        found.append(columns.c.population_bits.op("&")(population_bit(filters.population)) != 0)
    if filters.states_dose:
        found.append(columns.c.states_dose.is_(True))
    return found


def population_bit(population: str) -> int:
    if population not in POPULATION_BITS:
        raise ConfigError(f"unknown population {population!r}: use one of {', '.join(POPULATION_BITS)}")
    return POPULATION_BITS[population]


def _with_population(population: str) -> list[int]:
    """Every value `population_bits` can hold that includes `population`: an IN list the column's index can seek."""
    bit = population_bit(population)
    return [bits for bits in range(1 << len(POPULATION_BITS)) if bits & bit]


RARE = 5000  # a filter matching at most this many papers in the whole store is read from its own index


def list_topic_page(store: Store, topic: str, rule: StateRule, *, filters: PaperFilter = PaperFilter(),
                    sort: str = "newest", blind_reviewer: str | None = None, after: Cursor | None = None,
                    before: Cursor | None = None, limit: int = 50) -> Page:
    """One page of the topic's papers that pass `filters`, in `sort` order, after `after` (or before `before`).

    The page's keys come first, filtered through the covering index `ix_paper_browse` (never a paper's row),
    then the shown columns of the page's papers only. A filter that few papers in the store pass (a rare
    tier, the retracted, the decided) narrows the topic to those papers first, through its own index; by
    tier, each tier is read newest first in turn, so no page sorts the whole topic."""
    if sort not in SORTS:
        raise ConfigError(f"unknown order {sort!r}: use one of {', '.join(SORTS)}")
    filters = _narrowed(store, topic, filters)
    anchor, backwards = (before, True) if before is not None else (after, False)
    scores: dict[int, float | None] = {}
    if sort == "tier" and filters.tier is None:
        keys, more = _tier_keys(store, topic, rule, filters, blind_reviewer, anchor, backwards, limit)
    elif sort == "relevance":
        keys, more, scores = _relevance_keys(store, topic, rule, filters, blind_reviewer, anchor, backwards, limit)
    else:
        order = "oldest" if sort == "oldest" else "newest"
        keys, more = _keys(store, topic, rule, filters, order, blind_reviewer, anchor, backwards, limit)
    with store.connect() as connection:
        shown = {row.pmid: row for row in connection.execute(
            select(_paper.c.pmid, _paper.c.title, _paper.c.author_names, _paper.c.journal, _paper.c.pub_year,
                   _paper.c.status, _paper.c.late_arrival, _paper.c.design, _paper.c.sample_size,
                   _paper.c.tier_from_abstract).where(_paper.c.pmid.in_([key[0] for key in keys])))}
    rows = [ListedRow(pmid, seen, state, tier, title, authors, journal, year, status, late, scores.get(pmid), design,
                      size, bool(from_abstract))
            for pmid, seen, state, tier in keys if pmid in shown
            for _, title, authors, journal, year, status, late, design, size, from_abstract in [tuple(shown[pmid])]]
    if backwards:
        return Page(rows, more_after=True, more_before=more)
    return Page(rows, more_after=more, more_before=anchor is not None)


def walk_topic(store: Store, topic: str, rule: StateRule, *, filters: PaperFilter = PaperFilter(), sort: str = "newest",
               blind_reviewer: str | None = None, limit: int | None = None, page: int = 5000) -> Iterator[ListedRow]:
    """Every paper of the topic that passes `filters` (at most `limit`), in `sort` order: `list_topic_page`'s pages
    one after the other."""
    after: Cursor | None = None
    left = limit
    while left is None or left > 0:
        found = list_topic_page(store, topic, rule, filters=filters, sort=sort, blind_reviewer=blind_reviewer,
                                after=after, limit=page if left is None else min(page, left))
        yield from found.rows
        if not found.more_after or not found.rows:
            return
        after = found.rows[-1].cursor(sort)
        left = None if left is None else left - len(found.rows)


def _narrowed(store: Store, topic: str, filters: PaperFilter) -> PaperFilter:
    """`filters` with `pmids` set to the papers of the rarest of its filters, when one is rare in the store."""
    from dataclasses import replace

    if filters.pmids is not None and len(filters.pmids) <= RARE:
        return filters  # a search's papers are already few: probing the store for a rare filter costs more
    probes = [select(_paper.c.pmid).where(condition) for condition in _indexed_conditions(filters)]
    if filters.state is not None and filters.state != "unscreened":
        probes.append(select(_screening.c.pmid).where(_screening.c.topic == topic))  # decided papers (any stage) only
    narrowest: set[int] | None = None
    with store.connect() as connection:
        for probe in probes:
            found = set(connection.execute(probe.limit(RARE + 1)).scalars())
            if len(found) <= RARE and (narrowest is None or len(found) < len(narrowest)):
                narrowest = found
    if narrowest is None:
        return filters
    if filters.pmids is not None:
        narrowest &= set(filters.pmids)
    return replace(filters, pmids=tuple(sorted(narrowest)))


def _keys(store: Store, topic: str, rule: StateRule, filters: PaperFilter, order: str, blind_reviewer: str | None,
          anchor: Cursor | None, backwards: bool, limit: int) -> tuple[list[tuple], bool]:
    """(pmid, first seen, state, tier) of up to `limit` papers in `order` after `anchor` (before it, `backwards`,
    still returned in `order`), and whether more follow in the direction read."""
    found, facets = _joined(store, topic, rule, blind_reviewer)
    joined = found.joined
    state = rule.view_sql(found.summary, found.mine).label("state")
    seen, pmid = _membership.c.first_seen_at, _membership.c.pmid
    descending = (order == "newest") != backwards
    conditions = _conditions(topic, filters, state, facets, found)
    if anchor is not None:
        key, at = tuple_(seen, pmid), tuple_(anchor.first_seen_at, anchor.pmid)
        conditions.append(key < at if descending else key > at)
    ordering = [seen.desc(), pmid.desc()] if descending else [seen.asc(), pmid.asc()]
    statement = (select(pmid, seen, state, facets.c.evidence_tier).select_from(joined).where(*conditions)
                 .order_by(*ordering).limit(limit + 1))
    with store.connect() as connection:
        keys = [tuple(row) for row in connection.execute(statement)]
    more = len(keys) > limit
    keys = keys[:limit]
    return (keys[::-1] if backwards else keys), more


def _relevance_keys(store: Store, topic: str, rule: StateRule, filters: PaperFilter, blind_reviewer: str | None,
                    anchor: Cursor | None, backwards: bool, limit: int) -> tuple[list[tuple], bool, dict]:
    """`_keys` most relevant first (unscored papers last, newest first among them), with each key's score."""
    found, facets = _joined(store, topic, rule, blind_reviewer)
    joined = found.joined.outerjoin(_score, and_(_score.c.topic == _membership.c.topic,
                                                 _score.c.pmid == _membership.c.pmid))
    state = rule.view_sql(found.summary, found.mine).label("state")
    key_score = func.coalesce(_score.c.score, UNSCORED)
    seen, pmid = _membership.c.first_seen_at, _membership.c.pmid
    conditions = _conditions(topic, filters, state, facets, found)
    if anchor is not None:
        at = UNSCORED if anchor.score is None else anchor.score
        after = or_(key_score < at, and_(key_score == at, tuple_(seen, pmid) < tuple_(anchor.first_seen_at, anchor.pmid)))
        before = or_(key_score > at, and_(key_score == at, tuple_(seen, pmid) > tuple_(anchor.first_seen_at, anchor.pmid)))
        conditions.append(before if backwards else after)
    ordering = ([key_score.asc(), seen.asc(), pmid.asc()] if backwards else [key_score.desc(), seen.desc(), pmid.desc()])
    statement = (select(pmid, seen, state, facets.c.evidence_tier, _score.c.score).select_from(joined)
                 .where(*conditions).order_by(*ordering).limit(limit + 1))
    with store.connect() as connection:
        found = [tuple(row) for row in connection.execute(statement)]
    more = len(found) > limit
    found = found[:limit]
    if backwards:
        found.reverse()
    return [row[:4] for row in found], more, {row[0]: row[4] for row in found}


def _tier_keys(store: Store, topic: str, rule: StateRule, filters: PaperFilter, blind_reviewer: str | None,
               anchor: Cursor | None, backwards: bool, limit: int) -> tuple[list[tuple], bool]:
    """`_keys` strongest tier first, newest first within a tier: the tiers read one after the other."""
    from dataclasses import replace

    ranks = list(range(len(TIER_RULES)))
    if anchor is not None:
        ranks = [rank for rank in ranks if (rank <= anchor.tier if backwards else rank >= anchor.tier)]
    if backwards:
        ranks.reverse()
    found: list[tuple] = []
    for rank in ranks:
        wanted = limit + 1 - len(found)  # one more than the page: whether another page follows
        if wanted <= 0:
            break
        within = anchor if anchor is not None and rank == anchor.tier else None
        tier = _narrowed(store, topic, replace(filters, tier=TIER_RULES[rank].key))
        keys, _ = _keys(store, topic, rule, tier, "newest", blind_reviewer, within, backwards, wanted)
        found = keys + found if backwards else found + keys
    return (found[-limit:] if backwards else found[:limit]), len(found) > limit


def count_topic_page(store: Store, topic: str, rule: StateRule, *, filters: PaperFilter = PaperFilter(),
                     blind_reviewer: str | None = None) -> int:
    found, facets = _joined(store, topic, rule, blind_reviewer)
    state = rule.view_sql(found.summary, found.mine)
    statement = select(func.count()).select_from(found.joined).where(*_conditions(topic, filters, state, facets, found))
    with store.connect() as connection:
        return connection.execute(statement).scalar_one()


def count_members(store: Store, topic: str) -> int:
    from tracker.store.membership import member_counts

    return member_counts(store, [topic])[topic]


# -- the screening queue -----------------------------------------------------------------------

def _waiting(topic: str, rule: StateRule, reviewer: str, joined=_membership, topic_column=_membership.c.topic):
    """`joined` (the memberships, or more joined to them) with the rule's stage, and the conditions that make a
    membership wait for `reviewer` (`topic_column`: where the topic is given, a column joined to the membership's)."""
    found = screened(joined, _membership, rule, reviewer)
    conditions = [topic_column == topic, rule.waiting_sql(found.summary, found.mine)]
    if found.eligible is not None:
        conditions.append(found.eligible)
    return found.joined, conditions


def _queue_statement(topic: str, rule: StateRule, reviewer: str):
    """The columns of a ListedRow over `reviewer`'s waiting papers, and the conditions that make them waiting, for
    the caller to extend."""
    joined, conditions = _waiting(topic, rule, reviewer, _membership.join(_paper, _paper.c.pmid == _membership.c.pmid))
    columns = [_membership.c.pmid, _membership.c.first_seen_at, literal("unscreened"), _paper.c.evidence_tier,
               _paper.c.title, _paper.c.author_names, _paper.c.journal, _paper.c.pub_year, _paper.c.status,
               _paper.c.late_arrival]
    return select(*columns).select_from(joined), conditions


# The queue's statements are built once per rule and run with bound values: building their joins and aliases
# again on every call took a tenth of a busy server's interpreter time (py-spy, benchmark 14).
_TOPIC, _REVIEWER = bindparam("topic", type_=String), bindparam("reviewer", type_=String)


@lru_cache(maxsize=64)
def _newest_queue(rule: StateRule, after: bool):
    statement, conditions = _queue_statement(_TOPIC, rule, _REVIEWER)  # type: ignore[arg-type]
    seen, pmid = _membership.c.first_seen_at, _membership.c.pmid
    if after:
        conditions.append(tuple_(seen, pmid) < tuple_(bindparam("after_seen", type_=DateTime), bindparam("after_pmid")))
    return statement.where(*conditions).order_by(seen.desc(), pmid.desc()).limit(bindparam("limit"))


def queue_pmids(store: Store, topic: str, rule: StateRule, reviewer: str, *, after: Cursor | None = None,
                limit: int = 1) -> list[ListedRow]:
    """The next papers of `reviewer`'s queue, newest first seen first, after `after`."""
    values: dict[str, Any] = {"topic": topic, "reviewer": reviewer, "limit": limit}
    if after is not None:
        values |= {"after_seen": after.first_seen_at, "after_pmid": after.pmid}
    with store.connect() as connection:
        return [ListedRow(*row) for row in connection.execute(_newest_queue(rule, after is not None), values)]


@lru_cache(maxsize=64)
def _relevance_queue(rule: StateRule, skipping: bool, scored: bool, counting: bool = False):
    """The waiting paper at an offset: among the scored, best first (every score is above UNSCORED), or among the
    unscored, newest first seen first; with `counting`, how many scored papers wait instead."""
    seen, pmid = _membership.c.first_seen_at, _membership.c.pmid
    if scored:
        # Walked down the scores' index (topic, score), the best waiting paper is the first one found, where sorting
        # the whole queue by coalesce(score) took 4.5 ms a screening page on a 4,907-paper topic. The topic is given
        # on the scores alone: given on the memberships too, SQLite without statistics walks those instead.
        base = _score.join(_membership, and_(_membership.c.topic == _score.c.topic, _membership.c.pmid == _score.c.pmid))
        joined, conditions = _waiting(_TOPIC, rule, _REVIEWER, base, _score.c.topic)  # type: ignore[arg-type]
        ordering = [_score.c.score.desc(), seen.desc(), pmid.desc()]
    else:
        base = _membership.outerjoin(_score, and_(_score.c.topic == _membership.c.topic,
                                                  _score.c.pmid == _membership.c.pmid))
        joined, conditions = _waiting(_TOPIC, rule, _REVIEWER, base)  # type: ignore[arg-type]
        conditions.append(_score.c.pmid.is_(None))
        ordering = [seen.desc(), pmid.desc()]
    if skipping:
        conditions.append(pmid != bindparam("skip"))
    if counting:
        return select(func.count()).select_from(joined).where(*conditions)
    return (select(pmid, _score.c.score).select_from(joined).where(*conditions).order_by(*ordering)
            .offset(bindparam("offset")).limit(1))


_QUEUED_PAPER = (select(_membership.c.pmid, _membership.c.first_seen_at, _paper.c.evidence_tier, _paper.c.title,
                        _paper.c.author_names, _paper.c.journal, _paper.c.pub_year, _paper.c.status, _paper.c.late_arrival)
                 .join(_paper, _paper.c.pmid == _membership.c.pmid)
                 .where(_membership.c.topic == _TOPIC, _membership.c.pmid == bindparam("pmid")))


def queue_by_relevance(store: Store, topic: str, rule: StateRule, reviewer: str, *, skip: int | None = None,
                       offset: int = 0) -> ListedRow | None:
    """The paper at `offset` in `reviewer`'s queue most relevant first (unscored last, then newest), `skip` left out;
    None when the queue is shorter."""
    # The paper is chosen from the memberships, decisions and scores alone, then read: sorting the whole queue
    # with every paper's title and authors read cost 28 ms a call on a 5,000-paper topic, twice a screening page.
    values = {"topic": topic, "reviewer": reviewer, "offset": offset} | ({"skip": skip} if skip is not None else {})
    skipping = skip is not None
    with store.connect() as connection:
        picked = connection.execute(_relevance_queue(rule, skipping, True), values).first()
        if picked is None:  # past the scored papers that wait: the unscored follow them
            if offset:
                values["offset"] -= connection.execute(_relevance_queue(rule, skipping, True, True), values).scalar_one()
            picked = connection.execute(_relevance_queue(rule, skipping, False), values).first()
        if picked is None:
            return None
        row = connection.execute(_QUEUED_PAPER, {"topic": topic, "pmid": picked[0]}).first()
    if row is None:
        return None
    pmid_, seen_, tier, title, authors, journal, year, status, late = tuple(row)
    return ListedRow(pmid_, seen_, "unscreened", tier, title, authors, journal, year, status, late, picked[1])


@lru_cache(maxsize=64)
def _screened_count(rule: StateRule):
    mine = _current.alias("mine")
    joined = _screening.outerjoin(mine, and_(mine.c.topic == _screening.c.topic, mine.c.pmid == _screening.c.pmid,
                                             mine.c.stage == _screening.c.stage, mine.c.reviewer == _REVIEWER))
    return (select(func.count()).select_from(joined)
            .where(_screening.c.topic == _TOPIC, _screening.c.stage == rule.stage, ~rule.waiting_sql(_screening, mine)))


def screened_count(store: Store, topic: str, rule: StateRule, reviewer: str) -> int:
    """How many of the topic's papers at the rule's stage are out of `reviewer`'s queue: read from the decisions, not
    the papers (a paper without a summary at the stage waits)."""
    with store.connect() as connection:
        return connection.execute(_screened_count(rule), {"topic": topic, "reviewer": reviewer}).scalar_one()


def topic_row(store: Store, topic: str, pmid: int) -> ListedRow | None:
    """The paper `pmid` of `topic` as a listing shows it (its state left to the caller: unscreened); None when the
    topic does not hold it."""
    statement = (select(_membership.c.pmid, _membership.c.first_seen_at, literal("unscreened"), _paper.c.evidence_tier,
                        _paper.c.title, _paper.c.author_names, _paper.c.journal, _paper.c.pub_year, _paper.c.status,
                        _paper.c.late_arrival)
                 .join(_paper, _paper.c.pmid == _membership.c.pmid)
                 .where(_membership.c.topic == topic, _membership.c.pmid == pmid))
    with store.connect() as connection:
        row = connection.execute(statement).first()
    return ListedRow(*row) if row is not None else None


def neighbours(store: Store, topic: str, at: Cursor) -> tuple[int | None, int | None]:
    """The PMIDs just before and just after `at` in the topic's newest-first order (any state)."""
    seen, pmid = _membership.c.first_seen_at, _membership.c.pmid
    key = tuple_(seen, pmid)
    newer = (select(pmid).where(_membership.c.topic == topic, key > tuple_(at.first_seen_at, at.pmid))
             .order_by(seen.asc(), pmid.asc()).limit(1))
    older = (select(pmid).where(_membership.c.topic == topic, key < tuple_(at.first_seen_at, at.pmid))
             .order_by(seen.desc(), pmid.desc()).limit(1))
    with store.connect() as connection:
        return connection.execute(newer).scalar_one_or_none(), connection.execute(older).scalar_one_or_none()


# -- the papers of several topics, whole (exports) -----------------------------------------------

@dataclass(frozen=True)
class Selection:
    """The papers of one or more topics that an export writes: `filters` (a state in any of the topics, as
    `reviewer` may see it in blind screening; every other filter on the paper), in `sort` order. Each topic's
    state rule is in `rules`, by slug."""

    topics: tuple[str, ...]
    rules: Mapping[str, StateRule]
    filters: PaperFilter = PaperFilter()
    sort: str = "newest"
    reviewer: str | None = None


EXPORT_CHUNK = 500
ListedPaperRow = Row  # a selected paper's row: its columns by name (`row.pmid`, `row.title`, ...)
NO_XML = "*"  # `fields` of every paper column but the compressed XML, which no export needs


def _fields(fields: Sequence[str] | str) -> list:
    if fields == NO_XML:
        return [column for column in _paper.c if column.name != "xml_gz"] + [literal(b"", LargeBinary).label("xml_gz")]
    return [_paper.c[name] for name in fields]


def _selection(dialect: str, selection: Selection, fields: Sequence[str] | str):
    """`fields` of the selected papers, then first_seen (the earliest among the selected topics), all_topics (every
    topic of the paper, space-separated) and relevance (its highest score among the selected topics)."""
    if selection.sort not in SORTS:
        raise ConfigError(f"unknown order {selection.sort!r}: use one of {', '.join(SORTS)}")
    topics, filters = list(selection.topics), selection.filters
    # A plain DateTime: the column's own type would make every row's time zone-aware just to format it.
    first_seen = type_coerce(func.min(_membership.c.first_seen_at), DateTime()).label("first_seen")
    chosen_rows = select(_membership.c.pmid, first_seen).where(_membership.c.topic.in_(topics)).group_by(_membership.c.pmid)
    if filters.since is not None:
        # Memberships from `since` on, through the (topic, first_seen_at) index, less the papers a selected
        # topic saw before: the statement reads the period, not every membership of the topics.
        # On SQLite, `pmid + 0` and `topic || ''` keep the planner off two indexes that cost more here: the
        # pmid index for the GROUP BY (a scan of every membership) and the (topic, pmid) key for NOT EXISTS
        # (one probe per selected topic instead of one per paper). Measured on a million papers: 5.8 s to 3.0 s.
        sqlite = dialect == "sqlite"
        start = datetime.combine(filters.since, time.min, tzinfo=timezone.utc)
        earlier = _membership.alias("earlier")
        chosen_rows = (select(_membership.c.pmid, first_seen)
                       .where(_membership.c.topic.in_(topics), _membership.c.first_seen_at >= start,
                              ~exists().where(earlier.c.pmid == _membership.c.pmid,
                                              (earlier.c.topic + "" if sqlite else earlier.c.topic).in_(topics),
                                              earlier.c.first_seen_at < start))
                       .group_by(_membership.c.pmid + 0 if sqlite else _membership.c.pmid))
    indexed = _indexed_conditions(filters)
    if indexed:
        # A filter with an index of its own picks the papers first, and each is looked up among the memberships by
        # their key, rather than every membership's paper row read to test it (a paper row holds its XML). On a
        # million papers, the 2,715 of a topic's 130,863 that state a dose (the dose map): 400 ms to 40 ms; an
        # unselective filter (560,002 reviews) no slower. The selected papers then pass them: no need to test again.
        chosen_rows = chosen_rows.where(_membership.c.pmid.in_(select(_paper.c.pmid).where(*indexed)))
    chosen = chosen_rows.subquery()
    # Every topic of the paper (selected or not), space-separated (slugs have no spaces): one index probe per
    # row inside the statement instead of a second query per chunk.
    member_of = _membership.alias("member_of")
    all_topics = (select(func.aggregate_strings(member_of.c.topic, " ")).where(member_of.c.pmid == _paper.c.pmid)
                  .scalar_subquery().label("all_topics"))
    relevance = score_column(topics, _paper.c.pmid).label("relevance")
    newest = (chosen.c.first_seen.desc(), _paper.c.pmid.desc())
    orders = {
        "newest": newest,
        "oldest": (chosen.c.first_seen.asc(), _paper.c.pmid.asc()),
        "tier": (case(*((_paper.c.evidence_tier == rule.key, index) for index, rule in enumerate(TIER_RULES)),
                      else_=len(TIER_RULES)), *newest),
        "relevance": (relevance.desc().nulls_last(), *newest),
    }
    statement = (select(*_fields(fields), chosen.c.first_seen, all_topics, relevance)
                 .join_from(_paper, chosen, _paper.c.pmid == chosen.c.pmid).order_by(*orders[selection.sort]))
    conditions = _paper_conditions(filters)
    if filters.state is not None:
        conditions.append(_state_in_any(selection))
    return statement.where(*conditions) if conditions else statement


def _indexed_conditions(filters: PaperFilter) -> list[ColumnElement]:
    """The filters on paper columns with an index of their own (as `_narrowed` probes them)."""
    found: list[ColumnElement] = []
    if filters.tier is not None:
        found.append(_paper.c.evidence_tier == filters.tier)
    if filters.retracted:
        found.append(_paper.c.status == "retracted")
    if filters.design is not None:
        found.append(_paper.c.design == filters.design)
    if filters.population is not None:
        found.append(_paper.c.population_bits.in_(_with_population(filters.population)))
    if filters.states_dose:
        found.append(_paper.c.states_dose.is_(True))
    return found


def _paper_conditions(filters: PaperFilter) -> list[ColumnElement]:
    """The filters on paper columns that `_indexed_conditions` leaves to be tested on each selected paper's row."""
    found: list[ColumnElement] = []
    if filters.year_from is not None:
        found.append(_paper.c.pub_year >= filters.year_from)
    if filters.year_to is not None:
        found.append(_paper.c.pub_year <= filters.year_to)
    if filters.late:
        found.append(_paper.c.late_arrival.is_(True))
    if filters.pmids is not None:
        found.append(_paper.c.pmid.in_(list(filters.pmids) or [-1]))
    return found


def _state_in_any(selection: Selection) -> ColumnElement:
    """The paper is in the filter's state in at least one of the selected topics (as the reviewer sees it there)."""
    conditions: list[ColumnElement] = []
    for index, slug in enumerate(selection.topics):
        rule = selection.rules[slug]
        member = _membership.alias(f"m_{index}")
        found = screened(member, member, rule, selection.reviewer, f"_{index}")
        where = [member.c.topic == slug, member.c.pmid == _paper.c.pmid,
                 rule.view_sql(found.summary, found.mine) == selection.filters.state]
        if found.eligible is not None:
            where.append(found.eligible)
        conditions.append(exists(select(member.c.pmid).select_from(found.joined).where(*where)))
    return or_(*conditions)


def select_batches(store: Store, selection: Selection, fields: Sequence[str] | str) -> Iterator[Sequence[Row]]:
    """The selected papers' rows (`fields`, then first_seen, all_topics, relevance) in batches, streamed."""
    statement = _selection(store.dialect, selection, fields)
    with store.connect() as reading:
        yield from reading.execution_options(yield_per=EXPORT_CHUNK).execute(statement).partitions()


def count_selection(store: Store, selection: Selection) -> int:
    statement = _selection(store.dialect, selection, ("pmid",)).order_by(None)
    with store.connect() as connection:
        return connection.execute(select(func.count()).select_from(statement.subquery())).scalar_one()


def rows_of_pmids(store: Store, pmids: Sequence[int], topics: Sequence[str] | None,
                  fields: Sequence[str] | str) -> Iterator[tuple[Row, datetime | None, list[str]]]:
    """(`fields` of the paper, when `topics` (any, when None) first saw it, all its topics) for an explicit list of
    PMIDs, in its order; PMIDs the store lacks are skipped."""
    wanted = set(topics) if topics is not None else None
    columns = _fields(fields)
    with store.connect() as connection:
        for chunk in chunked(list(dict.fromkeys(pmids)), EXPORT_CHUNK):
            rows = {row.pmid: row for row in connection.execute(select(*columns).where(_paper.c.pmid.in_(chunk)))}
            found = memberships(store, chunk)
            for pmid in chunk:
                if pmid not in rows:
                    continue
                member = found.get(pmid, {})
                times = [moment for topic, moment in member.items() if wanted is None or topic in wanted]
                yield rows[pmid], min(times, default=None), sorted(member)


__all__ = ["Screened", "screened", "reached", "count_reached", "SORTS", "UNSCORED", "PaperFilter", "Cursor",
    "ListedRow", "Page", "tier_rank", "list_topic_page", "count_topic_page", "walk_topic", "topic_row", "Selection",
    "ListedPaperRow", "NO_XML", "select_batches", "count_selection", "rows_of_pmids", "count_members", "queue_pmids",
    "queue_by_relevance", "screened_count", "neighbours"]
