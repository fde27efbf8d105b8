"""The schema: every table in a tracker database, the named migrations that bring an older one up to date, and
the one create-or-upgrade that the store and `tracker db copy` share.

Versions
    `tracker_schema.version` is the number of the last migration a database has had. A new database is
    created at the latest version straight from the models (then `create_extras` adds the full-text index,
    which the models cannot express); an older one is brought up by running the migrations after its
    version, in order, in one transaction, each recorded in `tracker_migration` with when it ran and how
    long it took. Opening a database never migrates it: `tracker db migrate` does (`pending` says what it
    would run, and each migration says what it may cost), and so does a command given an older SQLite database
    when that is quick (tracker/store/upgrade.py, after a backup); otherwise the command stops with "run 'tracker
    db migrate' (schema N → M)". A database written by a newer tracker is refused unchanged.

Tables
    `TABLES` names every table a tracker database may hold and what it is to the tracker, so that the store,
    `db copy` and the tests agree on them: a test checks the registry against the models.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import JSON, LargeBinary, bindparam, inspect, select
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, col

from tracker.store import models
from tracker.store.models import MigrationRecord, SchemaVersion

# What a table is to the tracker (the value of TABLES):
DATA = "data"  # the tracker's own rows: copied by `db copy`, kept by every migration
LIVE = "live"  # the state of running processes (locks, job leases): never copied
DERIVED = "derived"  # rebuilt from other tables (the full-text index): rebuilt on a copy's target, not copied
BOOKKEEPING = "bookkeeping"  # the schema's own records, written by create_or_upgrade
EXTERNAL = "external"  # another library's table in the tracker database: copied when the source has it

SCHEDULER_JOBS = "scheduler_jobs"  # APScheduler's SQLAlchemyJobStore (tracker/schedule)
SEARCH_INDEX = "paper_fts"
# The FTS5 table's shadow tables on SQLite; on PostgreSQL paper_fts is a plain table of tsvectors.
SEARCH_SHADOWS = tuple(f"{SEARCH_INDEX}_{suffix}" for suffix in ("data", "idx", "content", "docsize", "config"))
# Each searched term's best papers for one generation of the index (tracker/store/search.py), and on PostgreSQL
# the log of transactions that changed the index or memberships, whose length is that generation.
SEARCH_LISTS = "paper_fts_best"
SEARCH_CHANGES = "paper_fts_change"

TABLES: dict[str, str] = {
    "paper": DATA,
    "topic_paper": DATA,
    "run": DATA,
    "topic_state": DATA,
    "digest": DATA,
    "outbox": DATA,
    "delivery": DATA,
    "recipient": DATA,
    "change_check": DATA,
    "status_event": DATA,
    "paper_revision": DATA,
    "event_delivery": DATA,
    "decision": DATA,
    "current_decision": DATA,
    "screening": DATA,
    "account": DATA,  # the web app's team accounts: a copied database keeps its people
    "feed_token": DATA,  # and their feed addresses keep working
    # Scores from the topic's own decisions: copied, so that a copy orders papers as its source did until the
    # next refresh recomputes them.
    "relevance_score": DATA,
    "ranking_state": DATA,
    # Suggestions beyond the query (tracker/runs/suggest.py): what the reader added or dismissed is theirs.
    "suggestion": DATA,
    "suggestion_state": DATA,
    "suggestion_seed": DATA,
    "instance_lock": LIVE,
    "web_session": LIVE,  # signed-in browsers: a copy starts with nobody signed in
    "login_failure": LIVE,
    "job_lease": LIVE,
    SchemaVersion.__tablename__: BOOKKEEPING,
    MigrationRecord.__tablename__: BOOKKEEPING,
    SEARCH_INDEX: DERIVED,
    **{name: DERIVED for name in SEARCH_SHADOWS},
    SEARCH_LISTS: DERIVED,
    SEARCH_CHANGES: DERIVED,
    SCHEDULER_JOBS: EXTERNAL,
}

FTS_COLUMNS = ("title", "abstract", "mesh", "keywords", "authors")


def tables_with_role(*roles: str) -> list[str]:
    return [name for name, role in TABLES.items() if role in roles]


def create_extras(connection: Connection) -> None:
    """Objects outside the ORM models (the full-text index and its champion lists); idempotent."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH_INDEX} USING fts5("
            + ", ".join(FTS_COLUMNS) + ", tokenize = 'porter unicode61 remove_diacritics 2')"
        )
    elif connection.dialect.name == "postgresql":
        # One weighted tsvector per paper (title A, MeSH and keywords B, abstract C, authors D), written
        # with the paper (tracker/store/papers.py) and ranked by ts_rank_cd (tracker/store/search.py).
        connection.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {SEARCH_INDEX} ("
            "pmid INTEGER PRIMARY KEY REFERENCES paper (pmid) ON DELETE CASCADE, document TSVECTOR NOT NULL)"
        )
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS ix_paper_fts_document ON {SEARCH_INDEX} USING GIN (document)")
    if connection.dialect.name in ("sqlite", "postgresql"):
        _add_search_lists(connection)


# -- migrations ------------------------------------------------------------------------------
# A migration takes a database from the version before it to its own. It must not read the models' current
# shape for a table a later migration changes: write its DDL out, so that it means the same thing forever.

def _add_job_leases(connection: Connection) -> None:
    models.JobLease.__table__.create(connection, checkfirst=True)


EXPORT_TEXT_COLUMNS = ("publication_types_text", "mesh_terms", "keywords_text")


def _add_export_text(connection: Connection) -> None:
    """The CSV's joined text beside the JSON it comes from, filled in for every stored paper, in batches."""
    from tracker.store.rows import export_text_from_row

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


def _add_screening(connection: Connection) -> None:
    """New tables only, written out as they were at schema 4 (migration 9 gives them their stages)."""
    from sqlalchemy import JSON, Boolean, Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table

    written = MetaData()
    Table("paper", written, Column("pmid", Integer, primary_key=True))
    Table("decision", written,
          Column("id", Integer, primary_key=True), Column("topic", String, nullable=False),
          Column("pmid", Integer, ForeignKey("paper.pmid"), nullable=False), Column("reviewer", String, nullable=False),
          Column("decision", String, nullable=False), Column("reasons", JSON, nullable=False),
          Column("note", String, nullable=False), Column("resolves", Boolean, nullable=False),
          Column("replaces", Integer, ForeignKey("decision.id")), Column("source", String, nullable=False),
          Column("decided_at", DateTime, nullable=False), Index("ix_decision_topic_pmid", "topic", "pmid"))
    Table("current_decision", written,
          Column("topic", String, primary_key=True), Column("pmid", Integer, ForeignKey("paper.pmid"), primary_key=True),
          Column("reviewer", String, primary_key=True),
          Column("decision_id", Integer, ForeignKey("decision.id"), nullable=False),
          Column("decision", String, nullable=False), Column("reasons", JSON, nullable=False),
          Column("note", String, nullable=False), Column("resolves", Boolean, nullable=False),
          Column("decided_at", DateTime, nullable=False))
    Table("screening", written,
          Column("topic", String, primary_key=True), Column("pmid", Integer, ForeignKey("paper.pmid"), primary_key=True),
          Column("latest", String), Column("latest_reasons", JSON, nullable=False), Column("resolution", String),
          Column("resolution_reasons", JSON, nullable=False), Column("votes", Integer, nullable=False),
          Column("agreed", String), Column("agreed_reasons", JSON, nullable=False),
          Column("updated_at", DateTime, nullable=False), Index("ix_screening_topic_latest", "topic", "latest"))
    for name in ("decision", "current_decision", "screening"):
        written.tables[name].create(connection, checkfirst=True)


# Migration 5's columns as it adds them: the NOT NULL ones need a default for the rows already there.
BOOK_AND_TRIAL_COLUMNS = (
    ("editors", "JSON NOT NULL DEFAULT '[]'"),
    ("editor_names", "VARCHAR NOT NULL DEFAULT ''"),
    ("book_title", "VARCHAR"),
    ("publisher", "VARCHAR"),
    ("publisher_location", "VARCHAR"),
    ("edition", "VARCHAR"),
    ("book_accession", "VARCHAR"),
    ("location_label", "VARCHAR"),
    ("chapter", "BOOLEAN NOT NULL DEFAULT false"),
    ("databanks", "JSON NOT NULL DEFAULT '[]'"),
    ("trial_ids", "JSON NOT NULL DEFAULT '[]'"),
    ("trial_ids_text", "VARCHAR NOT NULL DEFAULT ''"),
)
REFILL_BATCH = 500


# The paper table as migration 5 reads and writes it.
_JSON_V5 = ("authors", "mesh_headings", "keywords", "editors", "databanks", "trial_ids")
# What the parser before schema 5 read wrongly in a book: people on the book's own AuthorList, its volume,
# pages and DOI (and so its title text, for a whole book); a book's row gets these from its re-read record.
_BOOK_REWRITTEN = ("title", "authors", "author_names", "volume", "pages", "doi")
_BOOK_COLUMNS = ("editors", "editor_names", "book_title", "publisher", "publisher_location", "edition",
                 "book_accession", "location_label", "chapter")
_TRIAL_COLUMNS = ("databanks", "trial_ids", "trial_ids_text")
_PAPER_V5 = sql_table("paper", *(sql_column(name, JSON if name in _JSON_V5 else None) for name in (
    "pmid", "kind", "abstract", "mesh_headings", "keywords", *_BOOK_REWRITTEN, *_BOOK_COLUMNS, *_TRIAL_COLUMNS)),
    sql_column("xml_gz", LargeBinary))


def _add_book_and_trial_columns(connection: Connection) -> None:
    """Books' editors and details, DataBank accessions and trial registrations, filled in for every stored paper.

    The columns come from each paper's stored XML, re-read with the current parser in batches: a book's whole
    record (see _BOOK_REWRITTEN), an article's DataBankList. An article without one needs no parsing: its trial
    ids are the numbers in its stored title and abstract. Papers whose search text changed (books, papers with
    trial ids) are re-indexed.
    """
    for name, definition in BOOK_AND_TRIAL_COLUMNS:
        connection.exec_driver_sql(f"ALTER TABLE paper ADD COLUMN {name} {definition}")
    paper = _PAPER_V5
    read = select(paper.c.pmid, paper.c.kind, paper.c.title, paper.c.abstract, paper.c.xml_gz)
    last = -1
    while True:
        rows = connection.execute(read.where(paper.c.pmid > last).order_by(paper.c.pmid).limit(REFILL_BATCH)).mappings().all()
        if not rows:
            return
        _refill_batch(connection, rows)
        last = rows[-1]["pmid"]


def _refill_batch(connection: Connection, rows: Sequence) -> None:
    from tracker.errors import ParseError
    from tracker.ncbi.pubmed import AbstractSection, Paper, iter_papers
    from tracker.ncbi.registries import trial_ids
    from tracker.store.rows import record_columns, search_text_from_row, trial_columns, write_search_entries
    from tracker.store.xmlcodec import decompress_xml

    reread: dict[int, Paper] = {}
    for row in rows:
        xml = decompress_xml(row["xml_gz"])
        if row["kind"] == "book" or b"<DataBankList" in xml:
            try:
                reread.update((paper.pmid, paper) for paper in iter_papers(b"<PubmedArticleSet>" + xml + b"</PubmedArticleSet>"))
            except ParseError:
                pass  # a record the current parser cannot read keeps its columns; its new ones stay empty
    books, articles, reindex = [], [], []
    for row in rows:
        paper = reread.get(row["pmid"])
        if row["kind"] == "book" and paper is not None:
            values = {name: value for name, value in record_columns(paper).items()
                      if name in _BOOK_REWRITTEN + _BOOK_COLUMNS + _TRIAL_COLUMNS}
            books.append({"key": row["pmid"], **values})
        else:
            # The trial ids the current parser finds: the DataBank accessions, then the numbers in the stored text.
            databanks = paper.databanks if paper is not None else ()
            sections = (AbstractSection(None, None, row["abstract"]),) if row["abstract"] else ()
            found = trial_ids(Paper(pmid=row["pmid"], kind=row["kind"], title=row["title"], abstract_sections=sections,
                                    databanks=databanks))
            if not databanks and not found:
                continue  # the columns' defaults say it already
            values = {"databanks": [list(pair) for pair in databanks], **trial_columns(found)}
            articles.append({"key": row["pmid"], **values})
        if row["kind"] == "book" or values["trial_ids"]:
            reindex.append({"editors": [], **row, **values})
    for group, names in ((books, _BOOK_REWRITTEN + _BOOK_COLUMNS + _TRIAL_COLUMNS), (articles, _TRIAL_COLUMNS)):
        if group:
            connection.execute(_PAPER_V5.update().where(_PAPER_V5.c.pmid == bindparam("key"))
                               .values(**{name: bindparam(name) for name in names}), group)
    if reindex:
        # The rest of the search text, read only for the papers re-indexed (decoding every row's JSON cost more).
        searched = {row.pmid: row for row in connection.execute(
            select(_PAPER_V5.c.pmid, _PAPER_V5.c.authors, _PAPER_V5.c.mesh_headings, _PAPER_V5.c.keywords)
            .where(_PAPER_V5.c.pmid.in_([entry["pmid"] for entry in reindex])))}
        write_search_entries(connection.dialect.name, connection, [
            {"pmid": entry["pmid"], **search_text_from_row({**searched[entry["pmid"]]._mapping, **entry})}
            for entry in reindex])


def _add_web(connection: Connection) -> None:
    """The stored evidence tier (filled for every stored paper, in batches) and the web app's tables."""
    from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table

    from tracker.ncbi.evidence import classify

    paper = models.PaperRow.__table__
    connection.exec_driver_sql("ALTER TABLE paper ADD COLUMN evidence_tier VARCHAR NOT NULL DEFAULT 'other'")
    update = paper.update().where(paper.c.pmid == bindparam("key")).values(evidence_tier=bindparam("tier"))
    last = -1
    while True:
        rows = connection.execute(select(paper.c.pmid, paper.c.publication_types).where(paper.c.pmid > last)
                                  .order_by(paper.c.pmid).limit(5000)).all()
        if not rows:
            break
        changed = [{"key": row.pmid, "tier": tier} for row in rows if (tier := classify(row.publication_types)) != "other"]
        if changed:
            connection.execute(update, changed)
        last = rows[-1].pmid
    connection.exec_driver_sql("CREATE INDEX ix_paper_evidence_tier ON paper (evidence_tier)")
    connection.exec_driver_sql(
        "CREATE INDEX ix_paper_browse ON paper (pmid, evidence_tier, pub_year, late_arrival, status)")
    written = MetaData()
    Table("account", written,
          Column("name", String, primary_key=True), Column("password_hash", String, nullable=False),
          Column("role", String, nullable=False), Column("created_at", DateTime, nullable=False),
          Column("password_changed_at", DateTime, nullable=False))
    Table("web_session", written,
          Column("id", String, primary_key=True), Column("account", String, nullable=True),
          Column("reviewer", String, nullable=False), Column("role", String, nullable=False),
          Column("csrf", String, nullable=False), Column("created_at", DateTime, nullable=False),
          Column("expires_at", DateTime, nullable=False), Column("last_seen_at", DateTime, nullable=False),
          Index("ix_web_session_account", "account"), Index("ix_web_session_expires_at", "expires_at"))
    Table("login_failure", written,
          Column("key", String, primary_key=True), Column("failures", Integer, nullable=False),
          Column("last_failed_at", DateTime, nullable=False))
    written.create_all(connection)


def _add_relevance(connection: Connection) -> None:
    from sqlalchemy import Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table

    written = MetaData()
    Table("paper", written, Column("pmid", Integer, primary_key=True))
    Table("relevance_score", written,
          Column("topic", String, primary_key=True), Column("pmid", Integer, ForeignKey("paper.pmid"), primary_key=True),
          Column("score", Float, nullable=False), Index("ix_relevance_score_topic_score", "topic", "score"))
    Table("ranking_state", written,
          Column("topic", String, primary_key=True), Column("included", Integer, nullable=False),
          Column("excluded", Integer, nullable=False), Column("decision_mark", Integer, nullable=False),
          Column("papers", Integer, nullable=False), Column("likely_from", Float, nullable=False),
          Column("trained_at", DateTime, nullable=False),
          Column("seconds", Float, nullable=False))
    for name in ("relevance_score", "ranking_state"):
        written.tables[name].create(connection)


def _add_search_lists(connection: Connection) -> None:
    """Champion lists for ranked search (tracker/store/search.py): a cache, empty until terms are searched; on
    PostgreSQL also the change log whose row count is the index's generation: one row per transaction that changes
    the index or the memberships, so a reader counts only those committed (a sequence would count others too)."""
    connection.exec_driver_sql(
        "CREATE TABLE IF NOT EXISTS paper_fts_best (leaf VARCHAR NOT NULL, topic VARCHAR NOT NULL, "
        "generation VARCHAR NOT NULL, depth INTEGER NOT NULL, entries TEXT NOT NULL, PRIMARY KEY (leaf, topic))")
    if connection.dialect.name != "postgresql":
        return
    connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS paper_fts_change (xid BIGINT PRIMARY KEY)")
    connection.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION paper_fts_changed() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO paper_fts_change VALUES (txid_current()) ON CONFLICT DO NOTHING; RETURN NULL; END $$")
    for table in ("paper_fts", "topic_paper"):
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
        connection.exec_driver_sql(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION paper_fts_changed()")


def search_changes(connection: Connection) -> int:
    """On PostgreSQL, how many committed transactions have changed the search index or the memberships (the change
    log's rows): what says a kept search list, answer or member count is stale."""
    return connection.exec_driver_sql(f"SELECT count(*) FROM {SEARCH_CHANGES}").scalar_one()


def _add_screening_stages(connection: Connection) -> None:
    """Screening in two stages and by named reviewers: every decision gets its stage (title and abstract, as all
    of them were), a reviewer's current decision and a paper's summary are kept per stage (their keys gain the
    stage: the two tables are rebuilt, their rows copied), and each summary records the votes by reviewer."""
    from sqlalchemy import (
        JSON,
        Boolean,
        Column,
        DateTime,
        ForeignKey,
        Integer,
        MetaData,
        String,
        Table,
    )

    first = "title-abstract"
    connection.exec_driver_sql(f"ALTER TABLE decision ADD COLUMN stage VARCHAR NOT NULL DEFAULT '{first}'")
    written = MetaData()
    Table("paper", written, Column("pmid", Integer, primary_key=True))
    Table("decision", written, Column("id", Integer, primary_key=True))
    current = Table(
        "current_decision_staged", written,
        Column("topic", String, primary_key=True), Column("pmid", Integer, ForeignKey("paper.pmid"), primary_key=True),
        Column("stage", String, primary_key=True), Column("reviewer", String, primary_key=True),
        Column("decision_id", Integer, ForeignKey("decision.id"), nullable=False),
        Column("decision", String, nullable=False), Column("reasons", JSON, nullable=False),
        Column("note", String, nullable=False), Column("resolves", Boolean, nullable=False),
        Column("decided_at", DateTime, nullable=False))
    summary = Table(
        "screening_staged", written,
        Column("topic", String, primary_key=True), Column("pmid", Integer, ForeignKey("paper.pmid"), primary_key=True),
        Column("stage", String, primary_key=True), Column("latest", String), Column("latest_reasons", JSON, nullable=False),
        Column("resolution", String), Column("resolution_reasons", JSON, nullable=False),
        Column("votes", Integer, nullable=False), Column("agreed", String),
        Column("agreed_reasons", JSON, nullable=False), Column("votes_by", JSON, nullable=False),
        Column("vote_reasons", JSON, nullable=False), Column("updated_at", DateTime, nullable=False))
    current.create(connection)
    summary.create(connection)
    types = {"reasons": JSON, "latest_reasons": JSON, "resolution_reasons": JSON, "agreed_reasons": JSON,
             "resolves": Boolean, "decided_at": DateTime, "updated_at": DateTime}
    old_current = sql_table("current_decision", *(sql_column(name, types.get(name)) for name in (
        "topic", "pmid", "reviewer", "decision_id", "decision", "reasons", "note", "resolves", "decided_at")))
    old_summary = sql_table("screening", *(sql_column(name, types.get(name)) for name in (
        "topic", "pmid", "latest", "latest_reasons", "resolution", "resolution_reasons", "votes", "agreed",
        "agreed_reasons", "updated_at")))
    votes: dict[tuple[str, int], tuple[dict, dict]] = {}
    rows = connection.execute(select(old_current)).mappings().all()
    for row in rows:
        if not row["resolves"]:
            decided, reasons = votes.setdefault((row["topic"], row["pmid"]), ({}, {}))
            decided[row["reviewer"]] = row["decision"]
            reasons[row["reviewer"]] = _json_list(row["reasons"])
    for start in range(0, len(rows), 500):
        connection.execute(current.insert(), [dict(row) | {"stage": first, "reasons": _json_list(row["reasons"])}
                                              for row in rows[start:start + 500]])
    summaries = connection.execute(select(old_summary)).mappings().all()
    for start in range(0, len(summaries), 500):
        connection.execute(summary.insert(), [
            dict(row) | {"stage": first, "votes_by": votes.get((row["topic"], row["pmid"]), ({}, {}))[0],
                         "vote_reasons": votes.get((row["topic"], row["pmid"]), ({}, {}))[1],
                         **{name: _json_list(row[name]) for name in ("latest_reasons", "resolution_reasons",
                                                                     "agreed_reasons")}}
            for row in summaries[start:start + 500]])
    connection.exec_driver_sql("DROP TABLE current_decision")
    connection.exec_driver_sql("DROP TABLE screening")
    connection.exec_driver_sql("ALTER TABLE current_decision_staged RENAME TO current_decision")
    connection.exec_driver_sql("ALTER TABLE screening_staged RENAME TO screening")
    connection.exec_driver_sql("CREATE INDEX ix_screening_topic_latest ON screening (topic, stage, latest)")


def _json_list(value) -> list:
    """A JSON list column's value as read by a written-out table (text on SQLite, a list on PostgreSQL)."""
    import json

    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else list(value)


def _add_feed_tokens(connection: Connection) -> None:
    from sqlalchemy import Column, DateTime, Index, MetaData, String, Table

    written = MetaData()
    Table("feed_token", written,
          Column("id", String, primary_key=True), Column("account", String, nullable=True),
          Column("created_at", DateTime, nullable=False), Index("ix_feed_token_account", "account"))
    written.tables["feed_token"].create(connection)


def _add_suggestions(connection: Connection) -> None:
    """Membership's source, filled from each membership's run (an import's papers came by import, the rest by the
    query), and the tables of the suggestions beyond the query."""
    from sqlalchemy import JSON as JSONType
    from sqlalchemy import Column, Date, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table

    connection.exec_driver_sql("ALTER TABLE topic_paper ADD COLUMN source VARCHAR NOT NULL DEFAULT 'query'")
    connection.exec_driver_sql("UPDATE topic_paper SET source = 'import' WHERE run_id IN "
                               "(SELECT id FROM run WHERE kind = 'import')")
    written = MetaData()
    Table("paper", written, Column("pmid", Integer, primary_key=True))
    Table("run", written, Column("id", Integer, primary_key=True))
    Table("suggestion", written,
          Column("topic", String, primary_key=True), Column("pmid", Integer, ForeignKey("paper.pmid"), primary_key=True),
          Column("status", String, nullable=False), Column("ways", String, nullable=False),
          Column("seeds", JSONType, nullable=False), Column("similarity", Integer), Column("relevance", Float),
          Column("first_found_at", DateTime, nullable=False), Column("last_found_at", DateTime, nullable=False),
          Column("run_id", Integer, ForeignKey("run.id")), Column("decided_at", DateTime),
          Column("decided_by", String), Index("ix_suggestion_topic_status", "topic", "status"))
    Table("suggestion_state", written,
          Column("topic", String, primary_key=True), Column("checked_through", Date, nullable=False),
          Column("refreshed_at", DateTime), Column("updated_at", DateTime, nullable=False))
    Table("suggestion_seed", written,
          Column("topic", String, primary_key=True), Column("pmid", Integer, primary_key=True, autoincrement=False),
          Column("asked_at", DateTime, nullable=False))
    for name in ("suggestion", "suggestion_state", "suggestion_seed"):
        written.tables[name].create(connection)


# Reading a stored paper's study facts again (migration 12, and `tracker db migrate` after the extractor changed):
# 0.35 ms a paper measured on 5,000 replicas of the real samples (SQLite, this 2-core machine, the migration's own
# timing 1.56 s), rounded up for slower machines.
FACTS_SECONDS_PER_PAPER = 0.0005
# Migration 12's columns as it adds them (tracker/store/models.py PaperRow), and the paper table as it reads and
# writes it.
STUDY_FACTS_COLUMNS = (
    ("design", "VARCHAR NOT NULL DEFAULT 'other'"),
    ("sample_size", "INTEGER"),
    ("population_bits", "INTEGER NOT NULL DEFAULT 0"),
    ("states_dose", "BOOLEAN NOT NULL DEFAULT false"),
    ("tier_from_abstract", "BOOLEAN NOT NULL DEFAULT false"),
    ("facts", "VARCHAR NOT NULL DEFAULT ''"),
    ("facts_version", "INTEGER NOT NULL DEFAULT 0"),
)
_PAPER_V8 = sql_table("paper", sql_column("pmid"), sql_column("title"), sql_column("abstract"),
                      sql_column("publication_types", JSON), sql_column("mesh_headings", JSON),
                      sql_column("evidence_tier"), *(sql_column(name) for name, _ in STUDY_FACTS_COLUMNS))


def _add_study_facts(connection: Connection) -> None:
    """Study facts read from every stored paper's title and abstract (tracker/facts), the evidence tier on arrival
    that they give a paper whose publication types name none, and the indexes the topic page filters through."""
    from tracker.store.rows import refill_facts

    for name, definition in STUDY_FACTS_COLUMNS:
        connection.exec_driver_sql(f"ALTER TABLE paper ADD COLUMN {name} {definition}")
    refill_facts(connection, _PAPER_V8)
    connection.exec_driver_sql("DROP INDEX ix_paper_browse")
    connection.exec_driver_sql("CREATE INDEX ix_paper_browse ON paper (pmid, evidence_tier, pub_year, late_arrival, "
                               "status, design, states_dose, population_bits)")
    for column in ("design", "population_bits", "states_dose"):
        connection.exec_driver_sql(f"CREATE INDEX ix_paper_{column} ON paper ({column})")
    connection.exec_driver_sql("CREATE INDEX ix_paper_facts_version ON paper (facts_version)")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None] | None  # None: the first schema, which only creation makes
    # Seconds per stored paper, measured, so that `tracker db migrate` can say how long it may take.
    seconds_per_paper: float = 0.0


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", None),
    Migration(2, "job-leases", _add_job_leases),  # several schedulers on one database (tracker/store/leases.py)
    # The CSV export without decoding JSON (BENCHMARKS.md): 12 minutes for a million papers on this machine.
    Migration(3, "export-text-columns", _add_export_text, seconds_per_paper=0.00072),
    Migration(4, "screening-decisions", _add_screening),  # tracker/review/screening.py: new tables, nothing rewritten
    # Books' authors, editors and details, DataBank accessions and trial registration numbers: 0.37 ms a paper on
    # 10,000 replicas of the sample records (6 minutes for a million), most of it decompressing each XML.
    Migration(5, "book-details-and-trial-ids", _add_book_and_trial_columns, seconds_per_paper=0.0004),
    # The web app (tracker/web): the stored evidence tier, accounts, sessions and failed logins.
    Migration(6, "web-app", _add_web, seconds_per_paper=0.00002),
    # Relevance ranking (tracker/review/relevance.py): new tables, filled by the first refresh, nothing rewritten.
    Migration(7, "relevance-scores", _add_relevance),
    # Ranked search from each term's best papers (tracker/store/search.py): a new cache table, filled by searches;
    # on PostgreSQL also the change log and its statement triggers. Nothing is rewritten.
    Migration(8, "search-champion-lists", _add_search_lists),
    # A full-text stage and named reviewers (tracker/review/states.py): the screening tables' keys gain the stage.
    Migration(9, "screening-stages", _add_screening_stages, seconds_per_paper=0.00001),
    # Topic feeds (tracker/outputs/feeds.py) read by feed readers with a per-person token: a new table, nothing rewritten.
    Migration(10, "feed-tokens", _add_feed_tokens),
    # Suggestions beyond the query (tracker/runs/suggest.py) and where each membership came from: new tables, and one
    # UPDATE of the memberships that imports made (0.76 s for a million memberships, a tenth of them imported, on
    # SQLite here).
    Migration(11, "suggestions", _add_suggestions, seconds_per_paper=0.000001),
    # Study facts (tracker/facts, tracker/store/studyfacts.py): read from every stored paper's title and abstract.
    Migration(12, "study-facts", _add_study_facts, seconds_per_paper=FACTS_SECONDS_PER_PAPER),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def pending_after(version: int) -> list[Migration]:
    return [migration for migration in MIGRATIONS if migration.version > version]


# -- the state of a database -----------------------------------------------------------------

EMPTY, CURRENT, OLDER, NEWER, FOREIGN = "empty", "current", "older", "newer", "foreign"


@dataclass(frozen=True)
class SchemaState:
    kind: str  # empty, current, older, newer, foreign
    version: int | None = None  # the database's schema version (None: empty or foreign)
    foreign_tables: tuple[str, ...] = ()

    @property
    def pending(self) -> list[Migration]:
        return pending_after(self.version) if self.kind == OLDER and self.version is not None else []


def read_state(connection: Connection) -> SchemaState:
    """What the database at `connection` is, read without writing anything."""
    tables = set(inspect(connection).get_table_names())
    if SchemaVersion.__tablename__ not in tables:
        if tables and "paper" not in tables:
            return SchemaState(FOREIGN, foreign_tables=tuple(sorted(tables)))
        # No tables, or a creation that never committed its version (create_all adds only what is missing).
        return SchemaState(EMPTY)
    version = connection.execute(select(col(SchemaVersion.version))).scalar_one_or_none() or 0
    if version > SCHEMA_VERSION:
        return SchemaState(NEWER, version)
    if version < SCHEMA_VERSION:
        return SchemaState(OLDER, version)
    return SchemaState(CURRENT, version)


def create_schema(connection: Connection) -> None:
    """The latest schema in an empty database, in the caller's transaction."""
    SQLModel.metadata.create_all(connection)
    create_extras(connection)
    connection.execute(SchemaVersion.__table__.insert().values(id=1, version=SCHEMA_VERSION, updated_at=_now()))


@dataclass(frozen=True)
class Applied:
    migration: Migration
    seconds: float


def upgrade_schema(connection: Connection, state: SchemaState, *,
                   on_step: Callable[[Migration], None] | None = None) -> list[Applied]:
    """Run the migrations after `state.version`, in order, in the caller's transaction; record each one."""
    applied: list[Applied] = []
    MigrationRecord.__table__.create(connection, checkfirst=True)
    for migration in state.pending:
        if on_step is not None:
            on_step(migration)
        started = time.perf_counter()
        if migration.apply is not None:
            migration.apply(connection)
        seconds = time.perf_counter() - started
        connection.execute(SchemaVersion.__table__.update().values(version=migration.version, updated_at=_now()))
        connection.execute(MigrationRecord.__table__.insert().values(
            version=migration.version, name=migration.name, applied_at=_now(), seconds=round(seconds, 3)))
        applied.append(Applied(migration, seconds))
    create_extras(connection)
    return applied


def create_or_upgrade(connection: Connection) -> list[Applied]:
    """An empty database gets the latest schema; an older one its pending migrations (the caller said to)."""
    state = read_state(connection)
    if state.kind == EMPTY:
        create_schema(connection)
        return []
    if state.kind == OLDER:
        return upgrade_schema(connection, state)
    return []


def applied_migrations(connection: Connection) -> list[tuple[int, str, datetime, float]]:
    """The migrations recorded in the database, oldest first (none for those run before records were kept)."""
    if MigrationRecord.__tablename__ not in set(inspect(connection).get_table_names()):
        return []
    table = MigrationRecord.__table__
    return [tuple(row) for row in connection.execute(
        select(table.c.version, table.c.name, table.c.applied_at, table.c.seconds).order_by(table.c.version))]


def describe_migrations(migrations: Sequence[Migration]) -> str:
    return ", ".join(f"{migration.version} {migration.name}" for migration in migrations)


def estimate_seconds(migrations: Sequence[Migration], papers: int) -> float:
    """How long the migrations may take on a database of `papers` papers, from what each was measured to cost."""
    return papers * sum(migration.seconds_per_paper for migration in migrations)


def describe_cost(migrations: Sequence[Migration], papers: int) -> str:
    """`estimate_seconds` in words, for `tracker db migrate` and the refusal of an upgrade too long to run on its own."""
    return describe_work(papers, sum(migration.seconds_per_paper for migration in migrations))


def describe_work(papers: int, seconds_per_paper: float) -> str:
    """"1,000,000 papers, this may take about 12 minutes; do not stop it ...": work measured per paper."""
    seconds = papers * seconds_per_paper
    held = f"{papers:,} paper{'' if papers == 1 else 's'}"
    if seconds < 10:
        return f"{held}, a few seconds"
    if seconds < 90:
        return f"{held}, this may take about {round(seconds, -1):.0f} seconds; do not stop it"
    return (f"{held}, this may take about {round(seconds / 60):.0f} minutes; do not stop it "
            "(an interrupted upgrade changes nothing, and needs free disk about the size of the database)")


def _now() -> datetime:
    return datetime.now(timezone.utc)


__all__ = [
    "TABLES", "DATA", "LIVE", "DERIVED", "BOOKKEEPING", "EXTERNAL", "SCHEDULER_JOBS", "SEARCH_INDEX", "SEARCH_SHADOWS",
    "SEARCH_LISTS", "SEARCH_CHANGES", "search_changes",
    "FTS_COLUMNS", "MIGRATIONS", "SCHEMA_VERSION", "Migration", "SchemaState", "read_state", "create_schema",
    "upgrade_schema", "create_or_upgrade", "pending_after", "estimate_seconds", "describe_cost", "describe_work",
    "FACTS_SECONDS_PER_PAPER", "applied_migrations", "create_extras", "tables_with_role",
]
