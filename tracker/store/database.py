"""Opening the database: engine, SQLite pragmas, file permissions, schema versions and migrations.

This module is the dialect seam: everything that differs between SQLite (the one-command default)
and PostgreSQL (team deployments) is decided here or asks `Store.dialect`: connection options,
serialising schema creation, the full-text index (FTS5 table or tsvector column), and the upsert
(both speak `INSERT … ON CONFLICT`; any other back end falls back to a portable select-then-write).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, wraps
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Table, event, inspect, select
from sqlalchemy.engine import URL, Connection, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlmodel import Session, create_engine

from tracker.errors import StoreError
from tracker.store import models, schema  # noqa: F401  (models registers the tables on SQLModel.metadata)
from tracker.store.inserts import insert_in_groups
from tracker.store.limits import install_limits

# Any fixed number: every tracker process serialises its PostgreSQL schema checks on this advisory lock.
POSTGRES_SCHEMA_LOCK = 7_276_115_001
T = TypeVar("T")
P = ParamSpec("P")
_HELD: ContextVar[tuple[Store, Connection] | None] = ContextVar("tracker_held_connection", default=None)


class Store:
    """A tracker database: its engine, its dialect, and whether this process may write to it.

    Constructing one checks nothing; `open_store` and `migrate_store` are the ways in. A read-only store
    (`readonly=True`, for commands that only read) opens SQLite with `mode=ro` and PostgreSQL sessions with
    `default_transaction_read_only`, so such a command works on a database it cannot write and can never
    change one by mistake.
    """

    def __init__(self, url: str, *, readonly: bool = False, pool_size: int | None = None):
        self.url = url
        self.readonly = readonly
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            # Not echoed: an unparsable URL may still hold a password.
            raise StoreError("TRACKER_DB_URL is not a database URL: use for example sqlite:///db/tracker.sqlite3 or "
                             "postgresql+psycopg://user@host/tracker") from None
        self.dialect = parsed.get_backend_name()
        self.path = Path(parsed.database) if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:") else None
        if self.path is not None and not readonly:
            _prepare_sqlite_file(self.path)
        if readonly and self.path is not None:
            parsed = _read_only_sqlite_url(parsed, self.path, immutable=False)
        elif readonly and self.dialect == "postgresql":
            given = parsed.query.get("options") or ()
            options = " ".join(part for part in ("-c default_transaction_read_only=on",
                                                 *((given,) if isinstance(given, str) else given)) if part)
            parsed = parsed.update_query_dict({"options": options})
        self.engine: Engine = make_engine(parsed, failure=f"cannot open database {describe_url(url)}", pool_size=pool_size)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", sqlite_read_only_pragmas if readonly else sqlite_pragmas)
        if readonly and self.path is not None and not self._readable():
            # A WAL database whose folder this user cannot write (no -shm can be made) opens only as
            # immutable; that is safe when no -wal exists, since then no writer is at work on it.
            self.engine.dispose()
            self.engine = make_engine(_read_only_sqlite_url(make_url(url), self.path, immutable=True),
                                      failure=f"cannot open database {describe_url(url)}", pool_size=pool_size)
            event.listen(self.engine, "connect", sqlite_read_only_pragmas)
        install_limits(self.engine, self.dialect)

    def _readable(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
            return True
        except DatabaseError as error:
            detail = database_error_detail(error)
            wal = Path(f"{self.path}-wal")
            if ("readonly" in detail or "unable to open" in detail) and self.path is not None and self.path.exists() \
                    and not wal.exists():
                return False
            raise StoreError(_describe_database_error(self, error)) from None

    def connect(self) -> AbstractContextManager[Connection]:
        """A connection for a few statements: a new one from the pool, or inside `reading` the one it holds."""
        held = _HELD.get()
        if held is not None and held[0] is self:
            return nullcontext(held[1])
        return self.engine.connect()

    def session(self) -> Session:
        held = _HELD.get()
        if held is not None and held[0] is self:
            return Session(bind=held[1], expire_on_commit=False)
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Every statement of the block that reads through `connect` or `session` on one connection, for a page's
        view that runs twenty of them: each connection taken from the pool and given back cost a turn of the
        interpreter lock, which 20 clients at once made long (benchmark 14). For blocks that only read."""
        if (held := _HELD.get()) is not None and held[0] is self:
            yield
            return
        with self.engine.connect() as connection:
            token = _HELD.set((self, connection))
            try:
                yield
            finally:
                _HELD.reset(token)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _schema_transaction(self) -> Iterator[Connection]:
        # One write transaction around every schema check and creation: a second process waits for
        # the first to finish (instead of seeing half a schema or racing it to CREATE TABLE), and a
        # process killed half-way leaves nothing behind (PostgreSQL's DDL is transactional too).
        with self.engine.begin() as connection:
            if self.dialect == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            elif self.dialect == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRES_SCHEMA_LOCK})")
            yield connection

    def ensure_table(self, table: Table) -> None:
        """Create a table another library owns (APScheduler's job store) under the schema lock, if missing.

        The library's own `create(checkfirst=True)` is a check then a create: two schedulers starting
        together on a new PostgreSQL database both pass the check and the second CREATE fails.
        """
        try:
            with self.engine.connect() as connection:
                if inspect(connection).has_table(table.name):
                    return
            with self._schema_transaction() as connection:
                table.create(connection, checkfirst=True)
        except DatabaseError as error:
            raise StoreError(_describe_database_error(self, error)) from None

    def schema_state(self) -> schema.SchemaState:
        """What the database is (empty, current, older, newer, another program's), read without writing."""
        try:
            with self.engine.connect() as connection:
                return schema.read_state(connection)
        except DatabaseError as error:
            raise StoreError(_describe_database_error(self, error)) from None

    def ensure_schema(self, _retry: bool = False) -> None:
        """Create the schema in an empty database; refuse one that needs `tracker db migrate` or is not ours."""
        try:
            if self.readonly:
                self._refuse(self.schema_state())
                return
            with self._schema_transaction() as connection:
                state = schema.read_state(connection)
                if state.kind == schema.EMPTY:
                    schema.create_schema(connection)
                    return
                self._refuse(state)
        except StoreError:
            raise
        except OperationalError as error:
            # Two first runs can race to create the schema; the loser finds it made and checks again.
            if "already exists" in str(error.orig) and not _retry:
                return self.ensure_schema(_retry=True)
            raise StoreError(_describe_database_error(self, error)) from None
        except DatabaseError as error:
            raise StoreError(_describe_database_error(self, error)) from None

    def migrate(self, on_step: Callable[[schema.Migration], None] | None = None, *,
                before: Callable[[schema.SchemaState], None] | None = None) -> list[schema.Applied]:
        """Bring the database to the latest schema in one transaction (creating it when empty).

        `before(state)` runs inside that transaction, once no other process can write, just before the migrations
        of an older database (tracker/store/upgrade.py takes its backup there); an exception from it changes nothing.
        """
        try:
            with self._schema_transaction() as connection:
                state = schema.read_state(connection)
                if state.kind == schema.EMPTY:
                    schema.create_schema(connection)
                    return []
                if state.kind == schema.OLDER:
                    if before is not None:
                        before(state)
                    return schema.upgrade_schema(connection, state, on_step=on_step)
                self._refuse(state)
                return []
        except StoreError:
            raise
        except DatabaseError as error:
            raise StoreError(_describe_database_error(self, error)) from None

    def count_papers(self) -> int:
        try:
            with self.engine.connect() as connection:
                if not inspect(connection).has_table("paper"):
                    return 0
                return connection.exec_driver_sql("SELECT count(*) FROM paper").scalar_one()
        except DatabaseError as error:
            raise StoreError(_describe_database_error(self, error)) from None

    def _refuse(self, state: schema.SchemaState) -> None:
        if state.kind == schema.FOREIGN:
            raise StoreError(f"{self.describe()} holds tables that are not a tracker's; point TRACKER_DB_URL elsewhere")
        if state.kind == schema.NEWER:
            raise StoreError(
                f"{self.describe()} was written by a newer tracker (schema {state.version}, this one knows "
                f"{schema.SCHEMA_VERSION}): upgrade tracker with 'pip install -U tracker'"
            )
        if state.kind == schema.OLDER:
            raise StoreError(
                f"{self.describe()} is at schema {state.version} and this tracker needs schema {schema.SCHEMA_VERSION}: "
                f"run 'tracker db migrate' (schema {state.version} → {schema.SCHEMA_VERSION})"
            )
        if state.kind == schema.EMPTY and self.readonly:
            raise StoreError(f"{self.describe()} holds no tracker database yet: run 'tracker run' first")

    def describe(self) -> str:
        return str(self.path) if self.path is not None else describe_url(self.url)

    def upsert(self, session: Session | Connection, table, rows: Sequence[dict], keys: Sequence[str], *,
               update: bool = True) -> None:
        if not rows:
            return
        if self.dialect == "sqlite":
            connection = session if isinstance(session, Connection) else session.connection()  # `db copy`: a Connection
            _execute_many(connection, _sqlite_upsert(connection.dialect, table, tuple(keys), update, tuple(rows[0])),
                          rows)
            return
        if self.dialect == "postgresql":
            session.execute(_upsert_statement(self.dialect, table, tuple(keys), update), list(rows))
            return
        update_columns = _update_columns(table, keys)
        for row in rows:
            condition = [table.c[k] == row[k] for k in keys]
            exists = session.execute(select(*[table.c[k] for k in keys]).where(*condition)).first()
            if exists is None:
                session.execute(table.insert().values(**row))
            elif update and update_columns:
                session.execute(table.update().where(*condition).values(**{c: row[c] for c in update_columns if c in row}))


def _update_columns(table: Table, keys: Sequence[str]) -> list[str]:
    """The columns an upsert of an existing row rewrites: all but its keys and when it was first stored."""
    return [column.name for column in table.columns if column.name not in keys and column.name != "first_stored_at"]


@lru_cache(maxsize=64)
def _upsert_statement(dialect: str, table: Table, keys: tuple[str, ...], update: bool):
    from sqlalchemy.dialects import postgresql, sqlite

    statement: sqlite.Insert | postgresql.Insert = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    update_columns = _update_columns(table, keys)
    if update and update_columns:
        return statement.on_conflict_do_update(index_elements=list(keys),
                                               set_={c: statement.excluded[c] for c in update_columns})
    return statement.on_conflict_do_nothing(index_elements=list(keys))


@dataclass(frozen=True)
class _CompiledUpsert:
    sql: str
    converters: tuple[tuple[str, Callable[[Any], Any] | None], ...]  # each parameter's column and bind processor


# Built and compiled once per table and shape: each build made an `excluded` copy of the table's columns, reference
# cycles left to the collector, and compiling it cost more than a batch's parameters.
@lru_cache(maxsize=64)
def _sqlite_upsert(dialect: Dialect, table: Table, keys: tuple[str, ...], update: bool,
                   columns: tuple[str, ...]) -> _CompiledUpsert:
    compiled = _upsert_statement("sqlite", table, keys, update).compile(dialect=dialect, column_keys=list(columns))
    names = compiled.positiontup or ()
    return _CompiledUpsert(compiled.string, tuple(
        (name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names))


def _execute_many(connection: Connection, upsert: _CompiledUpsert, rows: Sequence[dict]) -> None:
    """The upsert for every row, each value converted by its column type's own bind processor: the same values
    SQLAlchemy would send, without its per-row parameter handling, which cost a third of storing a paper
    (BENCHMARKS.md, ingest)."""
    converters = upsert.converters
    insert_in_groups(connection, upsert.sql, [
        tuple(row[name] if process is None else process(row[name]) for name, process in converters) for row in rows
    ])


def reads_on_one_connection(view: Callable[Concatenate[Store, P], T]) -> Callable[Concatenate[Store, P], T]:
    """A view (its store first) whose every read shares one connection (`Store.reading`)."""

    @wraps(view)
    def reading(store: Store, *args: P.args, **kwargs: P.kwargs) -> T:
        with store.reading():
            return view(store, *args, **kwargs)

    return reading


def engine_options(url, pool_size: int | None = None) -> dict:
    """The engine's options; `pool_size` (the web app: one connection per worker thread, and as many again for
    a thread that holds two) replaces SQLAlchemy's 5 + 10 overflow."""
    pool = {"pool_size": pool_size, "max_overflow": pool_size} if pool_size else {}
    return {**_dialect_options(url), **pool}


def to_json(value: Any) -> str:
    """`json.dumps(value)`, the same text, for the JSON columns: json.dumps builds its C encoder anew on every call,
    which cost more than encoding a paper's short lists (eleven JSON columns a paper; 1.05 against 0.19 us for [],
    7.9 against 5.5 us for six authors)."""
    return json.dumps(value) if _encode is None else "".join(_encode(value, 0))


# json.dumps' own settings (no indent, ", " and ": ", ASCII, NaN allowed), without its check for cycles: a column's
# value is made of lists, dicts and scalars the tracker built.
_encode = c_make_encoder(None, json.JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False,
                         True) if c_make_encoder is not None else None


def _dialect_options(url) -> dict:
    dialect = url.get_backend_name()
    serializer = {"json_serializer": to_json}
    if dialect == "sqlite":
        return {"connect_args": {"timeout": 60, "check_same_thread": False}, **serializer}
    if dialect == "postgresql":
        # The tables hold UTC wall times in `timestamp` columns; PostgreSQL converts an aware datetime
        # to the session's zone on the way in, so every session runs in UTC whatever the server says.
        options = " ".join(part for part in ("-c timezone=UTC", url.query.get("options")) if part)
        return {"pool_pre_ping": True, "connect_args": {"options": options, "connect_timeout": 10}, **serializer}
    return {"pool_pre_ping": True, **serializer}


def sqlite_pragmas(dbapi_connection, _record=None, *, wal: bool = True) -> None:
    """The store's connection settings; `wal=False` leaves the journal mode (and so the file's header) alone."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 60000")
    if wal:
        cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def sqlite_read_only_pragmas(dbapi_connection, _record=None) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 60000")
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def _read_only_sqlite_url(url: URL, path: Path, *, immutable: bool) -> URL:
    """`file:` URI of `path` opened read-only (SQLite parses the query string of the URI, not SQLAlchemy)."""
    from urllib.parse import quote

    query = "mode=ro&immutable=1" if immutable else "mode=ro"
    return url.set(database=f"file:{quote(str(path.expanduser().resolve()))}?{query}", query={"uri": "true"})


def _prepare_sqlite_file(path: Path) -> None:
    """Create db/ and the file readable by the owner only: the database holds recipients and ledgers."""
    try:
        if not path.parent.exists():
            # exist_ok: two processes started together (schedulers sharing this database) both get here.
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as error:
        raise StoreError(
            f"cannot create the database at {path} ({error.strerror}): make {path.parent} writable or set TRACKER_DB_URL"
        ) from None
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        raise StoreError(f"the database at {path} is not writable: fix the permissions of {path.parent} or set TRACKER_DB_URL")


def describe_url(url: str) -> str:
    """`url` with its password hidden, also one passed as a query parameter."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "<invalid URL>"
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": "***"})
    return parsed.render_as_string(hide_password=True)


def make_engine(url: URL, *, failure: str, pool_size: int | None = None) -> Engine:
    """The engine for `url` with the tracker's options; `failure` opens the one-line error if it cannot be made."""
    try:
        return create_engine(url, **engine_options(url, pool_size))
    except ModuleNotFoundError as error:
        hint = ("install PostgreSQL support with pip install 'tracker[postgresql]'" if url.get_backend_name() == "postgresql"
                else f"install the driver {error.name!r}")
        raise StoreError(f"{failure}: no module {error.name!r}: {hint}") from None
    except Exception as error:  # noqa: BLE001  (an unusable URL: unknown option, bad value)
        raise StoreError(f"{failure}: {database_error_detail(error) or 'unknown error'}") from None


def database_error_detail(error: Exception) -> str:
    """The driver's own words on one line, without SQLAlchemy's statement and parameters."""
    orig = getattr(error, "orig", None)
    detail = str(orig) if orig is not None else str(error).split("\n[SQL:")[0]
    return " ".join(detail.split())


def _describe_database_error(store: Store, error: DatabaseError) -> str:
    detail = database_error_detail(error)
    where = store.describe()
    if store.dialect == "postgresql" and isinstance(error, OperationalError):
        return f"cannot connect to {where} ({detail}): start PostgreSQL or fix TRACKER_DB_URL"
    if "not a database" in detail or "malformed" in detail:
        return f"{where} is not a usable SQLite database ({detail}): move it aside or set TRACKER_DB_URL"
    if isinstance(error, OperationalError) and "readonly" in detail:
        return f"{where} is read-only ({detail}): fix its permissions or set TRACKER_DB_URL"
    return f"cannot use {where}: {detail}"


def open_store(url: str, *, readonly: bool = False, pool_size: int | None = None) -> Store:
    """The store at `url`, its schema checked (and created, if the database is empty); never migrated.

    `readonly` is for commands that only read: on a database that does not exist yet, the store is opened for
    writing once to create it, as any first command does.
    """
    if readonly and not holds_database(url):
        readonly = False
    store = Store(url, readonly=readonly, pool_size=pool_size)
    try:
        store.ensure_schema()
    except BaseException:
        store.close()
        raise
    return store


def migrate_store(url: str, on_step: Callable[[schema.Migration], None] | None = None,
                  ) -> tuple[Store, list[schema.Applied]]:
    """The store at `url` after running its pending migrations (`tracker db migrate`)."""
    store = Store(url)
    try:
        return store, store.migrate(on_step)
    except BaseException:
        store.close()
        raise


def holds_database(url: str) -> bool:
    """False only for a SQLite file that is missing or empty; a server database is asked when opened."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return True  # let Store say what is wrong with it
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return True
    try:
        return Path(parsed.database).stat().st_size > 0
    except OSError:
        return False  # missing or out of sight: opening it for writing says which


__all__ = ["Store", "open_store", "migrate_store", "holds_database"]
