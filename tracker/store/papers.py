"""Writing and reading papers and their topic membership."""

from __future__ import annotations

import threading
import weakref
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

from sqlalchemy import select, text
from sqlmodel import Session

from tracker.evidence import classify
from tracker.notices import paper_status
from tracker.pubmed import AbstractSection, Author, CommentCorrection, MeshHeading, Paper
from tracker.store.database import Store, chunked, utcnow
from tracker.store.models import PaperRow, TopicPaper


def paper_to_row(paper: Paper, now: datetime) -> dict:
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
        "authors": [
            {"last_name": author.last_name, "fore_name": author.fore_name, "initials": author.initials,
             "collective_name": author.collective_name, "orcid": author.orcid,
             "affiliations": list(author.affiliations)}
            for author in paper.authors
        ],
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
        "status": paper_status(paper),
        "evidence_tier": classify(paper.publication_types),
        # Level 3: on the real sample records, 45% less time than zlib's default 6 for 8% more bytes; compression
        # was a fifth of the ingest profile (BENCHMARKS.md).
        "xml_gz": zlib.compress(paper.xml, 3),
        "first_stored_at": now,
        "updated_at": now,
    }


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
        authors=tuple(Author(**{**a, "affiliations": tuple(a.get("affiliations", ()))}) for a in row.authors),
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
        xml=zlib.decompress(row.xml_gz) if row.xml_gz else b"",
    )


def search_text(paper: Paper) -> dict[str, str]:
    """The text each full-text column indexes for a paper."""
    return _search_columns(
        paper.title, paper.abstract,
        ((m.descriptor, [q for q, _ in m.qualifiers]) for m in paper.mesh_headings),
        paper.keywords,
        ((a.fore_name, a.last_name, a.collective_name) for a in paper.authors),
    )


def search_text_from_row(row) -> dict[str, str]:
    """`search_text` of a stored paper from its row's columns (title, abstract and the JSON of mesh_headings,
    keywords and authors), without decompressing its XML. `row` is a PaperRow or any mapping or object with
    those attributes; `row_to_paper` then `search_text` gives the same text."""
    get = row.__getitem__ if isinstance(row, Mapping) else lambda name: getattr(row, name)
    return _search_columns(
        get("title"), get("abstract"),
        ((m["descriptor"], [q[0] for q in m.get("qualifiers", ())]) for m in get("mesh_headings")),
        get("keywords"),
        ((a.get("fore_name"), a.get("last_name"), a.get("collective_name")) for a in get("authors")),
    )


def _search_columns(title: str, abstract: str, mesh: Iterable[tuple[str, Sequence[str]]], keywords: Iterable[str],
                    authors: Iterable[tuple[str | None, str | None, str | None]]) -> dict[str, str]:
    """The one definition of the indexed text: `mesh` is (descriptor, qualifier names) per heading, `authors`
    (fore name, last name, collective name) per author."""
    mesh = list(mesh)
    return {
        "title": title,
        "abstract": abstract,
        "mesh": "; ".join([descriptor for descriptor, _ in mesh] + [q for _, qualifiers in mesh for q in qualifiers]),
        "keywords": "; ".join(keywords),
        "authors": "; ".join(" ".join(part for part in names if part) for names in authors),
    }


# Weights A-D are all tsvector has: MeSH and keywords share B, so a `keywords:` filter also matches MeSH.
_POSTGRES_DOCUMENT = (
    "setweight(to_tsvector('english', :title), 'A') || setweight(to_tsvector('english', :mesh), 'B') || "
    "setweight(to_tsvector('english', :keywords), 'B') || setweight(to_tsvector('english', :abstract), 'C') || "
    "setweight(to_tsvector('english', :authors), 'D')"
)


def save_search_index(store: Store, session: Session, papers: Sequence[Paper]) -> None:
    write_search_index(store, session, [{"pmid": p.pmid, **search_text(p)} for p in papers])


def save_search_index_rows(store: Store, session: Session, rows: Sequence) -> None:
    """`save_search_index` for stored rows (PaperRow objects or mappings of the paper's columns)."""
    write_search_index(store, session, [
        {"pmid": row["pmid"] if isinstance(row, Mapping) else row.pmid, **search_text_from_row(row)} for row in rows
    ])


def write_search_index(store: Store, session: Session, entries: Sequence[dict]) -> None:
    """Index (or re-index) papers from their search text: {"pmid": ..., **search_text(paper)} each."""
    if not entries:
        return
    if store.dialect == "postgresql":
        session.execute(
            text(f"INSERT INTO paper_fts (pmid, document) VALUES (:pmid, {_POSTGRES_DOCUMENT}) "
                 "ON CONFLICT (pmid) DO UPDATE SET document = excluded.document"),
            list(entries),
        )
        return
    if store.dialect != "sqlite":
        return
    for chunk in chunked(list(entries)):
        session.execute(text(f"DELETE FROM paper_fts WHERE rowid IN ({', '.join(str(int(e['pmid'])) for e in chunk)})"))
        session.execute(
            text("INSERT INTO paper_fts (rowid, title, abstract, mesh, keywords, authors) "
                 "VALUES (:pmid, :title, :abstract, :mesh, :keywords, :authors)"),
            list(chunk),
        )


def stored_pmids(store: Store, pmids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    with store.session() as session:
        for chunk in chunked(list(pmids)):
            found.update(session.execute(select(PaperRow.pmid).where(PaperRow.pmid.in_(chunk))).scalars())
    return found


def topic_pmids(store: Store, topic: str, pmids: Sequence[int] | None = None) -> set[int]:
    with store.session() as session:
        if pmids is None:
            return set(session.execute(select(TopicPaper.pmid).where(TopicPaper.topic == topic)).scalars())
        found: set[int] = set()
        for chunk in chunked(list(pmids)):
            found.update(session.execute(
                select(TopicPaper.pmid).where(TopicPaper.topic == topic, TopicPaper.pmid.in_(chunk))
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
            select(TopicPaper.pmid).where(TopicPaper.topic == topic, TopicPaper.pmid.in_(chunk))
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
            before.update(session.execute(select(PaperRow.pmid).where(PaperRow.pmid.in_(chunk))).scalars())
        store.upsert(session, PaperRow.__table__, [paper_to_row(p, now) for p in unique], ["pmid"])
        save_search_index(store, session, unique)
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
    newest = []
    with store.session() as session:
        for chunk in chunked(list(pmids)):
            newest += session.execute(
                select(PaperRow.create_date, PaperRow.pmid).where(PaperRow.pmid.in_(chunk))
                .order_by(PaperRow.create_date.desc().nulls_last(), PaperRow.pmid.desc()).limit(limit)
            ).all()
    newest.sort(key=lambda row: (row.create_date or date.min, row.pmid), reverse=True)
    return [row.pmid for row in newest[:limit]]


def load_papers(store: Store, pmids: Sequence[int]) -> list[Paper]:
    order = {pmid: index for index, pmid in enumerate(pmids)}
    papers: list[Paper] = []
    with store.session() as session:
        for chunk in chunked(list(pmids)):
            papers.extend(row_to_paper(row) for row in session.execute(select(PaperRow).where(PaperRow.pmid.in_(chunk))).scalars())
    return sorted(papers, key=lambda p: order[p.pmid])


def count_topic_papers(store: Store) -> dict[str, int]:
    from sqlalchemy import func

    with store.session() as session:
        return dict(session.execute(select(TopicPaper.topic, func.count()).group_by(TopicPaper.topic)).all())


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
                                      .where(TopicPaper.topic == slug)).scalar_one()

    return {slug: _kept(store, ("members", slug), lambda slug=slug: count(slug)) for slug in slugs}


def shared_count(store: Store, slug: str) -> int:
    """Papers of `slug` that another topic holds too (PRISMA's "from other topics")."""
    from sqlalchemy import func

    other = TopicPaper.__table__.alias("other")
    members = select(TopicPaper.pmid).where(TopicPaper.topic == slug)

    def count() -> int:
        with store.engine.connect() as connection:
            return connection.execute(select(func.count(func.distinct(other.c.pmid)))
                                      .where(other.c.topic != slug, other.c.pmid.in_(members))).scalar_one()

    return _kept(store, ("shared", slug), count)


__all__ = [
    "member_counts", "shared_count",
    "paper_to_row", "row_to_paper", "search_text", "search_text_from_row", "save_search_index",
    "save_search_index_rows", "write_search_index", "stored_pmids", "topic_pmids", "save_papers", "link_papers",
    "load_papers", "count_topic_papers",
]
