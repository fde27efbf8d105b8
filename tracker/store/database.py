"""Opening the database: engine, SQLite pragmas, file permissions, schema versions and migrations.

This module is the dialect seam: everything that differs between SQLite (the one-command default)
and PostgreSQL (team deployments) is decided here or asks `Store.dialect`: connection options,
serialising schema creation, the full-text index (FTS5 table or tsvector column), and the upsert
(both speak `INSERT … ON CONFLICT`; any other back end falls back to a portable select-then-write).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Table, event, inspect, select
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlmodel import Session, SQLModel, create_engine

from tracker.errors import StoreError
from tracker.store import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from tracker.store.models import SchemaVersion

# Each migration takes a database at version N-1 to N. A fresh database is created at the latest
# version directly from the models, then `create_extras` adds what the models cannot express.
def _add_job_leases(connection: Connection) -> None:
    models.JobLease.__table__.create(connection, checkfirst=True)


EXPORT_TEXT_COLUMNS = ("publication_types_text", "mesh_terms", "keywords_text")


def _add_export_text(connection: Connection) -> None:
    """The CSV's joined text beside the JSON it comes from, filled in for every stored paper, in batches."""
    from sqlalchemy import bindparam

    from tracker.store.papers import export_text_from_row

    paper = models.PaperRow.__table__
    for column in EXPORT_TEXT_COLUMNS:
        connection.exec_driver_sql(f"ALTER TABLE paper ADD COLUMN {column} VARCHAR NOT NULL DEFAULT ''")
    update = (paper.update().where(paper.c.pmid == bindparam("key"))
              .values(**{column: bindparam(column) for column in EXPORT_TEXT_COLUMNS}))
    last = -1
    while True:
        rows = connection.execute(
            select(paper.c.pmid, paper.c.publication_types, paper.c.mesh_headings, paper.c.keywords)
            .where(paper.c.pmid > last).order_by(paper.c.pmid).limit(5000)
        ).all()
        if not rows:
            return
        connection.execute(update, [{"key": row.pmid, **export_text_from_row(row)} for row in rows])
        last = rows[-1].pmid


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _add_job_leases,  # several schedulers on one database (tracker/store/leases.py)
    3: _add_export_text,  # the CSV export without decoding JSON (BENCHMARKS.md)
}
SCHEMA_VERSION = 3


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


FTS_COLUMNS = ("title", "abstract", "mesh", "keywords", "authors")
# Any fixed number: every tracker process serialises its PostgreSQL schema checks on this advisory lock.
POSTGRES_SCHEMA_LOCK = 7_276_115_001


def create_extras(connection: Connection) -> None:
    """Objects outside the ORM models (the full-text index); idempotent."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS paper_fts USING fts5("
            + ", ".join(FTS_COLUMNS) + ", tokenize = 'porter unicode61 remove_diacritics 2')"
        )
    elif connection.dialect.name == "postgresql":
        # One weighted tsvector per paper (title A, MeSH and keywords B, abstract C, authors D), written
        # with the paper (tracker/store/papers.py) and ranked by ts_rank_cd (tracker/store/search.py).
        connection.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS paper_fts ("
            "pmid INTEGER PRIMARY KEY REFERENCES paper (pmid) ON DELETE CASCADE, document TSVECTOR NOT NULL)"
        )
        connection.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_paper_fts_document ON paper_fts USING GIN (document)")


class Store:
    def __init__(self, url: str):
        self.url = url
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            # Not echoed: an unparsable URL may still hold a password.
            raise StoreError("TRACKER_DB_URL is not a database URL: use for example sqlite:///db/tracker.sqlite3 or "
                             "postgresql+psycopg://user@host/tracker") from None
        self.dialect = parsed.get_backend_name()
        self.path = Path(parsed.database) if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:") else None
        if self.path is not None:
            _prepare_sqlite_file(self.path)
        self.engine: Engine = make_engine(parsed, failure=f"cannot open database {describe_url(url)}")
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", sqlite_pragmas)
        self.ensure_schema()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

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

    def ensure_schema(self, _retry: bool = False) -> None:
        try:
            with self._schema_transaction() as connection:
                tables = set(inspect(connection).get_table_names())
                if SchemaVersion.__tablename__ not in tables:
                    if tables - {SchemaVersion.__tablename__} and "paper" not in tables:
                        raise StoreError(f"{self.describe()} holds tables that are not a tracker's; point TRACKER_DB_URL elsewhere")
                    SQLModel.metadata.create_all(connection)
                    create_extras(connection)
                    connection.execute(SchemaVersion.__table__.insert().values(id=1, version=SCHEMA_VERSION, updated_at=utcnow()))
                    return
                version = connection.execute(select(SchemaVersion.version)).scalar_one_or_none() or 0
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.describe()} was written by a newer tracker (schema {version}, this one knows {SCHEMA_VERSION}): "
                        "upgrade tracker with 'pip install -U tracker'"
                    )
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[target](connection)
                    connection.execute(
                        SchemaVersion.__table__.update().values(version=target, updated_at=utcnow())
                    )
        except StoreError:
            raise
        except OperationalError as error:
            # Two first runs can race to create the schema; the loser finds it made and checks again.
            if "already exists" in str(error.orig) and not _retry:
                return self.ensure_schema(_retry=True)
            raise StoreError(_describe_database_error(self, error)) from None
        except DatabaseError as error:
            raise StoreError(_describe_database_error(self, error)) from None

    def describe(self) -> str:
        return str(self.path) if self.path is not None else describe_url(self.url)

    def upsert(self, session: Session, table, rows: Sequence[dict], keys: Sequence[str], *, update: bool = True) -> None:
        if not rows:
            return
        columns = [column.name for column in table.columns]
        update_columns = [c for c in columns if c not in keys and c != "first_stored_at"]
        if self.dialect in ("sqlite", "postgresql"):
            if self.dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert
            else:
                from sqlalchemy.dialects.postgresql import insert
            # One statement, compiled once and run as executemany: rendering a multi-row VALUES clause cost
            # SQLAlchemy more per row than SQLite takes to store it (BENCHMARKS.md, ingest profile).
            statement = insert(table)
            if update and update_columns:
                statement = statement.on_conflict_do_update(
                    index_elements=list(keys), set_={c: statement.excluded[c] for c in update_columns}
                )
            else:
                statement = statement.on_conflict_do_nothing(index_elements=list(keys))
            session.execute(statement, list(rows))
            return
        for row in rows:
            condition = [table.c[k] == row[k] for k in keys]
            exists = session.execute(select(*[table.c[k] for k in keys]).where(*condition)).first()
            if exists is None:
                session.execute(table.insert().values(**row))
            elif update and update_columns:
                session.execute(table.update().where(*condition).values(**{c: row[c] for c in update_columns if c in row}))


def chunked(items: Sequence, size: int = 500) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def engine_options(url) -> dict:
    dialect = url.get_backend_name()
    if dialect == "sqlite":
        return {"connect_args": {"timeout": 60, "check_same_thread": False}}
    if dialect == "postgresql":
        # The tables hold UTC wall times in `timestamp` columns; PostgreSQL converts an aware datetime
        # to the session's zone on the way in, so every session runs in UTC whatever the server says.
        options = " ".join(part for part in ("-c timezone=UTC", url.query.get("options")) if part)
        return {"pool_pre_ping": True, "connect_args": {"options": options, "connect_timeout": 10}}
    return {"pool_pre_ping": True}


def sqlite_pragmas(dbapi_connection, _record=None, *, wal: bool = True) -> None:
    """The store's connection settings; `wal=False` leaves the journal mode (and so the file's header) alone."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 60000")
    if wal:
        cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


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


def make_engine(url: URL, *, failure: str) -> Engine:
    """The engine for `url` with the tracker's options; `failure` opens the one-line error if it cannot be made."""
    try:
        return create_engine(url, **engine_options(url))
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


def open_store(url: str) -> Store:
    return Store(url)


__all__ = ["Store", "open_store", "utcnow", "chunked", "SCHEMA_VERSION"]
