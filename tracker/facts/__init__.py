"""Study facts from a paper's title and abstract: design, sample size, population, comparators, vasoactive-drug
doses and dose-finding results, each with the spans of the words it came from.

    extract_facts(title, abstract, publication_types=(), mesh_terms=()) -> StudyFacts
    facts_text(title, abstract) -> str          the one text every span points into: title + "\\n" + abstract
    StudyFacts.to_json() / StudyFacts.from_json(text) / StudyFacts.to_labels()
    tier_of_design(design) -> str               the evidence-tier key (tracker/evidence.py) of a design
    tier_of_facts(facts) -> FactsTier           (tier, from_abstract)
    summary_line(facts) -> str                  "Randomised trial · 110 patients · caesarean · norepinephrine ..."
    doses_text(facts) -> str                    "norepinephrine 2.5 µg/min infusion prophylactic; ..."
    export_cells(stored_json) -> (population, comparators, doses)   the CSV's cells, straight from to_json's text
    arrival_tier(publication_types, facts) -> FactsTier   a paper's tier now: its types', else its text's design
    design_label(design), population_label(population) -> str
    vasoactive_drug(name) -> str | None         "Noradrenaline" -> "norepinephrine" (VASOACTIVE: every drug dosed)
    EXTRACTOR_VERSION                           bumped whenever a rule changes

The vocabulary and units are those of the gold set's SCHEMA.md (../shared/study-facts/). Pure functions of the
standard library: rules written from how clinical abstracts state these things (CONSORT wording, dose notation),
with bounded, linear-time regular expressions so that any text, 100 kB of it included, is read in bounded time.

Why no library: quantulum3 (the one general quantity extractor on PyPI) read 3.5 records/s on the development
abstracts, did not know "μg" (Greek mu) or "[micro]g", averaged ranges ("4-30 µg/min" became 17) and read
"0.05–0.1 μg·kg⁻¹·min⁻¹" as "unk kilogram"; pint parses a unit string once it is cut out of the text (the
hard part) and took 196 µs a unit, reading "mg h−1" as milligram·hour and "units/min" as micronit/minute; the
hand grammar here reads thousands of records a second (benchmarks/facts.py gives the figures).
"""

from __future__ import annotations

from tracker.facts.extract import extract_facts
from tracker.facts.format import design_label, dose_text, doses_text, export_cells, population_label, summary_line
from tracker.facts.lexicon import VASOACTIVE, vasoactive_drug
from tracker.facts.model import (
    DESIGN_SOURCES,
    DESIGNS,
    EXTRACTOR_VERSION,
    MODES,
    POPULATIONS,
    ROLES,
    TIMINGS,
    Dose,
    DoseResult,
    Span,
    StudyFacts,
    Tagged,
    facts_text,
)
from tracker.facts.tiers import FactsTier, arrival_tier, tier_of_design, tier_of_facts

__all__ = [
    "DESIGN_SOURCES", "DESIGNS", "EXTRACTOR_VERSION", "MODES", "POPULATIONS", "ROLES", "TIMINGS", "Dose", "DoseResult",
    "FactsTier", "Span", "StudyFacts", "Tagged", "arrival_tier", "design_label", "dose_text", "doses_text", "export_cells",
    "extract_facts",
    "facts_text", "population_label", "summary_line", "tier_of_design", "tier_of_facts", "VASOACTIVE", "vasoactive_drug",
]
