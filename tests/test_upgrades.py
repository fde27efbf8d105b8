"""Upgrades that keep cron running: a quick upgrade of an older SQLite database runs on its own after a backup;
a long one, PostgreSQL, and `auto_migrate = false` keep the refusal; a failed migration changes nothing."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from datetime import date, datetime, time

import pytest
from sqlalchemy import text

from tests.conftest import cli_env, run_tracker, write_topic
from tests.test_schema import columns, make_schema_3
from tests.test_store import make_paper
from tracker.errors import StoreError
from tracker.store import SCHEMA_VERSION, Store, open_store, schema
from tracker.store.papers import save_papers
from tracker.store.upgrade import KEEP_BACKUPS, QUICK_UPGRADE, open_current_store, upgrade_store


@pytest.fixture
def schema_3_home(tmp_path):
    """A tracker home whose database an older tracker (schema 3) wrote, with two papers of 'dosing'."""
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    database = home / "db" / "tracker.sqlite3"
    store = open_store(f"sqlite:///{database}")
    save_papers(store, [make_paper(7), make_paper(8)], topic="dosing")
    make_schema_3(store)
    store.close()
    return home, database


def read_backup(path) -> tuple[int, int]:
    """(schema version, papers) of a backup, opened read-only with the standard library."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        version = connection.execute("SELECT version FROM tracker_schema").fetchone()[0]
        papers = connection.execute("SELECT count(*) FROM paper").fetchone()[0]
    return version, papers


def test_a_command_after_pip_install_u_upgrades_a_schema_3_database_on_its_own_after_a_backup(schema_3_home):
    home, database = schema_3_home
    exported = run_tracker("export", env=cli_env(home, None))
    backup = database.parent / "backups" / f"tracker-schema-3-{date.today()}.sqlite3"
    assert exported.code == 0, exported.err
    assert len(exported.out.splitlines()) == 3  # stdout is the CSV alone: the header and both papers
    assert re.fullmatch(rf"upgraded {re.escape(str(database))} from schema 3 to {SCHEMA_VERSION} for this version of "
                        rf"tracker \(\d+\.\d s\); the database as it was is kept in {re.escape(str(backup))}\n",
                        exported.err), exported.err
    assert read_backup(backup) == (3, 2)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.parent.stat().st_mode) == 0o700
    reader = Store(f"sqlite:///{database}", readonly=True)
    try:
        assert (reader.schema_state().kind, reader.schema_state().version) == ("current", SCHEMA_VERSION)
        assert [name for _, name, _, _ in schema.applied_migrations(reader.engine.connect())] == [
            m.name for m in schema.MIGRATIONS[3:]]
    finally:
        reader.close()
    again = run_tracker("export", env=cli_env(home, None))
    assert (again.code, again.err) == (0, "")  # said once: the next command finds it current
    assert sorted(p.name for p in backup.parent.iterdir()) == [backup.name]


def test_the_last_three_backups_are_kept(tmp_path):
    url = f"sqlite:///{tmp_path / 'db' / 'tracker.sqlite3'}"
    made = []
    for day in (date(2026, 1, 5), date(2026, 2, 2), date(2026, 3, 2), date(2026, 4, 6)):
        store = open_store(url)
        make_schema_3(store)
        upgrade = upgrade_store(store, day=day)
        store.close()
        assert upgrade is not None and upgrade.backup is not None
        made.append(upgrade.backup)
        taken = datetime.combine(day, time(12)).timestamp()
        os.utime(upgrade.backup, (taken, taken))
    kept = sorted((tmp_path / "db" / "backups").iterdir())
    assert [path.name for path in kept] == [f"tracker-schema-3-{day}.sqlite3" for day in ("2026-02-02", "2026-03-02",
                                                                                         "2026-04-06")]
    assert len(kept) == KEEP_BACKUPS and not made[0].exists()


def test_a_long_upgrade_is_left_to_tracker_db_migrate(schema_3_home, monkeypatch):
    home, database = schema_3_home
    slow = tuple(schema.Migration(m.version, m.name, m.apply, seconds_per_paper=QUICK_UPGRADE / 2 if m.version == 5 else
                                  m.seconds_per_paper) for m in schema.MIGRATIONS)
    monkeypatch.setattr(schema, "MIGRATIONS", slow)
    said: list[str] = []
    with pytest.raises(StoreError) as refused:
        open_current_store(f"sqlite:///{database}", say=said.append)
    assert str(refused.value) == (
        f"{database} is at schema 3 and this tracker needs schema {SCHEMA_VERSION}; the upgrade is too long to run on "
        "its own (2 papers, this may take about 60 seconds; do not stop it): run 'tracker db migrate' "
        f"(schema 3 → {SCHEMA_VERSION})")
    assert said == [] and not (database.parent / "backups").exists()
    assert Store(f"sqlite:///{database}", readonly=True).schema_state().version == 3


@pytest.mark.parametrize("how", ["environment", "tracker.toml"])
def test_auto_migrate_false_keeps_the_refusal(schema_3_home, how):
    home, database = schema_3_home
    extra = {"TRACKER_AUTO_MIGRATE": "false"} if how == "environment" else {}
    if how == "tracker.toml":
        (home / "tracker.toml").write_text("[database]\nauto_migrate = false\n", encoding="utf-8")
    result = run_tracker("fetch", env=cli_env(home, None, **extra))
    assert (result.code, result.out) == (2, "")
    assert result.err == (f"error: {database} is at schema 3 and this tracker needs schema {SCHEMA_VERSION}: "
                          f"run 'tracker db migrate' (schema 3 → {SCHEMA_VERSION})\n")
    assert not (database.parent / "backups").exists()


def test_auto_migrate_takes_only_true_or_false(tmp_path):
    bad = run_tracker("topics", env=cli_env(tmp_path, None, TRACKER_AUTO_MIGRATE="sometimes"))
    assert (bad.code, bad.err) == (2, "error: TRACKER_AUTO_MIGRATE='sometimes' is not true or false: set it to true "
                                      "or false (or 1 or 0)\n")
    (tmp_path / "tracker.toml").write_text('[database]\nauto_migrate = "no"\n', encoding="utf-8")
    quoted = run_tracker("topics", env=cli_env(tmp_path, None))
    assert quoted.err == ("error: tracker.toml: [database] auto_migrate = 'no' is not true or false: write true or "
                          "false, without quotes\n")


@pytest.mark.postgresql
def test_postgresql_is_never_upgraded_on_its_own(tmp_path):
    from tests.conftest import postgres_schema

    with postgres_schema() as url:
        store = open_store(url)
        save_papers(store, [make_paper(7)], topic="dosing")
        make_schema_3(store)
        where = store.describe()
        store.close()
        write_topic(tmp_path, "dosing", "norepinephrine dosing")
        result = run_tracker("export", env=cli_env(tmp_path, None, TRACKER_DB_URL=url))
        assert (result.code, result.out) == (2, "")
        assert result.err == (f"error: {where} is at schema 3 and this tracker needs schema {SCHEMA_VERSION}: "
                              f"run 'tracker db migrate' (schema 3 → {SCHEMA_VERSION})\n")
        reader = Store(url, readonly=True)
        try:
            assert reader.schema_state().version == 3
        finally:
            reader.close()


def test_a_migration_failing_midway_leaves_the_database_as_it_was_and_the_backup_beside_it(schema_3_home, monkeypatch):
    home, database = schema_3_home
    url = f"sqlite:///{database}"
    before_columns = columns(url)
    with sqlite3.connect(database) as connection:
        before_rows = connection.execute("SELECT pmid, title, mesh_terms FROM paper ORDER BY pmid").fetchall()

    def power_cut(connection):
        raise RuntimeError("power cut")

    broken = tuple(schema.Migration(m.version, m.name, power_cut) if m.version == 6 else m for m in schema.MIGRATIONS)
    monkeypatch.setattr(schema, "MIGRATIONS", broken)
    with pytest.raises(RuntimeError, match="power cut"):
        open_current_store(url, say=lambda line: None)  # migrations 4 and 5 ran before 6 failed

    assert columns(url) == before_columns
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT pmid, title, mesh_terms FROM paper ORDER BY pmid").fetchall() == before_rows
        assert connection.execute("SELECT version FROM tracker_schema").fetchone() == (3,)
        assert connection.execute("SELECT count(*) FROM tracker_migration").fetchone() == (0,)
    [backup] = (database.parent / "backups").iterdir()
    assert read_backup(backup) == (3, 2)
    monkeypatch.undo()
    store = open_current_store(url, say=lambda line: None)  # the next command upgrades it
    try:
        assert store.schema_state().version == SCHEMA_VERSION
    finally:
        store.close()


def test_db_migrate_no_backup_writes_none(schema_3_home):
    home, database = schema_3_home
    env = cli_env(home, None)
    done = run_tracker("db", "migrate", "--no-backup", env=env)
    assert done.code == 0, done.err
    assert "kept in" not in done.out and not (database.parent / "backups").exists()
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version FROM tracker_schema").fetchone() == (SCHEMA_VERSION,)


def test_a_backup_that_cannot_be_written_upgrades_nothing(schema_3_home):
    home, database = schema_3_home
    (database.parent / "backups").write_text("a file where the folder should be")
    store = Store(f"sqlite:///{database}")
    try:
        with pytest.raises(StoreError) as refused:
            upgrade_store(store)
        assert str(refused.value).startswith(f"cannot write a backup of {database} to {database.parent / 'backups'} (")
        assert str(refused.value).endswith("): free some disk space or make "
                                           f"{database.parent / 'backups'} writable; nothing was upgraded")
        with store.engine.connect() as connection:
            assert connection.execute(text("SELECT version FROM tracker_schema")).scalar() == 3
    finally:
        store.close()
