"""A run's ledger: the one writer of a run's row (its counts, PubMed's messages, the tracker's own warnings,
how it ended) and the hooks that travel with a run (progress, heartbeat, stop requests).

Every kind of run records itself through a `RunLedger`: a topic's fetch or backfill (tracker/runs/sync.py), its
watch pass (tracker/runs/watch.py), an ad-hoc query and an import. The parts of a run report what they learnt
(`searched`, `measured`, `saved`, `linked`, `refetched`, `missing`, `warn`) and the ledger keeps the sums;
only `succeed` and `fail` write them, once, with the watermark in the same transaction when the run moves it.
A step that runs after the run was closed (the suggestion pass, tracker/runs/suggest.py) adds its requests and
warnings with `amend`, which never changes how the run ended or its watermark.

PubMed's messages. The create-date search reports PubMed's ErrorList and WarningList for the window's
query; the total-Count search of the watch pass (the query as written, no date clause) then reports them
again for the query itself, and those replace the window's (a date clause can add its own warnings, and
the health flags judge the query). The tracker's own warnings ("not returned by efetch: ...") are kept apart
and are never replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date

from tracker.errors import ShutdownRequested, TrackerError
from tracker.store import Store
from tracker.store.models import Run, TopicState
from tracker.store.runs import RunCounts, amend_run, finish_run, start_run


@dataclass(frozen=True)
class RunHooks:
    """What a run calls after each batch it saves: a progress bar, a lock's heartbeat, a stop request.

    `should_stop` returning True stops the run there, after the saved batch (ShutdownRequested): the run is
    recorded as interrupted and its watermark stays where it was.
    """

    progress: Callable[[int, int], None] | None = None  # (papers just saved, papers this step will save)
    heartbeat: Callable[[], None] | None = None
    should_stop: Callable[[], bool] | None = None

    def batch_saved(self, count: int, total: int) -> None:
        if self.heartbeat is not None:
            self.heartbeat()
        if self.progress is not None:
            self.progress(count, total)
        if self.should_stop is not None and self.should_stop():
            raise ShutdownRequested()

    def beating(self, heartbeat: Callable[[], None]) -> RunHooks:
        """These hooks with `heartbeat` called too (after any heartbeat they had)."""
        if self.heartbeat is None:
            return replace(self, heartbeat=heartbeat)
        first = self.heartbeat

        def both() -> None:
            first()
            heartbeat()

        return replace(self, heartbeat=both)


NO_HOOKS = RunHooks()


@dataclass
class _PubmedMessages:
    translation: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class RunLedger:
    """Starts a run's row, collects what the run learns, and closes the row once, succeeded or failed."""

    def __init__(self, store: Store, topic: str, *, kind: str, query: str | None, window_start: date | None = None,
                 window_end: date | None = None):
        self.store = store
        self.topic = topic
        self.run: Run = start_run(store, topic, kind=kind, query=query, window_start=window_start,
                                  window_end=window_end)
        self._counts = RunCounts()
        self._pubmed = _PubmedMessages()
        self._own_warnings: list[str] = []
        self._requests_before: int | None = None
        self._client = None
        self.finished: Run | None = None

    @property
    def run_id(self) -> int:
        assert self.run.id is not None
        return self.run.id

    # -- what the run learnt -----------------------------------------------------------------

    def searched(self, count: int, matched: int, *, translation: str | None, errors: Sequence[str] = (),
                 warnings: Sequence[str] = ()) -> None:
        """The window's search: PubMed's Count, the PMIDs it listed, and its messages for the query."""
        self._counts.count, self._counts.matched = count, matched
        self._pubmed = _PubmedMessages(translation, list(errors), list(warnings))

    def measured(self, total_count: int, *, translation: str | None, errors: Sequence[str] = (),
                 warnings: Sequence[str] = ()) -> None:
        """The query's total Count; its messages replace the window search's (see the module docstring)."""
        self._counts.total_count = total_count
        self._pubmed = _PubmedMessages(translation, list(errors), list(warnings))

    def saved(self, *, new_to_store: int, new_to_topic: int) -> None:
        self._counts.fetched += new_to_store
        self._counts.new_papers += new_to_topic

    def linked(self, new_to_topic: int) -> None:
        self._counts.new_papers += new_to_topic

    def refetched(self, papers: int) -> None:
        self._counts.refetched += papers

    def missing(self, pmids: Sequence[int]) -> None:
        """PMIDs esearch listed that efetch did not return, even asked twice."""
        self._counts.missing += len(pmids)
        if pmids:
            self.warn(f"not returned by efetch: {', '.join(map(str, pmids[:50]))}")

    def warn(self, message: str) -> None:
        self._own_warnings.append(message)

    @property
    def counts(self) -> RunCounts:
        """A copy of the sums so far, with the requests counted up to now."""
        counts = replace(self._counts, query_translation=self._pubmed.translation, errors=list(self._pubmed.errors),
                         warnings=[*self._pubmed.warnings, *self._own_warnings])
        if self._client is not None and self._requests_before is not None:
            counts.requests = self._client.request_count - self._requests_before
        return counts

    @property
    def own_warnings(self) -> tuple[str, ...]:
        return tuple(self._own_warnings)

    # -- how it ended ------------------------------------------------------------------------

    @contextmanager
    def recording(self, client, *, label: str | None = None) -> Iterator[RunLedger]:
        """Count the requests `client` sends in the block; an exception fails the run, then propagates.

        A TrackerError's message becomes the run's error ("label: message"); anything else (Ctrl-C, a stop
        request, a bug) is recorded as "interrupted (ExceptionName)".
        """
        self._client, self._requests_before = client, client.request_count
        try:
            yield self
        except BaseException as error:
            reason = str(error) if isinstance(error, TrackerError) else f"interrupted ({type(error).__name__})"
            self.fail(f"{label}: {reason}" if label else reason)
            raise
        finally:
            counts = self.counts
            self._counts.requests = counts.requests
            self._client = None

    def succeed(self, *, watermark: TopicState | None = None) -> Run:
        """Close the run as succeeded; `watermark`, when given, is saved in the same transaction."""
        return self._finish(error=None, watermark=watermark)

    def fail(self, error: str) -> Run:
        return self._finish(error=error, watermark=None)

    def amend(self, *, requests: int, warnings: Sequence[str] = ()) -> Run:
        """Add the requests and warnings of a step after the run was closed to its row."""
        if self.finished is None:
            raise RuntimeError("amend is for a step after the run was closed: call succeed or fail first")
        self._counts.requests += requests
        self._own_warnings.extend(warnings)
        self.finished = amend_run(self.store, self.run_id, requests=requests, warnings=warnings)
        return self.finished

    def _finish(self, *, error: str | None, watermark: TopicState | None) -> Run:
        if self.finished is not None:
            return self.finished
        self.finished = finish_run(self.store, self.run_id, self.counts, error=error, watermark=watermark)
        return self.finished


__all__ = ["RunHooks", "NO_HOOKS", "RunLedger"]
