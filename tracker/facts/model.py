"""The StudyFacts value, its vocabulary and its two serialisations (a compact JSON column, the gold set's labels).

Every fact keeps the character spans of the words it came from, as [start, end) offsets into the single text
`facts_text(title, abstract)` = title + "\\n" + abstract (str indices, i.e. code points, in the text exactly as
given: no normalisation moves an offset). An offset below len(title) is in the title; an abstract offset is
`start - len(title) - 1`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Bump whenever a rule changes: the store re-extracts whatever an older version wrote.
EXTRACTOR_VERSION = 2

DESIGNS = ("rct", "non-randomised trial", "observational", "case report", "systematic review", "review", "guideline",
           "animal or laboratory", "protocol", "other")
POPULATIONS = ("cesarean", "elderly", "sepsis", "cardiac surgery", "non-cardiac surgery", "critical care", "pediatric",
               "hepatorenal", "other")
MODES = ("bolus", "infusion", "unspecified")
TIMINGS = ("prophylactic", "rescue", "unspecified")
ROLES = ("given", "received")
# Where the design came from: the record's publication types, the words of the title and abstract, or nowhere.
DESIGN_SOURCES = ("publication type", "abstract", "none")


def facts_text(title: str | None, abstract: str | None) -> str:
    """The one text every span points into: the title, a newline, the abstract (either may be empty)."""
    return f"{title or ''}\n{abstract or ''}"


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Tagged:
    """A value of a list field (a population, a comparator) and every place in the text that says it."""

    value: str
    spans: tuple[Span, ...] = ()


@dataclass(frozen=True)
class Dose:
    drug: str
    low: float
    high: float
    unit: str
    mode: str
    timing: str
    role: str
    span: Span
    text: str


@dataclass(frozen=True)
class DoseResult:
    """A dose-finding estimate (ED50, ED90, EC50 ...), which is a finding, not a dose given."""

    kind: str
    drug: str
    value: float
    unit: str
    span: Span
    text: str


@dataclass(frozen=True)
class StudyFacts:
    design: str = "other"
    design_source: str = "none"
    design_span: Span | None = None
    sample_size: int | None = None
    sample_size_span: Span | None = None
    population: tuple[Tagged, ...] = ()
    comparators: tuple[Tagged, ...] = ()
    doses: tuple[Dose, ...] = ()
    results: tuple[DoseResult, ...] = ()
    version: int = field(default=EXTRACTOR_VERSION)

    @property
    def is_empty(self) -> bool:
        return (self.design_source == "none" and self.sample_size is None and not self.population
                and not self.comparators and not self.doses and not self.results)

    @property
    def population_values(self) -> list[str]:
        return [item.value for item in self.population]

    @property
    def comparator_values(self) -> list[str]:
        return [item.value for item in self.comparators]

    def to_labels(self) -> dict[str, Any]:
        """The gold set's `labels` object (SCHEMA.md), without spans."""
        return {
            "design": self.design,
            "sample_size": self.sample_size,
            "population": self.population_values,
            "comparators": self.comparator_values,
            "doses": [{"drug": dose.drug, "low": _plain(dose.low), "high": _plain(dose.high), "unit": dose.unit,
                       "mode": dose.mode, "timing": dose.timing, "role": dose.role, "text": dose.text}
                      for dose in self.doses],
            "results": [{"kind": result.kind, "drug": result.drug, "value": _plain(result.value), "unit": result.unit}
                        for result in self.results],
        }

    def to_json(self) -> str:
        """Compact JSON for a database column; from_json reads it back to an equal value."""
        return json.dumps({
            "v": self.version,
            "design": [self.design, self.design_source, _span_out(self.design_span)],
            "n": [self.sample_size, _span_out(self.sample_size_span)],
            "population": [[item.value, [_span_out(span) for span in item.spans]] for item in self.population],
            "comparators": [[item.value, [_span_out(span) for span in item.spans]] for item in self.comparators],
            "doses": [[dose.drug, _plain(dose.low), _plain(dose.high), dose.unit, dose.mode, dose.timing, dose.role,
                       _span_out(dose.span), dose.text] for dose in self.doses],
            "results": [[result.kind, result.drug, _plain(result.value), result.unit, _span_out(result.span),
                         result.text] for result in self.results],
        }, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> StudyFacts:
        data = json.loads(text)
        design, source, design_span = data["design"]
        size, size_span = data["n"]
        return cls(
            design=design, design_source=source, design_span=_span_in(design_span),
            sample_size=size, sample_size_span=_span_in(size_span),
            population=tuple(Tagged(value, tuple(_required_span(span) for span in spans))
                             for value, spans in data["population"]),
            comparators=tuple(Tagged(value, tuple(_required_span(span) for span in spans))
                              for value, spans in data["comparators"]),
            doses=tuple(Dose(drug, float(low), float(high), unit, mode, timing, role, _required_span(span), words)
                        for drug, low, high, unit, mode, timing, role, span, words in data["doses"]),
            results=tuple(DoseResult(kind, drug, float(value), unit, _required_span(span), words)
                          for kind, drug, value, unit, span, words in data["results"]),
            version=data["v"],
        )


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _span_out(span: Span | None) -> list[int] | None:
    return None if span is None else [span.start, span.end]


def _span_in(value: list[int] | None) -> Span | None:
    return None if value is None else Span(value[0], value[1])


def _required_span(value: list[int]) -> Span:
    return Span(value[0], value[1])
