"""The NCBI E-utilities client: etiquette, rate limit, retries, esearch slicing and efetch batches.

Everything NCBI asks of a client lives here: `tool`, `email` and `api_key` on every call, at most
3 requests/s without a key and 10 with one, POST for id lists, and retries only where a retry can help.
"""

from __future__ import annotations

import bisect
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar, overload
from urllib.parse import urlsplit

import httpx
from lxml import etree
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from tracker._version import __version__
from tracker.errors import BlockedError, EutilsError, IncompleteSearchError, ParseError, TransientEutilsError, UnreachableError
from tracker.ncbi.prefetch import Abandoned, Ticket, prefetched
from tracker.ncbi.pubmed import Paper, PaperParser
from tracker.settings import DEFAULT_EUTILS_URL, Settings
from tracker.text import parse_pmid, whole_number

Prepared = TypeVar("Prepared")

log = logging.getLogger("tracker.eutils")

# PubMed's esearch can hand out only the first 9,999 ids of any result.
MAX_RETRIEVABLE = 9999
# No PubMed record was created before this; the open-ended first backfill starts here.
EARLIEST_DATE = date(1700, 1, 1)
_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
# Until a request of this client has had an answer, a connection that never reached the host is given up after
# this many attempts, not max_attempts: a name that does not resolve or a port that refuses is almost always the
# network or the setting, and every topic after it would wait as long (6 attempts are about 35 s of backoff). A
# second attempt still rides out a resolver's or a server's hiccup. Once an answer came, failures get the full budget.
FIRST_CONTACT_ATTEMPTS = 2
# Answers that mean the URL is not E-utilities (a wrong path, another server) rather than a passing failure.
CONFIGURATION_STATUSES = frozenset({400, 403, 404, 405})


# Added to the one-second window between a request's start and the start `capacity` requests later. Starts are
# measured where the request meets the connection, yet what NCBI counts are arrivals, and the time from one to the
# other varies (thread switches under the GIL while other threads parse and store, the scheduler of a busy machine,
# the network), so two starts a window apart can arrive closer together by as much as it varies. Measured with three
# sending threads and a CPU-bound one on this shared 2-core machine against a server in another process
# (BENCHMARKS.md, rate limit: margin): the spread between the quickest and the slowest reached 40-120 ms (p99
# 40-95 ms); with no margin every run let 12 or 13 requests into one second of arrivals, with 0.05 s one run in
# two let 11, with 0.1 s none. 0.13 s covers the largest spread seen and still allows 8.8 requests/s of 10 (Biopython
# spaces requests 0.37 s apart without a key, 0.11 s more in three, for the same reason).
DEFAULT_MARGIN = 0.13


class RateLimiter:
    """At most `rate` request starts in any window of one second plus `margin`, shared by every thread.

    A start is the moment the request was handed to the connection, recorded after it happened (`reserve`, then
    `Slot.started`): a slot is computed from the starts that actually happened, never from the time a thread
    planned to start, so a sleep that overran or work between the limiter and the send cannot squeeze requests
    together. A reserved slot that has not started yet holds its place in the window until it does.
    `acquire` is reserve-and-start-now, for a caller that sends as soon as it returns.
    """

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, margin: float = DEFAULT_MARGIN):
        if rate >= 1:
            self.capacity, self.window = int(rate), 1.0
        else:
            self.capacity, self.window = 1, 1.0 / rate
        self.window += margin
        self._clock, self._sleep = clock, sleep
        self._starts: list[float] = []  # the starts still inside the window, in time order
        self._pending = 0  # slots reserved whose request has not started
        self._changed = threading.Condition()

    def acquire(self) -> None:
        self.reserve().started()

    def reserve(self) -> Slot:
        """Wait until a start fits in the window, then hold a place for it; the caller must end the slot."""
        while True:
            with self._changed:
                now = self._clock()
                # A nanosecond's grace: a sleep of exactly the computed delay must free the place it waited for.
                while self._starts and now - self._starts[0] >= self.window - 1e-9:
                    self._starts.pop(0)
                if len(self._starts) + self._pending < self.capacity:
                    self._pending += 1
                    return Slot(self)
                if not self._starts:
                    # Every place is held by a request about to start: its start says when the next one is free.
                    self._changed.wait(0.05)
                    continue
                delay = self._starts[0] + self.window - now
            self._sleep(delay)

    def _record(self, moment: float) -> None:
        with self._changed:
            self._pending -= 1
            bisect.insort(self._starts, moment)
            self._changed.notify_all()

    def _release(self) -> None:
        with self._changed:
            self._pending -= 1
            self._changed.notify_all()


class Slot:
    """A place in the rate limit's window, ended by the start of its request (once; later calls change nothing).

    `trace` is an httpcore trace callback: it records the start when the request's headers begin to be written to
    the connection. `handing_off` notes the moment the request goes to the HTTP client, which counts when no trace
    event comes (a transport without one, or a connection that failed before writing); a slot ended without
    either counts as started when it ends.
    """

    _HEADERS_SENT = ("http11.send_request_headers.started", "http2.send_request_headers.started")

    def __init__(self, limiter: RateLimiter):
        self._limiter = limiter
        self._handed: float | None = None
        self._done = False
        self._then: list[Callable[[], None]] = []

    def handing_off(self) -> None:
        self._handed = self._limiter._clock()

    def on_start(self, then: Callable[[], None]) -> None:
        """Call `then` once the request has started (or the slot ended)."""
        self._then.append(then)

    def trace(self, event: str, _info: dict) -> None:
        if event in self._HEADERS_SENT:
            self.started()

    def started(self, moment: float | None = None) -> None:
        if self._done:
            return
        self._done = True
        self._limiter._record(self._limiter._clock() if moment is None else moment)
        for then in self._then:
            then()

    def release(self) -> None:
        """Give the place back unused: no request was sent."""
        if self._done:
            return
        self._done = True
        self._limiter._release()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc) -> None:
        self.started(self._handed)


@dataclass
class SearchResult:
    count: int
    ids: list[int]
    query_translation: str | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class SearchOutcome:
    """The complete PMID set of a query over a date window, however many slices it took."""

    query: str
    pmids: list[int]
    count: int
    slices: int
    query_translation: str | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def date_clause(query: str, start: date, end: date, field_tag: str = "crdt") -> str:
    return f'({query}) AND ("{start:%Y/%m/%d}"[{field_tag}] : "{end:%Y/%m/%d}"[{field_tag}])'


def reach_failure(error: BaseException) -> str | None:
    """Why a connection never reached its host, from httpx's exception and the OSError under it; None when it did
    reach it (or the exception does not say)."""
    if isinstance(error, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(error, httpx.ProxyError):
        return f"the proxy failed: {error}"
    if not isinstance(error, httpx.ConnectError):
        return None
    seen: BaseException | None = error
    for _depth in range(8):  # httpx's error, httpcore's, then the socket's
        if seen is None:
            break
        if isinstance(seen, socket.gaierror):
            return "name resolution failed"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS failed: {seen.verify_message or seen.reason or 'certificate not verified'}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed: {(seen.reason or str(seen)).lower().replace('_', ' ')}"
        if isinstance(seen, OSError) and not isinstance(seen, ConnectionResetError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return None


def shown_url(url: str) -> str:
    """`url` without a user name or password, for a message."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def _retry_after(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    return getattr(error, "retry_after", 0.0) or 0.0


class EutilsClient:
    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None,
                 limiter: RateLimiter | None = None, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.limiter = limiter or RateLimiter(settings.rate_limit)
        self.request_count = 0
        self.reached = False  # a request has had an answer (any HTTP status): E-utilities can be reached
        self._counting = threading.Lock()  # requests are sent from the prefetching threads too
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=settings.eutils_url,
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 20.0)),
            transport=transport,
            headers={"User-Agent": f"{settings.tool}/{__version__} (python-httpx)"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EutilsClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- etiquette and retries -------------------------------------------------------------

    def _params(self, params: Mapping[str, str | list[str]]) -> dict[str, str | list[str]]:
        full = {"db": "pubmed", **params, "tool": self.settings.tool}
        if self.settings.email:
            full["email"] = self.settings.email
        if self.settings.api_key:
            full["api_key"] = self.settings.api_key
        return full

    def _retrying(self) -> Retrying:
        backoff = wait_exponential_jitter(multiplier=self.settings.backoff_initial, jitter=self.settings.backoff_initial,
                                         max=self.settings.backoff_max)

        def wait(state: RetryCallState) -> float:
            return max(backoff(state), _retry_after(state))

        def before_sleep(state: RetryCallState) -> None:
            # INFO: shown with --verbose and in the scheduler's log; the failure itself is said once, at the end.
            log.info("attempt %d failed (%s); retrying in %.1f s", state.attempt_number,
                     state.outcome.exception() if state.outcome else None, state.upcoming_sleep)

        full_budget = stop_after_attempt(self.settings.max_attempts)

        def stop(state: RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            first_contact = not self.reached and getattr(error, "unreachable", None) is not None
            return full_budget(state) or (first_contact and state.attempt_number >= FIRST_CONTACT_ATTEMPTS)

        return Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(TransientEutilsError),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )

    def _with_retries(self, endpoint: str, call: Callable[[], object]):
        attempts = 0
        try:
            for attempt in self._retrying():
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return call()
        except BlockedError:
            raise BlockedError(self._blocked_advice(), detail=f"{endpoint} was answered with NCBI's Blocked Diagnostic "
                                                             "page") from None
        except TransientEutilsError as error:
            detail = f"{endpoint} failed after {attempts} attempts: {error}"
            if error.unreachable is not None and not self.reached:
                host = urlsplit(self.settings.eutils_url).hostname or self.settings.eutils_url
                raise UnreachableError(
                    f"cannot reach {host} ({error.unreachable}): check the network, a proxy (HTTPS_PROXY) or "
                    "TRACKER_EUTILS_URL", host=host, cause=error.unreachable, detail=detail) from None
            raise EutilsError(detail) from None

    def _blocked_advice(self) -> str:
        """What to check when NCBI blocks this machine: the address, the key and the rate it was sent with."""
        settings = self.settings
        key = "one is set" if settings.api_key else "none is set"
        return (f"NCBI blocked this machine's requests (its Blocked Diagnostic page), so nothing more was asked: check "
                f"that NCBI_EMAIL is a real address NCBI can write to (now {settings.email or 'none'}), that "
                f"NCBI_API_KEY is yours and valid ({key}), and that TRACKER_RATE_LIMIT stays within NCBI's limit of 3 "
                f"requests/s, 10 with a key (now {settings.rate_limit:g}); then try again later, or ask "
                "info@ncbi.nlm.nih.gov to lift the block")

    def _send(self, endpoint: str, params: Mapping[str, str | list[str]], *, stream: bool = False,
              ticket: Ticket | None = None) -> httpx.Response:
        """One HTTP request; long id lists always travel in a POST body. A prefetching job's `ticket` orders its
        request after the previous job's and stops it once the pipeline was abandoned."""
        data = self._params(params)
        if log.isEnabledFor(logging.DEBUG):
            shown = {k: (v if len(v) < 120 else f"{v[:60]}… ({len(v)} chars)") for k, v in data.items() if k != "api_key"}
            log.debug("POST %s %s", endpoint, shown)
        if ticket is not None:
            ticket.before_request()
        with self.limiter.reserve() as slot:
            if ticket is not None:
                if ticket.abandoned:
                    slot.release()
                    raise Abandoned()
                slot.on_start(ticket.request_left)
            with self._counting:
                self.request_count += 1
            started = time.monotonic()
            request = self._http.build_request("POST", endpoint, data=data, extensions={"trace": slot.trace})
            slot.handing_off()
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                if isinstance(error, httpx.TimeoutException):
                    failure = TransientEutilsError(f"no answer within {self.settings.timeout:g} s (timeout)")
                else:
                    failure = TransientEutilsError(f"connection failed ({type(error).__name__}: {error or 'no detail'})")
                failure.unreachable = reach_failure(error)
                raise failure from None
        self.reached = True
        log.debug("%s -> HTTP %d in %.2f s", endpoint, response.status_code, time.monotonic() - started)
        try:
            _check_status(response, stream=stream, eutils_url=self.settings.eutils_url)
        except BaseException:
            response.close()
            raise
        return response

    # -- esearch ---------------------------------------------------------------------------

    def search(self, term: str, *, retstart: int = 0, retmax: int | None = None) -> SearchResult:
        params = {
            "term": term,
            "retstart": str(retstart),
            "retmax": str(self.settings.esearch_page if retmax is None else retmax),
            "sort": "pub_date",
            "retmode": "xml",
        }

        def call() -> SearchResult:
            response = self._send("esearch.fcgi", params)
            return parse_search(response.content)

        return self._with_retries("esearch", call)

    def fetch_pmids(self, query: str, start: date | None, end: date, *, field_tag: str = "crdt") -> SearchOutcome:
        """Every PMID matching `query` with `field_tag` in [start, end], splitting past the 9,999 cap."""
        outcome = SearchOutcome(query=query, pmids=[], count=0, slices=0)
        seen: set[int] = set()
        pending = [(start or EARLIEST_DATE, end)]
        while pending:
            low, high = pending.pop()
            term = date_clause(query, low, high, field_tag)
            first = self.search(term)
            if outcome.slices == 0:
                outcome.query_translation = first.query_translation
                outcome.warnings, outcome.errors = first.warnings, first.errors
            if first.count > MAX_RETRIEVABLE:
                if low >= high:
                    raise IncompleteSearchError(
                        f"{first.count} records on {low} alone exceed PubMed's 9,999 limit; narrow the query"
                    )
                middle = low + (high - low) // 2
                log.info("%d records in %s..%s exceed 9,999: splitting the window", first.count, low, high)
                pending.append((middle + timedelta(days=1), high))
                pending.append((low, middle))
                continue
            ids = self._page_through(term, first)
            outcome.slices += 1
            outcome.count += first.count
            for pmid in ids:
                if pmid not in seen:
                    seen.add(pmid)
                    outcome.pmids.append(pmid)
        if len(outcome.pmids) != outcome.count:
            raise IncompleteSearchError(
                f"PubMed reported {outcome.count} records but returned {len(outcome.pmids)} PMIDs; "
                "the result would be incomplete, so nothing was marked as done: run the fetch again"
            )
        return outcome

    def _page_through(self, term: str, first: SearchResult) -> list[int]:
        ids = list(first.ids)
        page = self.settings.esearch_page
        while len(ids) < first.count:
            retstart = len(ids)
            result = self.search(term, retstart=retstart, retmax=min(page, MAX_RETRIEVABLE - retstart))
            if not result.ids:
                break
            ids.extend(result.ids)
        # Records entering the window while paging shift later pages; a set that does not add up is redone.
        if len(set(ids)) != first.count:
            again = self.search(term)
            if again.count != first.count:
                return self._page_through(term, again)
        return list(dict.fromkeys(ids))

    # -- efetch ----------------------------------------------------------------------------

    @overload
    def fetch_papers(self, pmids: Sequence[int], *, batch: int | None = None,
                     prepare_each: Callable[[Paper], Paper] | None = None) -> Generator[list[Paper], None, None]:
        ...

    @overload
    def fetch_papers(self, pmids: Sequence[int], *, batch: int | None = None,
                     prepare_each: Callable[[Paper], Paper] | None = None,
                     prepare: Callable[[list[Paper]], Prepared]) -> Generator[Prepared, None, None]:
        ...

    def fetch_papers(self, pmids: Sequence[int], *, batch: int | None = None,
                     prepare_each: Callable[[Paper], Paper] | None = None,
                     prepare: Callable[[list[Paper]], object] | None = None) -> Generator[object, None, None]:
        """Yield the records of `pmids`, one list per POSTed efetch batch, in order, each parsed completely.

        Later batches are requested ahead on threads of their own (tracker/ncbi/prefetch.py: at most
        `settings.efetch_in_flight` on their way and `settings.efetch_in_flight_mb` of their bodies received or
        expected, fewer after a failure) while the caller stores the one
        yielded; each is parsed as it streams in. Closing the iterator abandons the batches still on their way.
        With `prepare`, each parsed batch is handed to it on the thread that fetched it and what it returns is
        yielded instead: the caller's own work on each record, done while the caller stores the batch before.
        `prepare_each` is given each record as soon as it is parsed, on that thread, and its result kept in its
        place: what it lets go of (the record's XML as received, say) is not held until the batch is whole.
        """
        size = batch or self.settings.efetch_batch
        chunks = [pmids[offset:offset + size] for offset in range(0, len(pmids), size)]

        def job(ticket: Ticket, chunk: Sequence[int]) -> tuple[int, object]:
            papers = self._fetch_batch_with_retries(chunk, ticket, prepare_each)
            return len(papers), (papers if prepare is None else prepare(papers))

        jobs = [lambda ticket, chunk=chunk: job(ticket, chunk) for chunk in chunks]
        with closing(prefetched(jobs, depth=self.settings.efetch_in_flight,
                                max_bytes=self.settings.efetch_in_flight_mb * 1_000_000)) as ahead:
            for chunk, (received, result) in zip(chunks, ahead, strict=True):
                missing = len(chunk) - received
                if missing > 0:
                    log.info("efetch returned %d of %d records (the rest were deleted or merged)", received,
                             len(chunk))
                yield result

    def _fetch_batch_with_retries(self, pmids: Sequence[int], ticket: Ticket,
                                  prepare_each: Callable[[Paper], Paper] | None = None) -> list[Paper]:
        def attempt() -> list[Paper]:
            try:
                return self._fetch_batch(pmids, ticket, prepare_each)
            except TransientEutilsError:
                ticket.check()  # abandoned (its connection may have been closed under it): no retry
                ticket.attempt_failed()
                raise

        return self._with_retries("efetch", attempt)

    def _fetch_batch(self, pmids: Sequence[int], ticket: Ticket | None = None,
                     prepare_each: Callable[[Paper], Paper] | None = None) -> list[Paper]:
        params = {"id": ",".join(str(p) for p in pmids), "retmode": "xml", "rettype": "abstract"}
        response = self._send("efetch.fcgi", params, stream=True, ticket=ticket)
        parser = PaperParser()
        papers: list[Paper] = []
        received = 0
        try:
            for chunk in response.iter_bytes():
                if ticket is not None:
                    ticket.check()
                    ticket.received(len(chunk))
                received += len(chunk)
                parsed = parser.feed(chunk)
                papers.extend(parsed if prepare_each is None else map(prepare_each, parsed))
            parsed = parser.close()
            papers.extend(parsed if prepare_each is None else map(prepare_each, parsed))
        except httpx.TimeoutException:
            raise TransientEutilsError("efetch body stopped arriving (read timeout)") from None
        except httpx.TransportError as error:
            raise TransientEutilsError(f"efetch body cut off ({type(error).__name__}) after {received} bytes") from None
        except ParseError as error:
            raise TransientEutilsError(_explain_body(str(error), received)) from None
        finally:
            response.close()
        return papers


def _number(text: str | None) -> int:
    """A count or score of an E-utilities answer; ValueError when it is not ASCII digits (the body is damaged)."""
    number = whole_number(text)
    if number is None:
        raise ValueError(f"not a number: {(text or '')[:40]!r}")
    return number


def _pmid(text: str | None) -> int:
    pmid = parse_pmid(text)
    if pmid is None:
        raise ValueError(f"not a PMID: {(text or '')[:40]!r}")
    return pmid


def _explain_body(message: str, size: int) -> str:
    if size == 0:
        return "efetch answered with an empty body"
    if "html" in message.lower():
        return "NCBI answered with an HTML page instead of XML (blocked or down)"
    return message


def is_blocked_page(body: bytes) -> bool:
    """NCBI's "Blocked Diagnostic" page (a 200 text/html answer to an abusing or misconfigured client)."""
    head = body[:20_000].lower()
    return b"blocked diagnostic" in head or b"has been temporarily blocked" in head


def _check_status(response: httpx.Response, *, stream: bool, eutils_url: str = DEFAULT_EUTILS_URL) -> None:
    status = response.status_code
    if status == 200:
        content_type = response.headers.get("content-type", "")
        if "html" in content_type:
            text = (response.text if not stream else response.read().decode("utf-8", "replace"))[:20_000]
            start, end = text.find("<title>"), text.find("</title>")
            title = text[start + 7:end].strip() if 0 <= start < end else ""
            if is_blocked_page(text.encode()):
                raise BlockedError(f"NCBI answered with an HTML page ({title or 'Blocked Diagnostic'})")
            raise TransientEutilsError(
                f"NCBI answered with an HTML page{f' ({title})' if title else ''} instead of XML (blocked or down)"
            )
        return
    if not stream:
        body = response.text
    else:
        body = response.read().decode("utf-8", "replace")
    summary = " ".join(body.split())[:160]
    if status == 429:
        error = TransientEutilsError("rate limited by NCBI (HTTP 429)")
        try:
            error.retry_after = float(response.headers.get("retry-after", "0"))
        except ValueError:
            error.retry_after = 0.0
        raise error
    if status >= 500:
        raise TransientEutilsError(f"HTTP {status} {response.reason_phrase}")
    if status == 400 and "api key" in body.lower():
        raise EutilsError("NCBI rejected the API key (HTTP 400): check NCBI_API_KEY, or unset it to run at 3 requests/s")
    if status in CONFIGURATION_STATUSES:
        raise EutilsError(
            f"HTTP {status} {response.reason_phrase}: check TRACKER_EUTILS_URL (now {shown_url(eutils_url)}): it "
            f"should be the E-utilities base URL ending in /eutils/, by default {DEFAULT_EUTILS_URL}")
    raise EutilsError(f"HTTP {status} {response.reason_phrase}: {summary}")


def parse_search(body: bytes) -> SearchResult:
    if not body.strip():
        raise TransientEutilsError("esearch answered with an empty body")
    try:
        root = etree.fromstring(body, _SAFE_XML)
    except etree.XMLSyntaxError as error:
        if body.lstrip()[:1] == b"<" and b"<html" in body[:500].lower():
            if is_blocked_page(body):
                raise BlockedError("NCBI answered with its Blocked Diagnostic page") from None
            raise TransientEutilsError("NCBI answered with an HTML page instead of XML (blocked or down)") from None
        raise TransientEutilsError(f"esearch body is not valid XML ({error})") from None
    if root.tag != "eSearchResult":
        raise TransientEutilsError(f"esearch answered with <{root.tag}> instead of <eSearchResult>")
    internal = root.getroottree().docinfo.internalDTD
    if internal is not None and any(True for _ in internal.iterentities()):
        # NCBI never declares entities; left unexpanded they would blank out a Count or an Id.
        raise TransientEutilsError("esearch XML declares its own entities (<!ENTITY>): refused")
    reported = root.findtext("ERROR")
    if reported is not None:
        message = " ".join(reported.split())
        if "cannot be larger than" in message:
            raise IncompleteSearchError(f"PubMed refused to page past 9,999 records ({message[:120]})")
        raise TransientEutilsError(f"PubMed reported an error inside HTTP 200: {message[:200]}")
    count_text = root.findtext("Count")
    if count_text is None:
        raise TransientEutilsError("esearch answer has no <Count>; the body is incomplete")
    errors = [f"{child.tag}: {child.text}" for child in root.iterfind("ErrorList/*")]
    warnings = [f"{child.tag}: {child.text}" for child in root.iterfind("WarningList/*")]
    try:
        count = _number(count_text)
        ids = [_pmid(element.text) for element in root.iterfind("IdList/Id")]
    except ValueError:
        raise TransientEutilsError(
            "esearch answer has a <Count> or <Id> that is not a number; the body is damaged") from None
    return SearchResult(
        count=count,
        ids=ids,
        query_translation=root.findtext("QueryTranslation"),
        warnings=warnings,
        errors=errors,
    )


# -- elink -----------------------------------------------------------------------------------

SIMILAR = "pubmed_pubmed"
CITED_IN = "pubmed_pubmed_citedin"
REFERENCES = "pubmed_pubmed_refs"
LINKNAMES = (SIMILAR, CITED_IN, REFERENCES)
# Seeds per ELink request. Every seed travels as an `id=` of its own, so that NCBI answers one LinkSet per seed
# and each link keeps the seed it came from (a comma list would merge them into one LinkSet). A PMID's links
# without a date limit take about 9 kB of XML (Biopython's recording Tests/Entrez/elink1.xml: 192 links under
# 8 link names in 9.2 kB), so 100 seeds answer in about 1 MB, and a batch that fails is retried whole. NCBI
# asks for POST past about 200 ids; this client always POSTs.
LINK_BATCH = 100
# The date ELink's window limits: the Entrez date, when the record entered PubMed. ELink documents edat, pdat
# and mdat for datetype; a publication date can be months before the record exists (or after), and a
# modification date brings back old records, while the Entrez date of a new record is its create date [crdt],
# the date the tracker's searches slice on.
LINK_DATETYPE = "edat"


@dataclass(frozen=True)
class Link:
    """`target_pmid` is linked to `source_pmid` by `linkname`; `score` is NCBI's similarity when asked for."""

    source_pmid: int
    linkname: str
    target_pmid: int
    score: int | None = None


def fetch_links(client: EutilsClient, pmids: Sequence[int], linknames: Sequence[str] = LINKNAMES, *,
                window: tuple[date, date] | None = None, with_scores: bool = False,
                batch: int = LINK_BATCH) -> Iterator[Link]:
    """Yield the links of `pmids` named by `linknames`, `batch` seeds a request, each answer in NCBI's order.

    `window` (first and last day, inclusive) keeps only linked records that entered PubMed in it (ELink's
    cmd=neighbor with datetype=edat). `with_scores` asks cmd=neighbor_score, which gives similar articles
    their scores but ignores dates, so the two cannot be combined. Without scores, several link names share
    one request per batch (ELink answers every PubMed-to-PubMed link when no linkname is given); with scores,
    each link name has a request of its own. A PMID that PubMed does not know, or that has no links, yields
    nothing: citations come from PubMed Central's reference lists, so many papers have none.
    """
    if window is not None and with_scores:
        raise ValueError("ELink limits dates only with cmd=neighbor and would silently ignore the window with "
                         "cmd=neighbor_score: ask for scores or for a window, not both")
    unknown = [name for name in linknames if name not in LINKNAMES]
    if unknown or not linknames:
        raise ValueError(f"link names must be some of {', '.join(LINKNAMES)}; got {', '.join(unknown) or 'none'}")
    if window is not None and window[0] > window[1]:
        raise ValueError(f"the window starts after it ends ({window[0]} > {window[1]})")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    params = {"dbfrom": "pubmed", "cmd": "neighbor_score" if with_scores else "neighbor", "retmode": "xml"}
    if window is not None:
        params.update(datetype=LINK_DATETYPE, mindate=f"{window[0]:%Y/%m/%d}", maxdate=f"{window[1]:%Y/%m/%d}")
    wanted = tuple(dict.fromkeys(linknames))
    groups: list[tuple[str, ...]] = [wanted] if not with_scores else [(name,) for name in wanted]
    return _fetch_links_in_batches(client, list(dict.fromkeys(pmids)), groups, params, batch)


def _fetch_links_in_batches(client: EutilsClient, seeds: list[int], groups: list[tuple[str, ...]],
                            params: dict[str, str], batch: int) -> Iterator[Link]:
    for offset in range(0, len(seeds), batch):
        chunk = seeds[offset:offset + batch]
        for group in groups:
            yield from _fetch_link_batch(client, params, chunk, group)


def _fetch_link_batch(client: EutilsClient, params: dict[str, str], seeds: list[int],
                      linknames: tuple[str, ...]) -> list[Link]:
    request: dict[str, str | list[str]] = {**params, "id": [str(pmid) for pmid in seeds]}
    if len(linknames) == 1:
        request["linkname"] = linknames[0]

    def call() -> list[Link]:
        response = client._send("elink.fcgi", request)
        return parse_links(response.content, linknames)

    links: list[Link] = client._with_retries("elink", call)
    strangers = sorted({link.source_pmid for link in links} - set(seeds))
    if strangers:
        raise EutilsError(f"ELink answered for PMIDs that were not asked ({', '.join(map(str, strangers[:5]))})")
    return links


def parse_links(body: bytes, linknames: Collection[str] = LINKNAMES) -> list[Link]:
    """The links named by `linknames` in an <eLinkResult> of one LinkSet per seed, without a seed's link to itself."""
    if not body.strip():
        raise TransientEutilsError("elink answered with an empty body")
    try:
        root = etree.fromstring(body, _SAFE_XML)
    except etree.XMLSyntaxError as error:
        if body.lstrip()[:1] == b"<" and b"<html" in body[:500].lower():
            if is_blocked_page(body):
                raise BlockedError("NCBI answered with its Blocked Diagnostic page") from None
            raise TransientEutilsError("NCBI answered with an HTML page instead of XML (blocked or down)") from None
        raise TransientEutilsError(f"elink body is not valid XML ({error})") from None
    if root.tag != "eLinkResult":
        raise TransientEutilsError(f"elink answered with <{root.tag}> instead of <eLinkResult>")
    internal = root.getroottree().docinfo.internalDTD
    if internal is not None and any(True for _ in internal.iterentities()):
        raise TransientEutilsError("elink XML declares its own entities (<!ENTITY>): refused")
    # NCBI puts <ERROR> under eLinkResult, under a LinkSet or under a LinkSetDb, and answers HTTP 200 all the same.
    reported = [" ".join((element.text or "").split()) for element in root.iter("ERROR")]
    if reported:
        raise TransientEutilsError(f"PubMed reported an error inside HTTP 200: {'; '.join(reported)[:200]}")
    links: list[Link] = []
    try:
        for link_set in root.iterfind("LinkSet"):
            sources = [_number(element.text) for element in link_set.iterfind("IdList/Id")]
            if len(sources) != 1:
                raise EutilsError(f"ELink merged the links of {len(sources)} PMIDs into one LinkSet "
                                  f"({', '.join(map(str, sources[:5]))}): the seed of each link is lost")
            source = sources[0]
            for link_set_db in link_set.iterfind("LinkSetDb"):
                linkname = link_set_db.findtext("LinkName") or ""
                if linkname not in linknames:
                    continue
                for link in link_set_db.iterfind("Link"):
                    target = _pmid(link.findtext("Id"))
                    # NCBI lists a seed first among its own similar articles (score 2147483647 when scored).
                    if target == source:
                        continue
                    score = link.findtext("Score")
                    links.append(Link(source, linkname, target, None if score is None else _number(score)))
    except ValueError:
        raise TransientEutilsError("elink answer has an <Id> or <Score> that is not a number; the body is damaged") from None
    return links
