"""APScheduler 3, confined to this file: the scheduler, its job stores, its triggers and its executor.

The rest of the package calls only the public methods of the scheduler built here (add_job,
modify_job, get_jobs, ...). The two private hooks the tracker overrides are here, each with its
reason: the executor's `_do_submit_job`, so that every due run goes through the tracker's entry
point (`jobs.run_job`) with the process's runtime and the run's due time passed explicitly; and
the scheduler's `_process_jobs`.
"""

from __future__ import annotations

import concurrent.futures
import copy
from datetime import datetime
from functools import partial

from apscheduler.executors.base import run_job as run_apscheduler_job
from apscheduler.executors.pool import BasePoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tracker.cron import cron_trigger
from tracker.schedule.jobs import run_job, zone_name
from tracker.store.schema import SCHEDULER_JOBS

JOB_TABLE = SCHEDULER_JOBS  # APScheduler's job store, in the tracker's schema registry
TAKEOVER_STORE = "takeover"  # in memory: runs this scheduler takes over from one that died


# -- triggers and job options -----------------------------------------------------------------

def make_trigger(cron: str, settings) -> BaseTrigger:
    if settings.schedule_every:
        return IntervalTrigger(seconds=settings.schedule_every, timezone=settings.zone)
    return cron_trigger(cron, settings.zone)


def takeover_trigger(due_at: datetime, settings) -> DateTrigger:
    """Once, at the abandoned run's own due time (already past): the executor hands that time to the job."""
    return DateTrigger(run_date=due_at, timezone=settings.zone)


def next_fire_time(cron: str, settings, now: datetime | None = None) -> datetime | None:
    return make_trigger(cron, settings).get_next_fire_time(None, now or datetime.now(settings.zone))


def trigger_key(trigger: BaseTrigger) -> str:
    # str() leaves out the zone and, unlike repr(), an interval trigger's start time.
    return f"{trigger} {zone_name(trigger.timezone)}"


def job_options(settings) -> dict:
    """Every job coalesces, runs one instance at a time and may start up to TRACKER_MISFIRE_GRACE late."""
    return dict(coalesce=True, max_instances=1, misfire_grace_time=max(1, round(settings.misfire_grace)))


# -- the executor ---------------------------------------------------------------------------

class JobExecutor(BasePoolExecutor):
    """APScheduler's thread pool executor with one worker, running each job through `jobs.run_job`."""

    def __init__(self, runtime):
        super().__init__(concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tracker-job"))
        self.runtime = runtime

    def _do_submit_job(self, job, run_times):
        # BasePoolExecutor's own hook, submitting `_run` where it submits APScheduler's `run_job`;
        # its bookkeeping (the instance count, the events) is unchanged.
        def done(future):
            error = future.exception()
            if error is not None:
                self._run_job_error(job.id, error, error.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(self._run, job, run_times).add_done_callback(done)

    def _run(self, job, run_times):
        # APScheduler's `run_job` (misfire check, log lines, events) on a copy of the job whose call
        # is the tracker's entry point; a copy, as the scheduler moves the job's next run time and
        # stores it meanwhile. Jobs coalesce: one call, for the latest due time.
        call = copy.copy(job)
        call.func, call.args, call.kwargs = partial(run_job, self.runtime, job.id, run_times[-1]), (), {}
        return run_apscheduler_job(call, job._jobstore_alias, run_times, self._logger.name)


# -- the scheduler --------------------------------------------------------------------------

class TrackerScheduler(BackgroundScheduler):
    """A BackgroundScheduler on the tracker's database (table JOB_TABLE), with the take-over store and the executor."""

    def __init__(self, store, settings, runtime):
        job_store = SQLAlchemyJobStore(engine=store.engine, tablename=JOB_TABLE)
        self.job_table = job_store.jobs_t  # created by the store, under its schema lock, before start()
        super().__init__(jobstores={"default": job_store, TAKEOVER_STORE: MemoryJobStore()},
                         executors={"default": JobExecutor(runtime)}, job_defaults=job_options(settings),
                         timezone=settings.zone)

    def next_run_time_of(self, job_id: str) -> datetime | None:
        job = self.get_job(job_id) if self.running else None
        return job.next_run_time if job is not None else None

    def drop_job(self, job_id: str) -> None:
        """Remove a job; gone already (another scheduler on this database removed it) is fine."""
        try:
            self.remove_job(job_id)
        except JobLookupError:
            pass

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


__all__ = ["JOB_TABLE", "TAKEOVER_STORE", "TrackerScheduler", "JobExecutor", "make_trigger", "takeover_trigger",
           "next_fire_time", "trigger_key", "job_options"]
