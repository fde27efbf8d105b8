"""The store: papers once per PMID, upserts, membership, runs and the watermark rule, schema versions."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from datetime import date

import pytest
from sqlalchemy import create_engine, func, select, text

from tests.pubmed_xml import article_set, book_xml, nice_guideline_xml, statpearls_chapter_xml
from tracker.errors import StoreError
from tracker.ncbi.pubmed import AbstractSection, Author, CommentCorrection, MeshHeading, Paper, iter_papers
from tracker.ncbi.registries import trial_ids
from tracker.store import SCHEMA_VERSION, migrate_store, open_store
from tracker.store.membership import link_papers, topic_pmids
from tracker.store.models import PaperRow, Run, TopicPaper, TopicState
from tracker.store.papers import load_papers, save_papers, stored_pmids
from tracker.store.rows import stored_trial_ids
from tracker.store.runs import RunCounts, finish_run, start_run, topic_state
from tracker.store.schema import BOOK_AND_TRIAL_COLUMNS


def make_paper(pmid: int, **changes) -> Paper:
    values = dict(
        pmid=pmid, kind="article", title=f"Norepinephrine trial {pmid}",
        abstract_sections=(AbstractSection("BACKGROUND", "BACKGROUND", "Why."),
                           AbstractSection("CONCLUSIONS", "CONCLUSIONS", "It works.")),
        authors=(Author("Ngan Kee", "Warwick D", "WD", orcid="0000-0001-2345-6789", affiliations=("CUHK", "HK")),
                 Author(collective_name="NOR-CS Investigators")),
        journal="Anesthesiology", journal_iso="Anesthesiology", volume="130", issue="1", pages="1-10",
        pub_date_text="2019 Jan", pub_date=date(2019, 1, 1), doi=f"10.1000/{pmid}", pmcid="PMC123",
        publication_types=("Randomized Controlled Trial", "Journal Article"),
        mesh_headings=(MeshHeading("Norepinephrine", "D009638", True, (("administration & dosage", True),)),),
        keywords=("vasopressor",), languages=("eng",), citation_status="MEDLINE",
        history=(("pubmed", "2024-03-01T06:00"), ("entrez", "2019-01-05T06:00")),
        comments_corrections=(CommentCorrection("ErratumIn", 999, "Anesthesiology. 2020;1:2"),),
        xml=f"<PubmedArticle><PMID>{pmid}</PMID></PubmedArticle>".encode(),
    )
    values.update(changes)
    return Paper(**values)


def test_new_database_is_private_in_wal_mode_at_the_current_version(tmp_path, sqlite_store):
    path = tmp_path / "db" / "tracker.sqlite3"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with sqlite_store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 60000
        assert connection.execute(text("SELECT version FROM tracker_schema")).scalar() == SCHEMA_VERSION


def test_saved_paper_reads_back_whole_with_its_xml(store):
    paper = make_paper(101)
    assert save_papers(store, [paper], topic="dosing") == (1, 1)
    [loaded] = load_papers(store, [101])
    assert loaded == paper and loaded.xml == paper.xml
    with store.session() as session:
        row = session.get(PaperRow, 101)
    assert (row.entrez_date, row.create_date, row.late_arrival, row.pub_year) == (
        date(2019, 1, 5), date(2024, 3, 1), True, 2019)


@pytest.mark.parametrize("record", [
    book_xml(30000011, created=date(2024, 3, 10), authors=["Part A"], part_editors=["Parted P"],
             book_authors=["Whole W"], editors=["Booked E"], location_label="Chapter 4", volume="2", pages="11-19",
             edition="3rd edition", doi="10.1/chapter"),
    statpearls_chapter_xml(30000012, created=date(2024, 3, 10)),
    nice_guideline_xml(30000013, created=date(2024, 3, 10)),
    book_xml(30000014, created=date(2024, 3, 10), title=None, authors=(), editors=["Kufe DW", "Pollock RE"],
             book_title="Holland-Frei Cancer Medicine", edition="6th edition", publisher="BC Decker",
             publisher_location="Hamilton (ON)", accession="NBK12354"),
], ids=["chapter-with-people-in-both-places", "statpearls-chapter", "whole-nice-guideline", "edited-whole-book"])
def test_a_book_reads_back_whole_with_its_editors_and_details(store, record):
    [paper] = iter_papers(article_set(record))
    save_papers(store, [paper], topic="dosing")
    [loaded] = load_papers(store, [paper.pmid])
    assert loaded == paper and loaded.xml == paper.xml
    with store.session() as session:
        row = session.get(PaperRow, paper.pmid)
    assert (row.author_names, row.editor_names, row.book_title, row.publisher, row.publisher_location, row.edition,
            row.book_accession, row.location_label, row.chapter) == (
        "; ".join(a.display for a in paper.authors), "; ".join(e.display for e in paper.editors), paper.book_title,
        paper.publisher, paper.publisher_location, paper.edition, paper.book_accession, paper.location_label,
        paper.chapter)


def test_databank_accessions_and_trial_ids_are_stored_with_their_registry_and_url(store):
    paper = make_paper(
        102, databanks=(("ClinicalTrials.gov", "NCT01234567"), ("GENBANK", "AB123456"), ("ISRCTN", "ISRCTN12345678")),
        abstract_sections=(AbstractSection(None, None, "Registered as NCT01234567 and EudraCT 2019-001234-56."),))
    save_papers(store, [paper])
    [loaded] = load_papers(store, [102])
    assert loaded == paper
    with store.session() as session:
        row = session.get(PaperRow, 102)
    assert row.databanks == [["ClinicalTrials.gov", "NCT01234567"], ["GENBANK", "AB123456"],
                             ["ISRCTN", "ISRCTN12345678"]]
    assert row.trial_ids == [
        ["ClinicalTrials.gov", "NCT01234567", "https://clinicaltrials.gov/study/NCT01234567"],
        ["ISRCTN", "ISRCTN12345678", "https://www.isrctn.com/ISRCTN12345678"],
        ["EudraCT", "2019-001234-56",
         "https://www.clinicaltrialsregister.eu/ctr-search/search?query=2019-001234-56"],
    ]
    assert row.trial_ids_text == "NCT01234567; ISRCTN12345678; 2019-001234-56"
    assert stored_trial_ids(row) == trial_ids(paper)


def test_xml_is_stored_as_zstandard_and_rows_written_with_zlib_still_read(store):
    import zlib

    paper = make_paper(103)
    save_papers(store, [paper, make_paper(104)])
    with store.engine.begin() as connection:
        [stored] = connection.execute(text("SELECT xml_gz FROM paper WHERE pmid = 103")).one()
        connection.execute(text("UPDATE paper SET xml_gz = :old WHERE pmid = 104"),
                           {"old": zlib.compress(make_paper(104).xml, 3)})  # as trackers before schema 5 wrote it
    assert bytes(stored)[:4] == b"\x28\xb5\x2f\xfd"  # a Zstandard frame
    assert [p.xml for p in load_papers(store, [103, 104])] == [paper.xml, make_paper(104).xml]


@pytest.mark.parametrize("value", [
    [], {}, ["eng"], None, 0, "", [{"last": "Ngan Kee", "fore": "Warwick D", "affiliations": ["CUHK", "HK"]}],
    {"n": [1, 2.5, -0.0, 1e300, 10 ** 20], "ok": True, "none": None}, ["Société \u2028 \"quoted\" \x00\x1f ☃"],
    [float("nan"), float("inf")],
])
def test_the_json_columns_get_the_text_json_dumps_gives(value):
    from tracker.store.database import to_json

    assert to_json(value) == json.dumps(value)


def test_a_json_column_refuses_what_json_dumps_refuses():
    from tracker.store.database import to_json

    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        to_json([{1}])


def test_an_sqlite_upsert_sends_its_rows_a_group_at_a_time_in_order_within_the_parameter_limit(tmp_path):
    from sqlalchemy import Column, Integer, MetaData, String, Table, event

    from tracker.store.inserts import ROWS_A_STATEMENT

    store = open_store(f"sqlite:///{tmp_path / 'groups.sqlite3'}")
    table = Table("grouped", MetaData(), Column("k", Integer, primary_key=True), Column("v", String), Column("n", Integer))
    table.create(store.engine)
    sent: list[tuple[bool, int]] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda _c, _cursor, statement, parameters, _context, executemany:
                 sent.append((executemany, len(parameters))) if statement.startswith("INSERT INTO grouped") else None)
    # Key 5 comes twice: as with one statement a row, the later row is the one kept (the first, without update).
    rows = [{"k": k, "v": f"v{k}", "n": k} for k in range(250)] + [{"k": 5, "v": "again", "n": -5}]
    with store.engine.begin() as connection:
        store.upsert(connection, table, rows, ["k"])
    assert sent == [(False, 3 * ROWS_A_STATEMENT), (False, 3 * ROWS_A_STATEMENT), (False, 3 * 51)]
    with store.engine.connect() as connection:
        assert {k: v for k, v in connection.execute(select(table.c.k, table.c.v))} == {
            **{k: f"v{k}" for k in range(250)}, 5: "again"}

    sent.clear()
    with store.engine.begin() as connection:
        connection.connection.dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)
        store.upsert(connection, table, [{"k": k, "v": "new", "n": 0} for k in (1, 2, 3, 4, 5, 1000, 1001)] +
                     [{"k": 1000, "v": "newer", "n": 0}], ["k"], update=False)
    assert sent == [(False, 9), (False, 9), (False, 6)]  # three rows of three parameters fit in ten
    with store.engine.connect() as connection:
        assert {k: v for k, v in connection.execute(select(table.c.k, table.c.v).where(table.c.k.in_([1, 5, 1000, 1001])))} == {
            1: "v1", 5: "again", 1000: "new", 1001: "new"}
    store.close()


def test_upsert_keeps_one_row_per_pmid_and_its_first_stored_time(store):
    save_papers(store, [make_paper(7)], topic="dosing")
    with store.session() as session:
        first = session.get(PaperRow, 7).first_stored_at
    assert save_papers(store, [make_paper(7, title="Corrected title"), make_paper(7, title="Corrected title")],
                       topic="elderly") == (0, 1)
    with store.session() as session:
        assert session.execute(select(func.count()).select_from(PaperRow)).scalar() == 1
        row = session.get(PaperRow, 7)
        assert row.title == "Corrected title" and row.first_stored_at == first
    assert topic_pmids(store, "dosing") == {7} and topic_pmids(store, "elderly") == {7}


def test_linking_keeps_first_seen_and_counts_only_new_members(store):
    save_papers(store, [make_paper(1), make_paper(2)])
    run = start_run(store, "cesarean", kind="fetch", query="q", window_start=None, window_end=date(2024, 1, 1))
    assert link_papers(store, "cesarean", [1, 2], run.id) == 2
    with store.session() as session:
        seen = session.get(TopicPaper, ("cesarean", 1)).first_seen_at
    assert link_papers(store, "cesarean", [1, 2], run.id) == 0
    with store.session() as session:
        assert session.get(TopicPaper, ("cesarean", 1)).first_seen_at == seen
    assert stored_pmids(store, [1, 2, 3]) == {1, 2}


def test_a_failed_run_never_moves_the_watermark(store):
    good = start_run(store, "dosing", kind="backfill", query="q", window_start=None, window_end=date(2024, 1, 2))
    finish_run(store, good.id, RunCounts(count=3, matched=3, new_papers=3),
               watermark=TopicState(topic="dosing", query="q", watermark=date(2024, 1, 2), updated_at=good.started_at))
    bad = start_run(store, "dosing", kind="fetch", query="q", window_start=date(2024, 1, 1), window_end=date(2024, 2, 1))
    finished = finish_run(store, bad.id, RunCounts(), error="esearch failed",
                          watermark=TopicState(topic="dosing", query="q", watermark=date(2024, 2, 1),
                                               updated_at=bad.started_at))
    assert finished.status == "failed" and finished.error == "esearch failed"
    state = topic_state(store, "dosing")
    assert state.watermark == date(2024, 1, 2) and state.last_run_id == good.id
    with store.session() as session:
        assert [r.status for r in session.execute(select(Run).order_by(Run.id)).scalars()] == ["succeeded", "failed"]


def test_database_from_a_newer_tracker_is_refused_unchanged(db_url, store):
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE tracker_schema SET version = 99"))
    where = store.describe()
    store.close()
    before = store.path.read_bytes() if store.path else None
    with pytest.raises(StoreError) as caught:
        open_store(db_url)
    assert str(caught.value) == (f"{where} was written by a newer tracker (schema 99, this one knows {SCHEMA_VERSION}): "
                                 "upgrade tracker with 'pip install -U tracker'")
    if before is not None:
        assert store.path.read_bytes() == before
    engine = create_engine(db_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version FROM tracker_schema")).scalar() == 99
    engine.dispose()


def test_a_file_that_is_not_sqlite_is_refused_unchanged(tmp_path):
    path = tmp_path / "notes.sqlite3"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{path}")
    assert str(caught.value).startswith(f"{path} is not a usable SQLite database (file is not a database)")
    assert path.read_bytes() == b"these are my notes, not a database" * 100


def test_a_sqlite_database_of_another_program_is_refused(tmp_path):
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE contacts (name TEXT)")
    with pytest.raises(StoreError, match="holds tables that are not a tracker's; point TRACKER_DB_URL elsewhere"):
        open_store(f"sqlite:///{path}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere, so an unwritable folder cannot be simulated")
def test_unwritable_db_folder(tmp_path):
    folder = tmp_path / "db"
    folder.mkdir(mode=0o500)
    with pytest.raises(StoreError, match="cannot create the database at .* make .* writable or set TRACKER_DB_URL"):
        open_store(f"sqlite:///{folder / 'tracker.sqlite3'}")


def test_db_folder_that_is_a_file(tmp_path):
    (tmp_path / "db").write_text("not a folder")
    with pytest.raises(StoreError, match=r"cannot create the database at .*db/tracker.sqlite3 \(.*\): "
                                         r"make .* writable or set TRACKER_DB_URL"):
        open_store(f"sqlite:///{tmp_path / 'db' / 'tracker.sqlite3'}")


@pytest.mark.parametrize("url, message", [
    ("not a url pw-S3cret-9", "TRACKER_DB_URL is not a database URL: use for example sqlite:///db/tracker.sqlite3 "
                              "or postgresql+psycopg://user@host/tracker"),
    ("postgresql+psycopg://u:pw-S3cret-9@host:port/tracker",  # a port that is not a number
     "TRACKER_DB_URL is not a database URL: use for example sqlite:///db/tracker.sqlite3 "
     "or postgresql+psycopg://user@host/tracker"),
    ("postgresql+nodriver://u:pw-S3cret-9@host/tracker",
     "cannot open database postgresql+nodriver://u:***@host/tracker: Can't load plugin: "
     "sqlalchemy.dialects:postgresql.nodriver"),
    ("postgresql+psycopg://u@127.0.0.1:1/tracker?password=pw-S3cret-9&connect_timeout=1",
     "cannot connect to postgresql+psycopg://u@127.0.0.1:1/tracker?connect_timeout=1&password=%2A%2A%2A ("),
])
def test_a_bad_database_url_is_one_line_without_its_password(url, message):
    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert str(caught.value).startswith(message) and "pw-S3cret-9" not in str(caught.value), str(caught.value)
    assert "\n" not in str(caught.value)


def undo_screening_stages(connection) -> None:
    """Undo migration 9 (screening-stages): the screening tables as schema 4 made them, their title-and-abstract rows
    kept (a full-text decision did not exist before)."""
    from sqlalchemy import MetaData, Table

    from tracker.store import schema

    fields = {"decision": ("id", "topic", "pmid", "reviewer", "decision", "reasons", "note", "resolves", "replaces",
                           "source", "decided_at"),
              "current_decision": ("topic", "pmid", "reviewer", "decision_id", "decision", "reasons", "note", "resolves",
                                   "decided_at"),
              "screening": ("topic", "pmid", "latest", "latest_reasons", "resolution", "resolution_reasons", "votes",
                            "agreed", "agreed_reasons", "updated_at")}
    kept = {}
    for name, columns in fields.items():
        table = Table(name, MetaData(), autoload_with=connection)
        rows = connection.execute(table.select().where(table.c.stage == "title-abstract")).mappings().all()
        kept[name] = [{column: row[column] for column in columns} for row in rows]
    for name in ("screening", "current_decision", "decision"):
        connection.execute(text(f"DROP TABLE {name}"))
    schema._add_screening(connection)
    for name in ("decision", "current_decision", "screening"):
        if kept[name]:
            connection.execute(Table(name, MetaData(), autoload_with=connection).insert(), kept[name])


def drop_study_facts(connection) -> None:
    """Undo migration 12 (study-facts): its columns and indexes, and the evidence tier as publication types alone gave it."""
    from tracker.ncbi.evidence import classify
    from tracker.store.schema import STUDY_FACTS_COLUMNS

    for index in ("ix_paper_browse", "ix_paper_design", "ix_paper_population_bits", "ix_paper_states_dose",
                  "ix_paper_facts_version"):
        connection.execute(text(f"DROP INDEX {index}"))
    connection.execute(text("CREATE INDEX ix_paper_browse ON paper (pmid, evidence_tier, pub_year, late_arrival, status)"))
    for column, _definition in STUDY_FACTS_COLUMNS:
        connection.execute(text(f"ALTER TABLE paper DROP COLUMN {column}"))
    for pmid, types in connection.execute(text("SELECT pmid, publication_types FROM paper")).all():
        tier = classify(json.loads(types) if isinstance(types, str) else types)
        connection.execute(text("UPDATE paper SET evidence_tier = :tier WHERE pmid = :pmid"), {"tier": tier, "pmid": pmid})


def drop_suggestions(connection) -> None:
    """Undo migration 11 (suggestions): its tables and the membership's source."""
    for table in ("suggestion", "suggestion_state", "suggestion_seed"):
        connection.execute(text(f"DROP TABLE {table}"))
    connection.execute(text("ALTER TABLE topic_paper DROP COLUMN source"))


def drop_web_app(connection) -> None:
    """Undo migrations 12 (study-facts), 11 (suggestions), 10 (feed-tokens), 9 (screening-stages), 7
    (relevance-scores) and 6 (web-app): their tables, the evidence tier column and its indexes."""
    drop_study_facts(connection)
    drop_suggestions(connection)
    connection.execute(text("DROP TABLE feed_token"))
    undo_screening_stages(connection)
    for table in ("relevance_score", "ranking_state"):
        connection.execute(text(f"DROP TABLE {table}"))
    for table in ("account", "web_session", "login_failure"):
        connection.execute(text(f"DROP TABLE {table}"))
    connection.execute(text("DROP INDEX ix_paper_evidence_tier"))
    connection.execute(text("DROP INDEX ix_paper_browse"))
    connection.execute(text("ALTER TABLE paper DROP COLUMN evidence_tier"))


def test_a_schema_1_database_is_migrated_in_place_keeping_every_row(db_url, store):
    """A database as tracker 0.1 wrote it (schema 1) is refused until migrated, then has the lease table and the
    export's text columns, every row kept, and a record of each migration it had."""
    papers = [make_paper(7), make_paper(8, keywords=(), mesh_headings=())]
    save_papers(store, papers, topic="dosing")
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE job_lease"))
        for column in ("publication_types_text", "mesh_terms", "keywords_text"):
            connection.execute(text(f"ALTER TABLE paper DROP COLUMN {column}"))
        for column, _definition in BOOK_AND_TRIAL_COLUMNS:  # migration 5's
            connection.execute(text(f"ALTER TABLE paper DROP COLUMN {column}"))
        drop_web_app(connection)  # migration 6's
        connection.execute(text("UPDATE tracker_schema SET version = 1"))
        connection.execute(text("DROP TABLE tracker_migration"))
    where = store.describe()
    store.close()

    with pytest.raises(StoreError) as caught:
        open_store(db_url)
    assert str(caught.value) == (f"{where} is at schema 1 and this tracker needs schema {SCHEMA_VERSION}: "
                                 f"run 'tracker db migrate' (schema 1 → {SCHEMA_VERSION})")
    migrated, applied = migrate_store(db_url)
    migrated.close()
    assert [(step.migration.version, step.migration.name) for step in applied][:2] == [
        (2, "job-leases"), (3, "export-text-columns")]
    upgraded = open_store(db_url)
    try:
        with upgraded.engine.connect() as connection:
            assert connection.execute(text("SELECT version FROM tracker_schema")).scalar() == SCHEMA_VERSION
            assert connection.execute(text("SELECT count(*) FROM job_lease")).scalar() == 0
            assert connection.execute(text("SELECT version, name FROM tracker_migration ORDER BY version")).all()[:2] == [
                (2, "job-leases"), (3, "export-text-columns")]
            filled = connection.execute(text(
                "SELECT pmid, publication_types_text, mesh_terms, keywords_text FROM paper ORDER BY pmid")).all()
        assert [tuple(row) for row in filled] == [
            (paper.pmid, "; ".join(paper.publication_types),
             "; ".join(m.descriptor + ("*" if m.major else "") for m in paper.mesh_headings),
             "; ".join(paper.keywords)) for paper in papers]
        assert load_papers(upgraded, [7, 8]) == papers
        assert topic_pmids(upgraded, "dosing") == {7, 8}
    finally:
        upgraded.close()


def test_a_view_reads_on_one_connection_and_outside_it_each_read_takes_its_own(store):
    save_papers(store, [make_paper(31)], topic="sepsis")
    with store.reading():
        with store.connect() as first, store.connect() as second:
            assert first is second
        with store.session() as session:
            assert session.connection().connection.dbapi_connection is first.connection.dbapi_connection
        with store.reading(), store.connect() as nested:
            assert nested is first
        assert [read.pmid for read in load_papers(store, [31])] == [31]
        with store.connect() as still:
            assert still is first and not still.closed
    assert first.closed
    with store.connect() as one, store.connect() as other:
        assert one is not other


def test_member_counts_are_counted_again_only_after_the_memberships_change(store):
    from sqlalchemy import event

    from tracker.store.membership import member_counts

    counts: list[str] = []

    def seen(_connection, _cursor, statement, *_):
        if "count(*)" in statement and "FROM topic_paper" in statement:
            counts.append(statement)

    save_papers(store, [make_paper(1), make_paper(2)], topic="dosing")
    save_papers(store, [make_paper(3)])
    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        assert (member_counts(store, ["dosing", "sepsis"]), len(counts)) == ({"dosing": 2, "sepsis": 0}, 2)
        assert (member_counts(store, ["dosing", "sepsis"]), len(counts)) == ({"dosing": 2, "sepsis": 0}, 2)
        link_papers(store, "sepsis", [3])
        assert (member_counts(store, ["dosing", "sepsis"]), len(counts)) == ({"dosing": 2, "sepsis": 1}, 4)
        save_papers(store, [make_paper(4)], topic="dosing")
        assert (member_counts(store, ["dosing"]), len(counts)) == ({"dosing": 3}, 5)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
