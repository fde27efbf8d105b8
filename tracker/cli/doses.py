"""`tracker doses`: the dose map of a topic (tracker/outputs/doses.py)."""

from __future__ import annotations

import io
import json
import sys

import click

from tracker.cli.base import SCREENING_STATES, cli, common_options, current_store, load_selected_topics
from tracker.cli.output import check_output_format, format_table
from tracker.text import cut

SUFFIXES = {".txt": "table", ".csv": "csv", ".json": "json", ".svg": "svg"}


@cli.command("doses")
@click.argument("slug")
@click.option("--drug", metavar="NAME", help="Only this drug's doses (any of its names: noradrenaline, levophed ...).")
@click.option("--state", type=click.Choice(SCREENING_STATES),
              help="Only papers in this screening state (--state included: a review's dose table).")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json", "svg"]), default="table",
              show_default=True, help="svg draws a dot plot per unit: dose on x, dot area by patients, colour by design.")
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE|-", help="Write to FILE instead of stdout.")
@common_options
def doses_command(slug, drug, state, output_format, output):
    """Every dose the topic's papers state, by drug, way of giving and unit, with each paper's design, N and timing."""
    from tracker.files import OUTPUT_FILE_ADVICE, write_output
    from tracker.outputs.doses import dose_json, dose_map, render_svg, write_dose_csv

    if output != "-":
        check_output_format(output, output_format, SUFFIXES)
    [topic] = load_selected_topics((slug,))
    doses = dose_map(current_store(readonly=True), topic, drug=drug, state=state)
    if output_format == "csv":
        buffer = io.BytesIO()
        write_dose_csv(doses, buffer)
        text = buffer.getvalue().decode("utf-8")
    elif output_format == "json":
        text = json.dumps(dose_json(doses), indent=2, ensure_ascii=False) + "\n"
    elif output_format == "svg":
        text = render_svg(doses)
    else:
        text = dose_table(doses)
    if output == "-":
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.flush()
    else:
        write_output(output, text, advice=OUTPUT_FILE_ADVICE)
        click.echo(f"wrote {output}: {doses.describe()}", err=True)


def dose_table(doses) -> str:
    """Each group under its heading ("norepinephrine · infusion · µg/min: 12 doses in 8 papers"), then its doses."""
    from tracker.facts import design_label
    from tracker.outputs.doses import no_doses

    if not doses.groups:
        return no_doses(doses) + "\n"
    blocks = [doses.describe()]
    for group in doses.groups:
        heading = f"{group.label} · {group.unit}: {len(group.points)} dose{'' if len(group.points) == 1 else 's'} in " \
                  f"{group.papers} paper{'' if group.papers == 1 else 's'}"
        rows = [[point.amount, point.timing, point.role, str(point.pmid), str(point.year or "-"),
                 design_label(point.design), f"{point.sample_size:,}" if point.sample_size else "-", cut(point.title, 60)]
                for point in group.points]
        blocks.append(heading + "\n" + format_table(["dose", "timing", "role", "pmid", "year", "design", "N", "title"],
                                                    rows))
    return "\n\n".join(blocks) + "\n"
