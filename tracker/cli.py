"""The command line: options in, library calls, one-line errors out. No logic lives only here."""

from __future__ import annotations

import logging
import shutil
import sys
from datetime import date, datetime
from functools import wraps
from importlib import resources
from pathlib import Path

import click

from tracker import __version__
from tracker.errors import ConfigError, TrackerError
from tracker.settings import Settings

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
        configure_logging(state.get("verbose", False))
        return ctx.invoke(command, *args, **kwargs)

    return wrapper


def configure_logging(verbose: bool) -> None:
    root = logging.getLogger("tracker")
    if not any(getattr(h, "_tracker", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"))
        handler._tracker = True
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def current_settings() -> Settings:
    state = click.get_current_context().find_root().ensure_object(dict)
    if "settings" not in state:
        state["settings"] = Settings.from_env(home=state.get("home"), verbose=state.get("verbose", False))
    return state["settings"]


def current_store():
    from tracker.store import open_store

    state = click.get_current_context().find_root().ensure_object(dict)
    if "store" not in state:
        state["store"] = open_store(current_settings().database_url)
    return state["store"]


class TrackerGroup(click.Group):
    """Turns the library's typed errors and click's usage errors into one line and an exit code."""

    def main(self, args=None, prog_name=None, **extra):
        try:
            return super().main(args=args, prog_name=prog_name or "tracker", standalone_mode=False, **extra)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.UsageError as error:
            hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
            click.echo(f"error: {error.format_message()}{hint}", err=True)
            sys.exit(2)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(130)
        except click.ClickException as error:
            click.echo(f"error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except TrackerError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted; nothing past the last saved batch was marked as done", err=True)
            sys.exit(130)


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
    cli.main()


def load_selected_topics(slugs):
    from tracker.topics import load_topics, select_topics

    return select_topics(load_topics(current_settings().queries_dir), slugs)


# -- init ------------------------------------------------------------------------------------

@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@common_options
def init(directory):
    """Create a tracker home (queries/, db/, reports/) with the default topics."""
    home = (directory or current_settings().home).expanduser().resolve()
    created = create_home(home)
    for line in created:
        click.echo(line)
    click.echo(f"tracker home ready at {home}: run 'tracker --home {home} fetch' to fetch every topic")


def create_home(home: Path) -> list[str]:
    lines = []
    try:
        for name in ("queries", "db", "reports"):
            folder = home / name
            if not folder.exists():
                folder.mkdir(parents=True, mode=0o700 if name == "db" else 0o777)
                lines.append(f"created {folder}")
        defaults = resources.files("tracker") / "default_topics"
        for source in sorted(defaults.iterdir(), key=lambda p: p.name):
            if not source.name.endswith(".toml"):
                continue
            target = home / "queries" / source.name
            if target.exists():
                lines.append(f"kept {target} (already there)")
                continue
            with resources.as_file(source) as path:
                shutil.copyfile(path, target)
            lines.append(f"created {target}")
    except OSError as error:
        raise ConfigError(f"cannot create the tracker home at {home} ({error.strerror}): choose a writable folder") from None
    return lines


# -- topics ----------------------------------------------------------------------------------

@cli.command()
@common_options
def topics():
    """List topics: papers stored, new in the last run, last run time and status."""
    from tracker.store.papers import count_topic_papers
    from tracker.store.runs import last_runs

    selected = load_selected_topics(())
    store = current_store()
    counts = count_topic_papers(store)
    runs = last_runs(store)
    rows = []
    for topic in selected:
        run = runs.get(topic.slug)
        rows.append([
            topic.slug, topic.title, str(counts.get(topic.slug, 0)),
            str(run.new_papers) if run and run.status == "succeeded" else "-",
            _when(run.finished_at or run.started_at) if run else "never",
            run.status if run else "-",
        ])
    click.echo(format_table(["topic", "title", "papers", "new", "last run (UTC)", "status"], rows))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [headers, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


# -- fetch -----------------------------------------------------------------------------------

class ProgressBar:
    """A progress bar on stderr for long backfills, only when stderr is a terminal."""

    def __init__(self, label: str, threshold: int = 1000):
        self.label, self.threshold, self.bar = label, threshold, None

    def __call__(self, advance: int, total: int) -> None:
        if self.bar is None:
            if total < self.threshold or not sys.stderr.isatty():
                return
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr, show_pos=True)
            self.bar.__enter__()
        self.bar.update(advance)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def run_fetch(slugs=(), since=None, full=False) -> list:
    """Fetch the selected topics, printing one summary line per topic; shared by `fetch` and `run`."""
    from tracker.eutils import EutilsClient
    from tracker.sync import sync_topics

    settings = current_settings()
    selected = load_selected_topics(slugs)
    store = current_store()
    if not settings.email:
        click.echo("warning: no e-mail configured: set NCBI_EMAIL so NCBI can reach you before blocking heavy use",
                   err=True)
    bars: list[ProgressBar] = []

    def progress_for(topic):
        bars.append(ProgressBar(topic.slug))
        return bars[-1]

    def report(result):
        for bar in bars:
            bar.close()
        click.echo(result.summary())

    with EutilsClient(settings) as client:
        return sync_topics(store, client, selected, since=since, full=full, progress_for=progress_for, on_result=report)


@cli.command()
@click.argument("slugs", nargs=-1, metavar="[SLUG]...")
@click.option("--since", type=DATE, help="Search from this create date instead of the watermark.")
@click.option("--full", is_flag=True, help="Repeat the backfill from the topic's 'since', whatever the watermark.")
@common_options
def fetch(slugs, since, full):
    """Fetch what is new for every topic (or the given ones)."""
    results = run_fetch(slugs, since=since, full=full)
    failed = [r for r in results if not r.succeeded]
    if failed:
        click.echo(f"error: {len(failed)} of {len(results)} topics failed ({', '.join(r.topic for r in failed)}); "
                   "their watermarks did not move: run 'tracker fetch' again later", err=True)
        sys.exit(1)


# -- status ----------------------------------------------------------------------------------

@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs to show.")
@click.option("--topic", "topic_slug", metavar="SLUG", help="Only this topic's runs.")
@common_options
def status(limit, topic_slug):
    """Recent runs and their errors."""
    from tracker.store.runs import recent_runs

    if topic_slug:
        load_selected_topics((topic_slug,))
    runs = recent_runs(current_store(), limit=limit, topic=topic_slug)
    if not runs:
        click.echo("no runs yet: run 'tracker fetch'")
        return
    rows = []
    for run in runs:
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
        rows.append([
            str(run.id), run.topic, run.kind, _when(run.started_at),
            f"{seconds:.1f}s" if seconds is not None else "-", run.status,
            str(run.new_papers), str(run.matched), str(run.requests),
            f"{run.window_start or 'start'}..{run.window_end}" if run.window_end else "-",
        ])
    click.echo(format_table(["run", "topic", "kind", "started (UTC)", "took", "status", "new", "matched",
                             "requests", "window"], rows))
    errors = [run for run in runs if run.error]
    for run in errors:
        click.echo(f"run {run.id} ({run.topic}): {run.error}")
