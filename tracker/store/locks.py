"""Process locks: one row per lock name in `instance_lock`, taken and released by compare-and-swap.

They keep two processes from doing the same work at once, on any host: a topic's run (`TopicRunLock`)
and the sending of the weekly e-mail (`EmailRunLock`). (Several schedulers on one database do not
lock each other out; they share the jobs through leases, tracker/store/leases.py.)

A row names its holder (host, pid, boot id, start time) and carries a heartbeat the holder refreshes.
A holder on this host is alive while its pid is (and the machine has not rebooted since it wrote
the row); a holder on another host is alive while its heartbeat is younger than `stale_after`.
A dead holder's lock is taken over. Plain INSERT/UPDATE/DELETE on a primary key, so it works on
any database the store supports, and the database serialises two processes racing for it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Self

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import col

from tracker.errors import LockHeldError, LockLostError
from tracker.store.database import Store
from tracker.store.models import InstanceLock
from tracker.text import as_utc, utcnow

log = logging.getLogger("tracker.lock")

HEARTBEAT_EVERY = 30.0  # seconds between heartbeats
STALE_AFTER = 300.0  # seconds without a heartbeat before another host may take the lock over
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
_held_here: set[str] = set()  # tokens this process holds: its own pid in a row is alive only for these


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    boot_id: str | None
    started_at: datetime
    heartbeat_at: datetime
    token: str

    def describe(self, zone: tzinfo) -> str:
        since = self.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
        return f"pid {self.pid} on host {self.host}, since {since}"


def this_host() -> str:
    return socket.gethostname()


def boot_id() -> str | None:
    try:
        return BOOT_ID_FILE.read_text().strip() or None
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie, killed but not reaped, does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class InstanceLockHandle:
    """`acquire()` once, `heartbeat()` every HEARTBEAT_EVERY seconds while running, `release()` at the end."""

    def __init__(self, store: Store, name: str, *, what: str, stale_after: float = STALE_AFTER,
                 zone: tzinfo = timezone.utc):
        self.store, self.name, self.stale_after, self.zone, self.what = store, name, stale_after, zone, what
        self.token = uuid.uuid4().hex
        self.held = False

    def acquire(self) -> Holder | None:
        """Take the lock; returns the dead holder it took over from, if any. Raises LockHeldError."""
        # Databases created before the lock existed get its table here (new ones get it with the schema).
        self.store.ensure_table(InstanceLock.__table__)
        for _attempt in range(3):
            now = utcnow()
            try:
                with self.store.engine.begin() as connection:
                    connection.execute(insert(InstanceLock.__table__).values(name=self.name, **self._mine(now)))
                self._hold()
                return None
            except IntegrityError:
                pass
            holder = self.holder()
            if holder is None:
                continue  # released between our insert and our read
            reason = self.dead_because(holder, now)
            if reason is None:
                raise LockHeldError(self._held_message(holder, now))
            with self.store.engine.begin() as connection:
                taken = connection.execute(
                    update(InstanceLock.__table__)
                    .where(col(InstanceLock.name) == self.name, col(InstanceLock.token) == holder.token)
                    .values(**self._mine(now))
                ).rowcount
            if taken == 1:
                self._hold()
                log.warning("took over %s from %s: %s", self._lock_name(), holder.describe(self.zone), reason)
                return holder
        holder = self.holder()
        raise LockHeldError(self._held_message(holder, utcnow()) if holder else
                            f"the lock on {self.store.describe()} keeps changing hands: try again")

    def heartbeat(self) -> None:
        """Refresh the heartbeat; raises LockLostError when another process has taken the lock over."""
        try:
            with self.store.engine.begin() as connection:
                updated = connection.execute(
                    update(InstanceLock.__table__)
                    .where(col(InstanceLock.name) == self.name, col(InstanceLock.token) == self.token)
                    .values(heartbeat_at=utcnow())
                ).rowcount
        except SQLAlchemyError as error:
            log.warning("could not refresh the lock heartbeat (%s); trying again in %g s", error, HEARTBEAT_EVERY)
            return
        if updated != 1:
            self._unhold()
            holder = self.holder()
            by = f" by {holder.describe(self.zone)}" if holder else ""
            raise LockLostError(f"the lock on {self.store.describe()} was taken over{by}: this {self.what} stopped; "
                                "check the other host's clock and heartbeat")

    def release(self) -> None:
        if not self.held:
            return
        self._unhold()
        try:
            with self.store.engine.begin() as connection:
                connection.execute(delete(InstanceLock.__table__)
                                   .where(col(InstanceLock.name) == self.name, col(InstanceLock.token) == self.token))
        except SQLAlchemyError as error:
            log.warning("could not release the lock on %s (%s); the next start takes it over", self.store.describe(), error)

    def holder(self) -> Holder | None:
        with self.store.engine.begin() as connection:
            row = connection.execute(select(InstanceLock.__table__).where(col(InstanceLock.name) == self.name)).first()
        if row is None:
            return None
        return Holder(host=row.host, pid=row.pid, boot_id=row.boot_id, started_at=as_utc(row.started_at),
                      heartbeat_at=as_utc(row.heartbeat_at), token=row.token)

    def dead_because(self, holder: Holder, now: datetime) -> str | None:
        """Why `holder` no longer runs, or None when it may still."""
        if holder.host == this_host():
            mine = boot_id()
            if mine and holder.boot_id and mine != holder.boot_id:
                return "this machine restarted since it took the lock"
            if holder.pid == os.getpid():
                if holder.token in _held_here:
                    return None
                return "its pid is now this process's own (the machine or container restarted)"
            if not pid_alive(holder.pid):
                return "that process is no longer running"
            return None
        silent = (now - holder.heartbeat_at).total_seconds()
        if silent > self.stale_after:
            return f"no heartbeat from that host for {silent:.0f} s"
        return None

    def _hold(self) -> None:
        self.held = True
        _held_here.add(self.token)

    def _unhold(self) -> None:
        self.held = False
        _held_here.discard(self.token)

    def _mine(self, now: datetime) -> dict:
        return dict(token=self.token, host=this_host(), pid=os.getpid(), boot_id=boot_id(), started_at=now,
                    heartbeat_at=now)

    def _lock_name(self) -> str:
        return f"the lock on {self.store.describe()}"

    def _held_message(self, holder: Holder, now: datetime) -> str:
        remote = holder.host != this_host()
        seen = f", last heartbeat {(now - holder.heartbeat_at).total_seconds():.0f} s ago" if remote else ""
        hint = (f"stop it first (if that host is down, its lock expires {self.stale_after:.0f} s after its last heartbeat)"
                if remote else "stop it first")
        return f"another {self.what} ({holder.describe(self.zone)}{seen}) holds the lock on {self.store.describe()}: {hint}"

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class TopicRunLock(InstanceLockHandle):
    """One run of a topic at a time, whichever process starts it (`tracker fetch`, `run`, the scheduler).

    The row is named `run:<slug>` and follows the rules above: a holder on this host is alive
    while its pid is (a killed run's lock is taken over at once), one on another host while its heartbeat
    is younger than STALE_AFTER. The holder refreshes the heartbeat after saved batches (`beat`).
    """

    def __init__(self, store: Store, slug: str):
        super().__init__(store, f"run:{slug}", what=f"run of topic '{slug}'")
        self.slug = slug
        self._next_beat: float | None = None

    def beat(self) -> None:
        """Refresh the heartbeat when HEARTBEAT_EVERY seconds have passed; LockLostError when taken over."""
        now = time.monotonic()
        if self._next_beat is None:
            self._next_beat = now + HEARTBEAT_EVERY
        elif now >= self._next_beat:
            self.heartbeat()
            self._next_beat = now + HEARTBEAT_EVERY

    def _lock_name(self) -> str:
        return f"the run lock of topic '{self.slug}'"

    def _held_message(self, holder: Holder, now: datetime) -> str:
        where = "" if holder.host == this_host() else f" on host {holder.host}"
        return (f"another run (pid {holder.pid}{where}, started {holder.started_at:%Y-%m-%d %H:%M:%S} UTC) "
                "is in progress")


class EmailRunLock(TopicRunLock):
    """One sending of the weekly e-mail at a time (`tracker email`, `--run-now email`, any scheduler).

    A second run would take the first one's unrecorded messages for ones a stopped run left behind
    and offer their papers again; with the lock it stops before sending anything.
    """

    def __init__(self, store: Store):
        InstanceLockHandle.__init__(self, store, "email", what="e-mail run")
        self.slug = "email"
        self._next_beat = None

    def _lock_name(self) -> str:
        return "the e-mail lock"

    def _held_message(self, holder: Holder, now: datetime) -> str:
        where = "" if holder.host == this_host() else f" on host {holder.host}"
        return (f"another e-mail run (pid {holder.pid}{where}, started {holder.started_at:%Y-%m-%d %H:%M:%S} UTC) "
                "is in progress: nothing was sent; try again when it has finished")


__all__ = ["InstanceLockHandle", "TopicRunLock", "EmailRunLock", "Holder", "LockHeldError", "LockLostError", "HEARTBEAT_EVERY",
           "STALE_AFTER", "pid_alive"]
