"""Writing and reading papers and their topic membership."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import Row, select, text
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from tracker.ncbi.evidence import classify
from tracker.ncbi.notices import paper_status
from tracker.ncbi.pubmed import AbstractSection, Author, CommentCorrection, MeshHeading, Paper
from tracker.ncbi.registries import TrialId, trial_ids
from tracker.store.database import Store, chunked, utcnow
from tracker.store.models import PaperRow, TopicPaper
from tracker.store.xmlcodec import compress_xml, decompress_xml


def paper_to_row(paper: Paper, now: datetime) -> dict:
    return {
        **record_columns(paper),
        "status": paper_status(paper),
        "xml_gz": compress_xml(paper.xml),
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
        "evidence_tier": classify(paper.publication_types),
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


def row_to_paper(row: PaperRow) -> Paper:
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


# Weights A-D are all tsvector has: MeSH and keywords share B, so a `keywords:` filter also matches MeSH.
_POSTGRES_DOCUMENT = (
    "setweight(to_tsvector('english', :title), 'A') || setweight(to_tsvector('english', :mesh), 'B') || "
    "setweight(to_tsvector('english', :keywords), 'B') || setweight(to_tsvector('english', :abstract), 'C') || "
    "setweight(to_tsvector('english', :authors), 'D')"
)


class HasDialect(Protocol):
    """All the search index needs of a store: which database it is (a copy's target is one before it is a Store)."""

    dialect: str


def save_search_index(store: Store, session: Session, papers: Sequence[Paper]) -> None:
    write_search_index(store, session, [{"pmid": p.pmid, **search_text(p)} for p in papers])


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
        session.execute(
            text("INSERT INTO paper_fts (rowid, title, abstract, mesh, keywords, authors) "
                 "VALUES (:pmid, :title, :abstract, :mesh, :keywords, :authors)"),
            list(chunk),
        )


def stored_pmids(store: Store, pmids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    with store.session() as session:
        for chunk in chunked(list(pmids)):
            found.update(session.execute(select(col(PaperRow.pmid)).where(col(PaperRow.pmid).in_(chunk))).scalars())
    return found


def topic_pmids(store: Store, topic: str, pmids: Sequence[int] | None = None) -> set[int]:
    with store.session() as session:
        if pmids is None:
            return set(session.execute(select(col(TopicPaper.pmid)).where(col(TopicPaper.topic) == topic)).scalars())
        found: set[int] = set()
        for chunk in chunked(list(pmids)):
            found.update(session.execute(
                select(col(TopicPaper.pmid)).where(col(TopicPaper.topic) == topic, col(TopicPaper.pmid).in_(chunk))
            ).scalars())
        return found


def _link(store: Store, session: Session, topic: str, pmids: Iterable[int], run_id: int | None, now: datetime) -> int:
    """Add topic membership for `pmids`; returns how many were new to the topic."""
    pmids = list(dict.fromkeys(pmids))
    if not pmids:
        return 0
    existing: set[int] = set()
    for chunk in chunked(pmids):
        existing.update(session.execute(
            select(col(TopicPaper.pmid)).where(col(TopicPaper.topic) == topic, col(TopicPaper.pmid).in_(chunk))
        ).scalars())
    rows = [{"topic": topic, "pmid": p, "first_seen_at": now, "run_id": run_id} for p in pmids if p not in existing]
    store.upsert(session, TopicPaper.__table__, rows, ["topic", "pmid"], update=False)
    return len(rows)


def save_papers(store: Store, papers: Sequence[Paper], *, topic: str | None = None, run_id: int | None = None) -> tuple[int, int]:
    """Upsert `papers` (and link them to `topic`) in one short transaction.

    Returns (papers new to the store, papers new to the topic).
    """
    now = utcnow()
    unique = list({paper.pmid: paper for paper in papers}.values())
    with store.session() as session:
        before: set[int] = set()
        for chunk in chunked([p.pmid for p in unique]):
            before.update(session.execute(select(col(PaperRow.pmid)).where(col(PaperRow.pmid).in_(chunk))).scalars())
        rows = [paper_to_row(p, now) for p in unique]
        store.upsert(session, PaperRow.__table__, rows, ["pmid"])
        save_search_index_rows(store, session, rows, indexed=before)  # from the rows: trial ids are found once
        linked = _link(store, session, topic, [p.pmid for p in unique], run_id, now) if topic else 0
        session.commit()
    return len(unique) - len(before), linked


def link_papers(store: Store, topic: str, pmids: Sequence[int], run_id: int | None = None) -> int:
    """Link papers the store already holds to `topic`; returns how many were new to the topic."""
    with store.session() as session:
        linked = _link(store, session, topic, pmids, run_id, utcnow())
        session.commit()
    return linked


def newest_pmids(store: Store, pmids: Sequence[int], limit: int) -> list[int]:
    """The `limit` PMIDs among `pmids` that entered PubMed last (create date, then PMID, descending)."""
    newest: list[Row] = []
    with store.session() as session:
        for chunk in chunked(list(pmids)):
            newest += session.execute(
                select(col(PaperRow.create_date), col(PaperRow.pmid)).where(col(PaperRow.pmid).in_(chunk))
                .order_by(col(PaperRow.create_date).desc().nulls_last(), col(PaperRow.pmid).desc()).limit(limit)
            ).all()
    newest.sort(key=lambda row: (row.create_date or date.min, row.pmid), reverse=True)
    return [row.pmid for row in newest[:limit]]


def load_papers(store: Store, pmids: Sequence[int]) -> list[Paper]:
    order = {pmid: index for index, pmid in enumerate(pmids)}
    papers: list[Paper] = []
    with store.session() as session:
        for chunk in chunked(list(pmids)):
            rows = session.execute(select(PaperRow).where(col(PaperRow.pmid).in_(chunk))).scalars()
            papers.extend(row_to_paper(row) for row in rows)
    return sorted(papers, key=lambda p: order[p.pmid])


def count_topic_papers(store: Store) -> dict[str, int]:
    from sqlalchemy import func

    with store.session() as session:
        return dict(session.execute(select(col(TopicPaper.topic), func.count()).group_by(col(TopicPaper.topic))).all())


# -- membership figures, kept while the memberships stay the same ---------------------------------
# Counting a topic's 100,000 memberships costs tens of milliseconds on SQLite, and every page of the web app
# shows counts. Memberships are only ever added, and SQLite gives each new row of topic_paper a rowid above
# every other, so max(rowid), one probe, says whether any figure can have changed. Kept per Store (one per
# process and database). PostgreSQL counts each time: its counts are index-only scans and it has no rowid.

_figures: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_figures_lock = threading.Lock()


def _kept(store: Store, key: tuple, compute) -> int:
    if store.dialect != "sqlite":
        return compute()
    with store.engine.connect() as connection:
        version = connection.exec_driver_sql("SELECT max(rowid) FROM topic_paper").scalar_one()
    with _figures_lock:
        kept = _figures.setdefault(store, {})
        if kept.get("version") != version:
            kept.clear()
            kept["version"] = version
        if key in kept:
            return kept[key]
    value = compute()
    with _figures_lock:
        if _figures[store].get("version") == version:
            _figures[store][key] = value
    return value


def member_counts(store: Store, slugs: Sequence[str]) -> dict[str, int]:
    """Papers in each of `slugs` (`count_topic_papers` for these topics), recounted only after new memberships."""
    from sqlalchemy import func

    def count(slug: str) -> int:
        with store.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(TopicPaper)
                                      .where(col(TopicPaper.topic) == slug)).scalar_one()

    return {slug: _kept(store, ("members", slug), lambda slug=slug: count(slug)) for slug in slugs}


def shared_count(store: Store, slug: str) -> int:
    """Papers of `slug` that another topic holds too (PRISMA's "from other topics")."""
    from sqlalchemy import func

    other = TopicPaper.__table__.alias("other")
    members = select(col(TopicPaper.pmid)).where(col(TopicPaper.topic) == slug)

    def count() -> int:
        with store.engine.connect() as connection:
            return connection.execute(select(func.count(func.distinct(other.c.pmid)))
                                      .where(other.c.topic != slug, other.c.pmid.in_(members))).scalar_one()

    return _kept(store, ("shared", slug), count)


__all__ = [
    "paper_to_row", "record_columns", "row_to_paper", "book_columns", "trial_columns", "stored_trial_ids",
    "search_text", "search_text_from_row", "SEARCHED_JSON_COLUMNS", "save_search_index", "save_search_index_rows",
    "write_search_index", "write_search_entries", "stored_pmids", "topic_pmids", "save_papers", "link_papers",
    "member_counts", "shared_count",
    "load_papers", "count_topic_papers",
]
