"""`tracker schedule`: each topic's fetch on its own cron and the weekly e-mail, in one long-running process.

Jobs
    `fetch:<slug>` runs `sync_topic` for one topic on its `schedule` (default daily 06:00); `email`
    runs `send_weekly_email` on TRACKER_DIGEST_CRON (default Monday 07:00). Cron times are in
    TRACKER_TZ (default: the machine's zone). The jobs live in APScheduler's SQLAlchemyJobStore, in
    the tracker's own database (table `scheduler_jobs`), so a restart keeps each job's next run time.
    A job is stored as the import path of a function of this package and a slug: no setting, let
    alone a secret, is ever pickled into the job store. The executor runs every due job through
    one entry point, `jobs.run_job`, handing it the process's `Runtime` (settings, store, rate
    limiter) and the run's due time.

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

The package
    jobs.py          the jobs by id, their specs from the topic files, and `run_job` with the lease
    runtime.py       what the jobs run with: store, settings, rate limiter, lease token, last good topics
    apscheduler3.py  APScheduler 3 and every internal of it the tracker relies on, in one file
    service.py       the scheduler on the database, its jobs made to match queries/, take-overs
    process.py       the process: signals, the main loop, `--run-now`, `--list`
"""

from __future__ import annotations

from tracker.cron import cron_trigger, crontab_weekdays
from tracker.errors import ShutdownRequested
from tracker.schedule.apscheduler3 import JOB_TABLE, TAKEOVER_STORE, make_trigger, next_fire_time

# Stored jobs name their function tracker.schedule:run_topic_job (run_email_job, run_abandoned_job):
# these re-exports are what the job store resolves, so they stay.
from tracker.schedule.jobs import (
    EMAIL_JOB,
    EMAIL_NAMES,
    FETCH_PREFIX,
    JobOutcome,
    JobSpec,
    describe_schedule,
    fetch_job_id,
    format_time,
    job_specs,
    resolve_job,
    run_abandoned_job,
    run_email_job,
    run_job,
    run_topic_job,
    zone_name,
)
from tracker.schedule.process import Signals, lease_heartbeat_every, list_jobs, run_job_now, serve
from tracker.schedule.runtime import Runtime
from tracker.schedule.service import Reconciliation, Service
from tracker.topics import TopicScan, scan_topics

__all__ = [
    "serve", "run_job_now", "list_jobs", "lease_heartbeat_every", "Signals", "Service", "Reconciliation", "Runtime",
    "JobOutcome", "JobSpec", "ShutdownRequested", "run_job", "run_topic_job", "run_email_job", "run_abandoned_job",
    "resolve_job", "cron_trigger", "crontab_weekdays", "make_trigger", "next_fire_time", "scan_topics", "TopicScan",
    "job_specs", "JOB_TABLE", "TAKEOVER_STORE", "EMAIL_JOB", "EMAIL_NAMES", "FETCH_PREFIX", "fetch_job_id",
    "format_time", "describe_schedule", "zone_name",
]
