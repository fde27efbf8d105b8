"""Team deployments: several `tracker schedule` processes on one database, and every command on PostgreSQL.

The lease tests call tracker/store/leases.py directly on both back ends. The daemon tests start real
`python -m tracker schedule` processes on one database (the `db_url` fixture: SQLite, and PostgreSQL
when a server is reachable) against the fake E-utilities server and a loopback SMTP server, with
TRACKER_SCHEDULE_EVERY making every job due every few seconds.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import cli_env, run_tracker
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml
from tests.test_schedule import DOSING_QUERY, ELDERLY_QUERY, Daemon, add_records, wait_for
from tracker.store.leases import abandoned_leases, claim_job, due_key, finish_job, lease, release_job, renew_leases

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)


def rows(url: str, sql: str, **params) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


# -- leases -----------------------------------------------------------------------------------

def test_a_run_is_claimed_by_one_scheduler_and_finished_by_it(store):
    claim = claim_job(store, "fetch:dosing", DUE, "A", timeout=60)
    assert claim is not None and claim.taken_from is None and claim.due_at == DUE
    assert claim_job(store, "fetch:dosing", DUE, "B", timeout=60) is None  # running: the others skip it
    assert claim_job(store, "fetch:dosing", DUE + timedelta(days=1), "B", timeout=60) is not None  # another due time
    assert claim_job(store, "email", DUE, "B", timeout=60) is not None  # another job
    assert finish_job(store, claim, "A", outcome="ok")
    held = lease(store, "fetch:dosing", DUE)
    assert (held.status, held.outcome, held.attempts, held.token) == ("done", "ok", 1, "A")
    assert held.finished_at is not None
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert claim_job(store, "fetch:dosing", DUE, "B", timeout=60, now=later) is None  # done: never again
    assert abandoned_leases(store, timeout=60, now=later) == [lease(store, "email", DUE),
                                                              lease(store, "fetch:dosing", DUE + timedelta(days=1))]


def test_a_silent_holder_loses_its_run_after_the_timeout_and_one_taker_wins(store):
    claim = claim_job(store, "fetch:dosing", DUE, "A", timeout=60)
    started = lease(store, "fetch:dosing", DUE).heartbeat_at
    soon = started + timedelta(seconds=59)
    assert claim_job(store, "fetch:dosing", DUE, "B", timeout=60, now=soon) is None
    assert abandoned_leases(store, timeout=60, now=soon) == []

    late = started + timedelta(seconds=61)
    assert [gone.token for gone in abandoned_leases(store, timeout=60, now=late)] == ["A"]
    taken = claim_job(store, "fetch:dosing", DUE, "B", timeout=60, now=late)
    assert taken is not None and taken.taken_from.token == "A"
    assert claim_job(store, "fetch:dosing", DUE, "C", timeout=60, now=late) is None  # B's now, and fresh
    held = lease(store, "fetch:dosing", DUE)
    assert (held.token, held.attempts, held.status) == ("B", 2, "running")

    assert not finish_job(store, claim, "A", outcome="ok")  # the old holder cannot finish B's run
    assert renew_leases(store, "A") == 0 and renew_leases(store, "B") == 1
    assert finish_job(store, taken, "B", outcome="failed")
    assert lease(store, "fetch:dosing", DUE).outcome == "failed"


def test_a_released_run_is_free_at_once(store):
    claim = claim_job(store, "email", DUE, "A", timeout=3600)
    assert release_job(store, claim, "A")
    assert [gone.status for gone in abandoned_leases(store, timeout=3600)] == ["released"]
    taken = claim_job(store, "email", DUE, "B", timeout=3600)
    assert taken is not None and taken.taken_from.status == "released"
    assert not release_job(store, claim, "A")


def test_due_times_are_keyed_in_utc_whole_seconds(store):
    berlin = DUE.astimezone(ZoneInfo("Europe/Berlin")).replace(microsecond=123456)
    assert due_key(berlin) == DUE == due_key(DUE.replace(tzinfo=None))
    assert claim_job(store, "email", berlin, "A", timeout=60) is not None
    assert claim_job(store, "email", DUE, "B", timeout=60) is None


def test_schedulers_starting_together_on_a_new_database_create_the_job_table_once(db_url):
    # APScheduler's own create(checkfirst=True) is a check then a CREATE: four schedulers released
    # together on a new PostgreSQL schema failed every time (the losers' CREATE TABLE collided).
    import threading

    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    from tracker.schedule import JOB_TABLE
    from tracker.store import open_store

    stores = [open_store(db_url) for _ in range(4)]
    tables = [SQLAlchemyJobStore(engine=store.engine, tablename=JOB_TABLE).jobs_t for store in stores]
    barrier, errors = threading.Barrier(len(stores)), []

    def start(store, table):
        barrier.wait()
        try:
            store.ensure_table(table)
        except Exception as error:  # collected: an exception in a thread would not fail the test
            errors.append(error)

    threads = [threading.Thread(target=start, args=pair) for pair in zip(stores, tables, strict=True)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert rows(db_url, f"SELECT count(*) FROM {JOB_TABLE}") == [(0,)]
    finally:
        for store in stores:
            store.close()


# -- schedulers sharing a database ------------------------------------------------------------

@pytest.fixture
def schedulers():
    started: list[Daemon] = []

    def start(env, count: int) -> list[Daemon]:
        batch = [Daemon(env) for _ in range(count)]
        started.extend(batch)
        for daemon in batch:
            daemon.wait_for("tracker schedule started", timeout=60)
        return batch

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def papers_mailed(smtp) -> Counter:
    """How many times each PMID was mailed to each recipient, read from the messages the server received."""
    mailed: Counter = Counter()
    for message in smtp.messages:
        body = message.parsed().get_body(("plain",)).get_content()
        for recipient in message.rcpt_tos:
            for pmid in set(re.findall(r"pubmed\.ncbi\.nlm\.nih\.gov/(\d+)", body)):
                mailed[(recipient, int(pmid))] += 1
    return mailed


@pytest.mark.slow
@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_schedulers_sharing_a_database_run_each_due_job_once(count, db_url, home, fake_eutils, schedulers):
    from tests.smtp_server import LoopbackSMTP

    add_records(fake_eutils, range(1, 6), DOSING_QUERY)
    add_records(fake_eutils, range(6, 9), ELDERLY_QUERY)
    with LoopbackSMTP() as smtp:
        env = cli_env(home, fake_eutils.url, TRACKER_DB_URL=db_url, TRACKER_SCHEDULE_EVERY="1",
                      TRACKER_LEASE_TIMEOUT="5", TRACKER_SMTP_HOST=smtp.host, TRACKER_SMTP_PORT=str(smtp.port),
                      TRACKER_SMTP_SECURITY="none", TRACKER_MAIL_FROM="tracker@example.org",
                      TRACKER_MAIL_TO="team@example.org")
        started = schedulers(env, count)
        wait_for(lambda: len(papers_mailed(smtp)) >= 8, timeout=60, what="the first 8 papers mailed")
        fake_eutils.add(*[FakeRecord(pmid=p, xml=article_xml(p, created=date.today()), created=date.today(),
                                     queries={DOSING_QUERY}) for p in range(20, 24)])  # new while they all run
        wait_for(lambda: len(papers_mailed(smtp)) >= 12, timeout=60, what="the 4 new papers mailed")
        time.sleep(3)  # a few more due times with nothing new
        for daemon in started:
            assert daemon.stop() == 0, daemon.stderr

    mailed = papers_mailed(smtp)
    assert mailed == Counter({("team@example.org", pmid): 1 for pmid in [*range(1, 9), *range(20, 24)]})
    assert rows(db_url, "SELECT recipient, count(*) FROM delivery GROUP BY recipient") == [("team@example.org", 12)]
    assert sorted(rows(db_url, "SELECT topic, count(*) FROM topic_paper GROUP BY topic")) == [("dosing", 9),
                                                                                            ("elderly", 3)]
    leases = rows(db_url, "SELECT job, status, outcome, pid FROM job_lease")
    # A run a stopping scheduler had queued is released (the next scheduler to start takes it); none is left running.
    assert {status for _job, status, _outcome, _pid in leases} <= {"done", "released"}
    for topic in ("dosing", "elderly"):
        ran = [lease for lease in leases if lease[0] == f"fetch:{topic}" and lease[2] in ("ok", "failed")]
        released = [lease for lease in leases if lease[0] == f"fetch:{topic}" and lease[1] == "released"]
        [(finished, interrupted)] = rows(
            db_url, "SELECT count(*) - count(error LIKE '%interrupted (ShutdownRequested)' OR NULL), "
                    "count(error LIKE '%interrupted (ShutdownRequested)' OR NULL) FROM run WHERE topic = :topic",
            topic=topic)
        assert finished == len(ran) >= 3  # one run per due time a scheduler won, never two
        assert interrupted <= len(released)  # stopped half-way at the end, and handed back
    holders = Counter(pid for *_rest, pid in leases)
    assert len(holders) >= 2, f"one scheduler ran everything: {holders}"  # the runs really were shared
    logs = "".join(daemon.stderr for daemon in started)
    assert "is another scheduler's; skipping it here" in logs
    assert "Traceback" not in logs


@pytest.mark.slow
def test_killing_the_lease_holder_hands_its_run_to_another_scheduler(db_url, home, schedulers):
    from tests.fake_eutils import FakeEutils

    (home / "queries" / "elderly.toml").unlink()
    with FakeEutils(delay=0.25) as server:
        add_records(server, range(1, 21), DOSING_QUERY)
        env = cli_env(home, server.url, TRACKER_DB_URL=db_url, TRACKER_SCHEDULE_EVERY="2",
                      TRACKER_LEASE_TIMEOUT="2", TRACKER_EFETCH_BATCH="1")
        started = schedulers(env, 3)

        def holder():
            found = rows(db_url, "SELECT pid, due_at FROM job_lease WHERE job = 'fetch:dosing' AND status = 'running'")
            stored = rows(db_url, "SELECT count(*) FROM topic_paper")[0][0] if found else 0
            return found[0] if found and stored >= 3 else None

        pid, due_at = wait_for(holder, timeout=60, what="a fetch half-way")
        [victim] = [daemon for daemon in started if daemon.pid == pid]
        victim.proc.kill()  # kill -9: its lease is never released
        victim.proc.wait()
        survivors = [daemon for daemon in started if daemon is not victim]

        def taken_over():
            [(status, attempts, holder_pid)] = rows(
                db_url, "SELECT status, attempts, pid FROM job_lease WHERE job = 'fetch:dosing' AND due_at = :due",
                due=due_at)
            return status == "done" and attempts == 2 and holder_pid != pid

        wait_for(taken_over, timeout=60, what="the killed scheduler's run taken over and finished")
        wait_for(lambda: rows(db_url, "SELECT count(*) FROM topic_paper")[0][0] == 20, timeout=60,
                 what="all 20 papers stored")
        for daemon in survivors:
            assert daemon.stop() == 0, daemon.stderr

    logs = "".join(daemon.stderr for daemon in survivors)
    assert re.search(rf"fetch:dosing: taking over the run due .* from pid {pid} on host \S+ \(no heartbeat for \d+ s\)",
                     logs), logs
    assert rows(db_url, "SELECT count(*), count(DISTINCT pmid) FROM paper") == [(20, 20)]
    assert sorted(pmid for (pmid,) in rows(db_url, "SELECT pmid FROM topic_paper")) == list(range(1, 21))
    statuses = Counter(status for (status,) in rows(db_url, "SELECT status FROM run WHERE topic = 'dosing'"))
    assert statuses == Counter(failed=1, succeeded=statuses["succeeded"]) and statuses["succeeded"] >= 1
    [(error,)] = rows(db_url, "SELECT error FROM run WHERE topic = 'dosing' AND status = 'failed'")
    assert error.startswith(f"interrupted: its process (pid {pid}) stopped before the run finished")
    assert "Traceback" not in logs


# -- every command on both back ends ----------------------------------------------------------

def test_every_command_works_on_either_back_end(db_url, home, fake_eutils):
    add_records(fake_eutils, range(1, 4), DOSING_QUERY)
    add_records(fake_eutils, range(4, 6), ELDERLY_QUERY)
    env = cli_env(home, fake_eutils.url, TRACKER_DB_URL=db_url)
    fetched = run_tracker("run", env=env)
    assert fetched.code == 0, fetched.err
    status = run_tracker("status", env=env)
    assert status.code == 0 and re.search(r"dosing\s.*\sok\s", status.out), status.out
    exported = run_tracker("export", "--format", "csv", "-o", "-", env=env)
    assert exported.code == 0, exported.err
    assert sorted(int(line.split(",")[0]) for line in exported.out.splitlines()[1:]) == [1, 2, 3, 4, 5]
    digest = run_tracker("digest", "dosing", "--format", "md", "-o", "-", env=env)
    assert digest.code == 0 and digest.out.count("https://pubmed.ncbi.nlm.nih.gov/") >= 3, digest.err
    searched = run_tracker("search", "--format", "json", "norepinephrine", env=env)
    assert searched.code == 0, searched.err
    mailed = run_tracker("email", "--dry-run", env={**env, "TRACKER_MAIL_TO": "team@example.org",
                                                    "TRACKER_MAIL_FROM": "tracker@example.org"})
    assert mailed.code == 0, mailed.err
    again = run_tracker("fetch", "dosing", env=env)
    assert again.code == 0 and "0 new" in again.out + again.err, again.out + again.err


def test_an_unreachable_postgresql_server_is_one_line_that_says_what_to_do(home):
    env = cli_env(home, None, TRACKER_DB_URL="postgresql+psycopg://tracker:SENTINEL-PW@127.0.0.1:1/tracker")
    result = run_tracker("status", env=env)
    assert result.code == 2
    [line] = result.err.splitlines()
    assert line.startswith("error: cannot connect to postgresql+psycopg://tracker:***@127.0.0.1:1/tracker (")
    assert line.endswith("): start PostgreSQL or fix TRACKER_DB_URL") and "SENTINEL-PW" not in line
