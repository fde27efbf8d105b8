"""The scheduler's jobs, named by id, and `run_job`, the one way any of them runs.

Jobs
    `fetch:<slug>` runs one topic as `tracker run SLUG` does (fetch, then its digest and feed in
    reports/<slug>/); `email` sends the weekly e-mail as `tracker email` does; `takeover:<job>@<due
    time>` runs once more a run of one of those that another scheduler claimed and abandoned (it
    died, or stopped half-way).

Running one
    `run_job(runtime, job_id, due_at)` runs a job for the runtime it is given (tracker/schedule/
    runtime.py). With a due time (the scheduler's executor passes the run's) it first claims that
    run's lease (tracker/store/leases.py): of several schedulers on one database, one runs it and
    the others skip it. Without one (`--run-now`) the job runs at once. Failures are logged and
    returned in the `JobOutcome`, never raised: the scheduler keeps going.

What the job store keeps
    A job is stored as the import path of one of the `run_*_job` functions below and its arguments
    (a slug, or none): never a setting, let alone a secret, nor the runtime. Jobs stored by every
    version name them `tracker.schedule:<function>` (the package re-exports them), so those paths
    must keep resolving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from tracker.errors import ConfigError, LockHeldError, ShutdownRequested, TopicFileError, TrackerError
from tracker.topics import Topic, TopicScan

if TYPE_CHECKING:
    from tracker.schedule.runtime import Runtime

log = logging.getLogger("tracker.schedule")

EMAIL_JOB = "email"
EMAIL_NAMES = ("email", "digest")
FETCH_PREFIX = "fetch:"
TAKEOVER_PREFIX = "takeover:"
STORED_MODULE = "tracker.schedule"  # where the job store finds the job functions (see the module docstring)


# -- times ----------------------------------------------------------------------------------

def describe_schedule(cron: str, settings) -> str:
    return f"every {settings.schedule_every:g} s" if settings.schedule_every else cron


def zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


def format_time(moment: datetime | None, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if moment else "-"


# -- job specs ------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobSpec:
    id: str
    name: str
    func: Callable
    args: tuple[str, ...]
    cron: str

    @property
    def func_ref(self) -> str:
        return stored_ref(self.func)


def stored_ref(func: Callable) -> str:
    """The import path the job store keeps for a job function."""
    return f"{STORED_MODULE}:{func.__name__}"


def fetch_job_id(slug: str) -> str:
    return f"{FETCH_PREFIX}{slug}"


def takeover_job_id(job_id: str, due_at: datetime) -> str:
    return f"{TAKEOVER_PREFIX}{job_id}@{due_at.isoformat()}"


def job_specs(topics: Sequence[Topic], settings) -> list[JobSpec]:
    specs = [JobSpec(fetch_job_id(t.slug), f"fetch {t.slug}", run_topic_job, (t.slug,), t.schedule)
             for t in sorted(topics, key=lambda t: t.slug)]
    specs.append(JobSpec(EMAIL_JOB, "weekly e-mail", run_email_job, (), settings.digest_cron))
    return specs


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


# -- running a job --------------------------------------------------------------------------

@dataclass(frozen=True)
class JobOutcome:
    job: str
    ok: bool
    lines: tuple[str, ...] = ()
    interrupted: bool = False  # stopped (or never started) because the scheduler is stopping
    skipped: bool = False  # another process was running the same topic: this run did nothing


def run_job(runtime: Runtime, job_id: str, due_at: datetime | None = None) -> JobOutcome:
    """Run job `job_id` for `runtime`: its run due at `due_at` if this scheduler wins it; at once without `due_at`."""
    if job_id.startswith(TAKEOVER_PREFIX):
        taken = job_id[len(TAKEOVER_PREFIX):].rpartition("@")[0]
        try:
            return run_leased(runtime, taken, _work(runtime, taken), due_at)
        finally:
            runtime.takeovers.discard((taken, due_at))
    return run_leased(runtime, job_id, _work(runtime, job_id), due_at)


def _work(runtime: Runtime, job_id: str) -> Callable[[], JobOutcome]:
    if job_id == EMAIL_JOB:
        return lambda: _email_job(runtime)
    if job_id.startswith(FETCH_PREFIX):
        return lambda: _topic_job(runtime, job_id[len(FETCH_PREFIX):])
    raise ValueError(f"unknown job {job_id!r}: jobs are fetch:<slug>, email and takeover:<job>@<due time>")


def run_leased(runtime: Runtime, job_id: str, work: Callable[[], JobOutcome], due_at: datetime | None) -> JobOutcome:
    """Run `work` if this scheduler wins the run of `job_id` due at `due_at`; without a due time, at once."""
    from tracker.store.leases import claim_job, finish_job, release_job
    from tracker.text import utcnow

    if due_at is None:
        return work()
    store, settings, token = runtime.store, runtime.settings, runtime.token
    claim = claim_job(store, job_id, due_at, token, timeout=settings.lease_timeout)
    when = format_time(due_at, settings.zone)
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
        release_job(store, claim, token)
        raise
    if outcome.interrupted:
        release_job(store, claim, token)
    elif not finish_job(store, claim, token, outcome="skipped" if outcome.skipped else
                        "ok" if outcome.ok else "failed"):
        log.warning("%s: another scheduler took over the run due %s while this one ran it (check the clocks "
                    "and TRACKER_LEASE_TIMEOUT)", job_id, when)
    return outcome


def _next_run(runtime: Runtime, job_id: str) -> str:
    """The "; next run <time>" ending of a job's last log line; empty outside the scheduler (`--run-now`)."""
    moment = runtime.next_run_time(job_id)
    return f"; next run {format_time(moment, runtime.settings.zone)}" if moment else ""


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
    from tracker.ncbi.eutils import EutilsClient
    from tracker.runs.ledger import RunHooks
    from tracker.runs.sync import sync_topic

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
            result = sync_topic(runtime.store, client, topic, hooks=RunHooks(should_stop=lambda: runtime.stopping))
    except ShutdownRequested:
        message = (f"{slug}: stopped between two saved batches; recorded as interrupted: the next run searches the "
                   "same dates again")
        log.warning("%s", message)
        return JobOutcome(job, False, (message,), interrupted=True)
    if result.succeeded:
        log.info("%s%s", result.summary(), _next_run(runtime, job))
    else:
        log.error("%s; the next run searches the same dates again%s", result.summary(), _next_run(runtime, job))
    lines = (result.summary(),) if result.unreachable is None else (result.summary(), f"error: {result.unreachable}")
    if result.unreachable is not None:
        log.error("%s", result.unreachable)
    if result.kind == "skipped":  # the process running the topic now stores its papers: its digest will hold them
        return JobOutcome(job, True, lines, skipped=True)
    written = _write_reports(runtime, topic)
    return JobOutcome(job, result.succeeded and written is not None, lines + (written or ()))


def _write_reports(runtime: Runtime, topic: Topic) -> tuple[str, ...] | None:
    """The topic's digest and feed, as `tracker run` writes them after its fetch (a failed run's digest says so), so
    that reports/ is the same whichever way the tracker runs; None (logged) when they cannot be written."""
    from tracker.outputs.reports import write_reports

    try:
        paths = write_reports(runtime.store, [topic], runtime.settings)
    except TrackerError as error:
        log.error("%s: the digest was not written: %s", topic.slug, error)
        return None
    log.info("%s: digest and feed written to %s", topic.slug, paths[0].parent)
    return (f"digest and feed written to {runtime.settings.reports_dir}:", *(f"  {path}" for path in paths))


def _email_job(runtime: Runtime) -> JobOutcome:
    from tracker.outputs.mail import describe_failures, send_weekly_email

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
        log.error("email: %s%s", error, _next_run(runtime, EMAIL_JOB))
        return JobOutcome(EMAIL_JOB, False, (f"email: {error}",))
    except Exception as error:  # a bug or a database failure: log it, keep the scheduler alive
        log.exception("email: failed unexpectedly (%s); the next run retries", error)
        return JobOutcome(EMAIL_JOB, False, (f"email: failed unexpectedly: {error}",))
    for result in results:
        (log.error if result.error else log.info)("email: %s", result.summary())
    for note in dict.fromkeys(note for result in results for note in result.sender_notes):
        log.warning("email: %s", note)
    failure = describe_failures(results)
    if failure:
        log.error("email: %s%s", failure, _next_run(runtime, EMAIL_JOB))
    return JobOutcome(EMAIL_JOB, failure is None, tuple(f"email: {r.summary()}" for r in results))


def record_failed_run(store, slug: str, error: str) -> None:
    from tracker.runs.ledger import RunLedger

    RunLedger(store, slug, kind="fetch", query=None).fail(error)


# -- the functions the job store names --------------------------------------------------------
# APScheduler checks a job's function against the arguments it stores, which never include the
# runtime: so `runtime` has a default here, and a call without one is refused.

def run_topic_job(slug: str, *, runtime: Runtime | None = None, due_at: datetime | None = None) -> JobOutcome:
    """Fetch one topic and write its digest and feed, as `tracker run SLUG` does; failures are logged and recorded,
    never raised."""
    return run_job(_given(runtime), fetch_job_id(slug), due_at)


def run_email_job(*, runtime: Runtime | None = None, due_at: datetime | None = None) -> JobOutcome:
    """Send the weekly e-mail, as `tracker email` does; failures are logged, never raised."""
    return run_job(_given(runtime), EMAIL_JOB, due_at)


def run_abandoned_job(job_id: str, due_at: datetime, *, runtime: Runtime | None = None) -> JobOutcome:
    """Run a run another scheduler claimed and abandoned (it died or stopped), if this one wins it."""
    return run_job(_given(runtime), takeover_job_id(job_id, due_at), due_at)


def _given(runtime: Runtime | None) -> Runtime:
    if runtime is None:
        raise TypeError("a job runs for a runtime: pass runtime=Runtime(store, settings)")
    return runtime
