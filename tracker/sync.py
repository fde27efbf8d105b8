"""One topic run: choose the window, search it, fetch only what the store lacks, save, move the watermark.

How "new" is decided: PubMed's create date [crdt] is the day a record entered PubMed and never
changes, unlike the entry date [edat], which is back-dated for records added long after publication.
Each later run searches [crdt] from the last successful window's end minus `overlap_days` up to
tomorrow, so a record is found on the run after it appears, whatever its publication date.
Each run then measures the query's total Count and refreshes the stored papers PubMed has modified
(tracker/watch.py), with the same client and rate limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

from tracker.eutils import EutilsClient
from tracker.errors import TrackerError
from tracker.store import Store
from tracker.store.models import TopicState
from tracker.store.papers import link_papers, load_papers, newest_pmids, save_papers, stored_pmids
from tracker.errors import LockHeldError
from tracker.store.locks import TopicRunLock
from tracker.store.runs import RunCounts, close_interrupted_runs, finish_run, start_run, topic_state
from tracker.topics import Topic
from tracker.watch import watch_topic

log = logging.getLogger("tracker.sync")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Window:
    start: date | None  # None: from the first record PubMed has
    end: date
    kind: str  # "backfill" or "fetch"
    moves_watermark: bool
    state_since: date | None


@dataclass
class TopicRunResult:
    topic: str
    run_id: int | None  # None: skipped
    kind: str  # backfill, fetch, or skipped
    window: Window | None
    succeeded: bool
    new_papers: int = 0
    matched: int = 0
    fetched: int = 0
    missing: int = 0
    refetched: int = 0  # stored papers fetched again because PubMed modified them
    status_changes: int = 0
    requests: int = 0
    seconds: float = 0.0
    error: str | None = None
    warnings: tuple[str, ...] = ()
    skipped: str | None = None  # why nothing ran: another process is running this topic

    def summary(self) -> str:
        if self.skipped:
            return f"{self.topic}: skipped: {self.skipped}"
        if not self.succeeded:
            return f"{self.topic}: FAILED after {self.requests} requests, {self.seconds:.1f} s: {self.error}"
        line = (f"{self.topic}: {self.new_papers} new, {self.matched} matched, {self.requests} requests, "
                f"{self.seconds:.1f} s")
        if self.kind == "backfill":
            line += f" (backfill from {self.window.start or 'the beginning'})"
        if self.missing:
            line += f"; {self.missing} listed by esearch but not returned by efetch"
        if self.status_changes:
            line += (f"; {self.status_changes} status change{'' if self.status_changes == 1 else 's'} "
                     "(see 'tracker status --changes')")
        return line


def plan_window(topic: Topic, state: TopicState | None, *, today: date, overlap_days: int,
                since: date | None = None, full: bool = False) -> Window:
    end = today + timedelta(days=1)  # PubMed dates are US Eastern; a day ahead never misses today's records
    needs_backfill = (
        state is None
        or state.query != topic.query
        or (topic.since is not None and state.since is not None and topic.since < state.since)
    )
    if full or needs_backfill:
        start = since or topic.since
        return Window(start=start, end=end, kind="backfill", moves_watermark=True, state_since=start)
    if since is not None:
        # An explicit later start would leave a gap behind the watermark: fetch, but do not move it.
        return Window(start=since, end=end, kind="fetch", moves_watermark=since <= state.watermark,
                      state_since=state.since)
    start = state.watermark - timedelta(days=overlap_days)
    return Window(start=start, end=end, kind="fetch", moves_watermark=True, state_since=state.since)


@contextmanager
def recording(store: Store, client: EutilsClient, run_id: int, counts: RunCounts, *,
              label: str | None = None) -> Iterator[None]:
    """Count the run's requests; a failure or an interruption closes the run as failed, then propagates."""
    before = client.request_count
    try:
        yield
    except BaseException as error:
        counts.requests = client.request_count - before
        reason = str(error) if isinstance(error, TrackerError) else f"interrupted ({type(error).__name__})"
        finish_run(store, run_id, counts, error=f"{label}: {reason}" if label else reason)
        raise
    counts.requests = client.request_count - before


def save_new_papers(store: Store, client: EutilsClient, pmids: Sequence[int], *, topic: str | None, run_id: int,
                    counts: RunCounts, progress: Progress | None = None) -> None:
    """Fetch `pmids` in efetch batches, saving (and linking to `topic`) each batch as it arrives."""
    to_fetch, total = list(pmids), len(pmids)
    for _attempt in range(2):
        received: set[int] = set()
        for papers in client.fetch_papers(to_fetch):
            fetched, linked = save_papers(store, papers, topic=topic, run_id=run_id)
            counts.fetched += fetched
            counts.new_papers += linked if topic else fetched
            received.update(paper.pmid for paper in papers)
            if progress:
                progress(len(papers), total)
        # efetch can omit a record esearch just listed (being replaced, deleted or merged); ask once more.
        to_fetch = [p for p in to_fetch if p not in received]
        if not to_fetch:
            break
    counts.missing = len(to_fetch)
    if to_fetch:
        log.warning("%s: %d PMIDs were not returned by efetch: %s", topic or "query", len(to_fetch),
                    ", ".join(map(str, to_fetch[:20])))
        counts.warnings = [*(counts.warnings or []), f"not returned by efetch: {', '.join(map(str, to_fetch[:50]))}"]


def sync_topic(store: Store, client: EutilsClient, topic: Topic, *, today: date | None = None,
               since: date | None = None, full: bool = False, progress: Progress | None = None) -> TopicRunResult:
    """Run one topic. A failure is recorded and returned, never half-applied: the watermark stays put.

    While another live process runs the same topic, nothing is done and the result is `skipped`
    (succeeded, no run recorded): that run stores what this one would have (tracker/store/locks.py).
    """
    lock = TopicRunLock(store, topic.slug)
    try:
        lock.acquire()
    except LockHeldError as busy:
        return TopicRunResult(topic=topic.slug, run_id=None, kind="skipped", window=None, succeeded=True,
                              skipped=str(busy))

    def beat(advance: int, total: int) -> None:
        lock.beat()
        if progress:
            progress(advance, total)

    try:
        return _sync_topic(store, client, topic, today=today, since=since, full=full, progress=beat)
    finally:
        lock.release()


def _sync_topic(store: Store, client: EutilsClient, topic: Topic, *, today: date | None = None,
                since: date | None = None, full: bool = False, progress: Progress | None = None) -> TopicRunResult:
    today = today or date.today()
    for interrupted in close_interrupted_runs(store, topic.slug):
        log.warning("topic '%s': run %d was interrupted before it finished (its process was killed or its machine "
                    "went down); marked failed", topic.slug, interrupted)
    state = topic_state(store, topic.slug)
    window = plan_window(topic, state, today=today, overlap_days=client.settings.overlap_days, since=since, full=full)
    run = start_run(store, topic.slug, kind=window.kind, query=topic.query, window_start=window.start,
                    window_end=window.end)
    result = TopicRunResult(topic=topic.slug, run_id=run.id, kind=window.kind, window=window, succeeded=False)
    counts = RunCounts()
    started = time.monotonic()
    log.info("%s: %s window %s..%s", topic.slug, window.kind, window.start or "beginning", window.end)
    try:
        with recording(store, client, run.id, counts, label=f"topic '{topic.slug}'"):
            outcome = client.fetch_pmids(topic.query, window.start, window.end)
            counts.count, counts.matched = outcome.count, len(outcome.pmids)
            counts.query_translation = outcome.query_translation
            counts.errors, counts.warnings = outcome.errors, outcome.warnings
            already = stored_pmids(store, outcome.pmids)
            counts.new_papers += link_papers(store, topic.slug, [p for p in outcome.pmids if p in already], run.id)
            fresh = [p for p in outcome.pmids if p not in already]
            save_new_papers(store, client, fresh, topic=topic.slug, run_id=run.id, counts=counts, progress=progress)
            watched = watch_topic(store, client, topic, run_id=run.id, today=today, counts=counts, search=outcome,
                                  fresh=fresh, progress=progress)
            result.status_changes = len(watched.events)
    except TrackerError as error:
        result.error = f"topic '{topic.slug}': {error}"
        _fill(result, counts, started)
        log.error("%s", result.error)
        return result
    new_state = None
    if window.moves_watermark:
        watermark = max(window.end, state.watermark) if state and window.kind == "fetch" else window.end
        new_state = TopicState(topic=topic.slug, query=topic.query, since=window.state_since, watermark=watermark,
                               updated_at=run.started_at)
    finish_run(store, run.id, counts, watermark=new_state)
    result.succeeded = True
    _fill(result, counts, started)
    return result


def _fill(result: TopicRunResult, counts: RunCounts, started: float) -> None:
    result.new_papers, result.matched, result.fetched = counts.new_papers, counts.matched, counts.fetched
    result.missing, result.requests, result.refetched = counts.missing, counts.requests, counts.refetched
    result.warnings = tuple(counts.warnings or ())
    result.seconds = time.monotonic() - started


def sync_topics(store: Store, client: EutilsClient, topics: list[Topic], *, today: date | None = None,
                since: date | None = None, full: bool = False,
                progress_for: Callable[[Topic], Progress | None] | None = None,
                on_result: Callable[[TopicRunResult], None] | None = None) -> list[TopicRunResult]:
    """Run every topic in turn; one topic's failure does not stop the others."""
    results = []
    for topic in topics:
        result = sync_topic(store, client, topic, today=today, since=since, full=full,
                            progress=progress_for(topic) if progress_for else None)
        results.append(result)
        if on_result:
            on_result(result)
    return results


QUERY_TOPIC = "(query)"


@dataclass
class QueryResult:
    run_id: int
    papers: list  # the newest `limit` matches as Paper values, newest created first
    count: int  # records PubMed matched
    new_papers: int  # matches the store lacked, now stored
    missing: int  # listed by esearch but not returned by efetch
    requests: int
    query_translation: str | None = None
    warnings: tuple[str, ...] = ()


def run_query(store: Store, client: EutilsClient, query: str, *, since: date | None = None,
              today: date | None = None, limit: int = 20) -> QueryResult:
    """A one-off search of create dates from `since` (default: the first record) to tomorrow.

    Matches the store lacks are fetched and stored in no topic; the run is recorded with kind "query"
    and topic "(query)". A failure is recorded on the run, then raised as a TrackerError.
    """
    end = (today or date.today()) + timedelta(days=1)
    run = start_run(store, QUERY_TOPIC, kind="query", query=query, window_start=since, window_end=end)
    counts = RunCounts()
    try:
        with recording(store, client, run.id, counts):
            outcome = client.fetch_pmids(query, since, end)
            counts.count, counts.matched = outcome.count, len(outcome.pmids)
            counts.query_translation = outcome.query_translation
            counts.errors, counts.warnings = outcome.errors, outcome.warnings
            already = stored_pmids(store, outcome.pmids)
            save_new_papers(store, client, [p for p in outcome.pmids if p not in already], topic=None,
                            run_id=run.id, counts=counts)
            shown = load_papers(store, newest_pmids(store, outcome.pmids, limit))
    except TrackerError as error:
        raise TrackerError(f"query run {run.id} failed: {error}: run the query again later") from None
    finish_run(store, run.id, counts)
    return QueryResult(run_id=run.id, papers=shown, count=counts.count or 0, new_papers=counts.new_papers,
                       missing=counts.missing, requests=counts.requests,
                       query_translation=counts.query_translation,
                       warnings=(*(counts.errors or ()), *(counts.warnings or ())))


@dataclass
class ImportResult:
    run_id: int
    pmids: int  # distinct PMIDs in the file
    new_papers: int  # papers new to the topic
    fetched: int  # papers the store lacked, now stored
    missing: int  # PMIDs PubMed did not return
    requests: int


def import_pmids(store: Store, client: EutilsClient, topic: Topic, pmids: Sequence[int]) -> ImportResult:
    """Add papers by PMID to a topic (from a PubMed export): fetch what the store lacks, link them all.

    The topic's watermark is not touched: an import adds papers, it does not say what PubMed holds.
    """
    pmids = list(dict.fromkeys(pmids))
    run = start_run(store, topic.slug, kind="import", query=topic.query, window_start=None, window_end=None)
    counts = RunCounts(count=len(pmids), matched=len(pmids))
    try:
        with recording(store, client, run.id, counts, label=f"import into '{topic.slug}'"):
            already = stored_pmids(store, pmids)
            counts.new_papers += link_papers(store, topic.slug, [p for p in pmids if p in already], run.id)
            save_new_papers(store, client, [p for p in pmids if p not in already], topic=topic.slug, run_id=run.id,
                            counts=counts)
    except TrackerError as error:
        raise TrackerError(f"import into '{topic.slug}' failed: {error}; nothing already saved is lost: "
                           "run the import again") from None
    finish_run(store, run.id, counts)
    return ImportResult(run_id=run.id, pmids=len(pmids), new_papers=counts.new_papers, fetched=counts.fetched,
                        missing=counts.missing, requests=counts.requests)
