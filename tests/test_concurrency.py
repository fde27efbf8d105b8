"""Processes sharing one database: two `tracker fetch` at once, and `tracker fetch` beside `tracker schedule`.

Nothing may corrupt the database, store a row twice or show the user "database is locked": SQLite waits
(busy timeout), transactions are short, and one run per topic at a time is enforced by the per-topic run
lock (tracker/store/locks.py). A second run of a topic in progress is skipped with one line and exit 0;
the lock of a killed run is taken over.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_tracker, write_topic
from tests.fake_eutils import FakeEutils
from tests.smtp_server import LoopbackSMTP
from tests.test_faults import assert_consistent, invoke, record, sql, topic_pmids, topic_state
from tracker.store import open_store
from tracker.store.locks import TopicRunLock

TODAY = date.today()
DOSING, ELDERLY = "norepinephrine dosing", "norepinephrine elderly"
HOST = socket.gethostname()
LOCKED = re.compile(r"database is locked|database table is locked|Traceback", re.IGNORECASE)


def stored(moment: datetime) -> str:
    """A UTC time as SQLAlchemy keeps it in SQLite."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def make_home(root: Path) -> Path:
    home = root / "home"
    write_topic(home, "dosing", DOSING, since="2021-01-01")
    write_topic(home, "elderly", ELDERLY, since="2021-01-01")
    return home


def add(server: FakeEutils, pmids, *queries: str, created: date | None = None) -> set[int]:
    records = [record(p, created or date(2021, 1, 1) + timedelta(days=p % 700)) for p in pmids]
    server.add(*[replace(r, queries=frozenset(queries)) for r in records])
    return set(pmids)


def start(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tracker", *args], env=env, cwd=env["TRACKER_HOME"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def skipped_line(slug: str, pid: int) -> re.Pattern:
    return re.compile(rf"{slug}: skipped: another run \(pid {pid}, started \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\) "
                      r"is in progress")


def assert_runs_never_overlapped(home: Path) -> None:
    """No two runs of one topic were in progress at the same time (the per-topic run lock)."""
    for (topic,) in sql(home, "SELECT DISTINCT topic FROM run"):
        spans = sql(home, "SELECT started_at, finished_at, pid FROM run WHERE topic = ? ORDER BY started_at", topic)
        for (_, end, pid), (start, _, other) in zip(spans, spans[1:], strict=False):
            assert end is not None and end <= start, (topic, pid, other, spans)


def check_fetch_output(out: str, err: str, other_pid: int) -> set[str]:
    """Each topic's line is a result or a skip naming the other process; returns the topics skipped."""
    assert not LOCKED.search(out + err), out + err
    skipped = set()
    lines = out.splitlines()
    assert len(lines) == 2, out
    for slug, line in zip(("dosing", "elderly"), lines, strict=True):
        if skipped_line(slug, other_pid).fullmatch(line):
            skipped.add(slug)
        else:
            assert re.match(rf"{slug}: \d+ new, \d+ matched, ", line), line
    return skipped


@pytest.mark.slow
def test_two_fetches_of_the_same_topics_at_once_store_everything_once(tmp_path):
    home = make_home(tmp_path)
    with FakeEutils(delay=0.01) as server:
        both = add(server, range(1001, 1201), DOSING, ELDERLY)
        dosing = add(server, range(1, 1001), DOSING) | both
        elderly = add(server, range(1201, 2201), ELDERLY) | both
        env = cli_env(home, server.url, TRACKER_EFETCH_BATCH="100")
        for round_ in range(3):
            # Round 0 races on a database neither process has created; the others on new papers.
            first, second = start(env, "fetch"), start(env, "fetch")
            out1, err1 = first.communicate(timeout=180)
            out2, err2 = second.communicate(timeout=180)
            assert (first.returncode, second.returncode) == (0, 0), (round_, err1, err2)
            check_fetch_output(out1, err1, second.pid)
            check_fetch_output(out2, err2, first.pid)
            assert topic_pmids(home, "dosing") == dosing and topic_pmids(home, "elderly") == elderly
            assert_consistent(home)
            assert sql(home, "SELECT count(*) FROM instance_lock") == [(0,)]
            assert sql(home, "SELECT count(*) FROM run WHERE status != 'succeeded'") == [(0,)]
            assert_runs_never_overlapped(home)
            dosing |= add(server, range(5000 + 300 * round_, 5300 + 300 * round_), DOSING, created=TODAY)
            elderly |= add(server, range(9000 + 300 * round_, 9300 + 300 * round_), ELDERLY, created=TODAY)


@pytest.mark.slow
def test_a_run_of_a_topic_in_progress_is_skipped_and_a_killed_runs_lock_is_taken_over(tmp_path):
    home = make_home(tmp_path)
    # 0.6 s an answer: with three efetch requests on their way at once, the 100 batches take 20 s or more.
    with FakeEutils(delay=0.6) as server:
        dosing = add(server, range(1, 501), DOSING)
        add(server, range(501, 511), ELDERLY)
        env = cli_env(home, server.url, TRACKER_EFETCH_BATCH="5")
        busy = start(env, "fetch", "dosing")
        deadline = time.monotonic() + 60
        while server.count("efetch") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        for args in (["fetch"], ["run", "dosing"], ["schedule", "--run-now", "dosing"]):
            result = run_tracker(*args, env=env)
            assert result.code == 0, (args, result.err)
            assert skipped_line("dosing", busy.pid).fullmatch(result.out.splitlines()[0]), (args, result.out)
            assert not LOCKED.search(result.out + result.err)
        [(started,)] = sql(home, "SELECT started_at FROM instance_lock WHERE name = 'run:dosing'")
        age = datetime.now(timezone.utc) - datetime.fromisoformat(started).replace(tzinfo=timezone.utc)
        assert timedelta(0) <= age < timedelta(minutes=5)
        assert busy.poll() is None, "the first run ended before the others tried; slow the server down"
        busy.kill()  # kill -9: its lock row stays behind
        busy.communicate()
        assert sql(home, "SELECT pid, host FROM instance_lock WHERE name = 'run:dosing'") == [(busy.pid, HOST)]
        assert topic_state(home) is None and len(topic_pmids(home)) < len(dosing)
        server.delay = 0

        result = run_tracker("fetch", "dosing", env=env)
        assert result.code == 0, result.err
        assert re.match(r"dosing: \d+ new, 500 matched, ", result.out), result.out
        assert (f"took over the run lock of topic 'dosing' from pid {busy.pid} on host {HOST}, since "
                in result.err), result.err
        assert "that process is no longer running" in result.err
        assert topic_pmids(home) == dosing and topic_state(home) is not None
        assert sql(home, "SELECT count(*) FROM instance_lock") == [(0,)]
        assert_consistent(home)


def test_a_run_lock_held_on_another_host_is_respected_until_its_heartbeat_goes_stale(tmp_path):
    home = make_home(tmp_path)
    with FakeEutils() as server:
        add(server, range(1, 11), DOSING)
        env = cli_env(home, server.url)
        store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}")
        lock = TopicRunLock(store, "dosing")
        lock.acquire()
        moved = datetime(2026, 1, 5, 6, 0, tzinfo=timezone.utc)
        sql(home, "UPDATE instance_lock SET host = 'lab-pc', pid = 4242, started_at = ?, heartbeat_at = ?",
            stored(moved), stored(datetime.now(timezone.utc)))
        result = invoke(env, "fetch", "dosing")
        assert (result.code, result.out) == (0, "dosing: skipped: another run (pid 4242 on host lab-pc, started "
                                                "2026-01-05 06:00:00 UTC) is in progress\n")
        assert topic_pmids(home) == set()

        stale = datetime.now(timezone.utc) - timedelta(seconds=400)
        sql(home, "UPDATE instance_lock SET heartbeat_at = ?", stored(stale))
        result = invoke(env, "fetch", "dosing")
        assert result.code == 0 and result.out.startswith("dosing: 10 new, 10 matched"), result.out
        assert re.search(r"took over the run lock of topic 'dosing' from pid 4242 on host lab-pc, since .*: "
                         r"no heartbeat from that host for \d+ s", result.err), result.err
        assert sql(home, "SELECT count(*) FROM instance_lock") == [(0,)]
        store.close()


def test_a_run_refreshes_its_heartbeat_and_stops_when_its_lock_was_taken_over(tmp_path, monkeypatch):
    from tracker.store import locks

    monkeypatch.setattr(locks, "HEARTBEAT_EVERY", 0.0)
    store = open_store(f"sqlite:///{tmp_path / 'tracker.sqlite3'}")
    try:
        lock = TopicRunLock(store, "dosing")
        lock.acquire()
        lock.beat()  # the first beat only starts the clock
        old = datetime.now(timezone.utc) - timedelta(hours=1)
        with store.engine.begin() as connection:
            connection.exec_driver_sql("UPDATE instance_lock SET heartbeat_at = ?", (stored(old),))
        lock.beat()
        assert lock.holder().heartbeat_at > old + timedelta(minutes=59)
        with store.engine.begin() as connection:
            connection.exec_driver_sql("UPDATE instance_lock SET token = 'another-holder'")
        with pytest.raises(locks.LockLostError, match="was taken over"):
            lock.beat()
    finally:
        store.close()


def test_a_lock_from_another_host_expires_without_heartbeats_and_its_loser_stops(tmp_path):
    from sqlalchemy import update

    from tracker.store.locks import InstanceLockHandle, LockHeldError, LockLostError
    from tracker.store.models import InstanceLock

    store = open_store(f"sqlite:///{tmp_path / 'tracker.sqlite3'}")
    try:
        remote = InstanceLockHandle(store, "trial", what="trial process", stale_after=60)
        remote.acquire()

        def pretend(**values):
            with store.engine.begin() as connection:
                connection.execute(update(InstanceLock.__table__).values(**values))

        pretend(host="elsewhere", pid=4242, started_at=datetime(2025, 1, 6, 6, 0, tzinfo=timezone.utc),
                heartbeat_at=datetime.now(timezone.utc))
        local = InstanceLockHandle(store, "trial", what="trial process", stale_after=60)
        with pytest.raises(LockHeldError) as held:
            local.acquire()
        assert re.fullmatch(r"another trial process \(pid 4242 on host elsewhere, since 2025-01-06 06:00:00 UTC, "
                            r"last heartbeat \d s ago\) holds the lock on .*tracker.sqlite3: stop it first \(if that "
                            r"host is down, its lock expires 60 s after its last heartbeat\)", str(held.value))

        pretend(heartbeat_at=datetime.now(timezone.utc) - timedelta(seconds=61))
        assert local.acquire().pid == 4242  # taken over from the silent host
        with pytest.raises(LockLostError, match="was taken over by pid"):
            remote.heartbeat()
        local.heartbeat()
        local.release()
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT * FROM instance_lock").fetchall() == []
    finally:
        store.close()


def test_a_lock_written_before_a_reboot_is_stale_even_if_its_pid_runs_again(tmp_path, monkeypatch):
    from tracker.store import locks

    store = open_store(f"sqlite:///{tmp_path / 'tracker.sqlite3'}")
    try:
        before = locks.InstanceLockHandle(store, "trial", what="trial process")
        before.acquire()
        locks._held_here.discard(before.token)  # as if written by an earlier process that had this pid
        monkeypatch.setattr(locks, "boot_id", lambda: "another-boot")
        holder = locks.InstanceLockHandle(store, "trial", what="trial process").acquire()
        assert holder is not None and holder.pid == os.getpid()
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_fetch_beside_the_scheduler_corrupts_nothing_and_never_shows_a_locked_database(tmp_path):
    home = make_home(tmp_path)
    with FakeEutils(delay=0.01) as server, LoopbackSMTP() as smtp:
        both = add(server, range(601, 801), DOSING, ELDERLY)
        dosing = add(server, range(1, 601), DOSING) | both
        elderly = add(server, range(801, 1401), ELDERLY) | both
        env = cli_env(home, server.url, TRACKER_SCHEDULE_EVERY="1", TRACKER_EFETCH_BATCH="100", TRACKER_TZ="UTC",
                      TRACKER_SMTP_HOST=smtp.host, TRACKER_SMTP_PORT=str(smtp.port), TRACKER_SMTP_SECURITY="none",
                      TRACKER_MAIL_FROM="tracker@example.org", TRACKER_MAIL_TO="team@example.org")
        err_path = tmp_path / "schedule.err"
        with open(err_path, "w") as err:
            daemon = subprocess.Popen([sys.executable, "-m", "tracker", "schedule"], env=env, cwd=home,
                                      stdout=subprocess.DEVNULL, stderr=err)
        try:
            for round_ in range(4):
                result = run_tracker("fetch", env=env)
                assert result.code == 0, (result.out, result.err, err_path.read_text())
                check_fetch_output(result.out, result.err, daemon.pid)
                assert daemon.poll() is None, err_path.read_text()
                if round_ < 3:
                    dosing |= add(server, range(3000 + 100 * round_, 3100 + 100 * round_), DOSING, created=TODAY)
                    elderly |= add(server, range(6000 + 100 * round_, 6100 + 100 * round_), ELDERLY, created=TODAY)
            deadline = time.monotonic() + 60
            while (topic_pmids(home, "dosing"), topic_pmids(home, "elderly")) != (dosing, elderly):
                assert time.monotonic() < deadline, "the scheduler never caught up"
                time.sleep(0.3)
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(60) == 0, err_path.read_text()
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
        log = err_path.read_text()
        assert not LOCKED.search(log), log
        assert "failed unexpectedly" not in log and "FAILED" not in log, log
    assert_consistent(home)
    assert sql(home, "SELECT count(*) FROM instance_lock") == [(0,)]
    by_daemon = sql(home, "SELECT count(*) FROM run WHERE pid = ? AND status = 'succeeded'", daemon.pid)[0][0]
    by_others = sql(home, "SELECT count(*) FROM run WHERE pid != ? AND status = 'succeeded'", daemon.pid)[0][0]
    assert by_daemon and by_others, (by_daemon, by_others, log)  # both really ran fetches on the database
    assert_runs_never_overlapped(home)
    assert {status for (status,) in sql(home, "SELECT DISTINCT status FROM run")} <= {"succeeded", "failed"}
    for (error,) in sql(home, "SELECT error FROM run WHERE status = 'failed'"):
        assert error.endswith("interrupted (ShutdownRequested)"), error  # only a fetch stopped by SIGTERM
    mailed = [pmid for message in smtp.messages for pmid in mailed_pmids(message)]
    assert len(mailed) == len(set(mailed))  # no paper mailed twice
    assert set(mailed) <= dosing | elderly
    # Each delivered paper went out in a message's CSV, or was summed up there as its topic's baseline (the papers
    # its first run, a backfill, stored), which the ledger keeps from being mailed as new later.
    delivered = {p for (p,) in sql(home, "SELECT pmid FROM delivery")}
    baseline = {p for (p,) in sql(home, "SELECT tp.pmid FROM topic_paper tp JOIN run r ON r.id = tp.run_id "
                                        "WHERE r.kind = 'backfill'")}
    assert set(mailed) <= delivered and delivered - set(mailed) <= baseline


def mailed_pmids(message) -> list[int]:
    from tests.test_crashes import carried

    return carried(message)


def test_a_database_made_before_the_run_lock_existed_gets_its_table_on_the_first_run(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'tracker.sqlite3'}")
    try:
        with store.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE instance_lock")
        with TopicRunLock(store, "dosing") as lock:
            assert lock.holder().pid == os.getpid()
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM instance_lock").scalar_one() == 0
    finally:
        store.close()
