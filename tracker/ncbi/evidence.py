"""Evidence tiers: the strongest kind of study a paper's publication types name, strongest first.

Digests group new papers by tier (tracker/outputs/digest.py); the store keeps each paper's tier in an indexed column
(`paper.evidence_tier`, written with the paper) so that the web app filters and sorts a topic's papers by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class TierRule(NamedTuple):
    key: str
    label: str
    publication_types: frozenset[str]


# Strongest first; a paper goes into the first tier any of its publication types names. Phase I-IV trials
# sit with other clinical studies: NLM adds "Randomized Controlled Trial" to those that are randomized,
# which lifts them into the RCT tier.
TIER_RULES: tuple[TierRule, ...] = (
    TierRule("guideline", "Practice guidelines", frozenset({
        "Practice Guideline", "Guideline", "Consensus Development Conference",
        "Consensus Development Conference, NIH"})),
    TierRule("meta-analysis", "Meta-analyses and systematic reviews", frozenset({
        "Meta-Analysis", "Systematic Review", "Network Meta-Analysis"})),
    TierRule("rct", "Randomized controlled trials", frozenset({
        "Randomized Controlled Trial", "Randomized Controlled Trial, Veterinary", "Equivalence Trial",
        "Pragmatic Clinical Trial", "Adaptive Clinical Trial"})),
    TierRule("clinical", "Other clinical studies", frozenset({
        "Clinical Trial", "Clinical Trial, Phase I", "Clinical Trial, Phase II", "Clinical Trial, Phase III",
        "Clinical Trial, Phase IV", "Clinical Trial, Veterinary", "Controlled Clinical Trial", "Clinical Study",
        "Observational Study", "Observational Study, Veterinary", "Comparative Study", "Multicenter Study",
        "Evaluation Study", "Validation Study", "Twin Study"})),
    TierRule("review", "Reviews", frozenset({"Review", "Scoping Review", "Systematic Review"})),
    TierRule("case-report", "Case reports", frozenset({"Case Reports"})),
    TierRule("other", "Other", frozenset()),
)
TIER_INDEX = {rule.key: index for index, rule in enumerate(TIER_RULES)}
_TIER_BY_TYPE = {}
for _rule in reversed(TIER_RULES):
    _TIER_BY_TYPE.update({name.casefold(): _rule.key for name in _rule.publication_types})


def classify(publication_types: Sequence[str]) -> str:
    """The key of the strongest evidence tier the publication types name ("other" if none)."""
    tiers = [_TIER_BY_TYPE.get(name.strip().casefold()) for name in publication_types]
    return min((tier for tier in tiers if tier), key=TIER_INDEX.__getitem__, default="other")


def tier_label(key: str) -> str:
    return TIER_RULES[TIER_INDEX[key]].label if key in TIER_INDEX else key


__all__ = ["TierRule", "TIER_RULES", "TIER_INDEX", "classify", "tier_label"]
