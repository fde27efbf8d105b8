"""Job leases: several `tracker schedule` processes share one database and run each due job once.

Every scheduler fires every job; before running it, a scheduler claims the row (job, due time) in
`job_lease`. The database's primary key lets one claim win; the others skip that run. The winner
refreshes the lease's heartbeat while the job runs (`renew_leases`, from the scheduler's main loop,
not from the job) and marks it done at the end. A scheduler killed half-way stops refreshing: once
its heartbeat is older than the lease timeout, another scheduler finds the lease (`abandoned_leases`)
and takes it over by compare-and-swap on the holder's token, so exactly one of them runs it again.
A scheduler stopped by SIGTERM half-way releases its lease, which makes it free at once.

Plain INSERT and UPDATE on a primary key: the same code serves SQLite (schedulers on one machine) and
PostgreSQL (schedulers on several), and a claim never waits for a running job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from tracker.store.database import Store
from tracker.store.locks import this_host
from tracker.store.models import JobLease
from tracker.text import as_utc, utcnow

_lease = JobLease.__table__


@dataclass(frozen=True)
class Lease:
    job: str
    due_at: datetime
    status: str
    outcome: str | None
    host: str
    pid: int
    attempts: int
    started_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None
    token: str


@dataclass(frozen=True)
class Claim:
    """A won claim: run the job. `taken_from` is the lease of the scheduler that died or stopped, if any."""

    job: str
    due_at: datetime
    taken_from: Lease | None = None


def due_key(moment: datetime) -> datetime:
    """A due time as the lease table keys it: UTC, whole seconds (the same on every back end)."""
    return as_utc(moment).replace(microsecond=0)


def claim_job(store: Store, job: str, due_at: datetime, token: str, *, timeout: float,
              now: datetime | None = None) -> Claim | None:
    """Claim the run of `job` due at `due_at`; None when another scheduler has it (running or done)."""
    key = due_key(due_at)
    now = now or utcnow()
    mine = dict(status="running", outcome=None, token=token, host=this_host(), pid=os.getpid(), started_at=now,
                heartbeat_at=now, finished_at=None)
    try:
        with store.engine.begin() as connection:
            connection.execute(insert(_lease).values(job=job, due_at=key, attempts=1, **mine))
        return Claim(job, key)
    except IntegrityError:
        pass
    held = lease(store, job, key)
    if held is None or not _free(held, now, timeout):
        return None
    with store.engine.begin() as connection:
        won = connection.execute(
            update(_lease)
            .where(_lease.c.job == job, _lease.c.due_at == key, _lease.c.token == held.token,
                   _lease.c.status != "done")
            .values(attempts=_lease.c.attempts + 1, **mine)
        ).rowcount
    return Claim(job, key, taken_from=held) if won == 1 else None


def renew_leases(store: Store, token: str, now: datetime | None = None) -> int:
    """Refresh the heartbeat of every lease `token` runs; returns how many."""
    with store.engine.begin() as connection:
        return connection.execute(
            update(_lease).where(_lease.c.token == token, _lease.c.status == "running")
            .values(heartbeat_at=now or utcnow())
        ).rowcount


def finish_job(store: Store, claim: Claim, token: str, *, outcome: str) -> bool:
    """Mark the run done; False when another scheduler took the lease over meanwhile (it runs it again)."""
    with store.engine.begin() as connection:
        return connection.execute(
            update(_lease).where(_lease.c.job == claim.job, _lease.c.due_at == claim.due_at, _lease.c.token == token)
            .values(status="done", outcome=outcome, finished_at=utcnow())
        ).rowcount == 1


def release_job(store: Store, claim: Claim, token: str) -> bool:
    """Give the run back unfinished (the scheduler is stopping): another scheduler takes it over at once."""
    with store.engine.begin() as connection:
        return connection.execute(
            update(_lease).where(_lease.c.job == claim.job, _lease.c.due_at == claim.due_at, _lease.c.token == token,
                                 _lease.c.status == "running")
            .values(status="released")
        ).rowcount == 1


def abandoned_leases(store: Store, *, timeout: float, now: datetime | None = None) -> list[Lease]:
    """Runs whose scheduler died (no heartbeat for `timeout` seconds) or stopped half-way, oldest first."""
    now = now or utcnow()
    silent_since = due_key(now - timedelta(seconds=timeout))
    statement = select(_lease).where(or_(
        _lease.c.status == "released",
        and_(_lease.c.status == "running", _lease.c.heartbeat_at < silent_since),
    )).order_by(_lease.c.due_at, _lease.c.job)
    with store.connect() as connection:
        return [_as_lease(row) for row in connection.execute(statement)]


def lease(store: Store, job: str, due_at: datetime) -> Lease | None:
    with store.connect() as connection:
        row = connection.execute(select(_lease).where(_lease.c.job == job, _lease.c.due_at == due_key(due_at))).first()
    return _as_lease(row) if row is not None else None


def _free(held: Lease, now: datetime, timeout: float) -> bool:
    if held.status == "released":
        return True
    return held.status == "running" and (now - held.heartbeat_at).total_seconds() > timeout


def _as_lease(row) -> Lease:
    return Lease(job=row.job, due_at=as_utc(row.due_at), status=row.status, outcome=row.outcome, host=row.host,
                 pid=row.pid, attempts=row.attempts, started_at=as_utc(row.started_at),
                 heartbeat_at=as_utc(row.heartbeat_at),
                 finished_at=as_utc(row.finished_at) if row.finished_at else None, token=row.token)


__all__ = ["Lease", "Claim", "claim_job", "renew_leases", "finish_job", "release_job", "abandoned_leases", "lease", "due_key"]
