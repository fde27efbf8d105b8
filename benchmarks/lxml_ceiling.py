"""The parse-only ceiling: the tracker's fields read with nothing but lxml.iterparse and find()/findtext().

No framing, no XSLT, no Paper values, no validation beyond what libxml2 does: each record becomes a plain
dict of the same fields the tracker keeps (whitespace collapsed the same way), then is freed. Whatever the
tracker does on top of this (building Paper values, keeping each record's bytes, storing) is its overhead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from lxml import etree

_TAGS = ("PubmedArticle", "PubmedBookArticle")


def _text(element) -> str:
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


def _date(element) -> tuple[str, ...]:
    if element is None:
        return ()
    return tuple(_text(element.find(name)) for name in ("Year", "Month", "Day", "Season", "MedlineDate"))


def _authors(authors) -> list[tuple]:
    return [
        (author.findtext("LastName"), author.findtext("ForeName"), author.findtext("Initials"),
         _text(author.find("CollectiveName")),
         next((i.text for i in author.iterfind("Identifier") if i.get("Source") == "ORCID"), None),
         [_text(a) for a in author.iterfind("AffiliationInfo/Affiliation")])
        for author in authors if author.get("ValidYN") != "N"
    ]


def _common(citation, head, data) -> dict:
    return {
        "abstract": [(t.get("Label"), t.get("NlmCategory"), _text(t)) for t in head.iterfind("Abstract/AbstractText")],
        "languages": [_text(language) for language in head.iterfind("Language")],
        "mesh": [(h.findtext("DescriptorName"), h.find("DescriptorName").get("UI"),
                  h.find("DescriptorName").get("MajorTopicYN"),
                  [(q.text, q.get("MajorTopicYN")) for q in h.iterfind("QualifierName")])
                 for h in citation.iterfind("MeshHeadingList/MeshHeading")],
        "keywords": [_text(k) for k in citation.iterfind("KeywordList/Keyword")],
        "history": [(d.get("PubStatus"), d.findtext("Year"), d.findtext("Month"), d.findtext("Day"),
                     d.findtext("Hour"), d.findtext("Minute")) for d in data.iterfind("History/PubMedPubDate")],
        "comments": [(c.get("RefType"), c.findtext("PMID"), c.findtext("RefSource"))
                     for c in citation.iterfind("CommentsCorrectionsList/CommentsCorrections")
                     if c.get("RefType") != "Cites"],
        "ids": {i.get("IdType"): i.text for i in data.iterfind("ArticleIdList/ArticleId")},
    }


def read_article(record) -> dict:
    citation = record.find("MedlineCitation")
    article = citation.find("Article")
    journal = article.find("Journal")
    data = record.find("PubmedData")
    fields = _common(citation, article, data)
    fields.update({
        "pmid": int(citation.findtext("PMID")),
        "status": citation.get("Status"),
        "title": _text(article.find("ArticleTitle")) or _text(article.find("VernacularTitle")),
        "journal": _text(journal.find("Title")),
        "journal_iso": journal.findtext("ISOAbbreviation"),
        "volume": journal.findtext("JournalIssue/Volume"),
        "issue": journal.findtext("JournalIssue/Issue"),
        "pages": article.findtext("Pagination/MedlinePgn"),
        "elocation_doi": next((e.text for e in article.iterfind("ELocationID") if e.get("EIdType") == "doi"), None),
        "pub_date": _date(journal.find("JournalIssue/PubDate")) or _date(article.find("ArticleDate")),
        "authors": _authors(article.iterfind("AuthorList/Author")),
        "publication_types": [_text(p) for p in article.iterfind("PublicationTypeList/PublicationType")],
        "databanks": [(bank.findtext("DataBankName"), number.text) for bank in article.iterfind("DataBankList/DataBank")
                      for number in bank.iterfind("AccessionNumberList/AccessionNumber")],
    })
    return fields


def read_book(record) -> dict:
    document = record.find("BookDocument")
    book = document.find("Book")
    data = record.find("PubmedBookData")
    fields = _common(document, document, data)
    fields.update({
        "pmid": int(document.findtext("PMID")),
        "status": document.get("Status"),
        "title": _text(document.find("ArticleTitle")) or _text(document.find("Book/BookTitle")),
        "pub_date": _date(document.find("Book/PubDate")),
        "authors": _authors(author for authors in [*document.iterfind("AuthorList"), *book.iterfind("AuthorList")]
                            if authors.get("Type") != "editors" for author in authors.iterfind("Author")),
        "editors": _authors(author for authors in [*document.iterfind("AuthorList"), *book.iterfind("AuthorList")]
                            if authors.get("Type") == "editors" for author in authors.iterfind("Author")),
        "publication_types": [_text(p) for p in document.iterfind("PublicationType")],
        "book": (_text(book.find("BookTitle")), _text(book.find("Publisher/PublisherName")),
                 book.findtext("Publisher/PublisherLocation"), book.findtext("Edition"), book.findtext("Volume"),
                 _text(document.find("LocationLabel")), document.findtext("Pagination/MedlinePgn")),
    })
    return fields


def iter_records(path: Path) -> Iterator[dict]:
    for _event, record in etree.iterparse(str(path), events=("end",), tag=_TAGS, resolve_entities=False,
                                          no_network=True, load_dtd=False):
        yield read_book(record) if record.tag == "PubmedBookArticle" else read_article(record)
        record.clear()
        while record.getprevious() is not None:
            del record.getparent()[0]
