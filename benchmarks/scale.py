"""Benchmark 5: digest, search and export on a database of N papers across the 9 shipped topics.

The database is built in bulk, not through save_papers: each replica's row comes from the store's own
conversion (paper_to_row and search_text, applied to the parsed base record given the replica's PMID, marked
title and XML) and each column type's own bind processor, and is inserted with the driver's executemany in
transactions of 10,000 papers, two worker processes converting while this one writes. The schema is the
tracker's (open_store creates it). The file is cached under <tmp>/tracker-benchmarks/ (or
$TRACKER_BENCHMARK_CACHE), keyed by size, corpus version and a fingerprint of the tracker's schema, so a rerun
reuses it; the benchmarks only read it. Papers were "first seen" evenly over the last ten years, newest last;
every paper is in one topic and every fifth in a second one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections import deque
from contextlib import closing
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from benchmarks import (
    REPO,
    Outcome,
    Profile,
    Row,
    Sizes,
    child_env,
    corpus,
    median_seconds,
    number,
    profile_summary,
    seconds,
)
from benchmarks.fetching import run_cli

CORPUS_VERSION = 1
CHUNK = 10_000
SPAN = timedelta(days=3650)
TOPICS = ("cardiac-surgery", "cesarean", "dosing", "elderly", "hepatorenal", "pediatric", "prophylactic", "sepsis",
          "vasopressor-comparison")
DIGEST_TOPIC = "sepsis"
SEARCH_TEXT = "norepinephrine infusion"
TARGETS = {"digest": 0.5, "search": 0.1, "export": 10.0}

_bases: list = []
_processors: dict = {}


def cache_dir() -> Path:
    return Path(os.environ.get("TRACKER_BENCHMARK_CACHE") or Path(tempfile.gettempdir()) / "tracker-benchmarks")


def schema_fingerprint() -> str:
    """A short hash of the tracker's tables and columns: a database cached under another schema is rebuilt."""
    from sqlmodel import SQLModel

    from tracker.store.schema import FTS_COLUMNS, SCHEMA_VERSION

    tables = [(table.name, [(column.name, str(column.type)) for column in table.columns])
              for table in SQLModel.metadata.sorted_tables]
    return hashlib.sha256(repr((SCHEMA_VERSION, FTS_COLUMNS, tables)).encode()).hexdigest()[:10]


def database_path(papers: int) -> Path:
    return cache_dir() / f"scale-{papers}-v{CORPUS_VERSION}-{schema_fingerprint()}.sqlite3"


def first_seen(index: int, papers: int, now: datetime) -> datetime:
    return now - SPAN + SPAN * (index / papers)


def topics_of(index: int) -> list[str]:
    first = TOPICS[index % len(TOPICS)]
    second = TOPICS[(index // len(TOPICS)) % len(TOPICS)]
    return [first, second] if index % 5 == 0 and second != first else [first]


def _load_bases() -> None:
    from sqlalchemy.dialects.sqlite import pysqlite

    from tracker.ncbi.pubmed import iter_papers
    from tracker.store.models import PaperRow, TopicPaper

    bases = corpus.load_base_records(corpus.require_samples())
    body = corpus.EFETCH_HEAD + b"\n".join(base.xml for base in bases) + b"\n" + corpus.EFETCH_TAIL
    _bases[:] = list(zip(bases, iter_papers(body), strict=True))
    # Each column type's own bind processor (JSON, Date, DateTime, Boolean) turns values into what SQLAlchemy
    # would hand SQLite, so the writer can use the driver's executemany without SQLAlchemy in the loop.
    dialect = pysqlite.dialect()
    for table in (PaperRow.__table__, TopicPaper.__table__):
        _processors[table.name] = [(column.name, column.type.dialect_impl(dialect).bind_processor(dialect))
                                   for column in table.columns]


def _values(table: str, row: dict) -> tuple:
    return tuple(process(row[name]) if process else row[name] for name, process in _processors[table])


def _rows(job: tuple[int, int, int, datetime]) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Driver-ready paper rows, full-text rows and memberships of replicas [start, stop)."""
    from tracker.store.rows import paper_to_row, search_text

    start, stop, papers, now = job
    rows, texts, members = [], [], []
    for index in range(start, stop):
        base, paper = _bases[index % len(_bases)]
        seen = first_seen(index, papers, now)
        replica = dataclasses.replace(
            paper, pmid=corpus.FIRST_PMID + index, xml=corpus.replicate(base, index),
            title=f"{paper.title} [benchmark replica: {corpus.title_words(index)}]")
        rows.append(_values("paper", paper_to_row(replica, seen)))
        found = search_text(replica)
        texts.append((replica.pmid, found["title"], found["abstract"], found["mesh"], found["keywords"],
                      found["authors"]))
        members += [_values("topic_paper", {"topic": topic, "pmid": replica.pmid, "first_seen_at": seen,
                                            "run_id": None, "source": "query"})
                    for topic in topics_of(index)]
    return rows, texts, members


def _insert_sql(table) -> str:
    names = [column.name for column in table.columns]
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def build_database(path: Path, papers: int) -> float:
    """Build the N-paper database at `path` (through a .partial file); returns the seconds it took."""
    from tracker.store import open_store
    from tracker.store.models import PaperRow, TopicPaper

    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    open_store(f"sqlite:///{partial}").close()  # the tracker's own schema, full-text table included
    now = datetime.now(timezone.utc).replace(microsecond=0)
    jobs = [(start, min(start + CHUNK, papers), papers, now) for start in range(0, papers, CHUNK)]
    statements = (_insert_sql(PaperRow.__table__),
                  "INSERT INTO paper_fts (rowid, title, abstract, mesh, keywords, authors) VALUES (?, ?, ?, ?, ?, ?)",
                  _insert_sql(TopicPaper.__table__))
    with closing(sqlite3.connect(partial, isolation_level=None)) as connection:
        # A file that is renamed into place only once complete needs no crash safety while it is built.
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        with multiprocessing.get_context("fork").Pool(2, initializer=_load_bases) as pool:
            pending: deque = deque()
            for job in jobs:
                pending.append(pool.apply_async(_rows, (job,)))
                if len(pending) > 3:
                    _write(connection, statements, pending.popleft().get())
            while pending:
                _write(connection, statements, pending.popleft().get())
        connection.execute("ANALYZE")
        connection.execute("PRAGMA journal_mode = DELETE")
    os.replace(partial, path)
    return time.perf_counter() - started


def _write(connection: sqlite3.Connection, statements: tuple[str, str, str], batch: tuple) -> None:
    connection.execute("BEGIN")
    for statement, rows in zip(statements, batch, strict=True):
        connection.executemany(statement, rows)
    connection.execute("COMMIT")


def ensure_database(papers: int) -> tuple[Path, float | None]:
    path = database_path(papers)
    if path.exists():
        return path, None
    return path, build_database(path, papers)


def make_home(folder: Path) -> Path:
    (folder / "queries").mkdir(parents=True, exist_ok=True)
    for slug in TOPICS:
        shutil.copyfile(REPO / "queries" / f"{slug}.toml", folder / "queries" / f"{slug}.toml")
    return folder


def export_since(database: Path, rows: int) -> date:
    """The first day such that the papers first seen from it on number at most `rows`."""
    with closing(sqlite3.connect(database)) as connection:
        newest = connection.execute(
            "SELECT first_seen_at FROM topic_paper GROUP BY pmid ORDER BY min(first_seen_at) DESC LIMIT 1 OFFSET ?",
            (rows - 1,)).fetchone()
    moment = datetime.fromisoformat(newest[0]) if newest else datetime(2000, 1, 1)
    return moment.date() + timedelta(days=1)


def cli_median(args: list[str], env: dict[str, str], home: Path, repeats: int) -> float:
    """The median wall time of `python -m tracker ARGS` after one untimed run."""
    run_cli(args, env, home)
    runs = []
    for _ in range(repeats):
        done = run_cli(args, env, home)
        if done.returncode != 0:
            raise RuntimeError(f"tracker {' '.join(args)} failed: {done.stderr[-2000:]}")
        runs.append(done.seconds)
    return statistics.median(runs)


def run(sizes: Sizes, workdir: Path) -> Outcome:
    from tracker.outputs.digest import render_topic_digests
    from tracker.outputs.export import export_papers
    from tracker.store import open_store
    from tracker.store.search import search_papers
    from tracker.topics import load_topics

    corpus.require_samples()
    outcome = Outcome("scale")
    database, built = ensure_database(sizes.scale_papers)
    home = make_home(workdir / "scale-home")
    env = child_env(TRACKER_HOME=str(home), TRACKER_DB_URL=f"sqlite:///{database}")
    store = open_store(f"sqlite:///{database}")
    topic = next(t for t in load_topics(home / "queries") if t.slug == DIGEST_TOPIC)
    with closing(sqlite3.connect(database)) as connection:
        latest = datetime.fromisoformat(connection.execute("SELECT max(first_seen_at) FROM topic_paper").fetchone()[0])
    digest_since = latest.date() - timedelta(days=7)
    since = export_since(database, sizes.export_rows)
    export_file = workdir / "export.csv"
    counts: dict[str, int] = {}

    def digest() -> None:
        render_topic_digests(store, [topic], "md", since=digest_since)

    def search() -> None:
        search_papers(store, SEARCH_TEXT, limit=20)

    def export() -> None:
        with open(export_file, "wb") as file:
            counts["export"] = export_papers(store, list(TOPICS), file, since=since, fmt="csv")

    with closing(sqlite3.connect(database)) as connection:
        matches = connection.execute("SELECT count(*) FROM paper_fts WHERE paper_fts MATCH ?",
                                     (SEARCH_TEXT,)).fetchone()[0]
        week = connection.execute("SELECT count(*) FROM topic_paper WHERE topic = ? AND first_seen_at >= ?",
                                  (DIGEST_TOPIC, digest_since.isoformat())).fetchone()[0]
    match_only, _runs = median_seconds(lambda: _count_matches(database), sizes.scale_repeats)
    startup = cli_median(["--version"], env, home, sizes.cli_repeats)
    operations = {
        "digest": (digest, ["digest", DIGEST_TOPIC, "--since", digest_since.isoformat(), "--format", "md"],
                   f"topic {DIGEST_TOPIC}, 7 days: {number(week)} papers",
                   "library: render_topic_digests(store, [topic], 'md', since=...) = build_topic_digest + render"),
        "search": (search, ["search", SEARCH_TEXT],
                   f'"{SEARCH_TEXT}": {number(matches)} matches, top 20',
                   "library: search_papers(store, text, limit=20)"),
        "export": (export, ["export", "--since", since.isoformat(), "-o", str(workdir / "export-cli.csv")],
                   f"since {since}: CSV rows", "library: export_papers(store, 9 topics, file, since=..., fmt='csv')"),
    }
    papers = number(sizes.scale_papers)
    for name, (call, args, detail, how) in operations.items():
        median, runs = median_seconds(call, sizes.scale_repeats)
        cli = cli_median(args, env, home, sizes.cli_repeats)
        if name == "export":
            detail = detail.replace("CSV rows", f"{number(counts['export'])} CSV rows")
        target = TARGETS[name]
        met = median < target
        outcome.rows.append(Row(
            f"{name} ({how})", f"{papers} papers; {detail}",
            f"{seconds(median)} median of {len(runs)} (CLI wall {seconds(cli)}, of which start-up ~{seconds(startup)})",
            f"{median / target:.2f} of target", f"< {seconds(target)}", met,
            f"python -m benchmarks{sizes.flag} --only scale  # CLI: tracker {' '.join(_shown(args, workdir))}"))
        if not met:
            summary = (profile_summary(call) + "\n\nslowest SQL statements of one call:\n"
                       + slowest_statements(store, call))
            outcome.profiles.append(Profile(f"{name} on {papers} papers", summary, NEXT_STEPS[name]))
    outcome.rows.append(Row("CLI start-up (python -m tracker --version)", "-", f"{seconds(startup)} median",
                            command="python -m tracker --version"))
    store.close()
    size_mb = database.stat().st_size / 1e6
    outcome.notes.append(
        f"Scale: database {database} ({number(size_mb)} MB), "
        + (f"built in {seconds(built)} by this run" if built is not None else "reused from the cache")
        + f". Search: FTS5 finds the {number(matches)} matches of \"{SEARCH_TEXT}\" in {seconds(match_only)} "
        "(count(*) of the MATCH, median); search_papers ranks them from its two terms' champion lists, ranked by "
        "the untimed first call (benchmarks/search.py times first asks and 50 queries). "
        "Digest, search and export targets are the library calls (median of the timed runs after one "
        "untimed warm-up); the CLI figure is the whole `python -m tracker ...` process, start-up included.")
    return outcome


def _count_matches(database: Path) -> int:
    with closing(sqlite3.connect(database)) as connection:
        query = "SELECT count(*) FROM paper_fts WHERE paper_fts MATCH ?"
        return connection.execute(query, (SEARCH_TEXT,)).fetchone()[0]


def _shown(args: list[str], workdir: Path) -> list[str]:
    """The arguments as a reader would type them: quoted where needed, without this run's temporary folder."""
    shown = [arg.replace(f"{workdir}/", "") for arg in args]
    return [f'"{arg}"' if " " in arg else arg for arg in shown]


def slowest_statements(store, call, top: int = 3) -> str:
    """Each SQL statement's wall time during one call, slowest first: cProfile shows them all as execute()."""
    from sqlalchemy import event

    timings: list[tuple[float, str]] = []

    def before(connection, _cursor, _statement, _parameters, _context, _many) -> None:
        connection.info["benchmark_started"] = time.perf_counter()

    def after(connection, _cursor, statement, _parameters, _context, _many) -> None:
        timings.append((time.perf_counter() - connection.info.pop("benchmark_started"), " ".join(statement.split())))

    event.listen(store.engine, "before_cursor_execute", before)
    event.listen(store.engine, "after_cursor_execute", after)
    try:
        call()
    finally:
        event.remove(store.engine, "before_cursor_execute", before)
        event.remove(store.engine, "after_cursor_execute", after)
    total = sum(spent for spent, _ in timings)
    lines = [f"{len(timings)} statements, {seconds(total)} in the database"]
    for spent, statement in sorted(timings, reverse=True)[:top]:
        lines.append(f"{seconds(spent):>9}  {statement[:300]}{'...' if len(statement) > 300 else ''}")
    return "\n".join(lines)


NEXT_STEPS = {
    "digest": "a week's digest should only read that week's rows: a statement above that takes hundreds of "
              "milliseconds scans an index range proportional to the store (EXPLAIN QUERY PLAN shows which); "
              "SQLite answers max()/min() from an index only without GROUP BY, so a per-topic "
              "`SELECT max(first_seen_at) FROM topic_paper WHERE topic = ?` is O(log n) where "
              "`... WHERE topic IN (...) GROUP BY topic` walks every membership of the topic.",
    "search": "search_papers answers a query of joined terms from each term's champion list "
              "(tracker/store/search.py); a query they cannot answer ranks every match with bm25, ~3-20 us each. "
              "benchmarks/search.py measures 50 queries; see which path this one took.",
    "export": "what is left is per-row work in three roughly equal parts: SQLite (reading each paper row, "
              "the topics subquery), Python building and neutralising the cells, and the CSV writer. Done "
              "already: joined text columns instead of JSON, --since through the (topic, first_seen_at) index, "
              "topics in the same statement, the standard csv writer instead of pandas. Next: ask SQLite for the "
              "cells' text directly (one column per cell, formula prefix in SQL), or write rows in a worker "
              "process while the next chunk is read.",
}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description="Build the cached database.")
    parser.add_argument("papers", type=int)
    args = parser.parse_args()
    path, built = ensure_database(args.papers)
    print(path, "built in " + seconds(built) if built is not None else "cached")


if __name__ == "__main__":
    main()
