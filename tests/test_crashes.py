"""kill -9 at random moments of a backfill and of `tracker email`, then the next run.

Each trial's moment comes from a seeded RNG (TRACKER_CRASH_SEED, default below; the seed and the moment are
in the test id and in every failure message), so a failing trial can be replayed. After the kill:
`PRAGMA integrity_check` is ok, no paper, membership or full-text entry is stored twice, no watermark
claims papers that are not stored; the next run completes exactly the PMIDs of a clean run, and no reader
gets a paper twice, except the papers of a message the SMTP server accepted right before the kill, whose
outbox row is still `pending` (the window tracker/outputs/mail/delivery.py documents): those arrive exactly twice.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import cli_env, write_topic
from tests.fake_eutils import FakeEutils
from tests.smtp_server import LoopbackSMTP
from tests.test_digest import make_paper
from tests.test_faults import assert_consistent, invoke, record, sql, topic_pmids, topic_state
from tracker.store import open_store
from tracker.store.papers import save_papers
from tracker.store.runs import RunCounts, finish_run, start_run

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]

SEED = int(os.environ.get("TRACKER_CRASH_SEED", "20261127"))
TRIALS = int(os.environ.get("TRACKER_CRASH_TRIALS", "10"))  # per kind; 20 kills in all by default
TODAY = date.today()
RECORDS = 2000
QUERY = "norepinephrine dosing"


def rng_for(kind: str, trial: int) -> random.Random:
    return random.Random(f"{SEED}-{kind}-{trial}")


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tracker", *args], env=env, cwd=env["TRACKER_HOME"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_after(process: subprocess.Popen, seconds: float, started: float) -> bool:
    """SIGKILL `process` `seconds` after `started`; False when it had already exited."""
    try:
        process.communicate(timeout=max(started + seconds - time.monotonic(), 0))
        return False
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return True


def schema_ready(home: Path) -> bool:
    """Whether the killed run got as far as a complete schema (it is created in one transaction)."""
    if not (home / "db" / "tracker.sqlite3").exists():
        return False
    return bool(sql(home, "SELECT 1 FROM sqlite_master WHERE name = 'tracker_schema'"))


# -- the backfill --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Backfill:
    url: str
    expected: set[int]
    first_request: float  # seconds from process start, in the clean run
    duration: float


@pytest.fixture(scope="module")
def backfill(tmp_path_factory):
    with FakeEutils(delay=0.03) as server:
        server.add(*[record(p, date(2021, 1, 1) + timedelta(days=p % 900)) for p in range(1, RECORDS + 1)])
        home = fetch_home(tmp_path_factory.mktemp("clean-backfill"))
        process = start(["fetch"], fetch_env(home, server.url))
        started = time.monotonic()
        while not server.requests and process.poll() is None:
            time.sleep(0.005)
        first_request = time.monotonic() - started
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        yield Backfill(server.url, topic_pmids(home), first_request, time.monotonic() - started)


def fetch_home(root: Path) -> Path:
    home = root / "home"
    write_topic(home, "dosing", QUERY, since="2021-01-01")
    return home


def fetch_env(home: Path, url: str) -> dict[str, str]:
    return cli_env(home, url, TRACKER_EFETCH_BATCH="100")


@pytest.mark.parametrize("trial", range(TRIALS), ids=lambda trial: f"seed{SEED}-trial{trial}")
def test_kill_9_during_a_backfill_then_the_next_run_completes_it(backfill, trial, tmp_path):
    assert backfill.expected == set(range(1, RECORDS + 1))
    # From late in start-up (the database being created) to the end of a clean run.
    moment = rng_for("backfill", trial).uniform(0.7 * backfill.first_request, backfill.duration)
    why = f"seed {SEED}, trial {trial}: kill -9 at {moment:.2f} s"
    home = fetch_home(tmp_path)
    env = fetch_env(home, backfill.url)
    process = start(["fetch"], env)
    killed = kill_after(process, moment, time.monotonic())

    if schema_ready(home):
        assert_consistent(home)
        state = topic_state(home)
        if state is not None:  # only the run that stored everything may set the watermark
            assert topic_pmids(home) == backfill.expected, why
            assert sql(home, "SELECT status FROM run WHERE id = ?", state[3]) == [("succeeded",)], why
        elif killed:
            # Killed before the commit that moves the watermark: possibly after storing every paper (the
            # run still checks modification dates before it finishes), but never recorded as succeeded.
            assert sql(home, "SELECT status FROM run") in ([], [("running",)]), why

    result = invoke(env, "fetch")
    assert result.code == 0, f"{why}: {result.out}{result.err}"
    assert "database is locked" not in result.err and "Traceback" not in result.err, why
    assert topic_pmids(home) == backfill.expected, why
    assert topic_state(home)[0] == (TODAY + timedelta(days=1)).isoformat(), why
    assert sql(home, "SELECT count(*) FROM run WHERE status = 'running'") == [(0,)], why  # the killed run closed
    assert_consistent(home)
    assert sql(home, "SELECT count(*) FROM instance_lock") == [(0,)], why  # a dead run's lock was taken over


# -- the weekly e-mail ---------------------------------------------------------------------------------------

READERS = {
    "dosing": ("a@example.org", "b@example.org", "c@example.org"),
    "elderly": ("b@example.org", "d@example.org", "e@example.org"),
    "sepsis": ("c@example.org", "f@example.org"),
}
PAPERS = {"dosing": range(1, 16), "elderly": range(10, 26), "sepsis": range(30, 42)}


def expected_papers() -> dict[str, set[int]]:
    wanted: dict[str, set[int]] = {}
    for topic, readers in READERS.items():
        for reader in readers:
            wanted.setdefault(reader, set()).update(PAPERS[topic])
    return wanted


@pytest.fixture(scope="module")
def mail_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("mail-template") / "home"
    for topic, readers in READERS.items():
        write_topic(home, topic, f"norepinephrine {topic}", recipients="[" + ", ".join(f'"{r}"' for r in readers) + "]")
    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}")
    for topic, pmids in PAPERS.items():
        run = start_run(store, topic, kind="fetch", query="q", window_start=None, window_end=None)
        save_papers(store, [make_paper(pmid, title=f"Paper {pmid} of {topic}") for pmid in pmids], topic=topic,
                    run_id=run.id)
        finish_run(store, run.id, RunCounts(new_papers=len(pmids)))
    store.close()
    return home


def copy_home(template: Path, root: Path) -> Path:
    home = root / "home"
    shutil.copytree(template, home)
    return home


def mail_env(home: Path, smtp: LoopbackSMTP) -> dict[str, str]:
    return cli_env(home, None, TRACKER_SMTP_HOST=smtp.host, TRACKER_SMTP_PORT=str(smtp.port),
                   TRACKER_SMTP_SECURITY="none", TRACKER_MAIL_FROM="tracker@example.org")


def slow_down(smtp: LoopbackSMTP, seconds: float, on_accept=None) -> None:
    """Each message takes `seconds` to be accepted; `on_accept(n)` runs once the server holds the nth."""
    accept = smtp.handler.handle_DATA

    async def handle_DATA(server, session, envelope):
        reply = await accept(server, session, envelope)
        if on_accept is not None:
            on_accept(len(smtp.messages))
        await asyncio.sleep(seconds)
        return reply

    smtp.handler.handle_DATA = handle_DATA


def carried(message) -> list[int]:
    """The PMIDs a received message carried: the first column of its CSV (none for a heartbeat)."""
    parsed = message.parsed()
    tables = [part for part in parsed.walk() if part.get_content_type() == "text/csv"]
    if not tables:
        return []
    rows = list(csv.reader(io.StringIO(tables[0].get_content().lstrip("\ufeff"))))
    return [int(row[0]) for row in rows[1:]]


def possibly_sent(home: Path, smtp: LoopbackSMTP) -> dict[str, set[int]]:
    """Per reader, the papers of messages the server accepted while their outbox row stayed `pending`."""
    received = {m.parsed()["Message-ID"] for m in smtp.messages}
    allowed: dict[str, set[int]] = {}
    for message_id, recipient in sql(home, "SELECT message_id, recipient FROM outbox WHERE status = 'pending'"):
        if message_id in received:
            [message] = [m for m in smtp.messages if m.parsed()["Message-ID"] == message_id]
            allowed.setdefault(recipient, set()).update(carried(message))
    return allowed


def check_after_kill_and_next_run(home: Path, smtp: LoopbackSMTP, env: dict[str, str], why: str) -> dict:
    assert sql(home, "PRAGMA integrity_check") == [("ok",)], why
    pending = sql(home, "SELECT message_id FROM outbox WHERE status = 'pending'")
    allowed = possibly_sent(home, smtp)
    for recipient, pmids in allowed.items():  # such a message's papers are not in the ledger
        assert not {p for (p,) in sql(home, "SELECT pmid FROM delivery WHERE recipient = ?", recipient)} & pmids, why

    result = invoke(env, "email")
    assert result.code == 0, f"{why}: {result.out}{result.err}"
    assert result.err.count("possibly sent: the message ") == len(pending), f"{why}: {result.err}"

    wanted = expected_papers()
    counts: dict[str, Counter] = {reader: Counter() for reader in wanted}
    for message in smtp.messages:
        [reader] = message.rcpt_tos
        counts[reader].update(carried(message))
    for reader, papers in wanted.items():
        assert set(counts[reader]) == papers, f"{why}: {reader}"
        twice = allowed.get(reader, set())
        assert {p: n for p, n in counts[reader].items() if n != 1} == {p: 2 for p in twice}, f"{why}: {reader}"
        ledger = {p for (p,) in sql(home, "SELECT pmid FROM delivery WHERE recipient = ?", reader)}
        assert ledger == papers, f"{why}: {reader}"
    assert sql(home, "SELECT count(*) FROM outbox WHERE status = 'pending'") == [(0,)], why
    return allowed


@dataclass(frozen=True)
class MailTiming:
    first_message: float
    duration: float


@pytest.fixture(scope="module")
def mail_timing(mail_home, tmp_path_factory) -> MailTiming:
    home = copy_home(mail_home, tmp_path_factory.mktemp("clean-mail"))
    with LoopbackSMTP() as smtp:
        slow_down(smtp, 0.1)
        process = start(["email"], mail_env(home, smtp))
        started = time.monotonic()
        while not smtp.messages and process.poll() is None:
            time.sleep(0.005)
        first = time.monotonic() - started
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert len(smtp.messages) == len(expected_papers())
    return MailTiming(first, time.monotonic() - started)


@pytest.mark.parametrize("trial", range(TRIALS), ids=lambda trial: f"seed{SEED}-trial{trial}")
def test_kill_9_while_mailing_then_no_reader_gets_a_paper_twice_outside_the_documented_window(
        mail_home, mail_timing, trial, tmp_path):
    moment = rng_for("email", trial).uniform(0.8 * mail_timing.first_message, mail_timing.duration)
    why = f"seed {SEED}, trial {trial}: kill -9 at {moment:.2f} s"
    home = copy_home(mail_home, tmp_path)
    with LoopbackSMTP() as smtp:
        slow_down(smtp, 0.1)
        env = mail_env(home, smtp)
        kill_after(start(["email"], env), moment, time.monotonic())
        check_after_kill_and_next_run(home, smtp, env, why)


def test_kill_9_right_after_the_server_accepted_a_message_sends_its_papers_once_more(mail_home, tmp_path):
    """The documented window, hit on purpose: the server holds the third message when its sender dies."""
    home = copy_home(mail_home, tmp_path)
    with LoopbackSMTP() as smtp:
        env = mail_env(home, smtp)
        sender: list[subprocess.Popen] = []
        slow_down(smtp, 0, on_accept=lambda n: n == 3 and os.kill(sender[0].pid, signal.SIGKILL))
        process = start(["email"], env)
        sender.append(process)
        process.communicate(timeout=120)
        assert process.returncode == -signal.SIGKILL
        [(message_id, recipient)] = sql(home, "SELECT message_id, recipient FROM outbox WHERE status = 'pending'")
        assert smtp.messages[2].parsed()["Message-ID"] == message_id and recipient == "c@example.org"
        allowed = check_after_kill_and_next_run(home, smtp, env, "kill at the third acceptance")
    assert allowed == {"c@example.org": set(PAPERS["dosing"]) | set(PAPERS["sepsis"])}


def test_a_schema_creation_cut_short_leaves_nothing_the_next_run_trips_on(tmp_path, monkeypatch):
    """What a kill between two CREATE statements of a new database does, made deterministic."""
    database = tmp_path / "db" / "tracker.sqlite3"

    def killed(connection):
        raise KeyboardInterrupt  # after every table was created, before the full-text index and version

    monkeypatch.setattr("tracker.store.schema.create_extras", killed)
    with pytest.raises(KeyboardInterrupt):
        open_store(f"sqlite:///{database}")
    monkeypatch.undo()
    connection = sqlite3.connect(database)
    try:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []
    finally:
        connection.close()
    store = open_store(f"sqlite:///{database}")
    store.close()
    home = database.parent.parent
    assert sql(home, "SELECT version FROM tracker_schema") != [] and schema_ready(home)
