"""The sample size: how many participants the study randomised or enrolled, as the text states it.

A count is a number (digits or words) before a participant noun, with up to three words between ("110 healthy
women", "Ninety-two neonates", "3 septic shock patients", "1, 747 included patients"), or "n = 60" / "(n=3,819)".
The first count that an enrolment word goes with ("randomised", "enrolled", "a total of", "undergoing") wins; then
the first count not marked as a part ("114 of 163 patients", "309 patients (65%)", "analysed"); then a count
marked as analysed; then one group's size times the groups ("n = 40 each", "30 women per group"); then the
group sizes summed ("n = 31 ... n = 31"). Animal and laboratory studies have none; a
systematic review counts only patients pooled; a case report with no number describes one patient.

A survey's participants are those who answered ("486 anaesthetists responded"; "sent to 900" is a part, like
"screened"). A count marked only by a treatment ("212 patients received vasopressin") that is smaller than a
count before it is a group of those patients, and so is one that a drug "was used in"; "64 patients received X
and 58 received Y" gives the groups' sum, "25 cases and 75 matched controls" cases and controls together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracker.facts.model import Span
from tracker.facts.numbers import WORD_NUMBER, count
from tracker.facts.text import Document

_PARTICIPANT = (r"(?:patients?|women|men|subjects|participants|parturients|mothers|pregnant women|pregnancies|"
                r"children|neonates|newborns|infants|adults|volunteers|individuals|persons|people|cases|"
                r"recipients|survivors|residents|adolescents|girls|boys|elderly|gravidas|primigravidas|"
                r"multigravidas|ladies|females|males|candidates|preterm infants|episodes|"
                # the participants of a survey
                r"respondents|an(?:a)?esthetists|an(?:a)?esthesiologists|physicians|clinicians|doctors|nurses|"
                r"intensivists|obstetricians|surgeons|practitioners|consultants|trainees|pharmacists)")
_DIGITS = r"\d{1,3}(?:,\s?\d{3})+|\d{1,6}"
_COUNT = re.compile(rf"(?<![\w.,%/-])({_DIGITS}|{WORD_NUMBER.pattern})"
                    rf"((?:\s{{1,2}}(?!(?:of|in|and|or|to|with|who|were|was|per|than|at)\b)[a-z][\w'-]{{0,25}}){{0,3}}?)"
                    rf"\s{{1,2}}{_PARTICIPANT}\b")
# "Of 250 screened patients, 200 were randomized": a count with its verb and no noun.
_BARE = re.compile(rf"(?<![\w.,%/-])({_DIGITS}|{WORD_NUMBER.pattern})\s{{1,2}}were\s{{1,2}}"
                   r"(?:then\s{1,2}|subsequently\s{1,2})?(?:randomi[sz]ed|randomly|enrolled|included|recruited|allocated|assigned|studied)\b|"
                   rf"(?<![\w.,%/-])({_DIGITS})\s{{1,2}}(?:\(\s{{0,2}}\d[\d.]*\s?%\s{{0,2}}\)\s{{1,2}})?responded\b")
_SCREENED = re.compile(r"\b(?:screened|assessed|approached|evaluated|considered|identified|invited)\b")
_N_EQUALS = re.compile(r"\b[nN]\s{0,2}=\s{0,2}(" + _DIGITS + r")\b")
_ENROLMENT = re.compile(r"\b(?:randomi[sz]\w*|randomly|enrol\w*|recruit\w*|included|including|assigned|allocated|"
                        r"participated|studied|a total of|total of|underwent|undergoing|scheduled|having|comprised|"
                        r"consisted|divided|eligible|admitted|treated|received|receiving|who (?:developed|underwent|"
                        r"received|had|were)|were (?:prospectively )?(?:enrolled|studied|included|investigated)|"
                        r"responded|returned|answered)\b")
_OTHER_GROUP = re.compile(rf"[^.;]{{0,80}}?(?:,\s{{0,2}}|\s)(?:and|while|whereas|(?:were\s{{1,2}})?compared\s{{1,2}}"
                          rf"(?:with|to)|versus|vs\.?)\s{{1,2}}({_DIGITS})\s{{1,2}}(?:{_PARTICIPANT}\s{{1,2}})?(?:who\s{{1,2}})?"
                          r"(?:received|receiving|were treated|treated|were given|given)\b")
_CONTROLS = re.compile(rf"[^.;]{{0,60}}?\b(?:and|with|to)\s{{1,2}}({_DIGITS})\s{{1,2}}(?:[a-z-]+\s{{1,2}}){{0,2}}?"
                       r"controls\b")
_TREATMENT = re.compile(r"received|receiving|treated|underwent|undergoing|having|who (?:received|underwent|had)")
_ANALYSED = re.compile(r"\b(?:analy[sz]\w*|analysis|completed|excluded|lost|withdr\w*|dropped|died|deceased|survived|"
                       r"followed up|evaluable|remained)\b")
_PART_BEFORE = re.compile(r"(?:\b\d[\d,]*\s{1,2}(?:of|out of)\s{1,2}|\bof\s{1,2}(?:the\s{1,2})?(?:whom|these|them)\s{0,2}|"
                          r"[<>≤≥]\s{0,2}|\baged?\s{1,2}|\bremaining\s{1,2}|"
                          r"\bonly\s{1,2}|\bother\s{1,2}|\d\s?%\s{0,2}\(?|"
                          # "sent to 900 anaesthetists" (those who answered are the sample), "was used in 1,200
                          # patients" (a part of those studied)
                          r"\b(?:sent|distributed|e-?mailed|mailed|invited|approached|contacted)\s{1,2}(?:to\s{1,2})?|"
                          r"\b(?:used|given|administered|received|treated|managed|occurred|observed|developed|seen|found|required|needed|"
                          r"reported|recorded|documented|present|started|initiated)\s{1,2}(?:\w+\s{1,2})?"
                          r"(?:in|among|by)\s{1,2}(?:the\s{1,2})?)$")
_PART_AFTER = re.compile(r"^\s{0,2}(?:\(\s{0,2}\d[\d.]*\s?%\s{0,2}\)|\[\s{0,2}\d[\d.]*\s?%\s{0,2}\]|"
                         r"of\s{1,2}(?:the\s{1,2})?(?:\d|whom|these|them|all)|"
                         r"in\s{1,2}(?:the|each|both)\s{1,2}(?:\w+\s{1,2}){0,2}?(?:group|arm)|in\s{1,2}group|"
                         r"\d|per\s{1,2}group|each\b)")
_GROUPS_OF = re.compile(r"\b(two|three|four|five|six|2|3|4|5|6)\s{1,2}(?:equal\s{1,2})?groups\s{1,2}(?:of|with)\s{1,2}"
                        rf"({_DIGITS}|{WORD_NUMBER.pattern})(?:\s{{1,2}}(?:\w+\s{{1,2}}){{0,2}}?{_PARTICIPANT})?\s{{0,2}}(?:each)?")
_CASE_ONE = re.compile(r"\b(?:a|an) (?:\d{1,3}-(?:year|month|week|day)-old|case of|(?:\w+ ){0,2}?(?:patient|woman|man|"
                       r"girl|boy|infant|neonate|parturient|recipient|child|adult|female|male|mother|gentleman|lady))\b")
# "Participants included 38 community-ambulators": a count after an enrolment verb, whatever its noun, unless the
# noun counts something else.
_VERB_COUNT = re.compile(rf"\b(?:included|enrolled|recruited|randomi[sz]ed|studied|comprised)\s{{1,2}}({_DIGITS})\s{{1,2}}"
                         r"(?!(?:trials|studies|rcts|articles|hospitals|centres|centers|units|sites|countries|items|"
                         r"variables|days|weeks|months|years|hours|minutes|times|groups|arms|doses|samples|cycles|"
                         r"mg|ml|µg|%)\b)([a-z][\w-]{2,30})")
_EACH = re.compile(rf"\bn\s{{0,2}}=\s{{0,2}}({_DIGITS})\s{{0,2}}(?:each|per\s{{1,2}}(?:group|arm)|in\s{{1,2}}each)\b|"
                   rf"(?<![\w.,%/-])({_DIGITS})\s{{1,2}}(?:{_PARTICIPANT}\s{{1,2}})?(?:per|in\s{{1,2}}each)\s{{1,2}}(?:group|arm)\b")
_ARMS = re.compile(r"\b(two|three|four|five|six|2|3|4|5|6)\s{1,2}(?:\w+\s{1,2})?(?:groups|arms)\b")
_SMALL_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6}
_POOLED_NOUN = re.compile(r"\b(?:trials|studies|rcts|articles)\b")


GATES: dict[str, tuple[str, ...]] = {
    "participants.noun": ("patient", "women", "men ", "men,", "men)", "men.", "subject", "participant", "parturient",
                          "mother", "pregnan", "child", "neonate", "newborn", "infant", "adult", "volunteer",
                          "individual", "person", "people", "case", "recipient", "survivor", "resident", "adolescent",
                          "girl", "boy", "elderly", "gravida", "ladies", "female", "male", "candidate", "episode",
                          "respondent", "thetist", "siologist", "physician", "clinician", "doctor", "nurse",
                          "intensivist", "obstetrician", "surgeon", "practitioner", "consultant", "trainee",
                          "pharmacist"),
    "participants.n": ("n=", "n =", "n  ="),
    "participants.groups": ("groups of", "groups with"),
    "participants.each": (" each", "per group", "per arm"),
    "participants.verb": ("included", "enrolled", "recruited", "randomised", "randomized", "studied", "comprised"),
    "participants.bare": ("were randomi", "were randomly", "were enrolled", "were included", "were recruited",
                          "were allocated", "were assigned", "were studied", "responded"),
}


@dataclass(frozen=True)
class SampleSize:
    value: int
    span: Span


@dataclass
class _Count:
    value: int
    span: Span
    enrolment: bool
    part: bool
    analysed: bool
    treated: bool = False  # its enrolment word is only a treatment ("received", "treated", "underwent")


def read_sample_size(document: Document, design: str) -> SampleSize | None:
    if design in ("animal or laboratory", "review", "guideline"):
        return None  # no participants of its own
    low = document.low
    if design == "systematic review":
        return _pooled(document)
    counts = _counts(document)
    for wanted in (lambda c: c.enrolment and not c.part and not c.analysed,
                   lambda c: not c.part and not c.analysed,
                   lambda c: not c.part):
        chosen = next((c for index, c in enumerate(counts) if wanted(c) and not _subgroup(counts, index)), None)
        if chosen is not None:
            return SampleSize(chosen.value, chosen.span)
    groups = _GROUPS_OF.search(low) if document.has("participants.groups") else None
    if groups:
        size = count(groups.group(2))
        if size:
            return SampleSize(_SMALL_WORDS[groups.group(1)] * size, Span(groups.start(), groups.end()))
    each = _EACH.search(low) if document.has("participants.each") else None
    if each:
        # "(n = 40 each)", "40 patients per group": the group size times the groups (two unless the text says more).
        arms = _ARMS.search(low)
        size = int(re.sub(r"\D", "", each.group(1) or each.group(2)))
        return SampleSize(size * (_SMALL_WORDS[arms.group(1)] if arms else 2), Span(each.start(), each.end()))
    sizes = [(int(re.sub(r"\D", "", match.group(1))), match) for match in _n_equals(document)]
    if len(sizes) >= 2:
        return SampleSize(sum(size for size, _match in sizes),
                          Span(sizes[0][1].start(), sizes[-1][1].end()))
    if len(sizes) == 1:
        return SampleSize(sizes[0][0], Span(sizes[0][1].start(), sizes[0][1].end()))
    verb_count = _VERB_COUNT.search(low) if document.has("participants.verb") else None
    if verb_count:
        return SampleSize(int(re.sub(r"\D", "", verb_count.group(1))), Span(verb_count.start(), verb_count.end()))
    if design == "case report":
        single = _CASE_ONE.search(low)
        if single:
            return SampleSize(1, Span(single.start(), single.end()))
    return None


def _counts(document: Document) -> list[_Count]:
    low = document.low
    found = []
    for match in document.find("participants.bare", _BARE):
        value = count(match.group(1) or match.group(2))
        if value:
            found.append(_Count(value, Span(match.start(), match.end()), True, False, False))
    for match in document.find("participants.noun", _COUNT):
        value = count(match.group(1))
        if value is None or value == 0 or value > 10_000_000:
            continue
        sentence = document.sentence_at(match.start())
        before = low[max(sentence.start, match.start() - 60):match.start()]
        after = low[match.end():min(sentence.end, match.end() + 80)]
        clause_before = re.split(r"[;:]", before)[-1]
        words = [found.group() for found in (_ENROLMENT.search(clause_before), _ENROLMENT.search(after[:60]),
                                             _ENROLMENT.search(match.group(2))) if found]
        enrolment = bool(words)
        treated = enrolment and all(_TREATMENT.fullmatch(word) for word in words)
        part = bool(_PART_BEFORE.search(before) or _PART_AFTER.match(after) or _SCREENED.search(match.group(2))
                    or _SCREENED.match(after.lstrip()[:12]) or re.search(r"\bfor eligibility\b", after[:40]))
        analysed = bool(_ANALYSED.search(after[:50]) or _ANALYSED.search(clause_before[-30:])
                        or re.search(r"\bdata\b", clause_before[-30:]))
        if re.search(r"\b(?:year|month|week|day|hour)s?[- ]old\b|\bgroups?\b", match.group(2)):
            continue
        span = Span(match.start(), match.end())
        if treated and not part:
            # "60 patients received norepinephrine and 58 received phenylephrine": the groups, summed.
            other = _OTHER_GROUP.match(low, match.end(), sentence.end)
            if other and re.match(r"\s{1,2}(?:who\s{1,2})?(?:received|receiving|were treated|treated|were given|"
                                  r"given)\b", after):
                value += int(re.sub(r"\D", "", other.group(1)))
                span = Span(match.start(), other.end(1))
        controls = None if part else _CONTROLS.match(low, match.end(), sentence.end)
        if controls:
            # "30 patients with digital ischaemia and 90 matched controls": cases and controls, summed.
            value += int(re.sub(r"\D", "", controls.group(1)))
            span = Span(match.start(), controls.end())
        found.append(_Count(value, span, enrolment, part, analysed, treated))
    found.sort(key=lambda item: item.span.start)
    return found


def _subgroup(counts: list[_Count], index: int) -> bool:
    """"Data of 512 patients were analysed ... 212 patients received vasopressin": a count that only a treatment
    marks, smaller than a count before it, is a group of those patients."""
    item = counts[index]
    if item.enrolment and not item.treated:
        return False
    return any(not earlier.part and earlier.value > item.value for earlier in counts[:index])


def _pooled(document: Document) -> SampleSize | None:
    low = document.low
    for match in _n_equals(document):
        before = low[max(0, match.start() - 40):match.start()]
        if _POOLED_NOUN.search(before) or re.search(r"\b(?:total|overall|pooled|combined)\b", before):
            return SampleSize(int(re.sub(r"\D", "", match.group(1))), Span(match.start(), match.end()))
    for item in _counts(document):
        if not item.part:
            return SampleSize(item.value, item.span)
    return None


def _n_equals(document: Document) -> list[re.Match[str]]:
    if not document.has("participants.n"):
        return []
    return list(_N_EQUALS.finditer(document.plain))
