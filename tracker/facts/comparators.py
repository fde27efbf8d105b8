"""What the study compares norepinephrine with: the other arms, never norepinephrine itself.

Only comparisons that the study makes count, read where an abstract states its arms:
  - the title: drugs joined by "versus", "vs", "compared with", "or", "and", "comparison of";
  - sentences about the study at hand (not Background sentences about earlier work: "it maintains a better heart
    rate compared with phenylephrine" says nothing of this study's arms) that compare ("versus", "compared with",
    "comparing X with Y", "superior/inferior to"), allocate ("randomised to receive either X or Y", "assigned to
    the NE or PE group"), name groups ("in the placebo group"), or list three or more drugs studied together;
  - within such a sentence, not the drugs of a clause that adds rescue or background treatment ("then
    vasopressin was added", "if additional vasopressor support was needed", "open-label vasopressors"), nor what
    every arm adds ("X plus albumin or Y plus albumin"); an arm's own combination ("midodrine and octreotide plus
    albumin") is an arm, and so is a group defined by a need ("patients who required dopamine were compared ...");
  - arms a sentence allocates without naming norepinephrine ("randomised to ondansetron or saline") when the text
    names norepinephrine elsewhere.
Designs that compare nothing (narrative reviews, guidelines, case reports) have none; in observational studies a
list of drugs ("phenylephrine, ephedrine and norepinephrine were used") says what was used, not what was compared.
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
# Clauses about treatment beside the arms: rescue and add-on drugs, what came before the study. (An arm's own
# combination, "terlipressin plus albumin", is an arm: see _COMMON_ADDITION for what every arm shares.)
_ADDED_CLAUSE = re.compile(r"\b(?:added|add-on|additional|supplement\w*|rescue|open-label|background|"
                           r"(?:before|prior to) (?:randomi[sz]\w*|inclusion|enrol\w*|study entry|the study)|"
                           r"previous\w*|resistant|refractory|despite|with or without|bradycardia)\b")
# "patients who required dopamine were compared with those who required norepinephrine": a need that defines a group.
_GROUP_DEFINED = re.compile(r"\b(?:who|those|patients|children|adults|women|subjects)\s{1,2}(?:\w+\s{1,2})?"
                            r"(?:required|requiring|needed|needing|received|receiving|treated with|given)\s{1,2}"
                            r"(?:[\w-]+\s{1,2}){0,2}$")
# "X plus albumin vs Y plus albumin": what follows "plus" in more than one arm is common to them, no comparator.
_ADDITION_BEFORE = re.compile(r"(?:\bplus|\+|\bwith|\bcombined with|\bin combination with|\band)\s{1,2}(?:\w+\s{1,2})?$")
# ... and what was needed, which names an arm only when the sentence offers it as one ("or ephedrine as needed").
_NEEDED_CLAUSE = re.compile(r"\b(?:if needed|as needed|was needed|were needed|need for|required|requirements?|"
                            r"consumption|(?:when|whenever|if)\s(?:the\s)?(?:\w+\s)?(?:sbp|systolic|map|mean arterial|"
                            r"blood pressure|bp|arterial pressure|hypotension)|for hypotension|to treat hypotension)\b")
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
    # A list of drugs is a comparison in a trial; in a survey or a cohort it says what was used.
    may_list = design not in ("observational", "other")
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
            # Joined through what an arm adds ("terlipressin plus albumin versus norepinephrine plus albumin").
            substances = [mention for mention in drugs if sentence.start <= mention.start < sentence.end
                          and (mention.comparable or mention.substance)]
            common = _common_additions(low, substances, 0)
            picked = [mention for mention in _title_arms(low, substances)
                      if mention.comparable and mention.name not in common]
        else:
            picked = _sentence_arms(document, sentence.start, sentence.end, inside, names, may_list)
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


def _sentence_arms(document: Document, start: int, end: int, inside: list[Mention], names: set[str],
                   may_list: bool) -> list[Mention]:
    low = document.low
    comparing = document.search("comparators.comparing", _COMPARING, start, end)
    allocating = document.search("comparators.allocating", _ALLOCATING, start, end)
    vasoactive = {mention.name for mention in inside if mention.vasoactive}
    listed = may_list and len(vasoactive) >= 3 and NOREPINEPHRINE in vasoactive
    grouped = [mention for mention in inside if _GROUP_AFTER.match(low, mention.end)]
    common = _common_additions(low, inside, start)
    inside = [mention for mention in inside if mention.name not in common]
    if document.search("comparators.group sentence", _GROUP_SENTENCE, start, end):
        return [mention for mention in inside
                if not (_ADDED_CLAUSE.search(_clause(low, start, end, mention))
                        or _NEEDED_CLAUSE.search(_clause(low, start, end, mention)))
                or _GROUP_AFTER.match(low, mention.end)]
    if not (comparing or allocating or listed or grouped):
        return []
    randomising = bool(_RANDOMISING.search(low, start, end))
    if NOREPINEPHRINE not in names and not grouped and not (allocating and comparing) and not (
            randomising and any(_in_alternative(low, mention, inside, start) for mention in inside)):
        return []  # arms named without norepinephrine count only where the sentence allocates them
    picked = []
    for mention in inside:
        clause = _clause(low, start, end, mention)
        alternative = bool(allocating) and _in_alternative(low, mention, inside, start)
        needed = _NEEDED_CLAUSE.search(clause) and not (alternative and randomising) and \
            not _joined_to_norepinephrine(low, mention, inside) and not (
            comparing and _GROUP_DEFINED.search(low, max(start, mention.start - 50), mention.start))
        if (_ADDED_CLAUSE.search(clause) or needed) and not _GROUP_AFTER.match(low, mention.end):
            continue
        if comparing or listed or _GROUP_AFTER.match(low, mention.end) or alternative:
            picked.append(mention)
    if len({mention.name for mention in picked}) < 2 and not any(m.name != NOREPINEPHRINE for m in grouped):
        if NOREPINEPHRINE not in {m.name for m in picked} and len(picked) == 1 and (comparing or allocating) \
                and NOREPINEPHRINE in names:
            return picked
        return [] if all(m.name == NOREPINEPHRINE for m in picked) else picked
    return picked


_RANDOMISING = re.compile(r"\b(?:randomi[sz]\w*|randomly|assigned|allocated)\b")


def _common_additions(low: str, inside: list[Mention], start: int) -> set[str]:
    """The drugs that more than one arm adds ("... plus albumin or ... plus albumin")."""
    added: dict[str, int] = {}
    for mention in inside:
        if mention.name != NOREPINEPHRINE and \
                _ADDITION_BEFORE.search(low, max(start, mention.start - 30), mention.start):
            added[mention.name] = added.get(mention.name, 0) + 1
    return {name for name, times in added.items() if times > 1}


_JOINED = re.compile(r"[^;,]{0,60}?\b(?:or|versus|vs\.?|and|with)\b[^;,]{0,60}")
_JOIN_BREAK = re.compile(r"\b(?:was|were|is|are|during|while|when|whenever|if|after|before|then|than)\b")


def _joined_to_norepinephrine(low: str, mention: Mention, inside: list[Mention]) -> bool:
    """"norepinephrine or phenylephrine boluses when SBP fell": the drug is offered beside norepinephrine, as an arm."""
    for other in inside:
        if other.name != NOREPINEPHRINE or other is mention:
            continue
        start, end = (other.end, mention.start) if other.end <= mention.start else (mention.end, other.start)
        if end >= start and _JOINED.fullmatch(low, start, end) and not _JOIN_BREAK.search(low, start, end):
            return True
    return False


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
