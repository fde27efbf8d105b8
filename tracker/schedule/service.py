"""The scheduler on the tracker's database, with the jobs the topic files ask for.

`Service` starts the scheduler on the stored jobs, makes them match queries/ (`reload`, at start
and on SIGHUP; see tracker/schedule/__init__.py for bad files), refreshes this scheduler's leases
and queues the runs other schedulers abandoned (`renew_and_take_over`, from the main loop), and
stops. It uses only the scheduler's public methods; APScheduler's internals stay in apscheduler3.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tracker.schedule.apscheduler3 import (
    TAKEOVER_STORE,
    TrackerScheduler,
    job_options,
    make_trigger,
    takeover_trigger,
    trigger_key,
)
from tracker.schedule.jobs import (
    FETCH_PREFIX,
    fetch_job_id,
    format_time,
    job_specs,
    run_abandoned_job,
    stored_ref,
    takeover_job_id,
)
from tracker.schedule.runtime import Runtime
from tracker.topics import scan_topics

log = logging.getLogger("tracker.schedule")


@dataclass
class Reconciliation:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # jobs of topics whose file is bad
    errors: list[str] = field(default_factory=list)


class Service:
    """APScheduler's BackgroundScheduler on the tracker's database, with the jobs the topic files ask for."""

    def __init__(self, store, settings):
        self.store, self.settings = store, settings
        self.runtime = Runtime(store, settings)
        self.job_options = job_options(settings)
        self.scheduler = TrackerScheduler(store, settings, self.runtime)
        self.runtime.scheduler = self.scheduler

    def start(self, *, paused: bool = False) -> Reconciliation:
        """Start on the stored jobs, bring them in line with queries/, then (unless `paused`) run what is due."""
        self.store.ensure_table(self.scheduler.job_table)
        self.scheduler.start(paused=True)
        try:
            report = self.reload()
        except BaseException:
            self.scheduler.shutdown(wait=False)
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
            self.scheduler.add_job(stored_ref(run_abandoned_job), takeover_trigger(gone.due_at, settings), args=key,
                                   jobstore=TAKEOVER_STORE, id=takeover_job_id(*key), name=f"take over {gone.job}",
                                   misfire_grace_time=None, replace_existing=True)

    def reload(self) -> Reconciliation:
        """Add, change and remove jobs to match queries/ (see tracker/schedule/__init__.py for bad files)."""
        scan = scan_topics(self.settings.queries_dir)
        self.runtime.remember(scan)
        report = Reconciliation()
        specs = {spec.id: spec for spec in job_specs(list(scan.topics.values()), self.settings)}
        existing = {job.id: job for job in self.jobs()}
        for job_id, spec in specs.items():
            trigger = make_trigger(spec.cron, self.settings)
            job = existing.get(job_id)
            if job is None:
                # replace_existing: another scheduler on this database may have added it a moment ago.
                self.scheduler.add_job(spec.func_ref, trigger, args=spec.args, id=spec.id, name=spec.name,
                                       replace_existing=True, **self.job_options)
                report.added.append(job_id)
                continue
            options_differ = (job.name != spec.name or tuple(job.args) != spec.args or job.func_ref != spec.func_ref
                              or any(getattr(job, key) != value for key, value in self.job_options.items()))
            trigger_differs = trigger_key(job.trigger) != trigger_key(trigger)
            if options_differ:
                self.scheduler.modify_job(job_id, func=spec.func_ref, args=spec.args, kwargs={}, name=spec.name,
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
        for job in sorted(self.jobs(), key=lambda j: j.id):
            log.info("  %s: next run %s (%s)", job.id, format_time(job.next_run_time, zone), job.trigger)


__all__ = ["Service", "Reconciliation"]
