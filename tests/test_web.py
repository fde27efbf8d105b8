"""The web app's routes through Starlette's test client, on both back ends: every page and filter, pagination,
the exports, screening and undo, blind screening, the Query page against the fake E-utilities server, and the
access rules (personal token, team logins, sessions, failed-login delay, CSRF, Host, roles, escaping)."""

from __future__ import annotations

import html
import re
import urllib.parse
import warnings
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from tests.conftest import cli_env, run_tracker, started, write_topic
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml
from tests.test_store import make_paper
from tracker.ncbi.pubmed import AbstractSection, Author, MeshHeading
from tracker.review.screening import decide
from tracker.settings import Settings
from tracker.store import open_store
from tracker.store.decisions import decision_history
from tracker.store.papers import save_papers
from tracker.topics import load_topic
from tracker.web import build_app
from tracker.web.accounts import add_user
from tracker.web.security import CONTENT_SECURITY_POLICY, SESSION_COOKIE, new_session

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette suggests httpx2 for its test client; httpx is what is installed
    from starlette.testclient import TestClient

BASE = "http://127.0.0.1:8765"
HOSTILE = '<script>alert("x")</script>'
ON_TIME = (("pubmed", "2024-03-01T06:00"), ("entrez", "2024-03-01T06:00"))


def papers():
    """Seven papers of topic 'dosing' with one thing each to filter on."""
    return [
        make_paper(1, history=ON_TIME, pub_date=date(2019, 1, 1)),  # RCT (make_paper's types), 2019
        make_paper(2, history=ON_TIME, pub_date=date(2021, 5, 1), publication_types=("Meta-Analysis",)),
        make_paper(3, pub_date=date(2023, 2, 1), publication_types=("Case Reports",)),  # a late arrival
        make_paper(4, history=ON_TIME, pub_date=date(2022, 1, 1),
                   publication_types=("Retracted Publication", "Journal Article")),
        make_paper(5, history=ON_TIME, pub_date=date(2020, 1, 1), title=f"Hostile {HOSTILE} & <b>bold</b>",
                   journal="<svg onload=alert(1)>", publication_types=(HOSTILE,),
                   authors=(Author("<img src=x onerror=alert(1)>", "A", "A"),),
                   abstract_sections=(AbstractSection(HOSTILE, "METHODS", f"Text {HOSTILE}"),),
                   mesh_headings=(MeshHeading(HOSTILE, "D1", True, ()),), keywords=(HOSTILE,)),
        make_paper(6, history=ON_TIME, pub_date=date(2024, 1, 1), publication_types=("Review",)),
        make_paper(7, history=ON_TIME, pub_date=date(2024, 6, 1), publication_types=("Journal Article",)),
    ]


@pytest.fixture
def library(tmp_path, db_url):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    write_topic(home, "pair", "norepinephrine pair", screening="{ reviewers = 2, blind = true }")
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana", "TRACKER_DB_URL": db_url})
    store = open_store(db_url)
    save_papers(store, papers(), topic="dosing")
    save_papers(store, papers()[:3], topic="pair")
    yield settings, store
    store.close()


def personal(settings, store, base_url: str = BASE) -> TestClient:
    app, access = build_app(settings, store, host="127.0.0.1", port=8765)
    client = started(TestClient(app, base_url=base_url))
    assert client.get(f"/?token={access.token}", follow_redirects=False).status_code == 303
    return client


def team_app(settings, store):
    add_user(store, "ana", "ana-password-1")
    add_user(store, "bo", "bo-password-22")
    add_user(store, "chief", "chief-password-3", admin=True)
    app, _ = build_app(settings, store, host="127.0.0.1", port=8765)
    return app


def logged_in(app, name: str, password: str) -> TestClient:
    client = started(TestClient(app, base_url=BASE))
    form = client.get("/login")
    response = client.post("/login", data={"csrf": csrf_of(form.text), "user": name, "password": password,
                                           "next": "/"}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/")
    return client


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def listed(page: str) -> list[int]:
    """The PMIDs of a page's paper table, in order."""
    return [int(pmid) for pmid in re.findall(r'<td><a href="/papers/(\d+)">\d+</a></td>', page)]


def said(page: str, name: str) -> str:
    return re.search(rf'class="{name}"[^>]*>([^<]*)<', page).group(1)


# -- pages -----------------------------------------------------------------------------------

def test_every_page_answers_with_its_content(library):
    settings, store = library
    client = personal(settings, store)
    expected = {
        "/": ["Dosing topic", "Pair topic", "Papers per month"],
        "/topics/dosing": ["Dosing topic", ">Screen</a>", "export.csv", "export.ris", "export.xlsx"],
        "/papers/1": ["Norepinephrine trial 1", "BACKGROUND:", "Norepinephrine*", "https://doi.org/10.1000/1",
                      "PMC123", "Randomized Controlled Trial", "Dosing topic", "Pair topic"],
        "/search?q=norepinephrine": ["Norepinephrine trial 1", "best matches"],
        "/query": ["PubMed query", "Run query"],
        "/runs": ["No runs yet"],
        "/topics/dosing/prisma": ["Records screened (title and abstract)", "prisma.svg"],
        "/topics/dosing/screen": ["0 of 7 screened", ">Include</button>", ">Exclude</button>", ">Maybe</button>"],
    }
    for url, parts in expected.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert [part for part in parts if part not in response.text] == [], url
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "<script>" not in response.text and " style=" not in response.text, url
    svg = client.get("/topics/dosing/prisma.svg")
    assert (svg.status_code, svg.headers["content-type"]) == (200, "image/svg+xml")
    assert client.get("/papers/999").status_code == 404
    unknown = client.get("/topics/nosuch")
    assert unknown.status_code == 404
    assert html.unescape(said(unknown.text, "error")) == "There is no topic 'nosuch': the Topics page lists them."


def test_topic_filters_and_orders(library):
    settings, store = library
    client = personal(settings, store)
    decide(store, load_topic(settings.queries_dir / "dosing.toml"), [6], "include", reviewer="ana")
    cases = {
        "": [7, 6, 5, 4, 3, 2, 1],
        "state=included": [6],
        "state=unscreened": [7, 5, 4, 3, 2, 1],
        "tier=rct": [1],
        "tier=meta-analysis": [2],
        "from=2021&to=2023": [4, 3, 2],
        "from=2024": [7, 6],
        "late=1": [3],
        "retracted=1": [4],
        "q=hostile": [5],
        "sort=oldest": [1, 2, 3, 4, 5, 6, 7],
        "sort=tier": [2, 1, 6, 3, 7, 5, 4],
        "sort=tier&from=2023": [6, 3, 7],
    }
    for query, pmids in cases.items():
        response = client.get(f"/topics/dosing?{query}")
        assert (query, response.status_code, listed(response.text)) == (query, 200, pmids)
    for bad, message in (("tier=best", "unknown evidence tier 'best'"), ("from=20x", "'20x' is not a year"),
                         ("state=done", "unknown screening state 'done'"), ("q=%22open", "")):
        response = client.get(f"/topics/dosing?{bad}")
        assert response.status_code == 400 and message in html.unescape(response.text), bad


def test_a_searched_topic_page_filters_and_orders_its_matches_without_probing_the_whole_store(library):
    # A rare filter (a tier, the retracted) is first looked up in the whole store to narrow the topic; a search's
    # matches are already few, and on a million papers each such probe cost 3-25 ms, six of them for one page in
    # tier order (BENCHMARKS.md, web on PostgreSQL).
    from sqlalchemy import event

    settings, store = library
    client = personal(settings, store)
    probes: list[str] = []

    def seen(_connection, _cursor, statement, *_):
        if re.search(r"FROM paper\s+WHERE paper\.(?!pmid)", statement):
            probes.append(" ".join(statement.split()))

    cases = {"q=trial": [7, 6, 4, 3, 2, 1], "q=trial&sort=tier": [2, 1, 6, 3, 7, 4], "q=trial&tier=rct": [1],
             "q=trial&retracted=1": [4], "q=trial&sort=tier&from=2023": [6, 3, 7], "q=hostile&tier=rct": []}
    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        for query, pmids in cases.items():
            response = client.get(f"/topics/dosing?{query}")
            assert (query, response.status_code, listed(response.text), probes) == (query, 200, pmids, [])
        assert listed(client.get("/topics/dosing?tier=rct").text) == [1]
        assert len(probes) == 1  # without a search, the rare tier is looked up
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)


def walk(client, url: str) -> list[tuple[str, list[int]]]:
    """Every page from `url` on, following the "next" links: (address, PMIDs listed)."""
    pages = []
    while url:
        page = client.get(url).text
        pages.append((url, listed(page)))
        found = re.search(r'rel="next" href="([^"]+)"', page)
        url = found.group(1).replace("&amp;", "&") if found else None
    return pages


def test_keyset_pages_walk_forward_and_back(library):
    settings, store = library
    kinds = [("Journal Article",), ("Randomized Controlled Trial",), ("Review",), ("Practice Guideline",)]
    save_papers(store, [make_paper(pmid, history=ON_TIME, publication_types=kinds[pmid % 4])
                        for pmid in range(100, 220)], topic="dosing")
    decide(store, load_topic(settings.queries_dir / "dosing.toml"), list(range(100, 160)), "include", reviewer="ana")
    with store.engine.connect() as connection:
        stored = connection.execute(text("SELECT t.pmid, t.first_seen_at, p.evidence_tier FROM topic_paper t "
                                         "JOIN paper p ON p.pmid = t.pmid WHERE t.topic = 'dosing'")).all()
    from tracker.ncbi.evidence import TIER_INDEX

    newest = [pmid for pmid, _, _ in sorted(stored, key=lambda row: (row[1], row[0]), reverse=True)]
    tiers = {pmid: tier for pmid, _, tier in stored}
    by_tier = sorted(newest, key=lambda pmid: TIER_INDEX[tiers[pmid]])  # stable: newest first within a tier
    client = personal(settings, store)
    for query, expected in (("sort=oldest", newest[::-1]), ("sort=tier", by_tier), ("", newest),
                            ("sort=tier&state=included", [pmid for pmid in by_tier if 100 <= pmid < 160])):
        pages = walk(client, f"/topics/dosing?{query}")
        assert [pmid for _, rows in pages for pmid in rows] == expected, query
        assert all(len(rows) == 50 for _, rows in pages[:-1]), query
        for (_, earlier), (url, _) in zip(pages, pages[1:], strict=False):
            back = re.search(r'rel="prev" href="([^"]+)"', client.get(url).text).group(1).replace("&amp;", "&")
            assert listed(client.get(back).text) == earlier, (query, url)
        assert 'rel="prev"' not in client.get(pages[0][0]).text
    assert [len(rows) for _, rows in walk(client, "/topics/dosing")] == [50, 50, 27]


def test_exports_follow_the_filter(library):
    settings, store = library
    client = personal(settings, store)
    decide(store, load_topic(settings.queries_dir / "dosing.toml"), [2, 6], "include", reviewer="ana")
    included = client.get("/topics/dosing/export.csv?state=included")
    assert included.status_code == 200 and included.headers["content-type"].startswith("text/csv")
    assert [line.split(",")[0] for line in included.text.splitlines()[1:]] == ["6", "2"]
    by_tier = client.get("/topics/dosing/export.csv?tier=meta-analysis")
    assert [line.split(",")[0] for line in by_tier.text.splitlines()[1:]] == ["2"]
    ris = client.get("/topics/dosing/export.ris?from=2024").text
    assert re.findall(r"AN  - (\d+)", ris) == ["7", "6"]
    assert "attachment" in included.headers["content-disposition"]


def test_exports_are_in_the_pages_order_in_every_format(library):
    import io

    from openpyxl import load_workbook

    settings, store = library
    client = personal(settings, store)
    for sort in ("newest", "oldest", "tier"):
        page = listed(client.get(f"/topics/dosing?sort={sort}&from=2020").text)
        csv_rows = client.get(f"/topics/dosing/export.csv?sort={sort}&from=2020").text.splitlines()[1:]
        assert [int(line.split(",")[0]) for line in csv_rows] == page, sort
        ris = client.get(f"/topics/dosing/export.ris?sort={sort}&from=2020").text
        assert [int(pmid) for pmid in re.findall(r"AN  - (\d+)", ris)] == page, sort
        workbook = load_workbook(io.BytesIO(client.get(f"/topics/dosing/export.xlsx?sort={sort}&from=2020").content))
        sheet = workbook.worksheets[0]
        assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True) if row[0]] == page, sort
    assert listed(client.get("/topics/dosing?sort=oldest&from=2020").text) == [2, 3, 4, 5, 6, 7]


def test_shutting_the_app_down_stops_its_relevance_refresher(library):
    settings, store = library
    app, access = build_app(settings, store, host="127.0.0.1", port=8765)
    with TestClient(app, base_url=BASE) as client:
        refresher = client.app_state["web"].refresher
        assert client.get(f"/?token={access.token}", follow_redirects=False).status_code == 303
        assert not refresher.closed
    assert refresher.closed


# -- screening -------------------------------------------------------------------------------

def test_a_decision_in_the_browser_is_the_one_the_cli_sees(library):
    settings, store = library
    client = logged_in(team_app(settings, store), "bo", "bo-password-22")
    page = client.get("/topics/dosing/screen").text
    assert 'name="pmid" value="7"' in page  # the newest first
    response = client.post("/topics/dosing/screen", data={
        "csrf": csrf_of(page), "pmid": "7", "decision": "exclude", "reason": ["wrong population"],
        "note": "adults only", "next": "6"})
    assert said(response.text, "said") == "PMID 7 excluded."
    assert said(response.text, "progress") == "1 of 7 screened"
    assert 'name="pmid" value="6"' in response.text
    result = run_tracker("screen", "list", "dosing", "--state", "excluded", "--format", "csv",
                         env=cli_env(settings.home, None, TRACKER_DB_URL=settings.database_url))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[1].startswith("7,") and "bo: exclude (wrong population)" in lines[1] and "bo: adults only" in lines[1]
    [entry] = decision_history(store, 7)
    assert (entry.reviewer, entry.decision, entry.reasons, entry.source) == ("bo", "exclude", ("wrong population",),
                                                                              "web")


def test_a_ranked_topic_screens_the_most_relevant_paper_first_and_sorts_by_relevance(tmp_path, db_url):
    from tests.test_relevance import FIRST, LATER, SEPSIS
    from tracker.review.relevance import refresh_relevance
    from tracker.store.relevance import scores_of

    home = tmp_path / "home"
    write_topic(home, "sepsis", "norepinephrine sepsis")
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana", "TRACKER_DB_URL": db_url})
    store = open_store(db_url)
    try:
        save_papers(store, FIRST + LATER, topic="sepsis")
        client = personal(settings, store)
        assert said(client.get("/topics/sepsis/screen").text, "order") == (
            "Order: newest first: ranking starts after 2 more decisions")
        assert said(client.get("/topics/sepsis?sort=relevance").text, "meta ranking") == (
            "Order: ranking starts after 2 more decisions.")
        decide(store, SEPSIS, [1, 2, 3], "include", reviewer="ana")
        decide(store, SEPSIS, [11, 12, 13], "exclude", reviewer="ana", reasons=["wrong population"])
        refresh_relevance(store, SEPSIS)
        scores = scores_of(store, ["sepsis"], [21, 22, 23, 24])
        best = max(scores, key=scores.get)
        page = client.get("/topics/sepsis/screen").text
        assert f'name="pmid" value="{best}"' in page and best in (21, 23)
        assert said(page, "order").startswith("Order: most relevant first: ordered by 6 earlier decisions in this topic")
        ranked_page = client.get("/topics/sepsis?sort=relevance").text
        assert said(ranked_page, "meta ranking") == "Order: ordered by 6 earlier decisions in this topic."
        by_relevance = listed(ranked_page)
        everything = scores_of(store, ["sepsis"], by_relevance)
        assert by_relevance == sorted(by_relevance, key=lambda pmid: (-everything[pmid], -pmid)) and len(by_relevance) == 10
        # Keyset pages in relevance order resume exactly where the last one ended.
        from tracker.review.states import ScreeningRule
        from tracker.store.listing import list_topic_page

        rule = ScreeningRule()
        first = list_topic_page(store, "sepsis", rule, sort="relevance", limit=4)
        second = list_topic_page(store, "sepsis", rule, sort="relevance", limit=4, after=first.rows[-1].cursor("relevance"))
        back = list_topic_page(store, "sepsis", rule, sort="relevance", limit=4, before=second.rows[0].cursor("relevance"))
        assert [row.pmid for row in first.rows + second.rows] == by_relevance[:8]
        assert [row.pmid for row in back.rows] == by_relevance[:4]
        # A decision in the browser retrains in the background: the scores learn from it.
        trained = store_state(store)
        client.post("/topics/sepsis/screen", data={"csrf": csrf_of(page), "pmid": str(best), "decision": "include"})
        app_refresher = client.app_state["web"].refresher
        deadline = datetime.now() + timedelta(seconds=30)
        while store_state(store) == trained and datetime.now() < deadline:
            import time

            time.sleep(0.1)
        assert store_state(store) == (4, 3)
        app_refresher.close()
    finally:
        store.close()


def store_state(store):
    from tracker.store.relevance import ranking_state

    state = ranking_state(store, "sepsis")
    return (state.included, state.excluded) if state else None


def test_undo_restores_the_previous_decision_and_withdraws_a_first_one(library):
    settings, store = library
    client = personal(settings, store)
    csrf = csrf_of(client.get("/topics/dosing/screen").text)
    for decision in ("include", "maybe"):
        client.post("/topics/dosing/screen", data={"csrf": csrf, "pmid": "5", "decision": decision})
    client.post("/topics/dosing/screen", data={"csrf": csrf, "pmid": "4", "decision": "exclude", "reason": "2"})
    undone = client.post("/topics/dosing/screen/undo", data={"csrf": csrf})
    assert said(undone.text, "said") == "Your decision on PMID 4 was undone."
    assert 'name="pmid" value="4"' in undone.text
    client.post("/topics/dosing/screen/undo", data={"csrf": csrf})
    assert [(d.decision, d.source) for d in decision_history(store, 4)] == [("exclude", "web"), ("withdraw", "web-undo")]
    assert [(d.decision, d.source) for d in decision_history(store, 5)] == [
        ("include", "web"), ("maybe", "web"), ("include", "web-undo")]
    states = client.get("/topics/dosing?state=unscreened").text
    assert 4 in listed(states) and 5 not in listed(states)
    third = client.post("/topics/dosing/screen/undo", data={"csrf": csrf})  # then the include of 5 itself
    assert said(third.text, "said") == "Your decision on PMID 5 was undone."
    assert [d.decision for d in decision_history(store, 5)][-1] == "withdraw"
    last = client.post("/topics/dosing/screen/undo", data={"csrf": csrf})
    assert said(last.text, "said") == "Nothing to undo."
    assert said(last.text, "progress") == "0 of 7 screened"


def test_blind_screening_hides_the_other_reviewer_until_both_decide(library):
    settings, store = library
    app = team_app(settings, store)
    ana, bo = logged_in(app, "ana", "ana-password-1"), logged_in(app, "bo", "bo-password-22")
    page = ana.get("/topics/pair/screen?pmid=3").text
    ana.post("/topics/pair/screen", data={"csrf": csrf_of(page), "pmid": "3", "decision": "exclude", "reason": "1",
                                          "note": "ana's secret note"})
    for url in ("/topics/pair/screen?pmid=3", "/papers/3", "/topics/pair", "/topics/pair/export.csv"):
        shown = bo.get(url).text
        assert "ana:" not in shown and ">ana<" not in shown and "ana exclude" not in shown, url
        assert "secret note" not in shown and "(wrong population)" not in shown, url
    assert "1 other decision hidden" in bo.get("/papers/3").text
    assert 'class="state unscreened">unscreened' in bo.get("/topics/pair?state=unscreened").text
    assert 3 in listed(bo.get("/topics/pair?state=unscreened").text)
    assert 3 in listed(ana.get("/topics/pair?state=awaiting").text)
    page = bo.get("/topics/pair/screen?pmid=3").text
    bo.post("/topics/pair/screen", data={"csrf": csrf_of(page), "pmid": "3", "decision": "include"})
    after = bo.get("/topics/pair/screen?pmid=3").text
    assert "ana: exclude (" in after and "secret note" in after
    assert 3 in listed(bo.get("/topics/pair?state=conflict").text)


# -- the Query page --------------------------------------------------------------------------

def query_records():
    created = date.today() - timedelta(days=2)
    return [FakeRecord(pmid=pmid, created=created, queries={"norepinephrine bolus"},
                       xml=article_xml(pmid, created=created, title=f"Bolus study {pmid}")) for pmid in (41, 42)]


def test_the_query_page_reads_pubmed_and_an_admin_saves_a_topic(library, fake_eutils):
    settings, store = library
    fake_eutils.add(*query_records())
    from dataclasses import replace

    settings = replace(settings, eutils_url=fake_eutils.url, email="library@tracker.test", requests_per_second=1000.0,
                       backoff_initial=0.01, backoff_max=0.02, max_attempts=2, timeout=5.0)
    app = team_app(settings, store)
    chief, bo = logged_in(app, "chief", "chief-password-3"), logged_in(app, "bo", "bo-password-22")
    page = chief.post("/query", data={"csrf": csrf_of(chief.get("/query").text), "q": "norepinephrine bolus"}).text
    assert "<code>norepinephrine bolus</code>" in page
    assert re.search(r"<dt>Count</dt><dd>2</dd>", page)
    assert listed(page) == [42, 41] and "Bolus study 42" in page
    assert ">Save as topic</button>" in page
    saved = chief.post("/query/save", data={"csrf": csrf_of(page), "q": "norepinephrine bolus", "slug": "bolus",
                                            "title": "Bolus <dosing>"}, follow_redirects=False)
    assert (saved.status_code, saved.headers["location"]) == (303, "/query?saved=bolus")
    topic = load_topic(settings.queries_dir / "bolus.toml")
    assert (topic.title, topic.query) == ("Bolus <dosing>", "norepinephrine bolus")
    again = chief.post("/query/save", data={"csrf": csrf_of(page), "q": "x", "slug": "bolus", "title": "T"})
    assert again.status_code == 400 and "queries/bolus.toml already exists" in again.text
    unknown = chief.post("/query", data={"csrf": csrf_of(page), "q": "nosuchterm"}).text
    assert "<dt>Error</dt>" in unknown and "PubMed could not find" in unknown
    refused = bo.post("/query/save", data={"csrf": csrf_of(bo.get("/query").text), "q": "x", "slug": "mine",
                                           "title": "Mine"})
    assert refused.status_code == 403 and not (settings.queries_dir / "mine.toml").exists()
    assert ">Save as topic</button>" not in bo.post("/query", data={"csrf": csrf_of(bo.get("/query").text),
                                                                    "q": "norepinephrine bolus"}).text


# -- access ----------------------------------------------------------------------------------

def test_personal_mode_exchanges_the_token_for_a_session_cookie(library):
    settings, store = library
    app, access = build_app(settings, store, host="127.0.0.1", port=8765)
    client = started(TestClient(app, base_url=BASE))
    assert client.get("/").status_code == 403
    assert client.get("/?token=wrong").status_code == 403
    assert client.get("/login").status_code == 404
    response = client.get(f"/topics/dosing?state=maybe&token={access.token}", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/topics/dosing?state=maybe")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie
    page = client.get("/topics/dosing")
    assert page.status_code == 200 and access.token not in page.text
    assert client.cookies[SESSION_COOKIE] not in page.text
    secure = started(TestClient(app, base_url="https://127.0.0.1:8765")).get(f"/?token={access.token}", follow_redirects=False)
    assert "Secure" in secure.headers["set-cookie"]
    again, _ = build_app(settings, store, host="127.0.0.1", port=8765)  # the next start: new token, old sessions end
    assert started(TestClient(again, base_url=BASE, cookies=client.cookies)).get("/topics/dosing").status_code == 403
    add_user(store, "ana", "ana-password-1")
    team, access = build_app(settings, store, host="127.0.0.1", port=8765)
    value, _ = new_session(access, account=None, reviewer="ana", role="admin")  # as a personal start left it
    stale = started(TestClient(team, base_url=BASE, cookies={SESSION_COOKIE: value}))
    assert stale.get("/topics/dosing", follow_redirects=False).headers["location"] == "/login?next=%2Ftopics%2Fdosing"


def test_the_token_exchange_and_the_login_send_the_browser_only_to_this_apps_pages(library):
    settings, store = library
    app, access = build_app(settings, store, host="127.0.0.1", port=8765)
    client = started(TestClient(app, base_url=BASE))
    for path in ("//evil.example/", "//evil.example/topics", "/%09/evil.example/", "/%2F/evil.example",
                 "/%2F%2Fevil.example"):
        response = client.get(f"{BASE}{path}?token={access.token}", follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/"), path
    kept = client.get(f"{BASE}/topics/dosing?state=maybe&token={access.token}", follow_redirects=False)
    assert kept.headers["location"] == "/topics/dosing?state=maybe"
    team = team_app(settings, store)
    visitor = started(TestClient(team, base_url=BASE))
    for target in ("//evil.example/", "/\\evil.example", "/\t/evil.example", "https://evil.example/", "topics"):
        form = visitor.get("/login").text
        response = visitor.post("/login", data={"csrf": csrf_of(form), "user": "ana", "password": "ana-password-1",
                                                "next": target}, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/"), target


def test_personal_mode_refuses_a_non_loopback_host(library):
    settings, store = library
    from tracker.errors import ConfigError

    with pytest.raises(ConfigError, match="create an account first with 'tracker users add NAME --admin'"):
        build_app(settings, store, host="0.0.0.0", port=8765)


def test_team_logins_sessions_and_logout(library):
    settings, store = library
    app = team_app(settings, store)
    client = started(TestClient(app, base_url=BASE))
    response = client.get("/topics/dosing?state=maybe", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (
        303, "/login?next=%2Ftopics%2Fdosing%3Fstate%3Dmaybe")
    form = client.get(response.headers["location"]).text
    assert '<label for="user">User name</label>' in form and '<label for="password">Password</label>' in form
    assert '<button type="submit">Log in</button>' in form
    wrong = client.post("/login", data={"csrf": csrf_of(form), "user": "ana", "password": "not-her-password",
                                        "next": "/"})
    assert wrong.status_code == 401 and "Wrong user name or password." in wrong.text
    nobody = client.post("/login", data={"csrf": csrf_of(wrong.text), "user": "zed", "password": "whatever-123"})
    assert nobody.status_code == 401 and "Wrong user name or password." in nobody.text
    right = client.post("/login", data={"csrf": csrf_of(nobody.text), "user": "ana", "password": "ana-password-1",
                                        "next": "//evil.example/"}, follow_redirects=False)
    assert (right.status_code, right.headers["location"]) == (303, "/")
    assert "HttpOnly" in right.headers["set-cookie"] and "SameSite=lax" in right.headers["set-cookie"]
    assert client.get("/").status_code == 200
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE web_session SET expires_at = :past"),
                           {"past": datetime.now(timezone.utc) - timedelta(minutes=1)})
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"
    client = logged_in(app, "ana", "ana-password-1")
    cookie = client.cookies[SESSION_COOKIE]
    out = client.post("/logout", data={"csrf": csrf_of(client.get("/").text)}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    stale = started(TestClient(app, base_url=BASE, cookies={SESSION_COOKIE: cookie}))
    assert stale.get("/", follow_redirects=False).status_code == 303


def test_repeated_failed_logins_are_delayed(library):
    settings, store = library
    app = team_app(settings, store)
    client = started(TestClient(app, base_url=BASE))
    page = client.get("/login").text
    for _ in range(5):
        page = client.post("/login", data={"csrf": csrf_of(page), "user": "ana", "password": "guess-guess"}).text
    delayed = client.post("/login", data={"csrf": csrf_of(page), "user": "ana", "password": "ana-password-1"})
    assert delayed.status_code == 429 and "Too many failed logins: wait 1 second, then try again." in delayed.text
    restarted = started(TestClient(build_app(settings, store, host="127.0.0.1", port=8765)[0], base_url=BASE))
    again = restarted.post("/login", data={"csrf": csrf_of(restarted.get("/login").text), "user": "ana",
                                           "password": "ana-password-1"})
    assert again.status_code == 429  # counted in the database: a restart does not reset it


def test_state_changing_requests_need_the_csrf_token_and_our_origin(library):
    settings, store = library
    app = team_app(settings, store)
    ana, bo = logged_in(app, "ana", "ana-password-1"), logged_in(app, "bo", "bo-password-22")
    mine = csrf_of(ana.get("/").text)
    decision = {"pmid": "7", "decision": "include"}
    refusals = [
        ana.post("/topics/dosing/screen", data=decision),
        ana.post("/topics/dosing/screen", data={**decision, "csrf": "forged"}),
        ana.post("/topics/dosing/screen", data={**decision, "csrf": csrf_of(bo.get("/").text)}),
        ana.post("/topics/dosing/screen", data={**decision, "csrf": mine}, headers={"origin": "http://evil.example"}),
        ana.post("/topics/dosing/screen/undo", data={}),
        ana.post("/logout", data={}),
        started(TestClient(app, base_url=BASE)).post("/login", data={"csrf": "x", "user": "ana", "password": "ana-password-1"}),
    ]
    assert [response.status_code for response in refusals] == [403] * len(refusals)
    assert "This form has expired or did not come from this app" in refusals[0].text
    assert decision_history(store, 7) == []
    assert ana.post("/topics/dosing/screen", data={**decision, "csrf": mine},
                    headers={"origin": BASE}).status_code == 200
    assert ana.post("/topics/dosing/screen", data=decision, headers={"x-csrf-token": mine}).status_code == 200


def test_a_host_the_app_is_not_served_as_is_refused(library):
    settings, store = library
    client = personal(settings, store)
    for host in ("evil.example", "evil.example:8765", "127.0.0.1:9999", "localhost.evil.example:8765"):
        response = client.get("/", headers={"host": host})
        assert response.status_code == 400, host
        assert response.text == "This address is not served here: open the address tracker serve printed."
    assert client.get("/", headers={"host": "localhost:8765"}).status_code == 200
    from dataclasses import replace

    proxied = personal(replace(settings, web_hosts=("tracker.hospital.org",)), store)
    assert proxied.get("/", headers={"host": "tracker.hospital.org"}).status_code == 200


def test_reviewers_and_admins(library):
    settings, store = library
    app = team_app(settings, store)
    bo, chief = logged_in(app, "bo", "bo-password-22"), logged_in(app, "chief", "chief-password-3")
    assert bo.get("/users").status_code == 403 and ">Users</a>" not in bo.get("/").text
    users = chief.get("/users")
    assert users.status_code == 200 and ">Remove bo</button>" in users.text
    assert "argon2" not in users.text and "$argon2id$" not in users.text
    added = chief.post("/users", data={"csrf": csrf_of(users.text), "user": "dee", "password": "dee-password-4"})
    assert added.status_code == 200 and "<td>dee</td>" in added.text
    chief.post("/users", data={"csrf": csrf_of(users.text), "remove": "bo"})
    assert bo.get("/", follow_redirects=False).status_code == 303  # bo's session ended with the account
    short = chief.post("/users", data={"csrf": csrf_of(users.text), "user": "eve", "password": "short"})
    assert short.status_code == 400 and "shorter than 10 characters" in short.text
    assert bo.post("/users", data={"csrf": "x", "user": "x", "password": "y" * 12}).status_code == 403


def test_every_field_of_a_record_is_escaped(library):
    settings, store = library
    (settings.queries_dir / "hostile.toml").write_text(
        f"title = '{HOSTILE} title'\nquery = 'x'\nexclusion_reasons = ['{HOSTILE}']\n", encoding="utf-8")
    save_papers(store, [papers()[4]], topic="hostile")
    client = personal(settings, store)
    csrf = csrf_of(client.get("/").text)
    client.post("/topics/hostile/screen", data={"csrf": csrf, "pmid": "5", "decision": "exclude",
                                                "reason": HOSTILE, "note": f"note {HOSTILE}"})
    for url in ("/", "/topics/dosing", "/topics/hostile", "/papers/5", "/search?q=hostile", "/topics/hostile/screen?pmid=5",
                "/topics/hostile/prisma", "/topics/dosing?q=" + HOSTILE):
        page = client.get(url).text
        assert "<script>alert" not in page and "<img src=x" not in page and "<svg onload" not in page, url
        assert "<b>bold" not in page, url
    page = client.get("/papers/5").text
    assert "Hostile &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "note &lt;script&gt;" in page
    assert "<script>" not in client.get("/topics/hostile/prisma.svg").text


def test_numbers_in_addresses_and_forms_are_read_strictly(library):
    settings, store = library
    client = personal(settings, store)
    for given in ("%C2%B2", "99999999999999999999", "0", "1_0"):  # ², past every integer, not a PMID, not digits
        page = client.get(f"/papers/{given}")
        shown = html.unescape(said(page.text, "error"))
        assert (page.status_code, shown) == (404, f"'{urllib.parse.unquote(given)}' is not a PMID (a whole number from "
                                                  "1 to 2,147,483,647): search for the paper on the Search page"), given
    year = client.get("/topics/dosing?from=%C2%B2%C2%B2%C2%B2%C2%B2")
    assert year.status_code == 400 and "is not a year: give four digits, such as 2021" in html.unescape(year.text)
    for query in ("pmid=%C2%B2", "pmid=99999999999999999999", "done=include&of=%C2%B2"):
        assert client.get(f"/topics/dosing/screen?{query}").status_code == 200, query
    first = listed(client.get("/topics/dosing").text)
    for cursor in ("0.20240101T000000.000000.99999999999999999999", "0.20240101T000000.000000.%C2%B2",
                   "99999999999999999999.20240101T000000.000000.1", "0.20240101T000000.000000.1~inf"):
        page = client.get(f"/topics/dosing?after={cursor}")
        assert (page.status_code, listed(page.text)) == (200, first), cursor  # a cursor that is not one: the top
    csrf = csrf_of(client.get("/").text)
    refused = client.post("/topics/dosing/screen", data={"csrf": csrf, "pmid": "²", "decision": "include"})
    assert refused.status_code == 400 and "the form names no paper: reload the screening page" in refused.text
    assert decision_history(store, 2) == []


def test_the_evidence_tier_is_stored_and_the_migration_fills_it(db_url):
    from tests.test_schema import make_schema_1
    from tracker.store import migrate_store

    store = open_store(db_url)
    save_papers(store, papers()[:3], topic="dosing")
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT pmid, evidence_tier FROM paper ORDER BY pmid")).all() == [
            (1, "rct"), (2, "meta-analysis"), (3, "case-report")]
    make_schema_1(store)
    store.close()
    migrated, _ = migrate_store(db_url)
    with migrated.engine.connect() as connection:
        assert connection.execute(text("SELECT pmid, evidence_tier FROM paper ORDER BY pmid")).all() == [
            (1, "rct"), (2, "meta-analysis"), (3, "case-report")]
    migrated.close()


# -- the command line ------------------------------------------------------------------------

def test_users_commands(tmp_path, db_url):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    env = cli_env(home, None, TRACKER_DB_URL=db_url)

    def tracker(*args, stdin=""):
        import subprocess
        import sys

        done = subprocess.run([sys.executable, "-m", "tracker", *args], env=env, input=stdin, capture_output=True,
                              text=True, timeout=120, cwd=home)
        return done.returncode, done.stdout, done.stderr

    assert tracker("users", "list")[:2] == (0, "no accounts: tracker serve runs in personal mode (add one with "
                                               "'tracker users add NAME')\n")
    assert tracker("users", "add", "ana", "--admin", stdin="ana-password-1\n") == (
        0, "added admin 'ana': tracker serve asks everyone to log in (restart it if it is running)\n", "")
    assert tracker("users", "add", "ana", stdin="another-password\n") == (
        2, "", "error: user 'ana' exists already: 'tracker users passwd ana' changes the password\n")
    assert tracker("users", "add", "bo", stdin="short\n") == (
        2, "", "error: the password is shorter than 10 characters: choose a longer one\n")
    assert tracker("users", "add", "bo", stdin="") == (
        2, "", "error: no password on standard input: pipe one line, or run the command in a terminal\n")
    assert tracker("users", "add", "bo<x>", stdin="bo-password-22\n")[0] == 2
    assert tracker("users", "add", "bo", stdin="bo-password-22\n")[0] == 0
    code, out, _ = tracker("users", "list")
    assert code == 0 and [line.split()[:2] for line in out.splitlines()[2:]] == [["ana", "admin"], ["bo", "reviewer"]]
    assert "argon2" not in out
    assert tracker("users", "passwd", "bo", stdin="bo-password-33\n")[:2] == (
        0, "changed the password of 'bo'; their sessions have ended\n")
    assert tracker("users", "passwd", "zed", stdin="zed-password-1\n")[2] == (
        "error: no user 'zed': 'tracker users list' lists them\n")
    assert tracker("users", "remove", "bo")[:2] == (0, "removed 'bo'\n")
    assert tracker("users", "remove", "bo")[0] == 2
    store = open_store(db_url)
    from tracker.web.accounts import authenticate

    assert authenticate(store, "ana", "ana-password-1", address="127.0.0.1").account.admin
    with store.engine.connect() as connection:
        [stored] = connection.execute(text("SELECT password_hash FROM account")).scalars()
    assert stored.startswith("$argon2id$")
    store.close()


def test_serve_refuses_what_it_cannot_serve(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    env = cli_env(home, None)
    result = run_tracker("serve", "--host", "0.0.0.0", env=env)
    assert (result.code, result.out) == (2, "")
    assert result.err == ("error: no accounts yet, so tracker serve runs for you alone on 127.0.0.1: to serve a team "
                          "on 0.0.0.0, create an account first with 'tracker users add NAME --admin'\n")
    result = run_tracker("serve", "--port", "70000", env=env)
    assert (result.code, result.err) == (2, "error: --port 70000 is not a port: use 1-65535, for example 8765\n")
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_tracker("serve", "--port", str(port), env=env)
    assert (result.code, result.out) == (2, "")
    assert result.err == f"error: port {port} is in use: choose another with --port\n"
