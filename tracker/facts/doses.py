"""Doses of vasoactive drugs and dose-finding results, from the amounts the text states.

For each amount with a unit (tracker/facts/quantities.py), sentence by sentence:
  1. conversions: "5 μg/mL ... at 30 mL/h (2.5 μg/min)" is one dose, 2.5 µg/min, whose text is the whole phrase; a
     concentration with a rate and no stated mass rate gives concentration x rate; a volume of a concentration
     gives a mass; a rate in mL/h or a concentration that nothing converts is left out (a concentration alone in
     its sentence is kept, since it is all the text gives);
  2. what is not a dose: a confidence interval or interquartile range, a step ("in increments of", "a 0.025 µg/kg
     increment", the second of "starting dose and increment were A and B"), a dose equivalence or potency ratio,
     an ED50/ED90/EC50 estimate (kept apart as a result, in whatever unit it is stated: a concentration such as
     ng/mL or µM for an EC or IC, a dose for an ED or LD; "ED 90" and "ED<sub>90</sub>" are ED90; "the ED90 for
     women receiving ... was estimated at X" is the estimate even with a verb of giving between);
  3. the drug: one named inside the unit ("µg of norepinephrine per kg"), else one that follows at once ("5 µg
     sufentanil", "... in the phenylephrine group"), else the nearest one before it in the sentence, else the
     only vasoactive drug of the text; "dopamine or dobutamine at 10 µg/kg/min" gives both; a drug that is not
     vasoactive (bupivacaine 10 mg) takes its dose out of the list. The drug whose dose the sentence states
     ("the norepinephrine dose", "norepinephrine requirements", "the dose of X") keeps the amounts that other
     drugs only label ("0.21 µg/kg/min with vasopressin", "in the vasopressin group"); no fluid is dosed in
     milligrams ("terlipressin plus albumin (1 mg every 6 h)" is terlipressin's); an amount in units is
     vasopressin's, and vasopressin's amounts are in units;
  4. mode, timing and role from the words around the amount, then from the text as a whole. A cue word that
     belongs to another drug's phrase ("during the prophylactic norepinephrine infusion") says nothing of this
     dose, unless the drug is coordinated with that phrase ("rescue boluses of phenylephrine 50 µg or ephedrine
     6 mg"); a fixed amount with a frequency ("every 6 h", "/6 h", "q6h") or a trigger is a bolus; a total takes
     the way the text gives that drug; protocol limits ("titrated between", "to a maximum of") and rules ("if MAP
     stayed below") were given, reported extremes ("the maximum dose was"), compared values ("0.2 vs 0.3") and
     the rest of a reported list received.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from tracker.facts.lexicon import Mention
from tracker.facts.model import Dose, DoseResult, Span
from tracker.facts.quantities import MOLAR_UNITS, Amount, Quantity, quantities
from tracker.facts.text import Document, Sentence

_OPEN_BRACKETS = re.compile(r"[(\[]")
_INTERVAL_WORDS = re.compile(r"(?:\bci\b|confidence|\biqr\b|interquartile|\brange\b|\bsd\b|s\.d\.|\bsem?\b|percentile|"
                             r"\bq1\b|±|\bcri\b|credible)")
_STEP_BEFORE = re.compile(r"(?:\bsteps?|\bincrements?|\bdecrements?|\bintervals?|\bincrease[sd]?|\bdecrease[sd]?|"
                          r"\bincreasing|\bdecreasing|\braised|\breduced|\btitrated|\badjusted|\bescalated|\bstepwise)"
                          r"(?:\s{1,2}(?:in|by|of|at))?(?:\s{1,2}(?:steps?|increments?|decrements?)\s{1,2}of)?"
                          r"\s{1,2}(?:of\s{1,2}|by\s{1,2})?(?:an?\s{1,2})?$")
_STEP_AFTER = re.compile(r"\s{0,3}(?:increments?|decrements?|steps?|intervals?|incremental|decremental|"
                         r"increase|decrease|up|down)\b")
_STEP_CONTEXT = re.compile(r"\b(?:increment\w*|decrement\w*|steps?|testing interval|intervals?|step size)\b")
_START_CONTEXT = re.compile(r"\b(?:start\w*|initial|first)\b")
_NOT_A_DOSE = re.compile(r"\b(?:equivalent to|potency|potent than|"
                         r"dose equivalen\w*|conversion ratio)\b")
# "ED90", "ED-90", "ED 90", "ED<sub>90</sub>" (a masked tag is spaces), "90% effective dose".
RESULT_KIND = re.compile(r"\b(?:(ed|ec|ld|ic)(?:-|\s{1,6})?(\d{2})\b|(median effective dose|minimum effective dose)|"
                         r"(\d{2})\s?%\s(?:effective (dose|concentration)))")
# "10 mg bupivacaine", "0.2 µg of norepinephrine": a drug right after its amount.
_FOLLOWING_DRUG = re.compile(r"^\s{0,2}(?:of\s{1,2})?(?:the\s{1,2})?(?:iv\s|intravenous\s|i\.v\.\s)?$")
# "ephedrine 6 mg", "norepinephrine (8 µg/min)", "NE infusion (8 µg/min)": a drug right before its amount.
_PRECEDING_DRUG = re.compile(r"^\s{0,2}(?:(?:infusion|bolus|boluses|dose|doses|at|of|was|were|given|infused)\s{1,2}){0,2}"
                             r"[(\[]?\s{0,2}$")
_COORDINATED = re.compile(r"^\s{0,2}(?:or|and|/|,)\s{0,2}$")
_GROUP_GAP = re.compile(r"[^;()]{0,30}?\b(?:in|for)\s{1,2}(?:the\s{1,2})?")
_GROUP_WORD = re.compile(r"\s{0,2}(?:group|arm)s?\b")
_OF_DRUG_GAP = re.compile(r"[^;]{0,60}?\bof\s{1,2}(?:the\s{1,2})?")
_FOR_DRUG_GAP = re.compile(r"[^;]{0,160}?\b(?:for|of|with)\s{1,2}(?:the\s{1,2})?(?:iv\s{1,2}|intravenous\s{1,2})?")
# "0.35 µM and that of phenylephrine 1.2 µM": the drug after names its own value, not this one.
_OWN_DRUG_GAP = re.compile(r"\b(?:that|those|the one)\s{1,2}(?:of|for|with)\b|\b(?:whereas|while|versus|vs|compared)\b")
_ESTIMATE_BEFORE = re.compile(r"(?:\b(?:was|were|is|are|be|of)|=|:)\s{1,2}(?:(?:estimated|calculated|determined|found|"
                             r"computed)\s{1,2}(?:at|as|to\s{1,2}be)\s{1,2})?(?:about\s{1,2}|approximately\s{1,2})?$|"
                             r"\b(?:estimated|calculated|determined|computed)\s{1,2}(?:at|as|to\s{1,2}be)\s{1,2}$")
_PROTOCOL_GAP = re.compile(r"\b(?:receiv\w*|given|start\w*|initial|infused|administered|allocated|assigned|"
                           r"randomi[sz]ed|titrated|determined by giving)\b")
_GIVEN = re.compile(r"\b(?:given|administered|injected|intravenous\w*|i\.v\.|iv)\b")
_NEAR = 30  # characters: a drug that is not vasoactive takes the dose after it only from this close
_FLUIDS = frozenset({"albumin", "crystalloid", "colloid", "hydroxyethyl starch", "hetastarch", "gelatin", "dextrose",
                     "ringer's lactate", "lactated ringer's", "hartmann's solution", "mannitol"})
_DRUG_MASSES = frozenset({"µg", "mg", "ng", "U", "mU"})
_ADDED_TO = re.compile(r"\s{1,2}(?:plus|\+|with|and|combined\s{1,2}with)\s{1,2}(?:iv\s{1,2}|intravenous\s{1,2})?")

_BOLUS = re.compile(r"\b(?:bolus\w*|push|single (?:dose|injection)|injections?|injected|intermittent|every\s\d)")
_INFUSION = re.compile(r"\b(?:infus\w*|continuous\w*|drip|titrat\w*|syringe pump|rate)\b")
_BOLUS_WORD = re.compile(r"\b(?:bolus\w*|boluses)\b")
_INFUSION_WORD = re.compile(r"\b(?:infusions?|infused)\b")
# A dose with a frequency is a bolus repeated: "1 mg every 6 h", "1 mg/6 h", "1 mg q6h", "1 mg 6-hourly".
_FREQUENCY = re.compile(r"\s{0,2}(?:\(\s{0,2})?(?:(?:iv|i\.v\.|intravenously|intravenous)\s{1,2})?"
                        r"(?:every\s{1,2}\d|q\s?\d{1,2}\s?h|/\s{0,2}\d{1,2}(?:\s{0,2}-\s{0,2}\d{1,2})?\s{0,2}h\b|"
                        r"\d{1,2}-?\s?hourly|(?:twice|thrice|three times|four times)\s{1,2}(?:a\s{1,2})?(?:daily|day))")
_TOTAL = re.compile(r"\b(?:total|cumulative|overall)\b[^;\d]{0,50}$")
_PROPHYLACTIC = re.compile(
    r"\b(?:prophyla\w*|prevent\w*|pre-?emptive\w*|fixed[- ]rate|constant[- ]rate|"
    r"(?:immediately|just)\s(?:after|before|following)\s(?:the\s)?(?:intrathecal|spinal|subarachnoid|induction)|"
    r"(?:started|initiated|commenced|begun|begin|start)\s(?:\w+\s){0,3}(?:at|with|after|before|upon|on)\s(?:the\s)?"
    r"(?:time\sof\s|start\sof\s)?(?:intrathecal|spinal|subarachnoid|induction|cse|injection)|"
    r"(?:at|from|with)\sthe\s(?:time|start|onset|beginning)\sof\s(?:the\s)?(?:intrathecal|spinal|subarachnoid|"
    r"induction|cse|combined))")
_RESCUE = re.compile(
    r"\b(?:rescue\w*|treat\w*\s(?:\w+\s){0,5}?hypotension|reverse\w*\s(?:\w+\s){0,3}?hypotension|"
    r"(?:given|administered|used|needed|required)\sfor\s(?:\w+\s){0,2}?hypotension|"
    r"(?:when|whenever|if|once)\s(?:the\s)?(?:maternal\s)?(?:sbp|systolic|map|mean arterial|blood pressure|bp|"
    r"arterial pressure|hypotension)|on demand|as needed|as required|(?:pressure|sbp|map|bp)\s(?:\w+\s){0,3}?"
    r"(?:fell|falls|decreased|dropped|declined)|in response to hypotension|therapeutic|"
    # "ephedrine 6 mg boluses were needed less often": what was needed was given to treat
    r"(?:bolus\w*|doses?)\s(?:was|were)\s(?:\w+\s)?(?:needed|required)|if\s(?:needed|required|necessary))")
_NEGATED = re.compile(r"\b(?:no|without|not|non)[\s-]{1,2}$")
_SHOCK = re.compile(r"\b(?:shock|septic|sepsis|vasoplegi\w*|vasodilatory|vasopressor support|hypotensive patients|"
                    r"critically ill|resuscitation|cardiac arrest|refractory hypotension)\b")
# "The median dose was", "total phenylephrine consumption": not "a total of 48 parturients received" (a number
# between the word and the amount counts something else).
_RECEIVED_BEFORE = re.compile(r"\b(?:mean|median|average|total|cumulative|overall)\b[^;\d]{0,50}$")
_DOSE_WAS = re.compile(r"\b(?:doses?|rates?|requirements?|needs?|amounts?|consumption|infusion)\b[^;]{0,40}?"
                       r"\b(?:was|were|ranged?|varied|reached|decreased|increased|declined|fell|rose|changed)"
                       r"\s{1,2}(?:from\s{1,2}|between\s{1,2}|of\s{1,2}|to\s{1,2}|"
                       r"up to\s{1,2}|about\s{1,2}|approximately\s{1,2})?(?:[<>≤≥]\s{0,2})?$")
_PROTOCOL_WORDS = re.compile(r"\b(?:start\w*|initial|first|fixed|predetermined|protocol|assigned|allocated|randomi[sz]ed|"
                             r"target\w*|planned|set)\b")
# Protocol limits ("titrated between", "to a maximum of", "not exceeding") say what was given.
_LIMIT_BEFORE = re.compile(r"(?:\b(?:titrat\w*|adjusted|maintained|kept)\s{1,2}(?:[\w-]+\s{1,2}){0,3}?(?:between|from|"
                           r"up\s{1,2}to|to|within|at)|\bto\s{1,2}a\s{1,2}maximum\s{1,2}(?:(?:dose|rate)\s{1,2})?of|"
                           r"\bnot\s{1,2}(?:to\s{1,2})?exceed(?:ing)?|\bno\s{1,2}more\s{1,2}than)\s{1,2}$")
# Reported extremes: "the maximum norepinephrine dose was", "peak requirements were".
_EXTREME_WAS = re.compile(r"\b(?:maximum|maximal|max|peak|highest|lowest|minimum)\s{1,2}(?:[\w-]+\s{1,2}){0,3}?"
                          r"(?:doses?|rates?|requirements?|infusion)\b[^;\d]{0,30}?\b(?:was|were|reached|of)\s{1,2}"
                          r"(?:about\s{1,2}|approximately\s{1,2})?$")
# Values compared with each other ("0.2 vs 0.3 µg/kg/min") are results.
_COMPARED_VALUES = re.compile(r"\d\s{1,3}(?:vs\.?|versus)\s{1,3}\d")
# What separates one reported value of a list from the next: a new verb or clause.
_LIST_BREAK = re.compile(r";|\b(?:was|were|is|are|given|received|receiving|started|titrated|infused|administered|"
                         r"increased|decreased|then)\b")
# "... increased to 0.5 µg/kg/min if MAP stayed below 65 mmHg": a rule of the protocol.
_CONDITION_AFTER = re.compile(r"[^;]{0,40}?\b(?:if|when|whenever|until|unless|to (?:maintain|keep|achieve|reach))\b")
_SIZE_NOUN = re.compile(r"[\s-]{0,2}(?:bolus\w*|doses?|injections?|aliquots?)\b")
_REQUIRED_AFTER = re.compile(r"[^;]{0,40}\b(?:was|were)\s(?:required|needed|used|administered in total)\b")


GATES: dict[str, tuple[str, ...]] = {
    # Units that are also pieces of words ("sodium", "icu unit", "stimulus") only right after an amount.
    "doses.unit": ("µ", "mcg", "mg", "ug/", "ug ", "ug.", "ug,", "ug)", "ng/", "ng.", "pg/", "ml", "micro", "milli",
                   "nano", "pico", *(f"{before}{space}{unit}" for before in "0123456789)]"
                                     for space in ("", " ", "  ", "-")
                                     for unit in ("u", "iu", "i.u", "mu", "um", "nm", "pm", "nmol", "pmol"))),
    "doses.result": ("effective dose", "effective concentration",
                     *(f"{kind}{gap}{digit}" for kind in ("ed", "ec", "ld", "ic") for gap in ("", "-", " ", "     ")
                       for digit in "0123456789")),
}


@dataclass
class _Candidate:
    quantity: Quantity
    amount: Amount
    unit: str
    start: int
    end: int
    drug_hint: int = -1  # where a drug named in a merged phrase starts
    result_only: bool = False  # an amount in a unit no dose has (ng/mL, µM): an estimate's value or nothing


def doses_and_results(document: Document, drugs: list[Mention], results_wanted: bool = True
                      ) -> tuple[list[Dose], list[DoseResult]]:
    low = document.low
    gated = document.gated("doses.unit")
    if not gated:
        return [], []
    drug_starts = frozenset(mention.start for mention in drugs)
    vasoactive_names = {mention.name for mention in drugs if mention.vasoactive}
    only_drug = next(iter(vasoactive_names)) if len(vasoactive_names) == 1 else None
    dose_finding = document.search("doses.result", RESULT_KIND)
    context = _TextContext(document, drugs)
    doses: list[Dose] = []
    results: list[DoseResult] = []
    seen: set[tuple[str, float, float, str]] = set()
    for sentence in gated:
        found = quantities(low, drug_starts, sentence.start, sentence.end)
        if not found:
            continue
        index = document.sentence_index(sentence.start)
        sentence_drugs = [mention for mention in drugs if sentence.start <= mention.start < sentence.end
                          and mention.substance]
        recent = only_drug or _recent_vasoactive(document, drugs, index)
        not_doses = bool(_NOT_A_DOSE.search(low, sentence.start, sentence.end))
        kinds = [(match.start(), _kind(match)) for match in RESULT_KIND.finditer(low, sentence.start, sentence.end)] \
            if dose_finding else []
        candidates = _converted(low, found, sentence_drugs)
        if kinds:
            candidates = _with_result_values(found, candidates, kinds[0][0])
        candidates = [candidate for candidate in candidates if not _in_interval(low, sentence, candidate.start)]
        values = [candidate.quantity for candidate in candidates]
        previous: tuple[int, str] | None = None  # where the sentence's last dose ended, and its role
        for candidate in candidates:
            quantity = candidate.quantity
            if _is_step(low, sentence, found, quantity):
                continue
            kind = _result_kind(low, kinds, candidate, values)
            if candidate.result_only and (kind is None or not _fits_kind(kind, candidate.unit)):
                continue
            drug_mentions = _result_drug(low, candidate, sentence_drugs) if kind is not None else []
            drug_mentions = drug_mentions or _drugs_for(low, candidate, sentence_drugs, recent)
            if not drug_mentions:
                continue
            if kind is not None:
                if results_wanted and _fits_kind(kind, candidate.unit):
                    for mention in drug_mentions:
                        if mention.vasoactive:
                            results.append(DoseResult(kind, mention.name, candidate.amount.low, candidate.unit,
                                                      Span(candidate.start, candidate.end),
                                                      document.text[candidate.start:candidate.end]))
                continue
            if not_doses or (dose_finding and sentence.section == "conclusions"):
                continue
            drug_mentions = _fitting(candidate, drug_mentions, sentence_drugs)
            for mention in drug_mentions:
                if not mention.vasoactive:
                    continue
                key = (mention.name, round(candidate.amount.low, 9), round(candidate.amount.high, 9), candidate.unit)
                if key in seen:
                    continue
                seen.add(key)
                mode = _mode(low, sentence, candidate, context, mention.name, sentence_drugs)
                role = _role(low, sentence, candidate, previous)
                previous = (candidate.end, role)
                doses.append(Dose(
                    drug=mention.name, low=candidate.amount.low, high=candidate.amount.high, unit=candidate.unit,
                    mode=mode, timing=_timing(low, sentence, candidate, context.shock, context.timing(mention.name),
                                              mode, mention.name, sentence_drugs),
                    role=role,
                    span=Span(candidate.start, candidate.end), text=document.text[candidate.start:candidate.end]))
    # A concentration is a dose only when it is all the text gives about that drug.
    dosed = {dose.drug for dose in doses if not dose.unit.endswith("/mL")}
    doses = [dose for dose in doses if not (dose.unit.endswith("/mL") and dose.drug in dosed)]
    return doses, _distinct_results(results)


class _TextContext:
    """What the text as a whole says about doses, read only when a dose needs it."""

    def __init__(self, document: Document, drugs: list[Mention]) -> None:
        self._document = document
        self._drugs = drugs
        self._drug_modes: dict[str, str] | None = None
        self._timings: dict[str, str | None] = {}

    def drug_mode(self, drug: str) -> str:
        """How the text gives a drug, when it names one way only ("a norepinephrine infusion", "phenylephrine
        boluses"), else "unspecified"."""
        if self._drug_modes is None:
            low = self._document.low
            ways: dict[str, set[str]] = {}
            for mode, pattern in (("bolus", _BOLUS_WORD), ("infusion", _INFUSION_WORD)):
                for match in pattern.finditer(low):
                    owner = _cue_owner(low, match.start(), match.end(), self._drugs)
                    if owner is not None:
                        ways.setdefault(owner.name, set()).add(mode)
            self._drug_modes = {name: next(iter(modes)) for name, modes in ways.items() if len(modes) == 1}
        return self._drug_modes.get(drug, "unspecified")

    @cached_property
    def bolus(self) -> bool:
        return "bolus" in self._document.low

    @cached_property
    def shock(self) -> bool:
        return bool(_SHOCK.search(self._document.low))

    @cached_property
    def timing_cues(self) -> list[_TimingCue]:
        return _timing_cues(self._document, self._drugs)

    def timing(self, drug: str) -> str | None:
        if drug not in self._timings:
            self._timings[drug] = _text_timing(self.timing_cues, drug)
        return self._timings[drug]


def _recent_vasoactive(document: Document, drugs: list[Mention], index: int) -> str | None:
    """The vasoactive drug last named in the two sentences before, for a sentence that names none."""
    if index < 1:
        return None
    start = document.sentences[max(1, index - 2)].start
    end = document.sentences[index].start
    named = [mention.name for mention in drugs if start <= mention.start < end and mention.vasoactive]
    return named[-1] if named else None


def _kind(match: re.Match[str]) -> str:
    if match.group(1):
        return f"{match.group(1).upper()}{match.group(2)}"
    if match.group(3):
        return "ED50" if match.group(3).startswith("median") else "MED"
    return f"{'EC' if match.group(5) == 'concentration' else 'ED'}{match.group(4)}"


def _with_result_values(found: list[Quantity], candidates: list[_Candidate], first_kind: int) -> list[_Candidate]:
    """The candidates and, after an estimate's name, amounts in units no dose has: "the EC50 was 2.4 ng/mL",
    "0.35 µM"."""
    taken = {candidate.quantity.start for candidate in candidates} | {candidate.start for candidate in candidates}
    extra = [_Candidate(quantity, amount, quantity.unit, quantity.start, quantity.end, result_only=True)
             for quantity in found
             if quantity.start > first_kind and quantity.start not in taken and not quantity.is_volume
             and not quantity.is_volume_rate and quantity.base != "mL"
             for amount in quantity.amounts[:1]]
    if not extra:
        return candidates
    return sorted([*candidates, *extra], key=lambda candidate: candidate.start)


def _fits_kind(kind: str, unit: str) -> bool:
    """An effective or inhibitory concentration is a concentration (ng/mL, µM); an effective or lethal dose a dose."""
    concentration = unit.endswith(("/mL", "/L", "/dL")) or unit in MOLAR_UNITS
    return concentration if kind.startswith(("EC", "IC")) else not concentration


def _distinct_results(results: list[DoseResult]) -> list[DoseResult]:
    seen: set[tuple[str, str, float, str]] = set()
    distinct = []
    for result in results:
        key = (result.kind, result.drug, result.value, result.unit)
        if key not in seen:
            seen.add(key)
            distinct.append(result)
    return distinct


def _converted(low: str, found: list[Quantity], drugs: list[Mention]) -> list[_Candidate]:
    """The sentence's amounts as candidate doses, conversions done, what converts nothing left out."""
    candidates: list[_Candidate] = []
    consumed: set[int] = set()
    used: set[int] = set()  # the starts of concentrations a rate or a volume has converted
    concentration: Quantity | None = None
    for index, quantity in enumerate(found):
        if index in consumed:
            continue
        following = found[index + 1] if index + 1 < len(found) else None
        if quantity.is_concentration:
            concentration = quantity
        stated = following if following is not None and _stated_in_brackets(low, quantity, following) else None
        if (quantity.is_volume_rate or quantity.is_concentration or quantity.is_volume) and stated is not None \
                and (stated.is_dose_unit and not stated.is_concentration):
            start = quantity.start
            if quantity.is_concentration:
                start = _volume_before(low, found, index, start)
            elif quantity.is_volume_rate and concentration is not None and concentration.end <= quantity.start \
                    and concentration.start not in used:
                start = concentration.start
            for amount in stated.amounts:
                candidates.append(_Candidate(stated, amount, stated.unit, start, _close_bracket(low, stated.end)))
            consumed.add(index + 1)
            if quantity.is_volume_rate and concentration is not None:
                used.add(concentration.start)
            continue
        if quantity.is_volume_rate:
            if concentration is not None and len(concentration.amounts) == 1:
                per_minute = _per_minute(quantity)
                mass = _mass_factor(concentration)
                if per_minute is not None and mass is not None:
                    unit = "U/min" if concentration.base == "U" else "µg/min"
                    start = concentration.start if concentration.start not in used else quantity.start
                    for amount in quantity.amounts:
                        candidates.append(_Candidate(quantity, Amount(_round(concentration.amounts[0].low * amount.low
                                                                            * per_minute * mass),
                                                                     _round(concentration.amounts[0].low * amount.high
                                                                            * per_minute * mass)),
                                                     unit, start, quantity.end, concentration.drug_start))
                    used.add(concentration.start)
            continue
        if quantity.is_volume:
            if following is not None and following.is_concentration and len(following.amounts) == 1 \
                    and following.start - quantity.end <= 40 and not _stated_after(low, found, index + 1):
                mass = _mass_factor(following)
                if mass is not None and len(quantity.amounts) == 1:
                    base = "U" if following.base == "U" else "µg"
                    candidates.append(_Candidate(following, Amount(_round(quantity.amounts[0].low * following.amounts[0].low
                                                                          * mass),
                                                                   _round(quantity.amounts[0].high * following.amounts[0].low
                                                                          * mass)), base, quantity.start, following.end))
                    consumed.add(index + 1)
                    used.add(following.start)
            continue
        if not quantity.is_dose_unit:
            continue
        for amount in quantity.amounts:
            candidates.append(_Candidate(quantity, amount, quantity.unit, quantity.start, quantity.end))
    # A concentration is a dose only when it is all the text gives about that drug here.
    kept = []
    for candidate in candidates:
        quantity = candidate.quantity
        if quantity.is_concentration and candidate.unit.endswith("/mL"):
            if quantity.start in used or any(other.unit != candidate.unit and not other.unit.endswith("/mL")
                                                  for other in candidates):
                continue
        kept.append(candidate)
    return kept


def _stated_in_brackets(low: str, quantity: Quantity, following: Quantity) -> bool:
    between = low[quantity.end:following.start]
    return len(between) <= 60 and bool(re.fullmatch(r"[^();]{0,50}?\(\s{0,2}(?:[a-z=≈~]{1,12}\s{0,2})?", between))


def _stated_after(low: str, found: list[Quantity], index: int) -> bool:
    return index + 1 < len(found) and _stated_in_brackets(low, found[index], found[index + 1])


def _close_bracket(low: str, end: int) -> int:
    close = re.match(r"\s{0,2}\)", low[end:end + 4])
    return end + close.end() if close else end


def _volume_before(low: str, found: list[Quantity], index: int, start: int) -> int:
    if index > 0 and found[index - 1].is_volume and start - found[index - 1].end <= 40:
        return found[index - 1].start
    return start


def _per_minute(rate: Quantity) -> float | None:
    if rate.denominators[-1] == "h":
        return 1 / 60
    if rate.denominators[-1] == "min":
        return 1.0
    return None


def _mass_factor(concentration: Quantity) -> float | None:
    return {"µg": 1.0, "mg": 1000.0, "ng": 0.001, "U": 1.0}.get(concentration.base)


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _in_interval(low: str, sentence: Sentence, start: int) -> bool:
    """Inside an open bracket whose words say interval: "(95% CI, 6 to 17 µg)", "[IQR 0.1-0.5 µg/kg/min]"."""
    window = low[max(sentence.start, start - 80):start]
    opened = [match.start() for match in _OPEN_BRACKETS.finditer(window)]
    for position in reversed(opened):
        inside = window[position:]
        if ")" in inside or "]" in inside:
            return False
        return bool(_INTERVAL_WORDS.search(inside))
    return bool(re.search(r"(?:\bci\b|confidence interval|\biqr\b|interquartile range)[\s,:=]{0,3}$", window))


def _is_step(low: str, sentence: Sentence, found: list[Quantity], quantity: Quantity) -> bool:
    before = low[max(sentence.start, quantity.start - 40):quantity.start]
    if _STEP_BEFORE.search(before) and not re.search(r"\b(?:to|up to|from)\s{1,2}$", before):
        return True
    if _STEP_AFTER.match(low, quantity.end, min(sentence.end, quantity.end + 20)):
        return True
    # "The starting dose and the increment were A and B": B is the step.
    index = found.index(quantity)
    if index > 0 and re.fullmatch(r"\s{0,2}(?:,\s{0,2})?and\s{1,2}", low[found[index - 1].end:quantity.start]):
        head = low[sentence.start:found[index - 1].start]
        if _START_CONTEXT.search(head) and _STEP_CONTEXT.search(head):
            return True
    return False


def _drugs_for(low: str, candidate: _Candidate, drugs: list[Mention], fallback: str | None) -> list[Mention]:
    quantity = candidate.quantity
    hint = quantity.drug_start if quantity.drug_start >= 0 else candidate.drug_hint
    if hint >= 0:
        named = [mention for mention in drugs if mention.start == hint]
        if named:
            return named[:1]
    within = [mention for mention in drugs if candidate.start <= mention.start < candidate.end]
    if within:
        return within[:1]
    before = [mention for mention in drugs if mention.end <= candidate.start]
    if before and before[-1].name in _FLUIDS and candidate.unit.split("/")[0] in _DRUG_MASSES:
        # "terlipressin plus albumin (1 mg every 6 h)": no fluid is dosed in milligrams; the drug it is added to is.
        joined = [mention for mention in before[:-1] if mention.vasoactive
                  and _ADDED_TO.fullmatch(low, mention.end, before[-1].start)]
        before = before[:-1] if not joined else before[:before.index(joined[-1]) + 1]
    if before and _PRECEDING_DRUG.match(low[before[-1].end:candidate.start]):
        return _with_coordinated(low, before, before[-1])
    after = [mention for mention in drugs if mention.start >= candidate.end]
    head = _head_drug(low, before)
    if after:
        gap = low[candidate.end:after[0].start]
        if _FOLLOWING_DRUG.match(gap):
            return [after[0]]
        if _GROUP_GAP.fullmatch(gap) and _GROUP_WORD.match(low, after[0].end):
            return [head] if head is not None and head.name != after[0].name else [after[0]]
    if before:
        nearest = before[-1]
        if head is not None and nearest is not head and nearest.name != head.name and _labels_a_group(low, nearest):
            return [head]
        if not nearest.vasoactive and candidate.start - nearest.end > _NEAR:
            nearest = next((mention for mention in reversed(before) if mention.vasoactive), nearest)
        return _with_coordinated(low, before, nearest)
    if after and _OF_DRUG_GAP.fullmatch(low[candidate.end:after[0].start]):
        return [after[0]]
    if fallback is not None:
        return [Mention(candidate.start, candidate.start, fallback, True, True)]
    return []


# "the norepinephrine dose", "norepinephrine requirements", "the dose of norepinephrine": the drug whose amount the
# sentence states, whatever other drugs name its groups ("... 0.21 µg/kg/min with vasopressin and 0.33 with placebo").
_HEAD_AFTER_DRUG = re.compile(r"[\s-]{1,2}(?:[a-z]+\s{1,2})?(?:doses?|dosages?|requirements?|infusion\s{1,2}rates?|"
                              r"rates?|consumption|needs?|use|exposure)\b")
_HEAD_BEFORE_DRUG = re.compile(r"\b(?:doses?|dosages?|requirements?|infusion\s{1,2}rates?|consumption|amounts?|needs?)"
                               r"\s{1,2}(?:of|for)\s{1,2}(?:the\s{1,2})?$")
# A drug that names a group or a condition: "with vasopressin", "in the placebo group", "than terlipressin".
_GROUP_LABEL_BEFORE = re.compile(r"\b(?:with|in|among|plus|receiving|versus|vs\.?|than|and|or)\s{1,2}(?:the\s{1,2})?$")


def _head_drug(low: str, before: list[Mention]) -> Mention | None:
    """The last vasoactive drug before the amount that heads "X dose", "X requirements" or "dose of X"."""
    for mention in reversed(before):
        if mention.vasoactive and (_HEAD_AFTER_DRUG.match(low, mention.end) or
                                   _HEAD_BEFORE_DRUG.search(low, max(0, mention.start - 30), mention.start)):
            return mention
    return None


def _labels_a_group(low: str, mention: Mention) -> bool:
    return bool(_GROUP_LABEL_BEFORE.search(low, max(0, mention.start - 16), mention.start)
                or _GROUP_WORD.match(low, mention.end))


_IN_UNITS = frozenset({"vasopressin", "ornipressin"})  # the drugs dosed in units, and dosed in nothing else


def _fits_unit(drug: str, unit: str) -> bool:
    return (unit.split("/")[0] in ("U", "mU")) == (drug in _IN_UNITS)


def _fitting(candidate: _Candidate, chosen: list[Mention], drugs: list[Mention]) -> list[Mention]:
    """The drugs for an amount whose unit none of them is dosed in ("0.2 µg/kg/min" after "vasopressin", "0.03 U/min"
    after "norepinephrine"): the nearest drug of the sentence that is."""
    vasoactive = [mention for mention in chosen if mention.vasoactive]
    if not vasoactive or any(_fits_unit(mention.name, candidate.unit) for mention in vasoactive):
        return chosen
    fitting = [mention for mention in drugs if mention.vasoactive and _fits_unit(mention.name, candidate.unit)]
    if not fitting:
        return chosen
    return [min(fitting, key=lambda mention: (mention.start > candidate.start,
                                               abs(mention.start - candidate.start)))]


def _with_coordinated(low: str, before: list[Mention], nearest: Mention) -> list[Mention]:
    """The drug and those joined to it: "dopamine or dobutamine at 10 µg/kg/min" is a dose of both."""
    chosen = [nearest]
    for earlier in reversed(before[:before.index(nearest)]):
        if _COORDINATED.match(low[earlier.end:chosen[-1].start]):
            chosen.append(earlier)
        else:
            break
    return list(reversed(chosen))


def _result_drug(low: str, candidate: _Candidate, drugs: list[Mention]) -> list[Mention]:
    """"43.1 µg (95% CI ...) and 33.2 µg (95% CI ...) for phenylephrine": a "for X" that closes the list names the
    drug of every value before it."""
    after = [mention for mention in drugs if mention.start >= candidate.end]
    if after and _FOR_DRUG_GAP.fullmatch(low[candidate.end:after[0].start]) and \
            not _OWN_DRUG_GAP.search(low, candidate.end, after[0].start):
        return [after[0]]
    return []


def _result_kind(low: str, kinds: list[tuple[int, str]], candidate: _Candidate, found: list[Quantity]) -> str | None:
    before = [(position, kind) for position, kind in kinds if position < candidate.start]
    if not before:
        return None
    # "To find the ED90, patients received 0.05 µg/kg/min": a dose given on the way to an estimate; but "the ED90
    # for women receiving spinal anaesthesia was estimated at 0.077 µg/kg/min" states the estimate.
    if _PROTOCOL_GAP.search(low, before[-1][0], candidate.start) and not (
            _ESTIMATE_BEFORE.search(low, max(before[-1][0], candidate.start - 40), candidate.start)
            and not re.search(r"[,;]", low[before[-1][0]:candidate.start])):
        return None
    # "ED95 and ED50 values were 43.1 µg and 33.2 µg ... and 3.7 µg and 3.2 µg": the kinds listed together name
    # the values in turn.
    first_value = min(quantity.start for quantity in found)
    listed = [kind for position, kind in before if position < first_value]
    if len(listed) > 1 and all(position < first_value for position, _kind in before):
        order = [quantity.start for quantity in found if quantity.start >= first_value]
        index = order.index(candidate.quantity.start) if candidate.quantity.start in order else 0
        return listed[index % len(listed)]
    return before[-1][1]


_OWNER_REACH = 50  # characters: the longest gap the two patterns below allow
_OWNER_BEFORE_GAP = re.compile(r"[\s-]{1,2}(?:\d[\d.,]{0,6}\s?(?:µg|mcg|ug|mg|u|iu|units?)[\s-]{1,2})?(?:[a-z]{1,15}\s{1,2})?")
_OWNER_AFTER_GAP = re.compile(r"\s{1,2}(?:(?:[a-z]{1,15}\s{1,2}){0,2}?(?:of|with)\s{1,2})?(?:the\s{1,2}|an?\s{1,2})?")
_CLAUSE_BREAK = re.compile(r";|\b(?:was|were|is|are|during|while|when|whenever|if|after|before|then|until|and then)\b")


def _cue_owner(low: str, start: int, end: int, drugs: list[Mention]) -> Mention | None:
    """The drug a cue word belongs to: "norepinephrine infusion", "prophylactic norepinephrine", "rescue boluses of
    phenylephrine"."""
    for mention in drugs:
        if mention.start >= end + _OWNER_REACH:
            break
        if mention.vasoactive and mention.start >= end and _OWNER_AFTER_GAP.fullmatch(low, end, mention.start):
            return mention
    for mention in reversed(drugs):
        if mention.end + _OWNER_REACH <= start:
            break
        if mention.vasoactive and mention.end <= start and _OWNER_BEFORE_GAP.fullmatch(low, mention.end, start):
            return mention
    return None


def _cue_for(low: str, start: int, end: int, candidate: _Candidate, drug: str, drugs: list[Mention]) -> bool:
    """Whether a cue word speaks of this dose: not when it belongs to another drug's phrase ("rescue boluses of
    phenylephrine 50 µg were given during the prophylactic norepinephrine infusion"), unless this dose's drug is
    coordinated with that phrase ("... phenylephrine 50 µg or ephedrine 6 mg")."""
    owner = _cue_owner(low, start, end, drugs)
    if owner is None or owner.name == drug:
        return True
    return owner.end <= candidate.start and not _CLAUSE_BREAK.search(low, owner.end, candidate.start)


def _nearest_cue(low: str, sentence: Sentence, candidate: _Candidate, patterns: dict[str, re.Pattern[str]],
                 drug: str = "", drugs: list[Mention] | None = None) -> str | None:
    best: tuple[int, str] | None = None
    for name, pattern in patterns.items():
        for match in pattern.finditer(low, sentence.start, sentence.end):
            if _NEGATED.search(low, max(sentence.start, match.start() - 8), match.start()):
                continue
            if drugs and not _cue_for(low, match.start(), match.end(), candidate, drug, drugs):
                continue
            if match.end() <= candidate.start:
                distance = candidate.start - match.end()
            elif match.start() >= candidate.end:
                distance = match.start() - candidate.end
            else:
                distance = 0
            if best is None or distance < best[0]:
                best = (distance, name)
    return best[1] if best else None


def _mode(low: str, sentence: Sentence, candidate: _Candidate, context: _TextContext, drug: str,
          drugs: list[Mention]) -> str:
    unit = candidate.unit
    denominators = unit.split("/")[1:]
    if any(part in ("min", "h", "day") for part in denominators):
        return "infusion"
    if unit.endswith("/mL"):
        return "infusion" if _INFUSION.search(low, sentence.start, sentence.end) else "unspecified"
    before = low[max(sentence.start, candidate.start - 60):candidate.start]
    if _TOTAL.search(before):
        return context.drug_mode(drug)  # a total takes the way the study gave the drug
    if _FREQUENCY.match(low, candidate.end, sentence.end):
        return "bolus"  # "1 mg every 6 h", "1 mg/6 h", "1 mg q6h"
    cue = _nearest_cue(low, sentence, candidate, {"bolus": _BOLUS, "infusion": _INFUSION}, drug, drugs)
    if cue is not None:
        return cue
    # An amount of a vasopressor given at once, or on a trigger, is a bolus.
    return "bolus" if context.bolus or _GIVEN.search(low, sentence.start, sentence.end) or \
        _RESCUE.search(low, sentence.start, sentence.end) else "unspecified"


class _TimingCue(NamedTuple):
    kind: str  # "prophylactic" or "rescue"
    in_title: bool
    negated: bool
    owner: str | None  # the drug whose phrase the cue is in ("norepinephrine prophylaxis")


def _timing_cues(document: Document, drugs: list[Mention]) -> list[_TimingCue]:
    low = document.low
    return [_TimingCue(kind, match.start() < document.title_end,
                       bool(_NEGATED.search(low, max(0, match.start() - 8), match.start())),
                       getattr(_cue_owner(low, match.start(), match.end(), drugs), "name", None))
            for kind, pattern in (("prophylactic", _PROPHYLACTIC), ("rescue", _RESCUE))
            for match in pattern.finditer(low)]


def _text_timing(cues: list[_TimingCue], drug: str) -> str | None:
    """The timing the text as a whole speaks of for a drug: its title first, then its words, when they say one
    thing; a cue that belongs to another drug ("norepinephrine prophylaxis" for an ephedrine bolus) does not count."""
    def counted(kind: str, title_only: bool) -> int:
        return sum(1 for cue in cues if cue.kind == kind and (cue.in_title or not title_only) and not cue.negated
                   and cue.owner in (None, drug))

    prophylactic_title, rescue_title = bool(counted("prophylactic", True)), bool(counted("rescue", True))
    if prophylactic_title != rescue_title:
        return "prophylactic" if prophylactic_title else "rescue"
    prophylactic = counted("prophylactic", False)
    rescue = sum(1 for cue in cues if cue.kind == "rescue")
    if prophylactic and not rescue:
        return "prophylactic"
    if rescue and not prophylactic:
        return "rescue"
    return None


def _timing(low: str, sentence: Sentence, candidate: _Candidate, shock: bool, text_timing: str | None,
            mode: str, drug: str = "", drugs: list[Mention] | None = None) -> str:
    cue = _nearest_cue(low, sentence, candidate, {"prophylactic": _PROPHYLACTIC, "rescue": _RESCUE}, drug, drugs)
    if cue is not None:
        return cue
    if shock:
        return "rescue"
    if text_timing is not None:
        return text_timing
    # A text that speaks of both: its infusions are the prophylaxis, its boluses the rescue.
    if mode == "infusion" and _PROPHYLACTIC.search(low):
        return "prophylactic"
    if mode == "bolus" and _RESCUE.search(low):
        return "rescue"
    return "unspecified"


def _role(low: str, sentence: Sentence, candidate: _Candidate, previous: tuple[int, str] | None = None) -> str:
    if candidate.quantity.spread:
        return "received"
    before = low[max(sentence.start, candidate.start - 70):candidate.start]
    if _LIMIT_BEFORE.search(before):
        return "given"  # "titrated between 0.5 and 2 µg/kg/min", "to a maximum of 1 µg/kg/min"
    if _RECEIVED_BEFORE.search(before) or _COMPARED_VALUES.search(low, candidate.quantity.start, candidate.quantity.end):
        return "received"
    if sentence.section != "methods" and _EXTREME_WAS.search(before) and (
            sentence.section in ("results", "conclusions") or not before.rstrip().endswith("of")):
        return "received"  # "the maximum norepinephrine dose was 0.45 µg/kg/min"
    if previous is not None and previous[1] == "received" and \
            not _LIST_BREAK.search(low, previous[0], candidate.start):
        return "received"  # "... was 0.21 µg/kg/min with vasopressin and 0.33 µg/kg/min with placebo"
    if _DOSE_WAS.search(before) and (sentence.section in ("results", "conclusions") or (
            sentence.section != "methods" and not _PROTOCOL_WORDS.search(before)
            and not _CONDITION_AFTER.match(low, candidate.end, sentence.end))):
        return "received"
    if _REQUIRED_AFTER.match(low, candidate.end, sentence.end) and not _SIZE_NOUN.match(low, candidate.end):
        return "received"  # "52 µg was required", but not "6 mg boluses were needed" (the size of each)
    return "given"
