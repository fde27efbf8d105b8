"""A fake NCBI E-utilities server (esearch, efetch and elink for PubMed) on a loopback socket.

It is a real HTTP/1.1 server (``http.server.ThreadingHTTPServer`` on 127.0.0.1, an
ephemeral port) running in a background thread, so the tracker can be exercised end to
end, in a subprocess, by pointing ``TRACKER_EUTILS_URL`` at ``FakeEutils.url``.

Reproduced NCBI behaviours (response shapes modelled on PubMed's documented and observed answers):

* ``esearch.fcgi`` (GET or form POST): ``<eSearchResult>`` with ``Count``, ``RetMax``,
  ``RetStart``, optional ``QueryKey``/``WebEnv`` (``usehistory=y``), ``IdList``,
  ``TranslationSet`` and ``QueryTranslation``, PMIDs newest (highest) first.
  The tracker's date clause ``(<q>) AND ("YYYY/MM/DD"[crdt] : "YYYY/MM/DD"[crdt])``
  (also ``edat``/``mdat``, bounds inclusive) restricts results by the record's dates.
* The 9,999-record ceiling introduced with the 2022 PubMed backend: ``Count`` is the
  true total, pages never reach past the first ``max_ids`` ids, and ``retstart`` beyond
  that answers HTTP 200 with ``<ERROR>Search Backend failed: Exception:\\n'retstart'
  cannot be larger than 9998. ...</ERROR>``. ``retmax`` is capped at 10,000.
* A phrase PubMed does not know gives ``Count`` 0 with ``<ErrorList><PhraseNotFound>``
  and ``<WarningList><OutputMessage>No items found.</OutputMessage>``.
* ``efetch.fcgi`` by ``id`` list (GET or POST, order kept, unknown PMIDs skipped) or by
  ``WebEnv``/``query_key``/``retstart``/``retmax`` (``retmax`` defaults to 20 and is
  capped at 10,000, so a client must page explicitly); the ``<PubmedArticleSet>`` body is
  streamed with a Content-Length. An unknown or expired WebEnv answers HTTP 200 with
  ``<eFetchResult><ERROR>Unable to obtain query #1</ERROR></eFetchResult>``.
* ``elink.fcgi`` for ``dbfrom=pubmed`` and ``db=pubmed`` (GET or POST; see the elink section at the
  end of this module): ``cmd=neighbor`` (the default) and ``cmd=neighbor_score``, ``<eLinkResult>`` XML
  or ``retmode=json``; similar articles from a TF-IDF cosine of the records' titles and abstracts, citing
  and cited records from the PMIDs in the records' ``<ReferenceList>``; one LinkSet per ``id=``
  parameter, a comma list in one ``id=`` merged into one LinkSet; the date window
  (``datetype``/``mindate``/``maxdate``/``reldate``) applied only with ``cmd=neighbor``.
* NCBI's rate limiter: past ``rate_limit`` requests in the preceding second the answer is
  HTTP 429, ``Retry-After: 1`` and ``{"error":"API rate limit exceeded",...}`` JSON.
* NCBI's answer times (``latency``, a ``Latency``; ``NCBI_LATENCY`` is about what NCBI takes: 0.3 s per
  esearch, 0.5 s plus 4 ms per record per efetch): each answer starts that long after its request arrived,
  requests being answered side by side as NCBI does.
* Injected faults seen in the wild: 429, 500, 502, 400 for an invalid API key, TCP reset,
  a stalled response, a body cut short, an empty 200, the HTML "Blocked Diagnostic"
  page, in-band "Search Backend failed" errors and an expired WebEnv.

Not simulated: PubMed query syntax (a term's query part is matched only by exact text
against ``FakeRecord.queries``), automatic term mapping (``QueryTranslation`` echoes
the term), other databases and E-utilities (einfo, epost, esummary), JSON other than
elink's, MEDLINE or other ``rettype``/``retmode`` output, elink commands other than the two
above, per-IP or per-key rate accounting (one global limiter), history-server expiry by time
(stored searches are evicted only past ``max_webenvs``), ``TranslationSet`` contents, and
chunked request bodies.
"""

from __future__ import annotations

import html
import json
import math
import re
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
from bisect import bisect_left
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

__all__ = ["FakeRecord", "FakeEutils", "RequestLog", "FAULTS", "Latency", "NCBI_LATENCY"]

PREFIX = "/entrez/eutils/"
ENDPOINTS = {"esearch.fcgi": "esearch", "efetch.fcgi": "efetch", "elink.fcgi": "elink"}
FAULTS = frozenset(
    {"429", "500", "502", "400-api-key", "reset", "timeout", "truncated", "empty", "blocked", "backend-error", "expired-webenv"}
)
DATE_FIELDS = ("crdt", "edat", "mdat")
RETMAX_CAP = 10000
CHUNK = 64 * 1024
INCREMENTAL_ADD = 256  # larger batches rebuild the index instead of inserting record by record

ESEARCH_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n'
)
EFETCH_HEAD = (
    b'<?xml version="1.0" ?>\n'
    b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
    b"<PubmedArticleSet>\n"
)
EFETCH_TAIL = b"</PubmedArticleSet>\n"
XML_TYPE = "text/xml; charset=UTF-8"
HTML_TYPE = "text/html; charset=UTF-8"
JSON_TYPE = "application/json"
BACKEND_ERROR = "Search Backend failed: Unable to open connection to #PMQuerySrv?dbaf=pubmed"

HTML_500 = (
    "<html><head><title>500 Internal Server Error</title></head>"
    "<body><h1>Internal Server Error</h1><p>The server encountered an internal error.</p></body></html>\n"
)
HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)
HTML_BLOCKED = (
    "<html><head><title>Blocked Diagnostic</title></head><body><h1>Access Blocked</h1>"
    "<p>Your access to the NCBI website at eutils.ncbi.nlm.nih.gov has been temporarily blocked "
    "due to a possible misuse/abuse situation involving your site. This is not an indication of "
    "a security issue such as a virus or attack. It could be something as simple as a run away "
    "script or learning how to better use E-utilities for more efficient work such that your work "
    "does not impact the ability of other researchers to also use our site.</p>"
    "<p>To restore access and understand how to better interact with our site to avoid this in the "
    "future, please have your system administrator contact info@ncbi.nlm.nih.gov.</p></body></html>\n"
)

# Anchored at the end: the topic query itself may contain parentheses, quotes and tags.
DATE_CLAUSE = re.compile(
    r'^\((?P<query>.*)\) AND \("(?P<lo>\d{4}/\d{2}/\d{2})"\[(?P<field>crdt|edat|mdat)\]'
    r' : "(?P<hi>\d{4}/\d{2}/\d{2})"\[(?P=field)\]\)$',
    re.DOTALL,
)


@dataclass(frozen=True)
class Latency:
    """How long an answer takes to start: `esearch` seconds, or `efetch` plus `per_record` for each record asked."""

    esearch: float
    efetch: float
    per_record: float

    def of(self, endpoint: str, params: dict[str, str]) -> float:
        if endpoint == "esearch":
            return self.esearch
        ids = params.get("id", "").strip()
        records = len(ids.split(",")) if ids else _int_param(params, "retmax", 20) if params.get("WebEnv") else 0
        return self.efetch + self.per_record * records


NCBI_LATENCY = Latency(esearch=0.3, efetch=0.5, per_record=0.004)


@dataclass
class FakeRecord:
    pmid: int
    xml: str  # one <PubmedArticle> or <PubmedBookArticle> element, served verbatim
    created: date  # [crdt]
    entrez: date | None = None  # [edat], defaults to created
    modified: date | None = None  # [mdat], defaults to created
    queries: frozenset[str] | None = None  # None: matches every query

    def __post_init__(self) -> None:
        if self.entrez is None:
            self.entrez = self.created
        if self.modified is None:
            self.modified = self.created
        if isinstance(self.queries, str):
            self.queries = frozenset({self.queries})
        elif self.queries is not None and not isinstance(self.queries, frozenset):
            self.queries = frozenset(self.queries)


@dataclass
class RequestLog:
    endpoint: str  # "esearch", "efetch", or the unknown path for a 404
    method: str
    params: dict[str, str]
    time: float  # time.monotonic() at arrival
    status: int | None = None  # None until answered; stays None for a "reset" fault
    fault: str | None = None  # the injected fault or "rate-limit" that shaped the answer
    id_params: tuple[str, ...] = ()  # each `id=` as sent: `params["id"]` joins them with commas


class _Stored:
    __slots__ = ("pmid", "xml", "dates", "queries")

    def __init__(self, pmid: int, xml: bytes, dates: tuple[int, int, int], queries: frozenset[str] | None):
        self.pmid, self.xml, self.dates, self.queries = pmid, xml, dates, queries


@dataclass
class _Fault:
    kind: str
    endpoint: str
    at: int | None
    times: int
    options: dict
    fired: int = 0

    def matches(self, endpoint: str, params: dict[str, str]) -> bool:
        if self.endpoint not in ("any", endpoint):
            return False
        if self.kind == "expired-webenv":
            return endpoint == "efetch" and "WebEnv" in params and not params.get("id", "").strip()
        return True


def _date_key(record: _Stored, i: int) -> int:
    # One int orders by date ascending, then PMID descending; PMIDs fit in 32 bits.
    return (record.dates[i] << 32) | (0xFFFFFFFF - record.pmid)


class _Index:
    """Sorted views of the records: PMID-descending, and per date field for range bisection.

    Small adds are inserted in place so a timeline of add-then-sync steps stays cheap;
    bulk adds drop the index and it is rebuilt on the next search.
    """

    def __init__(self, records: Iterable[_Stored]):
        self.desc = sorted(records, key=lambda r: -r.pmid)
        self.desc_keys = [-r.pmid for r in self.desc]
        self.by_date: list[tuple[list[int], list[_Stored]]] = []
        for i in range(len(DATE_FIELDS)):
            ordered = sorted(self.desc, key=lambda r: _date_key(r, i))
            self.by_date.append(([_date_key(r, i) for r in ordered], ordered))
        self.cache: dict[tuple, list[int]] = {}

    def insert(self, record: _Stored) -> None:
        pos = bisect_left(self.desc_keys, -record.pmid)
        self.desc_keys.insert(pos, -record.pmid)
        self.desc.insert(pos, record)
        for i, (keys, ordered) in enumerate(self.by_date):
            key = _date_key(record, i)
            pos = bisect_left(keys, key)
            keys.insert(pos, key)
            ordered.insert(pos, record)
        self.cache.clear()

    def delete(self, record: _Stored) -> None:
        pos = bisect_left(self.desc_keys, -record.pmid)
        del self.desc_keys[pos], self.desc[pos]
        for i, (keys, ordered) in enumerate(self.by_date):
            pos = bisect_left(keys, _date_key(record, i))
            del keys[pos], ordered[pos]
        self.cache.clear()

    def search(self, query: str, field_name: str | None, lo: int, hi: int) -> list[int]:
        key = (query, field_name, lo, hi)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        if field_name is None:
            found = [r.pmid for r in self.desc if r.queries is None or query in r.queries]
        else:
            keys, ordered = self.by_date[DATE_FIELDS.index(field_name)]
            window = ordered[bisect_left(keys, lo << 32) : bisect_left(keys, (hi + 1) << 32)]
            found = sorted((r.pmid for r in window if r.queries is None or query in r.queries), reverse=True)
        if len(self.cache) > 512:
            self.cache.clear()
        self.cache[key] = found
        return found


@dataclass
class _Response:
    status: int
    content_type: str
    chunks: list[bytes]
    length: int
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, status: int, content_type: str, body: str | bytes, headers=()) -> _Response:
        data = body.encode("utf-8") if isinstance(body, str) else body
        return cls(status, content_type, [data], len(data), list(headers))


def _esearch_error(message: str) -> _Response:
    return _Response.of(200, XML_TYPE, f"{ESEARCH_HEAD}<eSearchResult><ERROR>{escape(message)}</ERROR></eSearchResult>\n")


def _efetch_error(message: str) -> _Response:
    return _Response.of(200, XML_TYPE, f'<?xml version="1.0" ?><eFetchResult><ERROR>{escape(message)}</ERROR></eFetchResult>')


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    return int(raw)


def _ordinal(text: str) -> int:
    y, m, d = (int(part) for part in text.split("/"))
    return date(y, m, d).toordinal()


def _json(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeEutils

    def handle_error(self, request, client_address) -> None:
        # Clients that hang up (timeouts, resets) are expected; anything else is kept for tests to inspect.
        if not isinstance(sys.exc_info()[1], OSError):
            self.fake.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def version_string(self) -> str:
        return "FakeEutils/1.0"

    def log_message(self, format: str, *args) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._abort = False
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        if self._abort:
            # Closing here, before socketserver's shutdown(SHUT_WR), makes the kernel send RST instead of FIN.
            self.connection.close()
        self.server.fake._track(self.connection, False)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _read_params(self, method: str) -> dict[str, str]:
        pairs = parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            ctype = (self.headers.get("Content-Type") or "application/x-www-form-urlencoded").lower()
            if "x-www-form-urlencoded" in ctype:
                pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        self._id_params = tuple(value for key, value in pairs if key == "id")
        params: dict[str, str] = {}
        for key, value in pairs:
            if key == "id" and params.get("id"):
                params["id"] += "," + value
            else:
                params[key] = value
        return params

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        path = urlsplit(self.path).path
        params = self._read_params(method)
        endpoint = ENDPOINTS.get(path[len(PREFIX) :]) if path.startswith(PREFIX) else None
        entry, fault, window = fake._admit(endpoint or path, method, params, known=endpoint is not None)
        entry.id_params = self._id_params
        try:
            if endpoint is None:
                response = _Response.of(404, HTML_TYPE, "<html><body><h1>404 Not Found</h1></body></html>\n")
            else:
                if fake.delay:
                    fake._stopping.wait(fake.delay)
                if fake.latency is not None:
                    try:
                        fake._stopping.wait(fake.latency.of(endpoint, params))
                    except ValueError:
                        pass  # a retmax that is not a number: answered at once, with the error
                response = self._respond(fake, endpoint, params, fault, window)
        except Exception:
            fake.errors.append(traceback.format_exc())
            response = _Response.of(500, HTML_TYPE, HTML_500)
        if response is None:
            entry.status = None
            self._abort = True
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        entry.status = response.status
        self._send(response, truncate=fault is not None and fault.kind == "truncated")

    def _respond(self, fake: FakeEutils, endpoint: str, params: dict[str, str], fault: _Fault | None, window: int):
        kind = fault.kind if fault else None
        api_key = params.get("api_key", "")
        if kind == "reset":
            return None
        if kind == "timeout":
            fake._stopping.wait(float(fault.options.get("seconds", 5)))
        if kind == "429" or (kind is None and fake.rate_limit is not None and window > fake.rate_limit):
            limit = fake.rate_limit if fake.rate_limit is not None else (10 if api_key else 3)
            count = window if kind is None else max(window, int(limit) + 1)
            body = _json({"error": "API rate limit exceeded", "api-key": api_key or self.client_address[0],
                          "count": str(count), "limit": f"{limit:g}"})
            return _Response.of(429, JSON_TYPE, body, [("Retry-After", "1")])
        if kind == "500":
            return _Response.of(500, HTML_TYPE, HTML_500)
        if kind == "502":
            return _Response.of(502, HTML_TYPE, HTML_502)
        if kind == "400-api-key":
            body = _json({"error": "API key invalid", "api-key": api_key, "type": "api-key", "status": "unknown"})
            return _Response.of(400, JSON_TYPE, body)
        if kind == "empty":
            return _Response.of(200, XML_TYPE, b"")
        if kind == "blocked":
            return _Response.of(200, HTML_TYPE, HTML_BLOCKED)
        if kind == "backend-error":
            if endpoint == "elink":
                return _elink_error(BACKEND_ERROR, json_mode=params.get("retmode") == "json")
            return _esearch_error(BACKEND_ERROR) if endpoint == "esearch" else _efetch_error(BACKEND_ERROR)
        if endpoint == "esearch":
            return fake._esearch(params)
        if endpoint == "elink":
            return _elink(fake, params, self._id_params)
        return fake._efetch(params, expired=kind == "expired-webenv")

    def _send(self, response: _Response, truncate: bool) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(response.length))
            for name, value in response.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            budget = response.length // 2 if truncate else response.length
            for chunk in response.chunks:
                if budget <= 0:
                    break
                self.wfile.write(chunk[:budget])
                budget -= len(chunk)
        except OSError:
            self.close_connection = True
            return
        if truncate:
            self.close_connection = True


class FakeEutils:
    """See the module docstring. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        *,
        rate_limit: float | None = None,
        max_ids: int = 9999,
        delay: float = 0.0,
        phrase_not_found: set[str] | None = None,
        max_webenvs: int = 1000,
        latency: Latency | None = None,
    ):
        self.rate_limit = rate_limit
        self.max_ids = max_ids
        self.delay = delay
        self.latency = latency
        self.phrase_not_found = set(phrase_not_found) if phrase_not_found is not None else {"nosuchterm"}
        self.max_webenvs = max_webenvs
        self.errors: list[str] = []  # tracebacks of unexpected server-side exceptions
        self._lock = threading.Lock()
        self._records: dict[int, _Stored] = {}
        self._index: _Index | None = None
        self._webenvs: OrderedDict[str, list[int]] = OrderedDict()
        self._log: list[RequestLog] = []
        self._window: deque[float] = deque()
        self._counters: dict[str, int] = {}
        self._faults: list[_Fault] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeEutils is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PREFIX}"

    def start(self) -> FakeEutils:
        if self._server is not None:
            raise RuntimeError("FakeEutils is already started")
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-eutils",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:
            # Wakes handler threads blocked on idle keep-alive connections.
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeEutils:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # records

    def add(self, *records: FakeRecord) -> None:
        """Add or replace records (by PMID); visible to the next request."""
        stored = []
        for r in records:
            if not 0 < int(r.pmid) < 2**32:
                raise ValueError(f"PMID {r.pmid!r} out of range")
            stored.append(
                _Stored(
                    int(r.pmid),
                    r.xml if isinstance(r.xml, bytes) else r.xml.encode("utf-8"),
                    (r.created.toordinal(), (r.entrez or r.created).toordinal(), (r.modified or r.created).toordinal()),
                    r.queries,
                )
            )
        with self._lock:
            index = self._index if len(stored) <= INCREMENTAL_ADD else None
            for s in stored:
                old = self._records.get(s.pmid)
                self._records[s.pmid] = s
                if index is not None:
                    if old is not None:
                        index.delete(old)
                    index.insert(s)
            self._index = index

    def remove(self, pmid: int) -> None:
        with self._lock:
            old = self._records.pop(int(pmid), None)
            if old is not None and self._index is not None:
                self._index.delete(old)

    def expire_webenvs(self) -> None:
        """Forget every stored search, as NCBI's history server does after a while."""
        with self._lock:
            self._webenvs.clear()

    # faults

    def inject(self, fault: str, *, endpoint: str = "any", at: int | None = None, times: int = 1, **options) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(FAULTS)}")
        if endpoint not in ("any", "esearch", "efetch", "elink"):
            raise ValueError(f"unknown endpoint {endpoint!r}; expected 'any', 'esearch', 'efetch' or 'elink'")
        if times < 1 or (at is not None and at < 1):
            raise ValueError("times and at count from 1")
        with self._lock:
            self._faults.append(_Fault(fault, endpoint, at, times, options))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """How many injected fault firings have not happened yet."""
        with self._lock:
            return sum(f.times - f.fired for f in self._faults)

    # request log

    @property
    def requests(self) -> list[RequestLog]:
        with self._lock:
            return list(self._log)

    def count(self, endpoint: str | None = None) -> int:
        with self._lock:
            if endpoint is None:
                return len(self._log)
            return sum(1 for r in self._log if r.endpoint == endpoint)

    def max_requests_per_second(self) -> int:
        """Most arrivals within any window (t - 1.0, t], sliding over the log."""
        with self._lock:
            times = [r.time for r in self._log]
        best = start = 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best

    def reset_log(self) -> None:
        """Clear the log and the per-endpoint counters that inject(at=n) counts against."""
        with self._lock:
            self._log.clear()
            self._counters.clear()

    # internals called from handler threads

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            if not alive:
                self._connections.discard(conn)
                return
            self._connections.add(conn)
        if self._stopping.is_set():
            # Accepted just before stop() took its snapshot of open connections.
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _admit(self, endpoint: str, method: str, params: dict[str, str], *, known: bool) -> tuple[RequestLog, _Fault | None, int]:
        with self._lock:
            now = time.monotonic()
            entry = RequestLog(endpoint, method, params, now)
            self._log.append(entry)
            if not known:
                return entry, None, 0
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            self._window.append(now)
            for name in (endpoint, "any"):
                self._counters[name] = self._counters.get(name, 0) + 1
            fault = self._pick_fault(endpoint, params)
            entry.fault = fault.kind if fault else None
            window = len(self._window)
            if fault is None and self.rate_limit is not None and window > self.rate_limit:
                entry.fault = "rate-limit"
            return entry, fault, window

    def _pick_fault(self, endpoint: str, params: dict[str, str]) -> _Fault | None:
        chosen = None
        for f in self._faults:
            if f.at is None or not f.matches(endpoint, params):
                continue
            n = self._counters.get(f.endpoint, 0)
            if f.at <= n < f.at + f.times:
                chosen = f
                break
        if chosen is None:
            chosen = next((f for f in self._faults if f.at is None and f.matches(endpoint, params)), None)
        if chosen is not None:
            chosen.fired += 1
        # at-faults whose window has passed can never fire again.
        self._faults = [
            f for f in self._faults
            if f.fired < f.times and (f.at is None or self._counters.get(f.endpoint, 0) < f.at + f.times - 1)
        ]
        return chosen

    def _current_index(self) -> _Index:
        if self._index is None:
            self._index = _Index(self._records.values())
        return self._index

    def _esearch(self, params: dict[str, str]) -> _Response:
        db = params.get("db", "pubmed") or "pubmed"
        if db != "pubmed":
            return _esearch_error(f"Invalid db name specified: {db}")
        term = params.get("term", "").strip()
        if not term:
            return _esearch_error("Empty term and query_key - nothing todo")
        try:
            retstart = max(0, _int_param(params, "retstart", 0))
            retmax = min(RETMAX_CAP, max(0, _int_param(params, "retmax", 20)))
        except ValueError:
            return _esearch_error("Invalid retstart or retmax: expected integers")
        match = DATE_CLAUSE.match(term)
        if match:
            query, field_name = match["query"].strip(), match["field"]
            try:
                lo, hi = _ordinal(match["lo"]), _ordinal(match["hi"])
            except ValueError:
                return _esearch_error(f"Invalid date in term: {term}")
        else:
            query, field_name, lo, hi = term, None, 0, 0
        not_found = query in self.phrase_not_found
        with self._lock:
            ids = [] if not_found else self._current_index().search(query, field_name, lo, hi)
            webenv = None
            if params.get("usehistory", "").lower() == "y":
                webenv = "MCID_" + uuid.uuid4().hex
                self._webenvs[webenv] = ids
                while len(self._webenvs) > self.max_webenvs:
                    self._webenvs.popitem(last=False)
        if retstart > self.max_ids - 1:
            return _esearch_error(
                f"Search Backend failed: Exception:\n'retstart' cannot be larger than {self.max_ids - 1}. "
                f"For PubMed, ESearch can only retrieve the first {self.max_ids:,} records matching the query."
            )
        page = ids[retstart : min(retstart + retmax, self.max_ids)]
        parts = [
            ESEARCH_HEAD,
            f"<eSearchResult><Count>{len(ids)}</Count><RetMax>{len(page)}</RetMax><RetStart>{retstart}</RetStart>",
        ]
        if webenv is not None:
            parts.append(f"<QueryKey>1</QueryKey><WebEnv>{webenv}</WebEnv>")
        if page:
            parts.append("<IdList>\n")
            parts.extend(f"<Id>{pmid}</Id>\n" for pmid in page)
            parts.append("</IdList>")
        else:
            parts.append("<IdList/>")
        parts.append(f"<TranslationSet/><QueryTranslation>{escape(term)}</QueryTranslation>")
        if not_found:
            parts.append(
                f"<ErrorList><PhraseNotFound>{escape(query)}</PhraseNotFound></ErrorList>"
                "<WarningList><OutputMessage>No items found.</OutputMessage></WarningList>"
            )
        parts.append("</eSearchResult>\n")
        return _Response.of(200, XML_TYPE, "".join(parts))

    def _efetch(self, params: dict[str, str], *, expired: bool = False) -> _Response:
        db = params.get("db", "pubmed") or "pubmed"
        if db != "pubmed":
            return _efetch_error(f"Invalid db name specified: {db}")
        raw_ids = params.get("id", "").strip()
        if raw_ids:
            wanted = [int(p) for p in (part.strip() for part in raw_ids.split(",")) if p.isdigit()]
        elif params.get("WebEnv"):
            key = params.get("query_key", "1").strip() or "1"
            try:
                retstart = max(0, _int_param(params, "retstart", 0))
                retmax = min(RETMAX_CAP, max(0, _int_param(params, "retmax", 20)))
            except ValueError:
                return _efetch_error("Invalid retstart or retmax: expected integers")
            with self._lock:
                stored = None if expired or key != "1" else self._webenvs.get(params["WebEnv"])
            if stored is None:
                return _efetch_error(f"Unable to obtain query #{key}")
            wanted = stored[retstart : retstart + retmax]
        else:
            return _efetch_error("Empty id list - nothing todo")
        with self._lock:
            bodies = [s.xml for s in map(self._records.get, wanted) if s is not None]
        chunks = list(_batched(EFETCH_HEAD, bodies, EFETCH_TAIL))
        return _Response(200, XML_TYPE, chunks, sum(map(len, chunks)))


def _batched(head: bytes, bodies: list[bytes], tail: bytes) -> Iterator[bytes]:
    """Join record bodies into ~64 KiB writes: one sendall per record would dominate large fetches."""
    buf = [head]
    size = len(head)
    for body in bodies:
        buf.append(body)
        buf.append(b"\n")
        size += len(body) + 1
        if size >= CHUNK:
            yield b"".join(buf)
            buf, size = [], 0
    buf.append(tail)
    yield b"".join(buf)


# elink
#
# Shapes as NCBI answers (Biopython's Tests/Entrez/elink*.xml, metapub's recordings in ../shared/pubmed-samples):
# LinkSetDbs in link-name order, each omitted when it has no link; a PMID that PubMed does not know gives a
# LinkSet with its IdList only; a seed is the first of its own similar articles, with score 2147483647;
# citing and cited PMIDs newest (highest) first; pubmed_pubmed_five is the seed and its first five similar articles.
# Choices of this fake, not NCBI's: similar articles are the records' TF-IDF cosine of title and abstract
# text (at least SIMILAR_FLOOR, at most SIMILAR_LIMIT of them, scores cosine x 10^8), filtered by date
# before they are cut to SIMILAR_LIMIT; the records are all of PubMed, so a reference to a PMID the fake
# does not hold is no link; neighbor_score gives scores to similar articles only; a merged LinkSet lists
# its links newest first, each with its best score; mindate or maxdate alone is open at the other end; a
# date limit without datetype uses edat; a linkname other than these four gives no LinkSetDb.

ELINK_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n'
    '<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD elink 20101123//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/elink.dtd">\n'
)
ELINK_JSON_HEADER = {"type": "elink", "version": "0.3"}
SIMILAR_LINKS = ("pubmed_pubmed", "pubmed_pubmed_five")
LINKNAMES = ("pubmed_pubmed", "pubmed_pubmed_citedin", "pubmed_pubmed_five", "pubmed_pubmed_refs")
SELF_SCORE = 2147483647
SIMILAR_FLOOR = 0.1
SIMILAR_LIMIT = 100
SCORE_SCALE = 10**8
STOPWORDS = frozenset(
    "a an and are as at be been but by for from had has have in into is it its of on or that the their these this "
    "those to was were which with we our not no than then there after before between during over under".split()
)
TITLE_AND_ABSTRACT = re.compile(r"<(ArticleTitle|BookTitle|AbstractText)\b[^>]*>(.*?)</\1>", re.DOTALL)
TAG = re.compile(r"<[^>]+>")
WORD = re.compile(r"[a-z][a-z0-9]+")
REFERENCE_LIST = re.compile(r"<ReferenceList\b.*</ReferenceList>", re.DOTALL)
PUBMED_ID = re.compile(r'<ArticleId IdType="pubmed">\s*(\d+)\s*</ArticleId>')


def _elink_error(message: str, *, json_mode: bool) -> _Response:
    if json_mode:
        return _Response.of(200, JSON_TYPE, _json({"header": ELINK_JSON_HEADER, "linksets": [], "ERROR": message}))
    return _Response.of(200, XML_TYPE, f"{ELINK_HEAD}<eLinkResult>\n<ERROR>{escape(message)}</ERROR>\n</eLinkResult>\n")


def _record_terms(xml: bytes) -> Counter[str]:
    text = " ".join(match[2] for match in TITLE_AND_ABSTRACT.finditer(xml.decode("utf-8", "replace")))
    words = WORD.findall(html.unescape(TAG.sub(" ", text)).lower())
    return Counter(word for word in words if word not in STOPWORDS and len(word) > 2)


def _record_references(xml: bytes) -> list[int]:
    found = REFERENCE_LIST.search(xml.decode("utf-8", "replace"))
    return [int(pmid) for pmid in PUBMED_ID.findall(found[0])] if found else []


def _limit_date(text: str, *, end: bool) -> int:
    """YYYY, YYYY/MM or YYYY/MM/DD as a day's ordinal: a year's or a month's last day when `end`, else its first."""
    parts = [int(part) for part in text.strip().split("/")]
    if len(parts) == 3:
        return date(*parts).toordinal()
    if len(parts) == 2:
        year, month = parts
        if not end:
            return date(year, month, 1).toordinal()
        return date(year + month // 12, month % 12 + 1, 1).toordinal() - 1
    if len(parts) == 1:
        return date(parts[0], 12, 31).toordinal() if end else date(parts[0], 1, 1).toordinal()
    raise ValueError(text)


def _elink_window(params: dict[str, str]) -> tuple[int, int, int] | None:
    """(date field index, first day, last day) of the request's date limit; None without one."""
    mindate, maxdate, reldate = (params.get(name, "").strip() for name in ("mindate", "maxdate", "reldate"))
    if not (mindate or maxdate or reldate):
        return None
    datetype = params.get("datetype", "").strip().lower() or "edat"
    if datetype not in DATE_FIELDS:
        raise ValueError(f"datetype {datetype} is not simulated (only {', '.join(DATE_FIELDS)})")
    if reldate:
        today = date.today().toordinal()
        return DATE_FIELDS.index(datetype), today - int(reldate), today
    low = _limit_date(mindate, end=False) if mindate else 0
    high = _limit_date(maxdate, end=True) if maxdate else date.max.toordinal()
    return DATE_FIELDS.index(datetype), low, high


class _LinkTable:
    """Every link of the fake's records, computed once per request from the records as they are."""

    def __init__(self, records: dict[int, _Stored]):
        self.records = records
        terms = {pmid: _record_terms(record.xml) for pmid, record in records.items()}
        frequency = Counter(term for counts in terms.values() for term in counts)
        total = len(terms)
        weights = {term: math.log((1 + total) / (1 + count)) + 1 for term, count in frequency.items()}
        self.vectors: dict[int, dict[str, float]] = {}
        for pmid, counts in terms.items():
            vector = {term: count * weights[term] for term, count in counts.items()}
            norm = math.sqrt(sum(value * value for value in vector.values()))
            self.vectors[pmid] = {term: value / norm for term, value in vector.items()} if norm else {}
        self.references = {pmid: _record_references(record.xml) for pmid, record in records.items()}
        self.cited_by: dict[int, set[int]] = {}
        for pmid, cited in self.references.items():
            for target in cited:
                if target != pmid:
                    self.cited_by.setdefault(target, set()).add(pmid)

    def similar(self, pmid: int) -> list[tuple[int, int]]:
        """(PMID, score) of the records like `pmid`, the best first, `pmid` itself ahead of them."""
        mine = self.vectors.get(pmid, {})
        found = []
        for other, vector in self.vectors.items():
            if other == pmid or not mine:
                continue
            cosine = sum(weight * vector.get(term, 0.0) for term, weight in mine.items())
            if cosine >= SIMILAR_FLOOR:
                found.append((other, int(cosine * SCORE_SCALE)))
        found.sort(key=lambda pair: (-pair[1], -pair[0]))
        return [(pmid, SELF_SCORE), *found] if found else []

    def links(self, pmid: int, linkname: str, window: tuple[int, int, int] | None) -> list[tuple[int, int | None]]:
        if pmid not in self.records:
            return []
        if linkname in SIMILAR_LINKS:
            scored: list[tuple[int, int | None]] = list(self.similar(pmid))
        elif linkname == "pubmed_pubmed_citedin":
            scored = [(other, None) for other in sorted(self.cited_by.get(pmid, ()), reverse=True)]
        elif linkname == "pubmed_pubmed_refs":
            # PubMed is the fake's records: a reference to a PMID it does not hold is no link.
            cited = set(self.references[pmid]) & self.records.keys()
            scored = [(other, None) for other in sorted(cited - {pmid}, reverse=True)]
        else:
            return []
        if window is not None:
            field_index, low, high = window
            scored = [(other, score) for other, score in scored
                      if other in self.records and low <= self.records[other].dates[field_index] <= high]
        if linkname in SIMILAR_LINKS:
            scored = scored[:SIMILAR_LIMIT + 1 if linkname == "pubmed_pubmed" else 6]
            if len(scored) == 1 and scored[0][0] == pmid:
                return []  # a seed alone is no similar article
        return scored


def _elink(fake: FakeEutils, params: dict[str, str], id_params: tuple[str, ...]) -> _Response:
    json_mode = params.get("retmode", "xml").strip().lower() == "json"
    for name in ("db", "dbfrom"):
        db = params.get(name, "pubmed").strip() or "pubmed"
        if db != "pubmed":
            return _elink_error(f"Invalid db name specified: {db}", json_mode=json_mode)
    groups = [[part.strip() for part in value.split(",") if part.strip()] for value in id_params]
    groups = [group for group in groups if group]
    if not groups:
        return _elink_error("Empty id list - nothing todo", json_mode=json_mode)
    cmd = params.get("cmd", "neighbor").strip() or "neighbor"
    if cmd not in ("neighbor", "neighbor_score"):
        return _elink_error(f"cmd={cmd} is not simulated by the fake", json_mode=json_mode)
    try:
        # NCBI applies the date limit to neighbors only: neighbor_score ignores it.
        window = _elink_window(params) if cmd == "neighbor" else None
    except ValueError as error:
        return _elink_error(f"Invalid date limit: {error}", json_mode=json_mode)
    asked = params.get("linkname", "").strip()
    linknames = (asked,) if asked else LINKNAMES
    with fake._lock:
        records = dict(fake._records)
    table = _LinkTable(records)
    link_sets = []
    for group in groups:
        by_name: list[tuple[str, list[tuple[int, int | None]]]] = []
        for linkname in linknames:
            best: dict[int, int | None] = {}
            for raw in group:
                for other, score in (table.links(int(raw), linkname, window) if raw.isdigit() else []):
                    if other not in best or (score or 0) > (best[other] or 0):
                        best[other] = score
            if not best:
                continue
            if len(group) == 1:
                ordered = list(best.items())
            else:
                ordered = sorted(best.items(), key=lambda pair: -pair[0])
            by_name.append((linkname, ordered))
        link_sets.append((group, by_name))
    scores = cmd == "neighbor_score"
    if json_mode:
        return _Response.of(200, JSON_TYPE, _json(_elink_json(link_sets, scores)))
    return _Response.of(200, XML_TYPE, _elink_xml(link_sets, scores))


def _elink_xml(link_sets, scores: bool) -> str:
    parts = [ELINK_HEAD, "<eLinkResult>\n\n"]
    for group, by_name in link_sets:
        parts.append("  <LinkSet>\n    <DbFrom>pubmed</DbFrom>\n    <IdList>\n")
        parts.extend(f"      <Id>{escape(raw)}</Id>\n" for raw in group)
        parts.append("    </IdList>\n")
        for linkname, links in by_name:
            parts.append(f"    <LinkSetDb>\n      <DbTo>pubmed</DbTo>\n      <LinkName>{linkname}</LinkName>\n      \n")
            for pmid, score in links:
                shown = f"\n\t\t\t\t<Score>{score}</Score>" if scores and score is not None else ""
                parts.append(f"        <Link>\n\t\t\t\t<Id>{pmid}</Id>{shown}\n\t\t\t</Link>\n")
            parts.append("      \n    </LinkSetDb>\n")
        parts.append("    \n  </LinkSet>\n")
    parts.append("</eLinkResult>\n")
    return "".join(parts)


def _elink_json(link_sets, scores: bool) -> dict:
    out = []
    for group, by_name in link_sets:
        link_set: dict = {"dbfrom": "pubmed", "ids": list(group)}
        if by_name:
            link_set["linksetdbs"] = [
                {"dbto": "pubmed", "linkname": linkname,
                 "links": [{"id": str(pmid), "score": score} if scores and score is not None else str(pmid)
                           for pmid, score in links]}
                for linkname, links in by_name
            ]
        out.append(link_set)
    return {"header": ELINK_JSON_HEADER, "linksets": out}
