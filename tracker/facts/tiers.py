"""From a design to the evidence tiers digests group papers by (tracker/ncbi/evidence.py's TIER_RULES), and the tier a
paper has on arrival.

New records arrive before NLM adds their publication types, so their tier from publication types alone is "other";
the design read from the abstract gives them a tier the faces mark "from the abstract" until a refetch brings
publication types that name one. Only the tier table is imported from tracker/ncbi/evidence.py: no network, no
database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from tracker.facts.model import StudyFacts
from tracker.ncbi.evidence import TIER_INDEX, classify

_TIER_OF_DESIGN = {
    "guideline": "guideline",
    "systematic review": "meta-analysis",
    "rct": "rct",
    "non-randomised trial": "clinical",
    "observational": "clinical",
    "review": "review",
    "case report": "case-report",
    "animal or laboratory": "other",
    "protocol": "other",
    "other": "other",
}


class FactsTier(NamedTuple):
    tier: str
    from_abstract: bool  # the tier came from the words of the abstract, not from publication types


def tier_of_design(design: str) -> str:
    """The evidence-tier key of a design ("other" for a design outside the schema's vocabulary)."""
    return _TIER_OF_DESIGN.get(design, "other")


def tier_of_facts(facts: StudyFacts) -> FactsTier:
    """The tier of the facts' design, and whether it was read from the abstract."""
    return FactsTier(tier_of_design(facts.design), facts.design_source == "abstract")


def arrival_tier(publication_types: Sequence[str], facts: StudyFacts) -> FactsTier:
    """The paper's evidence tier as it stands now: the tier its publication types name, unless they name none (a
    record NLM has not indexed yet, a PubMed-only record) or only a weaker, generic one ("Clinical Trial", a
    publisher's "Review", "Comparative Study") and the design read from the title and abstract names a stronger
    tier; then that tier, marked as read from the abstract.

    Only a design the text names counts (one read from words the pages can mark, `design_span`), not the guess
    the extractor makes when no word names one ("review" for a text with no data, "observational" for one with
    statistics). The extractor reads the text only where publication types do not decide the design
    (facts.design_source), so a record with "Randomized Controlled Trial" is never moved by its words, and a
    refetch that brings publication types naming the design replaces the tier read from the text."""
    typed = classify(publication_types)
    if facts.design_source == "abstract" and facts.design_span is not None:
        read = tier_of_design(facts.design)
        if TIER_INDEX[read] < TIER_INDEX[typed]:
            return FactsTier(read, True)
    return FactsTier(typed, False)
