"""The 50 queries the search benchmark (benchmarks/search.py) asks of the scale benchmark's database.

What a reader of a vasopressor tracker types, in the tracker's query language (tracker/store/search.py), spread
from rare to very common in the replicated corpus (benchmarks/corpus.py): there each of the 175 real records is
copied about 5,700 times per million papers, so a word of one record is in about 0.6 % of the papers, and each
replica's title ends in one of 7 drugs (a seventh of the papers each) and one of 9 procedures (a ninth each).
The figure after each group is roughly how many papers of a million its queries match.
"""

from __future__ import annotations

QUERIES: tuple[str, ...] = (
    # drug names: the marked titles' (about 150,000 papers each alone) and the real records' (a few thousand)
    "norepinephrine infusion",
    "vasopressin",
    "phenylephrine bolus",
    "ephedrine",
    "epinephrine titration",
    "dopamine",
    "angiotensin prophylaxis",
    "ketamine depression",
    "remdesivir",
    "trastuzumab deruxtecan",
    "minocycline doxycycline",
    "buprenorphine emergency department",
    "docetaxel cisplatin",
    # study designs
    "systematic review",
    "randomized trial",
    '"cohort study"',
    '"case report"',
    "mendelian randomization",
    "qualitative study",
    '"cross-sectional"',
    "guideline",
    # populations
    "children",
    "older patients cancer",
    "pregnancy",
    "adolescents vaccination",
    "women health",
    "kidney transplant",
    "mice",
    # phrases
    '"septic shock"',
    '"cardiac surgery"',
    '"spinal anesthesia" phenylephrine',
    '"cesarean delivery" norepinephrine',
    '"hepatorenal syndrome" vasopressin',
    '"non-small cell lung cancer"',
    '"gut microbiota"',
    '"atrial fibrillation"',
    # rare and very common words
    "ergothioneine",
    "schwannoma",
    "Klebsiella",
    "patients",
    "treatment",
    "disease risk",
    # prefixes, column filters and operators
    "vaso*",
    "cardio*",
    "inflamm*",
    "title:sepsis",
    'title:"septic shock" vasopressin',
    "vasopressin OR phenylephrine",
    "norepinephrine NOT infusion",
    "(ephedrine OR phenylephrine) AND spinal",
)

assert len(QUERIES) == 50 and len(set(QUERIES)) == 50
