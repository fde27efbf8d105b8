"""`tracker email`."""

from __future__ import annotations

import click

from tracker.cli.base import (
    cli,
    common_options,
    current_settings,
    current_store,
    load_selected_topics,
)
from tracker.errors import TrackerError


@cli.command("email")
@click.option("--dry-run", is_flag=True,
              help="Write each message to reports/outbox/<date>-<address>.eml instead of sending; mark nothing delivered.")
@click.option("--to", "only", metavar="ADDR",
              help="Only this recipient (with no recipients configured: ADDR gets every topic).")
@common_options
def email_command(dry_run, only):
    """Mail each recipient the papers of their topics they have not been sent yet (a heartbeat when none)."""
    from tracker.outputs.mail import describe_failures, send_weekly_email

    results = send_weekly_email(current_store(), current_settings(), load_selected_topics(()), dry_run=dry_run,
                                only=only)
    for result in results:
        if not result.error:
            click.echo(result.summary())
    failure = describe_failures(results)
    if failure:
        raise TrackerError(failure)
