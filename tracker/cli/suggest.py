"""`tracker suggest`: a topic's suggestions beyond its query (tracker/runs/suggest.py), listed, refreshed, added or
dismissed."""

from __future__ import annotations

import io
import json
import sys

import click

from tracker.cli.base import Count, cli, common_options, current_settings, current_store, load_selected_topics
from tracker.cli.output import format_table
from tracker.cli.screening import PmidType, current_reviewer

STATUSES = ("pending", "added", "dismissed")  # tracker.store.suggestions.STATUSES, without importing it for --help


@cli.command("suggest")
@click.argument("slug")
@click.argument("pmids", nargs=-1, type=PmidType(), metavar="[PMID]...")
@click.option("--add", "action", flag_value="add",
              help="Add the PMIDs to the topic: its suggestions as suggestions, any other paper by hand (fetched "
                   "first if needed); each is screened like the rest.")
@click.option("--dismiss", "action", flag_value="dismiss",
              help="Dismiss the suggested PMIDs: they are never suggested to this topic again.")
@click.option("--refresh", is_flag=True,
              help="Ask PubMed now for every included paper and seed, without a date limit (for a topic just set "
                   "up, or after a large import), then list.")
@click.option("--status", type=click.Choice(STATUSES), default="pending", show_default=True,
              help="List the suggestions still waiting, those added, or those dismissed.")
@click.option("--limit", type=Count(), help="At most this many suggestions, most relevant first.")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE|-", help="Write to FILE instead of stdout.")
@click.option("--reviewer", metavar="NAME", help="Who adds or dismisses (default: $TRACKER_REVIEWER or the login name).")
@common_options
def suggest_command(slug, pmids, action, refresh, status, limit, output_format, output, reviewer):
    """Papers PubMed links to a topic's included papers that its query misses: list (most relevant first), refresh,
    add or dismiss them."""
    if pmids and action is None:
        raise click.UsageError("PMIDs go with --add or --dismiss: 'tracker suggest SLUG --add PMID...'")
    if action is not None and not pmids:
        raise click.UsageError(f"--{action} needs the PMIDs: 'tracker suggest SLUG --{action} PMID...'")
    listing_only = ("--refresh", "--limit", "--format", "--status", "-o")
    if action is not None and (refresh or limit or output_format != "table" or status != "pending" or output != "-"):
        raise click.UsageError(f"--{action} cannot be combined with {', '.join(listing_only)}: add or dismiss first, "
                               "then list")
    [topic] = load_selected_topics((slug,))
    if action is not None:
        decide(topic, list(pmids), action, current_reviewer(reviewer))
        return
    if refresh and status != "pending":
        raise click.UsageError("--refresh lists the pending suggestions: leave out --status")
    if output != "-":
        from tracker.cli.output import check_output_format

        check_output_format(output, output_format, {".csv": "csv", ".json": "json", ".txt": "table"})
    if refresh:
        refresh_topic(topic)
    listing(topic, status, limit, output_format, output, refreshed=refresh)


def refresh_topic(topic) -> None:
    from tracker.ncbi.eutils import EutilsClient
    from tracker.runs.suggest import refresh_suggestions

    with EutilsClient(current_settings()) as client:
        found = refresh_suggestions(current_store(), client, topic)
    click.echo(f"{topic.slug}: {found.summary()}", err=True)


def decide(topic, pmids: list[int], action: str, reviewer: str) -> None:
    from tracker.review.relevance import refresh_quietly
    from tracker.runs.suggest import add_by_pmid, dismiss_suggestions
    from tracker.text import plural

    store = current_store()
    if action == "dismiss":
        dismiss_suggestions(store, topic, pmids, reviewer=reviewer)
        click.echo(f"{topic.slug}: {plural(len(pmids), 'suggestion')} dismissed by {reviewer}; never suggested to this "
                   "topic again")
        return
    from tracker.ncbi.eutils import EutilsClient

    with EutilsClient(current_settings()) as client:
        added = add_by_pmid(store, client, topic, pmids, reviewer=reviewer)
    refresh_quietly(store, topic)  # the new papers take their place in the screening order
    if added.suggested:
        click.echo(f"{topic.slug}: {plural(len(added.suggested), 'suggestion')} added by {reviewer} "
                   f"({', '.join(map(str, added.suggested))}); screen them with 'tracker screen list {topic.slug} "
                   "--state unscreened'")
    if added.by_hand:
        click.echo(f"{topic.slug}: {plural(len(added.by_hand), 'paper')} added by hand ({', '.join(map(str, added.by_hand))}): "
                   "not suggestions")
    if added.missing:
        click.echo(f"warning: PubMed did not return {', '.join(map(str, added.missing))}: check the PMIDs; "
                   "nothing was added for them", err=True)


def listing(topic, status: str, limit: int | None, output_format: str, output: str, *, refreshed: bool = False) -> None:
    from tracker.runs.suggest import SUGGESTION_COLUMNS, flat_record, list_suggestions, suggestion_record
    from tracker.text import cut

    found = list_suggestions(current_store(readonly=True), topic, limit=limit, status=status)
    records = [suggestion_record(view) for view in found.items]
    if output_format == "json":
        data = (json.dumps(records, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    elif output_format == "csv":
        from tracker.outputs.export import UTF8_BOM, guarded, write_table

        buffer = io.BytesIO()
        write_table(SUGGESTION_COLUMNS, (guarded(flat_record(record)) for record in records), buffer)
        data = (UTF8_BOM if output != "-" else b"") + buffer.getvalue()  # a file opened in Excel needs the BOM
    elif not records:
        hint = (f": they come after each run once it has included papers or seeds; 'tracker suggest {topic.slug} "
                "--refresh' asks now") if status == "pending" and not refreshed else ""
        data = f"no {status} suggestions for topic '{topic.slug}'{hint}\n".encode()
    else:
        rows = [[str(record["pmid"]), "" if record["relevance"] is None else f"{record['relevance']:.3f}",
                 str(record["year"] or ""), cut(record["first_author"] or "", 20), "; ".join(record["found_by"]),
                 cut(record["title"], 60)] for record in records]
        data = (format_table(["pmid", "relevance", "year", "first author", "found by", "title"], rows) + "\n"
                + f"{len(records)} of {found.total} {status} suggestions, most relevant first\n").encode("utf-8")
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    from tracker.files import OUTPUT_FILE_ADVICE, write_output

    write_output(output, data, advice=OUTPUT_FILE_ADVICE)
    click.echo(f"wrote {len(records)} suggestions to {output}", err=True)
