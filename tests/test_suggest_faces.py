"""Suggestions beyond the query in every face: the digest's and the e-mail's "Outside your query" section, `tracker
suggest` (table, CSV, JSON, -o, --add, --dismiss, --refresh and its errors), `tracker topics --check` saying what the
added papers share that the query does not name, and the web app's Suggestions page (tests/test_web_browser.py
drives it with the keyboard)."""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from tests.conftest import cli_env, run_tracker, started, write_topic
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml
from tests.test_store import make_paper
from tracker.ncbi.pubmed import Author, MeshHeading
from tracker.outputs.digest import build_topic_digest, render_html, render_markdown, render_text
from tracker.review.gaps import query_gaps
from tracker.review.relevance import refresh_relevance
from tracker.review.screening import decide
from tracker.runs.suggest import SUGGESTION_COLUMNS, flat_record, list_suggestions, suggestion_record
from tracker.settings import Settings
from tracker.store import open_store
from tracker.store.membership import member_sources
from tracker.store.papers import save_papers
from tracker.store.suggestions import Found, load_suggestions, save_found
from tracker.topics import Topic, load_topic

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOPIC = Topic(slug="dosing", title="Norepinephrine dosing", query='"Norepinephrine"[Mesh] AND dose[tiab]',
              recipients=("a@example.org",))
HYPOTENSION = MeshHeading("Hypotension", "D007022", False, ())
NOREPINEPHRINE = MeshHeading("Norepinephrine", "D009638", True, ())


def mesh(*headings):
    return tuple(headings)


def seed_library(store, topic: Topic = TOPIC) -> None:
    """Topic papers 1-4 (1 included, 2 excluded) and three suggestions: 11 similar to 1, 12 citing 1, 13 both."""
    save_papers(store, [make_paper(pmid, mesh_headings=mesh(NOREPINEPHRINE)) for pmid in (1, 2, 3, 4)],
                topic=topic.slug)
    save_papers(store, [
        make_paper(11, title="Vasopressor boluses for spinal hypotension", authors=(Author("Ngan Kee", "W", "WD"),),
                   pub_date=date(2021, 3, 1), mesh_headings=mesh(HYPOTENSION, NOREPINEPHRINE)),
        make_paper(12, title="Norepinephrine in septic shock", authors=(Author("Lee", "A", "A"),),
                   pub_date=date(2022, 5, 1), mesh_headings=mesh(HYPOTENSION)),
        make_paper(13, title="Hypotension after induction", authors=(Author("Park", "J", "J"),),
                   pub_date=date(2023, 1, 1), mesh_headings=mesh(HYPOTENSION)),
    ])
    save_found(store, topic.slug, [Found(11, {"similar": (1,)}, 120), Found(12, {"cites": (1,)}),
                                   Found(13, {"similar": (1,), "cited by": (1,)}, 60)], run_id=None)
    decide(store, topic, [1], "include", reviewer="ana")
    decide(store, topic, [2], "exclude", reviewer="ana")
    refresh_relevance(store, topic)


# -- the digest and the e-mail ------------------------------------------------------------------------

def test_the_digest_ends_each_topic_with_what_lies_outside_its_query(store):
    seed_library(store)
    with store.engine.begin() as connection:  # 11 was suggested before this digest's period
        connection.execute(text("UPDATE suggestion SET first_found_at = :then WHERE pmid = 11"),
                           {"then": datetime(2020, 1, 1)})
    digest = build_topic_digest(store, TOPIC)
    views = list_suggestions(store, TOPIC, limit=3).items
    reasons = {view.pmid: view.reason for view in views}
    assert reasons == {11: "similar to Ngan Kee 2019", 12: "cites Ngan Kee 2019",
                       13: "similar to Ngan Kee 2019; cited by Ngan Kee 2019"}
    assert digest.outside is not None and (digest.outside.total, digest.outside.new) == (3, 2)
    new_first = [view.pmid for view in views if view.pmid != 11] + [11]  # each part most relevant first
    assert [view.pmid for view in digest.outside.shown] == new_first
    first = digest.outside.shown[0]
    markdown = render_markdown(digest)
    assert "\n## Outside your query: 3 suggestions, 2 of them new\n\nPapers PubMed links to your included papers that " \
           "the query does not find. Add or dismiss all 3 with 'tracker suggest dosing' or on the web app's " \
           "Suggestions page.\n" in markdown
    assert (f"\n- [{first.paper.title}](https://pubmed.ncbi.nlm.nih.gov/{first.pmid}/) · PMID {first.pmid} · "
            f"relevance {first.relevance:.2f}\n\n  new · {first.first_author} · {first.year} · {first.reason}\n"
            ) in markdown
    old = next(view for view in digest.outside.shown if view.pmid == 11)
    assert f"\n  {old.first_author} · {old.year} · similar to Ngan Kee 2019\n" in markdown
    text_digest = render_text(digest)
    assert "\nOUTSIDE YOUR QUERY: 3 SUGGESTIONS, 2 OF THEM NEW\n" + "-" * 48 + "\n" in text_digest
    assert (f"\n  {first.paper.title}\n    new · {first.first_author} · {first.year} · {first.reason}\n"
            f"    PubMed: https://pubmed.ncbi.nlm.nih.gov/{first.pmid}/\n") in text_digest
    html = render_html(digest)
    assert '<section class="outside" id="outside">\n<h2>Outside your query: 3 suggestions, 2 of them new</h2>' in html
    assert f'<article class="paper suggestion" data-pmid="{first.pmid}">' in html
    assert "\n## " not in markdown[markdown.index("## Outside your query") + 3:]  # the topic's last section
    later = build_topic_digest(store, TOPIC, suggested_since=datetime.now(timezone.utc) + timedelta(days=1))
    assert later.outside is not None and later.outside.new == 0
    assert "\n## Outside your query: 3 suggestions\n\n" in render_markdown(later)
    assert [view.pmid for view in later.outside.shown] == [view.pmid for view in views]  # most relevant first


def test_a_topic_without_suggestions_has_no_such_section(store):
    save_papers(store, [make_paper(1)], topic=TOPIC.slug)
    digest = build_topic_digest(store, TOPIC)
    assert digest.outside is None
    assert "Outside your query" not in render_markdown(digest) + render_text(digest) + render_html(digest)


def test_the_email_ends_each_topic_with_the_same_section(store, monkeypatch):
    from tracker.outputs.charts import render_chart_png
    from tracker.outputs.mail import build_message, plan_mailing
    from tracker.text import utcnow

    monkeypatch.setattr("tracker.outputs.charts.chart_png", lambda store, slug, *, end: render_chart_png([]))
    seed_library(store)
    message = build_message(store, plan_mailing(store, "a@example.org", [TOPIC], now=utcnow(), record=False),
                            sender="tracker@lab.example.org").message
    views = list_suggestions(store, TOPIC, limit=3).items
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    # Every suggestion was found after the reader's last e-mail: all three are new.
    assert ("\n  OUTSIDE YOUR QUERY: 3 SUGGESTIONS, 3 OF THEM NEW\n  Papers PubMed links to your included papers that "
            "the query does not find.\n  Add or dismiss all 3 with 'tracker suggest dosing' or on the web app's\n"
            "  Suggestions page.\n") in text
    for view in views:
        assert f"    new · {view.first_author} · {view.year} · {view.reason}\n    PubMed: {view.url}\n" in text
    html = message.get_body(("html",)).get_content()
    assert re.search(r'<td style="[^"]*" data-part="outside">\n<h3 style="[^"]*">Outside your query: 3 suggestions, 3 of '
                     r'them new</h3>', html)
    assert html.index('id="topic-dosing"') < html.index('data-part="outside"') < html.index("Sent by tracker")


# -- tracker suggest ----------------------------------------------------------------------------------

@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}")
    seed_library(store, load_topic(home / "queries" / "dosing.toml"))
    store.close()
    return home


def listed(home, **options):
    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}", readonly=True)
    try:
        return [suggestion_record(view) for view in list_suggestions(
            store, load_topic(home / "queries" / "dosing.toml"), **options).items]
    finally:
        store.close()


def test_suggest_lists_the_most_relevant_first_as_a_table_csv_or_json(home):
    env = cli_env(home, None)
    records = listed(home)
    assert [record["pmid"] for record in records] == sorted(
        [11, 12, 13], key=lambda pmid: -next(r["relevance"] for r in records if r["pmid"] == pmid))
    table = run_tracker("suggest", "dosing", env=env)
    assert (table.code, table.err) == (0, "")
    lines = table.out.splitlines()
    assert lines[0].split() == ["pmid", "relevance", "year", "first", "author", "found", "by", "title"]
    assert [line.split()[:3] for line in lines[2:5]] == [
        [str(r["pmid"]), f"{r['relevance']:.3f}", str(r["year"])] for r in records]
    assert lines[5] == "3 of 3 pending suggestions, most relevant first"

    as_csv = run_tracker("suggest", "dosing", "--format", "csv", env=env)
    rows = list(csv.reader(io.StringIO(as_csv.out)))
    assert tuple(rows[0]) == SUGGESTION_COLUMNS
    assert rows[0][:6] == ["pmid", "title", "year", "relevance", "found_by", "seeds"]
    assert rows[1:] == [["" if cell is None else str(cell) for cell in flat_record(record)] for record in records]
    [thirteen] = [row for row in rows if row[0] == "13"]
    assert thirteen[4:7] == ["similar; cited by", "1", "similar to Ngan Kee 2019; cited by Ngan Kee 2019"]

    as_json = run_tracker("suggest", "dosing", "--format", "json", "--limit", "2", env=env)
    assert json.loads(as_json.out) == records[:2]

    written = run_tracker("suggest", "dosing", "--format", "csv", "-o", str(home / "suggestions.csv"), env=env)
    assert (written.code, written.out, written.err) == (0, "", f"wrote 3 suggestions to {home / 'suggestions.csv'}\n")
    # The file starts with the BOM Excel needs; stdout does not (its CRLF line ends read back as "\n" here).
    assert (home / "suggestions.csv").read_bytes() == b"\xef\xbb\xbf" + as_csv.out.replace("\n", "\r\n").encode()


def test_suggest_adds_and_dismisses_then_lists_each_status(home):
    env = cli_env(home, None)
    added = run_tracker("suggest", "dosing", "--add", "11", "--reviewer", "ana", env=env)
    assert (added.code, added.out, added.err) == (
        0, "dosing: 1 suggestion added by ana (11); screen them with 'tracker screen list dosing --state unscreened'\n",
        "")
    dismissed = run_tracker("suggest", "dosing", "--dismiss", "12", "13", "--reviewer", "bo", env=env)
    assert (dismissed.code, dismissed.out) == (0, "dosing: 2 suggestions dismissed by bo; never suggested to this topic "
                                                  "again\n")
    empty = run_tracker("suggest", "dosing", env=env)
    assert empty.out == ("no pending suggestions for topic 'dosing': they come after each run once it has included "
                         "papers or seeds; 'tracker suggest dosing --refresh' asks now\n")
    assert [record["pmid"] for record in listed(home, status="added")] == [11]
    assert sorted(record["pmid"] for record in listed(home, status="dismissed")) == [12, 13]
    as_json = json.loads(run_tracker("suggest", "dosing", "--status", "dismissed", "--format", "json", env=env).out)
    assert sorted((record["pmid"], record["status"]) for record in as_json) == [(12, "dismissed"), (13, "dismissed")]
    screened = run_tracker("screen", "list", "dosing", "--state", "unscreened", "--format", "json", env=env)
    assert 11 in [record["pmid"] for record in json.loads(screened.out)]
    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}", readonly=True)
    try:
        assert member_sources(store, "dosing", [1, 11, 12]) == {1: "query", 11: "suggestion"}
    finally:
        store.close()
    prisma = json.loads(run_tracker("prisma", "dosing", "--format", "json", env=env).out)
    assert prisma["other_methods"] == {"similar articles": 1, "citation searching": 0}


@pytest.mark.parametrize(("args", "message"), [
    (("11",), "PMIDs go with --add or --dismiss: 'tracker suggest SLUG --add PMID...' (see 'tracker suggest --help')"),
    (("--add",), "--add needs the PMIDs: 'tracker suggest SLUG --add PMID...' (see 'tracker suggest --help')"),
    (("--dismiss", "11", "--format", "csv"), "--dismiss cannot be combined with --refresh, --limit, --format, --status, "
                                             "-o: add or dismiss first, then list (see 'tracker suggest --help')"),
    (("--dismiss", "11", "99"), "PMID 99 is not a suggestion of topic 'dosing': 'tracker suggest dosing' lists them"),
    (("--dismiss", "1"), "PMID 1 is already in topic 'dosing': nothing to dismiss"),
    (("--add", "1"), "PMID 1 is already in topic 'dosing': nothing to add"),
    (("--refresh", "--status", "added"), "--refresh lists the pending suggestions: leave out --status (see 'tracker "
                                         "suggest --help')"),
    (("--format", "json", "-o", "x.csv"), "-o x.csv names a csv file but the format is json: pass --format csv, or "
                                          "name the file x.json (see 'tracker suggest --help')"),
    (("--add", "abc"), "Invalid value for '[PMID]...': 'abc' is not a PMID (a whole number from 1 to 2,147,483,647, "
                       "such as 31415926) (see 'tracker suggest --help')"),
])
def test_suggest_refuses_what_it_cannot_do_in_one_line_and_changes_nothing(home, args, message):
    result = run_tracker("suggest", "dosing", *args, env=cli_env(home, None))
    assert (result.code, result.out, result.err) == (2, "", f"error: {message}\n")
    assert sorted(record["pmid"] for record in listed(home)) == [11, 12, 13]


def test_suggest_refresh_asks_every_seed_without_a_date_limit(tmp_path, fake_eutils):
    from tests.link_records import linked_records

    home = tmp_path / "home"
    write_topic(home, "cesarean", "caesarean vasopressors", seeds="[101]")
    for record in linked_records():
        fake_eutils.add(record.__class__(**{**record.__dict__, "queries": frozenset()}))
    env = cli_env(home, fake_eutils.url)
    result = run_tracker("suggest", "cesarean", "--refresh", "--format", "csv", env=env)
    assert result.code == 0, result.err
    assert result.err == "cesarean: 3 new suggestions from 1 seed (1 asked without a date limit), 3 requests\n"
    # No decisions yet, so no relevance: the most similar to the seed first (the fake's cosine: 103, 106, 102).
    assert [row[0] for row in csv.reader(io.StringIO(result.out))][1:] == ["103", "106", "102"]
    elinks = [request.params for request in fake_eutils.requests if request.endpoint == "elink"]
    assert [params.get("cmd") for params in elinks] == ["neighbor_score", "neighbor"]
    assert not any("mindate" in params for params in elinks)
    status = run_tracker("status", "--topic", "cesarean", env=env)
    assert re.search(r"\n\d+ +cesarean +suggest +.* succeeded +0 +0 +3 ", status.out), status.out


# -- why the query missed them ------------------------------------------------------------------------

def test_gaps_name_the_mesh_terms_and_words_most_added_papers_share(store):
    seed_library(store)
    from tracker.runs.suggest import add_suggestions

    add_suggestions(store, TOPIC, [11, 12, 13], reviewer="ana")
    report = query_gaps(store, TOPIC)
    assert report.added == 3
    assert report.lines()[0] == "3 of 3 added papers are indexed with 'Hypotension'; the query does not name it"
    assert "Norepinephrine" not in " ".join(report.lines())  # the query names it (and every paper has it)
    named = query_gaps(store, TOPIC, translation='"hypotension"[MeSH Terms] OR hypotension[tiab]')
    assert all("'Hypotension'" not in line for line in named.lines())
    decide(store, TOPIC, [11, 12, 13], "exclude", reviewer="ana")  # excluded: they no longer say what was missed
    assert query_gaps(store, TOPIC).lines() == [
        "no paper was added to this topic from outside its query yet: nothing to compare the query with"]


def test_topics_check_says_what_the_added_papers_share(home, fake_eutils):
    env = cli_env(home, fake_eutils.url)
    fake_eutils.add(FakeRecord(pmid=1, created=date(2024, 1, 1), xml=article_xml(1, created=date(2024, 1, 1))))
    before = run_tracker("topics", "--check", "dosing", env=env)
    assert before.out.endswith("outside:     no paper was added to this topic from outside its query yet: nothing to "
                               "compare the query with\n")
    run_tracker("suggest", "dosing", "--add", "11", "12", "13", env=env)
    after = run_tracker("topics", "--check", "dosing", env=env)
    assert after.code == 0, after.err
    assert after.out.splitlines()[:3] == ["query:       norepinephrine dosing", "translation: norepinephrine dosing",
                                          "count:       1"]
    assert after.out.splitlines()[3] == ("outside:     3 of 3 added papers are indexed with 'Hypotension'; the query "
                                         "does not name it")


# -- the web app ----------------------------------------------------------------------------------------

@pytest.fixture
def web(tmp_path, db_url):
    from tracker.web import build_app

    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana", "TRACKER_DB_URL": db_url})
    store = open_store(db_url)
    seed_library(store, load_topic(home / "queries" / "dosing.toml"))
    app, access = build_app(settings, store, host="127.0.0.1", port=8765)
    client = started(TestClient(app, base_url="http://127.0.0.1:8765"))
    assert client.get(f"/?token={access.token}", follow_redirects=False).status_code == 303
    yield client, store
    store.close()


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_the_suggestions_page_shows_the_most_relevant_with_why_and_the_next_ones(web):
    client, store = web
    records = [record["pmid"] for record in listed_store(store)]
    page = client.get("/topics/dosing/suggestions")
    assert page.status_code == 200
    text = page.text
    assert '<h1>Outside your query</h1>' in text
    assert '<p class="progress" role="status">1 of 3 suggestions · 0 added · 0 dismissed</p>' in text
    assert f'<input type="hidden" name="pmid" value="{records[0]}">' in text
    assert f'<input type="hidden" name="next" value="{records[1]}">' in text
    assert '<a href="/papers/1" title="Norepinephrine trial 1">Ngan Kee 2019</a>' in text  # the seed that led to it
    assert '<button type="submit" name="action" value="add" class="include" id="add">Add to topic</button> <kbd>a</kbd>' \
        in text
    assert '<button type="submit" name="action" value="dismiss" class="exclude" id="dismiss">Dismiss</button> ' \
           '<kbd>d</kbd>' in text
    assert re.search(r'<h2 id="upcoming-title">Next suggestions</h2>\n<ol>\n<li><a href="/topics/dosing/suggestions\?pmid='
                     rf'{records[1]}">', text)
    third = client.get(f"/topics/dosing/suggestions?pmid={records[2]}").text
    assert '<p class="progress" role="status">3 of 3 suggestions' in third
    assert f'<a id="newer" href="/topics/dosing/suggestions?pmid={records[1]}">' in third
    assert 'id="older"' not in third
    assert '<a href="/topics/dosing/suggestions">Suggestions beyond the query</a>' in client.get("/topics/dosing").text


def listed_store(store):
    return [suggestion_record(view) for view in list_suggestions(store, TOPIC).items]


def test_add_dismiss_and_undo_on_the_page_are_the_libraries(web):
    client, store = web
    first, second, third = [record["pmid"] for record in listed_store(store)]
    csrf = csrf_of(client.get("/topics/dosing/suggestions").text)
    added = client.post("/topics/dosing/suggestions", data={"csrf": csrf, "pmid": str(first), "action": "add",
                                                             "next": str(second)}, follow_redirects=False)
    assert (added.status_code, added.headers["location"]) == (
        303, f"/topics/dosing/suggestions?pmid={second}&done=add&of={first}")
    page = client.get(added.headers["location"]).text
    assert f'<p class="said" role="status">PMID {first} was added to the topic: it waits in the screening queue.</p>' \
        in page
    assert member_sources(store, "dosing", [first]) == {first: "suggestion"}
    client.post("/topics/dosing/suggestions", data={"csrf": csrf, "pmid": str(second), "action": "dismiss"})
    assert [item.pmid for item in load_suggestions(store, "dosing", statuses=("dismissed",))] == [second]
    assert load_suggestions(store, "dosing", statuses=("dismissed",))[0].decided_by == "ana"
    undone = client.post("/topics/dosing/suggestions/undo", data={"csrf": csrf}, follow_redirects=False)
    assert undone.headers["location"] == f"/topics/dosing/suggestions?pmid={second}&done=undone&of={second}"
    assert sorted(item.pmid for item in load_suggestions(store, "dosing")) == sorted([second, third])
    refused = client.post("/topics/dosing/suggestions", data={"csrf": csrf, "pmid": "1", "action": "add"})
    assert refused.status_code == 400 and "PMID 1 is already in topic &#39;dosing&#39;: nothing to add" in refused.text
    forged = client.post("/topics/dosing/suggestions", data={"pmid": str(third), "action": "dismiss"})
    assert forged.status_code == 403
    assert sorted(item.pmid for item in load_suggestions(store, "dosing")) == sorted([second, third])


def test_the_page_says_what_to_do_when_nothing_is_pending(web):
    client, store = web
    csrf = csrf_of(client.get("/topics/dosing/suggestions").text)
    for record in listed_store(store):
        client.post("/topics/dosing/suggestions", data={"csrf": csrf, "pmid": str(record["pmid"]), "action": "dismiss"})
    page = client.get("/topics/dosing/suggestions").text
    assert '<p class="progress" role="status">No suggestions waiting · 0 added · 3 dismissed</p>' in page
    assert "<code>tracker suggest dosing --refresh</code> asks PubMed now." in page
    assert client.get("/topics/nosuch/suggestions").status_code == 404


def test_the_suggestions_page_and_its_actions_need_a_session(tmp_path):
    from tracker.web import build_app

    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana"})
    store = open_store(settings.database_url)
    try:
        seed_library(store, load_topic(home / "queries" / "dosing.toml"))
        app, _access = build_app(settings, store, host="127.0.0.1", port=8765)
        stranger = started(TestClient(app, base_url="http://127.0.0.1:8765"))
        page = stranger.get("/topics/dosing/suggestions")
        assert page.status_code == 403 and "Vasopressor boluses" not in page.text
        for path, data in (("/topics/dosing/suggestions", {"pmid": "11", "action": "add"}),
                           ("/topics/dosing/suggestions/undo", {})):
            assert stranger.post(path, data=data).status_code == 403
        assert sorted(item.pmid for item in load_suggestions(store, "dosing")) == [11, 12, 13]
    finally:
        store.close()
