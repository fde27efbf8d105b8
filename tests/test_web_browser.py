"""The web app end to end in a real headless browser: Debian's Chromium driven by Playwright's Python package
(given the browser's path: Playwright downloads nothing), against the app served by uvicorn on a free
loopback port, or by a real `tracker serve` process.

Set TRACKER_SCREENSHOTS to a folder to keep a screenshot of each main page (the README's come from here).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_tracker, write_topic
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml
from tests.test_store import make_paper
from tracker.ncbi.pubmed import AbstractSection
from tracker.settings import Settings
from tracker.store import open_store
from tracker.store.models import Run
from tracker.store.papers import save_papers

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - CI installs it with the test extra
    sync_playwright = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install -e '.[test]')"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def shot(page, name: str) -> None:
    folder = os.environ.get("TRACKER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)


ABSTRACT = (
    AbstractSection("BACKGROUND", "BACKGROUND", "Spinal anaesthesia for caesarean delivery often causes hypotension; "
                    "norepinephrine may keep the heart rate better than phenylephrine."),
    AbstractSection("METHODS", "METHODS", "Parturients were randomised to prophylactic norepinephrine or "
                    "phenylephrine infusions titrated to systolic pressure."),
    AbstractSection("RESULTS", "RESULTS", "Bradycardia was less frequent with norepinephrine; cardiac output was "
                    "higher; neonatal outcomes did not differ."),
    AbstractSection("CONCLUSIONS", "CONCLUSIONS", "Norepinephrine is a suitable alternative for spinal hypotension."),
)
TITLES = [
    "Norepinephrine versus phenylephrine for spinal hypotension during caesarean delivery",
    "Prophylactic norepinephrine infusion and maternal heart rate: a randomised trial",
    "Intermittent boluses of norepinephrine after spinal anaesthesia: dose finding",
    "Vasopressors in obstetric anaesthesia: a systematic review and meta-analysis",
    "Norepinephrine in preeclampsia: a case report",
    "Phenylephrine, norepinephrine and fetal acid-base status",
    "Practice guideline on hypotension during caesarean delivery",
]
TYPES = [("Randomized Controlled Trial",), ("Randomized Controlled Trial",), ("Clinical Trial, Phase II",),
         ("Meta-Analysis", "Systematic Review"), ("Case Reports",), ("Comparative Study",), ("Practice Guideline",)]


def received(days_ago: int) -> tuple[tuple[str, str], ...]:
    """A PubMed history with its create date [crdt] `days_ago` days back (entrez the same day: no late arrival)."""
    day = (date.today() - timedelta(days=days_ago)).isoformat()
    return (("pubmed", f"{day}T06:00"), ("entrez", f"{day}T06:00"))


@pytest.fixture
def library(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "cesarean", "norepinephrine cesarean")
    (home / "queries" / "cesarean.toml").write_text(
        'title = "Norepinephrine at caesarean delivery"\nquery = "norepinephrine AND cesarean"\n', encoding="utf-8")
    write_topic(home, "dosing", "norepinephrine dosing")
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana"})
    store = open_store(settings.database_url)
    save_papers(store, [make_paper(31000000 + index, title=title, history=received(index * 50),
                                   abstract_sections=ABSTRACT, pub_date=date(2019 + index % 6, 1 + index, 1),
                                   publication_types=TYPES[index])
                        for index, title in enumerate(TITLES)], topic="cesarean")
    # A topic with a few years of papers, so that the Topics page's chart has bars to show.
    save_papers(store, [make_paper(32000000 + index, history=received((index * 37) % 700)) for index in range(60)],
                topic="dosing")
    for slug, found in (("cesarean", 7), ("dosing", 60)):
        with store.session() as session:
            started = datetime.now(timezone.utc) - timedelta(minutes=5)
            session.add(Run(topic=slug, kind="backfill", status="succeeded", started_at=started,
                            finished_at=started + timedelta(seconds=4), count=found, total_count=found, matched=found,
                            new_papers=found, fetched=found, requests=3))
            session.commit()
    yield settings, store
    store.close()


@contextmanager
def served(settings, store):
    """The app (build_app: team or personal as the store says) served by uvicorn on a free port."""
    import uvicorn

    from tracker.web import build_app

    port = free_port()
    app, access = build_app(settings, store, host="127.0.0.1", port=port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", access
    finally:
        server.should_exit = True
        thread.join(10)


def log_in(page, url: str, name: str, password: str) -> None:
    page.goto(url + "/")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Topics")).to_be_visible()


def test_a_reviewer_screens_five_papers_with_the_keyboard(library, browser):
    from tracker.web.accounts import add_user

    settings, store = library
    add_user(store, "bo", "bo-password-22")
    add_user(store, "chief", "chief-password-3", admin=True)
    with served(settings, store) as (url, _):
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        console = []  # every console error or warning of the whole flow: a CSP violation is one
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}")
                if message.type in ("error", "warning") else None)
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        log_in(page, url, "bo", "bo-password-22")
        shot(page, "topics")
        page.get_by_role("link", name="Norepinephrine at caesarean delivery").click()
        expect(page.get_by_role("heading", name="Norepinephrine at caesarean delivery")).to_be_visible()
        shot(page, "topic")
        page.get_by_role("link", name="Screen", exact=True).click()
        progress = page.locator(".progress")
        expect(progress).to_have_text("0 of 7 screened")
        expect(page.get_by_role("button", name="Include", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Exclude", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Maybe", exact=True)).to_be_visible()
        shot(page, "screen")
        for done, keys in enumerate(["i", "1 e", "m", "i", "2 3 e"], start=1):
            for key in keys.split():
                page.keyboard.press(key)
            expect(progress).to_have_text(f"{done} of 7 screened")
        page.keyboard.press("k")  # back to the paper before: the last one decided
        expect(page.locator("input[name=pmid]")).to_have_value("31000002")
        page.reload()
        expect(progress).to_have_text("5 of 7 screened")
        expect(page.locator(".decide strong")).to_have_text("exclude")
        page.keyboard.press("/")
        expect(page.locator("#find")).to_be_focused()
        page.goto(url + "/papers/31000005")
        expect(page.get_by_text("bo exclude (wrong population)")).to_be_visible()
        shot(page, "paper")
        page.goto(url + "/topics/cesarean/prisma")
        shot(page, "prisma")
        assert console == []
    env = cli_env(settings.home, None, TRACKER_DB_URL=settings.database_url)
    result = run_tracker("export", "cesarean", "--state", "included", env=env)
    assert result.code == 0, result.err
    assert [line.split(",")[0] for line in result.out.splitlines()[1:]] == ["31000006", "31000003"]
    result = run_tracker("screen", "list", "cesarean", "--state", "excluded", "--format", "csv", env=env)
    assert [line.split(",")[0] for line in result.out.splitlines()[1:]] == ["31000005", "31000002"]
    assert "bo: exclude (wrong intervention, wrong comparator)" in result.out


def test_the_query_page_against_the_fake_server_and_save_as_topic(library, browser, fake_eutils):
    from dataclasses import replace

    from tracker.topics import load_topic
    from tracker.web.accounts import add_user

    settings, store = library
    created = date.today() - timedelta(days=2)
    fake_eutils.add(*[FakeRecord(pmid=pmid, created=created, queries={"norepinephrine bolus"},
                                 xml=article_xml(pmid, created=created, title=f"Norepinephrine bolus study {pmid}"))
                      for pmid in (41, 42, 43)])
    settings = replace(settings, eutils_url=fake_eutils.url, email="library@tracker.test", requests_per_second=1000.0,
                       backoff_initial=0.01, backoff_max=0.02, max_attempts=2, timeout=5.0)
    add_user(store, "chief", "chief-password-3", admin=True)
    with served(settings, store) as (url, _):
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        log_in(page, url, "chief", "chief-password-3")
        page.get_by_role("link", name="Query").click()
        page.get_by_label("PubMed query").fill("norepinephrine bolus")
        page.get_by_role("button", name="Run query").click()
        expect(page.get_by_role("heading", name="The newest 3 of 3 matches")).to_be_visible()
        expect(page.get_by_role("link", name="Norepinephrine bolus study 43")).to_be_visible()
        page.get_by_label("Title").fill("Norepinephrine boluses")
        page.get_by_label("File name").fill("bolus")
        shot(page, "query")
        page.get_by_role("button", name="Save as topic").click()
        expect(page.get_by_text("Saved as queries/bolus.toml")).to_be_visible()
    topic = load_topic(settings.queries_dir / "bolus.toml")
    assert (topic.slug, topic.title, topic.query) == ("bolus", "Norepinephrine boluses", "norepinephrine bolus")


def test_personal_mode_prints_a_token_url_that_signs_the_browser_in(library, browser):
    settings, _ = library
    port = free_port()
    env = cli_env(settings.home, None, TRACKER_DB_URL=settings.database_url, TRACKER_REVIEWER="ana")
    server = subprocess.Popen([sys.executable, "-m", "tracker", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=settings.home)
    try:
        line = server.stdout.readline().strip()
        assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/\?token=[\w-]{{32}}", line), line
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        page = browser.new_page()
        page.goto(line)
        assert page.url == f"http://127.0.0.1:{port}/"
        expect(page.get_by_role("heading", name="Topics")).to_be_visible()
        expect(page.locator(".who span")).to_have_text("ana (admin)")
        stranger = browser.new_context().new_page()
        response = stranger.goto(f"http://127.0.0.1:{port}/")
        assert response.status == 403
        assert "open the address (with its token)" in stranger.content()
    finally:
        server.terminate()
        server.wait(10)


def test_keys_walk_back_and_forth_a_conflict_is_settled_and_prisma_shows_the_agreement(library, browser):
    """k walks back through the papers decided in this session and j forward again to the queue; two blind reviewers
    disagree, the admin settles it on the Conflicts page, and the PRISMA page shows their agreement."""
    from tracker.review.screening import decide
    from tracker.topics import load_topic
    from tracker.web.accounts import add_user

    settings, store = library
    (settings.queries_dir / "cesarean.toml").write_text(
        'title = "Norepinephrine at caesarean delivery"\nquery = "norepinephrine AND cesarean"\n'
        'screening = { reviewers = ["bo", "cy"], blind = true }\n'
        'highlight = { include = ["randomised"], exclude = ["case report"] }\n', encoding="utf-8")
    topic = load_topic(settings.queries_dir / "cesarean.toml")
    add_user(store, "bo", "bo-password-22")
    add_user(store, "cy", "cy-password-33")
    add_user(store, "chief", "chief-password-3", admin=True)
    decide(store, topic, [31000006, 31000005, 31000004], "include", reviewer="cy")
    errors: list[str] = []
    with served(settings, store) as (url, _):
        page = browser.new_page(viewport={"width": 1366, "height": 860})
        page.on("console", lambda message: errors.append(f"{message.text} {message.location}")
                if message.type == "error" else None)
        log_in(page, url, "bo", "bo-password-22")
        page.goto(url + "/topics/cesarean/screen")
        progress = page.locator(".progress")
        expect(page.locator("input[name=pmid]")).to_have_value("31000006")
        expect(page.locator("article mark.for").first).to_have_text("norepinephrine", ignore_case=True)
        page.keyboard.press("i")
        expect(progress).to_have_text("1 of 7 screened")
        page.keyboard.press("e")
        expect(progress).to_have_text("2 of 7 screened")
        page.keyboard.press("i")
        expect(progress).to_have_text("3 of 7 screened")
        expect(page.locator("input[name=pmid]")).to_have_value("31000003")
        page.keyboard.press("k")
        expect(page.locator("input[name=pmid]")).to_have_value("31000004")
        page.keyboard.press("k")
        expect(page.locator("input[name=pmid]")).to_have_value("31000005")
        expect(page.locator(".decide strong").first).to_have_text("exclude")
        page.keyboard.press("j")
        expect(page.locator("input[name=pmid]")).to_have_value("31000004")
        page.keyboard.press("j")
        expect(page.locator("input[name=pmid]")).to_have_value("31000003")
        page.keyboard.press("h")
        expect(page.get_by_role("button", name="Highlighting off")).to_have_attribute("aria-pressed", "false")
        page.keyboard.press("u")  # cy decided 31000004 too, but bo's last decision is on ...04: refused, kept blind
        expect(page.locator(".said")).to_contain_text("stays: the other reviewer has decided it too")
        admin = browser.new_context(viewport={"width": 1366, "height": 860}).new_page()
        log_in(admin, url, "chief", "chief-password-3")
        admin.goto(url + "/topics/cesarean/conflicts")
        conflict = admin.get_by_role("region", name=re.compile("Phenylephrine, norepinephrine and fetal"))
        expect(conflict).to_contain_text("bo: exclude")
        expect(conflict).to_contain_text("cy: include")
        conflict.get_by_role("button", name="Include").click()
        expect(admin.locator(".said")).to_have_text("PMID 31000005 settled.")
        expect(admin.get_by_text("No conflict to settle by title and abstract.")).to_be_visible()
        admin.goto(url + "/topics/cesarean/prisma")
        expect(admin.locator(".kappa")).to_have_text(
            "Agreement 66.7 % over 3 papers both decided; Cohen's kappa 0.00; 1 conflict settled.")
        shot(admin, "conflicts")
    assert errors == []


def test_the_layout_holds_on_a_1366_pixel_laptop_screen(library, browser):
    """The screening buttons stay on one row and the topic page's dates on one line, at the most common laptop width."""
    from tracker.web.accounts import add_user

    settings, store = library
    add_user(store, "bo", "bo-password-22")
    with served(settings, store) as (url, _):
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        log_in(page, url, "bo", "bo-password-22")
        page.goto(url + "/topics/cesarean/screen")
        boxes = [page.get_by_role("button", name=name, exact=True).bounding_box()
                 for name in ("Include", "Exclude", "Maybe")]
        assert len({round(box["y"]) for box in boxes}) == 1, boxes  # one row: Maybe does not wrap below
        assert len({round(box["height"]) for box in boxes}) == 1, boxes  # and no label wraps inside its button
        page.goto(url + "/topics/cesarean")
        lines = page.evaluate("""Array.from(document.querySelectorAll('table.papers tbody td:last-child'))
            .map(cell => { const range = document.createRange(); range.selectNodeContents(cell);
                           return range.getClientRects().length; })""")
        assert lines == [1] * 7, lines  # each First seen date is one line of text


def test_a_decision_the_database_is_too_busy_for_is_said_on_the_page_with_the_note_kept(library, browser):
    from dataclasses import replace

    from tracker.store.decisions import decision_history

    settings, store = library
    with served(replace(settings, web_time_limit=0.5), store) as (url, access):
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{url}/topics/cesarean/screen?token={access.token}")
        progress = page.locator(".progress")
        expect(progress).to_have_text("0 of 7 screened")
        pmid = page.locator("input[name=pmid]").input_value()
        page.get_by_label("Note").fill("adults only")
        page.keyboard.press("Escape")
        other = open_store(settings.database_url)  # another program writing: an import, say
        writer = other.engine.connect()
        writer.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            page.keyboard.press("1")
            page.keyboard.press("e")
            alert = page.get_by_role("alert")
            expect(alert).to_have_text("The database is busy: another program (an import, a run or a migration) kept "
                                       "it locked for 0.5 seconds. Nothing was changed: try again in a moment.")
            expect(page.get_by_label("Note")).to_have_value("adults only")
            assert decision_history(store, int(pmid)) == []
        finally:
            writer.rollback()
            writer.close()
            other.close()
        page.get_by_role("button", name="Send it again").click()
        expect(progress).to_have_text("1 of 7 screened")
    [saved] = decision_history(store, int(pmid))
    assert (saved.decision, saved.reasons, saved.note) == ("exclude", ("wrong population",), "adults only")
