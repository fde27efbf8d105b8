"""PubMed efetch XML to Paper values: streaming, bounded memory, no network, no database.

Conventions: a text field is the element's text with inline markup (<i>, <sup>, MathML...) dropped and
whitespace collapsed, never truncated. pub_date is the first day of the period the PubDate names: a season
starts its quarter (Winter January, Spring April, Summer July, Fall/Autumn October, as NLM dates them), a
MedlineDate its first year and month; pub_date_text writes numeric months as PubMed shows them ("2017 Jun").
Authors marked ValidYN="N" are left out. Paper.xml is the record's bytes as received.

Books (PubmedBookArticle, NCBI Bookshelf): a record is a chapter or other part of a book when it has its own
ArticleTitle or LocationLabel, else the whole book; its title is the ArticleTitle, else the BookTitle. PubMed
lists people on BookDocument/AuthorList (the part's) and on BookDocument/Book/AuthorList (the book's); an
AuthorList of Type="editors" gives editors, any other gives authors, the part's before the book's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from itertools import groupby
from os import PathLike
from typing import BinaryIO, NamedTuple, NoReturn

from lxml import etree

from tracker.errors import ParseError
from tracker.ncbi.xmlframe import RecordFramer
from tracker.text import parse_pmid, whole_number


@dataclass(frozen=True)
class Author:
    last_name: str | None = None
    fore_name: str | None = None
    initials: str | None = None
    collective_name: str | None = None
    orcid: str | None = None
    affiliations: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        """"Last Initials" for a person, the name as written for a collective."""
        if self.collective_name:
            return self.collective_name
        return " ".join(part for part in (self.last_name, self.initials) if part)


@dataclass(frozen=True)
class AbstractSection:
    label: str | None
    category: str | None
    text: str


@dataclass(frozen=True)
class MeshHeading:
    descriptor: str
    descriptor_ui: str | None
    major: bool
    qualifiers: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class CommentCorrection:
    ref_type: str
    pmid: int | None
    source: str | None


@dataclass(frozen=True)
class Paper:
    pmid: int
    kind: str  # "article" (PubmedArticle) or "book" (PubmedBookArticle)
    title: str
    abstract_sections: tuple[AbstractSection, ...] = ()
    authors: tuple[Author, ...] = ()
    journal: str | None = None
    journal_iso: str | None = None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    pub_date_text: str | None = None
    pub_date: date | None = None
    doi: str | None = None
    pmcid: str | None = None
    publication_types: tuple[str, ...] = ()
    mesh_headings: tuple[MeshHeading, ...] = ()
    keywords: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    citation_status: str | None = None
    history: tuple[tuple[str, str], ...] = ()  # (PubStatus, ISO date or datetime) in document order
    comments_corrections: tuple[CommentCorrection, ...] = ()
    # (DataBankName, AccessionNumber) in document order: trial registrations, GenBank, GEO, Dryad, figshare...
    databanks: tuple[tuple[str, str], ...] = ()
    # Books only: the book a chapter is part of (or the whole book), as NCBI Bookshelf files it.
    editors: tuple[Author, ...] = ()
    book_title: str | None = None
    publisher: str | None = None
    publisher_location: str | None = None
    edition: str | None = None
    book_accession: str | None = None  # the Bookshelf accession, "NBK" and digits
    location_label: str | None = None  # where a part sits in its book: "Chapter 3", "Appendix B"
    chapter: bool = False  # a part of a book (its own ArticleTitle or LocationLabel), not the whole book
    xml: bytes = field(default=b"", repr=False, compare=False)
    # The record's XML as the store keeps it (compressed: tracker/store/xmlcodec.py), made in place of `xml` on the
    # thread that fetched it: a parsed batch waiting to be saved then holds a third of its bytes (BENCHMARKS.md, backfill).
    stored_xml: bytes = field(default=b"", repr=False, compare=False)

    @property
    def abstract(self) -> str:
        """The abstract as text; structured sections keep their labels ("RESULTS: ...")."""
        return "\n".join(f"{s.label}: {s.text}" if s.label else s.text for s in self.abstract_sections)

    def history_date(self, status: str) -> date | None:
        for name, value in self.history:
            if name == status:
                return date.fromisoformat(value[:10])
        return None

    @property
    def entrez_date(self) -> date | None:
        return self.history_date("entrez")

    @property
    def create_date(self) -> date | None:
        # PubMed's create date [crdt] is the "pubmed" history entry; "entrez" [edat] can be back-dated.
        return self.history_date("pubmed") or self.entrez_date

    @property
    def late_arrival(self) -> bool:
        entrez, created = self.entrez_date, self.create_date
        return entrez is not None and created is not None and (created - entrez).days > 1

    @property
    def bookshelf_url(self) -> str | None:
        """The book or chapter on NCBI Bookshelf, for a record with a Bookshelf accession."""
        return f"https://www.ncbi.nlm.nih.gov/books/{self.book_accession}/" if self.book_accession else None


CHUNK_SIZE = 64 * 1024
_SNIFF_PIECE = 1024

_ROOT_TAG = "PubmedArticleSet"
_ARTICLE = "PubmedArticle"
_BOOK = "PubmedBookArticle"
_DELETE = "DeleteCitation"
_PARSER_OPTIONS = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
)

# Every field is read by one XSLT pass (in C) over all the records a chunk completed, and reaches Python as
# one string: walking ~150 elements per record from Python costs more than libxml2 takes to parse it.
# Each value goes through normalize-space(), so it cannot contain the separators: "\n" ends one section (one
# _FIELDS entry) of a record, "\t" separates the items of a list, "\r" the parts of an item. The stylesheet's
# templates for both record kinds and the names the sections are read back with come from _FIELDS alone.
_TEXT, _DATE, _LIST = "text", "date", "list"


@dataclass(frozen=True)
class _Field:
    """One section of a record: where a PubmedArticle and a PubmedBookArticle keep it, and how it is written.

    A path is an XPath from the record element, using the variables of _RECORD_VARIABLES; "" means that kind
    of record has no such field. A _TEXT field is the normalised text of the first node the path selects,
    a _DATE field a PubDate-like element's (Year, Month, Day, Season, MedlineDate), a _LIST field the nodes
    of its paths, one path after the other, each written by its item template.
    """

    name: str
    article: str | tuple[str, ...]
    book: str | tuple[str, ...]
    kind: str = _TEXT
    item: str = "text"


_RECORD_VARIABLES = {
    _ARTICLE: (("citation", "MedlineCitation"), ("article", "MedlineCitation/Article"),
               ("ids", "PubmedData/ArticleIdList/ArticleId")),
    _BOOK: (("document", "BookDocument"),
            ("ids", "BookDocument/ArticleIdList/ArticleId | PubmedBookData/ArticleIdList/ArticleId")),
}

_FIELDS = (
    _Field("pmid", "$citation/PMID", "$document/PMID"),
    _Field("status", "$citation/@Status", "$document/@Status"),
    _Field("article_title", "$article/ArticleTitle", "$document/ArticleTitle"),
    _Field("vernacular_title", "$article/VernacularTitle", ""),
    _Field("book_title", "", "$document/Book/BookTitle"),
    _Field("location_label", "", "$document/LocationLabel"),
    _Field("journal", "$article/Journal/Title", ""),
    _Field("journal_iso", "$article/Journal/ISOAbbreviation", ""),
    _Field("volume", "$article/Journal/JournalIssue/Volume", "$document/Book/Volume"),
    _Field("issue", "$article/Journal/JournalIssue/Issue", ""),
    _Field("medline_pages", "$article/Pagination/MedlinePgn", "$document/Pagination/MedlinePgn"),
    _Field("start_page", "$article/Pagination/StartPage", "$document/Pagination/StartPage"),
    _Field("end_page", "$article/Pagination/EndPage", "$document/Pagination/EndPage"),
    _Field("doi", "$ids[@IdType = 'doi']", "$ids[@IdType = 'doi']"),
    _Field("elocation_doi", "$article/ELocationID[@EIdType = 'doi']", "$document/Book/ELocationID[@EIdType = 'doi']"),
    _Field("pmcid", "$ids[@IdType = 'pmc']", "$ids[@IdType = 'pmc']"),
    _Field("book_accession", "", "$ids[@IdType = 'bookaccession']"),
    _Field("publisher", "", "$document/Book/Publisher/PublisherName"),
    _Field("publisher_location", "", "$document/Book/Publisher/PublisherLocation"),
    _Field("edition", "", "$document/Book/Edition"),
    _Field("pub_date", "$article/Journal/JournalIssue/PubDate", "$document/Book/PubDate", _DATE),
    _Field("article_date", "$article/ArticleDate[1]", "", _DATE),
    _Field("abstract", "$article/Abstract/AbstractText", "$document/Abstract/AbstractText", _LIST, "abstract"),
    _Field("authors", "$article/AuthorList/Author[not(@ValidYN = 'N')]",
           ("$document/AuthorList[not(@Type = 'editors')]/Author[not(@ValidYN = 'N')]",
            "$document/Book/AuthorList[not(@Type = 'editors')]/Author[not(@ValidYN = 'N')]"), _LIST, "author"),
    _Field("editors", "",
           ("$document/AuthorList[@Type = 'editors']/Author[not(@ValidYN = 'N')]",
            "$document/Book/AuthorList[@Type = 'editors']/Author[not(@ValidYN = 'N')]"), _LIST, "author"),
    _Field("languages", "$article/Language", "$document/Language", _LIST),
    _Field("publication_types", "$article/PublicationTypeList/PublicationType", "$document/PublicationType", _LIST),
    _Field("mesh", "$citation/MeshHeadingList/MeshHeading", "$document/MeshHeadingList/MeshHeading", _LIST, "mesh"),
    _Field("keywords", "$citation/KeywordList/Keyword", "$document/KeywordList/Keyword", _LIST),
    _Field("history", "PubmedData/History/PubMedPubDate", "PubmedBookData/History/PubMedPubDate", _LIST, "history"),
    _Field("comments", "$citation/CommentsCorrectionsList/CommentsCorrections[@RefType != 'Cites']",
           "$document/CommentsCorrectionsList/CommentsCorrections[@RefType != 'Cites']", _LIST, "comment"),
    _Field("databanks", "$article/DataBankList/DataBank/AccessionNumberList/AccessionNumber", "", _LIST, "databank"),
)


class _Sections(NamedTuple):
    """One record's sections of the stylesheet's output, in _FIELDS order."""

    pmid: str
    status: str
    article_title: str
    vernacular_title: str
    book_title: str
    location_label: str
    journal: str
    journal_iso: str
    volume: str
    issue: str
    medline_pages: str
    start_page: str
    end_page: str
    doi: str
    elocation_doi: str
    pmcid: str
    book_accession: str
    publisher: str
    publisher_location: str
    edition: str
    pub_date: str
    article_date: str
    abstract: str
    authors: str
    editors: str
    languages: str
    publication_types: str
    mesh: str
    keywords: str
    history: str
    comments: str
    databanks: str


if _Sections._fields != tuple(f.name for f in _FIELDS):
    raise RuntimeError("_Sections must name the sections of _FIELDS, in the same order")

# Each writes one item of a list; the generated template puts "\t" before every item but the first.
_ITEM_TEMPLATES = {
    "text": '<xsl:value-of select="normalize-space(.)"/>',
    "abstract": """<xsl:value-of select="concat(
      normalize-space(@Label), '&#13;', normalize-space(@NlmCategory), '&#13;', normalize-space(.))"/>""",
    "author": """<xsl:value-of select="concat(
      normalize-space(LastName), '&#13;', normalize-space(ForeName), '&#13;', normalize-space(Initials), '&#13;',
      normalize-space(CollectiveName), '&#13;', normalize-space(Identifier[@Source = 'ORCID']))"/>
    <xsl:for-each select="AffiliationInfo/Affiliation">
      <xsl:value-of select="concat('&#13;', normalize-space(.))"/>
    </xsl:for-each>""",
    "mesh": """<xsl:value-of select="concat(
      normalize-space(DescriptorName), '&#13;', normalize-space(DescriptorName/@UI), '&#13;',
      normalize-space(DescriptorName/@MajorTopicYN))"/>
    <xsl:for-each select="QualifierName">
      <xsl:value-of select="concat('&#13;', normalize-space(.), '&#13;', normalize-space(@MajorTopicYN))"/>
    </xsl:for-each>""",
    # Two-digit fields: "7" and "07" both become "07", a missing Hour "00" (format-number() is far slower).
    "history": """<xsl:variable name="month" select="normalize-space(Month)"/>
    <xsl:variable name="day" select="normalize-space(Day)"/>
    <xsl:value-of select="concat(normalize-space(@PubStatus), '&#13;', normalize-space(Year),
      '-', substring(concat('00', $month), string-length($month) + 1),
      '-', substring(concat('00', $day), string-length($day) + 1))"/>
    <xsl:if test="Hour or Minute">
      <xsl:variable name="hour" select="normalize-space(Hour)"/>
      <xsl:variable name="minute" select="normalize-space(Minute)"/>
      <xsl:value-of select="concat('T', substring(concat('00', $hour), string-length($hour) + 1),
                                   ':', substring(concat('00', $minute), string-length($minute) + 1))"/>
    </xsl:if>""",
    "comment": """<xsl:value-of select="concat(
      normalize-space(@RefType), '&#13;', normalize-space(PMID), '&#13;', normalize-space(RefSource))"/>""",
    "databank": """<xsl:value-of select="concat(normalize-space(../../DataBankName), '&#13;', normalize-space(.))"/>""",
}

_DATE_TEMPLATE = """<xsl:value-of select="concat(
  normalize-space(Year), '&#9;', normalize-space(Month), '&#9;', normalize-space(Day), '&#9;',
  normalize-space(Season), '&#9;', normalize-space(MedlineDate))"/>"""
_END_OF_SECTION = "'&#10;'"


def _record_template(record_tag: str) -> str:
    """The template writing every _FIELDS section of one kind of record."""
    parts = []  # XPath string expressions and (starting with "<") XSLT instructions, in section order
    for spec in _FIELDS:
        paths = getattr(spec, "article" if record_tag == _ARTICLE else "book")
        paths = [path for path in ((paths,) if isinstance(paths, str) else paths) if path]
        if spec.kind == _TEXT and paths:
            (path,) = paths
            parts.append(f"normalize-space({_attribute(path)})")
        elif spec.kind == _DATE and paths:
            (path,) = paths
            parts.append(f'<xsl:apply-templates select="{_attribute(path)}" mode="date"/>')
        for number, path in enumerate(paths if spec.kind == _LIST else ()):  # items, path after path
            if number:
                # The first item of this path follows those of the earlier paths, if any: it needs a separator.
                earlier = _attribute(" | ".join(paths[:number]))
                parts.append(f'<xsl:if test="({earlier}) and ({_attribute(path)})"><xsl:text>&#9;</xsl:text></xsl:if>')
            parts.append(f'<xsl:apply-templates select="{_attribute(path)}" mode="{spec.item}"/>')
        parts.append(_END_OF_SECTION)
    lines = [f'<xsl:template match="{record_tag}">']
    lines += [f'<xsl:variable name="{name}" select="{_attribute(path)}"/>'
              for name, path in _RECORD_VARIABLES[record_tag]]
    for is_instruction, run in groupby(parts, key=lambda part: part.startswith("<")):
        group = list(run)
        if is_instruction:
            lines += group
            continue
        # One concat() for a run of text sections, one literal for adjacent section ends: the fewer
        # expressions, the faster the pass.
        arguments: list[str] = []
        for part in group:
            if part == _END_OF_SECTION and arguments and arguments[-1].endswith(_END_OF_SECTION[1:]):
                arguments[-1] = arguments[-1][:-1] + _END_OF_SECTION[1:]
            else:
                arguments.append(part)
        if len(arguments) == 1:  # section ends only (a text section brings its own end): the quoted literal
            lines.append(f"<xsl:text>{arguments[0][1:-1]}</xsl:text>")
        else:
            lines.append(f'<xsl:value-of select="concat({", ".join(arguments)})"/>')
    lines.append("</xsl:template>")
    return "\n".join(lines)


def _attribute(xpath: str) -> str:
    """An XPath written into a select="..." or test="..." attribute."""
    return xpath.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _stylesheet() -> bytes:
    items = "\n".join(
        f'<xsl:template match="*" mode="{name}">\n'
        f'<xsl:if test="position() != 1"><xsl:text>&#9;</xsl:text></xsl:if>\n{template}\n</xsl:template>'
        for name, template in _ITEM_TEMPLATES.items()
    )
    return f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="text" encoding="UTF-8"/>
<xsl:param name="count" select="0"/>
<xsl:template match="/">
  <xsl:apply-templates select="(*/{_ARTICLE} | */{_BOOK})[position() &lt;= $count]"/>
</xsl:template>
{_record_template(_ARTICLE)}
{_record_template(_BOOK)}
<xsl:template match="*" mode="date">
{_DATE_TEMPLATE}
</xsl:template>
{items}
</xsl:stylesheet>
""".encode()


_RECORD_FIELDS = etree.XSLT(etree.XML(_stylesheet()), access_control=etree.XSLTAccessControl.DENY_ALL)

# normalize-space() collapses only the four XML whitespace characters; str.split() also knows these.
_UNUSUAL_WHITESPACE = (
    "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_MONTH_ABBREVIATIONS = {number: name.capitalize() for name, number in _MONTHS.items()}
# NLM itself dates a seasonal issue to the first month of its quarter (in the samples "2020 Winter" got the
# pubmed history date 2020-01-01 and "2021 Spring" 2021-04-01), so the sortable date does the same.
_SEASONS = {"winter": 1, "spring": 4, "summer": 7, "fall": 10, "autumn": 10}
_YEAR = re.compile(r"\b(\d{4})\b")
_WORD = re.compile(r"[A-Za-z]+")
_ORCID = re.compile(r"(\d{4})-?(\d{4})-?(\d{4})-?(\d{3}[\dXx])")
_BARE_ORCID = re.compile(r"\d{4}-\d{4}-\d{4}-\d{3}[\dX]")
_HISTORY_TIME = re.compile(r"T\d\d:\d\d")


class PaperParser:
    """Incremental parser for an efetch body: feed() bytes as they arrive, then close().

    Each call returns the PubmedArticle/PubmedBookArticle records its bytes completed, as Paper values, and
    frees them from the tree, so memory stays bounded (64 KiB of records and one unfinished record) whatever
    the body size. PMIDs listed in <DeleteCitation> accumulate in deleted_pmids. A problem with the body
    raises ParseError from the feed() or close() call that detects it, and from every later call.
    """

    def __init__(self) -> None:
        self.deleted_pmids: list[int] = []
        self._parser = etree.XMLPullParser(events=("end",), tag=(_ARTICLE, _BOOK, _DELETE), **_PARSER_OPTIONS)
        # A throwaway parser that only reports the first start tag: the record parser's tag filter hides the
        # root, and an HTML page or an E-utilities error body must be named as such, not as a syntax error.
        self._root_sniffer: etree.XMLPullParser | None = etree.XMLPullParser(events=("start",), **_PARSER_OPTIONS)
        self._head = b""
        self._framer = RecordFramer()
        self._records_seen = 0
        self._failure: ParseError | None = None
        self._closed = False

    def feed(self, chunk: bytes) -> list[Paper]:
        self._check_usable()
        papers = []
        # A large chunk goes in a piece at a time, so the tree never holds more than a piece's records.
        for offset in range(0, len(chunk), CHUNK_SIZE):
            papers += self._feed_piece(chunk[offset:offset + CHUNK_SIZE])
        return papers

    def close(self) -> list[Paper]:
        self._check_usable()
        self._closed = True
        if self._root_sniffer is not None:
            if not self._head.strip():
                self._fail(ParseError(f"expected PubMed XML ({_ROOT_TAG}), got an empty body"))
            self._fail(ParseError(f"efetch XML is malformed or truncated: no root element in {_snippet(self._head)}"))
        try:
            self._parser.feed(self._framer.close())
            self._parser.close()
        except etree.XMLSyntaxError as error:
            self._fail(_malformed(error))
        return self._collect()

    def _feed_piece(self, piece: bytes) -> list[Paper]:
        if self._root_sniffer is not None:
            self._sniff_root(piece)
        for_parser = self._framer.feed(piece)
        try:
            if for_parser:
                self._parser.feed(for_parser)
        except etree.XMLSyntaxError as error:
            self._fail(_malformed(error))
        return self._collect()

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise RuntimeError("PaperParser is closed")

    def _fail(self, error: ParseError) -> NoReturn:
        self._failure = error
        raise error

    def _sniff_root(self, chunk: bytes) -> None:
        if len(self._head) < 200:
            self._head += chunk[: 200 - len(self._head)]
        sniffer = self._root_sniffer
        if sniffer is None:
            return
        syntax_error = None
        # A small piece at a time, up to the root's start tag: fed a whole chunk, the sniffer built a tree of its
        # records and a start event for each of their elements, some 4,000 objects a body that lived on in lxml's
        # reference cycles until the next full collection (tracker/memory.py).
        for offset in range(0, len(chunk), _SNIFF_PIECE):
            try:
                sniffer.feed(chunk[offset:offset + _SNIFF_PIECE])
            except etree.XMLSyntaxError as error:
                syntax_error = error
            if self._read_root(sniffer) or syntax_error is not None:
                break
        if syntax_error is not None and self._root_sniffer is not None:
            self._fail(ParseError(f"expected PubMed XML ({_ROOT_TAG}), got {_snippet(self._head)}"))

    def _read_root(self, sniffer: etree.XMLPullParser) -> bool:
        for _event, root in sniffer.read_events():
            self._root_sniffer = None
            if root.tag != _ROOT_TAG:
                self._fail(ParseError(f"expected PubMed XML ({_ROOT_TAG}), got {_describe_root(root)}"))
            docinfo = root.getroottree().docinfo
            # NCBI never declares entities: a body that does is an entity-expansion or external-entity attack.
            if docinfo.internalDTD is not None and any(True for _ in docinfo.internalDTD.iterentities()):
                self._fail(ParseError("efetch XML declares its own entities (<!ENTITY>): refused"))
            return True
        return False

    def _collect(self) -> list[Paper]:
        records = []
        last = None
        for _event, element in self._parser.read_events():
            last = element
            if element.tag == _DELETE:
                self.deleted_pmids.extend(
                    int(pmid.text) for pmid in element.iterchildren("PMID") if (pmid.text or "").strip().isdigit()
                )
            else:
                records.append(element)
        if last is None:
            return []
        root = last.getparent()
        papers = self._read(root, records) if records else []
        last.clear()
        while last.getprevious() is not None:
            del root[0]
        return papers

    def _read(self, root: etree._Element, records: list[etree._Element]) -> list[Paper]:
        # Earlier records are gone, so this batch is the first len(records) records under the root; a record
        # still being parsed can only follow them.
        while records[0].getprevious() is not None:
            del root[0]
        fields = str(_RECORD_FIELDS(root, count=str(len(records))))
        if not fields.isascii():
            fields = _collapse_unusual_whitespace(fields)
        sections = fields.split("\n")
        if len(sections) != len(records) * len(_FIELDS) + 1:
            self._fail(ParseError(
                f"efetch XML has records nested where PubMed never puts them (after record {self._records_seen})"
            ))
        papers = []
        for offset, element in zip(range(0, len(sections) - 1, len(_FIELDS)), records, strict=True):
            self._records_seen += 1
            try:
                papers.append(_paper(
                    _Sections._make(sections[offset: offset + len(_FIELDS)]), element.tag, self._records_seen,
                    partial(self._record_bytes, element),
                ))
            except ParseError as error:
                self._fail(error)
        return papers

    def _record_bytes(self, element: etree._Element, pmid: int) -> bytes:
        record = self._framer.next_record(pmid)
        if record is None:
            record = etree.tostring(element, encoding="UTF-8", xml_declaration=False, with_tail=False)
        return record


def iter_papers(source: bytes | str | PathLike | BinaryIO) -> Iterator[Paper]:
    """Papers from an efetch body given as bytes, a file path or a binary file object, read 64 KiB at a time."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        yield from _iter_chunks(bytes(view[offset: offset + CHUNK_SIZE]) for offset in range(0, len(view), CHUNK_SIZE))
    elif isinstance(source, (str, PathLike)):
        with open(source, "rb") as stream:
            yield from _iter_chunks(iter(lambda: stream.read(CHUNK_SIZE), b""))
    else:
        yield from _iter_chunks(iter(lambda: source.read(CHUNK_SIZE), b""))


def _iter_chunks(chunks: Iterator[bytes]) -> Iterator[Paper]:
    parser = PaperParser()
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.close()


def _malformed(error: etree.XMLSyntaxError) -> ParseError:
    return ParseError(f"efetch XML is malformed or truncated: {_one_line(str(error))}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _snippet(head: bytes) -> str:
    text = _one_line(head.decode("utf-8", "replace"))
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def _describe_root(root: etree._Element) -> str:
    described = f"<{root.tag}>"
    # E-utilities put the reason for an in-band failure in <ERROR>, when it has arrived in this chunk.
    message = root.findtext(".//ERROR")
    if message and message.strip():
        described += f": {_one_line(message)}"
    return described


def _collapse_unusual_whitespace(fields: str) -> str:
    found = False
    for space in _UNUSUAL_WHITESPACE:
        if space in fields:
            fields = fields.replace(space, " ")
            found = True
    if not found:
        return fields
    while "  " in fields:
        fields = fields.replace("  ", " ")
    for separator in "\t\n\r":
        fields = fields.replace(" " + separator, separator).replace(separator + " ", separator)
    return fields.lstrip(" ")


def _paper(fields: _Sections, record_tag: str, index: int, record_bytes: Callable[[int], bytes]) -> Paper:
    pmid = fields.pmid
    if not pmid:
        raise ParseError(f"a {record_tag} without a PMID (record {index} of the efetch body)")
    number = parse_pmid(pmid)
    if number is None:
        kind = "an out-of-range" if pmid.isascii() and pmid.isdigit() else "a non-numeric"
        raise ParseError(f"a {record_tag} with {kind} PMID {pmid[:40]!r} (a PMID is a whole number from 1 to "
                         f"2,147,483,647; record {index} of the efetch body)")
    pub_date_text, first_day = _pub_date(fields.pub_date)
    if pub_date_text is None:
        pub_date_text, first_day = _pub_date(fields.article_date)
    return Paper(
        pmid=number,
        kind="book" if record_tag == _BOOK else "article",
        title=fields.article_title or fields.vernacular_title or fields.book_title,
        abstract_sections=tuple(
            AbstractSection(label or None, category or None, text)
            for label, category, text in (section.split("\r") for section in fields.abstract.split("\t"))
        ) if fields.abstract else (),
        authors=_authors(fields.authors),
        journal=fields.journal or None,
        journal_iso=fields.journal_iso or None,
        volume=fields.volume or None,
        issue=fields.issue or None,
        pages=fields.medline_pages or "-".join(page for page in (fields.start_page, fields.end_page) if page) or None,
        pub_date_text=pub_date_text,
        pub_date=first_day,
        doi=fields.doi or fields.elocation_doi or None,
        pmcid=fields.pmcid or None,
        publication_types=_non_empty(fields.publication_types),
        mesh_headings=tuple(
            _mesh_heading(*heading.split("\r")) for heading in fields.mesh.split("\t")
        ) if fields.mesh else (),
        keywords=_non_empty(fields.keywords),
        languages=_non_empty(fields.languages),
        citation_status=fields.status or None,
        history=_history(fields.history),
        comments_corrections=tuple(
            CommentCorrection(ref_type, int(ref_pmid) if ref_pmid.isdigit() else None, source or None)
            for ref_type, ref_pmid, source in (comment.split("\r") for comment in fields.comments.split("\t"))
        ) if fields.comments else (),
        databanks=_databanks(fields.databanks),
        editors=_authors(fields.editors),
        book_title=fields.book_title or None,
        publisher=fields.publisher or None,
        publisher_location=fields.publisher_location or None,
        edition=fields.edition or None,
        book_accession=fields.book_accession or None,
        location_label=fields.location_label or None,
        chapter=record_tag == _BOOK and bool(fields.article_title or fields.location_label),
        xml=record_bytes(int(pmid)),
    )


def _authors(section: str) -> tuple[Author, ...]:
    return tuple(_author(*author.split("\r")) for author in section.split("\t")) if section else ()


def _databanks(section: str) -> tuple[tuple[str, str], ...]:
    pairs = (item.split("\r") for item in section.split("\t")) if section else ()
    return tuple((bank, accession) for bank, accession in pairs if accession)


def _non_empty(section: str) -> tuple[str, ...]:
    return tuple(item for item in section.split("\t") if item) if section else ()


def _author(last_name: str, fore_name: str, initials: str, collective_name: str, orcid: str,
            *affiliations: str) -> Author:
    return Author(
        last_name or None,
        fore_name or None,
        initials or None,
        collective_name or None,
        (orcid if _BARE_ORCID.fullmatch(orcid) else _normalise_orcid(orcid)) if orcid else None,
        tuple(affiliation for affiliation in affiliations if affiliation),
    )


def _normalise_orcid(value: str) -> str | None:
    """The bare 0000-0000-0000-000X form of an ORCID written bare, as a URL or without dashes."""
    match = _ORCID.search(value)
    if match is None:
        return value.strip() or None
    return "-".join(match.groups()).upper()


def _mesh_heading(descriptor: str, descriptor_ui: str, major: str, *qualifiers: str) -> MeshHeading:
    return MeshHeading(
        descriptor,
        descriptor_ui or None,
        major == "Y",
        tuple(zip(qualifiers[::2], [flag == "Y" for flag in qualifiers[1::2]], strict=True)),
    )


def _history(section: str) -> tuple[tuple[str, str], ...]:
    entries = []
    for entry in section.split("\t") if section else ():
        status, _, value = entry.partition("\r")
        try:
            date.fromisoformat(value[:10])
        except ValueError:
            continue
        if len(value) > 10 and not _HISTORY_TIME.fullmatch(value, 10):
            value = value[:10]
        entries.append((status, value))
    return tuple(entries)


def _pub_date(section: str) -> tuple[str | None, date | None]:
    """PubDate, ArticleDate or Book/PubDate as (display text, first day of the period it names)."""
    if not section:
        return None, None
    year, month_text, day_text, season, medline_date = section.split("\t")
    if medline_date:
        return medline_date, _first_day_of(medline_date)
    month = _month_number(month_text)
    if whole_number(month_text) is not None and month is not None:
        # PubMed shows "2017 Jun" for <Month>06</Month>, as for <Month>Jun</Month>.
        month_text = _MONTH_ABBREVIATIONS[month]
    day = whole_number(day_text, high=99)
    if day is not None:
        day_text = str(day)
    text = " ".join(piece for piece in (year, month_text or season, day_text) if piece) or None
    year_number = whole_number(year, high=9999)
    if year_number is None:
        return text, None
    if month is None and season:
        month = _first_month_in(season)
    return text, _valid_date(year_number, month or 1, day if day is not None and month else 1)


def _month_number(text: str) -> int | None:
    if not text:
        return None
    number = whole_number(text)
    if number is not None:
        return number if 1 <= number <= 12 else None
    return _MONTHS.get(text[:3].lower())


def _first_month_in(text: str) -> int | None:
    for word in _WORD.findall(text):
        lowered = word.lower()
        if lowered in _SEASONS:
            return _SEASONS[lowered]
        if len(lowered) >= 3 and lowered[:3] in _MONTHS:
            return _MONTHS[lowered[:3]]
    return None


def _first_day_of(medline_date: str) -> date | None:
    """First year, first month: "2013 Jan-Mar" -> 2013-01-01, "1998 Dec-1999 Jan" -> 1998-12-01."""
    year = _YEAR.search(medline_date)
    if year is None:
        return None
    return _valid_date(int(year.group(1)), _first_month_in(medline_date) or 1, 1)


def _valid_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        try:
            return date(year, month, 1)
        except ValueError:
            return None
