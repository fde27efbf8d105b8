"""Topic membership: which topics hold which papers, linking papers to a topic, and the counts every page shows.

A paper joins a topic once (`topic_paper`, keyed by topic and PMID, with when the topic first saw it, the run that
brought it and its source: the topic's query, a suggestion the reader added, an import, or a paper added by PMID);
memberships are only ever added, and a paper that joins again keeps its first source.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from tracker.store.database import Store
from tracker.store.models import TopicPaper
from tracker.store.rows import chunked
from tracker.store.schema import search_changes
from tracker.text import utcnow

_membership = TopicPaper.__table__

QUERY, SUGGESTION, IMPORT, MANUAL = "query", "suggestion", "import", "manual"
SOURCES = (QUERY, SUGGESTION, IMPORT, MANUAL)


def memberships(store: Store, pmids: Iterable[int]) -> dict[int, dict[str, datetime]]:
    """Every topic each of `pmids` belongs to (in slug order), with when that topic first saw it; papers in no
    topic are absent."""
    found: dict[int, dict[str, datetime]] = {}
    with store.connect() as connection:
        for chunk in chunked(sorted(set(pmids))):
            rows = connection.execute(select(_membership.c.pmid, _membership.c.topic, _membership.c.first_seen_at)
                                      .where(_membership.c.pmid.in_(chunk)).order_by(_membership.c.topic))
            for pmid, topic, seen in rows:
                found.setdefault(pmid, {})[topic] = seen
    return found


def other_topics_for(store: Store, pmids: Sequence[int], *, exclude: str | None = None) -> dict[int, list[str]]:
    """Each paper's topics (sorted), leaving out `exclude`; papers in no other topic are absent."""
    return {pmid: others for pmid, topics in memberships(store, pmids).items()
            if (others := [topic for topic in topics if topic != exclude])}


def topic_members(store: Store, topic: str, *, since: datetime | None = None) -> list[int]:
    """The PMIDs of `topic` (those it first saw at `since` or later)."""
    statement = select(_membership.c.pmid).where(_membership.c.topic == topic)
    if since is not None:
        statement = statement.where(_membership.c.first_seen_at >= since)
    with store.connect() as connection:
        return list(connection.execute(statement).scalars())


def shared_since(store: Store, topic: str, since: datetime) -> int:
    """Papers `topic` first saw at `since` or later that another topic holds too."""
    other = _membership.alias("other")
    members = select(_membership.c.pmid).where(_membership.c.topic == topic, _membership.c.first_seen_at >= since)
    with store.connect() as connection:
        return connection.execute(select(func.count(func.distinct(other.c.pmid)))
                                  .where(other.c.topic != topic, other.c.pmid.in_(members))).scalar_one()


def first_seen(store: Store, topic: str, pmid: int) -> datetime | None:
    """When `topic` first saw `pmid`; None when the paper is not in the topic."""
    with store.connect() as connection:
        return connection.execute(select(_membership.c.first_seen_at).where(
            _membership.c.topic == topic, _membership.c.pmid == pmid)).scalar_one_or_none()


def topic_pmids(store: Store, topic: str, pmids: Sequence[int] | None = None) -> set[int]:
    with store.session() as session:
        if pmids is None:
            return set(session.execute(select(col(TopicPaper.pmid)).where(col(TopicPaper.topic) == topic)).scalars())
        found: set[int] = set()
        for chunk in chunked(list(pmids)):
            found.update(session.execute(
                select(col(TopicPaper.pmid)).where(col(TopicPaper.topic) == topic, col(TopicPaper.pmid).in_(chunk))
            ).scalars())
        return found


def link_members(store: Store, session: Session, topic: str, pmids: Iterable[int], run_id: int | None, now: datetime,
                 *, source: str = QUERY) -> int:
    """Add topic membership for `pmids`, from `source`; returns how many were new to the topic."""
    if source not in SOURCES:
        raise ValueError(f"unknown membership source {source!r}: use one of {', '.join(SOURCES)}")
    pmids = list(dict.fromkeys(pmids))
    if not pmids:
        return 0
    existing: set[int] = set()
    for chunk in chunked(pmids):
        existing.update(session.execute(
            select(col(TopicPaper.pmid)).where(col(TopicPaper.topic) == topic, col(TopicPaper.pmid).in_(chunk))
        ).scalars())
    rows = [{"topic": topic, "pmid": p, "first_seen_at": now, "run_id": run_id, "source": source}
            for p in pmids if p not in existing]
    store.upsert(session, TopicPaper.__table__, rows, ["topic", "pmid"], update=False)
    return len(rows)


def link_papers(store: Store, topic: str, pmids: Sequence[int], run_id: int | None = None, *,
                source: str = QUERY) -> int:
    """Link papers the store already holds to `topic`; returns how many were new to the topic."""
    with store.session() as session:
        linked = link_members(store, session, topic, pmids, run_id, utcnow(), source=source)
        session.commit()
    return linked


def member_sources(store: Store, topic: str, pmids: Sequence[int]) -> dict[int, str]:
    """How each of `pmids` that `topic` holds came into it (papers not in the topic are absent)."""
    found: dict[int, str] = {}
    with store.connect() as connection:
        for chunk in chunked(list(dict.fromkeys(pmids))):
            found.update((pmid, source) for pmid, source in connection.execute(select(
                _membership.c.pmid, _membership.c.source).where(_membership.c.topic == topic, _membership.c.pmid.in_(chunk))))
    return found


def members_from(store: Store, topic: str, sources: Sequence[str]) -> list[int]:
    """The PMIDs of `topic` that came in from one of `sources`."""
    with store.connect() as connection:
        return list(connection.execute(select(_membership.c.pmid).where(
            _membership.c.topic == topic, _membership.c.source.in_(list(sources)))).scalars())


def count_topic_papers(store: Store) -> dict[str, int]:

    with store.session() as session:
        return dict(session.execute(select(col(TopicPaper.topic), func.count()).group_by(col(TopicPaper.topic))).all())


_figures: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


_figures_lock = threading.Lock()


def _kept(store: Store, key: tuple, compute) -> int:
    # What says the memberships changed: on SQLite the highest rowid (they are only ever added), on PostgreSQL the
    # search index's change log, one row per transaction that changed them or the index.
    if store.dialect not in ("sqlite", "postgresql"):
        return compute()
    with store.connect() as connection:
        version = (connection.exec_driver_sql("SELECT max(rowid) FROM topic_paper").scalar_one()
                   if store.dialect == "sqlite" else search_changes(connection))
    with _figures_lock:
        kept = _figures.setdefault(store, {})
        if kept.get("version") != version:
            kept.clear()
            kept["version"] = version
        if key in kept:
            return kept[key]
    value = compute()
    with _figures_lock:
        if _figures[store].get("version") == version:
            _figures[store][key] = value
    return value


def member_counts(store: Store, slugs: Sequence[str]) -> dict[str, int]:
    """Papers in each of `slugs` (`count_topic_papers` for these topics), recounted only after new memberships."""

    def count(slug: str) -> int:
        with store.connect() as connection:
            return connection.execute(select(func.count()).select_from(TopicPaper)
                                      .where(col(TopicPaper.topic) == slug)).scalar_one()

    return {slug: _kept(store, ("members", slug), lambda slug=slug: count(slug)) for slug in slugs}


def shared_count(store: Store, slug: str) -> int:
    """Papers of `slug` that another topic holds too (PRISMA's "from other topics")."""

    other = TopicPaper.__table__.alias("other")
    members = select(col(TopicPaper.pmid)).where(col(TopicPaper.topic) == slug)

    def count() -> int:
        with store.connect() as connection:
            return connection.execute(select(func.count(func.distinct(other.c.pmid)))
                                      .where(other.c.topic != slug, other.c.pmid.in_(members))).scalar_one()

    return _kept(store, ("shared", slug), count)


__all__ = ["memberships", "topic_members", "shared_since", "other_topics_for", "first_seen", "topic_pmids",
           "link_papers", "link_members", "count_topic_papers", "member_counts", "shared_count", "member_sources",
           "members_from", "SOURCES", "QUERY", "SUGGESTION", "IMPORT", "MANUAL"]
