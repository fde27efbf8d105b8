"""NCBI's failures, injected by the loopback fake E-utilities server into a 5,000-record backfill and a later
incremental run, driven through the command line.

Every fault is injected at several points of each run: a burst on the first esearch longer than the attempts
(the run fails), then one failure on the first esearch and on a middle efetch plus a burst on the last efetch
(the run fails after storing the batches before it), then the burst's last firing on the first efetch of a run
that completes. After each failed run the watermark (`topic_state`) is where it was and what was stored is
kept; the completing run fetches only the rest and ends with exactly the PMIDs of a fault-free run.

The fault runs use click's CliRunner: the real command, in this process, because a new Python for each of the
54 runs would add a second of start-up to each. The fault-free reference runs are real subprocesses.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import Result, cli_env, run_tracker, write_topic
from tests.fake_eutils import FakeEutils, FakeRecord
from tests.pubmed_xml import article_xml
from tracker.cli import cli

pytestmark = pytest.mark.slow

TODAY = date.today()
QUERY = "norepinephrine dosing"
BACKFILL, INCREMENTAL = 5000, 1500
BATCH = 500
ATTEMPTS = 3
FAULT_ENV = dict(TRACKER_RATE_LIMIT="1000", TRACKER_BACKOFF="0.01", TRACKER_MAX_ATTEMPTS=str(ATTEMPTS),
                 TRACKER_TIMEOUT="1", TRACKER_EFETCH_BATCH=str(BATCH))
# What the one-line reason says for each fault, whichever endpoint it hit.
REASONS = {
    "429": r"rate limited by NCBI \(HTTP 429\)",
    "500": r"HTTP 500 Internal Server Error",
    "502": r"HTTP 502 Bad Gateway",
    "reset": r"connection failed \((RemoteProtocolError|ReadError|ConnectError)",
    "timeout": r"no answer within 1 s \(timeout\)|efetch body stopped arriving \(read timeout\)",
    "truncated": r"connection failed \(RemoteProtocolError|efetch body cut off \(RemoteProtocolError\) after \d+ bytes"
                 r"|esearch body is not valid XML|efetch XML is malformed or truncated",
    "empty": r"(esearch|efetch) answered with an empty body",
    "backend-error": r"Search Backend failed: Unable to open connection",
}
FAILED_LINE = ("error: dosing failed; what they stored is kept, and their next run searches the same dates again: run "
               "'tracker fetch' again later")


# -- shared helpers (also used by test_crashes, test_concurrency and test_hostile_input) ---------------------

def database(home: Path) -> Path:
    return home / "db" / "tracker.sqlite3"


def sql(home: Path, statement: str, *params) -> list[tuple]:
    connection = sqlite3.connect(database(home), timeout=60)
    try:
        with connection:
            return connection.execute(statement, params).fetchall()
    finally:
        connection.close()


def topic_pmids(home: Path, topic: str = "dosing") -> set[int]:
    if not database(home).exists():
        return set()
    return {pmid for (pmid,) in sql(home, "SELECT pmid FROM topic_paper WHERE topic = ?", topic)}


def topic_state(home: Path, topic: str = "dosing") -> tuple | None:
    if not database(home).exists():
        return None
    rows = sql(home, "SELECT watermark, since, query, last_run_id FROM topic_state WHERE topic = ?", topic)
    return rows[0] if rows else None


def assert_consistent(home: Path) -> None:
    """Integrity, one row per paper and per membership, and a full-text entry for each paper and no other."""
    assert sql(home, "PRAGMA integrity_check") == [("ok",)]
    assert sql(home, "PRAGMA foreign_key_check") == []
    [(papers, distinct)] = sql(home, "SELECT count(*), count(DISTINCT pmid) FROM paper")
    assert papers == distinct
    [(links, distinct_links)] = sql(home, "SELECT count(*), count(DISTINCT topic || ':' || pmid) FROM topic_paper")
    assert links == distinct_links
    [(indexed, distinct_indexed)] = sql(home, "SELECT count(*), count(DISTINCT rowid) FROM paper_fts")
    assert indexed == distinct_indexed == papers
    assert sql(home, "SELECT count(*) FROM paper_fts WHERE rowid NOT IN (SELECT pmid FROM paper)") == [(0,)]


def invoke(env: dict[str, str], *args: str) -> Result:
    """The real command line, in this process; an exception that escapes it fails the test, as a traceback would."""
    overrides: dict[str, str | None] = {key: None for key in os.environ if key.startswith(("TRACKER_", "NCBI_"))}
    overrides.update(env)
    outcome = CliRunner().invoke(cli, list(args), env=overrides, prog_name="tracker")
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        raise outcome.exception
    return Result(outcome.exit_code, outcome.stdout, outcome.stderr)


def record(pmid: int, created: date, query: str = QUERY) -> FakeRecord:
    return FakeRecord(pmid=pmid, xml=article_xml(pmid, created=created), created=created, queries={query})


# -- the two timelines -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Records:
    backfill: tuple[FakeRecord, ...]
    incremental: tuple[FakeRecord, ...]


@pytest.fixture(scope="module")
def records() -> Records:
    backfill = tuple(record(pmid, date(2020, 1, 1) + timedelta(days=pmid % 1500)) for pmid in range(1, BACKFILL + 1))
    incremental = tuple(record(pmid, TODAY - timedelta(days=1)) for pmid in range(20001, 20001 + INCREMENTAL))
    return Records(backfill, incremental)


def make_home(root: Path) -> Path:
    home = root / "home"
    write_topic(home, "dosing", QUERY, since="2020-01-01")
    return home


def age_watermark(home: Path) -> None:
    """Make the backfill two days old, so the incremental run has a watermark of its own to move."""
    sql(home, "UPDATE topic_state SET watermark = ? WHERE topic = 'dosing'", (TODAY - timedelta(days=1)).isoformat())


@dataclass(frozen=True)
class CleanRuns:
    backfill: set[int]
    incremental: set[int]
    backfill_state: tuple
    incremental_state: tuple
    webenv_params: list[str]
    unfired_webenv_faults: int


@pytest.fixture(scope="module")
def clean(records, tmp_path_factory) -> CleanRuns:
    """The fault-free runs, as real processes. An expired WebEnv is injected on every request and must never fire."""
    home = make_home(tmp_path_factory.mktemp("clean"))
    with FakeEutils() as server:
        server.add(*records.backfill)
        server.inject("expired-webenv", times=1000)
        env = cli_env(home, server.url, **FAULT_ENV)
        first = run_tracker("fetch", env=env)
        assert first.code == 0, first.err
        assert first.out.startswith(f"dosing: {BACKFILL} new, {BACKFILL} matched, ")
        backfill, backfill_state = topic_pmids(home), topic_state(home)
        age_watermark(home)
        server.add(*records.incremental)
        second = run_tracker("fetch", env=env)
        assert second.code == 0, second.err
        assert second.out.startswith(f"dosing: {INCREMENTAL} new, {INCREMENTAL} matched, ")
        assert_consistent(home)
        webenv = [key for r in server.requests for key in r.params
                  if key.lower() in ("webenv", "query_key", "usehistory")]
        return CleanRuns(backfill, topic_pmids(home), backfill_state, topic_state(home), webenv, server.pending_faults)


def test_an_expired_webenv_is_harmless_because_none_is_ever_used(clean, records):
    assert clean.unfired_webenv_faults == 1000  # the fault was armed on every request and never matched one
    assert clean.webenv_params == []  # no usehistory, WebEnv or query_key was ever sent
    assert clean.backfill == {r.pmid for r in records.backfill}
    assert clean.incremental == clean.backfill | {r.pmid for r in records.incremental}
    assert clean.backfill_state[0] == clean.incremental_state[0] == (TODAY + timedelta(days=1)).isoformat()


# -- one fault at every point -----------------------------------------------------------------------------

def inject(server: FakeEutils, fault: str, endpoint: str, nth: int, times: int = 1) -> None:
    """`fault` on the nth request to `endpoint` from now on (and the `times - 1` after it)."""
    options = {"seconds": 2} if fault == "timeout" else {}
    server.inject(fault, endpoint=endpoint, at=server.count(endpoint) + nth, times=times, **options)


def efetched(server: FakeEutils, since: int) -> list[set[int]]:
    """The PMIDs of each answered efetch request after the first `since` requests."""
    return [{int(p) for p in r.params["id"].split(",")} for r in server.requests[since:]
            if r.endpoint == "efetch" and r.status == 200 and r.fault is None]


def assert_failed_cleanly(result: Result, fault: str, endpoint: str) -> None:
    assert result.code == 1, (result.out, result.err)
    [line] = result.out.splitlines()
    match = re.fullmatch(rf"dosing: FAILED after \d+ requests, [\d.]+ s: {endpoint} failed after "
                         rf"{ATTEMPTS} attempts: (.*)", line)
    assert match, line
    assert re.search(REASONS[fault], match[1]), line
    assert result.err.splitlines() == [FAILED_LINE]  # the reason is said once, on the topic's line
    assert "Traceback" not in result.err


def run_phase(server: FakeEutils, env: dict[str, str], home: Path, fault: str, expected: set[int]) -> None:
    stored, state = topic_pmids(home), topic_state(home)
    new = len(expected - stored)
    batches = math.ceil(new / BATCH)
    middle = batches // 2 + 1

    inject(server, fault, "esearch", 1, times=ATTEMPTS + 1)
    result = invoke(env, "fetch")
    assert_failed_cleanly(result, fault, "esearch")
    assert (topic_pmids(home), topic_state(home)) == (stored, state)

    # The burst's last firing hits this run's first esearch. Then: one failure on the middle batch's first
    # attempt (its retry is the next request), and a burst on every attempt of the last batch.
    inject(server, fault, "efetch", middle)
    inject(server, fault, "efetch", batches + 1, times=ATTEMPTS + 1)
    result = invoke(env, "fetch")
    assert_failed_cleanly(result, fault, "efetch")
    partial = topic_pmids(home)
    assert stored < partial < expected and len(partial - stored) == (batches - 1) * BATCH
    assert topic_state(home) == state  # nothing past the stored papers is marked as searched
    assert_consistent(home)

    before = len(server.requests)
    result = invoke(env, "fetch")  # its first efetch meets the burst's last firing
    assert result.code == 0, (result.out, result.err)
    assert re.match(rf"dosing: {len(expected - partial)} new, {len(expected) - len(stored)} matched, \d+ "
                    r"requests, [\d.]+ s", result.out), result.out
    assert len(result.out.splitlines()) == 1
    # The papers the failed run stored are not fetched again as new ones (a request may still refresh
    # stored papers PubMed reports as modified, but never mixed into a batch of new ones).
    missing = expected - partial
    batches = efetched(server, before)
    assert all(ids <= missing or not ids & missing for ids in batches)
    assert set().union(*(ids for ids in batches if ids <= missing)) == missing
    assert topic_pmids(home) == expected
    assert server.pending_faults == 0
    assert_consistent(home)


@pytest.mark.parametrize("fault", list(REASONS))
def test_each_fault_at_each_point_ends_with_the_papers_of_a_clean_run(fault, records, clean, tmp_path):
    home = make_home(tmp_path)
    with FakeEutils() as server:
        server.add(*records.backfill)
        env = cli_env(home, server.url, **FAULT_ENV)
        run_phase(server, env, home, fault, clean.backfill)
        assert topic_state(home)[:3] == clean.backfill_state[:3]

        age_watermark(home)
        aged = topic_state(home)
        server.add(*records.incremental)
        run_phase(server, env, home, fault, clean.incremental)
        assert aged[0] == (TODAY - timedelta(days=1)).isoformat()
        assert topic_state(home)[:3] == clean.incremental_state[:3]
        failed, succeeded = (sql(home, "SELECT count(*) FROM run WHERE status = ?", status)[0][0]
                             for status in ("failed", "succeeded"))
        assert (failed, succeeded) == (4, 2)
        [(last_run,)] = sql(home, "SELECT max(id) FROM run WHERE status = 'succeeded'")
        assert topic_state(home)[3] == last_run  # the watermark was moved by the run that stored everything
