"""Runs and per-topic sync state. The watermark moves only inside the transaction that marks a run succeeded."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from sqlalchemy import func, select, update
from sqlmodel import col

from tracker.errors import StoreError
from tracker.store.database import Store
from tracker.store.models import Run, TopicState
from tracker.text import utcnow


def start_run(store: Store, topic: str, *, kind: str, query: str | None, window_start: date | None,
              window_end: date | None) -> Run:
    run = Run(topic=topic, kind=kind, status="running", started_at=utcnow(), window_start=window_start,
              window_end=window_end, pid=os.getpid(), query=query)
    with store.session() as session:
        session.add(run)
        session.commit()
        session.refresh(run)
    return run


# The runs a topic's run lock covers (tracker/runs/sync.py): imports and ad-hoc queries take no lock.
LOCKED_RUN_KINDS = ("fetch", "backfill")


def close_interrupted_runs(store: Store, topic: str) -> list[int]:
    """Mark the topic's fetches and backfills still 'running' as failed; returns their ids.

    Call only while holding the topic's run lock: every fetch or backfill of the topic runs inside
    it, so one still 'running' then was killed (or its machine went down) before it could finish.
    """
    with store.engine.begin() as connection:
        found = connection.execute(
            select(col(Run.id), col(Run.pid))
            .where(col(Run.topic) == topic, col(Run.status) == "running", col(Run.kind).in_(LOCKED_RUN_KINDS))
            .order_by(col(Run.id))
        ).all()
        for run_id, pid in found:
            who = f"its process (pid {pid})" if pid is not None else "its process"
            connection.execute(update(Run).where(col(Run.id) == run_id, col(Run.status) == "running").values(
                status="failed",
                error=f"interrupted: {who} stopped before the run finished (killed, or its machine went down); "
                      "nothing it saved was lost, and the next fetch searches the same dates again",
            ))
    return [cast(int, run_id) for run_id, _pid in found]  # a stored run always has its id


@dataclass
class RunCounts:
    count: int | None = None
    total_count: int | None = None
    matched: int = 0
    new_papers: int = 0
    fetched: int = 0
    missing: int = 0
    refetched: int = 0
    requests: int = 0
    query_translation: str | None = None
    errors: list | None = None
    warnings: list | None = None


def finish_run(store: Store, run_id: int, counts: RunCounts, *, error: str | None = None,
               watermark: TopicState | None = None) -> Run:
    """Close a run; when it succeeded and `watermark` is given, save the new sync state in the same transaction."""
    with store.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise StoreError(f"run {run_id} is not in {store.describe()}: only a run started there can be finished")
        run.status = "failed" if error else "succeeded"
        run.finished_at = utcnow()
        run.error = error
        for name in ("count", "total_count", "matched", "new_papers", "fetched", "missing", "refetched", "requests",
                     "query_translation"):
            setattr(run, name, getattr(counts, name))
        run.errors = list(counts.errors or [])
        run.warnings = list(counts.warnings or [])
        session.add(run)
        if watermark is not None and error is None:
            watermark.last_run_id = run_id
            watermark.updated_at = utcnow()
            session.merge(watermark)
        session.commit()
        session.refresh(run)
    return run


def amend_run(store: Store, run_id: int, *, requests: int, warnings: Sequence[str] = ()) -> Run:
    """Add the requests and warnings of a step that ran after a run was closed to its row; nothing else changes."""
    with store.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise StoreError(f"run {run_id} is not in {store.describe()}: only a run started there can be amended")
        run.requests = (run.requests or 0) + requests
        run.warnings = [*(run.warnings or []), *warnings]
        session.add(run)
        session.commit()
        session.refresh(run)
    return run


def topic_state(store: Store, topic: str) -> TopicState | None:
    with store.session() as session:
        return session.get(TopicState, topic)


def recent_runs(store: Store, *, limit: int = 20, topic: str | None = None) -> list[Run]:
    with store.session() as session:
        statement = select(Run).order_by(col(Run.started_at).desc(), col(Run.id).desc()).limit(limit)
        if topic:
            statement = statement.where(col(Run.topic) == topic)
        return list(session.execute(statement).scalars())


def succeeded_runs(store: Store, topic: str, kinds: Sequence[str], *, since: datetime | None = None) -> list[Run]:
    """The topic's succeeded runs of `kinds` (started at `since` or later), oldest first."""
    statement = (select(Run).where(col(Run.topic) == topic, col(Run.status) == "succeeded", col(Run.kind).in_(list(kinds)))
                 .order_by(col(Run.id)))
    if since is not None:
        statement = statement.where(col(Run.started_at) >= since)
    with store.session() as session:
        return list(session.execute(statement).scalars())


def last_runs(store: Store) -> dict[str, Run]:
    """The latest run of every topic (including one still running)."""
    with store.session() as session:
        return {run.topic: run for run in session.execute(_LAST_RUNS).scalars()}


# Built once: the topic page and the Topics page show each topic's last run on every request.
_LATEST_RUN_IDS = select(col(Run.topic), func.max(col(Run.id)).label("id")).group_by(col(Run.topic)).subquery()
_LAST_RUNS = select(Run).join(_LATEST_RUN_IDS, col(Run.id) == _LATEST_RUN_IDS.c.id)
