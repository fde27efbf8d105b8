"""One topic run: choose the window, search it, fetch only what the store lacks, save, move the watermark.

How "new" is decided: PubMed's create date [crdt] is the day a record entered PubMed and never
changes, unlike the entry date [edat], which is back-dated for records added long after publication.
Each later run searches [crdt] from the last successful window's end minus `overlap_days` up to
tomorrow, so a record is found on the run after it appears, whatever its publication date.
Each run then measures the query's total Count and refreshes the stored papers PubMed has modified
(tracker/runs/watch.py), with the same client and rate limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from tracker.errors import LockHeldError, TrackerError, UnreachableError, with_context
from tracker.ncbi.eutils import EutilsClient
from tracker.review.relevance import refresh_quietly
from tracker.runs.ingest import store_pmids
from tracker.runs.ledger import NO_HOOKS, RunHooks, RunLedger
from tracker.runs.suggest import suggest_after_run
from tracker.runs.watch import watch_topic
from tracker.store import Store
from tracker.store.locks import TopicRunLock
from tracker.store.membership import IMPORT
from tracker.store.models import TopicState
from tracker.store.papers import load_papers, newest_pmids
from tracker.store.runs import close_interrupted_runs, topic_state
from tracker.text import plural
from tracker.topics import Topic

log = logging.getLogger("tracker.sync")


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
    run_id: int | None  # None: skipped or not tried
    kind: str  # backfill, fetch, skipped, or "not tried"
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
    not_tried: str | None = None  # why nothing was tried: E-utilities could not be reached for an earlier topic
    # The one line saying E-utilities cannot be used (unreachable at this run's first request, or blocking it), and
    # why the topics after it are not tried.
    unreachable: str | None = None
    stop_reason: str | None = None
    suggestions: int | None = None  # new suggestions beyond the query (tracker/runs/suggest.py); None: none asked
    suggestion_warnings: tuple[str, ...] = ()  # why the suggestion pass did not finish, or what it left out
    suggestion_requests: int = 0  # of `requests`, those the suggestion pass spent (ELink, efetch)

    def summary(self) -> str:
        if self.skipped:
            return f"{self.topic}: skipped: {self.skipped}"
        if self.not_tried:
            return f"{self.topic}: not tried: {self.not_tried}"
        if not self.succeeded:
            error = (self.error or "").removeprefix(f"topic '{self.topic}': ")
            return f"{self.topic}: FAILED after {plural(self.requests, 'request')}, {self.seconds:.1f} s: {error}"
        line = (f"{self.topic}: {self.new_papers} new, {self.matched} matched, {plural(self.requests, 'request')}, "
                f"{self.seconds:.1f} s")
        if self.kind == "backfill" and self.window is not None:
            line += f" (backfill from {self.window.start or 'the beginning'})"
        if self.missing:
            line += f"; {self.missing} listed by esearch but not returned by efetch"
        if self.status_changes:
            line += f"; {plural(self.status_changes, 'status change')} (see 'tracker status --changes')"
        if self.suggestions:
            line += f"; {plural(self.suggestions, 'new suggestion')} outside the query (see 'tracker suggest {self.topic}')"
        for warning in self.suggestion_warnings:
            line += f"; warning: {warning}"
        return line


def plan_window(topic: Topic, state: TopicState | None, *, today: date, overlap_days: int,
                since: date | None = None, full: bool = False) -> Window:
    end = today + timedelta(days=1)  # PubMed dates are US Eastern; a day ahead never misses today's records
    needs_backfill = (
        state is None
        or state.query != topic.query
        or (topic.since is not None and state.since is not None and topic.since < state.since)
    )
    if full or needs_backfill or state is None:
        start = since or topic.since
        return Window(start=start, end=end, kind="backfill", moves_watermark=True, state_since=start)
    if since is not None:
        # An explicit later start would leave a gap behind the watermark: fetch, but do not move it.
        return Window(start=since, end=end, kind="fetch", moves_watermark=since <= state.watermark,
                      state_since=state.since)
    start = state.watermark - timedelta(days=overlap_days)
    return Window(start=start, end=end, kind="fetch", moves_watermark=True, state_since=state.since)


def sync_topic(store: Store, client: EutilsClient, topic: Topic, *, today: date | None = None,
               since: date | None = None, full: bool = False, hooks: RunHooks = NO_HOOKS) -> TopicRunResult:
    """Run one topic. A failure is recorded and returned, never half-applied: the watermark stays put.

    While another live process runs the same topic, nothing is done and the result is `skipped`
    (succeeded, no run recorded): that run stores what this one would have (tracker/store/locks.py).
    `hooks` are called after each saved batch (the topic's run lock adds its heartbeat).
    """
    lock = TopicRunLock(store, topic.slug)
    try:
        lock.acquire()
    except LockHeldError as busy:
        return TopicRunResult(topic=topic.slug, run_id=None, kind="skipped", window=None, succeeded=True,
                              skipped=str(busy))
    try:
        result = _sync_topic(store, client, topic, today=today or date.today(), since=since, full=full,
                             hooks=hooks.beating(lock.beat))
        if result.succeeded:
            refresh_quietly(store, topic)  # the new papers and suggestions scored before the digest and the e-mail
        return result
    finally:
        lock.release()


def _sync_topic(store: Store, client: EutilsClient, topic: Topic, *, today: date, since: date | None, full: bool,
                hooks: RunHooks) -> TopicRunResult:
    for interrupted in close_interrupted_runs(store, topic.slug):
        log.warning("topic '%s': run %d was interrupted before it finished (its process was killed or its machine "
                    "went down); marked failed", topic.slug, interrupted)
    state = topic_state(store, topic.slug)
    window = plan_window(topic, state, today=today, overlap_days=client.settings.overlap_days, since=since, full=full)
    ledger = RunLedger(store, topic.slug, kind=window.kind, query=topic.query, window_start=window.start,
                       window_end=window.end)
    result = TopicRunResult(topic=topic.slug, run_id=ledger.run_id, kind=window.kind, window=window, succeeded=False)
    started = time.monotonic()
    log.info("%s: %s window %s..%s", topic.slug, window.kind, window.start or "beginning", window.end)
    try:
        with ledger.recording(client, label=f"topic '{topic.slug}'"):
            outcome = client.fetch_pmids(topic.query, window.start, window.end)
            ledger.searched(outcome.count, len(outcome.pmids), translation=outcome.query_translation,
                            errors=outcome.errors, warnings=outcome.warnings)
            ingested = store_pmids(store, client, outcome.pmids, topic=topic.slug, ledger=ledger, hooks=hooks)
            watched = watch_topic(store, client, topic, ledger=ledger, today=today, fresh=ingested.fresh,
                                  hooks=hooks)
            result.status_changes = len(watched.events)
    except UnreachableError as error:  # BlockedError too
        # The run's row keeps the line that says what to check; the caller says it once, for every topic.
        result.error, result.unreachable, result.stop_reason = f"topic '{topic.slug}': {error.detail}", str(error), error.reason
        _fill(result, ledger, started)
        return result
    except TrackerError as error:
        result.error = f"topic '{topic.slug}': {error}"
        _fill(result, ledger, started)
        log.info("%s", result.error)  # the caller says it, once: the command on stdout, the scheduler in its log
        return result
    new_state = None
    if window.moves_watermark:
        watermark = max(window.end, state.watermark) if state and window.kind == "fetch" else window.end
        new_state = TopicState(topic=topic.slug, query=topic.query, since=window.state_since, watermark=watermark,
                               updated_at=ledger.run.started_at)
    ledger.succeed(watermark=new_state)
    result.succeeded = True
    # After the run is closed and its watermark saved: whatever the links do, the run's papers stay as they are.
    after = suggest_after_run(store, client, topic, today=today, run_id=ledger.run_id,
                              hooks=RunHooks(heartbeat=hooks.heartbeat))
    ledger.amend(requests=after.requests, warnings=after.warnings)
    result.suggestions = after.outcome.new if after.outcome is not None else None
    result.suggestion_warnings, result.suggestion_requests = after.warnings, after.requests
    _fill(result, ledger, started)
    return result


def _fill(result: TopicRunResult, ledger: RunLedger, started: float) -> None:
    counts = ledger.counts
    result.new_papers, result.matched, result.fetched = counts.new_papers, counts.matched, counts.fetched
    result.missing, result.requests, result.refetched = counts.missing, counts.requests, counts.refetched
    result.warnings = tuple(counts.warnings or ())
    result.seconds = time.monotonic() - started


def sync_topics(store: Store, client: EutilsClient, topics: list[Topic], *, today: date | None = None,
                since: date | None = None, full: bool = False,
                hooks_for: Callable[[Topic], RunHooks] | None = None,
                on_result: Callable[[TopicRunResult], None] | None = None) -> list[TopicRunResult]:
    """Run every topic in turn; one topic's failure does not stop the others, except that when the run's first
    request cannot reach E-utilities (tracker/ncbi/eutils.py, UnreachableError) the rest are not tried: they would
    fail the same way, each after its own retries. Nothing is recorded for a topic not tried."""
    results = []
    stopped: str | None = None
    for topic in topics:
        if stopped:
            result = TopicRunResult(topic=topic.slug, run_id=None, kind="not tried", window=None, succeeded=False,
                                    not_tried=stopped)
        else:
            result = sync_topic(store, client, topic, today=today, since=since, full=full,
                                hooks=hooks_for(topic) if hooks_for else NO_HOOKS)
            stopped = result.stop_reason if result.unreachable is not None else None
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
    and topic "(query)". A failure is recorded on the run, then raised with the run's id (same error class).
    """
    end = (today or date.today()) + timedelta(days=1)
    ledger = RunLedger(store, QUERY_TOPIC, kind="query", query=query, window_start=since, window_end=end)
    try:
        with ledger.recording(client):
            outcome = client.fetch_pmids(query, since, end)
            ledger.searched(outcome.count, len(outcome.pmids), translation=outcome.query_translation,
                            errors=outcome.errors, warnings=outcome.warnings)
            store_pmids(store, client, outcome.pmids, topic=None, ledger=ledger)
            shown = load_papers(store, newest_pmids(store, outcome.pmids, limit))
    except TrackerError as error:
        raise with_context(error, f"query run {ledger.run_id} failed: {error}: run the query again later") from None
    ledger.succeed()
    counts = ledger.counts
    return QueryResult(run_id=ledger.run_id, papers=shown, count=counts.count or 0, new_papers=counts.new_papers,
                       missing=counts.missing, requests=counts.requests, query_translation=counts.query_translation,
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
    ledger = RunLedger(store, topic.slug, kind="import", query=topic.query)
    ledger.searched(len(pmids), len(pmids), translation=None)
    try:
        with ledger.recording(client, label=f"import into '{topic.slug}'"):
            store_pmids(store, client, pmids, topic=topic.slug, ledger=ledger, source=IMPORT)
    except TrackerError as error:
        raise with_context(error, f"import into '{topic.slug}' failed: {error}; nothing already saved is lost: "
                                  "run the import again") from None
    ledger.succeed()
    refresh_quietly(store, topic)
    counts = ledger.counts
    return ImportResult(run_id=ledger.run_id, pmids=len(pmids), new_papers=counts.new_papers, fetched=counts.fetched,
                        missing=counts.missing, requests=counts.requests)
