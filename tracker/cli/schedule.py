"""`tracker schedule`."""

from __future__ import annotations

import sys

import click

from tracker.cli.base import (
    cli,
    common_options,
    current_settings,
    current_store,
)
from tracker.cli.output import format_table


@cli.command("schedule")
@click.option("--list", "list_only", is_flag=True,
              help="Print every job and its next run time, then exit; starts nothing.")
@click.option("--run-now", "run_now", metavar="SLUG|email",
              help="Run one job once now (a topic's fetch, or 'email' for the weekly e-mail) and exit with its status.")
@common_options
def schedule_command(list_only, run_now):
    """Run each topic's fetch on its schedule and the weekly e-mail until SIGTERM; SIGHUP re-reads queries/."""
    from tracker import schedule
    from tracker.logs import log_service

    if list_only and run_now:
        raise click.UsageError("--list and --run-now cannot be combined")
    settings = current_settings()
    if list_only:
        listing = schedule.list_jobs(settings)
        click.echo(format_table(["job", "schedule", f"next run ({schedule.zone_name(settings.zone)})"], [
            [job.id, job.schedule, schedule.format_time(job.next_run, settings.zone)] for job in listing.jobs]))
        for error in listing.errors:
            click.echo(f"error: {error}", err=True)
        sys.exit(2 if listing.errors else 0)
    store = current_store()
    log_service(settings.verbose, zone=settings.zone, log_file=settings.log_file)
    if run_now:
        outcome = schedule.run_job_now(store, settings, run_now)
        for line in outcome.lines:
            click.echo(line)
        sys.exit(0 if outcome.ok else 1)
    schedule.serve(store, settings)
