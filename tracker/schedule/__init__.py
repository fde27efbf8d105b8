"""`tracker schedule`: each topic's fetch on its own cron and the weekly e-mail, in one long-running process.

Jobs
    `fetch:<slug>` runs `sync_topic` for one topic on its `schedule` (default daily 06:00); `email`
    runs `send_weekly_email` on TRACKER_DIGEST_CRON (default Monday 07:00). Cron times are in
    TRACKER_TZ (default: the machine's zone). The jobs live in APScheduler's SQLAlchemyJobStore, in
    the tracker's own database (table `scheduler_jobs`), so a restart keeps each job's next run time.
    A job is stored as a reference to a function of this module and a slug: no setting, let alone a
    secret, is ever pickled into the job store. The functions find the settings, store and rate
    limiter of the running process in the active `Runtime`.

Topic files are the source of truth
    At start and on SIGHUP every file in queries/ is loaded on its own and the jobs are made to
    match: new topics get a job, a changed `schedule` reschedules it, a removed file drops it. A file
    that became bad is reported and its topic keeps its last good job, and when it runs, the last
    version of the topic this process loaded (a process that never loaded it records a failed run
    naming the error); the other topics are not affected. Each run re-reads its file, so a changed
    query applies at the next run; a changed schedule needs SIGHUP or a restart.

Missed runs
    Every job coalesces (one run, however many were missed) and runs late if it is at most
    TRACKER_MISFIRE_GRACE seconds (default 24 h) overdue: a machine that slept through Monday 07:00
    sends the week's e-mail once when it wakes. Older misses are skipped with a warning; the next
    fetch still covers them, since its window starts at the watermark.

One at a time
    Jobs run one after another on a single worker thread (the NCBI rate limit is per process anyway,
    and a digest due right after the fetches waits for them). Each job has at most one instance.

Several schedulers, one database
    Any number of `tracker schedule` processes may share a database (PostgreSQL across machines, or
    SQLite on one). They share the job store, and each run of a job (a job and its due time) is
    claimed in the lease table first (tracker/store/leases.py): one scheduler runs it, the others
    skip it. The main loop refreshes the leases of the running job; a scheduler killed half-way stops
    refreshing, and TRACKER_LEASE_TIMEOUT seconds later another scheduler takes the run over (a
    stopped one hands it over at once). Every scheduler must read the same queries/ folder.

Stopping
    SIGTERM or SIGINT stops the scheduler: a running fetch stops after the batch it is saving, is
    recorded as failed ("… interrupted (ShutdownRequested)") and leaves its watermark where it was; the
    e-mail job is let finish. Then the process exits 0. A second signal exits at once.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tracker.errors import ConfigError, ShutdownRequested, TopicFileError, TrackerError
from tracker.cron import cron_trigger, crontab_weekdays  # noqa: F401  (part of this module's API)
from tracker.topics import Topic, load_topic, topic_paths
from tracker.views import Listing

log = logging.getLogger("tracker.schedule")

JOB_TABLE = "scheduler_jobs"
TAKEOVER_STORE = "takeover"  # in memory: runs this scheduler takes over from one that died
EMAIL_JOB = "email"
EMAIL_NAMES = ("email", "digest")
FETCH_PREFIX = "fetch:"
TICK = 0.2  # seconds between the main loop's looks at signals, heartbeat and clock
CLOCK_JUMP = 5.0  # seconds the wall clock may drift from the monotonic one before we suspect a sleep


# -- cron and times -------------------------------------------------------------------------

def make_trigger(cron: str, settings) -> BaseTrigger:
    if settings.schedule_every:
        return IntervalTrigger(seconds=settings.schedule_every, timezone=settings.zone)
    return cron_trigger(cron, settings.zone)


def describe_schedule(cron: str, settings) -> str:
    return f"every {settings.schedule_every:g} s" if settings.schedule_every else cron


def zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


def format_time(moment: datetime | None, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if moment else "-"


def next_fire_time(cron: str, settings, now: datetime | None = None) -> datetime | None:
    zone = settings.zone
    return make_trigger(cron, settings).get_next_fire_time(None, now or datetime.now(zone))


def _trigger_key(trigger: BaseTrigger) -> str:
    # str() leaves out the zone and, unlike repr(), an interval trigger's start time.
    return f"{trigger} {zone_name(trigger.timezone)}"


# -- topics and jobs ------------------------------------------------------------------------

@dataclass
class TopicScan:
    topics: dict[str, Topic] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # file stem -> the one-line error


def scan_topics(queries_dir: Path) -> TopicScan:
    """Every topic file loaded on its own: one bad file does not hide the others."""
    queries_dir = Path(queries_dir)
    if not queries_dir.is_dir():
        raise ConfigError(f"no topics folder at {queries_dir}: run 'tracker init' or pass --home DIR")
    scan = TopicScan()
    for path in topic_paths(queries_dir):
        try:
            topic = load_topic(path)
        except TopicFileError as error:
            scan.errors[path.stem] = str(error)
        else:
            scan.topics[topic.slug] = topic
    return scan


@dataclass(frozen=True)
class JobSpec:
    id: str
    name: str
    func: Callable
    args: tuple[str, ...]
    cron: str


def fetch_job_id(slug: str) -> str:
    return f"{FETCH_PREFIX}{slug}"


def job_specs(topics: Sequence[Topic], settings) -> list[JobSpec]:
    specs = [JobSpec(fetch_job_id(t.slug), f"fetch {t.slug}", run_topic_job, (t.slug,), t.schedule)
             for t in sorted(topics, key=lambda t: t.slug)]
    specs.append(JobSpec(EMAIL_JOB, "weekly e-mail", run_email_job, (), settings.digest_cron))
    return specs


def list_jobs(settings, now: datetime | None = None) -> Listing:
    """Every job the scheduler would run and its next run time, from the topic files alone."""
    scan = scan_topics(settings.queries_dir)
    now = now or datetime.now(settings.zone)
    rows = [[spec.id, describe_schedule(spec.cron, settings),
             format_time(next_fire_time(spec.cron, settings, now), settings.zone)]
            for spec in job_specs(list(scan.topics.values()), settings)]
    errors = [f"{error}; 'tracker schedule' keeps this topic's last good job until the file is fixed"
              for error in scan.errors.values()]
    return Listing(["job", "schedule", f"next run ({zone_name(settings.zone)})"], rows, errors)


# -- what a job runs with -------------------------------------------------------------------

@dataclass(frozen=True)
class JobOutcome:
    job: str
    ok: bool
    lines: tuple[str, ...] = ()
    interrupted: bool = False  # stopped (or never started) because the scheduler is stopping
    skipped: bool = False  # another process was running the same topic: this run did nothing


# The due time of the run the worker thread is executing, set by `_run_job_at_due_time`: the job functions
# take only a slug (the job store pickles their arguments), and the lease is keyed on the due time.
_running = threading.local()


def current_due_time() -> datetime | None:
    return getattr(_running, "due_at", None)


def _run_job_at_due_time(job, jobstore_alias, run_times, logger_name):
    from apscheduler.executors.base import run_job

    _running.due_at = run_times[-1]  # jobs coalesce: one call for the latest missed time
    try:
        return run_job(job, jobstore_alias, run_times, logger_name)
    finally:
        _running.due_at = None


class _DueTimePool(concurrent.futures.ThreadPoolExecutor):
    def submit(self, fn, /, *args, **kwargs):
        from apscheduler.executors.base import run_job

        return super().submit(_run_job_at_due_time if fn is run_job else fn, *args, **kwargs)


def _leased_executor():
    from apscheduler.executors.pool import BasePoolExecutor

    class LeasedExecutor(BasePoolExecutor):
        """APScheduler's thread pool executor, one worker, telling the job which due time it runs."""

        def __init__(self):
            super().__init__(_DueTimePool(1, thread_name_prefix="tracker-job"))

    return LeasedExecutor()


class Runtime:
    """What the job functions need, held by the process, never stored with the jobs."""

    def __init__(self, store, settings):
        from tracker.eutils import RateLimiter

        self.store, self.settings = store, settings
        self.limiter = RateLimiter(settings.rate_limit)  # one NCBI budget for every job of the process
        self.token = uuid.uuid4().hex  # this scheduler's id in the lease table
        self.takeovers: set[tuple[str, datetime]] = set()  # abandoned runs queued here, not yet finished
        self.stopping = False
        self.scheduler = None
        self.topics: dict[str, Topic] = {}  # the last good version of each topic
        self._lock = threading.Lock()

    def check_stop(self, _advance: int = 0, _total: int = 0) -> None:
        if self.stopping:
            raise ShutdownRequested()

    def remember(self, scan: TopicScan) -> None:
        with self._lock:
            for slug in [s for s in self.topics if s not in scan.topics and s not in scan.errors]:
                del self.topics[slug]
            self.topics.update(scan.topics)

    def topic(self, slug: str) -> Topic | None:
        """The topic as its file says now; its last good version if the file became bad; None if removed."""
        path = self.settings.queries_dir / f"{slug}.toml"
        if not path.exists():
            with self._lock:
                self.topics.pop(slug, None)
            return None
        try:
            topic = load_topic(path)
        except TopicFileError as error:
            with self._lock:
                last_good = self.topics.get(slug)
            if last_good is None:
                raise
            log.error("%s; running the last good version of topic '%s' until the file is fixed", error, slug)
            return last_good
        with self._lock:
            self.topics[slug] = topic
        return topic

    def all_topics(self) -> list[Topic]:
        scan = scan_topics(self.settings.queries_dir)
        with self._lock:
            for stem, error in scan.errors.items():
                if stem in self.topics:
                    log.error("%s; the e-mail uses the last good version of topic '%s'", error, stem)
                    scan.topics[stem] = self.topics[stem]
                else:
                    log.error("%s; the e-mail leaves this topic out until the file is fixed", error)
        self.remember(scan)
        return [scan.topics[slug] for slug in sorted(scan.topics)]

    def next_run(self, job_id: str) -> str:
        """The "; next run <time>" ending of a job's last log line; empty outside the scheduler (`--run-now`)."""
        job = self.scheduler.get_job(job_id) if self.scheduler is not None and self.scheduler.running else None
        if job is None or job.next_run_time is None:
            return ""
        return f"; next run {format_time(job.next_run_time, self.settings.zone)}"

    def run_leased(self, job_id: str, work: Callable[[], JobOutcome], due_at: datetime | None = None) -> JobOutcome:
        """Run `work` if this scheduler wins the run of `job_id` due at `due_at` (default: the running one's).

        Outside the scheduler (`--run-now`) there is no due time and `work` runs at once.
        """
        from tracker.store.database import utcnow
        from tracker.store.leases import claim_job, finish_job, release_job

        due = due_at or current_due_time()
        if due is None:
            return work()
        claim = claim_job(self.store, job_id, due, self.token, timeout=self.settings.lease_timeout)
        when = format_time(due, self.settings.zone)
        if claim is None:
            log.info("%s: the run due %s is another scheduler's; skipping it here", job_id, when)
            return JobOutcome(job_id, True, (f"{job_id}: the run due {when} is another scheduler's",))
        if claim.taken_from is not None:
            gone = claim.taken_from
            why = ("it stopped half-way" if gone.status == "released" else
                   f"no heartbeat for {(utcnow() - gone.heartbeat_at).total_seconds():.0f} s")
            log.warning("%s: taking over the run due %s from pid %d on host %s (%s)", job_id, when, gone.pid,
                        gone.host, why)
        try:
            outcome = work()
        except BaseException:
            release_job(self.store, claim, self.token)
            raise
        if outcome.interrupted:
            release_job(self.store, claim, self.token)
        elif not finish_job(self.store, claim, self.token, outcome="skipped" if outcome.skipped else
                            "ok" if outcome.ok else "failed"):
            log.warning("%s: another scheduler took over the run due %s while this one ran it (check the clocks "
                        "and TRACKER_LEASE_TIMEOUT)", job_id, when)
        return outcome

    def drop_job(self, job_id: str) -> None:
        from apscheduler.jobstores.base import JobLookupError

        if self.scheduler is not None:
            try:
                self.scheduler.remove_job(job_id)
            except JobLookupError:
                pass


_active: Runtime | None = None


def activate(runtime: Runtime | None) -> None:
    global _active
    _active = runtime


def active_runtime() -> Runtime:
    if _active is None:
        raise RuntimeError("no tracker schedule runs in this process: jobs run only under 'tracker schedule'")
    return _active


# -- the jobs (module-level, plain arguments: the job store pickles references to them) --------

def run_topic_job(slug: str) -> JobOutcome:
    """Fetch one topic, as `tracker fetch SLUG` does; failures are logged and recorded, never raised."""
    runtime = active_runtime()
    return runtime.run_leased(fetch_job_id(slug), lambda: _topic_job(runtime, slug))


def _topic_job(runtime: Runtime, slug: str) -> JobOutcome:
    job = fetch_job_id(slug)
    if runtime.stopping:
        return JobOutcome(job, False, (f"{slug}: not started, tracker schedule is stopping",), interrupted=True)
    try:
        return _fetch(runtime, slug)
    except Exception as error:  # a bug or a database failure: log it, keep the scheduler alive
        log.exception("%s: the fetch failed unexpectedly (%s); the next run retries", slug, error)
        return JobOutcome(job, False, (f"{slug}: failed unexpectedly: {error}",))


def _fetch(runtime: Runtime, slug: str) -> JobOutcome:
    from tracker.eutils import EutilsClient
    from tracker.sync import sync_topic

    job = fetch_job_id(slug)
    try:
        topic = runtime.topic(slug)
    except TopicFileError as error:
        message = f"topic '{slug}': {error}; fix the file: nothing is fetched for this topic until then"
        record_failed_run(runtime.store, slug, message)
        log.error("%s", message)
        return JobOutcome(job, False, (message,))
    if topic is None:
        log.warning("%s: queries/%s.toml was removed: its job is dropped", slug, slug)
        runtime.drop_job(job)
        return JobOutcome(job, False, (f"{slug}: queries/{slug}.toml was removed",))
    try:
        with EutilsClient(runtime.settings, limiter=runtime.limiter) as client:
            result = sync_topic(runtime.store, client, topic, progress=runtime.check_stop)
    except ShutdownRequested:
        message = (f"{slug}: stopped between two saved batches; recorded as interrupted, its watermark did not "
                   "move and the next run searches the same window")
        log.warning("%s", message)
        return JobOutcome(job, False, (message,), interrupted=True)
    if result.succeeded:
        log.info("%s%s", result.summary(), runtime.next_run(job))
    else:
        log.error("%s; its watermark did not move%s", result.summary(), runtime.next_run(job))
    return JobOutcome(job, result.succeeded, (result.summary(),), skipped=result.kind == "skipped")


def run_email_job() -> JobOutcome:
    """Send the weekly e-mail, as `tracker email` does; failures are logged, never raised."""
    runtime = active_runtime()
    return runtime.run_leased(EMAIL_JOB, lambda: _email_job(runtime))


def run_abandoned_job(job_id: str, due_at: datetime) -> JobOutcome:
    """Run a run another scheduler claimed and abandoned (it died or stopped), if this one wins it."""
    runtime = active_runtime()
    try:
        if job_id == EMAIL_JOB:
            return runtime.run_leased(job_id, lambda: _email_job(runtime), due_at=due_at)
        return runtime.run_leased(job_id, lambda: _topic_job(runtime, job_id[len(FETCH_PREFIX):]), due_at=due_at)
    finally:
        runtime.takeovers.discard((job_id, due_at))


def _email_job(runtime: Runtime) -> JobOutcome:
    from tracker.mail import describe_failures, send_weekly_email
    from tracker.store.locks import LockHeldError

    if runtime.stopping:
        return JobOutcome(EMAIL_JOB, False, ("email: not started, tracker schedule is stopping",), interrupted=True)
    log.info("email: sending the weekly e-mail")
    try:
        results = send_weekly_email(runtime.store, runtime.settings, runtime.all_topics())
    except LockHeldError as busy:
        # `tracker email` or another scheduler's e-mail job is sending now: what this run would send, it sends.
        log.info("email: skipped: %s", busy)
        return JobOutcome(EMAIL_JOB, True, (f"email: skipped: {busy}",), skipped=True)
    except TrackerError as error:
        log.error("email: %s%s", error, runtime.next_run(EMAIL_JOB))
        return JobOutcome(EMAIL_JOB, False, (f"email: {error}",))
    except Exception as error:  # a bug or a database failure: log it, keep the scheduler alive
        log.exception("email: failed unexpectedly (%s); the next run retries", error)
        return JobOutcome(EMAIL_JOB, False, (f"email: failed unexpectedly: {error}",))
    for result in results:
        (log.error if result.error else log.info)("email: %s", result.summary())
    failure = describe_failures(results)
    if failure:
        log.error("email: %s%s", failure, runtime.next_run(EMAIL_JOB))
    return JobOutcome(EMAIL_JOB, failure is None, tuple(f"email: {r.summary()}" for r in results))


def record_failed_run(store, slug: str, error: str) -> None:
    from tracker.store.runs import RunCounts, finish_run, start_run

    run = start_run(store, slug, kind="fetch", query=None, window_start=None, window_end=None)
    finish_run(store, run.id, RunCounts(), error=error)


# -- the scheduler --------------------------------------------------------------------------

@dataclass
class Reconciliation:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # jobs of topics whose file is bad
    errors: list[str] = field(default_factory=list)


def _scheduler_class():
    from apscheduler.jobstores.base import JobLookupError
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.base import STATE_STOPPED

    class StoppableScheduler(BackgroundScheduler):
        def _process_jobs(self):
            # APScheduler 3's loop looks for due jobs once more after shutdown() has closed the
            # executor: a job due just then would fail to start yet have its next run moved on,
            # losing a (missed, about to be coalesced) run that the next start should make up.
            if self.state == STATE_STOPPED:
                return None
            try:
                return super()._process_jobs()
            except JobLookupError as error:
                # Another scheduler on this database removed the job between our read and our update.
                self._logger.info("%s; looking again", error)
                return 1.0

    return StoppableScheduler


class Service:
    """APScheduler's BackgroundScheduler on the tracker's database, with the jobs the topic files ask for."""

    def __init__(self, store, settings):
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

        self.store, self.settings = store, settings
        self.runtime = Runtime(store, settings)
        self.job_options = dict(coalesce=True, max_instances=1, misfire_grace_time=max(1, round(settings.misfire_grace)))
        self.job_store = SQLAlchemyJobStore(engine=store.engine, tablename=JOB_TABLE)
        self.scheduler = _scheduler_class()(
            jobstores={"default": self.job_store,
                       TAKEOVER_STORE: MemoryJobStore()},
            executors={"default": _leased_executor()},
            job_defaults=self.job_options,
            timezone=settings.zone,
        )
        self.runtime.scheduler = self.scheduler

    def start(self, *, paused: bool = False) -> Reconciliation:
        """Start on the stored jobs, bring them in line with queries/, then (unless `paused`) run what is due."""
        self.store.ensure_table(self.job_store.jobs_t)
        activate(self.runtime)
        self.scheduler.start(paused=True)
        try:
            report = self.reload()
        except BaseException:
            self.scheduler.shutdown(wait=False)
            activate(None)
            raise
        if not paused:
            self.scheduler.resume()
        return report

    def resume(self) -> None:
        self.scheduler.resume()

    def stop(self) -> None:
        """Stop taking jobs, let the running one finish or abort at its next batch, and wait for it."""
        self.runtime.stopping = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if _active is self.runtime:
            activate(None)

    def jobs(self) -> list:
        return self.scheduler.get_jobs(jobstore="default")

    def renew_and_take_over(self) -> None:
        """Refresh this scheduler's leases; queue the runs other schedulers abandoned (died or stopped)."""
        from tracker.store.leases import abandoned_leases, renew_leases

        runtime, settings = self.runtime, self.settings
        renew_leases(self.store, runtime.token)
        if runtime.stopping:
            return
        known = {job.id for job in self.jobs()}
        oldest = datetime.now(settings.zone) - timedelta(seconds=settings.misfire_grace)
        for gone in abandoned_leases(self.store, timeout=settings.lease_timeout):
            key = (gone.job, gone.due_at)
            if gone.token == runtime.token or gone.job not in known or gone.due_at < oldest or key in runtime.takeovers:
                continue
            runtime.takeovers.add(key)
            self.scheduler.add_job(run_abandoned_job, "date", args=key, jobstore=TAKEOVER_STORE,
                                   id=f"takeover:{gone.job}@{gone.due_at.isoformat()}", name=f"take over {gone.job}",
                                   misfire_grace_time=None, replace_existing=True)

    def reload(self) -> Reconciliation:
        """Add, change and remove jobs to match queries/ (see the module docstring for bad files)."""
        scan = scan_topics(self.settings.queries_dir)
        self.runtime.remember(scan)
        report = Reconciliation()
        specs = {spec.id: spec for spec in job_specs(list(scan.topics.values()), self.settings)}
        existing = {job.id: job for job in self.scheduler.get_jobs(jobstore="default")}
        for job_id, spec in specs.items():
            trigger = make_trigger(spec.cron, self.settings)
            job = existing.get(job_id)
            if job is None:
                # replace_existing: another scheduler on this database may have added it a moment ago.
                self.scheduler.add_job(spec.func, trigger, args=spec.args, id=spec.id, name=spec.name,
                                       replace_existing=True, **self.job_options)
                report.added.append(job_id)
                continue
            options_differ = (job.name != spec.name or tuple(job.args) != spec.args or job.func is not spec.func
                              or any(getattr(job, key) != value for key, value in self.job_options.items()))
            trigger_differs = _trigger_key(job.trigger) != _trigger_key(trigger)
            if options_differ:
                self.scheduler.modify_job(job_id, func=spec.func, args=spec.args, kwargs={}, name=spec.name,
                                          **self.job_options)
            if trigger_differs:
                self.scheduler.reschedule_job(job_id, trigger=trigger)
            if options_differ or trigger_differs:
                report.changed.append(job_id)
        for job_id in existing:
            if job_id in specs:
                continue
            if job_id.startswith(FETCH_PREFIX) and job_id[len(FETCH_PREFIX):] in scan.errors:
                report.kept.append(job_id)
                continue
            self.runtime.drop_job(job_id)  # another scheduler may have removed it already
            report.removed.append(job_id)
        kept = set(report.kept)
        for stem, error in scan.errors.items():
            outcome = ("its job keeps its last good schedule" if fetch_job_id(stem) in kept
                       else "the topic is not scheduled until the file is fixed")
            report.errors.append(f"{error}; {outcome}")
            log.error("%s; %s", error, outcome)
        if not scan.topics and not scan.errors:
            log.warning("no topic files in %s: only the weekly e-mail is scheduled", self.settings.queries_dir)
        self._log_jobs(report)
        return report

    def _log_jobs(self, report: Reconciliation) -> None:
        done = [f"{what} {', '.join(ids)}" for what, ids in
                (("added", report.added), ("changed", report.changed), ("removed", report.removed)) if ids]
        log.info("jobs from %s: %s", self.settings.queries_dir, "; ".join(done) if done else "unchanged")
        zone = self.settings.zone
        for job in sorted(self.scheduler.get_jobs(jobstore="default"), key=lambda j: j.id):
            log.info("  %s: next run %s (%s)", job.id, format_time(job.next_run_time, zone), job.trigger)


# -- the process ----------------------------------------------------------------------------

class Signals:
    """SIGTERM/SIGINT ask to stop, SIGHUP to reload. Handlers only set flags; the main loop acts on them."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.stop = False
        self.reload = False
        self.previous: dict[int, object] = {}

    def install(self) -> None:
        for number, handler in ((signal.SIGTERM, self._on_stop), (signal.SIGINT, self._on_stop),
                                (signal.SIGHUP, self._on_reload)):
            self.previous[number] = signal.signal(number, handler)

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous.clear()

    def _on_stop(self, number, _frame) -> None:
        if self.stop:
            os.write(2, b"error: second stop signal: exiting at once; the interrupted run did not move its watermark "
                        b"and the topic's next run marks it failed\n")
            os._exit(1)
        self.stop = True
        self.runtime.stopping = True  # the running fetch stops after its current batch

    def _on_reload(self, _number, _frame) -> None:
        self.reload = True


def serve(store, settings, *, tick: float = TICK) -> None:
    """Run the scheduler until SIGTERM or SIGINT; SIGHUP re-reads queries/. Other schedulers may share the database."""
    service = Service(store, settings)
    signals = Signals(service.runtime)
    signals.install()
    try:
        _run(service, signals, tick)
    finally:
        service.stop()
        signals.restore()
    log.info("tracker schedule stopped")


def lease_heartbeat_every(settings) -> float:
    """Seconds between lease heartbeats: a quarter of the timeout, so one late beat never loses a lease."""
    from tracker.store.locks import HEARTBEAT_EVERY

    return max(TICK, min(HEARTBEAT_EVERY, settings.lease_timeout / 4))


def _run(service: Service, signals: Signals, tick: float) -> None:
    store, settings = service.store, service.settings
    service.start()
    log.info("tracker schedule started: pid %d, time zone %s, database %s; SIGHUP re-reads %s, SIGTERM stops",
             os.getpid(), zone_name(settings.zone), store.describe(), settings.queries_dir)
    beat_every = lease_heartbeat_every(settings)
    last_wall, last_mono = time.time(), time.monotonic()
    next_beat = last_mono
    while not signals.stop:
        time.sleep(tick)
        if signals.reload:
            signals.reload = False
            log.info("SIGHUP: re-reading %s", settings.queries_dir)
            try:
                service.reload()
            except ConfigError as error:
                log.error("%s; the jobs stay as they were", error)
            except Exception as error:  # e.g. the database busy past its timeout: keep the jobs, keep running
                log.exception("re-reading %s failed (%s); the jobs stay as they were", settings.queries_dir, error)
        wall, mono = time.time(), time.monotonic()
        drift = (wall - last_wall) - (mono - last_mono)
        last_wall, last_mono = wall, mono
        if abs(drift) > CLOCK_JUMP:
            # The scheduler sleeps on the monotonic clock, which stands still while the machine is
            # suspended: wake it so that runs missed during the sleep happen now, not later.
            log.info("the clock jumped %+.0f s (sleep or clock change): looking for missed runs", drift)
            service.scheduler.wakeup()
            next_beat = mono
        if mono >= next_beat:
            try:
                service.renew_and_take_over()
            except Exception as error:  # the database is away for a moment: the next beat tries again
                log.warning("could not refresh this scheduler's job leases (%s); trying again in %g s", error,
                            beat_every)
            next_beat = mono + beat_every
    log.info("stopping: waiting for the running job to finish or abort at its next batch")


def resolve_job(name: str, scan: TopicScan, settings) -> JobSpec:
    """A job by name: a topic slug (or fetch:<slug>), or 'email' / 'digest' for the weekly e-mail."""
    specs = {spec.id: spec for spec in job_specs(list(scan.topics.values()), settings)}
    if name in EMAIL_NAMES:
        return specs[EMAIL_JOB]
    slug = name[len(FETCH_PREFIX):] if name.startswith(FETCH_PREFIX) else name
    if slug in scan.errors:
        raise TopicFileError(scan.errors[slug])
    if fetch_job_id(slug) not in specs:
        known = ", ".join(sorted(scan.topics)) or "none"
        raise ConfigError(f"unknown job {name!r}: give a topic ({known}) or 'email' for the weekly e-mail")
    return specs[fetch_job_id(slug)]


def run_job_now(store, settings, name: str) -> JobOutcome:
    """Run one job once, now, through the same job function (a topic's run lock or the e-mail lock still apply)."""
    scan = scan_topics(settings.queries_dir)
    spec = resolve_job(name, scan, settings)
    runtime = Runtime(store, settings)
    runtime.remember(scan)
    signals = Signals(runtime)
    signals.install()
    activate(runtime)
    try:
        log.info("running %s now", spec.id)
        return spec.func(*spec.args)
    finally:
        activate(None)
        signals.restore()


__all__ = [
    "serve", "run_job_now", "run_abandoned_job", "current_due_time", "lease_heartbeat_every", "list_jobs", "Service", "Runtime", "JobOutcome", "ShutdownRequested",
    "run_topic_job", "run_email_job", "cron_trigger", "crontab_weekdays", "scan_topics", "job_specs", "JOB_TABLE",
    "EMAIL_JOB", "EMAIL_NAMES", "fetch_job_id", "format_time", "next_fire_time",
]
