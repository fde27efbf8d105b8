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
    "usual care": ("usual care", "standard care", "standard of care"),
    "crystalloid": ("crystalloid", "crystalloids", "crystalloid coload", "crystalloid co-load"),
    "colloid": ("colloid", "colloids"),
    "leg compression": ("leg compression", "leg wrapping", "leg elevation", "compression stockings"),
}


# Comparison values that are substances with doses of their own (the others, "no prophylaxis", are not).
_SUBSTANCES = frozenset({"placebo", "ondansetron", "glycopyrrolate", "atropine", "hydrocortisone", "crystalloid",
                         "colloid"})


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


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(word) for word in sorted(set(words), key=len, reverse=True))


_NAME_OF: dict[str, tuple[str, bool, bool]] = {}
for _generic, _synonyms in VASOACTIVE.items():
    for _synonym in _synonyms:
        _NAME_OF[_synonym] = (_generic, True, True)
for _drug in OTHER_DRUGS:
    _NAME_OF.setdefault(_drug, (_drug, False, False))
for _value, _phrases in COMPARISON_ONLY.items():
    for _phrase in _phrases:
        _NAME_OF[_phrase] = (_value, False, True)

# A drug name that is part of a compound adjective ("dopamine-resistant", "norepinephrine-induced") names no
# drug given; "NE-PE" (a combination) still does.
_NAMES = re.compile(r"(?<![\w-])(" + _alternation(list(_NAME_OF)) + r"|" + _OTHER_DRUG_SUFFIX +
                    r")(?![\w]|-(?:resistant|refractory|dependent|induced|sparing|naive|treated|like|related|"
                    r"containing|free|based|mediated|responsive|sensitive|stimulated|evoked))")
_ABBREVIATION = re.compile(r"\s{0,2}[(\[]\s{0,2}([A-Za-z][A-Za-z0-9]{0,2}[A-Z][A-Za-z0-9]{0,3}|[A-Z]{2,6})"
                           r"\s{0,2}[)\],;]")


def mentions(document: Document) -> list[Mention]:
    """Every drug or comparison mention, in text order, defined abbreviations included."""
    low = document.low
    found: list[Mention] = []
    abbreviations: dict[str, str] = {}
    for match in _NAMES.finditer(low):
        word = match.group(1)
        name, vasoactive, comparable = _NAME_OF.get(word, (word, False, False))
        found.append(Mention(match.start(), match.end(), name, vasoactive, comparable))
        defined = _ABBREVIATION.match(document.plain, match.end())
        if defined and vasoactive:
            abbreviations.setdefault(defined.group(1), name)
    if abbreviations:
        pattern = re.compile(r"(?<![\w-])(" + _alternation(list(abbreviations)) + r")(?![\w]|-[a-z])")
        taken = {(mention.start, mention.end) for mention in found}
        for match in pattern.finditer(document.plain):
            if (match.start(), match.end()) not in taken:
                name = abbreviations[match.group(1)]
                found.append(Mention(match.start(), match.end(), name, True, True))
        found.sort(key=lambda mention: mention.start)
    return found
