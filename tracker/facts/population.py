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
    r"(?:or|and) (?:older|above|over))")
_SEPSIS = re.compile(r"\b(?:sepsis|septic|septicaemi\w*|septicemi\w*|bacter(?:a)?emic shock|urosepsis)\b")
_CARDIAC = re.compile(
    r"\b(?:cardiac surg\w*|heart surg\w*|cardiopulmonary bypass|coronary artery bypass|cabg|valve (?:surgery|"
    r"replacement|repair)|valvular surgery|cardiothoracic surg\w*|open-heart|open heart|post-?cardiotomy|"
    r"vasoplegi\w*|off-pump|on-pump|aortic (?:valve|arch) (?:surgery|replacement)|heart transplant\w*)\b")
_NAMED_OPERATION = re.compile(
    r"\b(?:non-?cardiac surg\w*|(?:hip|knee|abdominal|orthop(?:a)?edic|spine|spinal fusion|urologic\w*|"
    r"gyn(?:a)?ecologic\w*|thoracic|vascular|neuro|colorectal|bariatric|major|laparoscopic|hepatic|liver|renal|"
    r"kidney|ent|ophthalmic|dental|breast|elective|emergency|general|oncologic\w*|trauma|bowel|gastrointestinal|"
    r"maxillofacial|plastic|endoscopic|robotic|prostate|carotid|shoulder) (?:surg\w*|operations?|procedures?)|"
    r"arthroplasty|hip fractures?|craniotom\w*|laparotom\w*|hepatectom\w*|prostatectom\w*|nephrectom\w*|"
    r"esophagectom\w*|oesophagectom\w*|gastrectom\w*|colectom\w*|liver transplant\w*|kidney transplant\w*|"
    r"renal transplant\w*)\b")
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
_ICU = re.compile(r"\b(?:intensive care|icus?|critically ill|critical care|critical illness)\b")
_PEDIATRIC = re.compile(r"\b(?:child\w*|p(?:a)?ediatric\w*|neonat\w*|newborns?|infants?|preterm|prematur\w*|"
                        r"adolescen\w*|toddlers?|picu|nicu|juvenile)\b")
_PEDIATRIC_IN_OBSTETRICS = re.compile(r"\b(?:child(?:ren)?|p(?:a)?ediatric (?:patients|population)|adolescen\w*|"
                                      r"toddlers?|picu)\b")
_HEPATORENAL = re.compile(r"\b(?:hepatorenal|cirrho\w*|liver failure|hepatic failure|ascites|acute-on-chronic liver|"
                          r"end-stage liver)\b")
_MAX_SPANS = 12


def read_population(document: Document, design: str) -> list[Tagged]:
    if design == "animal or laboratory":
        return [Tagged("other")]
    low = document.low
    if not document.abstract_low.strip() and not document.title_low.strip():
        return []
    regions = [(s.start, s.end) for s in document.sentences if not s.background]
    found = _read(low, regions)
    if not found:
        found = _read(low, [(s.start, s.end) for s in document.sentences])
    if not found:
        return [Tagged("other")] if document.abstract_low.strip() else []
    order = ("cesarean", "elderly", "sepsis", "cardiac surgery", "non-cardiac surgery", "critical care", "pediatric",
             "hepatorenal")
    return [Tagged(value, tuple(found[value][:_MAX_SPANS])) for value in order if value in found]


def _matches(pattern: re.Pattern[str], low: str, regions: list[tuple[int, int]]) -> list[re.Match[str]]:
    return [match for start, end in regions for match in pattern.finditer(low, start, end)]


def _read(low: str, regions: list[tuple[int, int]]) -> dict[str, list[Span]]:
    found: dict[str, list[Span]] = {}

    def add(value: str, matches: list[re.Match[str]]) -> None:
        if matches:
            found.setdefault(value, []).extend(Span(match.start(), match.end()) for match in matches)

    cesarean = _matches(_CESAREAN, low, regions)
    sepsis = _matches(_SEPSIS, low, regions)
    cardiac = _matches(_CARDIAC, low, regions)
    add("cesarean", cesarean)
    add("elderly", _matches(_ELDERLY, low, regions))
    add("sepsis", sepsis)
    add("cardiac surgery", cardiac)
    shock = [match for match in _matches(_SHOCK, low, regions)
             if not _NOT_CRITICAL_SHOCK.search(low, max(0, match.start() - 14), match.start())]
    if not (cardiac and all(_vasoplegic_context(low, match) for match in shock)):
        add("critical care", shock)
    if not sepsis and not cardiac and not cesarean:
        add("critical care", _matches(_ICU, low, regions))
    operations = _matches(_NAMED_OPERATION, low, regions)
    if not (cesarean or sepsis or cardiac or "critical care" in found):
        operations += [match for match in _matches(_ANY_OPERATION, low, regions)
                       if not _CARDIAC_NEAR.search(low, max(0, match.start() - 16), match.start())]
    operations = [match for match in operations
                  if not _CARDIAC_NEAR.search(low, max(0, match.start() - 16), match.start())]
    add("non-cardiac surgery", sorted(operations, key=lambda match: match.start()))
    add("pediatric", _matches(_PEDIATRIC_IN_OBSTETRICS if cesarean else _PEDIATRIC, low, regions))
    add("hepatorenal", _matches(_HEPATORENAL, low, regions))
    return found


def _vasoplegic_context(low: str, match: re.Match[str]) -> bool:
    return bool(re.search(r"(?:cardiac|heart|bypass|cardiotomy)", low[max(0, match.start() - 80):match.end() + 80]))
