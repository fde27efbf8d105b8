"""What digests read from the store: a period's papers for a topic, their other topics, runs, digest records.

Every query is bounded by the period or by the PMIDs it is given, so a week's digest reads a week's rows
whatever the size of the store, and no query touches `paper.xml_gz`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from types import SimpleNamespace
from typing import cast

from sqlalchemy import case, func, select
from sqlmodel import col

from tracker.ncbi.evidence import TIER_RULES
from tracker.ncbi.pubmed import Paper
from tracker.store.database import Store
from tracker.store.models import DigestRecord, PaperRow, Run, TopicPaper
from tracker.store.rows import chunked, row_to_paper
from tracker.text import utcnow

# Everything row_to_paper reads: not the compressed XML, nor the flat abstract (Paper rebuilds it from sections), nor
# the study facts (tracker/store/studyfacts.py reads them).
_PAPER_COLUMNS = tuple(column for column in PaperRow.__table__.columns
                       if column.name not in ("xml_gz", "abstract", "facts"))


def topic_papers_since(store: Store, slug: str, since: datetime | None, until: datetime | None,
                       pmids: Sequence[int] | None = None) -> list[tuple[int, datetime]]:
    """(pmid, first_seen_at) of the papers `slug` first saw in [since, until), oldest first.

    Either bound may be None (open). With `pmids`, only those papers are considered.
    """
    conditions = [col(TopicPaper.topic) == slug]
    if since is not None:
        conditions.append(col(TopicPaper.first_seen_at) >= since)
    if until is not None:
        conditions.append(col(TopicPaper.first_seen_at) < until)
    statement = select(col(TopicPaper.pmid), col(TopicPaper.first_seen_at))
    found: list[tuple[int, datetime]] = []
    with store.session() as session:
        if pmids is None:
            found.extend((pmid, seen) for pmid, seen in session.execute(statement.where(*conditions)))
        else:
            for chunk in chunked(sorted(set(pmids))):
                rows = session.execute(statement.where(*conditions, col(TopicPaper.pmid).in_(chunk)))
                found.extend((pmid, seen) for pmid, seen in rows)
    return sorted(found, key=lambda item: (item[1], item[0]))


def baseline_pmids(store: Store, slug: str, pmids: Sequence[int]) -> set[int]:
    """The papers among `pmids` that `slug` first saw in a backfill (its first run, or one after its query changed):
    the baseline of what the query matched, not news (tracker/outputs/digest.py)."""
    found: set[int] = set()
    with store.session() as session:
        for chunk in chunked(sorted(set(pmids))):
            found.update(session.execute(
                select(col(TopicPaper.pmid)).join(Run, col(Run.id) == col(TopicPaper.run_id))
                .where(col(TopicPaper.topic) == slug, col(Run.kind) == "backfill", col(TopicPaper.pmid).in_(chunk))).scalars())
    return found


def latest_news(store: Store, slug: str, limit: int) -> list[tuple[int, datetime]]:
    """(pmid, first_seen_at) of the `limit` papers `slug` saw last, newest first, leaving out its baseline (the
    papers a backfill stored): what a topic's feed carries. One range scan of (topic, first_seen_at) backwards."""
    backfill = select(col(Run.id)).where(col(Run.kind) == "backfill").scalar_subquery()
    statement = (select(col(TopicPaper.pmid), col(TopicPaper.first_seen_at))
                 .where(col(TopicPaper.topic) == slug,
                        col(TopicPaper.run_id).is_(None) | col(TopicPaper.run_id).not_in(backfill))
                 .order_by(col(TopicPaper.first_seen_at).desc(), col(TopicPaper.pmid).desc()).limit(limit))
    with store.session() as session:
        return [(pmid, seen) for pmid, seen in session.execute(statement)]


def strongest_baseline(store: Store, slug: str, limit: int) -> list[int]:
    """The `limit` papers of `slug`'s baseline (first seen in a backfill) of the strongest evidence tier, newest
    publication first: the few a feed shows for the thousands a first run stores."""
    order = case({rule.key: index for index, rule in enumerate(TIER_RULES)}, value=col(PaperRow.evidence_tier),
                 else_=len(TIER_RULES))
    statement = (select(col(TopicPaper.pmid)).join(Run, col(Run.id) == col(TopicPaper.run_id))
                 .join(PaperRow, col(PaperRow.pmid) == col(TopicPaper.pmid))
                 .where(col(TopicPaper.topic) == slug, col(Run.kind) == "backfill")
                 .order_by(order, col(PaperRow.pub_date).desc().nulls_last(), col(TopicPaper.pmid)).limit(limit))
    with store.session() as session:
        return list(session.execute(statement).scalars())


def load_digest_papers(store: Store, pmids: Sequence[int]) -> dict[int, Paper]:
    """The papers by PMID, without their XML: digests never need it and decompressing it is the slow part."""
    papers: dict[int, Paper] = {}
    with store.session() as session:
        for chunk in chunked(sorted(set(pmids))):
            for row in session.execute(select(*_PAPER_COLUMNS).where(col(PaperRow.pmid).in_(chunk))).mappings():
                # row_to_paper only reads attributes, so a namespace of the selected columns stands in for the row.
                papers[row["pmid"]] = row_to_paper(cast(PaperRow, SimpleNamespace(**row, abstract="", xml_gz=b"")))
    return papers


def latest_run(store: Store, slug: str) -> Run | None:
    """The topic's most recent run, whatever its status (a running one included)."""
    with store.session() as session:
        return session.execute(
            select(Run).where(col(Run.topic) == slug).order_by(col(Run.started_at).desc(), col(Run.id).desc()).limit(1)
        ).scalars().first()


def last_digest(store: Store, slug: str, *, ended_by: datetime | None = None) -> DigestRecord | None:
    """The topic's digest that ended last, optionally only among those that ended at or before `ended_by`."""
    statement = select(DigestRecord).where(col(DigestRecord.topic) == slug)
    if ended_by is not None:
        statement = statement.where(col(DigestRecord.period_end) <= ended_by)
    with store.session() as session:
        return session.execute(
            statement.order_by(col(DigestRecord.period_end).desc(), col(DigestRecord.id).desc()).limit(1)
        ).scalars().first()


def save_digest_record(store: Store, slug: str, *, period_start: datetime | None, period_end: datetime,
                       papers: int, path: str | None) -> DigestRecord:
    """Record a written digest; writing the same file again (a same-day re-run) updates its record."""
    with store.session() as session:
        record = None
        if path is not None:
            record = session.execute(
                select(DigestRecord).where(col(DigestRecord.topic) == slug, col(DigestRecord.path) == path)
                .order_by(col(DigestRecord.id).desc()).limit(1)
            ).scalars().first()
        if record is None:
            record = DigestRecord(topic=slug, period_end=period_end, created_at=utcnow())
        record.period_start, record.period_end, record.papers, record.path = period_start, period_end, papers, path
        record.created_at = utcnow()
        session.add(record)
        session.commit()
        session.refresh(record)
    return record


def monthly_counts(store: Store, slug: str, start: datetime, end: datetime) -> list[tuple[date, int]]:
    """(first day of the month, papers `slug` first saw that month) for each calendar month of [start, end).

    The first and last months are clipped to the period. One COUNT per month over the (topic, first_seen_at)
    index: portable across dialects, and each count is a range scan inside the database, not rows in Python.
    """
    bounds: list[tuple[date, datetime, datetime]] = []
    month = date(start.year, start.month, 1)
    while True:
        month_start = datetime(month.year, month.month, 1, tzinfo=start.tzinfo)
        if month_start >= end:
            break
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        month_end = datetime(following.year, following.month, 1, tzinfo=start.tzinfo)
        bounds.append((month, max(month_start, start), min(month_end, end)))
        month = following
    counts: list[tuple[date, int]] = []
    with store.session() as session:
        for month, low, high in bounds:
            counts.append((month, session.execute(
                select(func.count()).select_from(TopicPaper).where(
                    col(TopicPaper.topic) == slug, col(TopicPaper.first_seen_at) >= low, col(TopicPaper.first_seen_at) < high)
            ).scalar_one()))
    return counts


def monthly_received_counts(store: Store, slug: str, start: date, end: date) -> list[tuple[date, int]]:
    """(first day of the month, papers of `slug` PubMed received that month) for each month from `start`'s to
    `end`'s, by the paper's create date [crdt]: what the literature did, whenever the tracker first saw it."""
    year, month = func.extract("year", col(PaperRow.create_date)), func.extract("month", col(PaperRow.create_date))
    statement = (select(year, month, func.count())
                 .join(TopicPaper, col(TopicPaper.pmid) == col(PaperRow.pmid))
                 .where(col(TopicPaper.topic) == slug, col(PaperRow.create_date) >= start, col(PaperRow.create_date) < end)
                 .group_by(year, month))
    with store.session() as session:
        found = {(int(y), int(m)): count for y, m, count in session.execute(statement)}
    counts: list[tuple[date, int]] = []
    current = date(start.year, start.month, 1)
    while current < end:
        counts.append((current, found.get((current.year, current.month), 0)))
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return counts


__all__ = [
    "monthly_received_counts", "baseline_pmids", "latest_news", "strongest_baseline",
    "topic_papers_since", "load_digest_papers", "latest_run", "last_digest",
    "save_digest_record", "monthly_counts",
]
