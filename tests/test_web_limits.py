"""The web app's bounds under real use, on both back ends: search text capped, every statement of a page under a
time limit and stopped when its client goes away, a pool that keeps answering while slow requests run, a write
that finds the database locked answered with a page that keeps the form's input, and every failure a page with a
message, a request id that the log also has, and the security headers.

Slow statements are made, not hoped for: the search's ranking function is replaced by a statement that never
ends on its own (a recursive query without a limit on SQLite, pg_sleep on PostgreSQL), so the only way a page
comes back is the time limit or the client's going away."""

from __future__ import annotations

import html
import logging
import re
import socket
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import started, write_topic
from tests.test_web import BASE, csrf_of, papers, personal, said
from tests.test_web_browser import served
from tracker.settings import Settings
from tracker.store import open_store
from tracker.store.decisions import decision_history
from tracker.store.papers import save_papers
from tracker.web.reliability import REQUEST_ID_HEADER
from tracker.web.security import CONTENT_SECURITY_POLICY, SECURITY_HEADERS, SESSION_COOKIE

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ENDLESS = {"sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c",
           "postgresql": "SELECT pg_sleep(3600)"}


@pytest.fixture
def endless_search(monkeypatch):
    """Every search ranks with a statement that never ends on its own; `running` is set while one runs."""
    import tracker.store.search as search

    running = threading.Event()

    def rank(store, query, topic, limit):
        running.set()
        with store.engine.connect() as connection:
            connection.execute(text(ENDLESS[store.dialect])).all()
        raise AssertionError("an endless statement ended")

    monkeypatch.setattr(search, "_rank_fts", rank)
    monkeypatch.setattr(search, "_rank_postgres", rank)
    return running


@pytest.fixture
def library(tmp_path, db_url):
    """tests/test_web.py's topic 'dosing' with its seven papers."""
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana", "TRACKER_DB_URL": db_url})
    store = open_store(db_url)
    save_papers(store, papers(), topic="dosing")
    yield settings, store
    store.close()


def limited(settings, seconds: float):
    return replace(settings, web_time_limit=seconds)


# -- search text ---------------------------------------------------------------------------------

CAPPED = {
    "a* " * 100: "The prefix term 'a*' is too short: write at least 3 letters before the *, such as vaso*.",
    "nor* " * 300: "The search is 1,499 characters long and at most 500 are searched: keep the words that matter.",
    "nor* vas* phe* epi* dop* ang*": "The search has 6 prefix* terms and at most 5 are searched together (each one "
                                     "reads every stored word it starts): write more of the words out.",
    " ".join(["bolus"] * 41): "The search has 41 words and at most 40 are searched together: leave some out.",
}


@pytest.mark.parametrize("query", list(CAPPED), ids=["a* x100", "nor* x300", "6 prefixes", "41 words"])
def test_search_text_past_the_caps_is_refused_in_words_and_kept_in_the_box(library, query):
    settings, store = library
    client = personal(settings, store)
    page = client.get("/search", params={"q": query})
    assert page.status_code == 400
    assert html.unescape(said(page.text, "error")) == CAPPED[query]
    assert f'value="{html.escape(" ".join(query.split()))}"' in page.text
    within = client.get("/topics/dosing", params={"q": query, "state": "unscreened", "from": "2019"})
    assert within.status_code == 400 and html.unescape(said(within.text, "error")) == CAPPED[query]
    assert f'value="{html.escape(" ".join(query.split()))}"' in within.text
    assert 'value="2019"' in within.text and '<option value="unscreened" selected>' in within.text
    assert client.get("/search", params={"q": "nor* vas* phe* epi* dop*"}).status_code == 200


# -- time limits ---------------------------------------------------------------------------------

def test_a_search_that_runs_past_the_time_limit_is_stopped_and_the_page_says_so(library, endless_search):
    settings, store = library
    client = personal(limited(settings, 0.5), store)
    page = client.get("/search", params={"q": "norepinephrine bolus"})
    assert page.status_code == 503
    assert html.unescape(said(page.text, "error")) == (
        "This search took longer than 0.5 seconds and was stopped: use more specific words, fewer prefix* terms, or "
        "search within one topic.")
    assert 'value="norepinephrine bolus"' in page.text
    within = client.get("/topics/dosing", params={"q": "bolus", "tier": "rct"})
    assert within.status_code == 503 and "This search took longer than 0.5 seconds" in html.unescape(within.text)
    assert 'value="bolus"' in within.text
    assert client.get("/topics/dosing").status_code == 200  # the next page gets a connection that works


def test_45_slow_searches_at_once_leave_the_other_pages_answering(library, endless_search):
    settings, store = library
    with served(limited(settings, 1.0), store) as (url, access):
        cookies = httpx.get(f"{url}/?token={access.token}", follow_redirects=False).cookies
        with httpx.Client(base_url=url, cookies=cookies, timeout=120) as client, ThreadPoolExecutor(45) as pool:
            searches = [pool.submit(client.get, "/search", params={"q": f"bolus {index}"}) for index in range(45)]
            endless_search.wait(10)
            others = [client.get(path) for path in ("/", "/topics/dosing", "/papers/1", "/runs")]
            answers = [future.result() for future in searches]
    assert [response.status_code for response in others] == [200, 200, 200, 200]
    assert {response.status_code for response in answers} == {503}
    assert all("This search took longer than 1 seconds and was stopped" in html.unescape(response.text)
               for response in answers)


def test_a_client_that_goes_away_stops_its_statement(library, endless_search, caplog):
    settings, store = library
    with caplog.at_level(logging.INFO, logger="tracker.web.reliability"), \
            served(limited(settings, 3600), store) as (url, access):
        cookie = httpx.get(f"{url}/?token={access.token}", follow_redirects=False).cookies[SESSION_COOKIE]
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as connection:
            connection.sendall(f"GET /search?q=bolus HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {SESSION_COOKIE}="
                               f"{cookie}\r\n\r\n".encode())
            assert endless_search.wait(10)
        deadline = time.monotonic() + 30
        while not [r for r in caplog.records if "the client went away" in r.getMessage()] and time.monotonic() < deadline:
            time.sleep(0.05)
        [record] = [r for r in caplog.records if "the client went away" in r.getMessage()]
        assert re.fullmatch(r"request [0-9a-f]{16} \(GET /search\): the client went away; its database work was "
                            r"stopped", record.getMessage())
        assert httpx.get(f"{url}/topics/dosing", cookies={SESSION_COOKIE: cookie}).status_code == 200


# -- failures ------------------------------------------------------------------------------------

def test_a_failure_is_a_page_with_its_request_id_that_the_log_has_and_the_security_headers(library, monkeypatch,
                                                                                           caplog):
    import tracker.web.pages as pages

    def broken(*args, **kwargs):
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr(pages, "status_view", broken)
    settings, store = library
    client = personal(settings, store)
    with caplog.at_level(logging.ERROR, logger="tracker.web.reliability"):
        page = client.get("/runs")
    assert page.status_code == 500
    request_id = page.headers[REQUEST_ID_HEADER]
    assert re.fullmatch(r"[0-9a-f]{16}", request_id)
    assert html.unescape(said(page.text, "error")) == (
        f"Something went wrong on the server and this page could not be made (request {request_id}). Nothing past the "
        "last saved step was changed: try again, and if it happens again, tell whoever runs tracker the request id "
        f"{request_id}; their log (db/tracker.log) has the details.")
    assert {name: page.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    [record] = caplog.records
    assert record.getMessage() == f"request {request_id} (GET /runs) failed"
    assert record.exc_info[1].args == ("something nobody foresaw",)
    assert client.get("/").headers[REQUEST_ID_HEADER] != request_id  # each request its own


# -- a writer holding the lock -------------------------------------------------------------------

class HeldLock:
    """Another program's write transaction on the database, from `take` until `release`."""

    def __init__(self, store, table: str):
        self.store, self.table = store, table
        self.connection = None

    def take(self) -> None:
        self.connection = self.store.engine.connect()
        if self.store.dialect == "sqlite":
            self.connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            self.connection.exec_driver_sql(f"LOCK TABLE {self.table} IN EXCLUSIVE MODE")  # writes wait, reads do not

    def release(self) -> None:
        if self.connection is not None:
            self.connection.rollback()
            self.connection.close()
            self.connection = None


@pytest.fixture
def other_program(library):
    """A second store on the same database, as another process would open it."""
    settings, _ = library
    other = open_store(settings.database_url)
    locks: list[HeldLock] = []

    def lock(table: str) -> HeldLock:
        locks.append(HeldLock(other, table))
        return locks[-1]

    yield lock
    for held in locks:
        held.release()
    other.close()


def test_a_decision_that_cannot_get_the_lock_is_a_page_that_says_so_and_keeps_the_form(library, other_program):
    settings, store = library
    client = personal(limited(settings, 0.3), store)
    csrf = csrf_of(client.get("/topics/dosing/screen?pmid=2").text)
    held = other_program("decision")
    held.take()
    form = {"csrf": csrf, "pmid": "2", "decision": "exclude", "reason": ["wrong population", "other"],
            "note": "adults only; <b>not</b> children", "next": "1"}
    page = client.post("/topics/dosing/screen", data=form)
    assert page.status_code == 503
    assert html.unescape(said(page.text, "error")) == (
        "The database is busy: another program (an import, a run or a migration) kept it locked for 0.3 seconds. "
        "Nothing was changed: try again in a moment.")
    assert '<textarea id="kept-note" name="note" rows="3">adults only; &lt;b&gt;not&lt;/b&gt; children</textarea>' \
        in page.text
    kept = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    assert kept == {"csrf": csrf, "pmid": "2", "decision": "exclude", "reason": "other", "next": "1"}
    assert re.findall(r'name="reason" value="([^"]*)"', page.text) == ["wrong population", "other"]
    assert decision_history(store, 2) == []
    held.release()
    again = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
    resent = client.post("/topics/dosing/screen", content=urlencode([*again, ("note", html.unescape(re.search(
        r'name="note" rows="3">([^<]*)<', page.text).group(1)))]), follow_redirects=False,
        headers={"content-type": "application/x-www-form-urlencoded"})
    assert resent.status_code == 303
    [saved] = decision_history(store, 2)
    assert (saved.decision, saved.reasons, saved.note) == ("exclude", ("wrong population", "other"),
                                                           "adults only; <b>not</b> children")


def test_a_login_that_cannot_be_counted_says_so_and_keeps_the_name(library, other_program):
    from tests.test_web import team_app

    settings, store = library
    app = team_app(limited(settings, 0.3), store)
    client = started(TestClient(app, base_url=BASE))
    form = client.get("/login").text
    held = other_program("login_failure")
    held.take()
    page = client.post("/login", data={"csrf": csrf_of(form), "user": "ana", "password": "ana-password-1"})
    held.release()
    assert page.status_code == 503
    assert "The database is busy" in html.unescape(said(page.text, "error"))
    assert 'value="ana"' in page.text and "ana-password-1" not in page.text


# -- logins ----------------------------------------------------------------------------------------

def test_logins_at_once_are_counted_before_any_password_is_checked(library):
    from tracker.web import accounts

    settings, store = library
    accounts.add_user(store, "ana", "ana-password-1")
    checking, finish = threading.Semaphore(0), threading.Event()
    real = accounts.password_matches

    def held(attempt, password):  # the checks wait until the right password has been tried during the burst
        checking.release()
        finish.wait(30)
        return real(attempt, password)

    barrier = threading.Barrier(40)

    def attempt(index: int):
        barrier.wait()
        return accounts.authenticate(store, "ana", f"guess-{index:02d}-wrong", address="192.0.2.7")

    with pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(40) as pool:
        patch.setattr(accounts, "password_matches", held)
        outcomes = [pool.submit(attempt, index) for index in range(40)]
        for _ in range(5):
            assert checking.acquire(timeout=30)  # five checks under way ...
        right = accounts.authenticate(store, "ana", "ana-password-1", address="192.0.2.7")
        finish.set()
        answered = [future.result() for future in outcomes]
    assert right.account is None and right.wait > 0  # ... and the right password, sent inside the burst, waits
    assert not checking.acquire(timeout=0)  # no sixth check was ever started
    assert sorted(outcome.wait > 0 for outcome in answered) == [False] * 5 + [True] * 35
    assert all(outcome.account is None for outcome in answered)


def test_a_right_password_takes_back_the_failure_it_was_counted_as(library):
    from tracker.web import accounts

    settings, store = library
    accounts.add_user(store, "ana", "ana-password-1")
    for _ in range(3):
        assert accounts.authenticate(store, "ana", "wrong-password", address="192.0.2.7").account is None
    assert accounts.authenticate(store, "ana", "ana-password-1", address="192.0.2.7").account.name == "ana"
    from tracker.store.accounts import failures_of

    assert {key: count for key, (count, _) in failures_of(store, ["user:ana", "address:192.0.2.7"]).items()} == {
        "address:192.0.2.7": 3}


def rss_peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


@pytest.fixture
def team_server(tmp_path):
    """`tracker serve` in its own process (team mode: one account, ana), on a free loopback port."""
    from tests.conftest import cli_env, run_tracker
    from tests.test_web_browser import free_port

    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    env = cli_env(home, None)
    done = subprocess.run([sys.executable, "-m", "tracker", "users", "add", "ana"], input="ana-password-1\n", env=env,
                          capture_output=True, text=True, timeout=60, cwd=home)
    assert done.returncode == 0, done.stderr
    assert run_tracker("users", "list", env=env).code == 0
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tracker", "serve", "--port", str(port)], env=env, cwd=home,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith(f"http://127.0.0.1:{port}/ (team mode"), line + server.stderr.read()
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        server.terminate()
        server.wait(30)


def login_forms(url: str, count: int) -> list[httpx.Client]:
    """`count` browsers, each with the login form's cookie and token in hand."""
    clients = []
    for _ in range(count):
        client = httpx.Client(base_url=url, timeout=120)
        client.csrf = csrf_of(client.get("/login").text)
        clients.append(client)
    return clients


def burst(clients: list[httpx.Client], names: list[str], password: str) -> list[int]:
    barrier = threading.Barrier(len(clients))

    def post(index: int) -> int:
        barrier.wait()
        return clients[index].post("/login", data={"csrf": clients[index].csrf, "user": names[index],
                                                   "password": password}).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        return list(pool.map(post, range(len(clients))))


def test_40_logins_at_once_against_the_server_check_at_most_5_passwords_in_bounded_memory(team_server):
    url, pid = team_server
    clients = login_forms(url, 40)
    try:
        answers = burst(clients[:40], ["ana"] * 40, "not-her-password")
        assert set(answers) <= {401, 429, 503}, answers
        assert answers.count(401) <= 5  # 401: checked and wrong; 429: refused with the wait; 503: try again
        anonymous = burst(clients[:40], [f"nobody-{index}" for index in range(40)], "whatever-password")
        assert set(anonymous) <= {401, 429, 503}, anonymous
        assert answers.count(401) + anonymous.count(401) <= 20  # one address: 20 checks, whatever the names
        assert rss_peak_mb(pid) < 600
    finally:
        for client in clients:
            client.close()


def test_a_decision_made_while_the_relevance_scores_are_written_gets_the_lock_between_batches(library, monkeypatch):
    import tracker.store.relevance as relevance
    from tracker.store.models import RankingState
    from tracker.text import utcnow

    settings, store = library
    monkeypatch.setattr(relevance, "WRITE_BATCH", 3)  # the seven papers' scores in three transactions
    client = personal(limited(settings, 0.3), store)
    csrf = csrf_of(client.get("/topics/dosing/screen?pmid=2").text)
    answers = []

    def between_batches(seconds):  # a reviewer decides while the refresh is between two of its batches
        if not answers:
            answers.append(client.post("/topics/dosing/screen", data={"csrf": csrf, "pmid": "2", "decision": "include"},
                                       follow_redirects=False).status_code)

    monkeypatch.setattr(relevance.time, "sleep", between_batches)
    state = RankingState(topic="dosing", included=1, excluded=1, decision_mark=0, papers=7, likely_from=0.5,
                         trained_at=utcnow(), seconds=0.1)
    relevance.save_scores(store, state, {pmid: pmid / 10 for pmid in range(1, 8)})
    assert answers == [303]
    assert [saved.decision for saved in decision_history(store, 2)] == ["include"]
    assert relevance.scores_of(store, ["dosing"], list(range(1, 8))) == {pmid: pmid / 10 for pmid in range(1, 8)}
    assert relevance.ranking_state(store, "dosing").papers == 7


def test_a_topic_file_nested_thousands_deep_is_its_line_and_every_other_page_answers(library):
    settings, store = library
    (settings.queries_dir / "deep.toml").write_text('title = "Deep"\nquery = "q"\nrecipients = ' + "[" * 5000
                                                    + "]" * 5000, encoding="utf-8")
    client = personal(settings, store)
    line = "deep.toml: not valid TOML (arrays or tables nested too deep to read); fix the file or move it out of queries/"
    for path in ("/", "/topics/dosing", "/topics/dosing/screen", "/search?q=bolus", "/runs", "/papers/1", "/query"):
        page = client.get(path)
        assert page.status_code == 200, path
    assert line in html.unescape(client.get("/").text)
    deep = client.get("/topics/deep")
    assert deep.status_code == 400 and html.unescape(said(deep.text, "error")) == line
