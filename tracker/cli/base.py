"""The command group every command joins: its options, the settings and store of one command, the topics it
selects, and the one line (and exit code) each error becomes."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from datetime import date
from functools import wraps
from pathlib import Path
from typing import Any

import click

from tracker._version import __version__
from tracker.errors import TrackerError
from tracker.logs import log_commands
from tracker.memory import tune_allocators
from tracker.settings import Settings
from tracker.text import PMID_MAX

log = logging.getLogger("tracker")


class DateType(click.ParamType):
    name = "DATE"

    def convert(self, value, param, ctx):
        if isinstance(value, date):
            return value
        try:
            parsed = date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"invalid date {value!r}: use YYYY-MM-DD, for example 2024-01-31", param, ctx)
        if parsed > date.today():
            self.fail(f"{parsed} is in the future", param, ctx)
        return parsed


DATE = DateType()


_DIGITS = re.compile(r"-?[0-9]+")


class Count(click.IntRange):
    """A whole number an option counts with, in the digits 0-9 only (click's int takes "١٢" and "1_000" too) and
    at most PMID_MAX, so that no count overflows a database integer."""

    def __init__(self, min: int | None = 1, max: int | None = None):
        super().__init__(min=min, max=max)

    def convert(self, value, param, ctx):
        if not isinstance(value, int) and not _DIGITS.fullmatch(str(value).strip()):
            self.fail(f"{value!r} is not a whole number: write it in the digits 0-9", param, ctx)
        number = super().convert(value, param, ctx)
        if number > PMID_MAX:
            self.fail(f"{number} is too large: give at most {PMID_MAX:,}", param, ctx)
        return number


SCREENING_STATES = ("unscreened", "awaiting", "included", "excluded", "maybe", "conflict", "not-retrieved")  # tuple(State)
STAGES = ("title-abstract", "full-text")  # tracker.review.states.STAGES, without importing it for --help


SORT_ORDERS = ("newest", "oldest", "tier", "relevance")  # tracker.store.listing.SORTS, without importing it for --help


def common_options(command):
    """--home and --verbose on every command, so they work before or after the command name."""

    @click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Tracker home holding queries/, db/ and reports/ (default: $TRACKER_HOME or the current directory).")
    @click.option("--verbose", "-v", is_flag=True, default=False, help="Request-level detail on stderr (never a secret).")
    @click.pass_context
    @wraps(command)
    def wrapper(ctx, *args, home=None, verbose=False, **kwargs):
        state = ctx.ensure_object(dict)
        if home is not None:
            state["home"] = home
        if verbose:
            state["verbose"] = True
        log_commands(state.get("verbose", False))
        return ctx.invoke(command, *args, **kwargs)

    return wrapper


def current_settings() -> Settings:
    state = click.get_current_context().find_root().ensure_object(dict)
    if "settings" not in state:
        state["settings"] = Settings.from_env(home=state.get("home"), verbose=state.get("verbose", False))
    return state["settings"]


def current_store(*, readonly: bool = False):
    """The database, opened once per command: read-only for the commands that only read it. An older SQLite database
    is upgraded first when that is quick (tracker/store/upgrade.py), said in one line on stderr."""
    from tracker.store.upgrade import open_current_store

    state = click.get_current_context().find_root().ensure_object(dict)
    if "store" not in state:
        settings = current_settings()
        state["store"] = open_current_store(settings.database_url, readonly=readonly, auto_migrate=settings.auto_migrate,
                                            say=lambda line: click.echo(line, err=True))
    return state["store"]


INTERRUPTED = ("interrupted: every batch saved so far is kept, and the interrupted run is recorded as failed: the next "
               "run searches the same dates again and fetches only what this one did not save")


class TrackerGroup(click.Group):
    """Turns the library's typed errors and click's usage errors into one line and an exit code."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        # standalone_mode is not passed on: this group reports errors and exits itself, whatever the caller asks.
        state: dict = {}
        try:
            result = super().main(args=args, prog_name=prog_name or "tracker", complete_var=complete_var,
                                  standalone_mode=False, windows_expand_args=windows_expand_args, obj=state, **extra)
        except click.exceptions.Exit as done:
            sys.exit(max(done.exit_code, 2) if state.get("bad_files") else done.exit_code)
        except SystemExit as done:
            if state.get("bad_files") and isinstance(done.code, int):
                sys.exit(max(done.code, 2))  # a skipped topic file is a configuration error, even after the rest ran
            raise
        except click.UsageError as error:
            hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
            click.echo(f"error: {error.format_message()}{hint}", err=True)
            sys.exit(2)
        except (click.Abort, KeyboardInterrupt):
            click.echo(f"error: {INTERRUPTED}", err=True)
            sys.exit(130)
        except click.ClickException as error:
            click.echo(f"error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except TrackerError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)
        except Exception as error:
            exc = sys.modules.get("sqlalchemy.exc")
            if exc is None or not isinstance(error, exc.SQLAlchemyError):
                raise
            # The library turns the database errors it expects into StoreError; anything else (the
            # server gone mid-command, a disk full) is still one line, never a traceback.
            from tracker.store.database import database_error_detail

            click.echo(f"error: the database failed ({database_error_detail(error)}): nothing past the last "
                       "committed step was changed; try again, and if it persists check TRACKER_DB_URL and the "
                       "database server (tracker -v shows more)", err=True)
            log.debug("database error", exc_info=error)
            sys.exit(1)
        if state.get("bad_files"):
            sys.exit(2)
        return result


@click.group(cls=TrackerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracker")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Tracker home holding queries/, db/ and reports/ (default: $TRACKER_HOME or the current directory).")
@click.option("--verbose", "-v", is_flag=True, default=False, help="Request-level detail on stderr (never a secret).")
@click.pass_context
def cli(ctx, home, verbose):
    """Track PubMed topics into SQLite and report what is new."""
    ctx.ensure_object(dict).update({"home": home, "verbose": verbose})


def main() -> None:
    tune_allocators()
    cli.main()


def load_selected_topics(slugs):
    """The topics named (a bad file named fails with its error), or every good one: then each bad file is said in
    one line, skipped, and the command exits 2 at the end so that cron notices."""
    scan = topic_scan()
    selected = scan.select(slugs)
    if not slugs:
        report_bad_files(scan)
    return selected


def load_all_topics():
    """Every topic whose file loads (for what other topics say about a paper); bad files are not reported here."""
    return topic_scan().good()


def topic_scan():
    from tracker.topics import scan_topics

    state = click.get_current_context().find_root().ensure_object(dict)
    if "scan" not in state:
        state["scan"] = scan_topics(current_settings().queries_dir)
    return state["scan"]


def report_bad_files(scan) -> None:
    state = click.get_current_context().find_root().ensure_object(dict)
    if not scan.errors or state.get("bad_files"):
        return
    state["bad_files"] = list(scan.errors)
    for error in scan.errors.values():
        click.echo(f"error: {error} (this topic is skipped until the file is fixed; the others are not affected)",
                   err=True)


def current_reviewer(given: str | None) -> str:
    """Who screens from this shell: --reviewer, else TRACKER_REVIEWER, else the login name."""
    from tracker.review.screening import check_reviewer, default_reviewer

    return check_reviewer(given) if given else default_reviewer(current_settings().reviewer)
