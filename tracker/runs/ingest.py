"""PMIDs into stored papers: the one path every run takes from a list of PMIDs to rows in the store.

`store_pmids` is what a topic run, an ad-hoc query and an import do with the PMIDs they found: the papers the
store already holds are linked to the topic, the others are fetched in efetch batches and each batch is
saved (and linked) as soon as its body has parsed completely, in order, in the calling thread, while the
next batches are already on their way (tracker/ncbi/prefetch.py). Each paper's study facts (tracker/facts) are read
on the thread that fetched its batch, right after parsing it, so that the thread saving the batch before does not
wait for them (BENCHMARKS.md, facts). The watch pass refetches stored papers through
the same `fetch_each_batch` with a saver of its own (tracker/runs/watch.py). Either way efetch is asked twice for
a record it left out (a record being replaced, deleted or merged can be missing for a moment); what is
still missing is reported to the run's ledger. After each saved batch the run's hooks are called: progress,
heartbeat, and the stop check.
"""

from __future__ import annotations

import logging
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, replace

from tracker.facts import StudyFacts
from tracker.facts.child import read_all
from tracker.facts.process import FactsProcess
from tracker.ncbi.eutils import EutilsClient
from tracker.ncbi.pubmed import Paper
from tracker.runs.ledger import NO_HOOKS, RunHooks, RunLedger
from tracker.store import Store
from tracker.store.membership import QUERY, link_papers
from tracker.store.papers import save_papers, stored_pmids
from tracker.store.rows import facts_text, kept_facts
from tracker.store.xmlcodec import compress_xml

log = logging.getLogger("tracker.ingest")


@dataclass(frozen=True)
class Batch:
    """A parsed efetch batch and each of its papers' study facts, by PMID."""

    papers: list[Paper]
    facts: dict[int, StudyFacts]


def packed(paper: Paper) -> Paper:
    """The paper with its record's XML compressed as the store keeps it, as soon as it is parsed (on the thread that
    fetched it: tracker/ncbi/eutils.py `prepare_each`). A batch's records as received, held until the batch was
    whole, were 12 MB a batch on its way."""
    return replace(paper, xml=b"", stored_xml=compress_xml(paper.xml)) if paper.xml else paper


def with_facts(papers: list[Paper], reader: FactsProcess | None = None) -> Batch:
    """Read the study facts of a parsed batch, each record already `packed`, on the thread that fetched it
    (tracker/ncbi/eutils.py `prepare`), or on `reader`'s process while that thread waits without the interpreter
    lock."""
    texts = [facts_text(paper) for paper in papers]
    reads = read_all(texts) if reader is None else reader.read(texts)
    return Batch(papers, {paper.pmid: kept_facts(paper.pmid, read) for paper, read in zip(papers, reads, strict=True)})


SaveBatch = Callable[[Batch], None]


@dataclass(frozen=True)
class Ingested:
    fresh: tuple[int, ...]  # the PMIDs the store lacked, now fetched (less `missing`)
    missing: tuple[int, ...]  # listed, but not returned by efetch even when asked twice


def fetch_each_batch(client: EutilsClient, pmids: Sequence[int], save: SaveBatch, *,
                     hooks: RunHooks = NO_HOOKS) -> list[int]:
    """Fetch `pmids` in efetch batches, handing each parsed batch with its papers' study facts to `save`; returns the
    PMIDs never returned."""
    pending, total = list(pmids), len(pmids)
    # More than one batch: the facts are read on a process of their own while this one parses and saves.
    reader = FactsProcess() if total > client.settings.efetch_batch else None
    try:
        for _attempt in range(2):
            received = _Received(pending)
            # closing(): a stop request or a failure abandons the batches still on their way there and then.
            with closing(client.fetch_papers(pending, prepare_each=packed,
                                             prepare=lambda papers: with_facts(papers, reader))) as batches:
                for batch in batches:
                    save(batch)
                    received.mark(paper.pmid for paper in batch.papers)
                    hooks.batch_saved(len(batch.papers), total)
            # efetch can omit a record esearch just listed (being replaced, deleted or merged); ask once more.
            pending = received.missing()
            if not pending:
                break
    finally:
        if reader is not None:
            reader.close()
    return pending


class _Received:
    """Which of the PMIDs asked for came back: a sorted array and a byte each. A set of the PMIDs received grew with
    the run to 3.6 MB at 50,000 records, most of the backfill's growth in memory (BENCHMARKS.md, backfill)."""

    def __init__(self, asked: Sequence[int]) -> None:
        self._asked = asked
        self._sorted = array("q", sorted(asked))
        self._seen = bytearray(len(self._sorted))

    def mark(self, pmids: Iterable[int]) -> None:
        for pmid in pmids:
            index = bisect_left(self._sorted, pmid)
            if index < len(self._sorted) and self._sorted[index] == pmid:
                self._seen[index] = 1

    def missing(self) -> list[int]:
        """The PMIDs asked for and not received, in the order asked."""
        return [pmid for pmid in self._asked if not self._seen[bisect_left(self._sorted, pmid)]]


def store_pmids(store: Store, client: EutilsClient, pmids: Sequence[int], *, topic: str | None,
                ledger: RunLedger, hooks: RunHooks = NO_HOOKS, source: str = QUERY) -> Ingested:
    """Link the stored ones among `pmids` to `topic` (None: no topic) as coming from `source` (the membership's
    source: tracker/store/membership.py), fetch and save the rest."""
    pmids = list(dict.fromkeys(pmids))
    already = stored_pmids(store, pmids)
    if topic is not None:
        ledger.linked(link_papers(store, topic, [pmid for pmid in pmids if pmid in already], ledger.run_id,
                                  source=source))
    fresh = [pmid for pmid in pmids if pmid not in already]

    def save(batch: Batch) -> None:
        new_to_store, new_to_topic = save_papers(store, batch.papers, topic=topic, run_id=ledger.run_id,
                                                 source=source, facts=batch.facts)
        ledger.saved(new_to_store=new_to_store, new_to_topic=new_to_topic if topic is not None else new_to_store)

    missing = fetch_each_batch(client, fresh, save, hooks=hooks)
    if missing:
        log.warning("%s: %d PMIDs were not returned by efetch: %s", topic or "query", len(missing),
                    ", ".join(map(str, missing[:20])))
        ledger.missing(missing)
    gone = set(missing)
    return Ingested(fresh=tuple(pmid for pmid in fresh if pmid not in gone), missing=tuple(missing))


__all__ = ["Batch", "Ingested", "fetch_each_batch", "packed", "store_pmids", "with_facts"]
