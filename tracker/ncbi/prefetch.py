"""Fetching ahead: the next efetch batches on their way while the caller parses and stores the one before.

`prefetched(jobs, depth)` runs each job (a callable given its `Ticket`) on a thread of its own and yields the
results in the jobs' order, each once its job has finished. The rules, which keep every guarantee of a
sequential fetch:

* Order. A result is yielded only after all those before it, and a job's exception is raised in its turn,
  after the results before it were yielded: the caller saves batches in order, in its own thread, and a failed
  batch fails the run there, exactly as when batches were fetched one after the other.
* Trust. At most as many jobs run at once as have just finished in a row (at least one, at most `depth`);
  a failed attempt (`Ticket.attempt_failed`) starts the count again, and while a job is retrying no further
  job starts. So a run starts with one request at a time, a failing server is sent nothing new but the retry,
  and a retry is never overtaken by a batch that had not been requested yet. Measured against a server
  answering like NCBI, three in flight is what it takes to keep parsing and storing busy (BENCHMARKS.md).
* Requests leave in job order: a job's first request waits (`Ticket.before_request`) until the previous job's
  first request was handed to the connection (`Ticket.request_left`).
* Memory. At most `depth` jobs are started and not yet yielded, ahead of the result the caller holds, so a slow
  caller holds back the fetching. With `max_bytes`, their bytes are bounded too: a job tells what it has received
  (`Ticket.received`), and another job starts only while the bytes of those ahead (a running job's counted as the
  largest whole body so far, until it has received more) plus one more such body fit in `max_bytes`. The next
  job in order always runs, however large its body.
* Abandoning. Closing the iterator (the caller stopped: an error, a stop request, kill) starts no further job;
  a running job sends no further request and stops reading (`Abandoned`, raised from the ticket), and what it
  still receives is dropped. Its thread is a daemon: a process may exit without waiting for a request that
  NCBI has not answered yet.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Abandoned(Exception):
    """Raised inside a job whose pipeline was abandoned: it stops and its result is never used."""


class Ticket:
    """What a job is told by, and tells, the pipeline that runs it."""

    def __init__(self, pipeline: _Pipeline, previous: Ticket | None):
        self._pipeline = pipeline
        self._previous = previous
        self._left = threading.Event()  # this job's first request was handed off (or the job ended)
        self.retrying = False  # an attempt failed and the job has not finished yet
        self.bytes = 0  # received by the current attempt

    @property
    def abandoned(self) -> bool:
        return self._pipeline.abandoned

    def check(self) -> None:
        if self._pipeline.abandoned:
            raise Abandoned()

    def before_request(self) -> None:
        """Before each request: the first waits until the previous job's first request left."""
        previous = self._previous
        if previous is not None:
            previous._left.wait()  # set once it left, or when the pipeline is abandoned
            self._previous = None
        self.check()

    def request_left(self) -> None:
        self._left.set()

    def received(self, count: int) -> None:
        """`count` more bytes of this job's answer arrived (they count against the pipeline's `max_bytes`)."""
        self.bytes += count

    def attempt_failed(self) -> None:
        self._pipeline.attempt_failed(self)


class _Job(Generic[T]):
    def __init__(self, work: Callable[[Ticket], T], ticket: Ticket):
        self.work, self.ticket = work, ticket
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class _Pipeline(Generic[T]):
    def __init__(self, works: Sequence[Callable[[Ticket], T]], depth: int, max_bytes: int | None = None):
        self._works = list(works)
        self._depth = max(1, depth)
        self._max_bytes = max_bytes
        self._largest = 0  # the most bytes a finished job received
        self._next = 0  # the next job to start
        self._started: deque[_Job[T]] = deque()  # started and not yet yielded, in order
        self._last: Ticket | None = None
        self._running = 0
        self._streak = 0  # jobs finished in a row since the start or the last failed attempt
        self._retrying = 0  # jobs retrying after a failed attempt
        self._changed = threading.Condition()
        self.abandoned = False

    def results(self) -> Iterator[T]:
        for _ in range(len(self._works)):
            with self._changed:
                self._start_more()
                job = self._started[0]
                while not job.done:
                    self._changed.wait()
                self._started.popleft()
                self._start_more()
            if job.error is not None:
                raise job.error
            yield job.result  # type: ignore[misc]

    def abandon(self) -> None:
        with self._changed:
            self.abandoned = True
            for job in self._started:  # a job waiting for the one before it wakes up, and finds itself abandoned
                job.ticket._left.set()
            self._changed.notify_all()

    def attempt_failed(self, ticket: Ticket) -> None:
        with self._changed:
            self._streak = 0
            ticket.bytes = 0  # what the failed attempt received is dropped with it
            if not ticket.retrying:
                ticket.retrying = True
                self._retrying += 1

    def _bytes_allow_another(self) -> bool:
        if self._max_bytes is None or not self._started:
            return True
        ahead = sum(job.ticket.bytes if job.done else max(job.ticket.bytes, self._largest) for job in self._started)
        return ahead + self._largest <= self._max_bytes

    def _start_more(self) -> None:
        """Start the jobs the rules allow now (the caller holds the lock)."""
        while (self._next < len(self._works) and not self.abandoned and not self._retrying
               and len(self._started) < self._depth and self._running < min(self._depth, max(1, self._streak))
               and self._bytes_allow_another()):
            ticket = Ticket(self, self._last)
            job = _Job(self._works[self._next], ticket)
            self._next += 1
            self._last = ticket
            self._started.append(job)
            self._running += 1
            threading.Thread(target=self._run, args=(job,), name=f"prefetch-{self._next}", daemon=True).start()

    def _run(self, job: _Job[T]) -> None:
        try:
            job.result = job.work(job.ticket)
        except BaseException as error:  # noqa: BLE001  (handed to the caller in the job's turn)
            job.error = error
        with self._changed:
            job.done = True
            job.ticket.request_left()  # a job that ended without a request must not hold up the next
            self._running -= 1
            if job.ticket.retrying:
                job.ticket.retrying = False
                self._retrying -= 1
            if job.error is None:
                self._streak += 1
                self._largest = max(self._largest, job.ticket.bytes)
            else:
                self._streak = 0
            self._start_more()
            self._changed.notify_all()


def prefetched(works: Sequence[Callable[[Ticket], T]], *, depth: int,
               max_bytes: int | None = None) -> Generator[T, None, None]:
    """The results of `works`, in order, fetched up to `depth` and `max_bytes` ahead (see the module docstring)."""
    pipeline: _Pipeline[T] = _Pipeline(works, depth, max_bytes)
    try:
        yield from pipeline.results()
    finally:
        pipeline.abandon()


__all__ = ["Abandoned", "Ticket", "prefetched"]
