"""From a design to the evidence tiers digests group papers by (the keys of tracker/evidence.py's TIER_RULES).

New records arrive before NLM adds their publication types, so their tier from publication types alone is
"other"; the design read from the abstract gives them a tier the digest marks "from the abstract".
"""

from __future__ import annotations

from typing import NamedTuple

from tracker.facts.model import StudyFacts

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
