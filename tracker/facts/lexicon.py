"""Drug names: the vasoactive drugs whose doses count (with their synonyms and brand names), the drugs around them
whose doses do not (local anaesthetics, opioids, uterotonics ...), and the other things a study compares
norepinephrine with (placebo, no prophylaxis, fluids ...). Names are matched lower-cased on word boundaries;
abbreviations count only where the text defines them ("norepinephrine (NE)").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracker.facts.text import Document

NOREPINEPHRINE = "norepinephrine"

VASOACTIVE: dict[str, tuple[str, ...]] = {
    "norepinephrine": ("norepinephrine", "noradrenaline", "noradrenalin", "nor-epinephrine", "nor-adrenaline",
                       "norepinephrin", "levarterenol", "levophed", "norepinephrine bitartrate", "l-norepinephrine"),
    "epinephrine": ("epinephrine", "adrenaline", "adrenalin", "epinephrin"),
    "phenylephrine": ("phenylephrine", "phenylephrin", "neosynephrine", "neo-synephrine"),
    "ephedrine": ("ephedrine", "ephedrin"),
    "vasopressin": ("vasopressin", "arginine vasopressin", "arginine-vasopressin", "argipressin", "pitressin"),
    "terlipressin": ("terlipressin", "glypressin", "triglycyl-lysine vasopressin"),
    "selepressin": ("selepressin",),
    "dopamine": ("dopamine",),
    "dobutamine": ("dobutamine",),
    "dopexamine": ("dopexamine",),
    "metaraminol": ("metaraminol", "aramine"),
    "methoxamine": ("methoxamine",),
    "mephentermine": ("mephentermine",),
    "etilefrine": ("etilefrine",),
    "midodrine": ("midodrine",),
    "droxidopa": ("droxidopa",),
    "milrinone": ("milrinone",),
    "levosimendan": ("levosimendan",),
    "isoproterenol": ("isoproterenol", "isoprenaline"),
    "angiotensin ii": ("angiotensin ii", "angiotensin-ii", "angiotensin 2", "angiotensin ll", "giapreza"),
    "methylene blue": ("methylene blue", "methylthioninium chloride"),
    "hydroxocobalamin": ("hydroxocobalamin",),
    "ornipressin": ("ornipressin",),
}

_CANONICAL = {name: drug for drug, names in VASOACTIVE.items() for name in names}


def vasoactive_drug(name: str) -> str | None:
    """The generic name of a vasoactive drug named by any of its names ("Noradrenaline" -> "norepinephrine")."""
    return _CANONICAL.get(" ".join(name.casefold().split()))


# Drugs that often stand next to a vasopressor's dose and must keep their own doses (bupivacaine 10 mg).
OTHER_DRUGS: tuple[str, ...] = (
    "bupivacaine", "levobupivacaine", "ropivacaine", "lidocaine", "lignocaine", "chloroprocaine", "prilocaine",
    "tetracaine", "mepivacaine", "procaine", "articaine", "sufentanil", "fentanyl", "remifentanil", "alfentanil",
    "morphine", "diamorphine", "hydromorphone", "pethidine", "meperidine", "oxycodone", "tramadol", "nalbuphine",
    "oxytocin", "carbetocin", "ergometrine", "methylergonovine", "misoprostol", "carboprost", "ondansetron",
    "granisetron", "palonosetron", "atropine", "glycopyrrolate", "glycopyrronium", "propofol", "ketamine",
    "esketamine", "etomidate", "thiopental", "thiopentone", "methohexital", "dexmedetomidine", "clonidine",
    "midazolam", "diazepam", "lorazepam", "rocuronium", "vecuronium", "succinylcholine", "suxamethonium",
    "cisatracurium", "atracurium", "hydrocortisone", "dexamethasone", "methylprednisolone", "prednisolone",
    "fludrocortisone", "albumin", "octreotide", "heparin", "enoxaparin", "furosemide", "frusemide", "insulin",
    "esmolol", "landiolol", "labetalol", "metoprolol", "nicardipine", "clevidipine", "nifedipine", "nitroglycerin",
    "nitroglycerine", "glyceryl trinitrate", "nitroprusside", "magnesium sulfate", "magnesium sulphate",
    "magnesium", "calcium chloride", "calcium gluconate", "calcium", "sodium bicarbonate", "bicarbonate",
    "tranexamic acid", "cefazolin", "crystalloid", "colloid", "ringer's lactate", "lactated ringer's",
    "hartmann's solution", "hydroxyethyl starch", "hetastarch", "gelatin", "dextrose", "mannitol",
    "sevoflurane", "isoflurane", "desflurane", "nitrous oxide", "naloxone", "neostigmine", "sugammadex",
    "metoclopramide", "droperidol", "haloperidol", "promethazine", "dimenhydrinate", "famotidine", "ranitidine",
    "omeprazole", "pantoprazole", "paracetamol", "acetaminophen", "ibuprofen", "ketorolac", "diclofenac",
    "amiodarone", "digoxin", "adenosine", "lipopolysaccharide", "endotoxin", "vitamin c", "ascorbic acid",
    "thiamine", "aminophylline", "sildenafil", "nitric oxide", "prostacyclin", "epoprostenol", "iloprost",
    "cocaine", "caffeine", "yohimbine", "prazosin", "phentolamine", "propranolol", "reserpine", "desipramine",
    "imipramine", "atomoxetine", "clozapine", "tyramine",
)
_OTHER_DRUG_SUFFIX = (r"[a-z]{2,}(?:caine|fentanil|fentanyl|azepam|azolam|olol|pril|sartan|statin|mycin|cillin|"
                      r"floxacin|parin|profen|tidine|prazole|setron|curonium|curium|semide|thiazide|dipine|oxetine|"
                      r"triptyline|barbital|azine|mab|nib|vir)")

# Things compared with norepinephrine that are not vasoactive drugs: value -> the phrases that say it.
COMPARISON_ONLY: dict[str, tuple[str, ...]] = {
    "placebo": ("placebo", "normal saline", "saline", "0.9% saline", "0.9% sodium chloride", "sodium chloride 0.9%",
                "0.9% nacl", "sham"),
    "no prophylaxis": ("no prophylaxis", "no prophylactic", "no vasopressor prophylaxis", "without prophylaxis",
                       "no prophylactic vasopressor", "no preventive", "no pre-emptive", "no preemptive"),
    "fluid therapy": ("fluid therapy", "fluids alone", "fluid alone", "fluid only", "fluids only",
                      "fluid-resuscitated only", "fluid resuscitated only", "fluid resuscitation alone",
                      "fluid resuscitation only", "volume expansion alone", "fluid loading alone", "fluid group"),
    "ondansetron": ("ondansetron",),
    "glycopyrrolate": ("glycopyrrolate", "glycopyrronium"),
    "atropine": ("atropine",),
    "hydrocortisone": ("hydrocortisone",),
    "octreotide": ("octreotide",),
    "usual care": ("usual care", "standard care", "standard of care"),
    "crystalloid": ("crystalloid", "crystalloids", "crystalloid coload", "crystalloid co-load"),
    "colloid": ("colloid", "colloids"),
    "leg compression": ("leg compression", "leg wrapping", "leg elevation", "compression stockings"),
}


# Comparison values that are substances with doses of their own (the others, "no prophylaxis", are not).
_SUBSTANCES = frozenset({"placebo", "ondansetron", "glycopyrrolate", "atropine", "hydrocortisone", "crystalloid",
                         "colloid", "octreotide"})


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    name: str  # the generic name, or the COMPARISON_ONLY value
    vasoactive: bool
    comparable: bool  # may be a comparator

    @property
    def substance(self) -> bool:
        """A drug or fluid that a dose beside it may belong to."""
        return self.vasoactive or not self.comparable or self.name in _SUBSTANCES


_NAME_OF: dict[str, tuple[str, bool, bool]] = {}
for _generic, _synonyms in VASOACTIVE.items():
    for _synonym in _synonyms:
        _NAME_OF[_synonym] = (_generic, True, True)
for _drug in OTHER_DRUGS:
    _NAME_OF.setdefault(_drug, (_drug, False, False))
for _value, _phrases in COMPARISON_ONLY.items():
    for _phrase in _phrases:
        _NAME_OF[_phrase] = (_value, False, True)

# Suffixes that make a word a drug of its own class (ropivacaine, remifentanil, esmolol ...).
_OTHER_DRUG_SUFFIXES = ("caine", "fentanil", "fentanyl", "azepam", "azolam", "olol", "pril", "sartan", "statin",
                        "mycin", "cillin", "floxacin", "parin", "profen", "tidine", "prazole", "setron", "curonium",
                        "curium", "semide", "thiazide", "dipine", "oxetine", "triptyline", "barbital")
GATES: dict[str, tuple[str, ...]] = {"drug": tuple(_NAME_OF), "drug.suffix": _OTHER_DRUG_SUFFIXES}

# A drug name that is part of a compound adjective ("dopamine-resistant", "norepinephrine-induced") names no
# drug given; "NE-PE" (a combination) still does.
_COMPOUND = re.compile(r"-(?:resistant|refractory|dependent|induced|sparing|naive|like|related|containing|"
                       r"free|based|mediated|responsive|sensitive|stimulated|evoked)")
_ABBREVIATION = re.compile(r"\s{0,2}[(\[]\s{0,2}([A-Za-z][A-Za-z0-9]{0,2}[A-Z][A-Za-z0-9]{0,3}|[A-Z]{2,6})"
                           r"\s{0,2}[)\],;]")


def _word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _bounded(low: str, start: int, end: int) -> bool:
    before = low[start - 1] if start > 0 else " "
    after = low[end] if end < len(low) else " "
    if _word_char(before) or before == "-" or _word_char(after):
        return False
    return not (after == "-" and _COMPOUND.match(low, end))


def mentions(document: Document) -> list[Mention]:
    """Every drug or comparison mention, in text order, defined abbreviations included."""
    low = document.low
    found: list[Mention] = []
    for start, end, stem in document.hits.get("drug", ()):
        if _bounded(low, start, end):
            name, vasoactive, comparable = _NAME_OF[stem]
            found.append(Mention(start, end, name, vasoactive, comparable))
    for start, end, _stem in document.hits.get("drug.suffix", ()):
        word_start = start
        while word_start > 0 and low[word_start - 1].isalpha():
            word_start -= 1
        if start - word_start >= 2 and _bounded(low, word_start, end):
            word = low[word_start:end]
            if word not in _NAME_OF:
                found.append(Mention(word_start, end, word, False, False))
    found = _longest(found)
    abbreviations: dict[str, str] = {}
    for mention in found:
        if mention.vasoactive:
            defined = _ABBREVIATION.match(document.plain, mention.end)
            if defined:
                abbreviations.setdefault(defined.group(1), mention.name)
    if abbreviations:
        taken = {mention.start for mention in found}
        plain = document.plain
        for abbreviation, name in abbreviations.items():
            position = plain.find(abbreviation)
            while position >= 0:
                end = position + len(abbreviation)
                before = plain[position - 1] if position > 0 else " "
                after = plain[end] if end < len(plain) else " "
                if position not in taken and not _word_char(before) and before != "-" and not _word_char(after) \
                        and not (after == "-" and end + 1 < len(plain) and plain[end + 1].islower()):
                    found.append(Mention(position, end, name, True, True))
                position = plain.find(abbreviation, end)
        found.sort(key=lambda mention: mention.start)
    return found


def _longest(found: list[Mention]) -> list[Mention]:
    """Overlapping names ("arginine vasopressin", "vasopressin"): the longest stays."""
    found.sort(key=lambda mention: (mention.start, -mention.end))
    kept: list[Mention] = []
    for mention in found:
        if kept and mention.start < kept[-1].end:
            continue
        kept.append(mention)
    return kept
