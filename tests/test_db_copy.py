"""`tracker db copy`: a whole tracker database into another one, SQLite to PostgreSQL and back, losing nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, func, inspect, select, text
from sqlmodel import SQLModel

from tests.conftest import cli_env, postgres_schema, run_tracker
from tests.test_store import make_paper
from tracker.errors import StoreError
from tracker.ncbi.notices import Notice
from tracker.ncbi.pubmed import Author, MeshHeading
from tracker.outputs.export import export_papers
from tracker.store import SCHEMA_VERSION, open_store
from tracker.store import copy as copy_module
from tracker.store.changes import mark_deleted, save_checked_through, save_refreshed
from tracker.store.copy import copy_database
from tracker.store.deliveries import ensure_recipient, mark_failed, mark_sent, save_pending
from tracker.store.digests import save_digest_record
from tracker.store.models import InstanceLock, PaperRow, Run, StatusEvent, TopicState
from tracker.store.papers import save_papers
from tracker.store.rows import row_to_paper, search_text, search_text_from_row
from tracker.store.runs import RunCounts, finish_run, start_run
from tracker.store.search import search_papers

TOPICS = ["dosing", "elderly"]
SEARCHES = ["norepinephrine", "vasopressor", "Ngan Kee", "bolus OR elderly"]
JOB_TABLE = "scheduler_jobs"
NOT_COPIED = {"instance_lock", "tracker_schema", "tracker_migration", "web_session", "login_failure"}


# -- a realistic source ----------------------------------------------------------------------

def varied_paper(pmid: int):
    """Papers that differ where the search text and the exports look: titles, MeSH, keywords, authors."""
    paper = make_paper(pmid)
    changes: dict = {"title": f"Norepinephrine {'bolus' if pmid % 2 else 'infusion'} in trial {pmid}"}
    if pmid % 3 == 0:
        changes["mesh_headings"] = ()
        changes["keywords"] = ()
    if pmid % 4 == 0:
        changes["mesh_headings"] = (MeshHeading("Aged", "D000368", False, ()),
                                    MeshHeading("Hypotension", "D007022", True, (("drug therapy", True),
                                                                                 ("etiology", False))))
        changes["keywords"] = ("elderly", "phenylephrine", "=cmd|' /C calc'!A0")
    if pmid % 5 == 0:
        changes["authors"] = (Author(collective_name="Vasopressor Trialists"),
                              Author("Østergaard", "Lærke", "L", affiliations=()))
    if pmid % 7 == 0:
        changes["pub_date"] = None
        changes["pub_date_text"] = None
    changes["history"] = (("pubmed", f"2024-0{pmid % 9 + 1}-01T06:00"), ("entrez", "2019-01-05T06:00"))
    return dataclasses.replace(paper, **changes)


def build_source(store) -> dict:
    """Every table the tracker writes, through the library: papers and topics, runs (succeeded, failed, still
    running), watermarks, change checks, revisions and status events, digests, recipients, the outbox (sent,
    failed, pending) and both ledgers, plus a scheduler job, a live lock and a job lease that must not travel."""
    first = start_run(store, "dosing", kind="backfill", query="norepinephrine dosing", window_start=None,
                      window_end=date(2024, 3, 1))
    save_papers(store, [varied_paper(pmid) for pmid in range(1, 41)], topic="dosing", run_id=first.id)
    finish_run(store, first.id, RunCounts(count=40, total_count=40, matched=40, new_papers=40, fetched=40,
                                          requests=3, query_translation="norepinephrine[All Fields]",
                                          warnings=["PhraseNotFound: nothing"]),
               watermark=TopicState(topic="dosing", query="norepinephrine dosing", since=date(2020, 1, 1),
                                    watermark=date(2024, 3, 1), updated_at=first.started_at))
    second = start_run(store, "elderly", kind="fetch", query="norepinephrine elderly", window_start=date(2024, 1, 1),
                       window_end=date(2024, 3, 2))
    save_papers(store, [varied_paper(pmid) for pmid in range(30, 61)], topic="elderly", run_id=second.id)
    finish_run(store, second.id, RunCounts(count=31, matched=31, new_papers=20),
               watermark=TopicState(topic="elderly", query="norepinephrine elderly", watermark=date(2024, 3, 2),
                                    updated_at=second.started_at))
    failed = start_run(store, "elderly", kind="fetch", query="norepinephrine elderly", window_start=date(2024, 3, 2),
                       window_end=date(2024, 3, 9))
    finish_run(store, failed.id, RunCounts(requests=2), error="esearch failed after 3 attempts: HTTP 502")
    start_run(store, "dosing", kind="fetch", query="norepinephrine dosing", window_start=date(2024, 3, 1),
              window_end=date(2024, 3, 9))  # still running
    save_papers(store, [varied_paper(pmid) for pmid in range(61, 64)])  # from a query: in no topic

    from tracker.store.decisions import NewDecision, save_decisions

    save_decisions(store, "dosing", [NewDecision(1, "ana", "include", note="dose well described"),
                                     NewDecision(2, "ana", "exclude", ("wrong population",)),
                                     NewDecision(2, "ben", "exclude", ("wrong outcome", "other"))])
    save_decisions(store, "dosing", [NewDecision(1, "ana", "exclude", ("wrong study design",))])  # replaces the first
    from tracker.web.accounts import add_user, authenticate
    from tracker.web.security import Access, new_session

    add_user(store, "ana", "ana-password-1", admin=True)  # the web app's accounts travel; sessions and failures not
    add_user(store, "ben", "ben-password-2")
    new_session(Access(store=store, hosts=frozenset(), team=True), account="ana", reviewer="ana", role="admin")
    authenticate(store, "ben", "not-his-password", address="10.0.0.7")
    save_checked_through(store, "dosing", date(2024, 3, 1), first.id)
    from tracker.store.suggestions import (
        Found,
        decide_suggestions,
        mark_seeds_asked,
        save_found,
        save_suggestion_state,
    )

    # Suggestions beyond the query: papers 61-63 are in no topic; 62 joins 'dosing' from them, 63 is dismissed.
    save_found(store, "dosing", [Found(61, {"similar": (1, 3)}, 4200), Found(62, {"cites": (1,)}),
                                 Found(63, {"similar": (1,), "cited by": (3,)}, 17)], run_id=first.id)
    decide_suggestions(store, "dosing", [62], "added", reviewer="ana")
    decide_suggestions(store, "dosing", [63], "dismissed", reviewer="ben")
    save_suggestion_state(store, "dosing", checked_through=date(2024, 3, 2))
    mark_seeds_asked(store, "dosing", [1, 3, 31415926])
    retracted = dataclasses.replace(varied_paper(12), publication_types=("Retracted Publication", "Journal Article"))
    events = save_refreshed(store, [(retracted, [Notice("retraction", 70012, "Retraction in: J 2024;1:2")]),
                                    (varied_paper(13), [Notice("erratum", None, "Erratum in: J 2024;1:3")])],
                            run_id=first.id)
    events += mark_deleted(store, {14: (None, "no longer in PubMed")}, run_id=second.id)
    save_digest_record(store, "dosing", period_start=None, period_end=datetime(2024, 3, 1, 6, tzinfo=timezone.utc),
                       papers=40, path="reports/dosing/2024-03-01.md")
    save_digest_record(store, "elderly", period_start=datetime(2024, 3, 1, 6, tzinfo=timezone.utc),
                       period_end=datetime(2024, 3, 8, 6, 30, 15, 123456, tzinfo=timezone.utc), papers=20, path=None)

    now = datetime(2024, 3, 8, 7, 0, 0, 654321, tzinfo=timezone.utc)
    ensure_recipient(store, "ana@example.org", since=now - timedelta(days=7), now=now)
    ensure_recipient(store, "ben@example.org", since=now - timedelta(days=30), now=now)
    save_pending(store, message_id="<1@tracker>", recipient="ana@example.org", subject="Weekly: 3 papers",
                 pmids=[1, 2, 3], now=now)
    mark_sent(store, "<1@tracker>", recipient="ana@example.org", topic_of={1: "dosing", 2: "dosing", 30: "elderly"},
              now=now + timedelta(seconds=2), event_ids=[event.id for event in events])
    save_pending(store, message_id="<2@tracker>", recipient="ben@example.org", subject="Weekly: 1 paper", pmids=[4],
                 now=now)
    mark_failed(store, "<2@tracker>", "SMTP 550: mailbox unavailable")
    save_pending(store, message_id="<3@tracker>", recipient="ben@example.org", subject="Weekly: 2 papers",
                 pmids=[5, 6], now=now + timedelta(minutes=1))

    with store.engine.begin() as connection:
        jobs = job_table()
        jobs.create(connection)
        connection.execute(jobs.insert(), [
            {"id": "fetch:dosing", "next_run_time": 1709884800.25, "job_state": b"\x80\x05\x95job\x00state\xff"},
            {"id": "email", "next_run_time": None, "job_state": bytes(range(256))},
        ])
        connection.execute(InstanceLock.__table__.insert().values(
            name="run:dosing", token="t", host="laptop", pid=4242, boot_id=None, started_at=now, heartbeat_at=now))
        if "job_lease" in inspect(connection).get_table_names():
            connection.execute(text("INSERT INTO job_lease (job, due_at, status, token, host, pid, attempts, "
                                    "started_at, heartbeat_at) VALUES ('email', :now, 'running', 't', 'laptop', "
                                    "4242, 1, :now, :now)"), {"now": now.replace(tzinfo=None)})
    return {"events": len(events)}


def job_table() -> Table:
    """APScheduler's job table, as its SQLAlchemyJobStore (tracker/schedule/apscheduler3.py) creates it."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    return SQLAlchemyJobStore(url="sqlite://", tablename=JOB_TABLE).jobs_t


# -- what "the same database" means ----------------------------------------------------------

def copied_tables(store) -> list[Table]:
    present = set(inspect(store.engine).get_table_names())
    tables = [table for table in SQLModel.metadata.sorted_tables
              if table.name in present and table.name not in NOT_COPIED and not table.name.startswith("job_lease")]
    if JOB_TABLE in present:
        tables.append(job_table())
    return tables


def dump(store) -> dict[str, list[dict]]:
    """Every copied table's rows as dicts, by primary key."""
    found = {}
    with store.engine.connect() as connection:
        for table in copied_tables(store):
            rows = connection.execute(select(table).order_by(*table.primary_key.columns)).mappings()
            found[table.name] = [dict(row) for row in rows]
    return found


def exports(store) -> dict[str, bytes]:
    found = {}
    for fmt in ("csv", "ris"):
        buffer = io.BytesIO()
        export_papers(store, TOPICS, buffer, fmt=fmt)
        found[fmt] = buffer.getvalue()
    return found


def searches(store, ranked: bool = True) -> dict[str, list]:
    found = {}
    for query in SEARCHES:
        hits = search_papers(store, query, limit=100)
        found[query] = [(hit.pmid, hit.topics, hit.status) for hit in hits]
        if not ranked:
            found[query] = sorted(found[query])
    return found


def raw_sqlite(path: Path) -> dict[str, list[tuple]]:
    """The rows exactly as SQLite holds them (datetime strings, JSON text, blobs), search index included."""
    with sqlite3.connect(path) as connection:
        names = [name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'paper_fts%' ORDER BY name")]
        found = {name: sorted(connection.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
                 for name in names if name not in NOT_COPIED and not name.startswith("job_lease")}
        found["paper_fts"] = connection.execute(
            "SELECT rowid, title, abstract, mesh, keywords, authors FROM paper_fts ORDER BY rowid").fetchall()
    return found


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# -- the round trip --------------------------------------------------------------------------

@pytest.fixture
def source(tmp_path):
    store = open_store(sqlite_url(tmp_path / "source.sqlite3"))
    build_source(store)
    yield store
    store.close()


def test_round_trip_through_either_back_end_loses_nothing(tmp_path, source, db_url):
    """SQLite -> (SQLite | PostgreSQL) -> SQLite: every row, export, search result and ledger entry the same."""
    before = dump(source)
    assert all(before[name] for name in ("status_event", "event_delivery", "paper_revision", "delivery", "recipient",
                                         "topic_state", "change_check", "digest", JOB_TABLE, "decision",
                                         "current_decision", "screening", "account", "suggestion", "suggestion_state",
                                         "suggestion_seed"))
    assert len(before["decision"]) == 4 and before["decision"][3]["replaces"] == before["decision"][0]["id"]
    calls = []
    there = copy_database(source, db_url, batch_rows=7, progress=lambda *call: calls.append(call))
    assert dict(there.tables) == {name: len(rows) for name, rows in before.items()}
    assert there.indexed == len(before["paper"]) == 63
    assert there.skipped[0] == "instance_lock (live locks)" and "paper_fts (rebuilt)" in there.skipped
    assert {"web_session (web sessions)", "login_failure (failed logins)"} <= set(there.skipped)
    assert [call for call in calls if call[0] == "paper"] == [("paper", 0, 63)] + [
        ("paper", min(done, 63), 63) for done in range(7, 70, 7)]

    middle = open_store(db_url)
    assert dump(middle) == before  # datetimes, dates, JSON, blobs and ids exactly as they were
    assert exports(middle) == exports(source)
    assert searches(middle, ranked=False) == searches(source, ranked=False)
    with middle.session() as session:
        assert session.get(InstanceLock, "run:dosing") is None  # a live lock stays with its database

    back = tmp_path / "back.sqlite3"
    copy_database(middle, sqlite_url(back))
    final = open_store(sqlite_url(back))
    assert dump(final) == before
    assert exports(final) == exports(source)
    assert searches(final) == searches(source)  # bm25 ranking and scores' order included
    final.close()
    assert raw_sqlite(back) == raw_sqlite(Path(source.path))  # byte for byte as SQLite stores them

    # The copy's sequences continue after the copied ids: new rows do not collide.
    with middle.session() as session:
        last_run = session.execute(select(func.max(Run.id))).scalar_one()
        last_event = session.execute(select(func.max(StatusEvent.id))).scalar_one()
    assert start_run(middle, "dosing", kind="fetch", query="q", window_start=None, window_end=None).id == last_run + 1
    assert mark_deleted(middle, {20: (None, "gone")}, run_id=None)[0].id == last_event + 1
    assert save_digest_record(middle, "dosing", period_start=None, period_end=datetime.now(timezone.utc), papers=0,
                              path=None).id == len(before["digest"]) + 1
    middle.close()


def test_round_trip_sqlite_postgresql_sqlite(tmp_path, source):
    """The team move and back: SQLite -> PostgreSQL -> SQLite, the same exports, searches and delivery ledger."""
    with postgres_schema() as postgres:
        report = copy_database(source, postgres)
        assert report.target == report.target_url and "tracker:***@" in report.target
        team = open_store(postgres)
        with team.engine.connect() as connection:
            # The tsvector index was rebuilt from the papers' columns: one document per paper, and it finds them.
            assert connection.execute(text("SELECT count(*) FROM paper_fts")).scalar() == 63
            found = connection.execute(text("SELECT pmid FROM paper_fts WHERE document @@ "
                                            "plainto_tsquery('english', 'phenylephrine') ORDER BY pmid")).scalars()
            assert list(found) == [pmid for pmid in range(1, 64) if pmid % 4 == 0]
        assert exports(team) == exports(source)
        copy_database(team, sqlite_url(tmp_path / "back.sqlite3"))
        team.close()
    back = open_store(sqlite_url(tmp_path / "back.sqlite3"))
    assert dump(back) == dump(source)
    assert exports(back) == exports(source)
    assert searches(back) == searches(source)
    back.close()
    assert raw_sqlite(tmp_path / "back.sqlite3") == raw_sqlite(Path(source.path))


def test_postgresql_to_postgresql(source):
    with postgres_schema() as first, postgres_schema() as second:
        copy_database(source, first)
        one = open_store(first)
        copy_database(one, second)
        two = open_store(second)
        assert dump(two) == dump(one) == dump(source)
        assert searches(two) == searches(one)
        one.close()
        two.close()


def test_writes_to_the_source_during_the_copy_are_not_half_copied(tmp_path, db_url):
    """The source is read as of one moment: a scheduler storing papers and a run meanwhile is not half copied."""
    origin = open_store(db_url)
    build_source(origin)
    before = dump(origin)
    writer = open_store(db_url)  # another process, as far as the source's transactions go

    def meanwhile(table: str, done: int, total: int) -> None:
        if table == "paper" and done == 10:
            run = start_run(writer, "dosing", kind="fetch", query="q", window_start=None, window_end=None)
            save_papers(writer, [varied_paper(pmid) for pmid in range(900, 920)], topic="dosing", run_id=run.id)

    report = copy_database(origin, sqlite_url(tmp_path / "copy.sqlite3"), batch_rows=10, progress=meanwhile)
    assert report.count("paper") == 63
    copied = open_store(sqlite_url(tmp_path / "copy.sqlite3"))
    assert dump(copied) == before
    copied.close()
    assert len(dump(origin)["paper"]) == 83  # the writes went through, into the source only
    writer.close()
    origin.close()


def test_search_text_from_a_row_is_the_papers(tmp_path, source):
    """The index rebuilt from rows is the one written from parsed papers (one definition, two entry points)."""
    with source.session() as session:
        rows = list(session.execute(select(PaperRow)).scalars())
    assert len(rows) == 63
    for row in rows:
        assert search_text_from_row(row) == search_text(row_to_paper(row))
        assert search_text_from_row(row.model_dump()) == search_text(row_to_paper(row))
    with sqlite3.connect(source.path) as connection:
        written = {pmid: (title, abstract, mesh, keywords, authors) for pmid, title, abstract, mesh, keywords, authors
                   in connection.execute("SELECT rowid, title, abstract, mesh, keywords, authors FROM paper_fts")}
    assert written == {row.pmid: tuple(search_text_from_row(row).values()) for row in rows}


def test_datetimes_keep_their_moment_on_both_sides(source, db_url):
    """Microseconds and all: the same UTC moment on the target, whatever the back end."""
    moment = datetime(2024, 3, 31, 1, 59, 59, 999999, tzinfo=timezone.utc)  # a DST night in Europe
    with source.session() as session:
        session.add(Run(id=500, topic="dst", started_at=moment, finished_at=moment + timedelta(microseconds=1)))
        session.commit()
    copy_database(source, db_url)
    target = open_store(db_url)
    with target.session() as session:
        run = session.get(Run, 500)
    assert run.started_at == moment and run.finished_at == datetime(2024, 3, 31, 2, tzinfo=timezone.utc)
    assert run.started_at.utcoffset() == timedelta(0)
    target.close()


def naive_timestamps(url: str) -> None:
    """Turn the schema's `timestamp with time zone` columns into `timestamp without time zone`, holding UTC wall
    times: a PostgreSQL database created by a tracker on an older sqlmodel release."""
    store = open_store(url)
    with store.engine.begin() as connection:
        columns = connection.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND data_type = 'timestamp with time zone'")).all()
        assert columns
        for table, column in columns:
            connection.exec_driver_sql(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE timestamp without time '
                                       f'zone USING "{column}" AT TIME ZONE \'UTC\'')
    store.close()


def test_postgresql_timestamps_without_time_zone_hold_the_same_wall_times(tmp_path, source):
    """Into and out of a PostgreSQL schema with naive `timestamp` columns: UTC wall times, not shifted by a zone."""
    before = dump(source)
    with postgres_schema() as old:
        naive_timestamps(old)
        copy_database(source, old)
        team = open_store(old)
        with team.engine.connect() as connection:
            started = connection.execute(text("SELECT started_at FROM run ORDER BY id LIMIT 1")).scalar()
        assert started.tzinfo is None and started == before["run"][0]["started_at"].replace(tzinfo=None)
        assert dump(team) == before
        copy_database(team, sqlite_url(tmp_path / "back.sqlite3"))
        team.close()
    assert raw_sqlite(tmp_path / "back.sqlite3") == raw_sqlite(Path(source.path))


# -- refusals: nothing changes ---------------------------------------------------------------

def snapshot(url: str) -> dict:
    """The target's tables and rows, read raw (opening a store would create a schema), to show that a refused or
    failed copy changed nothing; a SQLite file that is not there is reported as missing, not created."""
    from sqlalchemy import create_engine

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return {"missing": url}
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            names = sorted(inspect(connection).get_table_names())
            rows = {}
            for name in names:
                table = Table(name, MetaData(), autoload_with=connection)
                rows[name] = sorted(map(repr, connection.execute(select(table)).all()))
            return {"tables": names, "rows": rows}
    finally:
        engine.dispose()


def test_a_target_holding_tracker_data_is_refused_unchanged(source, db_url):
    target = open_store(db_url)
    save_papers(target, [make_paper(pmid) for pmid in range(1, 1205)], topic="dosing")
    for _ in range(35):
        start_run(target, "dosing", kind="fetch", query="q", window_start=None, window_end=None)
    where = target.describe()
    target.close()
    before = snapshot(db_url)
    with pytest.raises(StoreError) as caught:
        copy_database(source, db_url)
    assert str(caught.value) == (f"the target {where} already holds a tracker database (1,204 papers, 35 runs, 1,204 "
                                 "topic memberships): copy into an empty database")
    assert snapshot(db_url) == before


def test_one_row_anywhere_makes_the_target_not_empty(source, db_url):
    target = open_store(db_url)
    ensure_recipient(target, "ana@example.org", since=datetime.now(timezone.utc), now=datetime.now(timezone.utc))
    target.close()
    with pytest.raises(StoreError, match=r"already holds a tracker database \(1 recipient\): copy into an empty"):
        copy_database(source, db_url)


def test_an_empty_tracker_database_is_a_fine_target(source, db_url):
    open_store(db_url).close()  # someone ran tracker against it once
    report = copy_database(source, db_url)
    target = open_store(db_url)
    assert dump(target) == dump(source) and report.count("paper") == 63
    target.close()


def test_copying_a_database_onto_itself_is_refused(tmp_path, source):
    link = tmp_path / "link.sqlite3"
    link.symlink_to(source.path)
    for url in (sqlite_url(source.path), sqlite_url(link), f"sqlite:///{source.path.parent}/./source.sqlite3"):
        with pytest.raises(StoreError, match="is the source database itself: give --to another database"):
            copy_database(source, url)
    assert dump(source)["paper"]


def test_a_relative_sqlite_target_is_created_where_it_points_and_printed_absolute(tmp_path, source, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "team").mkdir()
    report = copy_database(source, "sqlite:///missing/../team/./copy.sqlite3")
    assert report.target == str(tmp_path / "team" / "copy.sqlite3")
    assert report.target_url == f"sqlite:///{tmp_path / 'team' / 'copy.sqlite3'}"
    assert sorted(path.name for path in (tmp_path / "team").iterdir()) == ["copy.sqlite3"]
    assert not (tmp_path / "missing").exists()


def test_copying_a_postgresql_database_onto_itself_is_refused(source):
    with postgres_schema() as url:
        copy_database(source, url)
        team = open_store(url)
        before = dump(team)
        # The same schema named another way: the servers, not the URLs, decide.
        for alias in (url, url.replace("127.0.0.1", "localhost")):
            with pytest.raises(StoreError, match="is the source database itself"):
                copy_database(team, alias)
        assert dump(team) == before
        team.close()


def test_a_target_written_by_a_newer_tracker_is_refused(source, db_url):
    target = open_store(db_url)
    with target.engine.begin() as connection:
        connection.execute(text("UPDATE tracker_schema SET version = 99"))
    where = target.describe()
    target.close()
    before = snapshot(db_url)
    with pytest.raises(StoreError) as caught:
        copy_database(source, db_url)
    assert str(caught.value) == (
        f"the target {where} was written by a newer tracker (schema 99, this one knows {SCHEMA_VERSION}): "
        "upgrade tracker with 'pip install -U tracker', or copy into an empty database")
    assert snapshot(db_url) == before


def test_a_database_of_another_program_is_refused(tmp_path, source):
    path = tmp_path / "contacts.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE contacts (name TEXT)")
        connection.execute("INSERT INTO contacts VALUES ('Ana')")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(StoreError, match=r"holds tables that are not a tracker's \(contacts\): copy into an empty"):
        copy_database(source, sqlite_url(path))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_a_file_that_is_not_a_database_is_refused_unchanged(tmp_path, source):
    path = tmp_path / "notes.sqlite3"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(StoreError, match=rf"cannot open the target {path} \(file is not a database\): give --to "):
        copy_database(source, sqlite_url(path))
    assert path.read_bytes() == b"these are my notes, not a database" * 100
    assert sorted(tmp_path.iterdir()) == sorted([path, tmp_path / "source.sqlite3", tmp_path / "source.sqlite3-wal",
                                                 tmp_path / "source.sqlite3-shm"])


def test_a_target_a_tracker_process_holds_a_lock_on_is_refused(source, db_url):
    target = open_store(db_url)
    now = datetime.now(timezone.utc)
    with target.session() as session:
        session.add(InstanceLock(name="run:dosing", token="t", host="server", pid=77, started_at=now, heartbeat_at=now))
        session.commit()
    target.close()
    with pytest.raises(StoreError, match=r"a tracker process holds a lock on the target .* \(pid 77 on host server\)"):
        copy_database(source, db_url)


def test_an_unreachable_server_is_a_one_line_error_without_the_password(source):
    with pytest.raises(StoreError) as caught:
        copy_database(source, "postgresql+psycopg://tracker:pw-S3cret-9@127.0.0.1:1/tracker")
    message = str(caught.value)
    assert message.startswith("cannot connect to the target postgresql+psycopg://tracker:***@127.0.0.1:1/tracker (")
    assert message.endswith("start its PostgreSQL server, or fix the URL given to --to (user, password, host, "
                            "port, database)")
    assert "pw-S3cret-9" not in message and "\n" not in message


@pytest.mark.parametrize("url, problem", [
    ("sqlite://", "give the target a file"),
    ("sqlite:///:memory:", "give the target a file"),
    ("mysql://u:pw-S3cret-9@db/tracker", "the target must be a SQLite or PostgreSQL database"),
    ("pw-S3cret-9", "the target is not a database URL"),
    ("postgresql://u:pw-S3cret-9@host:port/tracker", "the target is not a database URL"),
    ("postgresql+nodriver://u:pw-S3cret-9@host/tracker", r"cannot copy into postgresql\+nodriver://u:\*\*\*@host/tracker"),
])
def test_unusable_targets(source, url, problem):
    with pytest.raises(StoreError, match=problem) as caught:
        copy_database(source, url)
    assert "pw-S3cret-9" not in str(caught.value)


# -- failures half-way: the target is as it was ----------------------------------------------

class Boom(Exception):
    pass


def fail_at(table: str, error: type[BaseException] = Boom):
    def progress(name: str, done: int, total: int) -> None:
        if name == table and done:
            raise error(f"failed while copying {name}")
    return progress


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "empty-tracker-database"])
def test_a_failure_half_way_leaves_the_target_as_it_was(tmp_path, source, db_url, existing, error):
    if existing:
        open_store(db_url).close()
    before = snapshot(db_url)
    with pytest.raises(error):  # papers and runs are written by then
        copy_database(source, db_url, batch_rows=10, progress=fail_at("status_event", error))
    assert snapshot(db_url) == before
    if db_url.startswith("sqlite") and not existing:
        assert not (tmp_path / "db").exists()  # the file, its journal and the folder made for it are gone
    # Nothing was left half-done: the same copy now succeeds.
    copy_database(source, db_url)
    target = open_store(db_url)
    assert dump(target) == dump(source)
    target.close()


def test_a_failure_after_every_table_was_written_leaves_the_target_empty(source, db_url, monkeypatch):
    open_store(db_url).close()
    before = snapshot(db_url)

    def broken(*args):
        raise StoreError("the sequences could not be reset")

    monkeypatch.setattr(copy_module, "_reset_sequences", broken)
    with pytest.raises(StoreError, match="the sequences could not be reset"):
        copy_database(source, db_url)
    assert snapshot(db_url) == before


def test_a_row_the_target_rejects_rolls_the_whole_copy_back(source):
    """PostgreSQL text cannot hold NUL, SQLite's can: the copy stops at that paper and the target stays empty."""
    with source.engine.begin() as connection:
        connection.execute(text("UPDATE paper SET title = :title WHERE pmid = 40"), {"title": "Nul\x00byte"})
    with postgres_schema() as url:
        before = snapshot(url)
        with pytest.raises(StoreError) as caught:
            copy_database(source, url)
        assert str(caught.value).startswith("cannot copy into postgresql+psycopg://tracker:***@")
        assert ": copying table paper failed (" in str(caught.value)
        assert str(caught.value).endswith("the target was left unchanged")
        assert snapshot(url) == before == {"tables": [], "rows": {}}


def test_a_mismatched_count_is_caught_before_commit(source, db_url, monkeypatch):
    real = copy_module.count_rows
    monkeypatch.setattr(copy_module, "count_rows",
                        lambda connection, table: real(connection, table) - (table.name == "delivery"))
    with pytest.raises(StoreError, match=r"the copy of table delivery does not match: 3 rows in the source, 3 copied, "
                                         r"2 in the target; the target was left unchanged"):
        copy_database(source, db_url)


# -- the command line ------------------------------------------------------------------------

def test_cli_copies_and_prints_rows_per_table(tmp_path, home, source):
    target = tmp_path / "copy" / "tracker.sqlite3"
    done = run_tracker("db", "copy", "--to", sqlite_url(target),
                       env=cli_env(home, None, TRACKER_DB_URL=sqlite_url(source.path)))
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    total = sum(len(rows) for rows in dump(source).values())
    assert lines[0].startswith(f"copied {source.path} to {target} in ") and lines[0].endswith(f"s: {total} rows")
    assert lines[1].split() == ["table", "rows"]
    counts = dict(line.split() for line in lines[3:] if len(line.split()) == 2)
    assert (counts["paper"], counts["topic_paper"], counts["delivery"], counts[JOB_TABLE]) == ("63", "72", "3", "2")
    assert "search index rebuilt for 63 papers; not copied: instance_lock (live locks)" in done.out
    assert lines[-1] == f"to use the copy, set TRACKER_DB_URL={sqlite_url(target)}"
    assert done.err == ""
    copied = open_store(sqlite_url(target))
    assert dump(copied) == dump(source)
    copied.close()


def test_cli_copies_the_default_database_of_the_home(tmp_path, home):
    store = open_store(sqlite_url(home / "db" / "tracker.sqlite3"))
    save_papers(store, [make_paper(1)], topic="dosing")
    store.close()
    done = run_tracker("db", "copy", "--to", sqlite_url(tmp_path / "copy.sqlite3"), env=cli_env(home, None))
    assert done.code == 0, done.err
    assert f"copied {home / 'db' / 'tracker.sqlite3'} to {tmp_path / 'copy.sqlite3'}" in done.out


def test_cli_refuses_to_create_a_source_that_is_not_there(tmp_path):
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    done = run_tracker("db", "copy", "--to", sqlite_url(tmp_path / "copy.sqlite3"), env=cli_env(empty, None))
    assert done.code == 2
    assert done.err == (f"error: no tracker database at {empty / 'db' / 'tracker.sqlite3'}: run in your "
                        "tracker home, pass --home, or set TRACKER_DB_URL to the database to copy\n")
    assert list(empty.iterdir()) == [] and not (tmp_path / "copy.sqlite3").exists()


def test_cli_refuses_a_target_that_holds_data(tmp_path, home, source):
    target = tmp_path / "team.sqlite3"
    store = open_store(sqlite_url(target))
    save_papers(store, [make_paper(pmid) for pmid in (1, 2)], topic="dosing")
    start_run(store, "dosing", kind="fetch", query="q", window_start=None, window_end=None)
    store.close()
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    done = run_tracker("db", "copy", "--to", sqlite_url(target),
                       env=cli_env(home, None, TRACKER_DB_URL=sqlite_url(source.path)))
    assert done.code == 2 and done.out == ""
    assert done.err == (f"error: the target {target} already holds a tracker database (2 papers, 1 run, 2 topic "
                        "memberships): copy into an empty database\n")
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest


def test_cli_unreachable_target_is_one_line_without_traceback_or_password(home, source):
    done = run_tracker("db", "copy", "--to", "postgresql+psycopg://tracker:pw-S3cret-9@127.0.0.1:1/tracker",
                       env=cli_env(home, None, TRACKER_DB_URL=sqlite_url(source.path)))
    assert done.code == 2 and done.out == ""
    assert done.err.startswith("error: cannot connect to the target postgresql+psycopg://tracker:***@127.0.0.1:1/"
                               "tracker (") and done.err.count("\n") == 1
    assert "Traceback" not in done.err and "pw-S3cret-9" not in done.out + done.err


def test_cli_to_postgresql_and_back_never_prints_a_password(tmp_path, home, source):
    with postgres_schema() as url:
        assert ":tracker@" in url
        there = run_tracker("db", "copy", "--to", url, env=cli_env(home, None, TRACKER_DB_URL=sqlite_url(source.path)))
        assert there.code == 0, there.err
        assert "tracker:***@127.0.0.1" in there.out and re.search(r"^paper +63$", there.out, re.M)
        assert f"set TRACKER_DB_URL={url.replace(':tracker@', ':***@')} (with its password)" in there.out
        again = run_tracker("db", "copy", "--to", url, env=cli_env(home, None, TRACKER_DB_URL=sqlite_url(source.path)))
        assert again.code == 2 and "already holds a tracker database (63 papers, 4 runs" in again.err
        back = run_tracker("db", "copy", "--to", sqlite_url(tmp_path / "back.sqlite3"),
                           env=cli_env(home, None, TRACKER_DB_URL=url))
        assert back.code == 0, back.err
        assert back.out.startswith("copied postgresql+psycopg://tracker:***@127.0.0.1")
        for result in (there, again, back):
            assert ":tracker@" not in result.out + result.err
    assert raw_sqlite(tmp_path / "back.sqlite3") == raw_sqlite(Path(source.path))
