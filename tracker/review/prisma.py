"""PRISMA 2020 counts of a topic's screening, both stages, with the reviewers' agreement, and its flow diagram
(`tracker prisma`).

What is counted (for the papers the topic first saw from `since` on, and its runs started since then):
- identified: the records PubMed listed in each of the topic's fetch, backfill and import runs (`matched`),
  with each run's own figures (its window's Count and what was new to the topic);
- duplicates: records a run listed that the topic already held from an earlier run (the windows overlap by
  a few days, and a backfill repeats what came before), removed before screening;
- records: the topic's distinct papers, all of them to screen by title and abstract; of them `from_other_topics`
  were already stored by another topic (fetched once, linked here);
- by title and abstract: excluded (each record once, under the first reason it was excluded for, or "(no reason
  given)"; further reasons are kept and counted apart as `excluded_also_given`), the reports sought (the records
  included), and those awaiting a decision (unscreened, awaiting a second reviewer, maybe, in conflict);
- at full text, for the reports sought: not retrieved, awaiting retrieval (no full-text decision yet), assessed
  (excluded, each once under its first reason; studies included; awaiting a full-text decision);
- studies included: at full text when the topic uses that stage, else by title and abstract (as before the
  stage existed); retracted among them;
- agreement at each stage: each reviewer's count of decisions, their agreement (percentage and Cohen's kappa, over
  the papers both decided, include against anything else) and the conflicts settled by a resolution;
- other methods: the papers that joined the topic from its suggestions beyond the query (tracker/runs/suggest.py),
  by PRISMA 2020's names: "similar articles" (PubMed's similar articles of an included paper or seed, whether or
  not a citation found it too) and "citation searching" (papers citing or cited by one); they are screened with
  the rest, so the records, screened and included figures count them too. The diagram draws them in PRISMA's
  second column, "Identification of studies via other methods" (`draw_other_methods`).

The counts add up: records = excluded + reports sought + awaiting a title/abstract decision; reports sought =
not retrieved + assessed + awaiting retrieval; reports assessed = reports excluded + studies included (at full
text) + awaiting a full-text decision; each stage's reasons add up to its excluded count (tests/test_prisma.py).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timezone
from typing import cast
from xml.sax.saxutils import escape

from tracker.review.screening import rule_for
from tracker.review.states import ScreeningRule, Stage, State
from tracker.store import Store
from tracker.store.changes import paper_statuses
from tracker.store.decisions import summaries
from tracker.store.membership import member_counts, shared_count, shared_since, topic_members
from tracker.store.runs import succeeded_runs
from tracker.store.suggestions import CITATION_SEARCHING, SIMILAR_ARTICLES, added_by_method
from tracker.text import format_utc, plural
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
class Agreement:
    """How two reviewers' decisions at one stage compare: what a review's methods section reports."""

    percent: float | None  # of the papers both decided, the share where both included or both did not (0-100)
    kappa: float | None  # Cohen's kappa over the same papers, include against anything else
    per_reviewer: dict[str, int]  # papers each reviewer decided (their current decisions)
    settled: int  # conflicts settled by a resolution
    both: int = 0  # papers both reviewers decided: what percent and kappa are over

    def as_json(self) -> dict:
        return {"percent": self.percent, "kappa": self.kappa, "per_reviewer": self.per_reviewer,
                "settled": self.settled, "both": self.both}


@dataclass(frozen=True)
class PrismaCounts:
    topic: str
    title: str
    since: str | None
    identified: int
    duplicates: int
    records: int
    from_other_topics: int
    screened: int  # records with a decision by title and abstract
    unscreened: int
    awaiting: int
    included: int  # studies included: at full text when the topic uses it, else by title and abstract
    excluded: int  # records excluded by title and abstract
    excluded_by_reason: dict[str, int]  # each excluded record under its first reason
    maybe: int
    conflicts: int
    retracted_included: int
    reviewers: int
    runs: tuple[RunFigures, ...]
    excluded_also_given: dict[str, int] = field(default_factory=dict)  # further reasons of the excluded records
    awaiting_title_abstract: int = 0  # records without a settled decision: unscreened, awaiting, maybe, conflict
    reports_sought: int = 0  # records included by title and abstract: their full text is sought
    reports_not_retrieved: int = 0
    awaiting_retrieval: int = 0  # reports sought without a full-text decision yet
    reports_assessed: int = 0
    reports_excluded: int = 0
    reports_excluded_by_reason: dict[str, int] = field(default_factory=dict)
    reports_also_given: dict[str, int] = field(default_factory=dict)
    awaiting_full_text: int = 0  # reports assessed without a settled full-text decision
    full_text: bool = False  # the topic screens full texts (it has a full-text decision)
    agreement: dict[str, Agreement] = field(default_factory=dict)  # by stage: "title_abstract", "full_text"
    left: str = ""  # what is likely left to find, while the topic is screened in relevance order
    # Papers identified via other methods, by method: {"similar articles": n, "citation searching": m}.
    other_methods: dict[str, int] = field(default_factory=lambda: {SIMILAR_ARTICLES: 0, CITATION_SEARCHING: 0})

    def as_json(self) -> dict:
        found = asdict(self)
        found["agreement"] = {stage: agreement.as_json() for stage, agreement in self.agreement.items()}
        return found


@dataclass(frozen=True)
class _Stage:
    states: dict[int, State]
    excluded_by_reason: dict[str, int]
    also_given: dict[str, int]
    agreement: Agreement


def prisma_counts(store: Store, topic: Topic, *, since: date | None = None) -> PrismaCounts:
    start = datetime.combine(since, time.min, timezone.utc) if since else None
    runs = succeeded_runs(store, topic.slug, COUNTED_RUNS, since=start)
    if start is None:
        # The whole topic: read its decisions, not its papers (every paper without a screening row is
        # unscreened), and the membership figures the store keeps (tracker/store/membership.py).
        records, from_other = member_counts(store, [topic.slug])[topic.slug], shared_count(store, topic.slug)
        pmids = None
    else:
        pmids = topic_members(store, topic.slug, since=start)
        records, from_other = len(pmids), shared_since(store, topic.slug, start)
    first = _stage(store, topic, rule_for(store, topic), pmids)
    states = Counter(first.states.values())
    states[State.UNSCREENED] = records - sum(count for name, count in states.items() if name != State.UNSCREENED)
    sought = sorted(pmid for pmid, state in first.states.items() if state == State.INCLUDED)
    later = _stage(store, topic, rule_for(store, topic, Stage.FULL_TEXT), sought)
    full_text = any(state != State.UNSCREENED for state in later.states.values())
    at_full_text = Counter(later.states.values())
    not_retrieved = at_full_text[State.NOT_RETRIEVED]
    waiting_retrieval = at_full_text[State.UNSCREENED]
    assessed = len(sought) - not_retrieved - waiting_retrieval
    waiting_full_text = sum(at_full_text[state] for state in (State.AWAITING, State.MAYBE, State.CONFLICT))
    included = ([pmid for pmid, state in later.states.items() if state == State.INCLUDED] if full_text else sought)
    from tracker.review.relevance import ranking_status
    from tracker.review.screening import what_is_left

    return PrismaCounts(
        topic=topic.slug, title=topic.title, since=since.isoformat() if since else None,
        identified=sum(run.matched for run in runs), duplicates=sum(max(0, run.matched - run.new_papers) for run in runs),
        records=records, from_other_topics=from_other,
        screened=records - states[State.UNSCREENED], unscreened=states[State.UNSCREENED], awaiting=states[State.AWAITING],
        included=len(included), excluded=states[State.EXCLUDED], excluded_by_reason=first.excluded_by_reason,
        maybe=states[State.MAYBE], conflicts=states[State.CONFLICT],
        retracted_included=sum(1 for status in paper_statuses(store, included).values() if status == "retracted"),
        reviewers=topic.screening.reviewers,
        runs=tuple(RunFigures(run=cast(int, run.id), started_at=format_utc(run.started_at), kind=run.kind,
                              count=run.count, listed=run.matched, new=run.new_papers) for run in runs),
        excluded_also_given=first.also_given,
        awaiting_title_abstract=records - states[State.EXCLUDED] - len(sought),
        reports_sought=len(sought), reports_not_retrieved=not_retrieved, awaiting_retrieval=waiting_retrieval,
        reports_assessed=assessed, reports_excluded=at_full_text[State.EXCLUDED],
        reports_excluded_by_reason=later.excluded_by_reason, reports_also_given=later.also_given,
        awaiting_full_text=waiting_full_text, full_text=full_text,
        agreement={"title_abstract": first.agreement, "full_text": later.agreement},
        other_methods=other_methods(store, topic, since=start),
        left=what_is_left(store, topic) if since is None and ranking_status(store, topic).ranked else "",
    )


def _stage(store: Store, topic: Topic, rule: ScreeningRule, pmids: Sequence[int] | None) -> _Stage:
    """The states at one stage of `pmids` (every paper with a decision there when None; the rest are unscreened),
    each excluded paper's first reason and the others, and the reviewers' agreement."""
    rows = summaries(store, topic.slug, pmids, stage=rule.stage)
    states = {pmid: rule.state(rows.get(pmid)) for pmid in (rows if pmids is None else pmids)}
    first: Counter[str] = Counter()
    also: Counter[str] = Counter()
    for pmid, state in states.items():
        if state == State.EXCLUDED:
            reasons = rule.reasons(rows.get(pmid)) or (NO_REASON,)
            first[reasons[0]] += 1
            also.update(reasons[1:])
    listed = topic.full_text_reasons if rule.stage == Stage.FULL_TEXT else topic.exclusion_reasons
    return _Stage(states, _ordered(first, listed), _ordered(also, listed), agreement(rule, list(rows.values())))


def _ordered(counts: Counter[str], listed: Sequence[str]) -> dict[str, int]:
    """Reasons in the topic's order, then "(no reason given)", then any other (a reason since removed from the file)."""
    ordered = {reason: counts[reason] for reason in (*listed, NO_REASON) if counts[reason]}
    ordered.update({reason: count for reason, count in sorted(counts.items()) if reason not in ordered})
    return ordered


def agreement(rule: ScreeningRule, rows: Sequence) -> Agreement:
    """The reviewers' agreement over the summaries of one stage (see Agreement)."""
    per_reviewer: Counter[str] = Counter()
    pairs: list[tuple[bool, bool]] = []
    settled = 0
    for row in rows:
        votes = rule.votes(row)
        per_reviewer.update(votes.keys())
        if rule.dual and len(votes) >= 2:
            first, second = (votes[name] for name in (rule.names or sorted(votes))[:2] if name in votes)
            pairs.append((first == "include", second == "include"))
            if row.resolution is not None and first != second:
                settled += 1
    if not pairs:
        return Agreement(None, None, dict(sorted(per_reviewer.items())), settled)
    agree = sum(a == b for a, b in pairs) / len(pairs)
    share_first = sum(a for a, _ in pairs) / len(pairs)
    share_second = sum(b for _, b in pairs) / len(pairs)
    chance = share_first * share_second + (1 - share_first) * (1 - share_second)
    kappa = None if chance == 1 else round((agree - chance) / (1 - chance), 3)
    return Agreement(round(100 * agree, 1), kappa, dict(sorted(per_reviewer.items())), settled, len(pairs))


def other_methods(store: Store, topic: Topic, *, since: datetime | None = None) -> dict[str, int]:
    """The papers that joined the topic from its suggestions (at `since` or later), by PRISMA's other method."""
    return added_by_method(store, topic.slug, since=since)


# -- text, JSON, CSV -------------------------------------------------------------------------

def render_text(counts: PrismaCounts) -> str:
    period = f" since {counts.since}" if counts.since else ""
    lines = [
        f"PRISMA flow for topic '{counts.topic}' ({counts.title}){period}",
        f"identified in PubMed: {counts.identified} records in {plural(len(counts.runs), 'run')} of the saved query",
        f"  already held from an earlier run (removed before screening): {counts.duplicates}",
        f"records: {counts.records} ({counts.from_other_topics} also in another topic)",
        f"screened: {counts.screened}; not yet screened: {counts.unscreened}",
        f"  excluded: {counts.excluded}",
        *[f"    {reason}: {number}" for reason, number in counts.excluded_by_reason.items()],
        *_also_given(counts.excluded_also_given),
        f"  maybe: {counts.maybe}",
    ]
    if counts.reviewers > 1:
        lines += [f"  awaiting the second reviewer: {counts.awaiting}", f"  in conflict: {counts.conflicts}"]
    if counts.full_text:
        lines += [
            f"reports sought for retrieval (included by title and abstract): {counts.reports_sought}",
            f"  not retrieved: {counts.reports_not_retrieved}",
            f"  awaiting retrieval: {counts.awaiting_retrieval}",
            f"reports assessed for eligibility: {counts.reports_assessed}",
            f"  excluded: {counts.reports_excluded}",
            *[f"    {reason}: {number}" for reason, number in counts.reports_excluded_by_reason.items()],
            *_also_given(counts.reports_also_given),
            f"  awaiting a full-text decision: {counts.awaiting_full_text}",
        ]
    lines.append(f"included: {counts.included}" + (f" ({counts.retracted_included} since retracted)"
                                                   if counts.retracted_included else ""))
    for stage, words in (("title_abstract", "title and abstract"), ("full_text", "full text")):
        found = counts.agreement.get(stage)
        if found is None or not found.per_reviewer or (stage == "full_text" and not counts.full_text):
            continue
        decided = ", ".join(f"{name} {number}" for name, number in found.per_reviewer.items())
        line = f"reviewers at {words}: {decided}"
        if found.percent is not None:
            kappa = "-" if found.kappa is None else f"{found.kappa:.2f}"
            line += (f"; agreement {found.percent:.1f} % (Cohen's kappa {kappa}) over {found.both} papers both "
                     f"decided; {found.settled} conflict{'' if found.settled == 1 else 's'} settled")
        lines.append(line)
    if counts.left:
        lines.append(f"what is left: {counts.left}")
    other = sum(counts.other_methods.values())
    if other:
        lines.insert(3, f"identified via other methods: {other} records added from the suggestions ("
                        + ", ".join(f"{method}: {number}" for method, number in counts.other_methods.items()) + ")")
    lines.append("runs:")
    lines += [f"  run {run.run} {run.started_at} {run.kind}: Count {run.count if run.count is not None else '-'}, "
              f"{run.listed} listed, {run.new} new" for run in counts.runs]
    return "\n".join(lines) + "\n"


def _also_given(also: dict[str, int]) -> list[str]:
    """The further reasons of the excluded records, apart (each record counts once above, under its first)."""
    if not also:
        return []
    return ["    also given (a record excluded for several reasons counts once above, under its first):",
            *[f"      {reason}: {number}" for reason, number in also.items()]]


def render_json(counts: PrismaCounts) -> str:
    return json.dumps(counts.as_json(), indent=2, ensure_ascii=False) + "\n"


def render_csv(counts: PrismaCounts) -> str:
    """One "measure,count" row per box of the diagram, then one per exclusion reason: for a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["measure", "count"])
    for name in ("identified", "duplicates", "records", "from_other_topics", "screened", "unscreened", "excluded",
                 "maybe", "awaiting", "conflicts", "awaiting_title_abstract", "reports_sought", "reports_not_retrieved",
                 "awaiting_retrieval", "reports_assessed", "reports_excluded", "awaiting_full_text", "included",
                 "retracted_included"):
        writer.writerow([name, getattr(counts, name)])
    for prefix, reasons in (("excluded", counts.excluded_by_reason), ("also given", counts.excluded_also_given),
                            ("reports excluded", counts.reports_excluded_by_reason),
                            ("reports also given", counts.reports_also_given)):
        for reason, number in reasons.items():
            writer.writerow([f"{prefix}: {reason}", number])
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
            f"{plural(len(counts.runs), 'run')} of the saved query"]
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
    screened = [f"Records screened (n = {counts.records})", "by title and abstract"]
    excluded = [f"Records excluded (n = {counts.excluded})"] + [
        f"{reason}: {number}" for reason, number in counts.excluded_by_reason.items()] + _also_lines(
        counts.excluded_also_given)
    left_height, right_height = box(_LEFT, y, screened), box(_RIGHT, y, excluded)
    arrow(_LEFT + _BOX, y + 20, _RIGHT, y + 20)
    y += max(left_height, right_height) + 20
    pending = [f"Awaiting a decision (n = {counts.awaiting_title_abstract})",
               f"not yet screened: {counts.unscreened}", f"maybe: {counts.maybe}"]
    if counts.reviewers > 1:
        pending += [f"Awaiting the second reviewer (n = {counts.awaiting})", f"In conflict (n = {counts.conflicts})"]
    pending_height = box(_RIGHT, y, pending, bold_first=False)
    arrow(_LEFT + _BOX // 2, y + 20, _RIGHT, y + 20)  # a branch of the line down to the next box
    y += pending_height + 40
    arrow(_LEFT + _BOX // 2, start + left_height, _LEFT + _BOX // 2, y)
    if counts.full_text:
        top = y
        sought = [f"Reports sought for retrieval (n = {counts.reports_sought})"]
        missing = [f"Reports not retrieved (n = {counts.reports_not_retrieved})",
                   f"awaiting retrieval: {counts.awaiting_retrieval}"]
        left_height, right_height = box(_LEFT, y, sought), box(_RIGHT, y, missing)
        arrow(_LEFT + _BOX, y + 20, _RIGHT, y + 20)
        y += max(left_height, right_height) + 40
        arrow(_LEFT + _BOX // 2, top + left_height, _LEFT + _BOX // 2, y)
        top = y
        assessed = [f"Reports assessed for eligibility (n = {counts.reports_assessed})",
                    f"awaiting a full-text decision: {counts.awaiting_full_text}"]
        reports_excluded = [f"Reports excluded (n = {counts.reports_excluded})"] + [
            f"{reason}: {number}" for reason, number in counts.reports_excluded_by_reason.items()] + _also_lines(
            counts.reports_also_given)
        left_height, right_height = box(_LEFT, y, assessed), box(_RIGHT, y, reports_excluded)
        arrow(_LEFT + _BOX, y + 20, _RIGHT, y + 20)
        y += max(left_height, right_height) + 40
        arrow(_LEFT + _BOX // 2, top + left_height, _LEFT + _BOX // 2, y)
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
            f'{escape(_note(counts))}'
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


def _also_lines(also: dict[str, int]) -> list[str]:
    if not also:
        return []
    return ["also given (counted above under a first reason):", *[f"{reason}: {number}" for reason, number in also.items()]]


def _note(counts: PrismaCounts) -> str:
    if counts.full_text:
        return f"Screening in tracker, topic {counts.topic}: titles and abstracts, then full texts."
    return f"Screening of titles and abstracts in tracker, topic {counts.topic}; full-text assessment not recorded."


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
