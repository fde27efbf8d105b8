"""Records for the ELink tests: two topics whose titles, abstracts and reference lists link them.

Vasopressors at caesarean delivery (101, 102, 103, 106) and the gut microbiome in type 2 diabetes (104, 105, 107);
108 is a letter with no abstract and no references, which nothing cites. 106 and 107 are the week's new records
(created in WEEK); 106 cites 101, 103 and a PMID PubMed does not hold.
"""

from __future__ import annotations

from datetime import date

from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml

WEEK = (date(2024, 6, 8), date(2024, 6, 14))
NOT_IN_PUBMED = 99999999

# pmid: (created, title, abstract, references)
LINKED = {
    101: (date(2024, 1, 10), "Norepinephrine versus phenylephrine for spinal anaesthesia-induced hypotension during "
          "caesarean delivery", "Norepinephrine and phenylephrine were given to treat hypotension after spinal "
          "anaesthesia for caesarean delivery; maternal bradycardia was less frequent with norepinephrine.", ()),
    102: (date(2024, 3, 1), "Prophylactic norepinephrine infusion for spinal hypotension at caesarean section: a "
          "dose-finding study", "We found the dose of norepinephrine infusion that prevents spinal hypotension in "
          "women having caesarean section.", (101,)),
    103: (date(2024, 6, 1), "Phenylephrine infusion and maternal bradycardia during spinal anaesthesia for caesarean "
          "delivery", "Phenylephrine infusion caused maternal bradycardia more often than norepinephrine during "
          "spinal anaesthesia for caesarean delivery.", (101, 102)),
    104: (date(2024, 6, 2), "Gut microbiome composition in type 2 diabetes",
          "The gut microbiome of adults with type 2 diabetes differed from controls in bacterial diversity.", ()),
    105: (date(2024, 6, 3), "Metformin reshapes the gut microbiome in type 2 diabetes",
          "Metformin changed gut bacterial diversity in adults with type 2 diabetes.", (104,)),
    106: (date(2024, 6, 10), "Norepinephrine bolus versus infusion for hypotension after spinal anaesthesia at "
          "caesarean delivery", "Norepinephrine given as a bolus or an infusion treated spinal hypotension at "
          "caesarean delivery with little maternal bradycardia.", (101, 103, NOT_IN_PUBMED)),
    107: (date(2024, 6, 12), "Gut microbiome after bariatric surgery in type 2 diabetes",
          "Bariatric surgery changed the gut microbiome and bacterial diversity in type 2 diabetes.", (105,)),
    108: (date(2024, 6, 13), "Reply to the editor", None, ()),
}


def linked_records() -> list[FakeRecord]:
    return [
        FakeRecord(pmid=pmid, created=created, xml=article_xml(
            pmid, created=created, title=title, abstract=abstract,
            references=[(f"Reference {cited}.", cited) for cited in references]))
        for pmid, (created, title, abstract, references) in LINKED.items()
    ]
