"""The `tracker schedule` process: signals, the main loop, `--run-now` and `--list`.

`serve` runs the service until SIGTERM or SIGINT. Its main loop acts on the flags the signal
handlers set (stop; SIGHUP: re-read queries/), refreshes this scheduler's job leases every quarter
of TRACKER_LEASE_TIMEOUT and queues the runs other schedulers abandoned, and wakes the scheduler
when the wall clock jumps (the machine slept). `run_job_now` runs one job once through the same
entry point; `list_jobs` reads the topic files alone.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Any

from tracker.errors import ConfigError
from tracker.schedule.apscheduler3 import next_fire_time
from tracker.schedule.jobs import JobOutcome, describe_schedule, job_specs, resolve_job, run_job, zone_name
from tracker.schedule.runtime import Runtime
from tracker.schedule.service import Service
from tracker.topics import scan_topics

log = logging.getLogger("tracker.schedule")

TICK = 0.2  # seconds between the main loop's looks at signals, heartbeat and clock
CLOCK_JUMP = 5.0  # seconds the wall clock may drift from the monotonic one before we suspect a sleep


class Signals:
    """SIGTERM/SIGINT ask to stop, SIGHUP to reload. Handlers only set flags; the main loop acts on them."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.stop = False
        self.reload = False
        self.previous: dict[int, Callable[[int, FrameType | None], Any] | int | signal.Handlers | None] = {}

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
            os.write(2, b"error: second stop signal: exiting at once; the topic's next run marks the interrupted one "
                        b"failed and searches the same dates again\n")
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
        _main_loop(service, signals, tick)
    finally:
        service.stop()
        signals.restore()
    log.info("tracker schedule stopped")


def lease_heartbeat_every(settings) -> float:
    """Seconds between lease heartbeats: a quarter of the timeout, so one late beat never loses a lease."""
    from tracker.store.locks import HEARTBEAT_EVERY

    return max(TICK, min(HEARTBEAT_EVERY, settings.lease_timeout / 4))


def _main_loop(service: Service, signals: Signals, tick: float) -> None:
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


def run_job_now(store, settings, name: str) -> JobOutcome:
    """Run one job once, now, through the scheduler's entry point (a topic's run lock or the e-mail lock apply)."""
    scan = scan_topics(settings.queries_dir)
    spec = resolve_job(name, scan, settings)
    runtime = Runtime(store, settings)
    runtime.remember(scan)
    signals = Signals(runtime)
    signals.install()
    try:
        log.info("running %s now", spec.id)
        return run_job(runtime, spec.id)
    finally:
        signals.restore()


@dataclass(frozen=True)
class ScheduledJob:
    id: str
    schedule: str  # the cron, or "every N s"
    next_run: datetime | None


@dataclass(frozen=True)
class JobListing:
    jobs: list[ScheduledJob]
    errors: list[str]  # the topic files that do not load, each with what the scheduler does about it


def list_jobs(settings, now: datetime | None = None) -> JobListing:
    """Every job the scheduler would run and its next run time, from the topic files alone."""
    scan = scan_topics(settings.queries_dir)
    now = now or datetime.now(settings.zone)
    jobs = [ScheduledJob(spec.id, describe_schedule(spec.cron, settings), next_fire_time(spec.cron, settings, now))
            for spec in job_specs(list(scan.topics.values()), settings)]
    errors = [f"{error}; 'tracker schedule' keeps this topic's last good job until the file is fixed"
              for error in scan.errors.values()]
    return JobListing(jobs, errors)


__all__ = ["Signals", "serve", "lease_heartbeat_every", "run_job_now", "list_jobs", "ScheduledJob", "JobListing",
           "TICK", "CLOCK_JUMP"]
