"""Screening decisions in the store: the append-only history, each reviewer's current decision, and what they
add up to per topic and paper (tracker/review/screening.py has the rules; this module writes and reads the rows).

A batch of decisions is written in one transaction, so an import stores all its rows or none. Deciding
serialises per paper: SQLite takes its write lock at the start (BEGIN IMMEDIATE), PostgreSQL locks the
paper's `screening` row (created first if missing), so two reviewers deciding the same paper at the same
moment both keep their decision and the summary is computed from both.

Nothing here reads or writes `paper` beyond its key: refetching a paper, the modified-records check, a
migration or `tracker db copy` leave every decision and its history as they were.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from tracker.errors import StoreError
from tracker.store.database import Store
from tracker.store.models import CurrentDecision, Decision, Screening, TopicPaper
from tracker.store.rows import chunked
from tracker.text import utcnow

# Not a decision but a history entry: the reviewer took back their only decision on the paper (an undo in the
# web app). It replaces that decision in the history and leaves the reviewer with no current decision.
WITHDRAWN = "withdraw"

_decision = Decision.__table__
_current = CurrentDecision.__table__
_screening = Screening.__table__
_membership = TopicPaper.__table__
_CURRENT_FIELDS = ("topic", "pmid", "stage", "reviewer", "decision", "reasons", "note", "resolves", "decided_at")
FIRST_STAGE = "title-abstract"  # the stage a decision is at when none is named (tracker/review/states.py Stage)


class StateRule(Protocol):
    """The SQL side of a topic's screening rules (tracker/review/states.py ScreeningRule): the store's listings and
    counts take one, so that no state is spelled out here."""

    @property
    def stage(self) -> str: ...

    def __hash__(self) -> int: ...  # a rule keys the statements built for it (tracker/store/listing.py)

    @property
    def previous(self) -> StateRule | None: ...  # the stage before, whose included papers this stage screens

    def state(self, summary: None) -> str: ...  # a paper with no decision

    def state_sql(self, screening) -> ColumnElement: ...

    def view_sql(self, screening, mine) -> ColumnElement: ...

    def waiting_sql(self, screening, mine) -> ColumnElement: ...


@dataclass(frozen=True)
class NewDecision:
    pmid: int
    reviewer: str
    decision: str  # include, exclude, maybe
    reasons: tuple[str, ...] = ()
    note: str = ""
    resolves: bool = False
    source: str = "cli"
    stage: str = FIRST_STAGE


@dataclass(frozen=True)
class ReviewerDecision:
    """A reviewer's current decision on a paper of a topic (or one entry of its history)."""

    id: int
    topic: str
    pmid: int
    reviewer: str
    decision: str
    reasons: tuple[str, ...]
    note: str
    resolves: bool
    decided_at: datetime
    replaces: int | None = None
    source: str = ""
    stage: str = FIRST_STAGE


@dataclass(frozen=True)
class Saved:
    decision: ReviewerDecision
    replaced: ReviewerDecision | None  # the reviewer's decision this one replaced


@dataclass
class _Summary:
    latest: str | None = None
    latest_reasons: list[str] = field(default_factory=list)
    resolution: str | None = None
    resolution_reasons: list[str] = field(default_factory=list)
    votes: int = 0
    agreed: str | None = None
    agreed_reasons: list[str] = field(default_factory=list)
    votes_by: dict[str, str] = field(default_factory=dict)
    vote_reasons: dict[str, list[str]] = field(default_factory=dict)


def summarise(current: Sequence[ReviewerDecision]) -> _Summary:
    """What the current decisions on one paper add up to, whatever the topic's mode (see models.Screening)."""
    ordered = sorted(current, key=lambda d: (d.decided_at, d.id))
    summary = _Summary()
    if not ordered:
        return summary
    summary.latest, summary.latest_reasons = ordered[-1].decision, list(ordered[-1].reasons)
    resolutions = [d for d in ordered if d.resolves]
    if resolutions:
        summary.resolution, summary.resolution_reasons = resolutions[-1].decision, list(resolutions[-1].reasons)
    votes = [d for d in ordered if not d.resolves]
    summary.votes = len(votes)
    summary.votes_by = {d.reviewer: d.decision for d in votes}
    summary.vote_reasons = {d.reviewer: list(d.reasons) for d in votes}
    kinds = {d.decision for d in votes}
    if len(kinds) == 1:
        summary.agreed = kinds.pop()
        summary.agreed_reasons = list(dict.fromkeys(reason for d in votes for reason in d.reasons))
    return summary


def save_decisions(store: Store, topic: str, decisions: Sequence[NewDecision], *,
                   now: datetime | None = None, check: Callable[[Connection], None] | None = None) -> list[Saved]:
    """Record `decisions` for `topic` in one transaction (all or none); returns each with what it replaced.
    `check(connection)`, when given, runs first inside the transaction, after the papers are locked, and may raise
    to record nothing (a rule that depends on what is stored, such as blind review's undo)."""
    if not decisions:
        return []
    now = now or utcnow()
    saved: list[Saved] = []
    with store.engine.begin() as connection:
        if store.dialect == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        touched = sorted({(d.pmid, d.stage) for d in decisions})
        if store.dialect == "postgresql":
            _lock_papers(store, connection, topic, touched, now)
        if check is not None:
            check(connection)
        for new in decisions:
            previous = _current_of(connection, topic, new.pmid, new.stage, new.reviewer)
            replaces = previous.id if previous else None
            row = {"topic": topic, "pmid": new.pmid, "stage": new.stage, "reviewer": new.reviewer,
                   "decision": new.decision, "reasons": list(new.reasons), "note": new.note, "resolves": new.resolves,
                   "replaces": replaces, "source": new.source, "decided_at": now}
            inserted = connection.execute(_decision.insert().values(**row)).inserted_primary_key
            if inserted is None:
                raise StoreError("the database reported no id for a new screening decision: nothing was saved")
            decision_id = inserted[0]
            if new.decision == WITHDRAWN:
                connection.execute(_current.delete().where(_current.c.topic == topic, _current.c.pmid == new.pmid,
                                                           _current.c.stage == new.stage,
                                                           _current.c.reviewer == new.reviewer))
            else:
                store.upsert(connection, _current,
                             [{key: row[key] for key in _CURRENT_FIELDS} | {"decision_id": decision_id}],
                             ["topic", "pmid", "stage", "reviewer"])
            given = ReviewerDecision(id=decision_id, topic=topic, pmid=new.pmid, reviewer=new.reviewer,
                                     decision=new.decision, reasons=tuple(new.reasons), note=new.note,
                                     resolves=new.resolves, decided_at=now, replaces=replaces, source=new.source,
                                     stage=new.stage)
            saved.append(Saved(given, previous))
        for pmid, stage in touched:
            _save_summary(store, connection, topic, pmid, stage, now)
    return saved


def _lock_papers(store: Store, connection: Connection, topic: str, keys: Sequence[tuple[int, str]],
                 now: datetime) -> None:
    """PostgreSQL: hold each paper's screening row at each stage (made if missing) until commit, in key order (no
    deadlock)."""
    store.upsert(connection, _screening, [{"topic": topic, "pmid": pmid, "stage": stage, "latest_reasons": [],
                                          "resolution_reasons": [], "agreed_reasons": [], "votes": 0, "votes_by": {},
                                          "vote_reasons": {}, "updated_at": now} for pmid, stage in keys],
                 ["topic", "pmid", "stage"], update=False)
    for stage in sorted({stage for _, stage in keys}):
        for chunk in chunked(sorted(pmid for pmid, at in keys if at == stage)):
            connection.execute(select(_screening.c.pmid).where(_screening.c.topic == topic, _screening.c.stage == stage,
                                                               _screening.c.pmid.in_(chunk))
                               .order_by(_screening.c.pmid).with_for_update())


def _current_of(connection: Connection, topic: str, pmid: int, stage: str, reviewer: str) -> ReviewerDecision | None:
    row = connection.execute(select(_current).where(_current.c.topic == topic, _current.c.pmid == pmid,
                                                    _current.c.stage == stage, _current.c.reviewer == reviewer)
                             ).mappings().first()
    return _current_view(row) if row else None


def _save_summary(store: Store, connection: Connection, topic: str, pmid: int, stage: str, now: datetime) -> None:
    rows = connection.execute(select(_current).where(_current.c.topic == topic, _current.c.pmid == pmid,
                                                     _current.c.stage == stage)).mappings()
    summary = summarise([_current_view(row) for row in rows])
    store.upsert(connection, _screening, [{"topic": topic, "pmid": pmid, "stage": stage, **vars(summary),
                                           "updated_at": now}], ["topic", "pmid", "stage"])


def current_decision_id(connection: Connection, topic: str, pmid: int, stage: str, reviewer: str) -> int | None:
    """The id of `reviewer`'s current decision on the paper at `stage`, read inside the caller's transaction."""
    return connection.execute(select(_current.c.decision_id).where(
        _current.c.topic == topic, _current.c.pmid == pmid, _current.c.stage == stage,
        _current.c.reviewer == reviewer)).scalar_one_or_none()


def summary_in(connection: Connection, topic: str, pmid: int, stage: str) -> Screening | None:
    """The paper's `screening` row at `stage`, read inside the caller's transaction."""
    row = connection.execute(select(_screening).where(_screening.c.topic == topic, _screening.c.pmid == pmid,
                                                      _screening.c.stage == stage)).mappings().first()
    return Screening(**row) if row else None


def decided_since(store: Store, topic: str, reviewer: str, since: datetime, *, stage: str = FIRST_STAGE) -> list[int]:
    """The papers `reviewer` has decided in `topic` at `stage` from `since` on (undos and withdrawals left out), each
    once, in the order of their latest such decision."""
    latest = func.max(_decision.c.id).label("latest")
    statement = (select(_decision.c.pmid, latest)
                 .where(_decision.c.topic == topic, _decision.c.reviewer == reviewer, _decision.c.stage == stage,
                        _decision.c.decided_at >= since, _decision.c.decision != WITHDRAWN,
                        _decision.c.source.not_like("%-undo"))
                 .group_by(_decision.c.pmid).order_by(latest))
    with store.connect() as connection:
        return [pmid for pmid, _ in connection.execute(statement)]


def latest_decision_id(store: Store, topic: str) -> int:
    """The id of the topic's newest decision (0 without any): it changes whenever a decision is given."""
    with store.connect() as connection:
        return connection.execute(_LATEST_DECISION, {"topic": topic}).scalar() or 0


_LATEST_DECISION = select(func.max(_decision.c.id)).where(_decision.c.topic == bindparam("topic"))


def decision_order(store: Store, topic: str, *, stage: str = FIRST_STAGE) -> list[int]:
    """The topic's papers that have a decision at `stage`, in the order they were first decided."""
    first = func.min(_decision.c.id).label("first")
    statement = (select(_decision.c.pmid, first).where(_decision.c.topic == topic, _decision.c.stage == stage,
                                                       _decision.c.decision != WITHDRAWN)
                 .group_by(_decision.c.pmid).order_by(first))
    with store.connect() as connection:
        return [pmid for pmid, _ in connection.execute(statement)]


def first_reviewers(store: Store, topic: str, count: int, *, stage: str = FIRST_STAGE) -> tuple[str, ...]:
    """The first `count` people to have voted on a paper of `topic` at `stage` (a resolution is not a vote), in the
    order of their first vote."""
    first = func.min(_decision.c.id).label("first")
    statement = (select(_decision.c.reviewer, first)
                 .where(_decision.c.topic == topic, _decision.c.stage == stage, _decision.c.resolves.is_(False),
                        _decision.c.decision != WITHDRAWN)
                 .group_by(_decision.c.reviewer).order_by(first).limit(count))
    with store.connect() as connection:
        return tuple(reviewer for reviewer, _ in connection.execute(statement))


def _current_view(row) -> ReviewerDecision:
    return ReviewerDecision(id=row["decision_id"], topic=row["topic"], pmid=row["pmid"], reviewer=row["reviewer"],
                            decision=row["decision"], reasons=tuple(row["reasons"] or ()), note=row["note"] or "",
                            resolves=bool(row["resolves"]), decided_at=row["decided_at"], stage=row["stage"])


# -- reading ---------------------------------------------------------------------------------

def summaries(store: Store, topic: str, pmids: Iterable[int] | None = None, *,
              stage: str = FIRST_STAGE) -> dict[int, Screening]:
    """The `screening` rows of `topic` at `stage` (of `pmids`, or all), by PMID."""
    found: dict[int, Screening] = {}
    at = {"topic": topic, "stage": stage}
    with store.session() as session:
        if pmids is None:
            found.update((row.pmid, row) for row in session.execute(_SUMMARIES, at).scalars())
        else:
            for chunk in chunked(sorted(set(pmids))):
                found.update((row.pmid, row) for row in session.execute(_SUMMARIES_OF, at | {"pmids": chunk}).scalars())
    return found


# Built once: the screening page reads its paper's summary on every request.
_SUMMARIES = select(Screening).where(col(Screening.topic) == bindparam("topic"), col(Screening.stage) == bindparam("stage"))
_SUMMARIES_OF = _SUMMARIES.where(col(Screening.pmid).in_(bindparam("pmids", expanding=True)))


def summaries_of(store: Store, topics: Sequence[str], pmids: Iterable[int], *,
                 stage: str = FIRST_STAGE) -> dict[tuple[str, int], Screening]:
    """The `screening` rows of `pmids` in `topics` at `stage`, by (topic, pmid)."""
    found: dict[tuple[str, int], Screening] = {}
    with store.session() as session:
        for chunk in chunked(sorted(set(pmids))):
            found.update(((row.topic, row.pmid), row) for row in session.execute(
                select(Screening).where(col(Screening.topic).in_(list(topics)), col(Screening.stage) == stage,
                                        col(Screening.pmid).in_(chunk))).scalars())
    return found


def current_decisions(store: Store, topics: Sequence[str], pmids: Iterable[int], *,
                      stage: str = FIRST_STAGE) -> dict[tuple[str, int], list[ReviewerDecision]]:
    """Every reviewer's current decision on `pmids` in `topics` at `stage`, by (topic, pmid), oldest first."""
    found: dict[tuple[str, int], list[ReviewerDecision]] = defaultdict(list)
    with store.connect() as connection:
        for chunk in chunked(sorted(set(pmids))):
            rows = connection.execute(_CURRENT_OF, {"topics": list(topics), "stage": stage, "pmids": chunk}).mappings()
            for row in rows:
                found[(row["topic"], row["pmid"])].append(_current_view(row))
    return dict(found)


_CURRENT_OF = (select(_current).where(_current.c.topic.in_(bindparam("topics", expanding=True)),
                                      _current.c.stage == bindparam("stage"),
                                      _current.c.pmid.in_(bindparam("pmids", expanding=True)))
               .order_by(_current.c.decided_at, _current.c.decision_id))


def decision_history(store: Store, pmid: int, topics: Sequence[str] | None = None) -> list[ReviewerDecision]:
    """Every decision ever given on `pmid` (in `topics`, or any), oldest first: who, what, when, what it replaced."""
    statement = select(_decision).where(_decision.c.pmid == pmid).order_by(_decision.c.decided_at, _decision.c.id)
    if topics is not None:
        statement = statement.where(_decision.c.topic.in_(list(topics)))
    with store.connect() as connection:
        return [_history_view(row) for row in connection.execute(statement).mappings()]


def state_counts(store: Store, topic: str, rule: StateRule, member_pmids=None, *,
                 members: int | None = None, viewer: str | None = None) -> dict[str, int]:
    """How many of the topic's papers are in each state at the rule's stage that has any (`rule.state(None)` counts
    the papers no one has decided), as `viewer` may see them (blind screening); `member_pmids` is a select of the
    papers counted.

    Without `member_pmids` the count reads the topic's decisions, not its papers: the states of the papers
    with a `screening` row, and every other member undecided (`members`, the topic's paper count, when the
    caller has it; else an index-only count), so a topic of 100,000 papers costs what its decisions cost."""
    undecided = str(rule.state(None))
    if member_pmids is None:
        with store.connect() as connection:
            counts: dict[str, int] = dict(connection.execute(_decided_counts(rule, viewer is not None),
                                                             {"topic": topic, "viewer": viewer}).all())
            total = members if members is not None else connection.execute(_MEMBERS, {"topic": topic}).scalar_one()
        counts[undecided] = total - sum(count for name, count in counts.items() if name != undecided)
        return {name: count for name, count in counts.items() if count}
    joined = _membership.outerjoin(_screening, and_(_screening.c.topic == _membership.c.topic,
                                                    _screening.c.pmid == _membership.c.pmid,
                                                    _screening.c.stage == rule.stage))
    mine = None
    if viewer is not None:
        mine = _current.alias("mine")
        joined = joined.outerjoin(mine, and_(mine.c.topic == _membership.c.topic, mine.c.pmid == _membership.c.pmid,
                                             mine.c.stage == rule.stage, mine.c.reviewer == viewer))
    state = rule.view_sql(_screening, mine).label("state")
    statement = (select(state, func.count()).select_from(joined)
                 .where(_membership.c.topic == topic, _membership.c.pmid.in_(member_pmids)).group_by(state))
    with store.connect() as connection:
        return {name: count for name, count in connection.execute(statement).all() if count}


# The counts' statement is built once per rule: the Topics page counts every topic's states on each request.
@lru_cache(maxsize=64)
def _decided_counts(rule: StateRule, viewing: bool):
    """The states of the topic's papers that have a `screening` row at the rule's stage, counted; `viewing`: as the
    reviewer bound as `viewer` may see them."""
    joined = _screening.join(_membership, and_(_membership.c.topic == _screening.c.topic,
                                               _membership.c.pmid == _screening.c.pmid))
    mine = None
    if viewing:
        mine = _current.alias("mine")
        joined = joined.outerjoin(mine, and_(mine.c.topic == _screening.c.topic, mine.c.pmid == _screening.c.pmid,
                                             mine.c.stage == rule.stage, mine.c.reviewer == bindparam("viewer")))
    state = rule.view_sql(_screening, mine).label("state")
    return (select(state, func.count()).select_from(joined)
            .where(_screening.c.topic == bindparam("topic"), _screening.c.stage == rule.stage).group_by(state))


_MEMBERS = select(func.count()).select_from(_membership).where(_membership.c.topic == bindparam("topic"))


def current_from(store: Store, topic: str, reviewer: str, sources: Sequence[str], *,
                 stage: str = FIRST_STAGE) -> list[ReviewerDecision]:
    """`reviewer`'s current decisions in `topic` at `stage` that were given from one of `sources`."""
    statement = (select(_decision).join(_current, _current.c.decision_id == _decision.c.id)
                 .where(_decision.c.topic == topic, _decision.c.reviewer == reviewer, _decision.c.stage == stage,
                        _decision.c.source.in_(list(sources))))
    with store.connect() as connection:
        return [_history_view(row) for row in connection.execute(statement).mappings()]


def decision_by_id(store: Store, decision_id: int) -> ReviewerDecision | None:
    with store.connect() as connection:
        row = connection.execute(select(_decision).where(_decision.c.id == decision_id)).mappings().first()
    return _history_view(row) if row else None


def _history_view(row) -> ReviewerDecision:
    return ReviewerDecision(id=row["id"], topic=row["topic"], pmid=row["pmid"], reviewer=row["reviewer"],
                            decision=row["decision"], reasons=tuple(row["reasons"] or ()), note=row["note"] or "",
                            resolves=bool(row["resolves"]), decided_at=row["decided_at"], replaces=row["replaces"],
                            source=row["source"], stage=row["stage"])


__all__ = [
    "latest_decision_id",
    "WITHDRAWN", "FIRST_STAGE", "StateRule", "NewDecision", "ReviewerDecision", "Saved", "save_decisions", "summarise",
    "summaries", "summaries_of", "current_decisions", "decision_history", "state_counts", "current_from",
    "decision_by_id", "decided_since", "decision_order", "current_decision_id", "summary_in", "first_reviewers",
]
