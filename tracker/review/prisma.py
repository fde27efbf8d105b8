"""PRISMA 2020 counts of a topic's screening, and its flow diagram (`tracker prisma`).

What is counted (for the papers the topic first saw from `since` on, and its runs started since then):
- identified: the records PubMed listed in each of the topic's fetch, backfill and import runs (`matched`),
  with each run's own figures (its window's Count and what was new to the topic);
- duplicates: records a run listed that the topic already held from an earlier run (the windows overlap by
  a few days, and a backfill repeats what came before), removed before screening;
- records: the topic's distinct papers; of them `from_other_topics` were already stored by another topic
  (fetched once, linked here);
- screened (at least one decision) and unscreened; the topic-level states: included, excluded (in all and
  per reason; a paper excluded for two reasons counts under both, one with none under "(no reason given)"),
  maybe, awaiting (dual screening: one of two has decided) and conflicts; retracted among the included.

- other methods: the papers that joined the topic from its suggestions beyond the query (tracker/runs/suggest.py),
  by PRISMA 2020's names: "similar articles" (PubMed's similar articles of an included paper or seed, whether or
  not a citation found it too) and "citation searching" (papers citing or cited by one); they are screened with
  the rest, so the records, screened and included figures count them too. The diagram draws them in PRISMA's
  second column, "Identification of studies via other methods" (`draw_other_methods`).

Screening here is at title and abstract; the diagram says so and leaves PRISMA's full-text boxes out.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timezone
from typing import cast
from xml.sax.saxutils import escape

from tracker.review.states import ScreeningRule, State
from tracker.store import Store
from tracker.store.changes import paper_statuses
from tracker.store.decisions import summaries
from tracker.store.membership import member_counts, shared_count, shared_since, topic_members
from tracker.store.runs import succeeded_runs
from tracker.store.suggestions import CITATION_SEARCHING, SIMILAR_ARTICLES, added_by_method
from tracker.text import format_utc
from tracker.topics import Topic

NO_REASON = "(no reason given)"
FORMATS = ("text", "json", "csv", "svg")
COUNTED_RUNS = ("fetch", "backfill", "import")


@dataclass(frozen=True)
class RunFigures:
    run: int
    started_at: str  # ISO 8601 UTC
    kind: str
    count: int | None  # PubMed's Count for the run's window
    listed: int  # PMIDs the run listed (matched)
    new: int  # papers new to the topic


@dataclass(frozen=True)
class PrismaCounts:
    topic: str
    title: str
    since: str | None
    identified: int
    duplicates: int
    records: int
    from_other_topics: int
    screened: int
    unscreened: int
    awaiting: int
    included: int
    excluded: int
    excluded_by_reason: dict[str, int]
    maybe: int
    conflicts: int
    retracted_included: int
    reviewers: int
    runs: tuple[RunFigures, ...]
    # Papers identified via other methods, by method: {"similar articles": n, "citation searching": m}.
    other_methods: dict[str, int] = field(default_factory=lambda: {SIMILAR_ARTICLES: 0, CITATION_SEARCHING: 0})

    def as_json(self) -> dict:
        return asdict(self)


def prisma_counts(store: Store, topic: Topic, *, since: date | None = None) -> PrismaCounts:
    start = datetime.combine(since, time.min, timezone.utc) if since else None
    reviewers, rule = topic.screening.reviewers, ScreeningRule.of(topic)
    runs = succeeded_runs(store, topic.slug, COUNTED_RUNS, since=start)
    if start is None:
        # The whole topic: read its decisions, not its papers (every paper without a screening row is
        # unscreened), and the membership figures the store keeps (tracker/store/membership.py).
        records, from_other = member_counts(store, [topic.slug])[topic.slug], shared_count(store, topic.slug)
        rows = summaries(store, topic.slug)
        state = {pmid: rule.state(row) for pmid, row in rows.items()}
        states = Counter(state.values())
        states[State.UNSCREENED] = records - sum(count for name, count in states.items() if name != State.UNSCREENED)
    else:
        pmids = topic_members(store, topic.slug, since=start)
        from_other = shared_since(store, topic.slug, start)
        rows = summaries(store, topic.slug, pmids)
        state = {pmid: rule.state(rows.get(pmid)) for pmid in pmids}
        states = Counter(state.values())
        records = len(pmids)
    reasons: Counter[str] = Counter()
    for pmid, found in state.items():
        if found == State.EXCLUDED:
            reasons.update(rule.reasons(rows.get(pmid)) or (NO_REASON,))
    ordered_reasons = {reason: reasons[reason] for reason in (*topic.exclusion_reasons, NO_REASON) if reasons[reason]}
    ordered_reasons.update({reason: count for reason, count in sorted(reasons.items()) if reason not in ordered_reasons})
    included = [pmid for pmid, found in state.items() if found == State.INCLUDED]
    return PrismaCounts(
        topic=topic.slug, title=topic.title, since=since.isoformat() if since else None,
        identified=sum(run.matched for run in runs), duplicates=sum(max(0, run.matched - run.new_papers) for run in runs),
        records=records, from_other_topics=from_other,
        screened=records - states[State.UNSCREENED], unscreened=states[State.UNSCREENED], awaiting=states[State.AWAITING],
        included=states[State.INCLUDED], excluded=states[State.EXCLUDED], excluded_by_reason=ordered_reasons,
        maybe=states[State.MAYBE], conflicts=states[State.CONFLICT],
        retracted_included=sum(1 for status in paper_statuses(store, included).values() if status == "retracted"),
        reviewers=reviewers,
        runs=tuple(RunFigures(run=cast(int, run.id), started_at=format_utc(run.started_at), kind=run.kind, count=run.count,
                              listed=run.matched, new=run.new_papers) for run in runs),
        other_methods=other_methods(store, topic, since=start),
    )


def other_methods(store: Store, topic: Topic, *, since: datetime | None = None) -> dict[str, int]:
    """The papers that joined the topic from its suggestions (at `since` or later), by PRISMA's other method."""
    return added_by_method(store, topic.slug, since=since)


# -- text, JSON, CSV -------------------------------------------------------------------------

def render_text(counts: PrismaCounts) -> str:
    period = f" since {counts.since}" if counts.since else ""
    lines = [
        f"PRISMA flow for topic '{counts.topic}' ({counts.title}){period}",
        f"identified in PubMed: {counts.identified} records in {len(counts.runs)} runs of the saved query",
        f"  already held from an earlier run (removed before screening): {counts.duplicates}",
        f"records: {counts.records} ({counts.from_other_topics} also in another topic)",
        f"screened: {counts.screened}; not yet screened: {counts.unscreened}",
        f"  excluded: {counts.excluded}",
        *[f"    {reason}: {number}" for reason, number in counts.excluded_by_reason.items()],
        f"  maybe: {counts.maybe}",
    ]
    if counts.reviewers > 1:
        lines += [f"  awaiting the second reviewer: {counts.awaiting}", f"  in conflict: {counts.conflicts}"]
    lines.append(f"included: {counts.included}" + (f" ({counts.retracted_included} since retracted)"
                                                   if counts.retracted_included else ""))
    other = sum(counts.other_methods.values())
    if other:
        lines.insert(3, f"identified via other methods: {other} records added from the suggestions ("
                        + ", ".join(f"{method}: {number}" for method, number in counts.other_methods.items()) + ")")
    lines.append("runs:")
    lines += [f"  run {run.run} {run.started_at} {run.kind}: Count {run.count if run.count is not None else '-'}, "
              f"{run.listed} listed, {run.new} new" for run in counts.runs]
    return "\n".join(lines) + "\n"


def render_json(counts: PrismaCounts) -> str:
    return json.dumps(counts.as_json(), indent=2, ensure_ascii=False) + "\n"


def render_csv(counts: PrismaCounts) -> str:
    """One "measure,count" row per box of the diagram, then one per exclusion reason: for a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["measure", "count"])
    for name in ("identified", "duplicates", "records", "from_other_topics", "screened", "unscreened", "excluded",
                 "maybe", "awaiting", "conflicts", "included", "retracted_included"):
        writer.writerow([name, getattr(counts, name)])
    for reason, number in counts.excluded_by_reason.items():
        writer.writerow([f"excluded: {reason}", number])
    for method, number in counts.other_methods.items():
        writer.writerow([f"other methods: {method}", number])
    return buffer.getvalue()


# -- the flow diagram ------------------------------------------------------------------------

_WIDTH = 820
_BOX = 340
_LEFT, _RIGHT = 70, 450
_OTHER = 830  # PRISMA's second column, "Identification of studies via other methods", drawn when it found any
_WIDE = 1200
_LINE = 18
_FONT = "Arial, Helvetica, sans-serif"


def render_svg(counts: PrismaCounts) -> str:
    """The PRISMA 2020 flow diagram (identification, screening, included) as plain SVG 1.1: boxes, text and
    arrows only, no CSS or scripts, so that browsers and word processors (Word, LibreOffice) show it alike."""
    parts: list[str] = []
    y = 70
    phases = []

    def box(x: int, top: int, lines: list[str], *, bold_first: bool = True) -> int:
        height = 16 + _LINE * len(lines)
        parts.append(f'<rect x="{x}" y="{top}" width="{_BOX}" height="{height}" fill="#ffffff" stroke="#333333" '
                     'stroke-width="1.5"/>')
        for index, text in enumerate(lines):
            weight = ' font-weight="bold"' if bold_first and index == 0 else ""
            parts.append(f'<text x="{x + 12}" y="{top + 22 + _LINE * index}" font-family="{_FONT}" font-size="13"'
                         f'{weight} fill="#111111">{escape(text)}</text>')
        return height

    def arrow(x1: int, y1: int, x2: int, y2: int) -> None:
        parts.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#333333" stroke-width="1.5" '
                     'marker-end="url(#arrow)"/>')

    start = y
    left = [f"Records identified from PubMed (n = {counts.identified})",
            f"{len(counts.runs)} runs of the saved query"]
    right = ["Records removed before screening:", f"Duplicate records (n = {counts.duplicates})",
             "(already held from an earlier run)"]
    left_height, right_height = box(_LEFT, y, left), box(_RIGHT, y, right)
    arrow(_LEFT + _BOX, y + left_height // 2, _RIGHT, y + left_height // 2)
    other_height = draw_other_methods(parts, counts, y) if sum(counts.other_methods.values()) else 0
    y += max(left_height, right_height, other_height) + 40
    arrow(_LEFT + _BOX // 2, y - 40, _LEFT + _BOX // 2, y)
    if other_height:
        # Into the screening the other records share, through the gap above it (no box stands in the way there).
        join = _LEFT + _BOX * 3 // 4
        parts.append(f'<polyline points="{_OTHER + _BOX // 2},{start + other_height} {_OTHER + _BOX // 2},{y - 20} '
                     f'{join},{y - 20} {join},{y}" fill="none" stroke="#333333" stroke-width="1.5" '
                     'marker-end="url(#arrow)"/>')
    phases.append(("Identification", start, y - 20))

    start = y
    screened = [f"Records screened (n = {counts.screened})", "title and abstract"]
    if counts.unscreened:
        screened.append(f"not yet screened: {counts.unscreened}")
    excluded = [f"Records excluded (n = {counts.excluded})"] + [
        f"{reason}: {number}" for reason, number in counts.excluded_by_reason.items()]
    left_height, right_height = box(_LEFT, y, screened), box(_RIGHT, y, excluded)
    arrow(_LEFT + _BOX, y + 20, _RIGHT, y + 20)
    y += max(left_height, right_height) + 20
    pending = [f"Maybe (n = {counts.maybe})"]
    if counts.reviewers > 1:
        pending += [f"Awaiting the second reviewer (n = {counts.awaiting})", f"In conflict (n = {counts.conflicts})"]
    pending_height = box(_RIGHT, y, pending, bold_first=False)
    arrow(_LEFT + _BOX // 2, y + 20, _RIGHT, y + 20)  # a branch of the line down to the included studies
    y += pending_height + 40
    arrow(_LEFT + _BOX // 2, start + left_height, _LEFT + _BOX // 2, y)
    phases.append(("Screening", start, y - 20))

    start = y
    included = [f"Studies included (n = {counts.included})"]
    if counts.retracted_included:
        included.append(f"of which retracted since: {counts.retracted_included}")
    y += box(_LEFT, y, included) + 20
    phases.append(("Included", start, y - 20))
    y = max(y, (start + y - 20) // 2 + (8 * len("Included") + 24) // 2 + 20)  # room for the phase's label

    for label, top, bottom in phases:
        # The rotated label needs about 8 px a letter: a short phase's bar grows around its middle.
        needed = 8 * len(label) + 24
        if bottom - top < needed:
            middle = (top + bottom) // 2
            top, bottom = middle - needed // 2, middle + needed // 2
        middle = (top + bottom) // 2
        parts.append(f'<rect x="14" y="{top}" width="34" height="{bottom - top}" fill="#dce6f2" stroke="#8aa4c8"/>')
        parts.append(f'<text x="31" y="{middle}" font-family="{_FONT}" font-size="13" font-weight="bold" '
                     f'fill="#1f3b63" text-anchor="middle" transform="rotate(-90 31 {middle})">{escape(label)}</text>')
    since = f" since {counts.since}" if counts.since else ""
    header = (f'<text x="{_LEFT}" y="34" font-family="{_FONT}" font-size="16" font-weight="bold" fill="#111111">'
              f'{escape(f"PRISMA 2020 flow diagram: {counts.title}{since}")}</text>')
    note = (f'<text x="{_LEFT}" y="{y + 10}" font-family="{_FONT}" font-size="11" fill="#555555">'
            f'{escape(f"Screening of titles and abstracts in tracker, topic {counts.topic}; full-text assessment not recorded.")}'
            "</text>")
    height = y + 30
    width = _WIDE if sum(counts.other_methods.values()) else _WIDTH
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">\n'
            f'<title>{escape(f"PRISMA flow diagram: {counts.title}")}</title>\n'
            '<defs><marker id="arrow" markerWidth="10" markerHeight="10" refX="9" refY="5" orient="auto">'
            '<path d="M0,0 L10,5 L0,10 z" fill="#333333"/></marker></defs>\n'
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>\n'
            + header + "\n" + "\n".join(parts) + "\n" + note + "\n</svg>\n")


def draw_other_methods(parts: list[str], counts: PrismaCounts, top: int) -> int:
    """PRISMA 2020's second column beside the identification row: its heading and the records the topic's
    suggestions brought, by method; appends the SVG to `parts` and returns the box's height."""
    parts.append(f'<text x="{_OTHER}" y="{top - 10}" font-family="{_FONT}" font-size="13" font-weight="bold" '
                 f'fill="#1f3b63">Identification of studies via other methods</text>')
    lines = ["Records identified from:", *(f"{method.capitalize()} (n = {number})"
                                           for method, number in counts.other_methods.items()),
             "(PubMed's links to included papers)"]
    height = 16 + _LINE * len(lines)
    parts.append(f'<rect x="{_OTHER}" y="{top}" width="{_BOX}" height="{height}" fill="#ffffff" stroke="#333333" '
                 'stroke-width="1.5"/>')
    for index, text in enumerate(lines):
        weight = ' font-weight="bold"' if index == 0 else ""
        parts.append(f'<text x="{_OTHER + 12}" y="{top + 22 + _LINE * index}" font-family="{_FONT}" font-size="13"'
                     f'{weight} fill="#111111">{escape(text)}</text>')
    return height


def render(counts: PrismaCounts, fmt: str) -> str:
    return {"text": render_text, "json": render_json, "csv": render_csv, "svg": render_svg}[fmt](counts)


__all__ = ["PrismaCounts", "RunFigures", "prisma_counts", "other_methods", "render", "render_text", "render_json",
           "render_csv", "render_svg", "draw_other_methods", "FORMATS", "NO_REASON"]
