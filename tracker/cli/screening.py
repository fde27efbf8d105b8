"""`tracker screen list`, `tracker screen set`, `tracker screen import` and `tracker prisma`."""

from __future__ import annotations

from pathlib import Path

import click

from tracker.cli.base import (
    DATE,
    SCREENING_STATES,
    SORT_ORDERS,
    Count,
    cli,
    common_options,
    current_settings,
    current_store,
    load_all_topics,
    load_selected_topics,
)
from tracker.cli.output import echo_csv, echo_json, format_table, when
from tracker.text import PMID_MAX, parse_pmid


class PmidType(click.ParamType):
    name = "PMID"

    def convert(self, value, param, ctx):
        pmid = parse_pmid(str(value))
        if pmid is None:
            self.fail(f"{value!r} is not a PMID (a whole number from 1 to {PMID_MAX:,}, such as 31415926)", param, ctx)
        return pmid


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
@click.option("--limit", type=Count(), help="At most this many papers (newest first seen first).")
@click.option("--reviewer", metavar="NAME", help="Whose view, in blind screening (default: $TRACKER_REVIEWER or the "
                                                 "login name).")
@click.option("--sort", type=click.Choice(SORT_ORDERS), default="newest", show_default=True,
              help="newest or oldest first seen first, strongest evidence first, or most relevant first (learned from "
                   "the topic's decisions).")
@common_options
def screen_list_command(slug, state, output_format, limit, reviewer, sort):
    """A topic's papers with their screening state, reasons, each reviewer's decision and relevance, newest first."""
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
        echo_json(records)
    elif output_format == "csv":
        echo_csv(SCREEN_CSV_COLUMNS, ([record[name] for name in SCREEN_CSV_COLUMNS] for record in
                                      (flat_screening(record) for record in records)))
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
            line += f", replacing {before.decision} of {when(before.decided_at)} UTC"
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
