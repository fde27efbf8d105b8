"""The words the faces show: design and population labels, the one-line summary under a paper in a digest, and
the doses as one readable cell for CSV."""

from __future__ import annotations

import json

from tracker.facts.lexicon import NOREPINEPHRINE
from tracker.facts.model import Dose, StudyFacts

DESIGN_LABELS = {
    "rct": "Randomised trial",
    "non-randomised trial": "Non-randomised trial",
    "observational": "Observational study",
    "case report": "Case report",
    "systematic review": "Systematic review",
    "review": "Review",
    "guideline": "Guideline",
    "animal or laboratory": "Animal or laboratory study",
    "protocol": "Trial protocol",
    "other": "Other",
}
POPULATION_LABELS = {
    "cesarean": "caesarean",
    "elderly": "elderly",
    "sepsis": "sepsis",
    "cardiac surgery": "cardiac surgery",
    "non-cardiac surgery": "non-cardiac surgery",
    "critical care": "critical care",
    "pediatric": "children",
    "hepatorenal": "hepatorenal syndrome",
    "other": "other",
}
SEPARATOR = " · "


def design_label(design: str) -> str:
    return DESIGN_LABELS.get(design, design)


def population_label(population: str) -> str:
    return POPULATION_LABELS.get(population, population)


def amount_text(dose: Dose) -> str:
    """"2.5 µg/min", "0.05–0.1 µg/kg/min"."""
    return _amount(dose.low, dose.high, dose.unit)


def _amount(low: float, high: float, unit: str) -> str:
    low_text, high_text = _number(low), _number(high)
    return f"{low_text} {unit}" if low_text == high_text else f"{low_text}–{high_text} {unit}"


def dose_text(dose: Dose) -> str:
    """"norepinephrine 2.5 µg/min infusion prophylactic" (what is unspecified left out; "received" when reported)."""
    return _dose_words(dose.drug, dose.low, dose.high, dose.unit, dose.mode, dose.timing, dose.role)


def _dose_words(drug: str, low: float, high: float, unit: str, mode: str, timing: str, role: str) -> str:
    words = [drug, _amount(low, high, unit)]
    words += [word for word in (mode, timing) if word != "unspecified"]
    if role == "received":
        words.append("received")
    return " ".join(words)


def doses_text(facts: StudyFacts) -> str:
    """Every dose, "; " between them: the CSV column."""
    return "; ".join(dose_text(dose) for dose in facts.doses)


def export_cells(stored: str) -> tuple[str, str, str]:
    """The CSV's population, comparators and doses cells ("; "-separated) of facts stored as StudyFacts.to_json wrote
    them, read straight from the JSON: an export of 100,000 papers decodes each paper's facts, and building the
    StudyFacts value first cost four times as much (BENCHMARKS.md, facts)."""
    if not stored:
        return "", "", ""
    data = json.loads(stored)
    return ("; ".join(value for value, _spans in data["population"]),
            "; ".join(value for value, _spans in data["comparators"]),
            "; ".join(_dose_words(drug, low, high, unit, mode, timing, role)
                      for drug, low, high, unit, mode, timing, role, _span, _words in data["doses"]))


def summary_line(facts: StudyFacts) -> str:
    """"Randomised trial · 110 patients · caesarean · norepinephrine 2.5 µg/min infusion (prophylactic) vs
    phenylephrine 50 µg/min"; what is unknown is left out, and nothing known gives ""."""
    parts = []
    if facts.design_source != "none" and facts.design != "other":
        parts.append(design_label(facts.design))
    if facts.sample_size is not None:
        parts.append(f"{facts.sample_size:,} patient" + ("" if facts.sample_size == 1 else "s"))
    populations = [population_label(value) for value in facts.population_values if value != "other"]
    if populations:
        parts.append(", ".join(populations))
    treatment = _treatment(facts)
    if treatment:
        parts.append(treatment)
    return SEPARATOR.join(parts)


def _treatment(facts: StudyFacts) -> str:
    first_given = _first_doses(facts)
    comparators = facts.comparator_values
    lead = first_given.get(NOREPINEPHRINE)
    if lead is not None:
        head = f"{NOREPINEPHRINE} {amount_text(lead)}"
        details = [word for word in (lead.mode,) if word != "unspecified"]
        if details:
            head += " " + " ".join(details)
        if lead.timing != "unspecified":
            head += f" ({lead.timing})"
    elif comparators:
        head = NOREPINEPHRINE
    elif first_given:
        drug, dose = next(iter(first_given.items()))
        return f"{drug} {amount_text(dose)}"
    else:
        return ""
    if comparators:
        others = [f"{name} {amount_text(first_given[name])}" if name in first_given else name for name in comparators]
        head += " vs " + ", ".join(others)
    return head


def _first_doses(facts: StudyFacts) -> dict[str, Dose]:
    """Each drug's first dose, a dose given before one reported as received."""
    first: dict[str, Dose] = {}
    for role in ("given", "received"):
        for dose in facts.doses:
            if dose.role == role:
                first.setdefault(dose.drug, dose)
    return first


def _number(value: float) -> str:
    text = f"{value:.6g}"
    return text if "e" not in text else f"{value:f}".rstrip("0").rstrip(".")
