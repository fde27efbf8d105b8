"""What tracker/runs/watch.py reads and writes: the modified-records watermark, refreshed papers, status events,
the events a recipient has not been told, and the runs that query health is judged on.

A refreshed paper, its previous record (when the refresh brought events) and its events commit together,
so an event is never recorded for a record the store does not hold, nor lost for one it does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, exists, func, select, update
from sqlmodel import Session, col

from tracker.facts import StudyFacts
from tracker.ncbi.notices import KIND_LABELS, Notice
from tracker.ncbi.pubmed import CommentCorrection, Paper
from tracker.store.database import Store
from tracker.store.membership import memberships
from tracker.store.models import (
    ChangeCheck,
    EventDelivery,
    PaperRevision,
    PaperRow,
    Run,
    StatusEvent,
    TopicPaper,
)
from tracker.store.papers import save_search_index
from tracker.store.rows import chunked, paper_to_row
from tracker.text import pubmed_url, utcnow

INCLUDED_ALERTS = {
    "retraction": "was retracted", "concern": "has an expression of concern", "erratum": "has an erratum",
    "update": "has an updated version", "republication": "was corrected and republished",
    "deleted": "was removed from PubMed",
}

# -- the modified-records watermark ----------------------------------------------------------

def checked_through(store: Store, topic: str) -> date | None:
    """The day up to which the topic's modified records were checked (None: never)."""
    with store.session() as session:
        statement = select(col(ChangeCheck.checked_through)).where(col(ChangeCheck.topic) == topic)
        return session.execute(statement).scalar_one_or_none()


def save_checked_through(store: Store, topic: str, day: date, run_id: int | None) -> None:
    with store.session() as session:
        session.merge(ChangeCheck(topic=topic, checked_through=day, run_id=run_id, updated_at=utcnow()))
        session.commit()


# -- refreshing stored papers ----------------------------------------------------------------

def last_fetched(store: Store, pmids: Sequence[int]) -> dict[int, datetime]:
    """When each stored paper among `pmids` was last written (its row's updated_at): fetched, refreshed, or marked
    deleted because efetch no longer returned it."""
    found: dict[int, datetime] = {}
    with store.session() as session:
        for chunk in chunked(list(pmids)):
            found.update(session.execute(
                select(col(PaperRow.pmid), col(PaperRow.updated_at)).where(col(PaperRow.pmid).in_(chunk))).all())
    return found


def stored_notice_fields(store: Store, pmids: Sequence[int]) -> dict[int, Paper]:
    """The stored papers as far as their notices go (publication types, comments and corrections)."""
    found: dict[int, Paper] = {}
    columns = (col(PaperRow.pmid), col(PaperRow.kind), col(PaperRow.title), col(PaperRow.publication_types),
               col(PaperRow.comments_corrections))
    with store.session() as session:
        for chunk in chunked(list(pmids)):
            for pmid, kind, title, types, corrections in session.execute(
                    select(*columns).where(col(PaperRow.pmid).in_(chunk))):
                found[pmid] = Paper(pmid=pmid, kind=kind, title=title, publication_types=tuple(types),
                                    comments_corrections=tuple(CommentCorrection(**c) for c in corrections))
    return found


def save_refreshed(store: Store, refreshed: Sequence[tuple[Paper, Sequence[Notice]]], *,
                   run_id: int | None, facts: Mapping[int, StudyFacts] | None = None) -> list[StatusEvent]:
    """Replace stored papers with their refetched records and record their new notices, in one transaction. Their
    study facts and evidence tier are read again (those in `facts` were read on the fetching thread): publication
    types NLM added since replace a tier read from the abstract.

    A paper whose refresh brought notices keeps its previous record in `paper_revision`.
    Returns the events recorded (a notice already recorded for the paper is not recorded twice).
    """
    if not refreshed:
        return []
    now = utcnow()
    papers = [paper for paper, _ in refreshed]
    changed = [paper.pmid for paper, notices in refreshed if notices]
    with store.session() as session:
        previous: dict[int, bytes] = {}
        for chunk in chunked(changed):
            previous.update(session.execute(
                select(col(PaperRow.pmid), col(PaperRow.xml_gz)).where(col(PaperRow.pmid).in_(chunk))).all())
        given = facts or {}
        store.upsert(session, PaperRow.__table__, [paper_to_row(paper, now, given.get(paper.pmid)) for paper in papers],
                     ["pmid"])
        save_search_index(store, session, papers)
        for pmid in changed:
            session.add(PaperRevision(pmid=pmid, xml_gz=previous.get(pmid, b""), replaced_at=now, run_id=run_id))
        events = [_record_event(session, paper.pmid, notice.kind, notice.notice_pmid, notice.detail, now, run_id)
                  for paper, notices in refreshed for notice in notices]
        session.commit()
    return [event for event in events if event is not None]


def mark_deleted(store: Store, removals: dict[int, tuple[int | None, str]], *, run_id: int | None) -> list[StatusEvent]:
    """Mark papers PubMed no longer returns as deleted: {pmid: (PMID that replaced it or None, detail)}."""
    if not removals:
        return []
    now = utcnow()
    with store.session() as session:
        for chunk in chunked(list(removals)):
            session.execute(update(PaperRow).where(col(PaperRow.pmid).in_(chunk)).values(status="deleted", updated_at=now))
        events = [_record_event(session, pmid, "deleted", replacement, detail, now, run_id)
                  for pmid, (replacement, detail) in removals.items()]
        session.commit()
    return [event for event in events if event is not None]


def _record_event(session: Session, pmid: int, kind: str, notice_pmid: int | None, detail: str, now: datetime,
                  run_id: int | None) -> StatusEvent | None:
    # SQLite's UNIQUE treats NULLs as distinct, so a notice without a PMID is deduplicated here.
    same_notice = col(StatusEvent.notice_pmid).is_(None) if notice_pmid is None else col(StatusEvent.notice_pmid) == notice_pmid
    known = session.execute(select(col(StatusEvent.id)).where(col(StatusEvent.pmid) == pmid, col(StatusEvent.kind) == kind,
                                                         same_notice)).first()
    if known is not None:
        return None
    event = StatusEvent(pmid=pmid, kind=kind, notice_pmid=notice_pmid, detail=detail, detected_at=now, run_id=run_id)
    session.add(event)
    session.flush()
    return event


# -- reading events --------------------------------------------------------------------------

@dataclass(frozen=True)
class EventView:
    """A status event with what a reader needs beside it: the paper's title, status and topics."""

    id: int
    pmid: int
    kind: str
    notice_pmid: int | None
    detail: str
    detected_at: datetime
    title: str
    status: str | None
    topics: tuple[str, ...]
    included_in: tuple[str, ...] = ()  # the topics whose screening included the paper (tracker/review/screening.py)

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def included_alert(self) -> str | None:
        """"an included paper was retracted" (and the like), for an event on a paper a topic has included."""
        if not self.included_in:
            return None
        return f"an included paper {INCLUDED_ALERTS.get(self.kind, 'changed')} ({', '.join(self.included_in)})"

    @property
    def url(self) -> str:
        return pubmed_url(self.pmid)

    @property
    def notice_url(self) -> str | None:
        return pubmed_url(self.notice_pmid) if self.notice_pmid else None


# Plain rows, not ORM instances, and for the screening and paper pages (their paper's events, on every request) a
# statement built once.
_EVENTS = (select(StatusEvent.__table__, PaperRow.__table__.c.title.label("paper_title"),
                  PaperRow.__table__.c.status.label("paper_status"))
           .join(PaperRow.__table__, PaperRow.__table__.c.pmid == StatusEvent.__table__.c.pmid)
           .order_by(StatusEvent.__table__.c.detected_at, StatusEvent.__table__.c.id))
_EVENTS_OF_PMIDS = _EVENTS.where(StatusEvent.__table__.c.pmid.in_(bindparam("pmids", expanding=True)))


def list_events(store: Store, *, since: datetime | None = None, until: datetime | None = None,
                topics: Sequence[str] | None = None, ids: Sequence[int] | None = None,
                pmids: Sequence[int] | None = None) -> list[EventView]:
    """Events detected in [since, until) on papers of `topics` (any paper when None; only `pmids` when given),
    oldest first."""
    event = StatusEvent.__table__
    values: dict = {}
    if (since, until, topics, ids) == (None, None, None, None) and pmids is not None:
        statement, values = _EVENTS_OF_PMIDS, {"pmids": list(pmids)}
    else:
        statement = _EVENTS
        if since is not None:
            statement = statement.where(event.c.detected_at >= since)
        if until is not None:
            statement = statement.where(event.c.detected_at < until)
        if topics is not None:
            statement = statement.where(exists().where(col(TopicPaper.pmid) == event.c.pmid,
                                                       col(TopicPaper.topic).in_(list(topics))))
        if ids is not None:
            statement = statement.where(event.c.id.in_(list(ids)))
        if pmids is not None:
            statement = statement.where(event.c.pmid.in_(list(pmids)))
    with store.connect() as connection:
        rows = connection.execute(statement, values).all()
    topics_of = memberships(store, {row.pmid for row in rows})
    return [EventView(id=row.id, pmid=row.pmid, kind=row.kind, notice_pmid=row.notice_pmid, detail=row.detail,
                      detected_at=row.detected_at, title=row.paper_title, status=row.paper_status,
                      topics=tuple(topics_of.get(row.pmid, ())))
            for row in rows]


def untold_events(store: Store, recipient: str, topics: Sequence[str], *, since: datetime) -> list[int]:
    """Ids of events detected from `since` on, on papers of `topics`, that `recipient` has not been told."""
    if not topics:
        return []
    told = exists().where(col(EventDelivery.recipient) == recipient, col(EventDelivery.event_id) == col(StatusEvent.id))
    member = exists().where(col(TopicPaper.pmid) == col(StatusEvent.pmid), col(TopicPaper.topic).in_(list(topics)))
    statement = (select(col(StatusEvent.id)).where(col(StatusEvent.detected_at) >= since, member, ~told)
                 .order_by(col(StatusEvent.detected_at), col(StatusEvent.id)))
    with store.session() as session:
        return list(session.execute(statement).scalars())


def told_events(store: Store, recipient: str) -> set[int]:
    with store.session() as session:
        statement = select(col(EventDelivery.event_id)).where(col(EventDelivery.recipient) == recipient)
        return set(session.execute(statement).scalars())


def paper_statuses(store: Store, pmids: Sequence[int]) -> dict[int, str]:
    """The status of each paper that has one (retracted, concern, deleted)."""
    found: dict[int, str] = {}
    with store.session() as session:
        for chunk in chunked(sorted(set(pmids))):
            found.update(session.execute(select(col(PaperRow.pmid), col(PaperRow.status)).where(
                col(PaperRow.pmid).in_(chunk), col(PaperRow.status).is_not(None))).all())
    return found


# -- what query health is judged on ----------------------------------------------------------

def measured_runs(store: Store, topics: Sequence[str], *, per_topic: int = 30) -> dict[str, list[Run]]:
    """Each topic's latest succeeded runs that measured the query's total Count, newest first."""
    found: dict[str, list[Run]] = {}
    with store.session() as session:
        for topic in topics:
            found[topic] = list(session.execute(
                select(Run).where(col(Run.topic) == topic, col(Run.status) == "succeeded", col(Run.total_count).is_not(None))
                .order_by(col(Run.id).desc()).limit(per_topic)).scalars())
    return found


def last_new_paper(store: Store, topics: Sequence[str]) -> dict[str, datetime]:
    """When each topic last saw a paper new to it."""
    # One indexed max() per topic reads a single entry of ix_topic_paper_topic_seen; a GROUP BY over the
    # topics scans every membership row (210 ms of a digest on a million papers, BENCHMARKS.md).
    found: dict[str, datetime] = {}
    with store.session() as session:
        for topic in dict.fromkeys(topics):
            latest = session.execute(select(func.max(TopicPaper.first_seen_at))
                                     .where(col(TopicPaper.topic) == topic)).scalar()
            if latest is not None:
                found[topic] = latest
    return found


def first_success(store: Store, topics: Sequence[str]) -> dict[str, datetime]:
    """When each topic's first succeeded run started: a topic that never found a paper is quiet since then."""
    with store.session() as session:
        return dict(session.execute(select(col(Run.topic), func.min(col(Run.started_at)))
                                    .where(col(Run.topic).in_(list(topics)), col(Run.status) == "succeeded")
                                    .group_by(Run.topic)).all())


__all__ = [
    "checked_through", "save_checked_through", "stored_notice_fields", "save_refreshed", "mark_deleted", "EventView",
    "list_events", "untold_events", "told_events", "paper_statuses", "measured_runs", "last_new_paper",
    "first_success",
]
