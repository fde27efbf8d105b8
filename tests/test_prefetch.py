"""Fetching ahead (tracker/ncbi/prefetch.py): order, trust after failures, memory, abandoning; then the efetch pipeline
against the fake server: concurrency, byte-identical results, a failed batch, and a stop request."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest

from tests.fake_eutils import FakeEutils, FakeRecord
from tests.pubmed_xml import article_xml
from tracker.errors import EutilsError, ShutdownRequested
from tracker.ncbi.eutils import EutilsClient
from tracker.ncbi.prefetch import Abandoned, prefetched
from tracker.runs.ingest import fetch_each_batch
from tracker.runs.ledger import RunHooks
from tracker.settings import Settings


class Recorder:
    """Jobs that note when they run, how many run at once, and what the pipeline lets them do."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.log: list[tuple[str, int]] = []  # ("start" | "fail" | "end", job)

    def job(self, index: int, *, seconds: float = 0.02, fails: int = 0, error: BaseException | None = None,
            size: int = 0):
        remaining = [fails]

        def work(ticket):
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
                self.log.append(("start", index))
            try:
                while True:
                    ticket.before_request()
                    ticket.request_left()
                    ticket.received(size)
                    time.sleep(0.01 if remaining[0] else seconds)
                    if remaining[0]:
                        remaining[0] -= 1
                        ticket.attempt_failed()
                        with self.lock:
                            self.log.append(("fail", index))
                        continue
                    if error is not None:
                        raise error
                    return index
            finally:
                with self.lock:
                    self.running -= 1
                    self.log.append(("end", index))

        return work

    def concurrency(self) -> list[int]:
        """How many jobs were running when each job started, in start order."""
        running, seen = 0, []
        for event, _index in self.log:
            if event == "fail":
                continue
            running += 1 if event == "start" else -1
            if event == "start":
                seen.append(running)
        return seen


def test_results_come_in_order_whatever_order_the_jobs_finish_in():
    recorder = Recorder()
    jobs = [recorder.job(index, seconds=0.01 * (8 - index)) for index in range(8)]
    assert list(prefetched(jobs, depth=3)) == list(range(8))
    assert recorder.most == 3


def test_trust_grows_with_each_job_in_a_row_and_a_failed_attempt_starts_it_again():
    recorder = Recorder()
    jobs = [recorder.job(index, seconds=0.05, fails=1 if index == 5 else 0) for index in range(10)]
    assert list(prefetched(jobs, depth=3)) == list(range(10))
    assert [index for event, index in recorder.log if event == "start"] == list(range(10))
    # One at a time until one job finished, then two, then three.
    assert recorder.log[:4] == [("start", 0), ("end", 0), ("start", 1), ("end", 1)]
    assert recorder.concurrency()[:4] == [1, 1, 1, 2] and max(recorder.concurrency()) == 3
    # Job 5's first attempt fails (after 10 ms): nothing starts until it has finished; the jobs that finish
    # meanwhile count towards the trust that builds up again.
    failed, finished = recorder.log.index(("fail", 5)), recorder.log.index(("end", 5))
    assert [event for event, _ in recorder.log[failed:finished]] == ["fail"] + ["end"] * (finished - failed - 1)
    first_after = next(index for event, index in recorder.log[finished:] if event == "start")
    assert recorder.concurrency()[first_after] == 1


def test_a_failing_job_raises_in_its_turn_after_the_results_before_it():
    recorder = Recorder()
    failure = EutilsError("efetch failed after 3 attempts: HTTP 502 Bad Gateway")
    jobs = [recorder.job(index, error=failure if index == 5 else None) for index in range(9)]
    seen = []
    with pytest.raises(EutilsError) as caught:
        for result in prefetched(jobs, depth=3):
            seen.append(result)
    assert caught.value is failure
    assert seen == [0, 1, 2, 3, 4]


def test_at_most_depth_jobs_are_ahead_of_the_one_the_caller_holds():
    recorder = Recorder()
    jobs = [recorder.job(index, seconds=0.001) for index in range(12)]
    taken = []
    for result in prefetched(jobs, depth=3):
        time.sleep(0.05)  # a slow caller: storing a batch
        started = sum(1 for event, _ in recorder.log if event == "start")
        taken.append(result)
        assert started - len(taken) <= 3  # started but not taken yet: at most three ahead of the one held
    assert taken == list(range(12))


def test_the_bytes_ahead_bound_how_many_jobs_run_once_a_body_size_is_known():
    recorder = Recorder()
    jobs = [recorder.job(index, seconds=0.03, size=100) for index in range(10)]
    assert list(prefetched(jobs, depth=3, max_bytes=250)) == list(range(10))
    # Two bodies of 100 fit in 250, a third does not: two at a time however much trust there is.
    assert recorder.concurrency()[:2] == [1, 1] and max(recorder.concurrency()) == 2


def test_a_body_past_the_byte_bound_is_still_fetched_and_later_ones_are_expected_as_large():
    recorder = Recorder()
    jobs = [recorder.job(index, seconds=0.03, size=400 if index == 3 else 100) for index in range(9)]
    assert list(prefetched(jobs, depth=3, max_bytes=250)) == list(range(9))
    assert [index for event, index in recorder.log if event == "start"] == list(range(9))
    # Job 3's body (400) is larger than the bound: it runs, and after it every body is expected to be as large,
    # so one job runs at a time.
    after = recorder.log.index(("end", 3))
    running, alone = 0, []
    for position, (event, _index) in enumerate(recorder.log):
        running += 1 if event == "start" else -1
        if event == "start" and position > after:
            alone.append(running == 1)
    assert alone and all(alone)
    assert max(recorder.concurrency()) == 2


def test_without_a_byte_bound_only_the_count_bounds_the_jobs():
    recorder = Recorder()
    jobs = [recorder.job(index, seconds=0.03, size=10**9) for index in range(8)]
    assert list(prefetched(jobs, depth=3)) == list(range(8))
    assert max(recorder.concurrency()) == 3


def test_closing_abandons_the_jobs_ahead_no_new_one_starts_and_running_ones_stop():
    stopped = threading.Event()
    started: list[int] = []

    def job(index):
        def work(ticket):
            started.append(index)
            if index == 0:
                return index
            while True:  # a request that takes its time
                try:
                    ticket.check()
                except Abandoned:
                    stopped.set()
                    raise
                time.sleep(0.01)
        return work

    ahead = prefetched([job(index) for index in range(6)], depth=3)
    assert next(ahead) == 0
    ahead.close()
    assert stopped.wait(2)
    time.sleep(0.1)
    assert started == [0, 1]  # job 1 was the only one running (one in a row had finished): nothing more started


# -- the efetch pipeline against the fake server ---------------------------------------------

def records(count: int) -> list[FakeRecord]:
    return [FakeRecord(pmid, article_xml(pmid, created=date(2024, 1, 1)), date(2024, 1, 1))
            for pmid in range(1, count + 1)]


def client_for(server: FakeEutils, **overrides) -> EutilsClient:
    values = dict(home=".", eutils_url=server.url, requests_per_second=1000.0, efetch_batch=10, backoff_initial=0.01,
                  backoff_max=0.02, max_attempts=3, timeout=10.0)
    values.update(overrides)
    return EutilsClient(Settings(**values))


def overlapping(log, seconds: float) -> int:
    """Most efetch requests the server was answering at one moment (each takes `seconds` before its answer)."""
    arrivals = sorted(entry.time for entry in log if entry.endpoint == "efetch")
    return max(sum(1 for other in arrivals if moment <= other < moment + seconds) for moment in arrivals)


def test_batches_come_back_in_order_and_whole_with_requests_overlapping():
    with FakeEutils(delay=0.3) as server:
        server.add(*records(100))
        with client_for(server) as client:
            ahead = [[paper.pmid for paper in batch] for batch in client.fetch_papers(list(range(1, 101)))]
        with client_for(server, efetch_in_flight=1) as client:
            one_by_one = [[paper.pmid for paper in batch] for batch in client.fetch_papers(list(range(1, 101)))]
        log = server.requests
    assert ahead == one_by_one == [list(range(start, start + 10)) for start in range(1, 101, 10)]
    first_run = log[:10]
    assert sorted(int(entry.params["id"].split(",")[0]) for entry in first_run) == list(range(1, 101, 10))
    assert overlapping(first_run, 0.3) == 3
    assert overlapping(log[10:], 0.3) == 1


def test_efetch_bodies_larger_than_the_megabytes_in_flight_are_fetched_one_at_a_time():
    # Ten records with 60 kB abstracts: bodies of about 0.6 MB, so a second one would pass 1 MB.
    long_abstract = "Norepinephrine infusion was titrated to a mean arterial pressure of 65 mmHg. " * 800
    with FakeEutils(delay=0.3) as server:
        server.add(*[FakeRecord(pmid, article_xml(pmid, created=date(2024, 1, 1), abstract=long_abstract),
                                date(2024, 1, 1)) for pmid in range(1, 101)])
        with client_for(server, efetch_in_flight_mb=1) as client:
            bounded = [[paper.pmid for paper in batch] for batch in client.fetch_papers(list(range(1, 101)))]
        bounded_log = server.requests
        server.reset_log()
        with client_for(server) as client:
            unbounded = [[paper.pmid for paper in batch] for batch in client.fetch_papers(list(range(1, 101)))]
        unbounded_log = server.requests
    assert bounded == unbounded == [list(range(start, start + 10)) for start in range(1, 101, 10)]
    assert overlapping(bounded_log, 0.3) == 1
    assert overlapping(unbounded_log, 0.3) == 3


def test_a_failed_batch_fails_the_fetch_after_the_batches_before_it_were_saved():
    with FakeEutils() as server:
        server.add(*records(60))
        # The fourth batch's body is malformed on every attempt, whichever order the requests arrive in.
        server.add(FakeRecord(35, "<PubmedArticle><MedlineCitation><PMID>35</PMID>", date(2024, 1, 1)))
        saved: list[list[int]] = []
        with client_for(server) as client, pytest.raises(EutilsError) as caught:
            fetch_each_batch(client, list(range(1, 61)), lambda batch: saved.append([p.pmid for p in batch.papers]))
    assert str(caught.value) == ("efetch failed after 3 attempts: efetch XML has records nested where PubMed never "
                                 "puts them (after record 0)")
    assert saved == [list(range(start, start + 10)) for start in (1, 11, 21)]


def test_a_stop_request_stops_after_the_batch_being_saved_and_abandons_the_requests_ahead():
    with FakeEutils(delay=0.2) as server:
        server.add(*records(200))
        saved: list[int] = []
        stop = threading.Event()
        hooks = RunHooks(should_stop=stop.is_set)

        def save(batch):
            saved.extend(paper.pmid for paper in batch.papers)
            if len(saved) == 40:
                stop.set()  # SIGTERM arrives while the fourth batch is being saved

        with client_for(server) as client, pytest.raises(ShutdownRequested):
            fetch_each_batch(client, list(range(1, 201)), save, hooks=hooks)
        time.sleep(0.8)  # an abandoned job would have sent its next request by now
        sent = server.count("efetch")
        time.sleep(0.8)
        assert server.count("efetch") == sent <= 4 + 3  # the four saved, at most three on their way when stopped
        assert saved == list(range(1, 41))


def test_the_pmids_never_returned_are_asked_for_twice_and_given_back_in_the_order_asked():
    with FakeEutils() as server:
        server.add(*records(30))
        saved: list[int] = []
        asked = [30, 7, 990001, 1, 990000, 22, *range(8, 12)]
        with client_for(server) as client:
            missing = fetch_each_batch(client, asked, lambda batch: saved.extend(p.pmid for p in batch.papers))
        efetched = [entry.params["id"] for entry in server.requests if entry.endpoint == "efetch"]
    assert missing == [990001, 990000]
    assert sorted(saved) == [1, 7, 8, 9, 10, 11, 22, 30]
    assert efetched == ["30,7,990001,1,990000,22,8,9,10,11", "990001,990000"]
