"""Copying a tracker database into another one, SQLite to PostgreSQL and back (`tracker db copy --to URL`).

What is copied: every table of the tracker's models (papers, topic membership, runs, watermarks, change
checks, digests, the outbox and both delivery ledgers, recipients, status events, paper revisions) and
APScheduler's job table when the source has one (each job's next run time), rows and ids unchanged.
What is not: the full-text index `paper_fts`, derived data rebuilt on the target from the copied papers
(FTS5 on SQLite, a tsvector per paper on PostgreSQL); `instance_lock`, the live locks of processes
running on the source; and the scheduler's `job_lease*` tables, leases of running jobs.

How:
- The source is read inside one transaction (a REPEATABLE READ snapshot on PostgreSQL, one read
  transaction on SQLite), so a scheduler writing to it meanwhile cannot make the copy inconsistent.
- Rows stream in batches (a server-side cursor on PostgreSQL), tables in foreign-key order, so memory
  stays bounded whatever the size of the paper table and its compressed XML.
- The target is written in ONE transaction, schema included: a failure (or Ctrl-C) half-way leaves it
  as it was. A SQLite target file that did not exist before is removed again. Meanwhile a tracker
  process opening the target waits (SQLite's write lock; PostgreSQL's schema lock, see database.py).
- JSON columns travel as the text the source holds, byte for byte; only the three the search text
  needs (MeSH headings, keywords, authors) are decoded, to rebuild the index.
- The target must be empty: a database holding any tracker row, a database of another program, one
  written by a newer tracker, the source itself, or an unreachable server is refused, changing nothing.
- Datetimes are UTC wall times on both back ends. They are read and written through the models' own
  column types (sqlmodel's UTCDateTime: aware UTC values) and PostgreSQL sessions run in UTC, so a value
  keeps its moment whether a PostgreSQL column is `timestamp with time zone` (schemas created by current
  sqlmodel releases) or `timestamp without time zone` (older ones), and SQLite keeps its text unchanged.
- PostgreSQL's serial sequences are moved past the copied ids, so the next run gets a fresh id.
- Before committing, each table's row count on the target is checked against the source's.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    cast,
    func,
    inspect,
    select,
    text,
    type_coerce,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError, SQLAlchemyError
from sqlmodel import SQLModel, col

from tracker.errors import StoreError
from tracker.store import schema
from tracker.store.database import POSTGRES_SCHEMA_LOCK, Store, database_error_detail, describe_url, make_engine, sqlite_pragmas
from tracker.store.models import InstanceLock, PaperRow, SchemaVersion
from tracker.store.rows import SEARCHED_JSON_COLUMNS, save_search_index_rows
from tracker.store.schema import SCHEMA_VERSION, SEARCH_INDEX

log = logging.getLogger("tracker.copy")

BATCH_ROWS = 2000  # rows per insert batch
BLOB_BATCH_ROWS = 250  # for tables holding compressed XML (paper, paper_revision): ~2 MB of XML a batch
# Older trackers named the lease table differently (job_lease*): leases are live state under any name.
LIVE_PREFIXES = ("job_lease",)

# How the refusal message names a table's rows (singular, plural).
LABELS = {
    "paper": ("paper", "papers"),
    "run": ("run", "runs"),
    "topic_paper": ("topic membership", "topic memberships"),
    "topic_state": ("record of how far a topic was searched", "records of how far topics were searched"),
    "change_check": ("change check", "change checks"),
    "digest": ("digest", "digests"),
    "outbox": ("outbox message", "outbox messages"),
    "delivery": ("delivery", "deliveries"),
    "recipient": ("recipient", "recipients"),
    "status_event": ("status event", "status events"),
    "paper_revision": ("paper revision", "paper revisions"),
    "event_delivery": ("event delivery", "event deliveries"),
    "scheduler_jobs": ("scheduled job", "scheduled jobs"),
}

Progress = Callable[[str, int, int], None]  # (table, rows copied so far, rows in the source table)


@dataclass(frozen=True)
class CopyReport:
    """What a copy did: rows per table in copy order (equal on both sides), papers indexed, tables left out."""

    source: str  # the source, password hidden
    target: str  # the target, password hidden
    tables: tuple[tuple[str, int], ...]
    indexed: int  # papers in the target's rebuilt full-text index (checked against paper_fts before commit)
    target_url: str = ""  # TRACKER_DB_URL for the copy, password hidden (SQLite: the absolute path)
    skipped: tuple[str, ...] = ()  # "name (why)" for each source table not copied
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(count for _, count in self.tables)

    def count(self, table: str) -> int:
        return dict(self.tables).get(table, 0)


def copy_database(source: Store, target_url: str, *, progress: Progress | None = None,
                  batch_rows: int = BATCH_ROWS) -> CopyReport:
    """Copy the tracker database of `source` into the empty database at `target_url`; returns what was copied.

    Raises StoreError (nothing changed on the target) when the target is not empty, is the source, was written
    by a newer tracker, holds another program's tables, cannot be reached, or when any step of the copy fails.
    """
    started = time.perf_counter()
    target = _Target(target_url)
    try:
        _refuse_same_file(source, target)
        try:
            reader = source.engine.connect()
        except DatabaseError as error:
            raise StoreError(f"cannot read the source {source.describe()} ({database_error_detail(error)})") from None
        with reader:
            _begin_snapshot(source, reader)
            tables, skipped = _copy(source, reader, target, progress, batch_rows)
    except BaseException:
        target.discard()
        raise
    finally:
        target.engine.dispose()
    target.after_commit()
    report = CopyReport(source=source.describe(), target=target.described, tables=tuple(tables),
                        indexed=dict(tables).get(PaperRow.__tablename__, 0), target_url=target.safe_url,
                        skipped=tuple(skipped), seconds=time.perf_counter() - started)
    log.info("copied %s rows from %s to %s in %.1fs", report.rows, report.source, report.target, report.seconds)
    return report


# -- the target ------------------------------------------------------------------------------

class _Target:
    """The target database before it is a Store: an engine with the store's connection options, no schema yet."""

    def __init__(self, url: str):
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):  # ValueError: a port that is not a number
            raise StoreError("the target is not a database URL: use for example "
                             "postgresql+psycopg://user:password@host/tracker or sqlite:///path/tracker.sqlite3") from None
        self.url = url
        self.dialect = parsed.get_backend_name()
        self.described = self.safe_url = describe_url(url)
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"cannot copy into {self.described}: the target must be a SQLite or PostgreSQL database")
        self.path: Path | None = None
        self.created: list[Path] = []  # what this copy created (a new SQLite file and its folders), undone on failure
        self.committed = False
        self.loaded: list[str] = []  # the tables the copy wrote, for ANALYZE
        if self.dialect == "sqlite":
            if parsed.database in (None, "", ":memory:") or parsed.database.startswith("file:"):
                raise StoreError(f"cannot copy into {self.described}: give the target a file, for example "
                                 "sqlite:///path/to/tracker.sqlite3 (an in-memory database ends with the copy)")
            # Opened by its absolute path, the one printed for TRACKER_DB_URL (a relative one depends on the folder).
            self.path = Path(parsed.database).expanduser().resolve()
            parsed = parsed.set(database=str(self.path))
            self.described = str(self.path)
            self.safe_url = describe_url(parsed.render_as_string(hide_password=False))
        self.engine: Engine = make_engine(parsed, failure=f"cannot copy into {self.described}")
        if self.dialect == "sqlite":
            from sqlalchemy import event

            event.listen(self.engine, "connect", _target_pragmas)

    def prepare_file(self) -> None:
        """Create a missing SQLite file as the store does (folder 0700, file 0600), remembering what was created."""
        if self.path is None or self.path.exists():
            return
        missing = [folder for folder in (self.path.parent, *self.path.parent.parents) if not folder.exists()]
        try:
            for folder in reversed(missing):
                folder.mkdir(mode=0o700)
                self.created.append(folder)
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            self.created.append(self.path)
        except OSError as error:
            raise StoreError(f"cannot create the target {self.path} ({error.strerror}): "
                             f"make {self.path.parent} writable or choose another path") from None

    def discard(self) -> None:
        """After a failure: remove the SQLite file (and folders) this copy created, so the target is as it was."""
        self.engine.dispose()
        if self.committed:
            return  # never a committed copy, whatever failed after
        for created in reversed(self.created):
            if created == self.path:
                for suffix in ("-journal", "-wal", "-shm", ""):
                    Path(f"{created}{suffix}").unlink(missing_ok=True)
            else:
                try:
                    created.rmdir()
                except OSError:
                    pass
        self.created.clear()

    def after_commit(self) -> None:
        """Planner statistics for the freshly loaded tables (PostgreSQL); a failure here changes nothing copied."""
        if self.dialect != "postgresql" or not self.loaded:
            return
        try:
            with self.engine.connect() as connection:
                quote = connection.dialect.identifier_preparer.quote
                names = ", ".join(quote(name) for name in self.loaded)
                connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f"ANALYZE {names}")
        except SQLAlchemyError as error:
            log.warning("ANALYZE on %s failed (%s); autovacuum will gather the statistics", self.described,
                        database_error_detail(error))
        finally:
            self.engine.dispose()


def _target_pragmas(dbapi_connection, _record) -> None:
    """The store's pragmas but the journal mode: switching a file to WAL rewrites its header, and a refused copy
    must leave the file as it found it. A copied database is switched to WAL once committed."""
    sqlite_pragmas(dbapi_connection, wal=False)


def _refuse_same_file(source: Store, target: _Target) -> None:
    if source.dialect == "sqlite" and target.path is not None and source.path is not None:
        same = (os.path.samefile(source.path, target.path) if source.path.exists() and target.path.exists()
                else source.path.resolve() == target.path.resolve())
        if same:
            raise StoreError(f"the target {target.described} is the source database itself: "
                             "give --to another database")


# -- the copy --------------------------------------------------------------------------------

def _begin_snapshot(source: Store, reader: Connection) -> None:
    """One read transaction over the whole copy, so every table is read as of the same moment."""
    try:
        if source.dialect == "postgresql":
            reader.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            reader.begin()
        elif source.dialect == "sqlite":
            # pysqlite starts no transaction for a SELECT: without an explicit one, each table would be read
            # from a different snapshot of a database a scheduler may be writing to.
            reader.exec_driver_sql("BEGIN")
        reader.execute(select(col(SchemaVersion.version))).scalar_one_or_none()
    except DatabaseError as error:
        raise StoreError(f"cannot read the source {source.describe()} ({database_error_detail(error)})") from None


def _copy(source: Store, reader: Connection, target: _Target, progress: Progress | None,
          batch_rows: int) -> tuple[list[tuple[str, int]], list[str]]:
    """The checks and the copy in the target's one transaction; returns (rows per table, tables left out)."""
    target.prepare_file()
    try:
        writer = target.engine.connect()
    except DatabaseError as error:
        raise StoreError(_unreachable(target, error)) from None
    with writer:
        step = None  # what the copy was doing, once the checks are passed
        try:
            _begin_target(target, writer)
            _refuse_same_database(source, reader, target, writer)
            plan, skipped = _plan(reader)
            _check_target(target, writer, plan)
            step = "creating the schema"
            _create_schema(target, writer, plan)
            counts = []
            for table in plan:
                step = f"copying table {table.name}"
                counts.append((table.name, _copy_table(source, reader, target, writer, table, progress, batch_rows)))
            step = "resetting the id sequences"
            _reset_sequences(target, writer, plan)
            step = "verifying the copy"
            _verify(reader, target, writer, plan, dict(counts))
            step = "committing"
            writer.commit()
            target.committed = True
            target.loaded = [table.name for table in plan] + [SEARCH_INDEX]
        except StoreError:
            writer.rollback()
            raise
        except DatabaseError as error:
            writer.rollback()
            if step is None and isinstance(error, OperationalError):
                raise StoreError(_unreachable(target, error)) from None
            raise StoreError(f"cannot copy into {target.described}: {step or 'checking the target'} failed "
                             f"({database_error_detail(error)}); the target was left unchanged") from None
        except BaseException:
            writer.rollback()
            raise
        if target.dialect == "sqlite":
            _sqlite_journal(writer, "WAL")  # the store's mode, as it would set it on its next connection
    return counts, skipped


def _begin_target(target: _Target, writer: Connection) -> None:
    """Open the one write transaction, holding what keeps other tracker processes out until it ends."""
    if target.dialect == "sqlite":
        # A new file keeps SQLite's default rollback journal during the copy: a whole database in one transaction
        # would pass through a WAL twice (and need twice the disk), while the journal of a new file holds next to
        # nothing and still undoes a failed copy.
        writer.exec_driver_sql("PRAGMA cache_size = -65536")
        writer.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        # The lock every tracker process takes before its schema check: one opening the target waits until
        # the copy commits or rolls back, and never sees half of it.
        writer.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRES_SCHEMA_LOCK})")


def _sqlite_journal(writer: Connection, mode: str) -> None:
    """Best effort, after the commit: another connection opened meanwhile keeps the mode as it is."""
    try:
        driver = writer.connection.driver_connection
        if driver is None:
            raise RuntimeError("the connection to the target is closed")
        driver.execute(f"PRAGMA journal_mode = {mode}").fetchone()
    except Exception as error:  # noqa: BLE001  (the copy is committed; the store sets WAL when it opens)
        log.warning("could not switch %s to %s mode (%s)", writer.engine.url.database, mode, error)


def _refuse_same_database(source: Store, reader: Connection, target: _Target, writer: Connection) -> None:
    """Two PostgreSQL URLs can name one database in many ways (host names, ports, sockets): ask the servers.

    The source's transaction takes a random advisory lock; the target cannot take it only if it is the same
    server and database, and then the same search path schema means the same tables.
    """
    if source.dialect != "postgresql" or target.dialect != "postgresql":
        return
    key = secrets.randbits(62)
    reader.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    if writer.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}).scalar():
        return
    if reader.execute(text("SELECT current_schema()")).scalar() == writer.execute(text("SELECT current_schema()")).scalar():
        raise StoreError(f"the target {target.described} is the source database itself: give --to another database")


def _plan(reader: Connection) -> tuple[list[Table], list[str]]:
    """The source tables to copy, parents before children, and the ones left out (with why)."""
    present = set(inspect(reader).get_table_names())
    plan: list[Table] = []
    skipped: list[str] = []
    why = {schema.LIVE: "live locks", schema.DERIVED: "rebuilt"}
    live = {"web_session": "web sessions", "login_failure": "failed logins"}  # the web app's (tracker/web)
    for table in SQLModel.metadata.sorted_tables:
        role = schema.TABLES[table.name]
        if table.name not in present or role == schema.BOOKKEEPING:
            continue
        if role == schema.LIVE:
            label = "job leases" if table.name.startswith(LIVE_PREFIXES) else live.get(table.name, why[role])
            skipped.append(f"{table.name} ({label})")
            continue
        plan.append(table)
    for name in schema.tables_with_role(schema.EXTERNAL):
        if name in present:
            plan.append(_portable(Table(name, MetaData(), autoload_with=reader)))
    if SEARCH_INDEX in present:
        skipped.append(f"{SEARCH_INDEX} (rebuilt)")
    for name in sorted(present - set(schema.TABLES)):
        if name.startswith(LIVE_PREFIXES):
            skipped.append(f"{name} (job leases)")
        else:
            skipped.append(f"{name} (not a tracker table)")
    return plan, skipped


def _portable(reflected: Table) -> Table:
    """A reflected table rebuilt with generic types, so it can be created on the other back end."""
    columns = []
    for column in reflected.columns:
        kind = column.type
        if isinstance(kind, LargeBinary):
            kind = LargeBinary()  # SQLite's BLOB is no PostgreSQL type, PostgreSQL's BYTEA no SQLite one
        elif isinstance(kind, String):
            kind = String(kind.length)
        elif isinstance(kind, Float):
            kind = Float()
        elif isinstance(kind, Integer):
            kind = Integer()
        else:
            try:
                kind = kind.as_generic()
            except NotImplementedError:
                pass
        columns.append(Column(column.name, kind, primary_key=column.primary_key, nullable=column.nullable,
                              autoincrement=False))
    table = Table(reflected.name, MetaData(), *columns)
    for index in reflected.indexes:
        Index(index.name, *(table.c[column.name] for column in index.columns), unique=index.unique)
    return table


def _check_target(target: _Target, writer: Connection, plan: Sequence[Table]) -> None:
    """Refuse a target that is not an empty database, or an empty tracker database of this version or older."""
    tables = set(inspect(writer).get_table_names())
    ours = set(schema.TABLES) | {table.name for table in plan}
    if SchemaVersion.__tablename__ not in tables and "paper" not in tables:
        foreign = sorted(name for name in tables - ours if not name.startswith(LIVE_PREFIXES))
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise StoreError(f"the target {target.described} holds tables that are not a tracker's ({shown}): "
                             "copy into an empty database")
    if SchemaVersion.__tablename__ in tables:
        version = writer.execute(select(col(SchemaVersion.version))).scalar_one_or_none() or 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"the target {target.described} was written by a newer tracker (schema {version}, this "
                             f"one knows {SCHEMA_VERSION}): upgrade tracker with 'pip install -U tracker', or copy "
                             "into an empty database")
    if InstanceLock.__tablename__ in tables:
        holder = writer.execute(select(col(InstanceLock.host), col(InstanceLock.pid)).limit(1)).first()
        if holder is not None:
            raise StoreError(f"a tracker process holds a lock on the target {target.described} (pid {holder.pid} on "
                             f"host {holder.host}): stop it, then copy into an empty database")
    held = []
    for table in plan:
        if table.name in tables and writer.execute(select(text("1")).select_from(table).limit(1)).first() is not None:
            held.append((table.name, writer.execute(select(func.count()).select_from(table)).scalar_one()))
    if held:
        raise StoreError(f"the target {target.described} already holds a tracker database ({describe_row_counts(held)}): "
                         "copy into an empty database")
    if target.dialect == "postgresql":
        # Keep writers out of the (empty) tables between this check and the commit; readers may go on.
        existing = [table for table in plan if table.name in tables]
        if existing:
            names = ", ".join(writer.dialect.identifier_preparer.format_table(table) for table in existing)
            writer.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")


def describe_row_counts(counts: Iterable[tuple[str, int]]) -> str:
    """"1,204 papers, 35 runs, 2 recipients": papers and runs first, then the other tables in the order given."""
    order = {"paper": 0, "run": 1}
    parts = []
    for name, count in sorted(counts, key=lambda item: order.get(item[0], 2)):
        singular, plural = LABELS.get(name, (f"row in {name}", f"rows in {name}"))
        parts.append(f"{count:,} {singular if count == 1 else plural}")
    return ", ".join(parts)


def _create_schema(target: _Target, writer: Connection, plan: Sequence[Table]) -> None:
    """The tracker's schema at this version (an empty tracker database there is upgraded), in the copy's transaction."""
    schema.create_or_upgrade(writer)
    for table in plan:
        if table.metadata is not SQLModel.metadata:
            table.create(writer, checkfirst=True)


def _copy_table(source: Store, reader: Connection, target: _Target, writer: Connection, table: Table,
                progress: Progress | None, batch_rows: int) -> int:
    total = reader.execute(select(func.count()).select_from(table)).scalar_one()
    size = BLOB_BATCH_ROWS if any(isinstance(c.type, LargeBinary) for c in table.columns) else batch_rows
    size = max(1, min(size, batch_rows))
    statement, insert, raw = _statements(table, source.dialect, target.dialect)
    normalise = _utc_normaliser(table)
    indexed = table.name == PaperRow.__tablename__
    if progress is not None:
        progress(table.name, 0, total)
    copied = 0
    try:
        batches = iter(reader.execute(statement, execution_options={"yield_per": size}).mappings().partitions())
    except DatabaseError as error:
        raise _read_error(source, table, error) from None
    while True:
        try:
            batch = next(batches, None)
        except DatabaseError as error:
            raise _read_error(source, table, error) from None
        if batch is None:
            break
        rows = [dict(row) for row in batch]
        if normalise is not None:
            for row in rows:
                normalise(row)
        searched = [_search_fields(row) for row in rows] if indexed else None
        for name, key in raw.items():
            for row in rows:
                row[key] = row.pop(name)
        writer.execute(insert, rows)
        if searched:
            save_search_index_rows(target, writer, searched)  # after the papers: paper_fts refers to them
        copied += len(rows)
        if progress is not None:
            progress(table.name, copied, total)
    return copied


def _statements(table: Table, source_dialect: str, target_dialect: str):
    """The select reading `table` by primary key, the insert writing it, and the JSON columns' parameter names.

    JSON travels as the text the source holds (SQLite's TEXT, PostgreSQL's `json`, which keeps its input as
    written): decoding and re-encoding eight JSON columns per paper only to write the same text again was a
    third of a copy's time, and the text arrives byte for byte.
    """
    raw = {column.name: f"{column.name}__json" for column in table.columns if isinstance(column.type, JSON)}
    columns = [(cast(column, Text) if source_dialect == "postgresql" else type_coerce(column, Text)).label(column.name)
               if column.name in raw else column for column in table.columns]
    statement = select(*columns).order_by(*table.primary_key.columns)
    insert = table.insert()
    if raw:
        params = {name: bindparam(key, type_=Text) for name, key in raw.items()}
        insert = insert.values({name: cast(param, JSON) if target_dialect == "postgresql" else param
                                for name, param in params.items()})
    return statement, insert, raw


def _search_fields(row: dict) -> dict:
    """What the search text is built from, the JSON columns among them decoded from their text."""
    return {"pmid": row["pmid"], "title": row["title"], "abstract": row["abstract"],
            **{name: json.loads(row[name]) for name in SEARCHED_JSON_COLUMNS}}


def _read_error(source: Store, table: Table, error: DatabaseError) -> StoreError:
    return StoreError(f"cannot read table {table.name} of the source {source.describe()} ({database_error_detail(error)}); "
                      "the target was left unchanged")


def _utc_normaliser(table: Table) -> Callable[[dict], None] | None:
    """What makes each datetime acceptable to its column's type, as the same UTC moment; None when nothing needs it.

    The values are UTC wall times everywhere. sqlmodel's UTCDateTime columns (DateTime(timezone=True) inside)
    return aware UTC values and refuse naive ones; plain DateTime columns (older sqlmodel releases, reflected
    tables) hold naive ones. Either kind of source value is turned into what the column's type takes.
    """
    aware: list[str] = []
    naive: list[str] = []
    for column in table.columns:
        kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
        if isinstance(kind, DateTime):
            (aware if kind.timezone else naive).append(column.name)
    if not aware and not naive:
        return None

    def normalise(row: dict) -> None:
        for name in aware:
            value = row[name]
            if value is not None and value.tzinfo is None:
                row[name] = value.replace(tzinfo=timezone.utc)
        for name in naive:
            value = row[name]
            if value is not None and value.tzinfo is not None:
                row[name] = value.astimezone(timezone.utc).replace(tzinfo=None)

    return normalise


def _reset_sequences(target: _Target, writer: Connection, plan: Sequence[Table]) -> None:
    """Move each serial sequence past the copied ids (PostgreSQL; SQLite takes max(rowid) + 1 by itself)."""
    if target.dialect != "postgresql":
        return
    quote = writer.dialect.identifier_preparer
    for table in plan:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        column = quote.quote(keys[0].name)
        writer.execute(
            text(f"SELECT setval(pg_get_serial_sequence(:table, :column), coalesce(max({column}), 1), "
                 f"max({column}) IS NOT NULL) FROM {quote.format_table(table)}"),
            {"table": quote.format_table(table), "column": keys[0].name},
        )


def _verify(reader: Connection, target: _Target, writer: Connection, plan: Sequence[Table],
            copied: dict[str, int]) -> None:
    """Each table's rows counted on both sides (the source within its snapshot), and the search index's."""
    for table in plan:
        before = reader.execute(select(func.count()).select_from(table)).scalar_one()
        after = count_rows(writer, table)
        if not before == after == copied[table.name]:
            raise StoreError(f"the copy of table {table.name} does not match: {before:,} rows in the source, "
                             f"{copied[table.name]:,} copied, {after:,} in the target; the target was left unchanged")
    papers = copied.get(PaperRow.__tablename__, 0)
    indexed = writer.execute(text(f"SELECT count(*) FROM {SEARCH_INDEX}")).scalar_one()
    if indexed != papers:
        raise StoreError(f"the rebuilt search index of {target.described} holds {indexed:,} papers, not {papers:,}; "
                         "the target was left unchanged")


def count_rows(connection: Connection, table: Table) -> int:
    return connection.execute(select(func.count()).select_from(table)).scalar_one()


def _unreachable(target: _Target, error: DatabaseError) -> str:
    if target.dialect == "postgresql":
        return (f"cannot connect to the target {target.described} ({database_error_detail(error)}): start its PostgreSQL server, "
                "or fix the URL given to --to (user, password, host, port, database)")
    detail = database_error_detail(error)
    if "locked" in detail or "busy" in detail:
        return (f"cannot open the target {target.described} ({detail}): another process is writing to it; "
                "stop it, or give --to another file")
    return f"cannot open the target {target.described} ({detail}): give --to another file"


__all__ = ["CopyReport", "copy_database", "describe_row_counts", "count_rows", "BATCH_ROWS"]
