"""Who was studied, in the schema's nine words, each with the places in the text that say it.

Read from every sentence except a structured abstract's Background (which may speak of other patients), unless
nothing else names a population. Three interactions follow how these abstracts are written: a caesarean study's
neonatal outcomes, fetuses and "operating room" are not a paediatric or surgical population; septic shock in an
ICU is sepsis, not also critical care (critical care is shock other than septic, trauma, cardiac arrest, or an
ICU with no sepsis named); in an obstetric, septic, critical-care or cardiac study only a named non-cardiac
operation ("hip fracture surgery") adds non-cardiac surgery. Animals and laboratory studies are "other", and so
is a text that names participants in none of these groups.
"""

from __future__ import annotations

import re

from tracker.facts.model import Span, Tagged
from tracker.facts.text import Document

_CESAREAN = re.compile(
    r"\b(?:c(?:a)?esar(?:e|i)an\w*|c-sections?|parturients?|obstetric\w*|labou?r (?:analgesia|epidural|ward)|"
    r"in labou?r|labouring|laboring|pregnan\w*|parturition|(?:vaginal|cesarean|caesarean|elective|operative|"
    r"instrumental|breech|twin|term|preterm) deliver(?:y|ies)|deliver(?:y|ies) (?:of the (?:fetus|baby|neonate)|"
    r"under)|pre-?eclamp\w*|puerper\w*|post-?partum|peripartum|gravid\w*|uteroplacental|fetoplacental)\b")
_ELDERLY = re.compile(
    r"\b(?:elderly|older (?:adults?|patients|people|persons|subjects|individuals|women|men|population)|"
    r"geriatric\w*|octogenarians?|nonagenarians?|aged\s(?:≥|>|over|above|at least|more than|older than)\s?"
    r"(?:60|65|70|75|80)|(?:≥|>)\s?(?:60|65|70|75|80)\s?(?:years|yrs|y)\b|(?:60|65|70|75|80) years (?:of age )?"
    r"(?:or|and) (?:older|above|over)|(?:older than|over|above|more than) (?:60|65|70|75|80) (?:years|yrs))")
_SEPSIS = re.compile(r"\b(?:sepsis|septic|septicaemi\w*|septicemi\w*|bacter(?:a)?emic shock|urosepsis)\b")
_CARDIAC = re.compile(
    r"(?<!non-)(?<!non )(?<!non)\b(?:cardiac surg\w*|heart surg\w*|cardiopulmonary bypass|coronary artery bypass|"
    r"cabg|valve (?:surgery|replacement|repair)|valvular surgery|cardiothoracic surg\w*|open-heart|open heart|post-?cardiotomy|"
    r"vasoplegi\w*|off-pump|on-pump|aortic (?:valve|arch) (?:surgery|replacement)|heart transplant\w*)\b")
_NAMED_OPERATION = re.compile(
    r"\b(?:non-?cardiac surg\w*|(?:hip|knee|abdominal|orthop(?:a)?edic|spine|spinal fusion|urologic\w*|"
    r"gyn(?:a)?ecologic\w*|thoracic|vascular|neuro|colorectal|bariatric|major|laparoscopic|hepatic|liver|renal|"
    r"kidney|ent|ophthalmic|dental|breast|elective|emergency|general|oncologic\w*|trauma|bowel|gastrointestinal|"
    r"maxillofacial|plastic|endoscopic|robotic|prostate|carotid|shoulder) (?:surg\w*|operations?|procedures?)|"
    r"arthroplasty|hip fractures?|craniotom\w*|laparotom\w*|hepatectom\w*|prostatectom\w*|nephrectom\w*|"
    r"esophagectom\w*|oesophagectom\w*|gastrectom\w*|colectom\w*|(?:undergoing|during) (?:\w+ )?transplant\w*)\b")
_ANY_OPERATION = re.compile(
    r"\b(?:surger(?:y|ies)|surgical (?:patients|procedures?)|general an(?:a)?esthesia|intra-?operative\w*|"
    r"peri-?operative\w*|post-?operative\w*|induction of (?:general )?an(?:a)?esthesia|an(?:a)?esthesia induction|"
    r"(?:spinal|epidural|neuraxial|regional) an(?:a)?esthesia|operations?|operating (?:room|theatre))\b")
_CARDIAC_NEAR = re.compile(r"(?:cardiac|heart|bypass|valve|valvular|cardiothoracic|coronary|cesarean|caesarean|"
                           r"obstetric)\s?$")
_SHOCK = re.compile(r"\b(?:shock|cardiac arrest|cardiopulmonary resuscitation|trauma\w*|polytrauma|burns?|"
                    r"traumatic brain injury)\b")
_NOT_CRITICAL_SHOCK = re.compile(r"(?:septic|endotoxic|endotoxin|endotoxaemic|endotoxemic|vasoplegic|bacter(?:a)?emic|"
                                 r"anaphylactic|spinal)\s{0,2}$")
_OTHER_SHOCK = re.compile(r"(?:resistant|refractory|persistent|vasodilatory|cardiogenic|ha?emorrhagic|hypovol(?:a)?emic|"
                          r"distributive|mixed|undifferentiated|obstructive|traumatic|post-?cardiotomy|anaphylactic)"
                          r"[\s,-]{1,3}(?:\w+[\s,-]{1,3})?shock|cardiac arrest|cardiopulmonary resuscitation|trauma|"
                          r"burns?\b")
_ICU = re.compile(r"\b(?:intensive care|icus?|critically ill|critical care|critical illness)\b")
_PEDIATRIC = re.compile(r"\b(?:child\w*|p(?:a)?ediatric\w*|neonat\w*|newborns?|infants?|preterm|prematur\w*|"
                        r"adolescen\w*|toddlers?|picu|nicu|juvenile)\b")
_PEDIATRIC_IN_OBSTETRICS = re.compile(r"\b(?:child(?:ren)?|p(?:a)?ediatric (?:patients|population)|adolescen\w*|"
                                      r"toddlers?|picu)\b")
_HEPATORENAL = re.compile(r"\b(?:hepatorenal|cirrho\w*|liver failure|hepatic failure|ascites|acute-on-chronic liver|"
                          r"end-stage liver)\b")
_MAX_SPANS = 12
GATES: dict[str, tuple[str, ...]] = {
    "population.cesarean": ("cesar", "caesar", "c-section", "parturient", "obstetric", "labor", "labour", "pregnan",
                            "parturition", "deliver", "eclamp", "puerper", "partum", "gravid", "uteroplacental",
                            "fetoplacental"),
    "population.elderly": ("elderly", "older", "geriatric", "octogenarian", "nonagenarian", "aged", "0 years",
                           "5 years", "0 yrs", "5 yrs",
                           *(f"{sign}{space}{age}" for sign in "≥>" for space in ("", " ") for age in (60, 65, 70, 75, 80))),
    "population.sepsis": ("seps", "septic", "septica", "septice", "bacter"),
    "population.cardiac": ("cardiac surg", "heart surg", "cardiopulmonary bypass", "coronary artery bypass", "cabg",
                           "valve", "valvular", "cardiothoracic", "open-heart", "open heart", "cardiotomy", "vasopleg",
                           "off-pump", "on-pump", "aortic", "heart transplant"),
    "population.named operation": ("surg", "operation", "procedure", "arthroplasty", "hip fracture", "craniotom",
                                   "laparotom", "hepatectom", "prostatectom", "nephrectom", "sophagectom", "gastrectom",
                                   "colectom", "undergoing", "during"),
    "population.any operation": ("surger", "surgical", "general an", "operative", "induction of", "esthesia induction",
                                 "spinal an", "epidural an", "neuraxial an", "regional an", "operation", "operating"),
    "population.shock": ("shock", "cardiac arrest", "cardiopulmonary resuscitation", "trauma", "burn"),
    "population.icu": ("intensive care", "icu", "critical"),
    "population.pediatric": ("child", "ediatric", "neonat", "newborn", "infant", "preterm", "prematur", "adolescen",
                             "toddler", "picu", "nicu", "juvenile"),
    "population.hepatorenal": ("hepatorenal", "cirrho", "liver failure", "hepatic failure", "ascites",
                               "acute-on-chronic liver", "end-stage liver"),
}


def read_population(document: Document, design: str) -> list[Tagged]:
    if design == "animal or laboratory":
        return [Tagged("other")]
    if not document.abstract_low.strip() and not document.title_low.strip():
        return []
    found = _read(document, background=False)
    if not found:
        found = _read(document, background=True)
    if not found:
        return [Tagged("other")] if document.abstract_low.strip() else []
    order = ("cesarean", "elderly", "sepsis", "cardiac surgery", "non-cardiac surgery", "critical care", "pediatric",
             "hepatorenal")
    return [Tagged(value, tuple(found[value][:_MAX_SPANS])) for value in order if value in found]


def _read(document: Document, background: bool) -> dict[str, list[Span]]:
    low = document.low
    found: dict[str, list[Span]] = {}

    def matches(family: str, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        return [match for sentence in document.gated("population." + family)
                if background or not sentence.background
                for match in pattern.finditer(low, sentence.start, sentence.end)]

    def add(value: str, found_matches: list[re.Match[str]]) -> None:
        if found_matches:
            found.setdefault(value, []).extend(Span(match.start(), match.end()) for match in found_matches)

    cesarean = matches("cesarean", _CESAREAN)
    sepsis = matches("sepsis", _SEPSIS)
    cardiac = matches("cardiac", _CARDIAC)
    add("cesarean", cesarean)
    add("elderly", matches("elderly", _ELDERLY))
    add("sepsis", sepsis)
    add("cardiac surgery", cardiac)
    shock = [match for match in matches("shock", _SHOCK)
             if not _NOT_CRITICAL_SHOCK.search(low, max(0, match.start() - 14), match.start())]
    if sepsis:
        # Beside sepsis, a bare "shock" ("shock reversal") is the septic shock; only another kind counts.
        shock = [match for match in shock if _OTHER_SHOCK.search(low, max(0, match.start() - 30), match.end())]
    if not (cardiac and all(_vasoplegic_context(low, match) for match in shock)):
        add("critical care", shock)
    if not sepsis and not cardiac and not cesarean:
        add("critical care", matches("icu", _ICU))
    operations = matches("named operation", _NAMED_OPERATION)
    if not (cesarean or sepsis or cardiac or "critical care" in found):
        operations += matches("any operation", _ANY_OPERATION)
    operations = [match for match in operations
                  if not _CARDIAC_NEAR.search(low, max(0, match.start() - 16), match.start())]
    add("non-cardiac surgery", sorted(operations, key=lambda match: match.start()))
    add("pediatric", matches("pediatric", _PEDIATRIC_IN_OBSTETRICS if cesarean else _PEDIATRIC))
    add("hepatorenal", matches("hepatorenal", _HEPATORENAL))
    return found


def _vasoplegic_context(low: str, match: re.Match[str]) -> bool:
    return bool(re.search(r"(?:cardiac|heart|bypass|cardiotomy)", low[max(0, match.start() - 80):match.end() + 80]))
