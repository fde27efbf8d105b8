"""Bounds on the database work of one web request: a time limit on each statement, the same limit on waiting for
another writer, and stopping the work at once when the request's client goes away.

A `Budget` is made for each request (tracker/web/reliability.py) and set in a context variable (`budget_set`);
the worker threads that run the request's handlers see it, and so does every connection they check out of the
store's pool (`install_limits`, called by `Store`):

SQLite
    One watchdog thread calls the connection's interrupt() once a statement has run `seconds` (SQLite answers
    "interrupted" between two steps); `cancel` calls it at once. A progress handler would do the same from the
    statement's own thread, but it takes the interpreter lock every few thousand steps of every statement: under
    20 clients that cost a tenth of the requests a second (benchmark 14). The busy timeout (how long a write
    waits for another writer, 60 s for the CLI) is `seconds` too.
PostgreSQL
    `statement_timeout` is `seconds` and `lock_timeout` a little less, set on the connection when it is
    checked out with a budget (and set back when it is checked out without one); `cancel` sends the server's
    cancel request for the statement under way.

The errors become `TimeLimitError` (the statement ran too long), `DatabaseBusyError` (another writer held the
lock for the whole wait) or `RequestCancelled` (the client went away), and the connection that ran the stopped
statement is thrown away instead of going back to the pool, so no later request gets a connection in an
unknown state. Without a budget (the CLI, the scheduler, the web app's background refresher) nothing changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import TimeoutError as PoolTimeout  # no connection free in time: the faces say "busy" too

from tracker.errors import DatabaseBusyError, TimeLimitError

log = logging.getLogger(__name__)

SQLITE_BUSY_MS = 60_000  # the CLI's busy timeout (tracker/store/database.py sqlite_pragmas), restored at check-in
STOP_AGAIN = 0.05  # seconds between two interrupts of a cancelled request's connection
LOCK_SHARE = 0.9  # PostgreSQL: a lock wait gives up a little before the statement would, so it is said as "busy"


class RequestCancelled(Exception):  # noqa: N818  (not an error: the client left, nobody is told anything)
    """The request's client went away: its database work was stopped."""


class Budget:
    """One request's bounds: each statement may run (or wait for a lock) `seconds`; `cancel` stops them all."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.cancelled = False
        self._lock = threading.Lock()
        self._connections: dict[int, tuple[Any, str]] = {}  # id -> (DBAPI connection, dialect) while checked out

    def allow(self, seconds: float) -> None:
        """Let this request's statements run `seconds` (an export reads a whole topic in one statement)."""
        self.seconds = max(self.seconds, seconds)

    def cancel_blocks(self) -> bool:
        """Whether `cancel` would talk to a server (PostgreSQL), so is better called from a worker thread."""
        with self._lock:
            return any(dialect != "sqlite" for _, dialect in self._connections.values())

    def cancel(self) -> None:
        """Stop the statements under way now, and every later one of this request (it may block briefly:
        PostgreSQL's cancel request is a connection of its own, so call it from a worker thread)."""
        self.cancelled = True
        with self._lock:
            connections = list(self._connections.values())
        for connection, dialect in connections:
            with suppress(Exception):  # a connection that just finished or closed: nothing left to stop
                if dialect == "sqlite":
                    _WATCHDOG.stop(connection)
                elif dialect == "postgresql":
                    getattr(connection, "cancel_safe", connection.cancel)()

    def _attach(self, connection: Any, dialect: str) -> None:
        with self._lock:
            self._connections[id(connection)] = (connection, dialect)

    def _detach(self, connection: Any) -> None:
        with self._lock:
            self._connections.pop(id(connection), None)


BUDGET: ContextVar[Budget | None] = ContextVar("tracker_budget", default=None)


@contextmanager
def budget_set(budget: Budget) -> Iterator[Budget]:
    """`budget` for the code in the block and the worker threads it starts (they copy the context)."""
    token = BUDGET.set(budget)
    try:
        yield budget
    finally:
        BUDGET.reset(token)


def current_budget() -> Budget | None:
    return BUDGET.get()


class _Watchdog:
    """Interrupts each SQLite connection whose statement has run past its deadline, from one thread that sleeps
    until the nearest deadline. A deadline is set when a statement starts and dropped when the connection goes back
    to the pool, both under the lock the interrupt is made under, so a connection is never interrupted for a request
    it no longer serves (and an interrupt() while no statement runs is a no-op in SQLite)."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._deadlines: dict[int, tuple[float, Any]] = {}  # id of the DBAPI connection -> (deadline, connection)
        self._nearest: float | None = None  # when the thread wakes next (None: when told)
        self._thread: threading.Thread | None = None
        self._stopping: set[int] = set()  # connections of cancelled requests, interrupted until given back

    def watch(self, connection: Any, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with self._wake:
            if id(connection) in self._stopping:
                return
            self._deadlines[id(connection)] = (deadline, connection)
            self._start()
            if self._nearest is None or deadline < self._nearest:
                self._wake.notify()

    def stop(self, connection: Any) -> None:
        """Interrupt now, and again every STOP_AGAIN seconds until the connection goes back to the pool: a cancel
        that lands between a statement's start and its first step would otherwise find nothing to stop."""
        with self._wake:
            connection.interrupt()
            self._deadlines[id(connection)] = (time.monotonic() + STOP_AGAIN, connection)
            self._stopping.add(id(connection))
            self._start()
            self._wake.notify()

    def _start(self) -> None:  # under the lock
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sqlite-time-limit", daemon=True)
            self._thread.start()

    def forget(self, connection: Any) -> None:
        with self._wake:
            self._deadlines.pop(id(connection), None)
            self._stopping.discard(id(connection))

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for key, (deadline, connection) in list(self._deadlines.items()):
                    if deadline <= now:
                        if key in self._stopping:
                            self._deadlines[key] = (now + STOP_AGAIN, connection)
                        else:
                            del self._deadlines[key]
                        with suppress(Exception):  # closed meanwhile: nothing left to stop
                            connection.interrupt()
                self._nearest = min((deadline for deadline, _ in self._deadlines.values()), default=None)
                self._wake.wait(None if self._nearest is None else self._nearest - now)


_WATCHDOG = _Watchdog()


def install_limits(engine: Engine, dialect: str) -> None:
    """Make the engine's connections honour the budget of the request that checks them out."""
    if dialect not in ("sqlite", "postgresql"):
        return

    @event.listens_for(engine, "checkout")
    def checkout(dbapi_connection, record, _proxy) -> None:
        budget = BUDGET.get()
        if budget is not None and budget.cancelled:
            raise RequestCancelled()
        if dialect == "sqlite":
            _sqlite_checkout(dbapi_connection, record, budget)
        else:
            _postgres_checkout(dbapi_connection, record, budget)
        if budget is not None:
            record.info["tracker_budget"] = budget
            budget._attach(dbapi_connection, dialect)

    @event.listens_for(engine, "checkin")
    def checkin(dbapi_connection, record) -> None:
        budget = record.info.pop("tracker_budget", None)
        if budget is None:
            return
        budget._detach(dbapi_connection)
        if record.info.pop("tracker_sqlite", None) is not None:
            _WATCHDOG.forget(dbapi_connection)

    @event.listens_for(engine, "before_cursor_execute")
    def before(connection, _cursor, _statement, _parameters, _context, _many) -> None:
        budget = connection.info.get("tracker_budget")
        if budget is None:
            return
        if budget.cancelled:
            raise RequestCancelled()
        sqlite_connection = connection.info.get("tracker_sqlite")
        if sqlite_connection is not None:
            _WATCHDOG.watch(sqlite_connection, budget.seconds)

    @event.listens_for(engine, "handle_error")
    def handle_error(context) -> None:
        connection = context.connection
        budget = connection.info.get("tracker_budget") if connection is not None else BUDGET.get()
        if budget is None:
            return
        kind = _stopped_kind(dialect, context.original_exception)
        if kind is None:
            return
        # The connection that ran it goes, not the pool: the next request gets a fresh one.
        context.is_disconnect = kind != "busy"
        context.invalidate_pool_on_disconnect = False
        if budget.cancelled:
            raise RequestCancelled() from None
        if kind == "busy":
            raise DatabaseBusyError(
                f"the database is busy: another program (an import, a run or a migration) kept it locked for "
                f"{budget.seconds:g} seconds") from None
        raise TimeLimitError(f"the database took longer than {budget.seconds:g} seconds to answer and was stopped",
                             seconds=budget.seconds) from None


def _sqlite_checkout(dbapi_connection, record, budget: Budget | None) -> None:
    # The busy timeout is set only when it changes: every statement a request runs waits for the interpreter lock
    # again after SQLite, so two PRAGMAs per checkout cost a visible share of a busy server (py-spy, benchmark 14).
    wanted = SQLITE_BUSY_MS if budget is None else max(1, round(budget.seconds * 1000))
    if record.info.get("tracker_busy_ms", SQLITE_BUSY_MS) != wanted:
        dbapi_connection.execute(f"PRAGMA busy_timeout = {wanted}")
        record.info["tracker_busy_ms"] = wanted
    if budget is not None:
        record.info["tracker_sqlite"] = dbapi_connection


def _postgres_checkout(dbapi_connection, record, budget: Budget | None) -> None:
    wanted = 0 if budget is None else max(1, round(budget.seconds * 1000))
    if record.info.get("tracker_statement_timeout", 0) == wanted:
        return
    lock = 0 if budget is None else max(1, round(wanted * LOCK_SHARE))
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
                       (f"{wanted}ms", f"{lock}ms"))
    dbapi_connection.commit()  # a SET inside a transaction that is rolled back would be undone with it
    record.info["tracker_statement_timeout"] = wanted


def _stopped_kind(dialect: str, error: BaseException | None) -> str | None:
    """"stopped" (interrupted, cancelled, timed out), "busy" (no lock in time) or None for any other error."""
    if error is None:
        return None
    if dialect == "sqlite":
        text = str(error)
        if text == "interrupted":
            return "stopped"
        if "database is locked" in text or "database table is locked" in text:
            return "busy"
        return None
    code = getattr(error, "sqlstate", None)
    if code == "57014":  # query_canceled: statement_timeout or a cancel request
        return "stopped"
    if code == "55P03":  # lock_not_available: lock_timeout
        return "busy"
    return None


__all__ = ["Budget", "BUDGET", "budget_set", "current_budget", "install_limits", "RequestCancelled", "PoolTimeout"]
