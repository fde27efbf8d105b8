"""Paper rows: a `Paper` as the columns the store keeps (and back), the text the search index holds for it, and
the index's writes. Nothing here opens a database: the store's writes and the named migrations (which must not
depend on the store's current code paths beyond these shapes) both call it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import Row, TableClause, bindparam, select, text
from sqlalchemy.engine import Connection
from sqlmodel import Session

from tracker.facts import POPULATIONS, StudyFacts, arrival_tier
from tracker.facts.child import FactsRead, FactsText, read_one
from tracker.ncbi.notices import paper_status
from tracker.ncbi.pubmed import AbstractSection, Author, CommentCorrection, MeshHeading, Paper
from tracker.ncbi.registries import TrialId, trial_ids
from tracker.store.inserts import insert_in_groups
from tracker.store.models import PaperRow
from tracker.store.xmlcodec import compress_xml, decompress_xml

log = logging.getLogger("tracker.store")


def chunked(items: Sequence, size: int = 500) -> Iterator[Sequence]:
    """`items` in slices of `size`: an IN list of a statement stays well under every back end's parameter limit."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def paper_to_row(paper: Paper, now: datetime, facts: StudyFacts | None = None) -> dict:
    """The paper's row; `facts` when its study facts were already read (on the thread that fetched it)."""
    return {
        **record_columns(paper),
        **facts_columns(paper.publication_types, facts if facts is not None else facts_of(paper)),
        "status": paper_status(paper),
        "xml_gz": paper.stored_xml or compress_xml(paper.xml),
        "first_stored_at": now,
        "updated_at": now,
    }


def record_columns(paper: Paper) -> dict:
    """The columns read from the record itself: everything in a paper's row but its status, XML and times."""
    return {
        "pmid": paper.pmid,
        "kind": paper.kind,
        "title": paper.title,
        "abstract": paper.abstract,
        # Dicts written out field by field: dataclasses.asdict() deep-copies every value and cost more than the
        # rest of the row conversion together (BENCHMARKS.md, ingest profile). The keys are asdict()'s.
        "abstract_sections": [
            {"label": section.label, "category": section.category, "text": section.text}
            for section in paper.abstract_sections
        ],
        "authors": [_author_json(author) for author in paper.authors],
        "author_names": "; ".join(author.display for author in paper.authors),
        **export_text(paper.publication_types, ((m.descriptor, m.major) for m in paper.mesh_headings), paper.keywords),
        "journal": paper.journal,
        "journal_iso": paper.journal_iso,
        "volume": paper.volume,
        "issue": paper.issue,
        "pages": paper.pages,
        "pub_date_text": paper.pub_date_text,
        "pub_date": paper.pub_date,
        "pub_year": paper.pub_date.year if paper.pub_date else None,
        "doi": paper.doi,
        "pmcid": paper.pmcid,
        "publication_types": list(paper.publication_types),
        "mesh_headings": [
            {"descriptor": m.descriptor, "descriptor_ui": m.descriptor_ui, "major": m.major,
             "qualifiers": [list(q) for q in m.qualifiers]}
            for m in paper.mesh_headings
        ],
        "keywords": list(paper.keywords),
        "languages": list(paper.languages),
        "citation_status": paper.citation_status,
        "history": [list(entry) for entry in paper.history],
        "comments_corrections": [
            {"ref_type": c.ref_type, "pmid": c.pmid, "source": c.source} for c in paper.comments_corrections
        ],
        "entrez_date": paper.entrez_date,
        "create_date": paper.create_date,
        "late_arrival": paper.late_arrival,
        **book_columns(paper),
        "databanks": [list(pair) for pair in paper.databanks],
        **trial_columns(trial_ids(paper)),
    }


# -- study facts -------------------------------------------------------------------------------

# The topic page filters on a population through the covering index (tracker/store/listing.py): one bit per value.
POPULATION_BITS = {value: 1 << index for index, value in enumerate(POPULATIONS)}
FACTS_BATCH = 500
FACTS_COLUMNS = ("evidence_tier", "tier_from_abstract", "design", "sample_size", "population_bits", "states_dose",
                 "facts", "facts_version")


def facts_text(paper: Paper) -> FactsText:
    """What a paper's study facts are read from: its title and abstract, publication types and MeSH descriptors."""
    return FactsText(paper.pmid, paper.title, paper.abstract, tuple(paper.publication_types),
                     tuple(heading.descriptor for heading in paper.mesh_headings))


def facts_of(paper: Paper) -> StudyFacts:
    """The study facts of a paper, read in this process."""
    return kept_facts(paper.pmid, read_one(facts_text(paper)))


def read_facts(pmid: int, title: str, abstract: str, publication_types: Sequence[str],
               mesh_terms: Sequence[str]) -> StudyFacts:
    return kept_facts(pmid, read_one(FactsText(pmid, title, abstract, tuple(publication_types), tuple(mesh_terms))))


def kept_facts(pmid: int, read: FactsRead) -> StudyFacts:
    """The facts read, here or on a child process (tracker/facts/child.py); a fault in a rule is logged with the PMID,
    and the paper is stored without facts rather than kept out of the store."""
    if read.fault is not None:
        log.error("PMID %s: its study facts could not be read; it is stored without them\n%s", pmid, read.fault.rstrip())
    return read.facts


def population_bits(values: Iterable[str]) -> int:
    bits = 0
    for value in values:
        bits |= POPULATION_BITS.get(value, 0)
    return bits


def facts_columns(publication_types: Sequence[str], facts: StudyFacts) -> dict:
    """The columns of a paper's study facts, and its evidence tier on arrival (tracker.facts.arrival_tier)."""
    tier, from_abstract = arrival_tier(publication_types, facts)
    return {
        "evidence_tier": tier,
        "tier_from_abstract": from_abstract,
        "design": facts.design,
        "sample_size": facts.sample_size,
        "population_bits": population_bits(facts.population_values),
        "states_dose": bool(facts.doses),
        "facts": facts.to_json(),
        "facts_version": facts.version,
    }


def _author_json(author: Author) -> dict:
    return {"last_name": author.last_name, "fore_name": author.fore_name, "initials": author.initials,
            "collective_name": author.collective_name, "orcid": author.orcid, "affiliations": list(author.affiliations)}


def _author(stored: dict) -> Author:
    return Author(**{**stored, "affiliations": tuple(stored.get("affiliations", ()))})


def book_columns(paper: Paper) -> dict:
    """The columns of a book record's details (empty for an article)."""
    return {
        "editors": [_author_json(editor) for editor in paper.editors],
        "editor_names": "; ".join(editor.display for editor in paper.editors),
        "book_title": paper.book_title,
        "publisher": paper.publisher,
        "publisher_location": paper.publisher_location,
        "edition": paper.edition,
        "book_accession": paper.book_accession,
        "location_label": paper.location_label,
        "chapter": paper.chapter,
    }


def trial_columns(trials: Iterable[TrialId]) -> dict:
    """The JSON of a paper's trial registrations ([registry, number, url] each) and their numbers for the CSV."""
    trials = list(trials)
    return {"trial_ids": [[trial.registry, trial.number, trial.url] for trial in trials],
            "trial_ids_text": "; ".join(trial.number for trial in trials)}


def stored_trial_ids(row) -> tuple[TrialId, ...]:
    """The trial registrations of a stored row (a PaperRow or a mapping of its columns)."""
    found = row["trial_ids"] if isinstance(row, Mapping) else row.trial_ids
    return tuple(TrialId(*trial) for trial in found or ())


def export_text(publication_types: Iterable[str], mesh: Iterable[tuple[str, bool]], keywords: Iterable[str]) -> dict:
    """The joined text columns the CSV export reads; `mesh` is (descriptor, major topic?) per heading."""
    return {
        "publication_types_text": "; ".join(publication_types),
        "mesh_terms": "; ".join(descriptor + ("*" if major else "") for descriptor, major in mesh),
        "keywords_text": "; ".join(keywords),
    }


def export_text_from_row(row) -> dict:
    """`export_text` of a stored row's JSON columns (for the migration that added the text columns)."""
    return export_text(row.publication_types, ((m["descriptor"], bool(m.get("major"))) for m in row.mesh_headings),
                       row.keywords)


def row_to_paper(row: PaperRow | Row) -> Paper:
    """The stored row back as a `Paper` (with its original XML), for digests and exports."""
    return Paper(
        pmid=row.pmid,
        kind=row.kind,
        title=row.title,
        abstract_sections=tuple(AbstractSection(**s) for s in row.abstract_sections),
        authors=tuple(_author(a) for a in row.authors),
        journal=row.journal,
        journal_iso=row.journal_iso,
        volume=row.volume,
        issue=row.issue,
        pages=row.pages,
        pub_date_text=row.pub_date_text,
        pub_date=row.pub_date,
        doi=row.doi,
        pmcid=row.pmcid,
        publication_types=tuple(row.publication_types),
        mesh_headings=tuple(
            MeshHeading(m["descriptor"], m.get("descriptor_ui"), bool(m.get("major")),
                        tuple((q[0], bool(q[1])) for q in m.get("qualifiers", ())))
            for m in row.mesh_headings
        ),
        keywords=tuple(row.keywords),
        languages=tuple(row.languages),
        citation_status=row.citation_status,
        history=tuple((h[0], h[1]) for h in row.history),
        comments_corrections=tuple(CommentCorrection(**c) for c in row.comments_corrections),
        databanks=tuple((bank, accession) for bank, accession in row.databanks),
        editors=tuple(_author(a) for a in row.editors),
        book_title=row.book_title,
        publisher=row.publisher,
        publisher_location=row.publisher_location,
        edition=row.edition,
        book_accession=row.book_accession,
        location_label=row.location_label,
        chapter=bool(row.chapter),
        xml=decompress_xml(row.xml_gz),
    )


def search_text(paper: Paper) -> dict[str, str]:
    """The text each full-text column indexes for a paper."""
    return _search_columns(
        paper.title, paper.abstract,
        ((m.descriptor, [q for q, _ in m.qualifiers]) for m in paper.mesh_headings),
        [*paper.keywords, *(trial.number for trial in trial_ids(paper))],
        ((a.fore_name, a.last_name, a.collective_name) for a in (*paper.authors, *paper.editors)),
    )


SEARCHED_JSON_COLUMNS = ("mesh_headings", "keywords", "authors", "editors", "trial_ids")


def search_text_from_row(row) -> dict[str, str]:
    """`search_text` of a stored paper from its row's columns (title, abstract and the JSON of
    SEARCHED_JSON_COLUMNS), without decompressing its XML. `row` is a PaperRow or any mapping or object with
    those attributes; `row_to_paper` then `search_text` gives the same text."""
    get = row.__getitem__ if isinstance(row, Mapping) else lambda name: getattr(row, name)
    return _search_columns(
        get("title"), get("abstract"),
        ((m["descriptor"], [q[0] for q in m.get("qualifiers", ())]) for m in get("mesh_headings")),
        [*get("keywords"), *(number for _registry, number, _url in get("trial_ids"))],
        ((a.get("fore_name"), a.get("last_name"), a.get("collective_name")) for a in (*get("authors"), *get("editors"))),
    )


def _search_columns(title: str, abstract: str, mesh: Iterable[tuple[str, Sequence[str]]], keywords: Iterable[str],
                    people: Iterable[tuple[str | None, str | None, str | None]]) -> dict[str, str]:
    """The one definition of the indexed text: `mesh` is (descriptor, qualifier names) per heading, `keywords`
    the author keywords then the trial registration numbers (so that `tracker search NCT01234567` finds the
    paper however PubMed listed the number), `people` (fore name, last name, collective name) per author, then
    per editor."""
    mesh = list(mesh)
    return {
        "title": title,
        "abstract": abstract,
        "mesh": "; ".join([descriptor for descriptor, _ in mesh] + [q for _, qualifiers in mesh for q in qualifiers]),
        "keywords": "; ".join(keywords),
        "authors": "; ".join(" ".join(part for part in names if part) for names in people),
    }


def refill_facts(connection: Connection, paper: TableClause, *, below: int | None = None, batch: int = FACTS_BATCH) -> int:
    """Read the study facts of the papers in `paper` (only those whose `facts_version` is below `below`, when given)
    again from their stored title, abstract, publication types and MeSH headings, and write them with the evidence
    tier on arrival, in the caller's transaction; returns how many papers were read. `paper` names the columns as
    the caller's schema has them (a migration passes its own written-out table)."""
    last, done = -1, 0
    while True:
        values = read_facts_batch(connection, paper, below, last, batch)
        if not values:
            return done
        write_facts_batch(connection, paper, values, below)
        done += len(values)
        last = values[-1]["key"]


def read_facts_batch(connection: Connection, paper: TableClause, below: int | None, last: int, batch: int) -> list[dict]:
    """The facts columns of the next `batch` papers after PMID `last` (below version `below`), read again."""
    read = select(paper.c.pmid, paper.c.title, paper.c.abstract, paper.c.publication_types, paper.c.mesh_headings)
    if below is not None:
        read = read.where(paper.c.facts_version < below)
    values = []
    for pmid, title, abstract, types, headings in connection.execute(
            read.where(paper.c.pmid > last).order_by(paper.c.pmid).limit(batch)):
        types = list(types or ())
        facts = read_facts(pmid, title or "", abstract or "", types,
                           [heading["descriptor"] for heading in headings or ()])
        values.append({"key": pmid, **facts_columns(types, facts)})
    return values


def write_facts_batch(connection: Connection, paper: TableClause, values: list[dict], below: int | None) -> None:
    condition = paper.c.pmid == bindparam("key")
    if below is not None:
        # A paper fetched again meanwhile already holds the current extractor's facts: it is left as it is.
        condition = condition & (paper.c.facts_version < below)
    connection.execute(paper.update().where(condition).values(**{name: bindparam(name) for name in FACTS_COLUMNS}),
                       values)


# Weights A-D are all tsvector has: MeSH and keywords share B, so a `keywords:` filter also matches MeSH.
_POSTGRES_DOCUMENT = (
    "setweight(to_tsvector('english', :title), 'A') || setweight(to_tsvector('english', :mesh), 'B') || "
    "setweight(to_tsvector('english', :keywords), 'B') || setweight(to_tsvector('english', :abstract), 'C') || "
    "setweight(to_tsvector('english', :authors), 'D')"
)


class HasDialect(Protocol):
    """All the search index needs of a store: which database it is (a copy's target is one before it is a Store)."""

    dialect: str


def save_search_index_rows(store: HasDialect, session: Session | Connection, rows: Sequence, *,
                           indexed: Collection[int] | None = None) -> None:
    """`save_search_index` for stored rows (PaperRow objects or mappings of the paper's columns); `indexed`, when
    known, are those among them that have an entry already (None: any may have)."""
    write_search_index(store, session, [
        {"pmid": row["pmid"] if isinstance(row, Mapping) else row.pmid, **search_text_from_row(row)} for row in rows
    ], indexed=indexed)


def write_search_index(store: HasDialect, session: Session | Connection, entries: Sequence[dict], *,
                       indexed: Collection[int] | None = None) -> None:
    """Index (or re-index) papers from their search text: {"pmid": ..., **search_text(paper)} each."""
    write_search_entries(store.dialect, session, entries, indexed=indexed)


def write_search_entries(dialect: str, session, entries: Sequence[dict], *,
                         indexed: Collection[int] | None = None) -> None:
    """`write_search_index` through any session or connection of a `dialect` database (a migration's too)."""
    if not entries:
        return
    if dialect == "postgresql":
        session.execute(
            text(f"INSERT INTO paper_fts (pmid, document) VALUES (:pmid, {_POSTGRES_DOCUMENT}) "
                 "ON CONFLICT (pmid) DO UPDATE SET document = excluded.document"),
            list(entries),
        )
        return
    if dialect != "sqlite":
        return
    for chunk in chunked(list(entries)):
        # FTS5 has no upsert: an entry is replaced by deleting it first (only papers that have one, when known).
        replaced = [int(e["pmid"]) for e in chunk if indexed is None or e["pmid"] in indexed]
        if replaced:
            session.execute(text(f"DELETE FROM paper_fts WHERE rowid IN ({', '.join(map(str, replaced))})"))
        insert_in_groups(session if isinstance(session, Connection) else session.connection(),
                         "INSERT INTO paper_fts (rowid, title, abstract, mesh, keywords, authors) VALUES (?, ?, ?, ?, ?, ?)",
                         [(e["pmid"], e["title"], e["abstract"], e["mesh"], e["keywords"], e["authors"]) for e in chunk])


__all__ = [
    "chunked", "paper_to_row", "record_columns", "facts_text", "facts_of", "read_facts", "kept_facts", "facts_columns",
    "population_bits",
    "POPULATION_BITS", "FACTS_COLUMNS", "refill_facts", "read_facts_batch", "write_facts_batch",
    "row_to_paper", "book_columns", "trial_columns", "stored_trial_ids",
    "export_text", "export_text_from_row", "search_text", "search_text_from_row", "SEARCHED_JSON_COLUMNS",
    "save_search_index_rows", "write_search_index", "write_search_entries", "HasDialect",
]
