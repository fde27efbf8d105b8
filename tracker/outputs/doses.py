"""The dose map: every dose a topic's papers state (their study facts, tracker/facts), grouped by drug, then by way of
giving and unit (bolus µg; infusion µg/min; infusion µg/kg/min ...), each with its paper, design, sample size, timing
and role; as rows for a table or CSV, as JSON, and as an SVG of one dot plot per unit.

The dot plot: the dose on x (a log scale where the unit's doses span a decade or more, else linear from 0), a row
per drug and way of giving, a dot per stated dose (a range is a line from its low to its high end with the dot at its
middle), its area by the paper's sample size (hollow when the abstract states none), its colour by the paper's
design. Each dot links to its paper and names it in a tooltip. `render_svg` is a pure function of the map: the CLI
writes it (`tracker doses SLUG --format svg`) and the web app's Doses page shows it.

`tracker doses SLUG --state included` limits the map to the included papers: the dose table of a review.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from tracker.errors import ConfigError
from tracker.facts import DESIGNS, MODES, StudyFacts, design_label, vasoactive_drug
from tracker.facts.format import amount_text
from tracker.store import Store
from tracker.store.listing import PaperFilter, select_batches
from tracker.text import pubmed_url
from tracker.topics import Topic

FORMATS = ("table", "csv", "json", "svg")
CSV_COLUMNS = ("drug", "mode", "unit", "low", "high", "timing", "role", "pmid", "year", "design", "sample_size",
               "title", "text", "pubmed_url")
# Units in the order a reader expects them: amounts, then per weight, then rates.
UNIT_ORDER = ("µg", "mg", "U", "µg/kg", "mg/kg", "µg/min", "mg/min", "U/min", "µg/kg/min", "µg/h", "mg/h", "U/h",
              "µg/kg/h", "µg/mL", "mg/mL", "mL/h")
# Okabe and Ito's colour-blind-safe palette, a colour per design (tracker.facts.DESIGNS).
DESIGN_COLOURS = {
    "rct": "#0072B2", "systematic review": "#009E73", "non-randomised trial": "#E69F00", "observational": "#56B4E9",
    "case report": "#CC79A7", "guideline": "#D55E00", "review": "#7F7F7F", "animal or laboratory": "#A08A00",
    "protocol": "#332288", "other": "#B0B0B0",
}


@dataclass(frozen=True)
class DosePoint:
    """One stated dose, with the paper that states it."""

    pmid: int
    title: str
    year: int | None
    design: str
    sample_size: int | None
    drug: str
    low: float
    high: float
    unit: str
    mode: str
    timing: str
    role: str
    text: str  # the words of the abstract it was read from

    @property
    def amount(self) -> str:
        """"2.5 µg/min", "0.05–0.1 µg/kg/min"."""
        return _amount(self)

    @property
    def middle(self) -> float:
        return (self.low + self.high) / 2


@dataclass(frozen=True)
class DoseGroup:
    drug: str
    mode: str
    unit: str
    points: tuple[DosePoint, ...]

    @property
    def label(self) -> str:
        """"norepinephrine · infusion" (a way of giving the text leaves unsaid is left out)."""
        return self.drug if self.mode == "unspecified" else f"{self.drug} · {self.mode}"

    @property
    def papers(self) -> int:
        return len({point.pmid for point in self.points})


@dataclass(frozen=True)
class DoseMap:
    topic: Topic
    state: str | None  # the screening state the map is limited to (None: every paper of the topic)
    drug: str | None  # the one drug shown (None: every vasoactive drug)
    groups: tuple[DoseGroup, ...]

    @property
    def points(self) -> list[DosePoint]:
        return [point for group in self.groups for point in group.points]

    @property
    def papers(self) -> int:
        return len({point.pmid for point in self.points})

    @property
    def units(self) -> list[str]:
        return list(dict.fromkeys(group.unit for group in self.groups))

    def describe(self) -> str:
        """"14 stated doses in 6 papers of 'cesarean' (included papers; norepinephrine)"."""
        limits = [f"{self.state} papers" if self.state else "", self.drug or ""]
        said = "; ".join(limit for limit in limits if limit)
        doses = len(self.points)
        return (f"{doses} stated dose{'' if doses == 1 else 's'} in {self.papers} paper{'' if self.papers == 1 else 's'} "
                f"of '{self.topic.slug}'" + (f" ({said})" if said else ""))


def check_drug(name: str | None) -> str | None:
    """The generic name of the drug `name` (any of its names); a name that is no vasoactive drug is refused."""
    if name is None:
        return None
    found = vasoactive_drug(name)
    if found is None:
        from tracker.facts import VASOACTIVE

        raise ConfigError(f"{name!r} is not a vasoactive drug the study facts record doses of: use one of "
                          f"{', '.join(VASOACTIVE)}")
    return found


def dose_map(store: Store, topic: Topic, *, drug: str | None = None, state: str | None = None,
             reviewer: str | None = None) -> DoseMap:
    """Every dose stated by the papers of `topic` (in screening `state`, as `reviewer` may see it in blind screening,
    when given), of `drug` only when given, grouped by drug (norepinephrine first), way of giving and unit."""
    from tracker.outputs.export import selection_of

    drug = check_drug(drug)
    selection = selection_of(store, [topic], state=state, filters=PaperFilter(states_dose=True), reviewer=reviewer)
    points: list[DosePoint] = []
    for batch in select_batches(store, selection, ("pmid", "title", "pub_year", "design", "sample_size", "facts")):
        for row in batch:
            facts = StudyFacts.from_json(row.facts)
            points += [DosePoint(row.pmid, row.title, row.pub_year, row.design, row.sample_size, dose.drug, dose.low,
                                 dose.high, dose.unit, dose.mode, dose.timing, dose.role, dose.text)
                       for dose in facts.doses if drug is None or dose.drug == drug]
    groups: dict[tuple[str, str, str], list[DosePoint]] = {}
    for point in points:
        groups.setdefault((point.drug, point.mode, point.unit), []).append(point)
    ordered = sorted(groups, key=lambda key: (key[0] != "norepinephrine", key[0], _unit_rank(key[2]),
                                              MODES.index(key[1]) if key[1] in MODES else len(MODES)))
    return DoseMap(topic, state, drug, tuple(
        DoseGroup(*key, tuple(sorted(groups[key], key=lambda point: (point.low, point.high, point.pmid))))
        for key in ordered))


def _unit_rank(unit: str) -> int:
    return UNIT_ORDER.index(unit) if unit in UNIT_ORDER else len(UNIT_ORDER)


def _amount(point: DosePoint) -> str:
    from tracker.facts import Dose, Span

    return amount_text(Dose(point.drug, point.low, point.high, point.unit, point.mode, point.timing, point.role,
                            Span(0, 0), point.text))


# -- rows, CSV, JSON ------------------------------------------------------------------------------

def dose_rows(doses: DoseMap) -> list[dict]:
    """A row per stated dose, keyed by CSV_COLUMNS, group after group."""
    return [{"drug": point.drug, "mode": point.mode, "unit": point.unit, "low": _plain(point.low),
             "high": _plain(point.high), "timing": point.timing, "role": point.role, "pmid": point.pmid,
             "year": point.year, "design": point.design, "sample_size": point.sample_size, "title": point.title,
             "text": point.text, "pubmed_url": pubmed_url(point.pmid)} for point in doses.points]


def dose_json(doses: DoseMap) -> dict:
    return {
        "topic": doses.topic.slug, "state": doses.state, "drug": doses.drug, "papers": doses.papers,
        "groups": [{"drug": group.drug, "mode": group.mode, "unit": group.unit, "papers": group.papers,
                    "doses": [{name: value for name, value in row.items() if name not in ("drug", "mode", "unit")}
                              for row in dose_rows(DoseMap(doses.topic, doses.state, doses.drug, (group,)))]}
                   for group in doses.groups],
    }


def write_dose_csv(doses: DoseMap, file) -> int:
    from tracker.outputs.export import guarded, write_table

    return write_table(CSV_COLUMNS, (guarded([row[name] for name in CSV_COLUMNS]) for row in dose_rows(doses)), file)


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


# -- the SVG --------------------------------------------------------------------------------------

WIDTH = 760
LABEL_WIDTH = 200
PLOT_LEFT, PLOT_RIGHT = LABEL_WIDTH + 10, WIDTH - 30
ROW_HEIGHT = 34
MIN_RADIUS, MAX_RADIUS = 3.0, 13.0
FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\""


@dataclass(frozen=True)
class Scale:
    low: float
    high: float
    log: bool

    def x(self, value: float) -> float:
        if self.log:
            value = max(value, self.low)
            share = (math.log10(value) - math.log10(self.low)) / (math.log10(self.high) - math.log10(self.low))
        else:
            share = (value - self.low) / (self.high - self.low)
        return PLOT_LEFT + share * (PLOT_RIGHT - PLOT_LEFT)

    def middle(self, low: float, high: float) -> float:
        """Where a range's dot goes: its middle on this scale."""
        return math.sqrt(low * high) if self.log and low > 0 else (low + high) / 2

    def ticks(self) -> list[float]:
        if self.log:
            found: list[float] = []
            for power in range(math.floor(math.log10(self.low)), math.ceil(math.log10(self.high)) + 1):
                for leading in (1, 2, 5):
                    value = leading * 10.0 ** power
                    if self.low <= value * (1 + 1e-9) and value <= self.high * (1 + 1e-9):
                        found.append(value)
            decades = math.log10(self.high / self.low)
            return found if decades <= 3 else [value for value in found if _leading(value) == 1]
        spacing = _nice_step(self.high / 5)
        return [spacing * index for index in range(int(self.high / spacing + 1e-9) + 1)]


def scale_for(values: Sequence[float]) -> Scale:
    """A log scale where the positive values span a decade or more, else linear from 0 to a round number."""
    positive = [value for value in values if value > 0]
    if not positive:
        return Scale(0.0, 1.0, False)
    low, high = min(positive), max(positive)
    if high / low >= 10:
        return Scale(10.0 ** math.floor(math.log10(low)), 10.0 ** math.ceil(math.log10(high)), True)
    step = _nice_step(high * 1.1 / 5)
    return Scale(0.0, step * math.ceil(high * 1.1 / step), False)


def _nice_step(rough: float) -> float:
    power = 10.0 ** math.floor(math.log10(rough))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= rough)


def _leading(value: float) -> int:
    return int(round(value / 10.0 ** math.floor(math.log10(value))))


def _tick_text(value: float) -> str:
    return f"{value:g}" if value == 0 or value >= 1e-4 else f"{value:.1e}"


def radius(size: int | None, largest: int) -> float:
    """A dot's radius: its area grows with the sample size; unknown sizes get the smallest dot."""
    if size is None or size <= 0 or largest <= 0:
        return MIN_RADIUS
    return MIN_RADIUS + (MAX_RADIUS - MIN_RADIUS) * math.sqrt(min(size, largest) / largest)


def render_svg(doses: DoseMap, *, link: Callable[[int], str] = pubmed_url) -> str:
    """The dose map as one SVG document: a dot plot per unit (see the module docstring); `link(pmid)` is where a dot
    leads (PubMed, or the web app's paper page)."""
    parts: list[str] = []
    largest = max((point.sample_size or 0 for point in doses.points), default=0)
    y: float = 56
    title = f"Stated doses: {doses.topic.title}"
    summary = doses.describe()
    for unit in doses.units:
        groups = [group for group in doses.groups if group.unit == unit]
        scale = scale_for([value for group in groups for point in group.points for value in (point.low, point.high)])
        parts.append(f'<g class="panel" data-unit="{_attr(unit)}">')
        parts.append(f'<text x="10" y="{y + 4}" font-size="14" font-weight="600" {FONT}>{_text(unit)}'
                     f'<tspan font-weight="normal" fill="#5b6675">{" (log scale)" if scale.log else ""}</tspan></text>')
        top = y + 14
        bottom = top + ROW_HEIGHT * len(groups)
        for tick in scale.ticks():
            x = scale.x(tick)
            parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#e3e7ec"/>')
            parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" font-size="11" text-anchor="middle" fill="#5b6675" '
                         f'{FONT}>{_text(_tick_text(tick))}</text>')
        parts.append(f'<line x1="{PLOT_LEFT}" y1="{bottom}" x2="{PLOT_RIGHT}" y2="{bottom}" stroke="#8a93a0"/>')
        for index, group in enumerate(groups):
            middle = top + ROW_HEIGHT * index + ROW_HEIGHT / 2
            parts.append(f'<text x="10" y="{middle + 4:.1f}" font-size="12" {FONT}>{_text(group.label)}'
                         f'<tspan fill="#5b6675"> ({group.papers})</tspan></text>')
            for order, point in enumerate(group.points):
                parts.append(_dot(point, scale, middle + ((order % 5) - 2) * 3, largest, link))
        parts.append("</g>")
        y = bottom + 44
    if not doses.groups:
        parts.append(f'<text x="10" y="{y + 4}" font-size="13" fill="#5b6675" {FONT}>{_text(no_doses(doses))}</text>')
        y += 30
    legend, y = _legend(doses, largest, y)
    height = y + 10
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
            f'role="img" aria-labelledby="dose-map-title dose-map-desc">'
            f'<title id="dose-map-title">{_text(title)}</title>'
            f'<desc id="dose-map-desc">{_text(summary)}: one dot plot per unit, the dose on x, dot area by the '
            f'number of patients, colour by study design.</desc>'
            f'<rect width="100%" height="100%" fill="#ffffff"/>'
            f'<text x="10" y="22" font-size="16" font-weight="700" {FONT}>{_text(title)}</text>'
            f'<text x="10" y="40" font-size="12" fill="#5b6675" {FONT}>{_text(summary)}</text>'
            + "".join(parts) + legend + "</svg>\n")


def no_doses(doses: DoseMap) -> str:
    """"No included paper of this topic states a dose of vasopressin."": what an empty map says."""
    which = f"{doses.state} paper" if doses.state else "paper"
    return f"No {which} of this topic states a dose{f' of {doses.drug}' if doses.drug else ''}."


def _dot(point: DosePoint, scale: Scale, y: float, largest: int, link: Callable[[int], str]) -> str:
    colour = DESIGN_COLOURS.get(point.design, DESIGN_COLOURS["other"])
    size = radius(point.sample_size, largest)
    tip = (f"PMID {point.pmid}{f' ({point.year})' if point.year else ''}: {point.title} · {design_label(point.design)}"
           f"{f' · {point.sample_size:,} patients' if point.sample_size else ''} · {point.drug} {point.amount}"
           f"{'' if point.mode == 'unspecified' else ' ' + point.mode}"
           f"{'' if point.timing == 'unspecified' else ' ' + point.timing}{' (received)' if point.role == 'received' else ''}")
    shape = []
    if point.high > point.low:
        shape.append(f'<line x1="{scale.x(point.low):.1f}" y1="{y:.1f}" x2="{scale.x(point.high):.1f}" y2="{y:.1f}" '
                     f'stroke="{colour}" stroke-width="3" stroke-opacity="0.55" stroke-linecap="round"/>')
    fill = f'fill="{colour}" fill-opacity="0.7"' if point.sample_size else 'fill="#ffffff"'
    shape.append(f'<circle cx="{scale.x(scale.middle(point.low, point.high)):.1f}" cy="{y:.1f}" r="{size:.1f}" {fill} '
                 f'stroke="{colour}" stroke-width="1.5"/>')
    return (f'<a href="{_attr(link(point.pmid))}" class="dose" data-pmid="{point.pmid}">'
            f'<title>{_text(tip)}</title>{"".join(shape)}</a>')


def _legend(doses: DoseMap, largest: int, y: float) -> tuple[str, float]:
    designs = [design for design in DESIGNS if any(point.design == design for point in doses.points)]
    if not designs:
        return "", y
    parts = [f'<g class="legend"><text x="10" y="{y:.0f}" font-size="12" font-weight="600" {FONT}>Design</text>']
    x = 70.0
    for design in designs:
        label = design_label(design)
        parts.append(f'<circle cx="{x:.1f}" cy="{y - 4:.0f}" r="5" fill="{DESIGN_COLOURS[design]}" fill-opacity="0.7" '
                     f'stroke="{DESIGN_COLOURS[design]}"/><text x="{x + 9:.1f}" y="{y:.0f}" font-size="12" '
                     f'{FONT}>{_text(label)}</text>')
        x += 24 + 6.5 * len(label)
        if x > WIDTH - 120:
            x, y = 70.0, y + 18
    y += 30
    if largest:
        parts.append(f'<text x="10" y="{y:.0f}" font-size="12" font-weight="600" {FONT}>Patients</text>')
        x = 80.0
        for size in sorted({size for size in (10, 100, 1000, largest) if size <= largest}):
            r = radius(size, largest)
            parts.append(f'<circle cx="{x + r:.1f}" cy="{y - 4:.0f}" r="{r:.1f}" fill="#9aa3ad" fill-opacity="0.5" '
                         f'stroke="#6b7480"/><text x="{x + 2 * r + 5:.1f}" y="{y:.0f}" font-size="12" '
                         f'{FONT}>{size:,}</text>')
            x += 2 * r + 50
        parts.append(f'<circle cx="{x + MIN_RADIUS:.1f}" cy="{y - 4:.0f}" r="{MIN_RADIUS}" fill="#ffffff" '
                     f'stroke="#6b7480"/><text x="{x + 2 * MIN_RADIUS + 5:.1f}" y="{y:.0f}" font-size="12" '
                     f'{FONT}>not stated</text>')
        y += 2 * MAX_RADIUS
    parts.append("</g>")
    return "".join(parts), y


def _text(value: str) -> str:
    return escape(str(value), quote=False)


def _attr(value: str) -> str:
    return escape(str(value), quote=True)


__all__ = ["FORMATS", "CSV_COLUMNS", "DosePoint", "DoseGroup", "DoseMap", "dose_map", "check_drug",
           "dose_rows", "dose_json", "write_dose_csv", "render_svg", "no_doses", "scale_for", "Scale", "radius", "DESIGN_COLOURS",
           "UNIT_ORDER"]
