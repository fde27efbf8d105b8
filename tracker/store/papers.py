"""Writing and reading papers: one upsert keyed on PMID per batch, with the search index and the topic links in
the same short transaction (tracker/store/rows.py shapes the rows; tracker/store/membership.py links them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from sqlalchemy import Row, bindparam, select
from sqlmodel import Session, col

from tracker.facts import StudyFacts
from tracker.ncbi.pubmed import Paper
from tracker.store.database import Store
from tracker.store.membership import QUERY, link_members
from tracker.store.models import PaperRow
from tracker.store.rows import chunked, paper_to_row, row_to_paper, save_search_index_rows, search_text, write_search_index
from tracker.text import utcnow

ROWS_AT_ONCE = 100


def save_search_index(store: Store, session: Session, papers: Sequence[Paper]) -> None:
    write_search_index(store, session, [{"pmid": p.pmid, **search_text(p)} for p in papers])


def stored_pmids(store: Store, pmids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    with store.session() as session:
        for chunk in chunked(list(pmids)):
            found.update(session.execute(select(col(PaperRow.pmid)).where(col(PaperRow.pmid).in_(chunk))).scalars())
    return found


def save_papers(store: Store, papers: Sequence[Paper], *, topic: str | None = None, run_id: int | None = None,
                source: str = QUERY, facts: Mapping[int, StudyFacts] | None = None) -> tuple[int, int]:
    """Upsert `papers` (and link them to `topic`, as coming from `source`) in one short transaction, each with its
    study facts: those in `facts` (read on the thread that fetched the batch), else read here.

    Returns (papers new to the store, papers new to the topic).
    """
    now = utcnow()
    unique = list({paper.pmid: paper for paper in papers}.values())
    with store.session() as session:
        before: set[int] = set()
        for chunk in chunked([p.pmid for p in unique]):
            before.update(session.execute(select(col(PaperRow.pmid)).where(col(PaperRow.pmid).in_(chunk))).scalars())
        given = facts or {}
        # A slice of rows at a time: a whole batch's rows and their converted values at once were the backfill's
        # peak (BENCHMARKS.md, backfill memory).
        for part in chunked(unique, ROWS_AT_ONCE):
            rows = [paper_to_row(p, now, given.get(p.pmid)) for p in part]
            store.upsert(session, PaperRow.__table__, rows, ["pmid"])
            save_search_index_rows(store, session, rows, indexed=before)  # from the rows: trial ids are found once
            del rows
        linked = link_members(store, session, topic, [p.pmid for p in unique], run_id, now, source=source) if topic else 0
        session.commit()
    return len(unique) - len(before), linked


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


# Built once, read as plain rows: the ORM's statement and instances were a screening page's costliest read (py-spy,
# benchmark 14), and a paper is only ever turned into a Paper.
_PAPERS_BY_PMID = select(PaperRow.__table__).where(PaperRow.__table__.c.pmid.in_(bindparam("pmids", expanding=True)))


def load_papers(store: Store, pmids: Sequence[int]) -> list[Paper]:
    order = {pmid: index for index, pmid in enumerate(pmids)}
    papers: list[Paper] = []
    with store.connect() as connection:
        for chunk in chunked(list(pmids)):
            papers.extend(row_to_paper(row) for row in connection.execute(_PAPERS_BY_PMID, {"pmids": chunk}))
    return sorted(papers, key=lambda p: order[p.pmid])


__all__ = ["save_search_index", "stored_pmids", "save_papers", "newest_pmids", "load_papers"]
