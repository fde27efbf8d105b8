"""extract_facts: from a paper's title and abstract (and its publication types and MeSH terms when it has them)
to its StudyFacts. Pure: no network, no database, the same facts for the same words."""

from __future__ import annotations

from collections.abc import Sequence

from tracker.facts.comparators import read_comparators
from tracker.facts.design import design_from_publication_types, read_design
from tracker.facts.doses import doses_and_results
from tracker.facts.keywords import scan
from tracker.facts.lexicon import mentions
from tracker.facts.model import StudyFacts, facts_text
from tracker.facts.participants import read_sample_size
from tracker.facts.population import read_population
from tracker.facts.text import Document


def extract_facts(title: str | None, abstract: str | None, publication_types: Sequence[str] = (),
                  mesh_terms: Sequence[str] = ()) -> StudyFacts:
    """The facts a careful reader can state from the title and abstract; spans point into facts_text(title, abstract)."""
    title = title or ""
    document = Document(title, facts_text(title, abstract), scan)
    if not document.low.strip():
        typed = design_from_publication_types(publication_types)
        return StudyFacts(design=typed, design_source="publication type") if typed else StudyFacts()
    drugs = mentions(document)
    design = read_design(document, publication_types, mesh_terms)
    size = read_sample_size(document, design.design)
    doses, results = doses_and_results(document, drugs)
    return StudyFacts(
        design=design.design, design_source=design.source, design_span=design.span,
        sample_size=size.value if size else None, sample_size_span=size.span if size else None,
        population=tuple(read_population(document, design.design)),
        comparators=tuple(read_comparators(document, drugs, design.design)),
        doses=tuple(doses), results=tuple(results),
    )
