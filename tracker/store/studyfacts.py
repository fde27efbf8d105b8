"""Study facts in the store: reading a paper's stored facts for the faces, and reading them again from the stored
title and abstract, for every paper (migration 12, study-facts) or for those an older extractor wrote (`tracker db
migrate` after EXTRACTOR_VERSION went up).

Reading again is done in batches in PMID order, each batch one short transaction when it is not part of a
migration: an interrupted pass leaves every paper with the facts of one extractor or the other, never half of
each, and the next pass reads only what is left (the stored `facts_version` says which).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, inspect, select

from tracker.facts import EXTRACTOR_VERSION, StudyFacts
from tracker.store.database import Store
from tracker.store.models import PaperRow
from tracker.store.rows import FACTS_BATCH, chunked, read_facts_batch, write_facts_batch

_paper = PaperRow.__table__


@dataclass(frozen=True)
class StoredFacts:
    """A paper's stored study facts and its evidence tier on arrival, as the faces show them."""

    facts: StudyFacts
    tier: str
    tier_from_abstract: bool


def stored_facts(store: Store, pmids: Sequence[int]) -> dict[int, StoredFacts]:
    """The stored facts of `pmids` (those the store holds), without reading anything else of the papers."""
    found: dict[int, StoredFacts] = {}
    with store.connect() as connection:
        for chunk in chunked(sorted(set(pmids))):
            for pmid, text, tier, from_abstract in connection.execute(_FACTS_OF, {"pmids": chunk}):
                found[pmid] = StoredFacts(facts_from_column(text), tier, bool(from_abstract))
    return found


_FACTS_OF = (select(_paper.c.pmid, _paper.c.facts, _paper.c.evidence_tier, _paper.c.tier_from_abstract)
             .where(_paper.c.pmid.in_(bindparam("pmids", expanding=True))))


def facts_from_column(text: str | None) -> StudyFacts:
    """The stored JSON as StudyFacts (a paper never read gives empty facts)."""
    return StudyFacts.from_json(text) if text else StudyFacts(version=0)


# -- reading the facts again ----------------------------------------------------------------------

def count_stale_facts(store: Store) -> int:
    """Papers whose stored facts an older extractor wrote: `tracker db migrate` reads them again. None in a database
    whose schema has no study facts yet (the migration that adds them reads every paper's)."""
    with store.connect() as connection:
        if not inspect(connection).has_table("paper") or "facts_version" not in {
                column["name"] for column in inspect(connection).get_columns("paper")}:
            return 0
        return connection.execute(select(func.count()).select_from(_paper)
                                  .where(_paper.c.facts_version < EXTRACTOR_VERSION)).scalar_one()


@dataclass(frozen=True)
class FactsRefresh:
    papers: int
    seconds: float


def refresh_stale_facts(store: Store, *, progress: Callable[[int], None] | None = None) -> FactsRefresh:
    """Read again the facts an older extractor wrote, a batch at a time: each batch is read and extracted outside any
    write, then written in a transaction of its own (the scheduler's runs go on meanwhile), `progress(papers)`
    after each."""
    started = time.perf_counter()
    last, done = -1, 0
    while True:
        with store.connect() as connection:
            values = read_facts_batch(connection, _paper, EXTRACTOR_VERSION, last, FACTS_BATCH)
        if not values:
            return FactsRefresh(done, time.perf_counter() - started)
        with store.engine.begin() as connection:
            write_facts_batch(connection, _paper, values, EXTRACTOR_VERSION)
        done += len(values)
        last = values[-1]["key"]
        if progress is not None:
            progress(len(values))


__all__ = ["StoredFacts", "stored_facts", "facts_from_column", "count_stale_facts", "FactsRefresh",
           "refresh_stale_facts"]
