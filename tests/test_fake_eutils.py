"""The fake E-utilities server behaves like PubMed where the tracker's tests rely on it."""

from __future__ import annotations

import socket
import threading
import time
from datetime import date, timedelta

import httpx
import pytest
from lxml import etree

from tests.fake_eutils import FakeEutils, FakeRecord, RequestLog

ETIQUETTE = {"tool": "tracker-tests", "email": "dev@example.org", "api_key": "k3y"}
DAY = date(2026, 11, 20)


def article(pmid: int) -> str:
    return f'<PubmedArticle><MedlineCitation><PMID Version="1">{pmid}</PMID></MedlineCitation></PubmedArticle>'


def rec(pmid: int, created: date = DAY, **kw) -> FakeRecord:
    return FakeRecord(pmid=pmid, xml=article(pmid), created=created, **kw)


def clause(query: str, lo: date, hi: date, field: str = "crdt") -> str:
    return f'({query}) AND ("{lo:%Y/%m/%d}"[{field}] : "{hi:%Y/%m/%d}"[{field}])'


def parse(response: httpx.Response) -> etree._Element:
    return etree.fromstring(response.content)


def ids(response: httpx.Response) -> list[int]:
    return [int(x) for x in parse(response).xpath("/eSearchResult/IdList/Id/text()")]


def fetched(response: httpx.Response) -> list[int]:
    return [int(x) for x in parse(response).xpath("//MedlineCitation/PMID/text()")]


def connect(url: str, **kw) -> httpx.Client:
    # Plain HTTP on loopback: skipping the certificate bundle saves ~0.1 s per client.
    return httpx.Client(base_url=url, verify=False, **kw)


@pytest.fixture
def fake():
    server = FakeEutils().start()
    yield server
    server.stop()
    assert server.errors == []


@pytest.fixture
def client(fake):
    with connect(fake.url, timeout=5.0) as c:
        yield c


def esearch(client: httpx.Client, term: str, **params) -> httpx.Response:
    return client.get("esearch.fcgi", params={"db": "pubmed", "term": term, **ETIQUETTE, **params})


def efetch(client: httpx.Client, **params) -> httpx.Response:
    return client.post("efetch.fcgi", data={"db": "pubmed", "retmode": "xml", **ETIQUETTE, **params})


# esearch


def test_url_has_the_eutils_prefix(fake):
    assert fake.url.startswith("http://127.0.0.1:")
    assert fake.url.endswith("/entrez/eutils/")


def test_esearch_without_date_clause_matches_query_and_sorts_newest_first(fake, client):
    fake.add(rec(5, queries={"cancer"}), rec(9, queries={"cancer", "flu"}), rec(7, queries={"flu"}), rec(3))
    r = esearch(client, "cancer")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/xml")
    assert r.text.startswith('<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSearchResult PUBLIC')
    root = parse(r)
    assert root.findtext("Count") == "3"
    assert root.findtext("RetMax") == "3"
    assert root.findtext("RetStart") == "0"
    assert root.findtext("QueryTranslation") == "cancer"
    assert root.find("TranslationSet") is not None
    assert root.find("WebEnv") is None
    assert ids(r) == [9, 5, 3]


def test_esearch_default_retmax_is_20_and_pages_with_retstart(fake, client):
    fake.add(*(rec(p) for p in range(1, 31)))
    first = esearch(client, "q")
    assert parse(first).findtext("Count") == "30"
    assert ids(first) == list(range(30, 10, -1))
    second = esearch(client, "q", retstart=20, retmax=20)
    assert ids(second) == list(range(10, 0, -1))
    assert parse(second).findtext("RetMax") == "10"
    assert ids(esearch(client, "q", retstart=30)) == []


def test_esearch_crdt_clause_bounds_are_inclusive(fake, client):
    for offset in range(-2, 10):
        fake.add(rec(100 + offset, DAY + timedelta(days=offset), queries={"topic"}))
    term = clause("topic", DAY, DAY + timedelta(days=7))
    r = esearch(client, term, retmax=100)
    assert ids(r) == list(range(107, 99, -1))
    assert parse(r).findtext("QueryTranslation") == term
    assert ids(esearch(client, clause("other", DAY, DAY + timedelta(days=7)))) == []


def test_esearch_edat_and_mdat_use_their_own_dates(fake, client):
    fake.add(
        rec(1, DAY, entrez=DAY - timedelta(days=30)),  # back-dated entrez date
        rec(2, DAY - timedelta(days=30), modified=DAY),
        rec(3, DAY),
    )
    week = (DAY - timedelta(days=3), DAY + timedelta(days=3))
    assert ids(esearch(client, clause("q", *week, field="crdt"))) == [3, 1]
    assert ids(esearch(client, clause("q", *week, field="edat"))) == [3]
    assert ids(esearch(client, clause("q", *week, field="mdat"))) == [3, 2, 1]


def test_query_with_parentheses_and_tags_is_matched_verbatim(fake, client):
    query = '("asthma"[MeSH Terms] OR (wheeze AND child*)) AND english[la]'
    fake.add(rec(1, queries={query}), rec(2, queries={"asthma"}))
    assert ids(esearch(client, clause(query, DAY, DAY))) == [1]
    assert ids(esearch(client, query)) == [1]


def test_usehistory_returns_a_webenv(fake, client):
    fake.add(rec(1), rec(2))
    root = parse(esearch(client, "q", usehistory="y"))
    assert root.findtext("QueryKey") == "1"
    assert root.findtext("WebEnv").startswith("MCID_")
    assert [child.tag for child in root][:6] == ["Count", "RetMax", "RetStart", "QueryKey", "WebEnv", "IdList"]


def test_phrase_not_found(client):
    root = parse(esearch(client, clause("nosuchterm", DAY, DAY)))
    assert root.findtext("Count") == "0"
    assert root.findtext("ErrorList/PhraseNotFound") == "nosuchterm"
    assert root.findtext("WarningList/OutputMessage") == "No items found."


def test_configurable_phrase_not_found():
    with FakeEutils(phrase_not_found={"zzz"}) as fake, connect(fake.url) as client:
        fake.add(rec(1))
        assert parse(esearch(client, "zzz")).findtext("ErrorList/PhraseNotFound") == "zzz"
        assert ids(esearch(client, "nosuchterm")) == [1]


def test_count_is_true_total_but_ids_stop_at_max_ids():
    with FakeEutils(max_ids=50) as fake, connect(fake.url) as client:
        fake.add(*(rec(p) for p in range(1, 121)))
        r = esearch(client, "q", retstart=40, retmax=20)
        assert parse(r).findtext("Count") == "120"
        assert ids(r) == list(range(80, 70, -1))  # the page stops at the 50th id
        assert len(ids(esearch(client, "q", retmax=9999))) == 50
        err = esearch(client, "q", retstart=50, retmax=20)
        assert err.status_code == 200
        root = parse(err)
        assert root.tag == "eSearchResult" and root.find("Count") is None
        assert "'retstart' cannot be larger than 49" in root.findtext("ERROR")


def test_retstart_error_text_matches_pubmed(client):
    r = esearch(client, "q", retstart=9999)
    assert r.status_code == 200
    assert parse(r).findtext("ERROR") == (
        "Search Backend failed: Exception:\n'retstart' cannot be larger than 9998. "
        "For PubMed, ESearch can only retrieve the first 9,999 records matching the query."
    )


def test_retmax_is_capped_at_10000():
    with FakeEutils(max_ids=20000) as fake, connect(fake.url) as client:
        fake.add(*(rec(p) for p in range(1, 10006)))
        r = esearch(client, "q", retmax=20000)
        assert parse(r).findtext("Count") == "10005"
        assert len(ids(r)) == 10000


def test_post_form_esearch(fake, client):
    fake.add(rec(4))
    r = client.post("esearch.fcgi", data={"db": "pubmed", "term": "q", **ETIQUETTE})
    assert ids(r) == [4]
    assert fake.requests[-1].method == "POST"
    assert fake.requests[-1].params["term"] == "q"


# efetch


def test_efetch_posted_ids_keep_order_and_skip_unknown(fake, client):
    fake.add(rec(10), rec(20), rec(30))
    r = efetch(client, id="30,999,10,20")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/xml")
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.text.startswith('<?xml version="1.0" ?>\n'
                             '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN"')
    assert parse(r).tag == "PubmedArticleSet"
    assert fetched(r) == [30, 10, 20]


def test_efetch_get_with_ids_in_query_string(fake, client):
    fake.add(rec(1), rec(2))
    r = client.get("efetch.fcgi", params={"db": "pubmed", "id": "2,1", "retmode": "xml"})
    assert fetched(r) == [2, 1]


def test_efetch_serves_record_xml_verbatim(fake, client):
    book = '<PubmedBookArticle><BookDocument><PMID Version="1">77</PMID></BookDocument></PubmedBookArticle>'
    fake.add(FakeRecord(77, book, DAY))
    assert book in efetch(client, id="77").text


def test_efetch_without_ids_is_an_in_band_error(client):
    r = efetch(client)
    assert r.status_code == 200 and parse(r).tag == "eFetchResult"


def test_webenv_slices(fake, client):
    fake.add(*(rec(p) for p in range(1, 26)))
    webenv = parse(esearch(client, "q", usehistory="y")).findtext("WebEnv")
    page = efetch(client, WebEnv=webenv, query_key="1", retstart=5, retmax=10)
    assert fetched(page) == list(range(20, 10, -1))
    assert fetched(efetch(client, WebEnv=webenv, query_key="1", retstart=20, retmax=10)) == [5, 4, 3, 2, 1]


def test_unknown_or_expired_webenv(fake, client):
    fake.add(rec(1))
    expected = '<?xml version="1.0" ?><eFetchResult><ERROR>Unable to obtain query #1</ERROR></eFetchResult>'
    unknown = efetch(client, WebEnv="MCID_nope", query_key="1", retmax=10)
    assert unknown.status_code == 200 and unknown.text == expected
    webenv = parse(esearch(client, "q", usehistory="y")).findtext("WebEnv")
    assert fetched(efetch(client, WebEnv=webenv, query_key="1", retmax=10)) == [1]
    assert "Unable to obtain query #2" in efetch(client, WebEnv=webenv, query_key="2").text
    fake.expire_webenvs()
    assert efetch(client, WebEnv=webenv, query_key="1", retmax=10).text == expected


def test_large_efetch_streams_the_whole_body(fake, client):
    fake.add(*(rec(p) for p in range(1, 5001)))
    wanted = list(range(5000, 0, -1))
    r = efetch(client, id=",".join(map(str, wanted)))
    assert int(r.headers["content-length"]) == len(r.content)
    assert fetched(r) == wanted


def test_unknown_paths_are_404(fake, client):
    assert client.get("einfo.fcgi").status_code == 404
    assert httpx.get(fake.url.replace("/entrez/eutils/", "/esearch.fcgi"), verify=False).status_code == 404


def test_records_can_be_replaced_and_removed(fake, client):
    fake.add(rec(1, queries={"a"}), rec(2, queries={"a"}), rec(3, DAY - timedelta(days=9), queries={"a"}))
    assert ids(esearch(client, "a")) == [3, 2, 1]
    fake.add(rec(1, DAY - timedelta(days=9), queries={"b"}))  # replaced after the index exists
    assert ids(esearch(client, "a")) == [3, 2]
    assert ids(esearch(client, clause("b", DAY - timedelta(days=9), DAY - timedelta(days=9)))) == [1]
    fake.remove(2)
    fake.remove(12345)
    assert ids(esearch(client, clause("a", DAY - timedelta(days=30), DAY))) == [3]
    assert fetched(efetch(client, id="1,2,3")) == [1, 3]


# request log and rate limit


def test_every_request_is_logged_with_params(fake, client):
    esearch(client, "q")
    efetch(client, id="1")
    log = fake.requests
    assert [(r.endpoint, r.method, r.status) for r in log] == [("esearch", "GET", 200), ("efetch", "POST", 200)]
    assert all(r.params[k] == v for r in log for k, v in ETIQUETTE.items())
    assert log[0].time <= log[1].time
    assert fake.count() == 2 and fake.count("esearch") == 1 and fake.count("efetch") == 1
    fake.reset_log()
    assert fake.requests == [] and fake.count() == 0


def test_rate_limit_answers_429_like_ncbi():
    with FakeEutils(rate_limit=3) as fake, connect(fake.url) as client:
        statuses = [client.get("esearch.fcgi", params={"term": "q"}).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        r = client.get("esearch.fcgi", params={"term": "q"})
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"error": "API rate limit exceeded", "api-key": "127.0.0.1", "count": "6", "limit": "3"}
        assert fake.max_requests_per_second() == 6
        assert [x.fault for x in fake.requests].count("rate-limit") == 3
        time.sleep(1.05)
        assert client.get("esearch.fcgi", params={"term": "q"}).status_code == 200


def test_paced_client_is_never_limited():
    with FakeEutils(rate_limit=4) as fake, connect(fake.url) as client:
        for _ in range(5):
            assert client.get("esearch.fcgi", params={"term": "q"}).status_code == 200
            time.sleep(0.26)
        assert 3 <= fake.max_requests_per_second() <= 4


def test_max_requests_per_second_uses_a_sliding_window(fake):
    # Calendar seconds would split these into [0.0, 0.6] and [1.2, 1.5]; a sliding window sees 3.
    fake._log.extend(RequestLog("esearch", "GET", {}, t, 200) for t in (10.0, 10.6, 11.2, 11.5))
    assert fake.max_requests_per_second() == 3
    fake.reset_log()
    fake._log.extend(RequestLog("esearch", "GET", {}, t, 200) for t in (10.0, 11.0, 12.0))
    assert fake.max_requests_per_second() == 1


# faults


@pytest.mark.parametrize(
    ("kind", "status", "ctype"),
    [("429", 429, "application/json"), ("500", 500, "text/html"), ("502", 502, "text/html"),
     ("400-api-key", 400, "application/json")],
)
def test_http_error_faults(fake, client, kind, status, ctype):
    fake.inject(kind)
    r = esearch(client, "q")
    assert r.status_code == status
    assert r.headers["content-type"].startswith(ctype)
    assert esearch(client, "q").status_code == 200
    assert [x.status for x in fake.requests] == [status, 200]
    assert fake.requests[0].fault == kind


def test_fault_bodies(fake, client):
    fake.inject("429")
    fake.inject("400-api-key")
    fake.inject("502")
    limited = esearch(client, "q")
    assert limited.json()["error"] == "API rate limit exceeded" and limited.headers["retry-after"] == "1"
    assert esearch(client, "q").json() == {"error": "API key invalid", "api-key": "k3y", "type": "api-key", "status": "unknown"}
    assert "Bad Gateway" in esearch(client, "q").text


def test_reset_fault_is_a_transport_error(fake, client):
    fake.inject("reset", endpoint="efetch")
    fake.add(rec(1))
    with pytest.raises(httpx.TransportError):
        efetch(client, id="1")
    assert fetched(efetch(client, id="1")) == [1]
    assert [x.status for x in fake.requests] == [None, 200]
    assert fake.requests[0].fault == "reset"


def test_timeout_fault_stalls_past_the_client_timeout(fake, client):
    fake.inject("timeout", seconds=1.0)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get("esearch.fcgi", params={"term": "q"}, timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert esearch(client, "q").status_code == 200


def test_truncated_fault_sends_half_the_announced_body(fake):
    fake.add(*(rec(p) for p in range(1, 201)))
    fake.inject("truncated", endpoint="efetch")
    with connect(fake.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            efetch(client, id=",".join(map(str, range(1, 201))))
    # The raw bytes show the announced length and the short body.
    host, port = fake.url.split("//")[1].split("/")[0].split(":")
    fake.inject("truncated", endpoint="efetch")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET /entrez/eutils/efetch.fcgi?id=1,2,3 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    announced = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    assert 0 < len(body) < announced
    assert len(body) == announced // 2


def test_empty_blocked_and_backend_error_faults(fake, client):
    fake.inject("empty")
    fake.inject("blocked")
    fake.inject("backend-error", endpoint="esearch")
    fake.inject("backend-error", endpoint="efetch")
    empty = esearch(client, "q")
    assert empty.status_code == 200 and empty.content == b""
    blocked = esearch(client, "q")
    assert blocked.status_code == 200 and blocked.headers["content-type"].startswith("text/html")
    assert "<title>Blocked Diagnostic</title>" in blocked.text and "<h1>Access Blocked</h1>" in blocked.text
    search_err = parse(esearch(client, "q"))
    assert search_err.tag == "eSearchResult"
    assert search_err.findtext("ERROR") == "Search Backend failed: Unable to open connection to #PMQuerySrv?dbaf=pubmed"
    fetch_err = parse(efetch(client, id="1"))
    assert fetch_err.tag == "eFetchResult" and fetch_err.findtext("ERROR").startswith("Search Backend failed")
    assert fake.pending_faults == 0


def test_expired_webenv_fault_only_hits_history_fetches(fake, client):
    fake.add(rec(1))
    fake.inject("expired-webenv")
    webenv = parse(esearch(client, "q", usehistory="y")).findtext("WebEnv")
    assert fetched(efetch(client, id="1")) == [1]
    assert "Unable to obtain query #1" in efetch(client, WebEnv=webenv, query_key="1", retmax=5).text
    assert fetched(efetch(client, WebEnv=webenv, query_key="1", retmax=5)) == [1]


def test_fault_at_nth_request_of_an_endpoint(fake, client):
    fake.inject("500", endpoint="efetch", at=2, times=2)
    statuses = []
    for _ in range(4):
        statuses.append(esearch(client, "q").status_code)
        statuses.append(efetch(client, id="1").status_code)
    assert statuses == [200, 200, 200, 500, 200, 500, 200, 200]
    assert fake.pending_faults == 0


def test_at_counts_from_the_last_reset(fake, client):
    esearch(client, "q")
    fake.reset_log()
    fake.inject("502", at=2)
    assert [esearch(client, "q").status_code for _ in range(3)] == [200, 502, 200]


def test_queued_faults_fire_in_order_and_times(fake, client):
    fake.inject("500", times=2)
    fake.inject("429")
    assert [esearch(client, "q").status_code for _ in range(4)] == [500, 500, 429, 200]


def test_inject_rejects_unknown_names(fake):
    with pytest.raises(ValueError):
        fake.inject("teapot")
    with pytest.raises(ValueError):
        fake.inject("500", endpoint="einfo")


def test_faults_are_thread_safe(fake):
    fake.inject("500", times=20)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker():
        with connect(fake.url) as client:
            for _ in range(10):
                code = client.get("esearch.fcgi", params={"term": "q"}).status_code
                with lock:
                    statuses.append(code)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(500) == 20 and statuses.count(200) == 60
    assert fake.count() == 80


# concurrency and lifecycle


def test_concurrent_adds_while_serving(fake):
    total = 3000
    done = threading.Event()
    problems: list[str] = []

    def writer():
        for start in range(1, total + 1, 100):
            fake.add(*(rec(p, DAY + timedelta(days=p % 7)) for p in range(start, start + 100)))
        done.set()

    def reader():
        with connect(fake.url) as client:
            while not done.is_set():
                r = esearch(client, clause("q", DAY, DAY + timedelta(days=6)), retmax=10000)
                found = ids(r)
                if int(parse(r).findtext("Count")) != len(found) or found != sorted(found, reverse=True):
                    problems.append(r.text[:200])
                efetch(client, id=",".join(map(str, found[:50])))

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert problems == []
    with connect(fake.url) as client:
        assert len(ids(esearch(client, "q", retmax=10000))) == total


def test_stop_closes_idle_keepalive_connections_and_the_port():
    fake = FakeEutils().start()
    url = fake.url
    client = connect(url, timeout=2.0)
    assert esearch(client, "q").status_code == 200
    fake.stop()
    with pytest.raises(httpx.TransportError):
        esearch(client, "q")
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "esearch.fcgi", verify=False, timeout=2.0)
    client.close()
    fake.stop()  # idempotent


def test_stop_does_not_wait_for_a_stalled_response():
    fake = FakeEutils().start()
    fake.inject("timeout", seconds=30)
    errors: list[Exception] = []

    def call():
        try:
            httpx.get(fake.url + "esearch.fcgi", params={"term": "q"}, verify=False, timeout=0.2)
        except httpx.TransportError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    caller.join()
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    assert len(errors) == 1


def test_delay_slows_every_answer():
    with FakeEutils(delay=0.2) as fake, connect(fake.url) as client:
        started = time.monotonic()
        esearch(client, "q")
        assert time.monotonic() - started >= 0.2


def test_search_scales_to_benchmark_sizes(fake, client):
    xml = article(0)  # content is irrelevant here; building 50,000 distinct strings only slows the test
    fake.add(*(FakeRecord(p, xml, DAY + timedelta(days=p % 365), queries={"a"} if p % 2 else None) for p in range(1, 50001)))
    started = time.monotonic()
    assert parse(esearch(client, "a", retmax=0)).findtext("Count") == "50000"
    for week in range(20):
        lo = DAY + timedelta(days=week * 7)
        fake.add(FakeRecord(60000 + week, xml, lo))  # a timeline step: new records, then a sync
        r = esearch(client, clause("a", lo, lo + timedelta(days=6)), retmax=9999)
        found = ids(r)
        assert int(parse(r).findtext("Count")) == len(found) > 0 and found[0] == 60000 + week
    assert time.monotonic() - started < 3
