"""`tracker init`, `tracker topics` (with `--check` and `--check-query`) and `tracker query`."""

from __future__ import annotations

from pathlib import Path

import click

from tracker.cli.base import (
    DATE,
    Count,
    cli,
    common_options,
    current_settings,
    current_store,
    load_selected_topics,
    report_bad_files,
    topic_scan,
)
from tracker.cli.output import echo_health, format_table, when
from tracker.errors import ConfigError
from tracker.text import plural


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


@cli.command()
@click.option("--check", "check_slug", metavar="SLUG",
              help="Only ask PubMed how it reads this topic's query: translation, errors, warnings, Count "
                   "(one esearch; nothing is stored), then which words and MeSH terms the papers added from outside "
                   "the query share that it does not name.")
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
             when(summary.last_run.moment) if summary.last_run else ("never" if summary.topic else "-"),
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
    from tracker.store.database import holds_database

    if slug is not None and holds_database(current_settings().database_url):  # a check creates no database
        from tracker.review.gaps import query_gaps

        for line in query_gaps(current_store(readonly=True), topic, translation=result.query_translation).lines():
            click.echo(f"outside:     {line}")


@cli.command("query")
@click.argument("pubmed_query", metavar="QUERY")
@click.option("--since", type=DATE, help="Only records PubMed created on or after this day (default: all).")
@click.option("--limit", type=Count(), default=20, show_default=True,
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
    click.echo(f"showing {len(result.papers)} of {plural(result.count, 'match', 'matches')}; "
               f"{plural(result.new_papers, 'new paper')} stored, {plural(result.requests, 'request')}")
    if save_as is not None:
        topic = topic_from_query(save_as, query, since=since, title=title)
        save_topic_file(settings.queries_dir, topic)
        click.echo(f"saved as queries/{save_as}.toml, titled {topic.title!r} (edit the file to change it): "
                   f"run 'tracker run {save_as}' to track it")
