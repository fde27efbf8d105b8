"""Topic feeds: an Atom feed per topic beside each digest and in the web app behind a per-person feed token, read back
with feedparser as feed readers read it; ids that never change; the token that opens feeds and nothing else."""

from __future__ import annotations

import re
import warnings
from datetime import date

import pytest

from tests.conftest import cli_env, run_tracker, started, write_topic
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml
from tests.test_store import make_paper
from tracker.ncbi.pubmed import Author
from tracker.settings import Settings
from tracker.store import open_store
from tracker.store.papers import save_papers
from tracker.web import build_app
from tracker.web.accounts import add_user, issue_feed_token, remove_user, revoke_feed_token

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

feedparser = pytest.importorskip("feedparser")

TODAY = date.today()
QUERY = "norepinephrine dosing"
BASE = "http://127.0.0.1:8765"


def record(pmid: int, created: date, **fields) -> FakeRecord:
    return FakeRecord(pmid, article_xml(pmid, created=created, **fields), created, queries=frozenset({QUERY}))


def feed_of(home) -> feedparser.FeedParserDict:
    parsed = feedparser.parse((home / "reports" / "dosing" / "feed.xml").read_bytes())
    assert not parsed.bozo, parsed.bozo_exception
    return parsed


def test_tracker_run_writes_a_feed_beside_each_digest_newest_first_with_ids_that_never_change(tmp_path, fake_eutils):
    home = tmp_path / "home"
    write_topic(home, "dosing", QUERY, since="2020-01-01", max_per_digest="3")
    trial = ("Randomized Controlled Trial",)
    # An abstract that names no design: the trials are the two whose publication types say so (tracker/facts).
    fake_eutils.add(*[record(pmid, date(2023, 1, pmid), publication_types=trial if pmid in (4, 7) else
                             ("Journal Article",), abstract="Norepinephrine doses in the operating room.")
                      for pmid in range(1, 11)])
    env = cli_env(home, fake_eutils.url)
    first = run_tracker("run", env=env)
    assert first.code == 0, first.err
    assert f"  {home / 'reports' / 'dosing' / 'feed.xml'}" in first.out.splitlines()
    baseline = feed_of(home)
    assert baseline.feed.title == "Dosing topic"
    assert baseline.feed.links[0].href.startswith("https://pubmed.ncbi.nlm.nih.gov/?term=norepinephrine")
    # The baseline of 10 papers shows its strongest 3 (the topic's max_per_digest): both trials, then (published the
    # same month) the lowest PMID.
    assert [entry.id for entry in baseline.entries] == [f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
                                                       for pmid in (4, 7, 1)]
    [_, trial_entry, _] = baseline.entries
    assert trial_entry.title == "Norepinephrine versus phenylephrine for spinal hypotension during caesarean delivery."
    assert trial_entry.link == "https://pubmed.ncbi.nlm.nih.gov/7/"
    assert [author.name for author in trial_entry.authors] == ["Smith JA", "Jones B"]
    assert [(tag.term, tag.label) for tag in trial_entry.tags] == [("rct", "Randomized controlled trials")]
    assert trial_entry.summary == ("Randomized controlled trials · Smith JA, Jones B · Anesthesia and analgesia · "
                                   "2024 Mar 5")
    content = trial_entry.content[0].value
    assert "<strong>Randomized controlled trials</strong>" in content and "Anesthesia and analgesia" in content
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/7/"' in content

    fake_eutils.add(*[record(pmid, TODAY) for pmid in (21, 22)])
    second = run_tracker("run", env=env)
    assert second.code == 0, second.err
    news = feed_of(home)
    assert [entry.id for entry in news.entries] == [f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
                                                   for pmid in (21, 22, 4, 7, 1)]
    # A feed entry carries the digest card's line of study facts: these say "randomised trial" and name no design in
    # their publication types, so their tier is read from the abstract, and marked so.
    assert ('<p class="study-facts">Randomised trial · caesarean · norepinephrine vs phenylephrine <span '
            'class="tier-mark">tier from the abstract</span></p>') in news.entries[0].content[0].value
    # A reader never sees an entry twice: the same paper keeps its id and its date on every run.
    before = {entry.id: entry.updated for entry in baseline.entries}
    assert {entry.id: entry.updated for entry in news.entries if entry.id in before} == before
    assert news.feed.updated == news.entries[0].updated
    unchanged = (home / "reports" / "dosing" / "feed.xml").read_bytes()
    assert run_tracker("digest", "dosing", env=env).code == 0
    assert (home / "reports" / "dosing" / "feed.xml").read_bytes() == unchanged  # nothing new: the same bytes


def test_tracker_schedule_run_now_writes_the_digest_and_feed_as_tracker_run_does(tmp_path, fake_eutils):
    home = tmp_path / "home"
    write_topic(home, "dosing", QUERY, since="2020-01-01")
    fake_eutils.add(*[record(pmid, date(2023, 1, pmid)) for pmid in range(1, 4)])
    result = run_tracker("schedule", "--run-now", "dosing", env=cli_env(home, fake_eutils.url, TRACKER_TZ="UTC"))
    assert result.code == 0, result.err
    day = TODAY.isoformat()
    folder = home / "reports" / "dosing"
    lines = result.out.splitlines()
    assert lines[0].startswith("dosing: 3 new, 3 matched, ")
    assert lines[1:] == [f"digest and feed written to {home / 'reports'}:",
                         *(f"  {folder / name}" for name in (f"{day}.md", f"{day}.html", "feed.xml"))]
    assert "Baseline: 3 papers matched since 2020 are now stored" in (folder / f"{day}.md").read_text()
    assert len(feed_of(home).entries) == 3


def test_hostile_record_text_stays_text_in_the_feed(store, tmp_path):
    from tracker.outputs.feeds import render_feed
    from tracker.topics import Topic

    hostile = 'Bold\x1b[1m <script>alert("x")</script> & <b>MAP</b>\x07'
    save_papers(store, [make_paper(5, title=hostile, journal="<svg onload=alert(1)>",
                                   authors=(Author("<img src=x>", "A", "A"),))], topic="dosing")
    parsed = feedparser.parse(render_feed(store, Topic(slug="dosing", title="Dosing <i>", query="a & b")))
    assert not parsed.bozo, parsed.bozo_exception
    [entry] = parsed.entries
    assert entry.title == 'Bold [1m <script>alert("x")</script> & <b>MAP</b>'  # as text, not markup
    assert parsed.feed.title == "Dosing <i>"
    assert "<svg" not in entry.content[0].value and "&lt;svg onload=alert(1)&gt;" in entry.content[0].value


def test_an_excluded_paper_leaves_the_feed(store):
    from tracker.outputs.feeds import feed_entries
    from tracker.review.screening import decide
    from tracker.topics import Topic

    topic = Topic(slug="dosing", title="Dosing", query="q")
    save_papers(store, [make_paper(1), make_paper(2)], topic="dosing")
    decide(store, topic, [2], "exclude", reviewer="ana", reasons=["wrong population"])
    assert [entry.paper.pmid for entry in feed_entries(store, topic)] == [1]


# -- the web app and the feed token ----------------------------------------------------------------------------------

@pytest.fixture
def library(tmp_path, db_url):
    home = tmp_path / "home"
    write_topic(home, "dosing", QUERY)
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana", "TRACKER_DB_URL": db_url})
    store = open_store(db_url)
    save_papers(store, [make_paper(1), make_paper(2)], topic="dosing")
    yield settings, store
    store.close()


PAGES = ("/", "/topics/dosing", "/topics/dosing/export.csv", "/topics/dosing/screen", "/papers/1", "/search?q=trial",
         "/runs", "/query", "/users", "/topics/dosing/prisma")
REFUSED = ("This feed address's token is not valid (revoked, replaced by a newer one, or mistyped): ask for a new "
           "address with 'tracker users feed-token'.")


def test_a_feed_token_reads_feeds_and_nothing_else_in_team_mode(library):
    settings, store = library
    add_user(store, "ana", "ana-password-1")
    add_user(store, "bo", "bo-password-22")
    token = issue_feed_token(store, "ana")
    app, _ = build_app(settings, store, host="127.0.0.1", port=8765)
    reader = started(TestClient(app, base_url=BASE))
    answer = reader.get(f"/topics/dosing/feed.xml?token={token}")
    assert (answer.status_code, answer.headers["content-type"]) == (200, "application/atom+xml; charset=utf-8")
    parsed = feedparser.parse(answer.content)
    assert not parsed.bozo and [entry.id for entry in parsed.entries] == [  # stored together: strongest, lower PMID
        "https://pubmed.ncbi.nlm.nih.gov/1/", "https://pubmed.ncbi.nlm.nih.gov/2/"]
    assert [(link.rel, link.href) for link in parsed.feed.links] == [
        ("self", f"{BASE}/topics/dosing/feed.xml"), ("alternate", f"{BASE}/topics/dosing")]  # the token stays out
    assert reader.head(f"/topics/dosing/feed.xml?token={token}").status_code == 200
    for page in PAGES:  # the token opens no page: each asks for a login, as without it
        sep = "&" if "?" in page else "?"
        response = reader.get(f"{page}{sep}token={token}", follow_redirects=False)
        assert (response.status_code, response.headers.get("location", "")[:7]) == (303, "/login?"), page
    assert reader.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"
    posted = reader.post(f"/topics/dosing/feed.xml?token={token}")
    assert (posted.status_code, posted.text) == (403, REFUSED)
    for bad in ("", "?token=", "?token=not-a-token", f"?token={token}x"):
        response = reader.get(f"/topics/dosing/feed.xml{bad}")
        assert (response.status_code, response.text) == (403, REFUSED), bad
    missing = reader.get(f"/topics/nosuch/feed.xml?token={token}")
    assert (missing.status_code, missing.text) == (404, "There is no such topic: its feed address may be out of date.")

    newer = issue_feed_token(store, "ana")  # a new token replaces the old one
    assert reader.get(f"/topics/dosing/feed.xml?token={token}").status_code == 403
    assert reader.get(f"/topics/dosing/feed.xml?token={newer}").status_code == 200
    assert revoke_feed_token(store, "ana") is True
    assert reader.get(f"/topics/dosing/feed.xml?token={newer}").text == REFUSED
    bos = issue_feed_token(store, "bo")
    remove_user(store, "bo")
    assert reader.get(f"/topics/dosing/feed.xml?token={bos}").status_code == 403


def test_a_feed_token_reads_feeds_and_nothing_else_in_personal_mode(library):
    settings, store = library
    token = issue_feed_token(store, None)
    app, access = build_app(settings, store, host="127.0.0.1", port=8765)
    reader = started(TestClient(app, base_url=BASE))
    assert reader.get(f"/topics/dosing/feed.xml?token={token}").status_code == 200
    # Never taken for the start's sign-in token, and never a session.
    exchanged = reader.get(f"/?token={token}", follow_redirects=False)
    assert exchanged.status_code == 403 and "tracker_session" not in exchanged.cookies
    assert reader.get("/topics/dosing", follow_redirects=False).status_code == 403
    signed_in = started(TestClient(app, base_url=BASE))
    assert signed_in.get(f"/?token={access.token}", follow_redirects=False).status_code == 303
    assert signed_in.get("/topics/dosing/feed.xml").status_code == 200  # a signed-in browser reads it too
    add_user(store, "ana", "ana-password-1")  # accounts now: personal mode's token is nobody's
    team, _ = build_app(settings, store, host="127.0.0.1", port=8765)
    assert started(TestClient(team, base_url=BASE)).get(f"/topics/dosing/feed.xml?token={token}").status_code == 403


def test_tracker_users_feed_token_prints_the_addresses_and_revokes(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", QUERY)
    write_topic(home, "elderly", "norepinephrine elderly")
    (home / "tracker.toml").write_text('[web]\npublic_url = "https://tracker.hospital.org"\n', encoding="utf-8")
    env = cli_env(home, None)
    made = run_tracker("users", "feed-token", env=env)
    assert (made.code, made.err) == (0, "")
    token = re.search(r"token=([\w-]+)", made.out).group(1)
    assert made.out == ("your topic feeds (the token replaces any earlier one; keep the addresses private, they need "
                        "no login):\n"
                        f"  dosing: https://tracker.hospital.org/topics/dosing/feed.xml?token={token}\n"
                        f"  elderly: https://tracker.hospital.org/topics/elderly/feed.xml?token={token}\n")
    named = run_tracker("users", "feed-token", "ana", env=env)
    assert (named.code, named.err) == (2, "error: no user 'ana': there are no accounts: leave the name out for your "
                                          "own feed token\n")
    revoked = run_tracker("users", "feed-token", "--revoke", env=env)
    assert (revoked.code, revoked.out) == (0, "revoked your feed token: its feed addresses no longer work\n")
    again = run_tracker("users", "feed-token", "--revoke", env=env)
    assert (again.code, again.err) == (2, "error: personal mode has no feed token: nothing to revoke\n")

    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}")
    add_user(store, "ana", "ana-password-1")
    store.close()
    nameless = run_tracker("users", "feed-token", env=env)
    assert (nameless.code, nameless.err) == (2, "error: tracker serve asks everyone to log in, so feed tokens belong "
                                                "to accounts: give the account's name ('tracker users list' lists "
                                                "them)\n")
    ana = run_tracker("users", "feed-token", "ana", env=env)
    assert ana.code == 0 and ana.out.startswith("ana's topic feeds (the token replaces any earlier one;")
    (home / "tracker.toml").unlink()
    local = run_tracker("users", "feed-token", "ana", env=env)
    assert "  dosing: http://127.0.0.1:8765/topics/dosing/feed.xml?token=" in local.out
    assert local.err == ("note: these addresses are tracker serve's on this machine (http://127.0.0.1:8765/); for "
                         "colleagues, set [web] public_url in tracker.toml to the address they open the web app at, "
                         "and run this again\n")
