"""`tracker fetch`, `tracker run` (fetch, then write each topic's digest) and `tracker import`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tracker.cli.base import (
    DATE,
    cli,
    common_options,
    current_settings,
    current_store,
    load_selected_topics,
)
from tracker.cli.output import ProgressBar
from tracker.text import plural


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
@click.option("--since", type=DATE, help="Search from this create date instead of where the last run reached.")
@click.option("--full", is_flag=True, help="Repeat the backfill from the topic's 'since', whatever was searched before.")
@common_options
def fetch(slugs, since, full):
    """Fetch what is new for every topic (or the given ones)."""
    results = run_fetch(slugs, since=since, full=full)
    exit_if_unreachable(results)
    failed = [r for r in results if not r.succeeded]
    if failed:
        click.echo(f"error: {describe_failed(failed, results)}; what they stored is kept, and their next run searches "
                   "the same dates again: run 'tracker fetch' again later", err=True)
        sys.exit(1)


def describe_failed(failed, results) -> str:
    """"dosing failed", or "2 of 9 topics failed (dosing, sepsis)"."""
    names = ", ".join(result.topic for result in failed)
    if len(results) == 1:
        return f"{names} failed"
    return f"{len(failed)} of {len(results)} topics failed ({names})"


@cli.command("run")
@click.argument("slugs", nargs=-1, metavar="[SLUG]...")
@common_options
def run_command(slugs):
    """The main job: fetch every topic, then write each topic's digest to reports/<slug>/<date>.md and .html, and its
    Atom feed to reports/<slug>/feed.xml."""
    from tracker.outputs.reports import write_reports

    results = run_fetch(slugs)
    not_tried = {r.topic for r in results if r.not_tried}
    # A topic not tried ran nothing: a digest now would only repeat its last one and close its period early.
    selected = [topic for topic in load_selected_topics(slugs) if topic.slug not in not_tried]
    paths = write_reports(current_store(), selected, current_settings())
    click.echo(f"digests written to {current_settings().reports_dir}:")
    for path in paths:
        click.echo(f"  {path}")
    exit_if_unreachable(results)
    failed = [r for r in results if not r.succeeded]
    if failed:
        click.echo(f"error: {describe_failed(failed, results)}; their digests say so: run "
                   f"'tracker run {' '.join(r.topic for r in failed)}' again later", err=True)
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
    line = (f"{topic.slug}: {plural(result.pmids, 'PMID')} in {file.name}, {result.new_papers} new to the topic, "
            f"{result.fetched} fetched, {plural(result.requests, 'request')}")
    if result.missing:
        line += f"; {result.missing} not found in PubMed"
    click.echo(line)
