"""Upgrades that keep cron running: an older SQLite database brought to this tracker's schema on its own, after a
backup, when that is quick; and the same backup before `tracker db migrate`.

When
    A command given a database of an older tracker (after `pip install -U`) upgrades it on its own when it is
    SQLite, `auto_migrate` is on (`[database] auto_migrate`, TRACKER_AUTO_MIGRATE; the default) and the pending
    migrations are estimated (tracker/store/schema.py, from each migration's measured cost per paper) to take
    under `QUICK_UPGRADE` seconds. Otherwise it keeps refusing with "run 'tracker db migrate'": a long upgrade is
    for a person to start, and a PostgreSQL database's backups are its team's, not the tracker's.

The backup
    Before the first migration, inside the migrations' own write transaction (so nothing can change the database
    between the copy and the upgrade), the database is copied with SQLite's online backup API to
    `<the database's folder>/backups/<name>-schema-<old version>-<date>.sqlite3` (0600, the folder 0700); only
    the newest `KEEP_BACKUPS` of that database are kept. A backup that cannot be written stops the upgrade before
    it starts. A failed migration rolls the whole upgrade back: the database is as it was, and the backup is
    there besides.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from tracker.errors import StoreError
from tracker.store import schema
from tracker.store.database import Store, holds_database, open_store

QUICK_UPGRADE = 60.0  # seconds: an upgrade estimated under this runs on its own
KEEP_BACKUPS = 3
BACKUP_FOLDER = "backups"


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade did: the database, its schema before and after, the migrations and the backup it wrote."""

    where: str
    old_version: int
    applied: tuple[schema.Applied, ...]
    backup: Path | None

    @property
    def new_version(self) -> int:
        return self.applied[-1].migration.version if self.applied else self.old_version

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.applied)

    def describe(self) -> str:
        """The one line a command says when it upgraded the database on its own."""
        kept = f"; the database as it was is kept in {self.backup}" if self.backup else ""
        return (f"upgraded {self.where} from schema {self.old_version} to {self.new_version} for this version of "
                f"tracker ({self.seconds:.1f} s){kept}")


def backup_folder(database: Path) -> Path:
    return database.parent / BACKUP_FOLDER


def backup_path(database: Path, version: int, day: date) -> Path:
    """`<folder>/backups/tracker-schema-3-2026-01-05.sqlite3`, made unique with "-2", "-3" ... when taken."""
    folder = backup_folder(database)
    base = f"{database.stem}-schema-{version}-{day.isoformat()}"
    path, number = folder / f"{base}.sqlite3", 1
    while path.exists():
        number += 1
        path = folder / f"{base}-{number}.sqlite3"
    return path


def write_backup(database: Path, target: Path) -> None:
    """A consistent copy of the SQLite database at `database` in `target`, by SQLite's online backup API.

    Written under a temporary name and renamed when complete, so a copy at `target` is always whole.
    """
    partial = target.with_name(f".{target.name}.part")
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=60)) as source, \
                closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file: no -wal beside it when opened
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as error:
        with suppress(OSError):
            partial.unlink()
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise StoreError(f"cannot write a backup of {database} to {target.parent} ({reason}): free some disk space or "
                         f"make {target.parent} writable; nothing was upgraded") from None


def prune_backups(database: Path, keep: int = KEEP_BACKUPS) -> list[Path]:
    """Remove all but the newest `keep` backups of `database`; returns those removed."""
    folder = backup_folder(database)
    found = sorted(folder.glob(f"{database.stem}-schema-*.sqlite3"), key=lambda path: path.stat().st_mtime_ns,
                   reverse=True)
    removed = []
    for path in found[keep:]:
        with suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def upgrade_store(store: Store, *, backup: bool = True, day: date | None = None,
                  on_backup: Callable[[Path], None] | None = None,
                  on_step: Callable[[schema.Migration], None] | None = None) -> Upgrade | None:
    """Run the pending migrations of `store` in one transaction, after a backup when `backup` and the store is
    SQLite; None when there was nothing to do (another process may have just done it)."""
    written: list[Path] = []
    seen: list[schema.SchemaState] = []

    def before(state: schema.SchemaState) -> None:
        seen.append(state)
        if backup and store.path is not None:
            path = backup_path(store.path, state.version or 0, day or date.today())
            write_backup(store.path, path)
            written.append(path)
            prune_backups(store.path)
            if on_backup is not None:
                on_backup(path)

    applied = store.migrate(on_step, before=before)
    if not seen:
        return None
    return Upgrade(store.describe(), seen[0].version or 0, tuple(applied), written[0] if written else None)


def upgrade_if_quick(url: str, *, say: Callable[[str], None]) -> Upgrade | None:
    """Upgrade the SQLite database at `url` on its own when it is older and the upgrade is quick (see the module
    docstring), saying so with `say`; StoreError naming `tracker db migrate` when it is older but too long to do."""
    if not holds_database(url):
        return None
    reader = Store(url, readonly=True)
    try:
        if reader.path is None:
            return None  # PostgreSQL: open_store refuses an older one with today's advice
        state = reader.schema_state()
        if state.kind != schema.OLDER:
            return None
        pending = state.pending
        papers = reader.count_papers()
    finally:
        reader.close()
    if schema.estimate_seconds(pending, papers) >= QUICK_UPGRADE:
        raise StoreError(
            f"{reader.describe()} is at schema {state.version} and this tracker needs schema {schema.SCHEMA_VERSION}; "
            f"the upgrade is too long to run on its own ({schema.describe_cost(pending, papers)}): "
            f"run 'tracker db migrate' (schema {state.version} → {schema.SCHEMA_VERSION})")
    try:
        writer = Store(url)
    except StoreError:
        return None  # not writable here: open_store says what to run
    try:
        upgrade = upgrade_store(writer)
    finally:
        writer.close()
    if upgrade is not None:
        say(upgrade.describe())
    return upgrade


def open_current_store(url: str, *, readonly: bool = False, auto_migrate: bool = True,
                       say: Callable[[str], None] = print, pool_size: int | None = None) -> Store:
    """`open_store`, after upgrading an older SQLite database on its own when `auto_migrate` allows and it is quick."""
    if auto_migrate:
        upgrade_if_quick(url, say=say)
    return open_store(url, readonly=readonly, pool_size=pool_size)


__all__ = ["Upgrade", "QUICK_UPGRADE", "KEEP_BACKUPS", "backup_path", "write_backup", "prune_backups", "upgrade_store",
           "upgrade_if_quick", "open_current_store"]
