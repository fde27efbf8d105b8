"""The E-utilities client against httpx.MockTransport: etiquette, retries, in-band errors, slicing past 9,999."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from datetime import date
from urllib.parse import parse_qs

import httpx
import pytest

from tracker.errors import EutilsError, IncompleteSearchError
from tracker.ncbi.eutils import EutilsClient, RateLimiter, date_clause, parse_search
from tracker.settings import Settings


def esearch_body(ids, count=None, *, translation="q", extra="") -> bytes:
    id_xml = "".join(f"<Id>{i}</Id>" for i in ids)
    return (f'<?xml version="1.0" encoding="UTF-8" ?>\n<eSearchResult><Count>{len(ids) if count is None else count}</Count>'
            f"<RetMax>{len(ids)}</RetMax><RetStart>0</RetStart><IdList>{id_xml}</IdList>"
            f"<TranslationSet/><QueryTranslation>{translation}</QueryTranslation>{extra}</eSearchResult>").encode()


def settings(**overrides) -> Settings:
    values = dict(home=".", eutils_url="http://eutils.test/entrez/eutils/", email="lib@example.org",
                  api_key="SECRET-KEY-123", backoff_initial=0.01, backoff_max=0.02, max_attempts=4,
                  requests_per_second=1000.0)
    values.update(overrides)
    return Settings(**values)


class Recorder:
    """A transport handler that answers from a queue and records every request's form."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.forms: list[dict[str, str]] = []
        self.methods: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        self.forms.append({"endpoint": request.url.path.rsplit("/", 1)[-1], **form})
        self.methods.append(request.method)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request, form) if callable(answer) else answer


def client_for(handler, **overrides) -> EutilsClient:
    sleeps = []
    client = EutilsClient(settings(**overrides), transport=httpx.MockTransport(handler), sleep=sleeps.append)
    client.sleeps = sleeps
    return client


def test_every_request_carries_tool_email_and_api_key_in_a_post_body():
    handler = Recorder(httpx.Response(200, content=esearch_body([3, 2, 1])))
    client = client_for(handler)
    result = client.search("norepinephrine[tiab]")
    assert result.ids == [3, 2, 1] and result.count == 3
    assert handler.methods == ["POST"]
    assert handler.forms[0] == {
        "endpoint": "esearch.fcgi", "db": "pubmed", "term": "norepinephrine[tiab]", "retstart": "0",
        "retmax": "9999", "sort": "pub_date", "retmode": "xml", "tool": "tracker", "email": "lib@example.org",
        "api_key": "SECRET-KEY-123",
    }


def test_date_clause_uses_create_date():
    assert date_clause("a OR b", date(2024, 1, 2), date(2024, 3, 4)) == \
        '(a OR b) AND ("2024/01/02"[crdt] : "2024/03/04"[crdt])'


@pytest.mark.parametrize("failure", [
    httpx.Response(429, json={"error": "API rate limit exceeded", "count": "11"}, headers={"Retry-After": "0"}),
    httpx.Response(500, text="<html>oops</html>"),
    httpx.Response(502, text="Bad Gateway"),
    httpx.Response(200, text="<html><head><title>Down for maintenance</title></head></html>",
                   headers={"content-type": "text/html"}),
    httpx.Response(200, content=b""),
    httpx.Response(200, content=b"<eSearchResult><Count>3</Count><IdList><Id>1"),
    httpx.Response(200, content=b"<eSearchResult><ERROR>Search Backend failed: Unable to open connection"
                                 b"</ERROR></eSearchResult>"),
    httpx.ConnectError("connection refused"),
    httpx.ReadTimeout("timed out"),
    httpx.RemoteProtocolError("peer closed connection"),
])
def test_transient_failures_are_retried(failure):
    handler = Recorder(failure, httpx.Response(200, content=esearch_body([5])))
    client = client_for(handler)
    assert client.search("x").ids == [5]
    assert client.request_count == 2 and len(client.sleeps) == 1


def test_429_waits_at_least_retry_after():
    handler = Recorder(httpx.Response(429, json={"error": "API rate limit exceeded"}, headers={"Retry-After": "2"}),
                       httpx.Response(200, content=esearch_body([5])))
    client = client_for(handler)
    client.search("x")
    assert client.sleeps[0] >= 2


def test_gives_up_after_the_configured_attempts_with_a_clear_message():
    handler = Recorder(httpx.Response(502, text="Bad Gateway"))
    client = client_for(handler, max_attempts=3)
    with pytest.raises(EutilsError) as caught:
        client.search("x")
    assert str(caught.value) == "esearch failed after 3 attempts: HTTP 502 Bad Gateway"
    assert client.request_count == 3


@pytest.mark.parametrize("response, message", [
    (httpx.Response(400, json={"error": "API key invalid", "api-key": "SECRET-KEY-123", "type": "api-key"}),
     "NCBI rejected the API key (HTTP 400): check NCBI_API_KEY, or unset it to run at 3 requests/s"),
    (httpx.Response(414, text="Request-URI Too Long"), "HTTP 414 Request-URI Too Long: Request-URI Too Long"),
])
def test_other_client_errors_are_not_retried(response, message):
    handler = Recorder(response)
    client = client_for(handler)
    with pytest.raises(EutilsError) as caught:
        client.search("x")
    assert str(caught.value) == message
    assert "SECRET-KEY-123" not in str(caught.value)
    assert client.request_count == 1


def test_phrase_not_found_is_reported_not_raised():
    result = parse_search(esearch_body([], 0, extra="<ErrorList><PhraseNotFound>nosuchterm</PhraseNotFound></ErrorList>"
                                                  "<WarningList><OutputMessage>No items found.</OutputMessage></WarningList>"))
    assert result.count == 0 and result.errors == ["PhraseNotFound: nosuchterm"]
    assert result.warnings == ["OutputMessage: No items found."]


class SlicingPubMed:
    """Answers esearch like PubMed: the true Count, but at most `cap` ids, for records dated by crdt."""

    def __init__(self, records: dict[int, date], cap: int):
        self.records, self.cap = records, cap
        self.terms: list[str] = []

    def __call__(self, request, form):
        self.terms.append(form["term"])
        low, high = (date(*map(int, d.split("/"))) for d in re.findall(r'"(\d{4}/\d{2}/\d{2})"\[crdt\]', form["term"]))
        ids = sorted((p for p, d in self.records.items() if low <= d <= high), reverse=True)
        start = int(form["retstart"])
        return httpx.Response(200, content=esearch_body(ids[start:min(start + int(form["retmax"]), self.cap)], len(ids)))


def test_results_past_the_cap_are_split_by_date_until_every_slice_fits(monkeypatch):
    monkeypatch.setattr("tracker.ncbi.eutils.MAX_RETRIEVABLE", 40)
    records = {pmid: date(2020, 1, 1 + pmid % 28) for pmid in range(1, 301)}
    handler = SlicingPubMed(records, cap=40)
    client = client_for(Recorder(handler), esearch_page=40)
    outcome = client.fetch_pmids("q", date(2020, 1, 1), date(2020, 2, 1))
    assert sorted(outcome.pmids) == sorted(records)
    assert outcome.count == 300 and outcome.slices >= 8


def test_a_single_day_past_the_cap_is_an_error(monkeypatch):
    monkeypatch.setattr("tracker.ncbi.eutils.MAX_RETRIEVABLE", 10)
    handler = SlicingPubMed({pmid: date(2020, 1, 1) for pmid in range(1, 30)}, cap=10)
    client = client_for(Recorder(handler), esearch_page=10)
    with pytest.raises(IncompleteSearchError, match="29 records on 2020-01-01 alone exceed PubMed's 9,999 limit"):
        client.fetch_pmids("q", date(2020, 1, 1), date(2020, 1, 1))


def test_paging_within_a_slice():
    records = {pmid: date(2020, 1, 1) for pmid in range(1, 26)}
    handler = SlicingPubMed(records, cap=9999)
    client = client_for(Recorder(handler), esearch_page=10)
    outcome = client.fetch_pmids("q", date(2020, 1, 1), date(2020, 1, 2))
    assert sorted(outcome.pmids) == list(range(1, 26))
    assert len(handler.terms) == 3


def test_a_count_that_does_not_add_up_is_never_returned_as_complete():
    handler = Recorder(httpx.Response(200, content=esearch_body([1, 2], count=5)))
    client = client_for(handler, esearch_page=9999)
    with pytest.raises(IncompleteSearchError, match="PubMed reported 5 records but returned 2 PMIDs"):
        client.fetch_pmids("q", None, date(2020, 1, 1))


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.starts: list[float] = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.mark.parametrize("rate", [3, 10])
def test_rate_limiter_never_exceeds_the_limit_in_any_one_second_window(rate):
    fake = FakeClock()
    limiter = RateLimiter(rate, clock=fake.clock, sleep=fake.sleep)
    for index in range(100):
        limiter.acquire()
        fake.starts.append(fake.now)
        fake.now += 0.01 * (index % 3)  # requests take a little time of their own
    for start in fake.starts:
        assert sum(1 for s in fake.starts if start <= s < start + 1.0) <= rate
    achieved = len(fake.starts) / (fake.starts[-1] - fake.starts[0])
    assert achieved >= 0.85 * rate


def test_429_json_body_from_ncbi_is_understood():
    body = json.dumps({"error": "API rate limit exceeded", "api-key": "192.0.2.1", "count": "17", "limit": "3"})
    handler = Recorder(httpx.Response(429, text=body), httpx.Response(200, content=esearch_body([1])))
    client = client_for(handler)
    assert client.search("x").ids == [1]


class LateClock(FakeClock):
    """A busy machine: every sleep overruns by up to `overrun` seconds."""

    def __init__(self, overrun: float, seed: int = 7):
        super().__init__()
        self.random = random.Random(seed)
        self.overrun = overrun

    def sleep(self, seconds):
        self.now += seconds + self.random.uniform(0, self.overrun)


def busiest_window(arrivals: list[float]) -> int:
    """Most arrivals within any window (t - 1.0, t], as the fake server counts them."""
    ordered, best, start = sorted(arrivals), 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("rate", [3, 10])
def test_slots_come_from_actual_starts_when_sleeps_overrun_and_work_comes_between(rate):
    """Each request starts (is handed to the connection) some time after its slot was granted; the next slots are
    computed from those starts, so no second of arrivals holds more than the limit."""
    fake = LateClock(overrun=0.3)
    limiter = RateLimiter(rate, clock=fake.clock, sleep=fake.sleep, margin=0.0)
    arrivals = []
    for index in range(200):
        with limiter.reserve() as slot:
            fake.now += fake.random.uniform(0, 0.2) if index % 4 == 0 else 0.0  # work between limiter and send
            slot.started()
            arrivals.append(fake.now)
        fake.now += fake.random.uniform(0, 0.05)
    assert busiest_window(arrivals) == rate


def test_a_reserved_slot_holds_its_place_until_its_request_starts():
    limiter = RateLimiter(2, margin=0.0)
    first, second = limiter.reserve(), limiter.reserve()
    granted = []
    waiter = threading.Thread(target=lambda: granted.append(limiter.reserve()))
    waiter.start()
    waiter.join(0.3)
    assert granted == []  # two places held by requests that have not started yet
    first.started()
    waiter.join(0.3)
    assert granted == []  # the window now holds one start and one held place
    second.started()
    time.sleep(0.2)
    waiter.join(1.5)
    assert len(granted) == 1  # free once the first start left the one-second window
    granted[0].started()


@pytest.mark.parametrize("load", ["sleeps", "burns CPU", "another thread burns CPU"])
def test_no_second_of_arrivals_at_the_server_holds_more_than_the_limit_on_a_busy_machine(load):
    """Three threads share the client, as the prefetching pipeline does, at 10 requests/s against a server that counts
    arrivals and answers 429 past the limit; between requests each consumer sleeps or burns CPU."""
    from tests.fake_eutils import FakeEutils, FakeRecord
    from tests.pubmed_xml import article_xml

    stop = threading.Event()

    def burn(seconds: float) -> None:
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            sum(range(200))

    with FakeEutils(rate_limit=10) as server:
        server.add(FakeRecord(1, article_xml(1, created=date(2024, 1, 1)), date(2024, 1, 1)))
        client = EutilsClient(settings(eutils_url=server.url, requests_per_second=10.0, max_attempts=1))
        rng = random.Random(11)
        pauses = [rng.uniform(0, 0.15) for _ in range(60)]

        def consume(share: list[float]) -> None:
            for pause in share:
                list(client.fetch_papers([1]))
                if load == "sleeps":
                    time.sleep(pause)
                elif load == "burns CPU":
                    burn(pause)

        hog = threading.Thread(target=lambda: [burn(0.01) for _ in iter(stop.is_set, True)], daemon=True)
        if load == "another thread burns CPU":
            hog.start()
        consumers = [threading.Thread(target=consume, args=(pauses[index::3],)) for index in range(3)]
        for consumer in consumers:
            consumer.start()
        for consumer in consumers:
            consumer.join()
        stop.set()
        client.close()
        log = server.requests
    assert len(log) == 60
    assert [entry.fault for entry in log if entry.fault] == []
    assert server.max_requests_per_second() <= 10


def connect_error(cause: BaseException) -> httpx.ConnectError:
    """httpx's ConnectError as a real connection raises it: the socket's OSError is its cause."""
    error = httpx.ConnectError(str(cause))
    error.__cause__ = cause
    return error


def test_why_a_connection_never_reached_its_host_comes_from_the_error_under_httpx():
    import socket
    import ssl

    from tracker.ncbi.eutils import reach_failure

    expired = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    expired.verify_message = "certificate has expired"
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    eof.reason = "UNEXPECTED_EOF_WHILE_READING"
    assert [reach_failure(error) for error in (
        connect_error(socket.gaierror(-2, "Name or service not known")),
        connect_error(ConnectionRefusedError(111, "Connection refused")),
        connect_error(expired),
        connect_error(eof),
        connect_error(OSError(101, "Network is unreachable")),
        httpx.ConnectTimeout("timed out"),
        httpx.ConnectError("no cause given"),
        connect_error(ConnectionResetError(104, "Connection reset by peer")),
        httpx.ReadError("reset"),
        httpx.ReadTimeout("timed out"),
    )] == ["name resolution failed", "connection refused", "TLS failed: certificate has expired",
           "TLS failed: unexpected eof while reading", "network is unreachable", "connection timed out", None, None,
           None, None]


def test_a_first_request_that_cannot_connect_gives_up_after_two_attempts_and_names_the_host():
    import socket

    from tracker.errors import UnreachableError

    handler = Recorder(connect_error(socket.gaierror(-2, "Name or service not known")))
    client = client_for(handler, max_attempts=6)
    with pytest.raises(UnreachableError) as caught:
        client.search("x")
    assert str(caught.value) == ("cannot reach eutils.test (name resolution failed): check the network, a proxy "
                                 "(HTTPS_PROXY) or TRACKER_EUTILS_URL")
    assert caught.value.detail == ("esearch failed after 2 attempts: connection failed (ConnectError: [Errno -2] Name "
                                   "or service not known)")
    assert (caught.value.host, caught.value.cause) == ("eutils.test", "name resolution failed")
    assert client.request_count == 2 and len(client.sleeps) == 1


def test_connection_failures_after_an_answer_get_the_full_budget_and_no_unreachable_error():
    refused = connect_error(ConnectionRefusedError(111, "Connection refused"))
    handler = Recorder(httpx.Response(200, content=esearch_body([5])), refused, refused, refused,
                       httpx.Response(200, content=esearch_body([6])))
    client = client_for(handler, max_attempts=4)
    assert client.search("x").ids == [5]
    assert client.search("y").ids == [6]  # three refusals, then an answer on the fourth attempt
    assert client.request_count == 5 and len(client.sleeps) == 3
    handler.answers = [refused]
    with pytest.raises(EutilsError) as caught:
        client.search("z")
    assert type(caught.value) is EutilsError
    assert str(caught.value) == ("esearch failed after 4 attempts: connection failed (ConnectError: [Errno 111] "
                                 "Connection refused)")


def test_a_first_answer_that_is_a_server_error_keeps_the_full_budget():
    handler = Recorder(httpx.Response(502, text="Bad Gateway"))
    client = client_for(handler, max_attempts=5)
    with pytest.raises(EutilsError, match="^esearch failed after 5 attempts: HTTP 502 Bad Gateway$"):
        client.search("x")
    assert client.request_count == 5


@pytest.mark.parametrize("status", [400, 403, 404, 405])
def test_an_answer_that_means_a_wrong_eutils_url_names_the_setting_and_is_not_retried(status):
    response = httpx.Response(status, text="<html><body>Not here</body></html>")
    client = client_for(Recorder(response), eutils_url="http://wrong.test/entrez/")
    with pytest.raises(EutilsError) as caught:
        client.search("x")
    assert str(caught.value) == (
        f"HTTP {status} {response.reason_phrase}: check TRACKER_EUTILS_URL (now http://wrong.test/entrez/): it should "
        "be the E-utilities base URL ending in /eutils/, by default https://eutils.ncbi.nlm.nih.gov/entrez/eutils/")
    assert client.request_count == 1


def test_each_record_is_prepared_as_soon_as_it_is_parsed_and_the_batch_gets_the_prepared_records():
    from dataclasses import replace

    from tests.pubmed_xml import article_set, article_xml

    records = [article_xml(pmid, created=date(2024, 1, pmid)) for pmid in (1, 2, 3)]
    body = article_set(*records)
    # The body arrives in three parts, the first two each ending just after a record.
    first = body.index(b"</PubmedArticle>") + len(b"</PubmedArticle>")
    cuts = [first, body.index(b"</PubmedArticle>", first) + len(b"</PubmedArticle>")]
    parts = [body[:cuts[0]], body[cuts[0]:cuts[1]], body[cuts[1]:]]
    sent = []

    def stream():
        for part in parts:
            sent.append(len(part))
            yield part

    client = client_for(lambda request: httpx.Response(200, content=stream()))
    prepared_when = []

    def mark(paper):
        prepared_when.append((paper.pmid, len(sent)))
        return replace(paper, title=f"prepared {paper.pmid}")

    batches = list(client.fetch_papers([1, 2, 3], prepare_each=mark, prepare=lambda papers: [p.title for p in papers]))
    assert prepared_when == [(1, 1), (2, 2), (3, 3)]  # record n prepared once the n-th part had come, not at the end
    assert batches == [["prepared 1", "prepared 2", "prepared 3"]]
    assert [[paper.title for paper in batch] for batch in client.fetch_papers([1, 2, 3], prepare_each=mark)] == [
        ["prepared 1", "prepared 2", "prepared 3"]]
