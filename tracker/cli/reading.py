"""`tracker status`, `tracker digest`, `tracker export` and `tracker search`."""

from __future__ import annotations

import sys
from datetime import date, datetime, timezone
from pathlib import Path

import click

from tracker.cli.base import (
    DATE,
    SCREENING_STATES,
    SORT_ORDERS,
    STAGES,
    Count,
    cli,
    common_options,
    current_reviewer,
    current_settings,
    current_store,
    load_all_topics,
    load_selected_topics,
    topic_scan,
)
from tracker.cli.output import check_output_format, echo_health, format_table, terminal_width, when
from tracker.text import plural


@cli.command()
@click.option("--limit", type=Count(), default=20, show_default=True, help="How many runs to show.")
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
        [str(run.id), run.topic, run.kind, when(run.started_at),
         f"{run.seconds:.1f}s" if run.seconds is not None else "-", run.status, str(run.new_papers),
         str(run.matched), str(run.requests),
         f"{run.window_start or 'start'}..{run.window_end}" if run.window_end else "-"] for run in view.runs]))
    for run in view.runs:
        if run.error:
            click.echo(f"run {run.id} ({run.topic}): {run.error}")
        for note in run.notes:
            click.echo(f"run {run.id} ({run.topic}): warning: {note}")


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
        period = f" since {since}" if since else ""
        click.echo(f"no status changes recorded{period}: each run checks the records PubMed modified")
        return
    for event in events:
        if event.included_alert:
            click.echo(f"!! {event.included_alert}: PMID {event.pmid} {cut(event.title or '(no title)', 60)}")
    click.echo(format_table(["detected (UTC)", "pmid", "change", "notice", "topics", "title"], [
        [when(event.detected_at), str(event.pmid), event.label, str(event.notice_pmid or "-"),
         ", ".join(event.topics) or "-", cut(event.title or "(no title)", 60)]
        for event in events]))


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
    """Write each topic's digest to reports/<slug>/<date>.md and .html (and its feed.xml), print it (--format) or write
    one file (-o)."""
    from tracker.outputs.digest import _SUFFIX_FORMATS, render_topic_digests, write_digest_file
    from tracker.outputs.reports import write_reports

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
        for path in write_reports(store, selected, current_settings(), since=since):
            click.echo(path)


@cli.command("export")
@click.argument("slugs", nargs=-1, metavar="[SLUG]...")
@click.option("--since", type=DATE, help="Only papers the selected topics first saw on or after this day (UTC).")
@click.option("--format", "output_format", type=click.Choice(["csv", "ris", "xlsx", "jsonl"]), default="csv",
              show_default=True,
              help="CSV (columns documented in tracker/outputs/export.py), RIS for Zotero, EndNote, Rayyan, Covidence, "
                   "an Excel workbook (needs -o FILE.xlsx), or JSON Lines: one object a line, the CSV's columns typed "
                   "and each paper's study facts.")
@click.option("--state", type=click.Choice(SCREENING_STATES),
              help="Only papers in this screening state in one of the topics (--state included: the included set; "
                   "with --stage full-text, the studies included).")
@click.option("--stage", type=click.Choice(STAGES), default="title-abstract", show_default=True,
              help="The screening stage --state is at: title and abstract, or full text (not-retrieved is a full-text "
                   "state).")
@click.option("--reviewer", metavar="NAME", help="Whose view of blind screening (default: $TRACKER_REVIEWER or the login "
                                                 "name): the other reviewer's decisions stay hidden until both decided.")
@click.option("--bom/--no-bom", default=None,
              help="Start the CSV with UTF-8's byte-order mark, which Excel needs to show accents (default: with -o "
                   "FILE, yes; on stdout, no).")
@click.option("--sort", type=click.Choice(SORT_ORDERS), default="newest", show_default=True,
              help="newest or oldest first seen first, strongest evidence first, or most relevant first (learned from "
                   "the topics' decisions).")
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE|-",
              help="Write to FILE (replaced only once complete) instead of stdout.")
@common_options
def export_command(slugs, since, output_format, state, stage, reviewer, bom, sort, output):
    """Export the papers of every topic (or the given ones), newest first seen first."""
    from tracker.files import OUTPUT_FILE_ADVICE, atomic_output
    from tracker.outputs.export import export_papers
    from tracker.review.states import Stage

    if state == "not-retrieved":
        stage = "full-text"

    if output != "-":
        check_output_format(output, output_format, {".csv": "csv", ".ris": "ris", ".xlsx": "xlsx", ".jsonl": "jsonl"})
    elif output_format == "xlsx":
        raise click.UsageError("an Excel workbook is a file, not text for a terminal: add -o FILE.xlsx")
    if bom is not None and output_format != "csv":
        raise click.UsageError("--bom and --no-bom go with CSV: leave them out for --format ris, xlsx or jsonl")
    selected = load_selected_topics(slugs)
    store = current_store(readonly=True)
    viewer = current_reviewer(reviewer) if any(topic.screening.blind for topic in selected) else None
    options = {"since": since, "fmt": output_format, "state": state, "sort": sort, "stage": Stage(stage),
               "reviewer": viewer}
    if output == "-":
        export_papers(store, selected, sys.stdout.buffer, bom=bool(bom), **options)
        return
    with atomic_output(output, advice=OUTPUT_FILE_ADVICE) as file:
        count = export_papers(store, selected, file, bom=bom is not False, **options)
    click.echo(f"exported {plural(count, 'paper')} to {output}", err=True)


@cli.command("search")
@click.argument("words", nargs=-1, required=True, metavar="TEXT...")
@click.option("--topic", "topic_slug", metavar="SLUG", help="Only this topic's papers.")
@click.option("--limit", type=Count(), default=20, show_default=True, help="How many papers to show.")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="csv has the export's columns; json adds the score.")
@common_options
def search_command(words, topic_slug, limit, output_format):
    """Full-text search of stored papers, best match first: several words are one query (septic shock: both words)."""
    from tracker.cli.output import echo_json, hits_json, hits_table
    from tracker.outputs.export import rows_for_pmids, write_csv
    from tracker.store.search import search_papers

    text = " ".join(words)
    if topic_slug:
        load_selected_topics((topic_slug,))
    store = current_store(readonly=True)
    hits = search_papers(store, text, topic=topic_slug, limit=limit)
    if not hits:
        click.echo(f"no stored papers match '{text}'", err=output_format != "table")
    if output_format == "csv":
        write_csv(rows_for_pmids(store, [hit.pmid for hit in hits], screened=load_all_topics()), sys.stdout.buffer)
    elif output_format == "json":
        echo_json(hits_json(hits))
    elif hits:
        click.echo(format_table(*hits_table(hits, width=terminal_width())))
