"""`tracker screen list`, `tracker screen set`, `tracker screen import` and `tracker prisma`."""

from __future__ import annotations

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
)
from tracker.cli.output import echo_csv, echo_json, format_table, when
from tracker.text import PMID_MAX, parse_pmid, plural


class PmidType(click.ParamType):
    name = "PMID"

    def convert(self, value, param, ctx):
        pmid = parse_pmid(str(value))
        if pmid is None:
            self.fail(f"{value!r} is not a PMID (a whole number from 1 to {PMID_MAX:,}, such as 31415926)", param, ctx)
        return pmid


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


STAGE_OPTION = click.option("--stage", type=click.Choice(STAGES), default="title-abstract", show_default=True,
                            help="The screening stage: title and abstract, or the full text of the papers included "
                                 "there.")


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
@STAGE_OPTION
@common_options
def screen_list_command(slug, state, output_format, limit, reviewer, sort, stage):
    """A topic's papers with their screening state, reasons, each reviewer's decision and relevance, newest first."""
    from tracker.review.screening import list_screening, screening_record, what_is_left
    from tracker.review.states import Stage

    topics = load_all_topics()
    [topic] = load_selected_topics((slug,))
    store = current_store(readonly=True)
    rows = list_screening(store, topic, reviewer=current_reviewer(reviewer), state=state, limit=limit, topics=topics,
                          sort=sort, stage=Stage(stage))
    if output_format == "table":
        from tracker.review.relevance import ranking_status

        status = ranking_status(store, topic)
        if sort == "relevance":
            click.echo(f"{topic.slug}: {status.sentence}" + ("" if status.ranked else "; newest first meanwhile"),
                       err=True)
        if status.ranked and stage == Stage.TITLE_ABSTRACT:
            click.echo(f"{topic.slug}: {what_is_left(store, topic)}", err=True)
    records = [screening_record(row) for row in rows]
    if output_format == "json":
        echo_json(records)
    elif output_format == "csv":
        echo_csv(SCREEN_CSV_COLUMNS, ([record[name] for name in SCREEN_CSV_COLUMNS] for record in
                                      (flat_screening(record) for record in records)))
    elif not rows:
        at = " at full text" if stage == Stage.FULL_TEXT else ""
        click.echo(f"no papers of topic '{topic.slug}'{at}" + (f" are {state}" if state else
                                                              " yet: include papers by title and abstract first"
                                                              if stage == Stage.FULL_TEXT else " yet: run 'tracker fetch'"))
    else:
        from tracker.text import cut

        click.echo(format_table(["pmid", "state", "first seen", "year", "relevance", "decisions", "title"], [
            [str(record["pmid"]), record["state"], record["first_seen"][:10], str(record["year"] or ""),
             "" if record["relevance"] is None else f"{record['relevance']:.3f}",
             flat_screening(record)["reviewers"] or "-", cut(record["title"], 60)] for record in records]))


DECISION_FLAGS = (("include", "--include"), ("exclude", "--exclude"), ("maybe", "--maybe"),
                  ("not_retrieved", "--not-retrieved"))


@screen_group.command("set")
@click.argument("slug")
@click.argument("pmids", nargs=-1, required=True, type=PmidType(), metavar="PMID...")
@click.option("--include", is_flag=True, help="Include the papers.")
@click.option("--exclude", is_flag=True, help="Exclude the papers (give --reason; required at full text).")
@click.option("--maybe", is_flag=True, help="Not sure yet: look again later (title and abstract).")
@click.option("--not-retrieved", "not_retrieved", is_flag=True,
              help="With --stage full-text: the full text could not be had.")
@click.option("--reason", "reasons", multiple=True, metavar="TEXT",
              help="With --exclude: a reason of the topic, by name or number (repeat for several).")
@click.option("--note", default="", metavar="TEXT", help="A free note kept with the decision.")
@click.option("--reviewer", metavar="NAME", help="Who decides (default: $TRACKER_REVIEWER or the login name).")
@click.option("--resolve", is_flag=True, help="Settle a conflict between two reviewers with this decision.")
@STAGE_OPTION
@common_options
def screen_set_command(slug, pmids, include, exclude, maybe, not_retrieved, reasons, note, reviewer, resolve, stage):
    """Record a decision on papers of a topic: all of them, or none if one is not in the topic."""
    from tracker.review.relevance import refresh_quietly
    from tracker.review.screening import decide, rule_for
    from tracker.review.states import OPEN, Stage
    from tracker.store.decisions import summaries

    given = {"include": include, "exclude": exclude, "maybe": maybe, "not_retrieved": not_retrieved}
    chosen = [flag for name, flag in DECISION_FLAGS if given[name]]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} were both given: choose one decision; nothing was recorded"
                               if len(chosen) == 2 else
                               f"{', '.join(chosen)} were all given: choose one decision; nothing was recorded")
    if not chosen:
        raise click.UsageError("give the decision: --include, --exclude or --maybe (at full text: --include, "
                               "--exclude or --not-retrieved)")
    decision = chosen[0].removeprefix("--")
    [topic] = load_selected_topics((slug,))
    store = current_store()
    at = Stage(stage)
    saved = decide(store, topic, pmids, decision, reviewer=current_reviewer(reviewer), reasons=reasons, note=note,
                   resolve=resolve, stage=at)
    refresh_quietly(store, topic)  # once for all the papers of the command
    rows = summaries(store, topic.slug, [item.decision.pmid for item in saved], stage=at)
    rule = rule_for(store, topic, at)
    for item in saved:
        made, before = item.decision, item.replaced
        where = " at full text" if at == Stage.FULL_TEXT else ""
        line = f"{topic.slug} {made.pmid}: {made.decision}{where} by {made.reviewer}"
        if made.reasons:
            line += f" ({', '.join(made.reasons)})"
        if before is not None:
            line += f", replacing {before.decision} of {when(before.decided_at)} UTC"
        state = rule.state(rows.get(made.pmid))
        shown = "awaiting the other reviewer" if rule.blind and state in OPEN else state
        click.echo(f"{line}; now {shown}")


@screen_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--topic", "topic_slug", required=True, metavar="SLUG", help="The topic the decisions belong to.")
@click.option("--reviewer", metavar="NAME", help="Who decided, for rows without a reviewer column (default: "
                                                 "$TRACKER_REVIEWER or the login name).")
@click.option("--add-missing", is_flag=True, help="Fetch and link the papers the topic lacks first (without it such a row "
                                                  "is an error).")
@common_options
def screen_import_command(file, topic_slug, reviewer, add_missing):
    """Import decisions from a CSV or Excel file (pmid, decision, reason, note, reviewer; the tracker's own exports as
    they come out) or ASReview's export: all or nothing."""
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
    line = (f"{topic.slug}: {plural(result.imported, 'decision')} imported from {file.name} "
            f"({result.source}; by {', '.join(result.reviewers) or '-'})")
    if result.added:
        line += f"; {plural(result.added, 'paper')} fetched and added to the topic first"
    if result.unchanged:
        line += f"; {result.unchanged} already so, left as they were"
    if result.unlabelled:
        line += f"; {plural(result.unlabelled, 'row')} without a decision skipped"
    click.echo(line)


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
