"""PubMed efetch XML for tests, built by hand in the shape of the PubMed DTD 250101 (pubmed_250101.dtd).

article_xml() gives one <PubmedArticle>, book_xml() one <PubmedBookArticle> (statpearls_chapter_xml() and
nice_guideline_xml() in the shapes of a StatPearls chapter and of a whole NICE guideline), and article_set()
wraps records in the <?xml?> declaration, the DOCTYPE and <PubmedArticleSet> exactly as efetch does. The
element order is the DTD's (MedlineCitation: PMID, Article, MedlineJournalInfo, CommentsCorrectionsList,
MeshHeadingList, KeywordList; PubmedData: History, PublicationStatus, ArticleIdList, ReferenceList; Book:
Publisher, BookTitle, PubDate, AuthorList, Volume, Edition, CollectionTitle, ELocationID, Medium,
ReportNumber). Titles and abstracts are inserted as raw XML, so a test can pass "<i>Staphylococcus</i>
aureus"; every other text is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from xml.sax.saxutils import escape, quoteattr

DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">'
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# An author is "Last Initials" ("Smith JA") or a mapping with any of the keys last, fore, initials,
# collective, orcid, affiliations.
AuthorSpec = str | Mapping[str, object]
# An abstract is one raw-XML text or (label, NlmCategory, raw-XML text) sections.
AbstractSpec = str | Sequence[tuple[str | None, str | None, str]] | None
# A MeSH heading is a descriptor name or (name, UI, major[, ((qualifier, major), ...)]).
MeshSpec = str | tuple
# A publication date is a date (Year/Month/Day), free text (MedlineDate, "2013 Jan-Mar") or the PubDate
# children by name ({"Year": "2019", "Season": "Spring"}).
PubDateSpec = date | str | Mapping[str, str] | None


def article_xml(
    pmid: int,
    *,
    created: date,
    entrez: date | None = None,
    title: str = "Norepinephrine versus phenylephrine for spinal hypotension during caesarean delivery.",
    abstract: AbstractSpec = "We compared two vasopressors in a randomised trial.",
    authors: Sequence[AuthorSpec] = ("Smith JA", "Jones B"),
    journal: str = "Anesthesia and analgesia",
    journal_iso: str = "Anesth Analg",
    volume: str | None = "130",
    issue: str | None = "2",
    pages: str | None = "301-309",
    pub_date: PubDateSpec = date(2024, 3, 5),
    article_date: date | None = None,
    publication_types: Sequence[str] = ("Journal Article",),
    mesh: Sequence[MeshSpec] = (),
    keywords: Sequence[str] = (),
    languages: Sequence[str] = ("eng",),
    status: str = "MEDLINE",
    doi: str | None = None,
    elocation_doi: str | None = None,
    pmcid: str | None = None,
    vernacular_title: str | None = None,
    databanks: Sequence[tuple[str, Sequence[str]]] = (),
    comments_corrections: Sequence[tuple[str, int | None, str]] = (),
    extra_history: Sequence[tuple[str, date]] = (),
    references: Sequence[tuple[str, int | None]] = (),
) -> str:
    """One <PubmedArticle>; created is the "pubmed" history date [crdt], entrez [edat] defaults to it."""
    journal_issue = (
        _element("Volume", volume) + _element("Issue", issue) + _pub_date(pub_date)
    )
    article = (
        '<Article PubModel="Print-Electronic">'
        f'<Journal><ISSN IssnType="Electronic">1526-7598</ISSN>'
        f'<JournalIssue CitedMedium="Internet">{journal_issue}</JournalIssue>'
        f"{_element('Title', journal)}{_element('ISOAbbreviation', journal_iso)}</Journal>"
        f"<ArticleTitle>{title}</ArticleTitle>"
        + (f"<Pagination><MedlinePgn>{escape(pages)}</MedlinePgn></Pagination>" if pages else "")
        + (f'<ELocationID EIdType="doi" ValidYN="Y">{escape(elocation_doi)}</ELocationID>' if elocation_doi else "")
        + _abstract(abstract)
        + _author_list(authors)
        + "".join(_element("Language", language) for language in languages)
        + _databank_list(databanks)
        + "<PublicationTypeList>"
        + "".join(f'<PublicationType UI="D0{index:05d}">{escape(kind)}</PublicationType>'
                  for index, kind in enumerate(publication_types, start=16428))
        + "</PublicationTypeList>"
        + _element("VernacularTitle", vernacular_title)
        + (_date_element("ArticleDate", article_date, attributes=' DateType="Electronic"') if article_date else "")
        + "</Article>"
    )
    citation = (
        f'<MedlineCitation Status="{escape(status)}" Owner="NLM" IndexingMethod="Automated">'
        f'<PMID Version="1">{pmid}</PMID>'
        f"{_date_element('DateRevised', created)}"
        f"{article}"
        "<MedlineJournalInfo><Country>United States</Country>"
        f"<MedlineTA>{escape(journal_iso)}</MedlineTA><NlmUniqueID>1310650</NlmUniqueID>"
        "<ISSNLinking>0003-2999</ISSNLinking></MedlineJournalInfo>"
        + _comments_corrections(comments_corrections)
        + _mesh_headings(mesh)
        + (f'<KeywordList Owner="NOTNLM">{"".join(_keyword(word) for word in keywords)}</KeywordList>'
           if keywords else "")
        + "</MedlineCitation>"
    )
    history = [*extra_history, ("entrez", entrez or created), ("pubmed", created)]
    ids = [("pubmed", str(pmid)), ("doi", doi), ("pmc", pmcid)]
    pubmed_data = (
        f"<PubmedData>{_history(history)}<PublicationStatus>ppublish</PublicationStatus>"
        f"{_article_ids(ids)}{_references(references)}</PubmedData>"
    )
    return f"<PubmedArticle>{citation}{pubmed_data}</PubmedArticle>"


def book_xml(
    pmid: int,
    *,
    created: date,
    entrez: date | None = None,
    title: str | None = "Vasopressor Therapy",
    book_title: str = "StatPearls",
    abstract: AbstractSpec = "Vasopressors raise blood pressure by vasoconstriction.",
    authors: Sequence[AuthorSpec] = ("Smith JA",),
    editors: Sequence[AuthorSpec] = ("Editor E",),
    book_authors: Sequence[AuthorSpec] = (),
    part_editors: Sequence[AuthorSpec] = (),
    location_label: str | None = None,
    publisher: str = "StatPearls Publishing",
    publisher_location: str | None = "Treasure Island (FL)",
    volume: str | None = None,
    edition: str | None = None,
    collection_title: str | None = None,
    report_number: str | None = None,
    pages: str | None = None,
    pub_date: PubDateSpec = date(2024, 1, 15),
    publication_types: Sequence[str] = ("Review",),
    keywords: Sequence[str] = (),
    languages: Sequence[str] = ("eng",),
    accession: str = "NBK537147",
    doi: str | None = None,
    elocation_doi: str | None = None,
) -> str:
    """One <PubmedBookArticle>: a part (title, location_label) of a book (book_title), or with neither the
    whole book. authors and part_editors are the part's (BookDocument/AuthorList), book_authors and editors
    the book's (BookDocument/Book/AuthorList)."""
    book = (
        f"<Book><Publisher>{_element('PublisherName', publisher)}"
        f"{_element('PublisherLocation', publisher_location)}</Publisher>"
        f'<BookTitle book="statpearls">{book_title}</BookTitle>{_pub_date(pub_date)}'
        + _author_list(book_authors, list_type="authors")
        + _author_list(editors, list_type="editors")
        + _element("Volume", volume)
        + _element("Edition", edition)
        + _element("CollectionTitle", collection_title)
        + (f'<ELocationID EIdType="doi" ValidYN="Y">{escape(elocation_doi)}</ELocationID>' if elocation_doi else "")
        + "<Medium>Internet</Medium>"
        + _element("ReportNumber", report_number)
        + "</Book>"
    )
    document = (
        f'<BookDocument><PMID Version="1">{pmid}</PMID>'
        f'<ArticleIdList><ArticleId IdType="bookaccession">{escape(accession)}</ArticleId></ArticleIdList>'
        + book
        + (f'<LocationLabel Type="chapter">{escape(location_label)}</LocationLabel>' if location_label else "")
        + (f'<ArticleTitle book="statpearls" part="article-1">{title}</ArticleTitle>' if title is not None else "")
        + (f"<Pagination><MedlinePgn>{escape(pages)}</MedlinePgn></Pagination>" if pages else "")
        + "".join(_element("Language", language) for language in languages)
        + _author_list(authors, list_type="authors")
        + _author_list(part_editors, list_type="editors")
        + "".join(f'<PublicationType UI="D016454">{escape(kind)}</PublicationType>' for kind in publication_types)
        + _abstract(abstract)
        + (f'<KeywordList Owner="NOTNLM">{"".join(_keyword(word) for word in keywords)}</KeywordList>'
           if keywords else "")
        + "</BookDocument>"
    )
    book_data = (
        f"<PubmedBookData>{_history([('pubmed', created), ('medline', created), ('entrez', entrez or created)])}"
        f"<PublicationStatus>ppublish</PublicationStatus>"
        f"{_article_ids([('pubmed', str(pmid)), ('doi', doi)])}</PubmedBookData>"
    )
    return f"<PubmedBookArticle>{document}{book_data}</PubmedBookArticle>"


def statpearls_chapter_xml(pmid: int, *, created: date, **fields) -> str:
    """A StatPearls-style chapter: its own title and LocationLabel, its authors, no book editors."""
    return book_xml(pmid, created=created, **({
        "title": "Norepinephrine", "location_label": "Chapter 1", "editors": (),
        "authors": ({"last": "Smith", "fore": "Jane A", "initials": "JA",
                     "affiliations": ["Mayo Clinic"]}, "Jones B"),
        "pub_date": {"Year": "2024", "Month": "01"}, "accession": "NBK537259",
    } | fields))


def nice_guideline_xml(pmid: int, *, created: date, **fields) -> str:
    """A whole NICE-style guideline book: no ArticleTitle, the guideline centre as a CollectiveName on
    Book/AuthorList, NICE as publisher, a series (CollectionTitle) and its number (ReportNumber)."""
    return book_xml(pmid, created=created, **({
        "title": None, "book_title": "Hypertension in adults: diagnosis and management", "authors": (),
        "editors": (), "book_authors": ({"collective": "National Guideline Centre (UK)"},),
        "publisher": "National Institute for Health and Care Excellence (NICE)", "publisher_location": "London",
        "collection_title": "NICE Guideline", "report_number": "No. 136", "abstract": None,
        "pub_date": {"Year": "2019", "Month": "08", "Day": "28"}, "publication_types": ("Practice Guideline",),
        "accession": "NBK547161",
    } | fields))


def article_set(*records: str, deleted: Iterable[int] = ()) -> bytes:
    """An efetch body holding the records, and a <DeleteCitation> when deleted PMIDs are given."""
    deleted_pmids = list(deleted)
    delete_citation = (
        "<DeleteCitation>" + "".join(f'<PMID Version="1">{pmid}</PMID>' for pmid in deleted_pmids)
        + "</DeleteCitation>\n"
        if deleted_pmids else ""
    )
    body = "".join(f"{record}\n" for record in records)
    return (
        f'<?xml version="1.0" ?>\n{DOCTYPE}\n<PubmedArticleSet>\n{body}{delete_citation}</PubmedArticleSet>\n'
    ).encode()


def _element(tag: str, text: str | None) -> str:
    return f"<{tag}>{escape(text)}</{tag}>" if text is not None else ""


def _date_element(tag: str, day: date, *, attributes: str = "") -> str:
    return f"<{tag}{attributes}><Year>{day.year}</Year><Month>{day.month:02d}</Month><Day>{day.day:02d}</Day></{tag}>"


def _pub_date(pub_date: PubDateSpec) -> str:
    if pub_date is None:
        return ""
    if isinstance(pub_date, date):
        parts = {"Year": str(pub_date.year), "Month": MONTHS[pub_date.month - 1], "Day": str(pub_date.day)}
    elif isinstance(pub_date, str):
        parts = {"MedlineDate": pub_date}
    else:
        parts = dict(pub_date)
    return "<PubDate>" + "".join(_element(tag, text) for tag, text in parts.items()) + "</PubDate>"


def _abstract(abstract: AbstractSpec) -> str:
    if abstract is None:
        return ""
    if isinstance(abstract, str):
        return f"<Abstract><AbstractText>{abstract}</AbstractText></Abstract>"
    sections = "".join(
        "<AbstractText"
        + (f" Label={quoteattr(label)}" if label is not None else "")
        + (f" NlmCategory={quoteattr(category)}" if category is not None else "")
        + f">{text}</AbstractText>"
        for label, category, text in abstract
    )
    return f"<Abstract>{sections}</Abstract>"


def _author_list(authors: Sequence[AuthorSpec], *, list_type: str | None = None) -> str:
    if not authors:
        return ""
    type_attribute = f' Type="{list_type}"' if list_type else ""
    return f'<AuthorList{type_attribute} CompleteYN="Y">' + "".join(map(_author, authors)) + "</AuthorList>"


def _author(author: AuthorSpec) -> str:
    if isinstance(author, str):
        last, _, initials = author.rpartition(" ")
        author = {"last": last, "fore": initials, "initials": initials}
    if author.get("collective"):
        names = _element("CollectiveName", author["collective"])
    else:
        names = (_element("LastName", author.get("last")) + _element("ForeName", author.get("fore"))
                 + _element("Initials", author.get("initials")))
    orcid = author.get("orcid")
    identifier = f'<Identifier Source="ORCID">{escape(orcid)}</Identifier>' if orcid else ""
    affiliations = "".join(
        f"<AffiliationInfo>{_element('Affiliation', affiliation)}</AffiliationInfo>"
        for affiliation in author.get("affiliations", ())
    )
    return f'<Author ValidYN="Y">{names}{identifier}{affiliations}</Author>'


def _databank_list(databanks: Sequence[tuple[str, Sequence[str]]]) -> str:
    if not databanks:
        return ""
    return '<DataBankList CompleteYN="Y">' + "".join(
        f"<DataBank>{_element('DataBankName', name)}"
        + ("<AccessionNumberList>" + "".join(_element("AccessionNumber", number) for number in numbers)
           + "</AccessionNumberList>" if numbers else "")
        + "</DataBank>"
        for name, numbers in databanks
    ) + "</DataBankList>"


def _mesh_headings(mesh: Sequence[MeshSpec]) -> str:
    if not mesh:
        return ""
    headings = []
    for heading in mesh:
        name, ui, major, qualifiers = (heading, None, False, ()) if isinstance(heading, str) else (*heading, ())[:4]
        ui_attribute = f' UI="{escape(ui)}"' if ui else ""
        qualifier_names = "".join(
            f'<QualifierName UI="Q000000" MajorTopicYN="{"Y" if qualifier_major else "N"}">'
            f"{escape(qualifier)}</QualifierName>"
            for qualifier, qualifier_major in qualifiers
        )
        headings.append(
            f'<MeshHeading><DescriptorName{ui_attribute} MajorTopicYN="{"Y" if major else "N"}">'
            f"{escape(name)}</DescriptorName>{qualifier_names}</MeshHeading>"
        )
    return "<MeshHeadingList>" + "".join(headings) + "</MeshHeadingList>"


def _keyword(word: str) -> str:
    return f'<Keyword MajorTopicYN="N">{escape(word)}</Keyword>'


def _comments_corrections(entries: Sequence[tuple[str, int | None, str]]) -> str:
    if not entries:
        return ""
    return "<CommentsCorrectionsList>" + "".join(
        f"<CommentsCorrections RefType={quoteattr(ref_type)}><RefSource>{escape(source)}</RefSource>"
        + (f'<PMID Version="1">{pmid}</PMID>' if pmid is not None else "")
        + "</CommentsCorrections>"
        for ref_type, pmid, source in entries
    ) + "</CommentsCorrectionsList>"


def _history(entries: Sequence[tuple[str, date]]) -> str:
    dates = []
    for status, moment in entries:
        time = (f"<Hour>{moment.hour}</Hour><Minute>{moment.minute}</Minute>"
                if isinstance(moment, datetime) else "")
        dates.append(
            f'<PubMedPubDate PubStatus="{escape(status)}"><Year>{moment.year}</Year><Month>{moment.month}</Month>'
            f"<Day>{moment.day}</Day>{time}</PubMedPubDate>"
        )
    return "<History>" + "".join(dates) + "</History>"


def _article_ids(ids: Sequence[tuple[str, str | None]]) -> str:
    return "<ArticleIdList>" + "".join(
        f'<ArticleId IdType="{id_type}">{escape(value)}</ArticleId>' for id_type, value in ids if value
    ) + "</ArticleIdList>"


def _references(references: Sequence[tuple[str, int | None]]) -> str:
    if not references:
        return ""
    return "<ReferenceList>" + "".join(
        f"<Reference><Citation>{escape(citation)}</Citation>"
        + (f'<ArticleIdList><ArticleId IdType="pubmed">{pmid}</ArticleId></ArticleIdList>' if pmid else "")
        + "</Reference>"
        for citation, pmid in references
    ) + "</ReferenceList>"
