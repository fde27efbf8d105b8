"""The command line: options in, library calls, one-line errors out. No logic lives only here."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import date, datetime, timezone
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tracker._version import __version__
from tracker.errors import ConfigError, TrackerError
from tracker.logs import log_commands
from tracker.settings import Settings

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar as ClickProgressBar

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
SCREENING_STATES = ("unscreened", "awaiting", "included", "excluded", "maybe", "conflict")  # states.STATES, for --help
SORT_ORDERS = ("newest", "relevance")  # tracker.review.screening.SORTS, without importing it for --help


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
    """The database, opened once per command: read-only for the commands that only read it."""
    from tracker.store import open_store

    state = click.get_current_context().find_root().ensure_object(dict)
    if "store" not in state:
        state["store"] = open_store(current_settings().database_url, readonly=readonly)
    return state["store"]


INTERRUPTED = ("interrupted: every batch saved so far is kept, and the interrupted run is recorded as failed without "
               "moving its watermark: the next run resumes where this one stopped")


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


# -- init ------------------------------------------------------------------------------------

@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@common_options
def init(directory):
    """Create a tracker home (queries/ with the default topics, tracker.toml, db/, reports/)."""
    from tracker.topics import create_home

    home = (directory or current_settings().home).expanduser().resolve()
    created = create_home(home)
    for line in created:
        click.echo(line)
    click.echo(f"tracker home ready at {home}: set your e-mail in {home / 'tracker.toml'} ([ncbi] email) or "
               f"NCBI_EMAIL, then run 'tracker --home {home} run' to fetch every topic and write its digest")


# -- topics ----------------------------------------------------------------------------------

@cli.command()
@click.option("--check", "check_slug", metavar="SLUG",
              help="Only ask PubMed how it reads this topic's query: translation, errors, warnings, Count "
                   "(one esearch; nothing is stored).")
@click.option("--check-query", "check_query", metavar="QUERY", help="The same for a query that is not a topic yet.")
@common_options
def topics(check_slug, check_query):
    """List topics: papers stored, new in the last run, last run time and status, then health flags."""
    from tracker.views.status import health_of, topic_summaries

    if check_slug is not None or check_query is not None:
        check_topic_query(check_slug, check_query)
        return
    report_bad_files(topic_scan())
    summaries = topic_summaries(current_store(readonly=True), current_settings(), scan=topic_scan())
    rows = [[summary.slug, summary.title, str(summary.papers),
             "-" if summary.new_in_last_run is None else str(summary.new_in_last_run),
             _when(summary.last_run.moment) if summary.last_run else ("never" if summary.topic else "-"),
             summary.last_run.status if summary.last_run else "-"] for summary in summaries]
    click.echo(format_table(["topic", "title", "papers", "new", "last run (UTC)", "status"], rows))
    health = health_of(summaries)
    if health:
        click.echo("")
        echo_health(health)


def check_topic_query(slug: str | None, query: str | None) -> None:
    """`tracker topics --check`: how PubMed reads a query, from one esearch without a date clause."""
    from tracker.ncbi.eutils import EutilsClient
    from tracker.runs.watch import describe_check, measure_query

    if slug is not None and query is not None:
        raise click.UsageError("--check and --check-query cannot be combined: give one of them")
    if slug is not None:
        [topic] = load_selected_topics((slug,))
        query = topic.query
    if query is None:
        raise click.UsageError("give --check TOPIC or --check-query QUERY")
    if not " ".join(query.split()):
        raise ConfigError("the query is empty: give a PubMed query, for example 'norepinephrine AND bolus'")
    with EutilsClient(current_settings()) as client:
        result = measure_query(client, query)
    for line in describe_check(query, result):
        click.echo(line)


def echo_health(health: dict) -> None:
    """"health:" and the flags of the topics that have any, one line each."""
    click.echo("health:")
    for slug, flags in health.items():
        for flag in flags:
            click.echo(f"  {slug}: {flag}")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


# -- fetch -----------------------------------------------------------------------------------

class ProgressBar:
    """A progress bar on stderr for long backfills, only when stderr is a terminal."""

    def __init__(self, label: str, threshold: int = 1000):
        self.label, self.threshold = label, threshold
        self.bar: ClickProgressBar[int] | None = None

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
    from tracker.ncbi.eutils import EutilsClient
    from tracker.runs.ledger import RunHooks
    from tracker.runs.sync import sync_topics

    settings = current_settings()
    selected = load_selected_topics(slugs)
    store = current_store()
    if not settings.email:
        click.echo("warning: no e-mail configured: set [ncbi] email in tracker.toml or NCBI_EMAIL, so NCBI can reach "
                   "you before blocking heavy use", err=True)
    for warning in settings.warnings:
        click.echo(f"warning: {warning}", err=True)
    bars: list[ProgressBar] = []

    def hooks_for(topic):
        bars.append(ProgressBar(topic.slug))
        return RunHooks(progress=bars[-1])

    def report(result):
        for bar in bars:
            bar.close()
        click.echo(result.summary())

    with EutilsClient(settings) as client:
        return sync_topics(store, client, selected, since=since, full=full, hooks_for=hooks_for, on_result=report)


def exit_if_unreachable(results) -> None:
    """When E-utilities could not be reached, say so in one line and exit 1 (the topics after it were not tried)."""
    for result in results:
        if result.unreachable:
            click.echo(f"error: {result.unreachable}", err=True)
            sys.exit(1)


@cli.command()
@click.argument("slugs", nargs=-1, metavar="[SLUG]...")
@click.option("--since", type=DATE, help="Search from this create date instead of the watermark.")
@click.option("--full", is_flag=True, help="Repeat the backfill from the topic's 'since', whatever the watermark.")
@common_options
def fetch(slugs, since, full):
    """Fetch what is new for every topic (or the given ones)."""
    results = run_fetch(slugs, since=since, full=full)
    exit_if_unreachable(results)
    failed = [r for r in results if not r.succeeded]
    if failed:
        click.echo(f"error: {len(failed)} of {len(results)} topics failed ({', '.join(r.topic for r in failed)}); "
                   "their watermarks did not move: run 'tracker fetch' again later", err=True)
        sys.exit(1)


@cli.command("run")
@click.argument("slugs", nargs=-1, metavar="[SLUG]...")
@common_options
def run_command(slugs):
    """The main job: fetch every topic, then write each topic's digest to reports/<slug>/<date>.md and .html."""
    from tracker.outputs.digest import write_topic_digests

    results = run_fetch(slugs)
    not_tried = {r.topic for r in results if r.not_tried}
    # A topic not tried ran nothing: a digest now would only repeat its last one and close its period early.
    selected = [topic for topic in load_selected_topics(slugs) if topic.slug not in not_tried]
    paths = write_topic_digests(current_store(), selected, current_settings().reports_dir,
                                quiet_weeks=current_settings().quiet_weeks)
    click.echo(f"digests written to {current_settings().reports_dir}:")
    for path in paths:
        click.echo(f"  {path}")
    exit_if_unreachable(results)
    failed = [r for r in results if not r.succeeded]
    if failed:
        click.echo(f"error: {len(failed)} of {len(results)} topics failed ({', '.join(r.topic for r in failed)}); "
                   f"their digests say so: run 'tracker run {' '.join(r.topic for r in failed)}' again later", err=True)
        sys.exit(1)


@cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--topic", "topic_slug", required=True, metavar="SLUG", help="The topic the papers join.")
@common_options
def import_command(file, topic_slug):
    """Add the papers of a PubMed MEDLINE export (.nbib, "Save > Format: PubMed") to a topic."""
    from tracker.ncbi.eutils import EutilsClient
    from tracker.ncbi.medline import read_medline_pmids
    from tracker.runs.sync import import_pmids

    [topic] = load_selected_topics((topic_slug,))
    pmids = read_medline_pmids(file)
    with EutilsClient(current_settings()) as client:
        result = import_pmids(current_store(), client, topic, pmids)
    line = (f"{topic.slug}: {result.pmids} PMIDs in {file.name}, {result.new_papers} new to the topic, "
            f"{result.fetched} fetched, {result.requests} requests")
    if result.missing:
        line += f"; {result.missing} not found in PubMed"
    click.echo(line)


# -- status ----------------------------------------------------------------------------------

@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs to show.")
@click.option("--topic", "topic_slug", metavar="SLUG", help="Only this topic's runs (or changes).")
@click.option("--changes", is_flag=True,
              help="List the status changes of stored papers (retractions, errata, removals...) instead.")
@click.option("--since", type=DATE, help="With --changes: only changes detected on or after this day (UTC).")
@common_options
def status(limit, topic_slug, changes, since):
    """Each topic's last run, next scheduled run and health flags, then recent runs and their errors."""
    from tracker.schedule import format_time, zone_name
    from tracker.views.status import health_of, status_view

    if since is not None and not changes:
        raise click.UsageError("--since goes with --changes: add --changes to list the status changes since then")
    if topic_slug:
        load_selected_topics((topic_slug,))
    if changes:
        list_changes(topic_slug, since)
        return
    settings = current_settings()
    view = status_view(current_store(readonly=True), settings, topic=topic_slug, limit=limit,
                       scan=topic_scan() if settings.queries_dir.is_dir() else None)
    if view.topics:
        zone = settings.zone
        click.echo(format_table(["topic", "schedule", "last run (UTC)", "result", f"next run ({zone_name(zone)})"], [
            [summary.slug, summary.schedule or "(bad file)",
             summary.last_run.moment.strftime("%Y-%m-%d %H:%M") if summary.last_run else "never",
             summary.last_run.result if summary.last_run else "-",
             format_time(summary.next_run, zone) if summary.topic else "-"] for summary in view.topics]) + "\n")
        for error in view.file_errors:
            click.echo(f"warning: {error}; 'tracker schedule' keeps this topic's last good job", err=True)
        health = health_of(view.topics)
        if health:
            echo_health(health)
            click.echo("")
    if not view.runs:
        click.echo("no runs yet: run 'tracker run'")
        return
    click.echo(format_table(["run", "topic", "kind", "started (UTC)", "took", "status", "new", "matched",
                             "requests", "window"], [
        [str(run.id), run.topic, run.kind, _when(run.started_at),
         f"{run.seconds:.1f}s" if run.seconds is not None else "-", run.status, str(run.new_papers),
         str(run.matched), str(run.requests),
         f"{run.window_start or 'start'}..{run.window_end}" if run.window_end else "-"] for run in view.runs]))
    for run in view.runs:
        if run.error:
            click.echo(f"run {run.id} ({run.topic}): {run.error}")


def list_changes(topic_slug: str | None, since: date | None) -> None:
    """`tracker status --changes`: every status event, those on included papers first, then oldest first."""
    from tracker.review.screening import with_included_first
    from tracker.store.changes import list_events
    from tracker.text import cut

    start = datetime.combine(since, datetime.min.time(), timezone.utc) if since else None
    store = current_store(readonly=True)
    events = with_included_first(store, load_all_topics(),
                                 list_events(store, since=start, topics=[topic_slug] if topic_slug else None))
    if not events:
        when = f" since {since}" if since else ""
        click.echo(f"no status changes recorded{when}: each run checks the records PubMed modified")
        return
    for event in events:
        if event.included_alert:
            click.echo(f"!! {event.included_alert}: PMID {event.pmid} {cut(event.title or '(no title)', 60)}")
    click.echo(format_table(["detected (UTC)", "pmid", "change", "notice", "topics", "title"], [
        [_when(event.detected_at), str(event.pmid), event.label, str(event.notice_pmid or "-"),
         ", ".join(event.topics) or "-", cut(event.title or "(no title)", 60)]
        for event in events]))


# -- digest ----------------------------------------------------------------------------------

@cli.command("digest")
@click.argument("slugs", nargs=-1, metavar="[SLUG]...")
@click.option("--since", type=DATE,
              help="Cover papers first seen from this day on (default: since the topic's last digest, else 7 days).")
@click.option("--format", "output_format", type=click.Choice(["md", "html", "text"]),
              help="Print this format to stdout without recording a digest (with -o: the file's format).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every selected topic's digest into this one file ('-': stdout).")
@common_options
def digest_command(slugs, since, output_format, output):
    """Write each topic's digest to reports/<slug>/<date>.md and .html, print it (--format) or write one file (-o)."""
    from tracker.outputs.digest import _SUFFIX_FORMATS, render_topic_digests, write_digest_file, write_topic_digests

    if output is not None and str(output) == "-":  # stdout, as `tracker export -o -`
        output, output_format = None, output_format or "md"
    if output is not None and output_format is not None:
        check_output_format(output, output_format, _SUFFIX_FORMATS)
    selected = load_selected_topics(slugs)
    store = current_store(readonly=output is None and output_format is not None)
    if output is not None:
        write_digest_file(store, selected, output, fmt=output_format, since=since,
                          quiet_weeks=current_settings().quiet_weeks)
        click.echo(output)
    elif output_format is not None:
        click.echo(render_topic_digests(store, selected, output_format, since=since,
                                        quiet_weeks=current_settings().quiet_weeks), nl=False)
    else:
        for path in write_topic_digests(store, selected, current_settings().reports_dir, since=since,
                                        quiet_weeks=current_settings().quiet_weeks):
            click.echo(path)


def check_output_format(output, fmt: str, suffixes: dict[str, str]) -> None:
    """A -o file named for one format while another is written (x.html with --format md) is a usage error."""
    path = Path(output)
    named = suffixes.get(path.suffix.lower())
    if named is not None and named != fmt:
        raise click.UsageError(f"-o {path.name} names a {named} file but the format is {fmt}: "
                               f"pass --format {named}, or name the file {path.stem}.{fmt}")


# -- export ----------------------------------------------------------------------------------

@cli.command("export")
@click.argument("slugs", nargs=-1, metavar="[SLUG]...")
@click.option("--since", type=DATE, help="Only papers the selected topics first saw on or after this day (UTC).")
@click.option("--format", "output_format", type=click.Choice(["csv", "ris", "xlsx"]), default="csv", show_default=True,
              help="CSV (columns documented in tracker/outputs/export.py), RIS for Zotero, EndNote, Rayyan, Covidence, or "
                   "an Excel workbook (needs -o FILE.xlsx).")
@click.option("--state", type=click.Choice(SCREENING_STATES),
              help="Only papers in this screening state in one of the topics (--state included: the included set).")
@click.option("--bom/--no-bom", default=None,
              help="Start the CSV with UTF-8's byte-order mark, which Excel needs to show accents (default: with -o "
                   "FILE, yes; on stdout, no).")
@click.option("--sort", type=click.Choice(SORT_ORDERS), default="newest", show_default=True,
              help="newest first seen first, or most relevant first (learned from the topics' decisions).")
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE|-",
              help="Write to FILE (replaced only once complete) instead of stdout.")
@common_options
def export_command(slugs, since, output_format, state, bom, sort, output):
    """Export the papers of every topic (or the given ones), newest first seen first."""
    from tracker.files import OUTPUT_FILE_ADVICE, atomic_output
    from tracker.outputs.export import export_papers

    if output != "-":
        check_output_format(output, output_format, {".csv": "csv", ".ris": "ris", ".xlsx": "xlsx"})
    elif output_format == "xlsx":
        raise click.UsageError("an Excel workbook is a file, not text for a terminal: add -o FILE.xlsx")
    if bom is not None and output_format != "csv":
        raise click.UsageError("--bom and --no-bom go with CSV: leave them out for --format ris or xlsx")
    selected = load_selected_topics(slugs)
    store = current_store(readonly=True)
    if output == "-":
        export_papers(store, selected, sys.stdout.buffer, since=since, fmt=output_format, state=state, bom=bool(bom),
                      sort=sort)
        return
    with atomic_output(output, advice=OUTPUT_FILE_ADVICE) as file:
        count = export_papers(store, selected, file, since=since, fmt=output_format, state=state,
                              bom=bom is not False, sort=sort)
    click.echo(f"exported {count} papers to {output}", err=True)


# -- search ----------------------------------------------------------------------------------

@cli.command("search")
@click.argument("text")
@click.option("--topic", "topic_slug", metavar="SLUG", help="Only this topic's papers.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many papers to show.")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="csv has the export's columns; json adds the score.")
@common_options
def search_command(text, topic_slug, limit, output_format):
    """Full-text search of stored papers, best match first."""
    from tracker.outputs.export import rows_for_pmids, write_csv
    from tracker.store.search import hits_json, hits_table, search_papers

    if topic_slug:
        load_selected_topics((topic_slug,))
    store = current_store(readonly=True)
    hits = search_papers(store, text, topic=topic_slug, limit=limit)
    if not hits:
        click.echo(f"no stored papers match '{text}'", err=output_format != "table")
    if output_format == "csv":
        write_csv(rows_for_pmids(store, [hit.pmid for hit in hits], screened=load_all_topics()), sys.stdout.buffer)
    elif output_format == "json":
        click.echo(hits_json(hits))
    elif hits:
        click.echo(format_table(*hits_table(hits)))


# -- query -----------------------------------------------------------------------------------

@cli.command("query")
@click.argument("pubmed_query", metavar="QUERY")
@click.option("--since", type=DATE, help="Only records PubMed created on or after this day (default: all).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many of the newest matches to show.")
@click.option("--save-as", "save_as", metavar="SLUG", help="Also save the query as queries/SLUG.toml to track it.")
@click.option("--title", metavar="TEXT", help="With --save-as: the topic's title (default: made from SLUG).")
@common_options
def query_command(pubmed_query, since, limit, save_as, title):
    """Run a one-off PubMed query: store the matches (in no topic) and show the newest."""
    from tracker.ncbi.eutils import EutilsClient
    from tracker.runs.sync import run_query
    from tracker.text import cut
    from tracker.topics import new_topic_path, save_topic_file, topic_from_query

    query = " ".join(pubmed_query.split())
    if not query:
        raise ConfigError("the query is empty: give a PubMed query, for example 'norepinephrine AND bolus'")
    settings = current_settings()
    if title is not None and save_as is None:
        raise click.UsageError("--title goes with --save-as: add --save-as SLUG to save the query as a topic")
    if save_as is not None:
        new_topic_path(settings.queries_dir, save_as)  # refuse a bad name before spending any request
        topic_from_query(save_as, query, since=since, title=title)  # and a bad title
    store = current_store()
    with EutilsClient(settings) as client:
        result = run_query(store, client, query, since=since, limit=limit)
    for warning in result.warnings:
        click.echo(f"warning: PubMed: {warning}", err=True)
    if result.papers:
        click.echo(format_table(["pmid", "created", "year", "first author", "title"], [
            [str(paper.pmid), str(paper.create_date or ""), str(paper.pub_date.year if paper.pub_date else ""),
             paper.authors[0].display if paper.authors else "", cut(paper.title, 70)]
            for paper in result.papers]))
    click.echo(f"showing {len(result.papers)} of {result.count} matches; {result.new_papers} new papers stored, "
               f"{result.requests} requests")
    if save_as is not None:
        topic = topic_from_query(save_as, query, since=since, title=title)
        save_topic_file(settings.queries_dir, topic)
        click.echo(f"saved as queries/{save_as}.toml, titled {topic.title!r} (edit the file to change it): "
                   f"run 'tracker run {save_as}' to track it")


# -- screening -------------------------------------------------------------------------------

class PmidType(click.ParamType):
    name = "PMID"

    def convert(self, value, param, ctx):
        text = str(value).strip()
        if not text.isdigit() or int(text) == 0:
            self.fail(f"{value!r} is not a PMID (a positive whole number such as 31415926)", param, ctx)
        return int(text)


def current_reviewer(given: str | None) -> str:
    from tracker.review.screening import check_reviewer, default_reviewer

    return check_reviewer(given) if given else default_reviewer(current_settings().reviewer)


SCREEN_CSV_COLUMNS = ("pmid", "title", "year", "journal", "first_seen", "state", "reasons", "reviewers", "notes",
                      "other_topics", "pubmed_url", "relevance")


def flat_screening(record: dict) -> dict:
    """A `screening_record` with its lists joined as the export joins them ("; "-separated)."""
    from tracker.review.screening import describe_decision_record

    return {**record, "reasons": "; ".join(record["reasons"]),
            "reviewers": "; ".join(describe_decision_record(d) for d in record["decisions"]),
            "notes": "; ".join(f"{d['reviewer']}: {d['note']}" for d in record["decisions"] if d["note"]),
            "other_topics": "; ".join(f"{slug}: {state}" for slug, state in record["other_topics"].items())}


@cli.group("screen")
def screen_group():
    """Screen a topic's papers: include, exclude (with reasons) or maybe, alone or as two blind reviewers."""


@screen_group.command("list")
@click.argument("slug")
@click.option("--state", type=click.Choice(SCREENING_STATES),
              help="Only papers in this state (in blind screening: as the reviewer sees it).")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many papers (newest first seen first).")
@click.option("--reviewer", metavar="NAME", help="Whose view, in blind screening (default: $TRACKER_REVIEWER or the "
                                                 "login name).")
@click.option("--sort", type=click.Choice(SORT_ORDERS), default="newest", show_default=True,
              help="newest first seen first, or most relevant first (learned from the topic's decisions).")
@common_options
def screen_list_command(slug, state, output_format, limit, reviewer, sort):
    """A topic's papers with their screening state, reasons, each reviewer's decision and relevance, newest first."""
    import json

    from tracker.review.screening import list_screening, screening_record

    topics = load_all_topics()
    [topic] = load_selected_topics((slug,))
    store = current_store(readonly=True)
    rows = list_screening(store, topic, reviewer=current_reviewer(reviewer), state=state, limit=limit, topics=topics,
                          sort=sort)
    if sort == "relevance" and output_format == "table":
        from tracker.review.relevance import ranking_status

        status = ranking_status(store, topic)
        click.echo(f"{topic.slug}: {status.sentence}" + ("" if status.ranked else "; newest first meanwhile"),
                   err=True)
    records = [screening_record(row) for row in rows]
    if output_format == "json":
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
    elif output_format == "csv":
        from tracker.outputs.export import write_table

        write_table(SCREEN_CSV_COLUMNS, ([record[name] for name in SCREEN_CSV_COLUMNS] for record in
                                         (flat_screening(record) for record in records)), sys.stdout.buffer)
    elif not rows:
        click.echo(f"no papers of topic '{topic.slug}'" + (f" are {state}" if state else " yet: run 'tracker fetch'"))
    else:
        from tracker.text import cut

        click.echo(format_table(["pmid", "state", "first seen", "year", "relevance", "decisions", "title"], [
            [str(record["pmid"]), record["state"], record["first_seen"][:10], str(record["year"] or ""),
             "" if record["relevance"] is None else f"{record['relevance']:.3f}",
             flat_screening(record)["reviewers"] or "-", cut(record["title"], 60)] for record in records]))


@screen_group.command("set")
@click.argument("slug")
@click.argument("pmids", nargs=-1, required=True, type=PmidType(), metavar="PMID...")
@click.option("--include", "decision", flag_value="include", help="Include the papers.")
@click.option("--exclude", "decision", flag_value="exclude", help="Exclude the papers (give --reason).")
@click.option("--maybe", "decision", flag_value="maybe", help="Not sure yet: look again later.")
@click.option("--reason", "reasons", multiple=True, metavar="TEXT",
              help="With --exclude: a reason of the topic, by name or number (repeat for several).")
@click.option("--note", default="", metavar="TEXT", help="A free note kept with the decision.")
@click.option("--reviewer", metavar="NAME", help="Who decides (default: $TRACKER_REVIEWER or the login name).")
@click.option("--resolve", is_flag=True, help="Settle a conflict between two reviewers with this decision.")
@common_options
def screen_set_command(slug, pmids, decision, reasons, note, reviewer, resolve):
    """Record a decision on papers of a topic: all of them, or none if one is not in the topic."""
    from tracker.review.relevance import refresh_quietly
    from tracker.review.screening import decide
    from tracker.review.states import OPEN, ScreeningRule
    from tracker.store.decisions import summaries

    if decision is None:
        raise click.UsageError("give the decision: --include, --exclude or --maybe")
    [topic] = load_selected_topics((slug,))
    store = current_store()
    saved = decide(store, topic, pmids, decision, reviewer=current_reviewer(reviewer), reasons=reasons, note=note,
                   resolve=resolve)
    refresh_quietly(store, topic)  # once for all the papers of the command
    rows = summaries(store, topic.slug, [item.decision.pmid for item in saved])
    for item in saved:
        given, before = item.decision, item.replaced
        line = f"{topic.slug} {given.pmid}: {given.decision} by {given.reviewer}"
        if given.reasons:
            line += f" ({', '.join(given.reasons)})"
        if before is not None:
            line += f", replacing {before.decision} of {_when(before.decided_at)} UTC"
        state = ScreeningRule.of(topic).state(rows.get(given.pmid))
        shown = "awaiting the other reviewer" if topic.screening.blind and state in OPEN else state
        click.echo(f"{line}; now {shown}")


@screen_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--topic", "topic_slug", required=True, metavar="SLUG", help="The topic the decisions belong to.")
@click.option("--reviewer", metavar="NAME", help="Who decided, for rows without a reviewer column (default: "
                                                 "$TRACKER_REVIEWER or the login name).")
@click.option("--add-missing", is_flag=True, help="Fetch and link the papers the topic lacks, instead of skipping them.")
@common_options
def screen_import_command(file, topic_slug, reviewer, add_missing):
    """Import decisions from a CSV (pmid, decision, reason, note, reviewer) or ASReview's export: all or nothing."""
    from tracker.ncbi.eutils import EutilsClient
    from tracker.review.importing import import_decisions
    from tracker.review.relevance import refresh_quietly
    from tracker.runs.sync import import_pmids

    [topic] = load_selected_topics((topic_slug,))
    store = current_store()

    def fetch_missing(pmids):
        with EutilsClient(current_settings()) as client:
            import_pmids(store, client, topic, pmids)

    result = import_decisions(store, topic, file, reviewer=current_reviewer(reviewer),
                              add_missing=fetch_missing if add_missing else None)
    refresh_quietly(store, topic)  # one retraining for the whole file
    line = (f"{topic.slug}: {result.imported} decisions imported from {file.name} "
            f"({'ASReview export' if result.kind == 'asreview' else 'CSV'}; by {', '.join(result.reviewers) or '-'})")
    if result.added:
        line += f"; {result.added} papers fetched and added to the topic first"
    if result.unlabelled:
        line += f"; {result.unlabelled} unlabelled rows skipped"
    click.echo(line)
    if result.skipped:
        from tracker.review.screening import describe_pmids

        click.echo(f"warning: {describe_pmids(list(result.skipped))} not in topic '{topic.slug}' and were skipped: "
                   "import again with --add-missing to fetch and add them", err=True)


@cli.command("prisma")
@click.argument("slug")
@click.option("--since", type=DATE, help="Only the papers the topic first saw from this day on, and its runs since.")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "csv", "svg"]), default="text",
              show_default=True, help="svg draws the PRISMA 2020 flow diagram.")
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE|-", help="Write to FILE instead of stdout.")
@common_options
def prisma_command(slug, since, output_format, output):
    """PRISMA counts of a topic's screening: identified, duplicates, screened, excluded per reason, included."""
    from tracker.files import OUTPUT_FILE_ADVICE, write_output
    from tracker.review.prisma import prisma_counts, render

    [topic] = load_selected_topics((slug,))
    text = render(prisma_counts(current_store(readonly=True), topic, since=since), output_format)
    if output == "-":
        click.echo(text, nl=False)
    else:
        write_output(output, text, advice=OUTPUT_FILE_ADVICE)
        click.echo(f"wrote {output}", err=True)


# -- email -----------------------------------------------------------------------------------

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


# -- schedule --------------------------------------------------------------------------------

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


# -- db --------------------------------------------------------------------------------------

@cli.group("db")
def db_group():
    """Database maintenance: upgrade the schema, copy the database to another back end (SQLite, PostgreSQL)."""


@db_group.command("migrate")
@click.option("--check", is_flag=True,
              help="Only say which migrations would run, changing nothing; exit 1 when some are pending.")
@common_options
def db_migrate_command(check):
    """Upgrade the database (TRACKER_DB_URL, else db/tracker.sqlite3) to this tracker's schema, in one transaction."""
    from tracker.store import Store
    from tracker.store.schema import describe_cost, describe_migrations

    store = Store(current_settings().database_url)
    try:
        state = store.schema_state()
        where = store.describe()
        if state.kind in ("foreign", "newer"):
            store.ensure_schema()  # raises the refusal
        pending = state.pending
        if check:
            if state.kind == "empty":
                click.echo(f"{where} holds no tracker database yet: 'tracker db migrate' creates it")
            elif pending:
                click.echo(f"{where} is at schema {state.version}; pending: {describe_migrations(pending)}")
            else:
                click.echo(f"{where} is at schema {state.version}, this tracker's: nothing to do")
            sys.exit(1 if state.kind == "empty" or pending else 0)
        if state.kind == "empty":
            store.migrate()
            click.echo(f"created the tracker database at {where} (schema {store.schema_state().version})")
            return
        if not pending:
            click.echo(f"{where} is at schema {state.version}, this tracker's: nothing to do")
            return
        click.echo(f"upgrading {where} from schema {state.version} to {pending[-1].version} "
                   f"({describe_migrations(pending)}): {describe_cost(pending, store.count_papers())}")
        applied = store.migrate(lambda migration: click.echo(f"  {migration.version} {migration.name} ..."))
        took = sum(step.seconds for step in applied)
        click.echo(f"{where} is at schema {applied[-1].migration.version} ({took:.1f} s)")
    finally:
        store.close()


@db_group.command("copy")
@click.option("--to", "target_url", required=True, metavar="URL",
              help="The empty database to copy into, e.g. postgresql+psycopg://user@host/tracker or "
                   "sqlite:///path/tracker.sqlite3. Leave the password out to take it from PGPASSWORD or ~/.pgpass.")
@common_options
def db_copy_command(target_url):
    """Copy this tracker's database (TRACKER_DB_URL, else db/tracker.sqlite3) into an empty database.

    Papers, runs, watermarks, change checks, digests, the e-mail ledgers, status events, paper revisions and
    scheduled jobs keep their ids; the search index is rebuilt on the target. The target is written in one
    transaction: on any failure it is left as it was. Point TRACKER_DB_URL at the copy to use it.
    """
    from tracker.store.copy import copy_database

    settings = current_settings()
    default_file = settings.db_dir / "tracker.sqlite3"
    if settings.db_url is None and not default_file.exists():
        raise ConfigError(f"no tracker database at {default_file}: run in your tracker home, pass --home, "
                          "or set TRACKER_DB_URL to the database to copy")
    store = current_store(readonly=True)
    bars: dict[str, ProgressBar] = {}
    shown: dict[str, int] = {}

    def progress(table: str, done: int, total: int) -> None:
        bar = bars.setdefault(table, ProgressBar(f"copying {table}", threshold=10_000))
        bar(done - shown.get(table, 0), total)
        shown[table] = done
        if done >= total:
            bar.close()

    try:
        report = copy_database(store, target_url, progress=progress)
    except KeyboardInterrupt:
        for bar in bars.values():
            bar.close()
        click.echo("error: interrupted: the copy was rolled back and the target left as it was", err=True)
        sys.exit(130)
    finally:
        for bar in bars.values():
            bar.close()
    click.echo(f"copied {report.source} to {report.target} in {report.seconds:.1f}s: {report.rows:,} rows")
    click.echo(format_table(["table", "rows"], [[name, f"{count:,}"] for name, count in report.tables]))
    skipped = [name for name in report.skipped if not name.startswith("paper_fts ")]
    click.echo(f"search index rebuilt for {report.indexed:,} papers"
               + (f"; not copied: {', '.join(skipped)}" if skipped else ""))
    if report.rows == 0:
        click.echo("warning: the source held no rows: the target now holds an empty tracker database", err=True)
    hidden = " (with its password)" if "***" in report.target_url else ""
    click.echo(f"to use the copy, set TRACKER_DB_URL={report.target_url}{hidden}")


# -- the web app -----------------------------------------------------------------------------

@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; another than loopback needs accounts (tracker users add).")
@click.option("--port", type=int, default=8765, show_default=True, help="Port to listen on (1-65535).")
@click.option("--open", "open_browser", is_flag=True, help="Open the app in the default browser.")
@common_options
def serve_command(host, port, open_browser):
    """Serve the web app: topics, papers, search, PubMed queries, runs, PRISMA and screening."""
    from tracker.web import serve

    serve(current_settings(), host=host, port=port, open_browser=open_browser, say=click.echo)


@cli.group("users")
def users_group():
    """The web app's team accounts: with one, tracker serve asks everyone to log in."""


def read_password(confirm: bool = True) -> str:
    """From a hidden prompt on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    line = sys.stdin.readline()
    if not line.strip():
        raise ConfigError("no password on standard input: pipe one line, or run the command in a terminal")
    return line.rstrip("\r\n")


@users_group.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May also save topics from the Query page and manage accounts.")
@common_options
def users_add_command(name, admin):
    """Add an account (the password from a prompt, or from standard input)."""
    from tracker.web.accounts import add_user, check_name

    check_name(name)
    account = add_user(current_store(), name, read_password(), admin=admin)
    click.echo(f"added {account.role} {account.name!r}: tracker serve asks everyone to log in (restart it if it is running)")


@users_group.command("list")
@common_options
def users_list_command():
    """List the accounts and their roles."""
    from tracker.store.accounts import list_accounts

    accounts = list_accounts(current_store())
    if not accounts:
        click.echo("no accounts: tracker serve runs in personal mode (add one with 'tracker users add NAME')")
        return
    click.echo(format_table(["name", "role", "added (UTC)", "password changed (UTC)"], [
        [account.name, account.role, _when(account.created_at), _when(account.password_changed_at)]
        for account in accounts]))


@users_group.command("remove")
@click.argument("name")
@common_options
def users_remove_command(name):
    """Remove an account and end its sessions (its decisions stay in the history)."""
    from tracker.web.accounts import remove_user

    remove_user(current_store(), name)
    click.echo(f"removed {name!r}")


@users_group.command("passwd")
@click.argument("name")
@common_options
def users_passwd_command(name):
    """Change an account's password (from a prompt, or standard input); its sessions end."""
    from tracker.store.accounts import list_accounts
    from tracker.web.accounts import change_password

    store = current_store()
    if name not in {account.name for account in list_accounts(store)}:
        raise ConfigError(f"no user {name!r}: 'tracker users list' lists them")
    change_password(store, name, read_password())
    click.echo(f"changed the password of {name!r}; their sessions have ended")
