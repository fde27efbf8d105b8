"""What the study compares norepinephrine with: the other arms, never norepinephrine itself.

Only comparisons that the study makes count, read where an abstract states its arms:
  - the title: drugs joined by "versus", "vs", "compared with", "or", "and", "comparison of";
  - sentences about the study at hand (not Background sentences about earlier work: "it maintains a better heart
    rate compared with phenylephrine" says nothing of this study's arms) that compare ("versus", "compared with",
    "comparing X with Y", "superior/inferior to"), allocate ("randomised to receive either X or Y", "assigned to
    the NE or PE group"), name groups ("in the placebo group"), or list three or more drugs studied together;
  - within such a sentence, not the drugs of a clause that adds rescue or background treatment ("then
    vasopressin was added", "if additional vasopressor support was needed", "open-label vasopressors").
Designs that compare nothing (narrative reviews, guidelines, case reports) have none.
"""

from __future__ import annotations

import re

from tracker.facts.lexicon import NOREPINEPHRINE, Mention
from tracker.facts.model import Span, Tagged
from tracker.facts.text import Document

_COMPARING = re.compile(r"\b(?:versus|vs\.?|v\.|compared|comparing|comparison|comparative|superior|inferior|"
                        r"non-?inferior\w*|noninferior\w*|equivalen\w*|than|whereas|alternative to|replacement for|"
                        r"instead of|either|head-to-head)\b")
_ALLOCATING = re.compile(r"\b(?:randomi[sz]\w*|randomly|assigned|allocated|divided|received|receive|receiving|given|"
                         r"administered|groups?|arms?)\b")
_GROUP_AFTER = re.compile(r"\s{0,2}(?:\+\s{0,2}\w+\s{0,2})?(?:group|arm|infusion group|bolus group)s?\b")
# Clauses about treatment beside the arms: rescue and add-on drugs, what came before.
_ADDED_CLAUSE = re.compile(r"\b(?:added|add-on|additional|supplement\w*|rescue|open-label|background|before|prior|"
                           r"previous\w*|resistant|refractory|despite|plus|combined with|in combination|along with|"
                           r"together with|with or without|bradycardia)\b")
# ... and what was needed, which names an arm only when the sentence offers it as one ("or ephedrine as needed").
_NEEDED_CLAUSE = re.compile(r"\b(?:if needed|as needed|was needed|were needed|need for|required|requirements?|"
                            r"consumption)\b")
_TITLE_JOIN = re.compile(r"^\s{0,3}(?:\(\w{1,6}\)\s{0,2})?(?:,|and|or|versus|vs\.?|v\.|/|with|compared (?:with|to)|"
                         r"combined with|to|plus|\+)\s{1,3}(?:(?:an?|the)\s{1,2})?(?:(?:infusion|bolus|prophylactic|"
                         r"continuous)\s{1,2})?$")
# A sentence that says what one group was given: "In group 2, no prophylactic vasopressor was given".
_GROUP_SENTENCE = re.compile(r"\b(?:in|for) (?:group [a-z0-9]{1,3}|the (?:\w+ ){0,2}(?:group|arm))\b[^;]{0,20}?,|"
                             r"\bgroup [a-z0-9]{1,3}\s{0,2}(?:\(\w+\)\s{0,2})?(?:received|was given|were given|got)\b|"
                             r"\bthe (?:control|comparison) group\b")
GATES: dict[str, tuple[str, ...]] = {
    "comparators.comparing": ("versus", "vs", "v.", "compar", "superior", "inferior", "equivalen", "than", "whereas",
                              "alternative to", "replacement for", "instead of", "either", "head-to-head"),
    "comparators.allocating": ("random", "assigned", "allocated", "divided", "receiv", "given", "administered",
                               "group", "arm"),
    "comparators.group sentence": ("group", "arm"),
}
_NO_COMPARISON_DESIGNS = frozenset({"review", "guideline", "case report"})
_MAX_SPANS = 12


def read_comparators(document: Document, drugs: list[Mention], design: str) -> list[Tagged]:
    if design in _NO_COMPARISON_DESIGNS:
        return []
    low = document.low
    comparable = [mention for mention in drugs if mention.comparable]
    chosen: dict[str, list[Span]] = {}
    has_norepinephrine = any(mention.name == NOREPINEPHRINE for mention in comparable)
    if not has_norepinephrine:
        return []
    for index, sentence in enumerate(document.sentences):
        inside = [mention for mention in comparable if sentence.start <= mention.start < sentence.end]
        if not inside or (sentence.background and index != 0):
            continue
        names = {mention.name for mention in inside}
        picked: list[Mention] = []
        if index == 0:
            picked = _title_arms(low, inside)
        else:
            picked = _sentence_arms(document, sentence.start, sentence.end, inside, names)
        for mention in picked:
            if mention.name != NOREPINEPHRINE:
                chosen.setdefault(mention.name, []).append(Span(mention.start, mention.end))
    return [Tagged(name, tuple(spans[:_MAX_SPANS])) for name, spans in chosen.items()]


def _title_arms(low: str, inside: list[Mention]) -> list[Mention]:
    """Drugs chained to norepinephrine in the title by "versus", "or", "and", "compared with", ","."""
    chains: list[list[Mention]] = [[inside[0]]]
    for previous, mention in zip(inside, inside[1:], strict=False):
        if _TITLE_JOIN.match(low[previous.end:mention.start]):
            chains[-1].append(mention)
        else:
            chains.append([mention])
    picked: list[Mention] = []
    for chain in chains:
        if len({mention.name for mention in chain}) > 1 and any(m.name == NOREPINEPHRINE for m in chain):
            picked += chain
    return picked


def _sentence_arms(document: Document, start: int, end: int, inside: list[Mention], names: set[str]) -> list[Mention]:
    low = document.low
    comparing = document.search("comparators.comparing", _COMPARING, start, end)
    allocating = document.search("comparators.allocating", _ALLOCATING, start, end)
    vasoactive = {mention.name for mention in inside if mention.vasoactive}
    listed = len(vasoactive) >= 3 and NOREPINEPHRINE in vasoactive
    grouped = [mention for mention in inside if _GROUP_AFTER.match(low, mention.end)]
    if document.search("comparators.group sentence", _GROUP_SENTENCE, start, end):
        return [mention for mention in inside
                if not (_ADDED_CLAUSE.search(_clause(low, start, end, mention))
                        or _NEEDED_CLAUSE.search(_clause(low, start, end, mention)))
                or _GROUP_AFTER.match(low, mention.end)]
    if not (comparing or allocating or listed or grouped):
        return []
    if NOREPINEPHRINE not in names and not grouped and not (allocating and comparing):
        return []
    picked = []
    for mention in inside:
        clause = _clause(low, start, end, mention)
        alternative = bool(allocating) and _in_alternative(low, mention, inside, start)
        if (_ADDED_CLAUSE.search(clause) or (_NEEDED_CLAUSE.search(clause) and not alternative)) \
                and not _GROUP_AFTER.match(low, mention.end):
            continue
        if comparing or listed or _GROUP_AFTER.match(low, mention.end) or alternative:
            picked.append(mention)
    if len({mention.name for mention in picked}) < 2 and not any(m.name != NOREPINEPHRINE for m in grouped):
        if NOREPINEPHRINE not in {m.name for m in picked} and len(picked) == 1 and (comparing or allocating) \
                and NOREPINEPHRINE in names:
            return picked
        return [] if all(m.name == NOREPINEPHRINE for m in picked) else picked
    return picked


def _in_alternative(low: str, mention: Mention, inside: list[Mention], start: int) -> bool:
    """"either X or Y", "X or Y", "X (..) or Y (..)" in an allocation sentence."""
    before = low[max(start, mention.start - 60):mention.start]
    after = low[mention.end:mention.end + 60]
    return bool(re.search(r"\b(?:either|or|and|versus|vs)\s{1,2}(?:[\w-]+\s{1,2}){0,4}$", before)
                or re.match(r"^[^;]{0,50}?\b(?:or|versus|vs)\b", after))


def _clause(low: str, start: int, end: int, mention: Mention) -> str:
    """The words of the clause around a mention: from the last clause break before it to the next after it."""
    left = max(low.rfind(mark, start, mention.start) for mark in (",", ";", "(", " if ", " when ", " then "))
    left = start if left < 0 else left
    right_candidates = [position for position in (low.find(mark, mention.end, end) for mark in (",", ";", ")"))
                        if position >= 0]
    right = min(right_candidates) if right_candidates else end
    return low[left:right]
