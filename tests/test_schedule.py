"""`tracker schedule`: the real APScheduler on the tracker's database, in this process and as a real daemon.

In-process tests drive `Service` (a BackgroundScheduler) directly; a "sleep" is simulated by moving a
stored job's next run time into the past. Subprocess tests run `python -m tracker schedule` with
TRACKER_SCHEDULE_EVERY (every job every N seconds instead of its cron) against the fake E-utilities
server and a loopback SMTP server, and talk to it with signals.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import cli_env, run_tracker, write_topic
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml
from tracker import schedule
from tracker.errors import ConfigError
from tracker.schedule import Service, cron_trigger, crontab_weekdays, run_topic_job
from tracker.settings import Settings
from tracker.store import open_store
from tracker.store.locks import TopicRunLock

API_KEY = "SENTINEL-API-KEY-5f1c"
SMTP_PASSWORD = "SENTINEL-SMTP-PASSWORD-77aa"
CREATED = date.today() - timedelta(days=3)
DOSING_QUERY, ELDERLY_QUERY = "norepinephrine dosing", "norepinephrine elderly"


# -- helpers --------------------------------------------------------------------------------

def add_records(server, pmids, query):
    server.add(*[FakeRecord(pmid=p, xml=article_xml(p, created=CREATED), created=CREATED, queries={query})
                 for p in pmids])


def settings_for(home: Path, url: str | None = None, **env) -> Settings:
    return Settings.from_env(home=home, env=cli_env(home, url, **env))


def query(home: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(home / "db" / "tracker.sqlite3") as connection:
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return []
            raise


def runs(home: Path, topic: str | None = None) -> list[tuple]:
    sql = "SELECT topic, status, error FROM run" + (" WHERE topic = ?" if topic else "") + " ORDER BY id"
    return query(home, sql, *([topic] if topic else []))


def stored_papers(home: Path) -> int:
    if not (home / "db" / "tracker.sqlite3").exists():
        return 0
    return sum(count for (count,) in query(home, "SELECT count(*) FROM topic_paper"))


def wait_for(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def services():
    started: list[Service] = []

    def make(store, settings) -> Service:
        started.append(Service(store, settings))
        return started[-1]

    yield make
    for service in started:
        service.stop()


@pytest.fixture
def store_for():
    opened = []

    def make(settings):
        opened.append(open_store(settings.database_url))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


class Daemon:
    """`tracker schedule` in a subprocess; stderr goes to a file the test can poll."""

    def __init__(self, env: dict[str, str], *args: str):
        home = Path(env["TRACKER_HOME"])
        self.err_path = home / f"schedule-{time.monotonic_ns()}.err"
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "tracker", "schedule", *args], env=env, cwd=home,
                                         stdout=subprocess.DEVNULL, stderr=err)
        self.pid = self.proc.pid

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        def seen():
            if self.proc.poll() is not None and text not in self.stderr:
                raise AssertionError(f"tracker schedule exited with {self.proc.returncode}:\n{self.stderr}")
            return text in self.stderr

        wait_for(seen, timeout, repr(text))

    def stop(self, number: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        self.proc.send_signal(number)
        return self.proc.wait(timeout)


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(env, *args) -> Daemon:
        started.append(Daemon(env, *args))
        return started[-1]

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


# -- cron and time zones ----------------------------------------------------------------------

def test_cron_weekdays_are_counted_as_cron_counts_them():
    assert crontab_weekdays("1") == "mon"
    assert crontab_weekdays("0") == crontab_weekdays("7") == crontab_weekdays("sun") == "sun"
    assert crontab_weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert crontab_weekdays("*/2") == "sun,tue,thu,sat"
    assert crontab_weekdays("5-7") == "sun,fri,sat"
    assert crontab_weekdays("mon,wed") == "mon,wed"
    berlin = ZoneInfo("Europe/Berlin")
    fire = cron_trigger("0 7 * * 1", berlin).get_next_fire_time(None, datetime(2025, 1, 1, 12, tzinfo=berlin))
    assert fire == datetime(2025, 1, 6, 7, 0, tzinfo=berlin) and fire.strftime("%A %Z") == "Monday CET"
    for bad in ("0 7 * *", "0 7 * * 8", "0 7 * * 5-1", "61 * * * *"):
        with pytest.raises(ValueError, match="invalid cron expression"):
            cron_trigger(bad, berlin)


def test_schedule_settings_come_from_the_environment(tmp_path):
    settings = settings_for(tmp_path, TRACKER_TZ="Asia/Tokyo", TRACKER_MISFIRE_GRACE="600")
    assert (settings.digest_cron, settings.timezone, settings.misfire_grace) == ("0 7 * * 1", "Asia/Tokyo", 600)
    assert settings.zone == ZoneInfo("Asia/Tokyo")
    assert settings_for(tmp_path).misfire_grace == 24 * 3600
    for name, value, message in [
        ("TRACKER_TZ", "Mars/Olympus", "TRACKER_TZ='Mars/Olympus' is not a time zone"),
        ("TRACKER_DIGEST_CRON", "every monday", "TRACKER_DIGEST_CRON: invalid cron expression"),
        ("TRACKER_MISFIRE_GRACE", "soon", "TRACKER_MISFIRE_GRACE='soon' is not a number"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            settings_for(tmp_path, **{name: value})


# -- jobs from topic files --------------------------------------------------------------------

def test_jobs_follow_the_topic_files_and_survive_a_restart(home, services, store_for):
    write_topic(home, "dosing", DOSING_QUERY, schedule='"30 5 * * *"')
    settings = settings_for(home, TRACKER_TZ="Europe/Berlin", TRACKER_DIGEST_CRON="15 8 * * 1")
    store = store_for(settings)
    service = services(store, settings)
    report = service.start(paused=True)
    assert report.added == ["fetch:dosing", "fetch:elderly", "email"] and not report.errors
    jobs = {job.id: job for job in service.jobs()}
    berlin = ZoneInfo("Europe/Berlin")
    dosing = jobs["fetch:dosing"].next_run_time.astimezone(berlin)
    assert (dosing.hour, dosing.minute) == (5, 30) and dosing > datetime.now(berlin)
    elderly = jobs["fetch:elderly"].next_run_time.astimezone(berlin)
    assert (elderly.hour, elderly.minute) == (6, 0)  # a topic without `schedule`: daily 06:00
    mail = jobs["email"].next_run_time.astimezone(berlin)
    assert (mail.strftime("%A"), mail.hour, mail.minute) == ("Monday", 8, 15)
    assert jobs["fetch:dosing"].args == ("dosing",) and jobs["email"].args == ()
    assert jobs["fetch:dosing"].func is run_topic_job
    for job in jobs.values():
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 24 * 3600)
    stored = dict(query(home, "SELECT id, next_run_time FROM scheduler_jobs"))
    assert set(stored) == {"fetch:dosing", "fetch:elderly", "email"}
    service.stop()

    restarted = services(store, settings)
    report = restarted.start(paused=True)
    assert (report.added, report.changed, report.removed) == ([], [], [])
    assert {job.id: job.next_run_time for job in restarted.jobs()} == {i: j.next_run_time for i, j in jobs.items()}


def test_reload_adds_changes_and_removes_jobs_and_keeps_a_bad_files_job(home, services, store_for):
    settings = settings_for(home, TRACKER_TZ="UTC")
    store = store_for(settings)
    service = services(store, settings)
    service.start(paused=True)
    before = {job.id: job.next_run_time for job in service.jobs()}

    write_topic(home, "dosing", DOSING_QUERY, schedule='"45 23 * * *"')
    (home / "queries" / "elderly.toml").unlink()
    write_topic(home, "sepsis", "norepinephrine sepsis", schedule='"0 4 * * 0"')
    report = service.reload()
    assert (report.added, report.changed, report.removed) == (["fetch:sepsis"], ["fetch:dosing"], ["fetch:elderly"])
    jobs = {job.id: job for job in service.jobs()}
    assert set(jobs) == {"fetch:dosing", "fetch:sepsis", "email"}
    assert jobs["fetch:dosing"].next_run_time.strftime("%H:%M") == "23:45"
    assert jobs["fetch:sepsis"].next_run_time.strftime("%A %H:%M") == "Sunday 04:00"
    assert jobs["email"].next_run_time == before["email"]

    write_topic(home, "dosing", "")  # now bad: its job stays as it was
    write_topic(home, "broken", "x", schedule="6")  # bad from the start: never scheduled
    report = service.reload()
    assert report.kept == ["fetch:dosing"] and not (report.added or report.changed or report.removed)
    assert sorted(report.errors) == [
        "broken.toml: key 'schedule' must be a cron string such as '0 6 * * *'; "
        "the topic is not scheduled until the file is fixed",
        "dosing.toml: key 'query' is missing or empty; give the PubMed query to track; "
        "its job keeps its last good schedule",
    ]
    assert {job.id: job.next_run_time for job in service.jobs()} == {i: j.next_run_time for i, j in jobs.items()}


def test_a_bad_file_runs_its_last_good_version_or_records_why_it_cannot(home, fake_eutils, store_for):
    add_records(fake_eutils, range(1, 4), DOSING_QUERY)
    settings = settings_for(home, fake_eutils.url)
    store = store_for(settings)
    runtime = schedule.Runtime(store, settings)
    runtime.remember(schedule.scan_topics(settings.queries_dir))
    write_topic(home, "dosing", DOSING_QUERY, since="2999-01-01")  # bad: `since` in the future
    outcome = run_topic_job("dosing", runtime=runtime)
    assert outcome.ok and outcome.lines[0].startswith("dosing: 3 new")
    never_saw_it = schedule.Runtime(store, settings)  # a process that never saw the good file
    outcome = run_topic_job("dosing", runtime=never_saw_it)
    assert not outcome.ok
    assert runs(home, "dosing")[-1] == ("dosing", "failed", "topic 'dosing': dosing.toml: key 'since' = 2999-01-01 "
                                        "is in the future; fix the file: nothing is fetched for this topic until then")


# -- missed runs ------------------------------------------------------------------------------

def hourly_cron_far_from_now() -> str:
    """An hourly cron whose minute is half an hour away, so no regular run falls inside a test."""
    return f"{(datetime.now().minute + 30) % 60} * * * *"


def sleep_through_runs(service: Service, hours: int) -> None:
    """Move every fetch job's next run `hours` into the past, as if the machine had been off since."""
    now = datetime.now(timezone.utc)
    for job in service.jobs():
        if job.id.startswith("fetch:"):
            service.scheduler.modify_job(job.id, next_run_time=now - timedelta(hours=hours))
    for job in service.jobs():
        if job.id.startswith("fetch:"):
            assert len(job._get_run_times(now)) >= hours  # that many runs were missed


def test_runs_missed_while_asleep_run_once_on_wake(home, fake_eutils, services, store_for):
    cron = hourly_cron_far_from_now()
    write_topic(home, "dosing", DOSING_QUERY, schedule=f'"{cron}"')
    write_topic(home, "elderly", ELDERLY_QUERY, schedule=f'"{cron}"')
    add_records(fake_eutils, range(1, 6), DOSING_QUERY)
    settings = settings_for(home, fake_eutils.url)
    store = store_for(settings)
    asleep = services(store, settings)
    asleep.start(paused=True)
    sleep_through_runs(asleep, hours=5)
    asleep.stop()

    awake = services(store, settings)  # a restart after the sleep, on the stored jobs
    awake.start()
    wait_for(lambda: len([r for r in runs(home) if r[1] != "running"]) >= 2, what="the missed runs")
    time.sleep(1.0)  # room for any extra run that should not happen
    assert sorted(runs(home)) == [("dosing", "succeeded", None), ("elderly", "succeeded", None)]
    assert all(job.next_run_time > datetime.now(timezone.utc) for job in awake.jobs())


def test_runs_missed_by_more_than_the_grace_are_skipped(home, fake_eutils, services, store_for):
    cron = hourly_cron_far_from_now()
    write_topic(home, "dosing", DOSING_QUERY, schedule=f'"{cron}"')
    write_topic(home, "elderly", ELDERLY_QUERY, schedule=f'"{cron}"')
    settings = settings_for(home, fake_eutils.url, TRACKER_MISFIRE_GRACE="60")
    store = store_for(settings)
    service = services(store, settings)
    service.start(paused=True)
    # Two hours ago, the latest missed slot: outside a 60 s grace.
    service.scheduler.modify_job("fetch:dosing", next_run_time=datetime.now(timezone.utc) - timedelta(hours=2))
    service.resume()
    wait_for(lambda: service.scheduler.get_job("fetch:dosing").next_run_time > datetime.now(timezone.utc),
             what="the missed run to be passed over")
    time.sleep(0.5)
    assert runs(home) == [] and fake_eutils.count() == 0


def test_a_run_another_scheduler_abandoned_is_taken_over_at_its_own_due_time(home, fake_eutils, services, store_for,
                                                                             caplog):
    from apscheduler.events import EVENT_JOB_EXECUTED

    from tracker.store.leases import claim_job, lease, release_job

    add_records(fake_eutils, range(1, 4), ELDERLY_QUERY)
    settings = settings_for(home, fake_eutils.url, TRACKER_TZ="UTC")
    store = store_for(settings)
    due = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
    release_job(store, claim_job(store, "fetch:elderly", due, "a-stopped-scheduler", timeout=60), "a-stopped-scheduler")
    service = services(store, settings)
    executed = []
    service.scheduler.add_listener(executed.append, EVENT_JOB_EXECUTED)
    service.start(paused=True)
    service.renew_and_take_over()
    assert service.runtime.takeovers == {("fetch:elderly", due)}
    service.resume()

    wait_for(lambda: executed, what="the abandoned run taken over")
    [event] = executed
    assert (event.job_id, event.scheduled_run_time) == (f"takeover:fetch:elderly@{due.isoformat()}", due)
    assert (event.retval.job, event.retval.ok) == ("fetch:elderly", True)
    held = lease(store, "fetch:elderly", due)
    assert (held.status, held.outcome, held.attempts, held.token) == ("done", "ok", 2, service.runtime.token)
    assert runs(home) == [("elderly", "succeeded", None)]
    assert service.runtime.takeovers == set() and service.scheduler.get_jobs(jobstore="takeover") == []
    assert (f"fetch:elderly: taking over the run due {due:%Y-%m-%d %H:%M} UTC from pid {os.getpid()} on host "
            f"{held.host} (it stopped half-way)") in caplog.messages


# -- failures ---------------------------------------------------------------------------------

def test_a_failing_job_is_recorded_and_does_not_stop_the_others(home, fake_eutils, services, store_for):
    add_records(fake_eutils, range(1, 4), DOSING_QUERY)
    add_records(fake_eutils, range(4, 7), ELDERLY_QUERY)
    fake_eutils.inject("500", endpoint="esearch", times=3)  # every attempt of whichever topic runs first
    settings = settings_for(home, fake_eutils.url, TRACKER_SCHEDULE_EVERY="0.5")
    store = store_for(settings)
    service = services(store, settings)
    service.start()

    def retried():
        done = [r for r in runs(home) if r[1] != "running"]
        return len(done) >= 3 and done

    done = wait_for(retried, what="a failed run, the other topic's run and the retry")
    failed_topic, status, error = done[0]
    other = "elderly" if failed_topic == "dosing" else "dosing"
    assert status == "failed"
    assert error == f"topic '{failed_topic}': esearch failed after 3 attempts: HTTP 500 Internal Server Error"
    assert (other, "succeeded", None) in done
    assert (failed_topic, "succeeded", None) in done[2:]  # the next run retried it
    assert service.scheduler.running


# -- secrets ----------------------------------------------------------------------------------

def test_no_secret_reaches_the_job_store(home, fake_eutils, services, store_for):
    add_records(fake_eutils, range(1, 3), DOSING_QUERY)
    settings = settings_for(home, fake_eutils.url, NCBI_API_KEY=API_KEY, TRACKER_SMTP_PASSWORD=SMTP_PASSWORD,
                            TRACKER_SMTP_USER="reader", TRACKER_SCHEDULE_EVERY="0.3")
    store = store_for(settings)
    service = services(store, settings)
    service.start()
    wait_for(lambda: ("dosing", "succeeded", None) in runs(home), what="a run")
    service.stop()
    assert all(r.params["api_key"] == API_KEY for r in fake_eutils.requests)  # the key was in use
    states = query(home, "SELECT id, job_state FROM scheduler_jobs")
    assert {job_id for job_id, _ in states} == {"fetch:dosing", "fetch:elderly", "email"}
    for _job_id, state in states:
        assert API_KEY.encode() not in state and SMTP_PASSWORD.encode() not in state
        assert b"tracker.schedule" in state  # a reference to the job function, not the settings
    for path in (home / "db").iterdir():
        assert API_KEY.encode() not in path.read_bytes() and SMTP_PASSWORD.encode() not in path.read_bytes()


# -- logs -------------------------------------------------------------------------------------

def test_the_log_file_is_private_rotates_and_shows_the_zone(tmp_path):
    import logging

    from tracker.logs import log_commands, log_service

    path = tmp_path / "db" / "tracker.log"
    try:
        log_service(zone=ZoneInfo("America/New_York"), log_file=path)
        logging.getLogger("tracker.schedule").info("hello")
        handler = next(h for h in logging.getLogger("tracker").handlers if hasattr(h, "doRollover"))
        assert (handler.maxBytes, handler.backupCount) == (5 * 1024 * 1024, 5)
        handler.doRollover()
        logging.getLogger("tracker.schedule").warning("after rotation")
    finally:
        log_commands(False)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T INFO hello\n", (tmp_path / "db" / "tracker.log.1").read_text())
    assert path.read_text().endswith(" WARNING after rotation\n")
    for rotated in (path, tmp_path / "db" / "tracker.log.1"):
        assert stat.S_IMODE(rotated.stat().st_mode) == 0o600


# -- the command line -------------------------------------------------------------------------

def test_list_prints_every_job_with_its_next_run_and_zone_and_starts_nothing(home):
    write_topic(home, "dosing", DOSING_QUERY, schedule='"0 6 * * 1"')
    result = run_tracker("schedule", "--list", env=cli_env(home, None, TRACKER_TZ="Europe/Berlin"))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["job", "schedule", "next", "run", "(Europe/Berlin)"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert list(rows) == ["fetch:dosing", "fetch:elderly", "email"]
    assert re.fullmatch(r"fetch:dosing\s+0 6 \* \* 1\s+\d{4}-\d\d-\d\d 06:00 CES?T", rows["fetch:dosing"])
    assert re.fullmatch(r"fetch:elderly\s+0 6 \* \* \*\s+\d{4}-\d\d-\d\d 06:00 CES?T", rows["fetch:elderly"])
    assert re.fullmatch(r"email\s+0 7 \* \* 1\s+\d{4}-\d\d-\d\d 07:00 CES?T", rows["email"])
    for job in ("fetch:dosing", "email"):  # cron's weekday 1 is a Monday
        assert datetime.strptime(rows[job].split()[-3], "%Y-%m-%d").strftime("%A") == "Monday"
    assert not (home / "db").exists()  # starts no scheduler and opens no database

    write_topic(home, "broken", "")
    result = run_tracker("schedule", "--list", env=cli_env(home, None))
    assert result.code == 2 and "fetch:dosing" in result.out and "fetch:broken" not in result.out
    assert result.err.strip() == ("error: broken.toml: key 'query' is missing or empty; give the PubMed query to "
                                  "track; 'tracker schedule' keeps this topic's last good job until the file is fixed")


def test_run_now_runs_one_job_through_the_job_function_and_exits_with_its_status(home, fake_eutils):
    add_records(fake_eutils, range(1, 5), DOSING_QUERY)
    env = cli_env(home, fake_eutils.url)
    result = run_tracker("schedule", "--run-now", "dosing", env=env)
    assert result.code == 0, result.err
    assert result.out.startswith("dosing: 4 new, 4 matched")
    assert runs(home) == [("dosing", "succeeded", None)]
    assert query(home, "SELECT * FROM instance_lock") == []  # released

    fake_eutils.inject("500", endpoint="esearch", times=3)
    failed = run_tracker("schedule", "--run-now", "fetch:dosing", env=env)
    assert failed.code == 1 and "dosing: FAILED after 3 requests" in failed.out


def test_run_now_names_the_mail_job_email_or_digest(home, store_for):
    settings = settings_for(home, "http://127.0.0.1:9/entrez/eutils/")
    store = store_for(settings)
    for name in ("email", "digest"):
        outcome = schedule.run_job_now(store, settings, name)
        assert (outcome.job, outcome.ok) == ("email", False)
        assert outcome.lines == ("email: no SMTP server configured: set TRACKER_SMTP_HOST (or use --dry-run)",)
    with pytest.raises(ConfigError, match=re.escape(
            "unknown job 'nosuch': give a topic (dosing, elderly) or 'email' for the weekly e-mail")):
        schedule.run_job_now(store, settings, "nosuch")
    # A scheduler running the topic does not stop --run-now; the topic's run lock makes it skip.
    with TopicRunLock(store, "dosing"):
        outcome = schedule.run_job_now(store, settings, "dosing")
    assert outcome.ok and len(outcome.lines) == 1
    assert re.fullmatch(rf"dosing: skipped: another run \(pid {os.getpid()}, started .*\) is in progress.*",
                        outcome.lines[0]), outcome.lines


def test_status_shows_each_topics_last_and_next_run(home, fake_eutils):
    add_records(fake_eutils, range(1, 3), DOSING_QUERY)
    write_topic(home, "dosing", DOSING_QUERY, schedule='"15 9 * * *"')
    env = cli_env(home, fake_eutils.url, TRACKER_TZ="Asia/Tokyo")
    assert run_tracker("fetch", "dosing", env=env).code == 0
    write_topic(home, "broken", "")
    result = run_tracker("status", env=env)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["topic", "schedule", "last", "run", "(UTC)", "result", "next", "run", "(Asia/Tokyo)"]
    rows = {line.split()[0]: line for line in lines[2:5]}
    assert re.fullmatch(r"dosing\s+15 9 \* \* \*\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+ok\s+\d{4}-\d\d-\d\d 09:15 JST",
                        rows["dosing"])
    assert re.fullmatch(r"elderly\s+0 6 \* \* \*\s+never\s+-\s+\d{4}-\d\d-\d\d 06:00 JST", rows["elderly"])
    assert re.fullmatch(r"broken\s+\(bad file\)\s+never\s+-\s+-", rows["broken"])
    assert "warning: broken.toml: key 'query' is missing or empty" in result.err


# -- the daemon -------------------------------------------------------------------------------

@pytest.mark.slow
def test_sigterm_during_a_fetch_aborts_it_cleanly_and_exits_0(home, daemons):
    from tests.fake_eutils import FakeEutils

    with FakeEutils(delay=0.15) as server:
        add_records(server, range(1, 31), DOSING_QUERY)
        (home / "queries" / "elderly.toml").unlink()
        env = cli_env(home, server.url, TRACKER_SCHEDULE_EVERY="1", TRACKER_EFETCH_BATCH="1")
        daemon = daemons(env)
        wait_for(lambda: stored_papers(home) >= 2, what="a fetch in progress")
        started = time.monotonic()
        assert daemon.stop(signal.SIGTERM) == 0, daemon.stderr
        assert time.monotonic() - started < 5
    [(status, error)] = query(home, "SELECT status, error FROM run WHERE topic = 'dosing'")
    stored = stored_papers(home)
    watermark = query(home, "SELECT watermark FROM topic_state WHERE topic = 'dosing'")
    if status == "failed":
        assert error.endswith("interrupted (ShutdownRequested)") and watermark == [] and stored < 30
        assert "dosing: stopped between two saved batches" in daemon.stderr
    else:
        assert status == "succeeded" and watermark and stored == 30
    assert "tracker schedule stopped" in daemon.stderr and "Traceback" not in daemon.stderr
    leases = query(home, "SELECT status, outcome FROM job_lease WHERE job = 'fetch:dosing' ORDER BY due_at")
    assert leases[-1] == (("released", None) if status == "failed" else ("done", "ok"))  # nothing left 'running'


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_schedule_fetches_every_topic_and_mails_the_digest_unattended(home, fake_eutils, daemons):
    from tests.smtp_server import LoopbackSMTP

    add_records(fake_eutils, range(1, 6), DOSING_QUERY)
    add_records(fake_eutils, range(6, 9), ELDERLY_QUERY)
    add_records(fake_eutils, range(9, 11), "norepinephrine sepsis")
    with LoopbackSMTP(users={"reader": SMTP_PASSWORD}) as smtp:
        env = cli_env(home, fake_eutils.url, NCBI_API_KEY=API_KEY, TRACKER_TZ="Europe/Berlin",
                      TRACKER_SCHEDULE_EVERY="1", TRACKER_SMTP_HOST=smtp.host, TRACKER_SMTP_PORT=str(smtp.port),
                      TRACKER_SMTP_SECURITY="none", TRACKER_SMTP_USER="reader", TRACKER_SMTP_PASSWORD=SMTP_PASSWORD,
                      TRACKER_MAIL_FROM="tracker@example.org", TRACKER_MAIL_TO="team@example.org")
        daemon = daemons(env)

        def mailed(count):  # a topic's first papers go out as its baseline, later ones as new: both are delivered
            return bool(smtp.messages) and len(query(home, "SELECT pmid FROM delivery")) >= count

        wait_for(lambda: mailed(8), timeout=40, what="8 papers mailed")
        assert {("dosing", "succeeded", None), ("elderly", "succeeded", None)} <= set(runs(home))

        write_topic(home, "sepsis", "norepinephrine sepsis")
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for("added fetch:sepsis")
        wait_for(lambda: mailed(10), timeout=30, what="the new topic's papers mailed")
        assert daemon.stop() == 0, daemon.stderr

    assert all(m.login == "reader" and m.rcpt_tos == ("team@example.org",) for m in smtp.messages)
    papers = query(home, "SELECT pmid FROM delivery WHERE recipient = 'team@example.org'")
    assert sorted(p for (p,) in papers) == list(range(1, 11))  # each paper mailed once
    assert "Traceback" not in daemon.stderr
    log_file = home / "db" / "tracker.log"
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    logged = log_file.read_text()
    assert "tracker schedule started" in logged and "email: sent to team@example.org" in logged
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T ", line) for line in logged.splitlines())
    for secret in (API_KEY, SMTP_PASSWORD):
        assert secret not in daemon.stderr
        for path in (home / "db").iterdir():
            assert secret.encode() not in path.read_bytes(), path
    status = run_tracker("status", env=env)
    assert status.code == 0 and re.search(r"sepsis\s+every 1 s\s+\S+ \S+\s+ok\s+\S+ \S+ CES?T", status.out)
