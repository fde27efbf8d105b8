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
    """Mail each recipient the papers of their topics they have not been sent yet (with none: a heartbeat, once a week)."""
    from tracker.outputs.mail import describe_failures, send_weekly_email

    results = send_weekly_email(current_store(), current_settings(), load_selected_topics(()), dry_run=dry_run,
                                only=only)
    for result in results:
        if not result.error:
            click.echo(result.summary())
    # What the readers are only told (a failed run, a query to check, a CSV left out), with what to do: said once.
    for note in dict.fromkeys(note for result in results for note in result.sender_notes):
        click.echo(f"note: {note}", err=True)
    failure = describe_failures(results)
    if failure:
        raise TrackerError(failure)
