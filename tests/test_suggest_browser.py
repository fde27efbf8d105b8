"""The Suggestions page in Debian's headless Chromium (Playwright, as tests/test_web_browser.py drives the screening
page): a reviewer adds and dismisses suggestions with the keyboard, undoes a dismissal, and the CLI sees it all."""

from __future__ import annotations

import pytest

from tests.conftest import cli_env, run_tracker, write_topic
from tests.test_suggest_faces import seed_library
from tests.test_web_browser import CHROMIUM, browser, served, shot, sync_playwright  # noqa: F401  (browser: a fixture)
from tracker.runs.suggest import list_suggestions
from tracker.settings import Settings
from tracker.store import open_store
from tracker.store.membership import member_sources
from tracker.store.suggestions import load_suggestions
from tracker.topics import load_topic

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install -e '.[test]')"),
]


@pytest.fixture
def library(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana"})
    store = open_store(settings.database_url)
    seed_library(store, load_topic(home / "queries" / "dosing.toml"))
    yield settings, store
    store.close()


def test_a_reviewer_adds_and_dismisses_suggestions_with_the_keyboard(library, browser):  # noqa: F811
    from playwright.sync_api import expect

    settings, store = library
    topic = load_topic(settings.queries_dir / "dosing.toml")
    first, second, third = [view.pmid for view in list_suggestions(store, topic).items]
    with served(settings, store) as (url, access):
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{url}/?token={access.token}")
        page.get_by_role("link", name="Dosing topic").click()
        page.get_by_role("link", name="Suggestions beyond the query").click()
        progress = page.locator(".progress")
        expect(progress).to_have_text("1 of 3 suggestions · 0 added · 0 dismissed")
        expect(page.get_by_role("button", name="Add to topic", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Dismiss", exact=True)).to_be_visible()
        expect(page.get_by_role("heading", name="Why the query missed them")).to_have_count(0)
        shot(page, "suggestions")
        page.keyboard.press("a")
        expect(page.locator(".said")).to_have_text(f"PMID {first} was added to the topic: it waits in the screening "
                                                   "queue.")
        expect(progress).to_have_text("1 of 2 suggestions · 1 added · 0 dismissed")
        expect(page.locator("input[name=pmid]")).to_have_value(str(second))
        page.keyboard.press("j")
        expect(page.locator("input[name=pmid]")).to_have_value(str(third))
        page.keyboard.press("k")
        expect(page.locator("input[name=pmid]")).to_have_value(str(second))
        page.keyboard.press("d")
        expect(progress).to_have_text("1 of 1 suggestions · 1 added · 1 dismissed")
        page.keyboard.press("u")
        expect(page.locator(".said")).to_have_text(f"PMID {second} is suggested again.")
        expect(progress).to_have_text("1 of 2 suggestions · 1 added · 0 dismissed")
        page.keyboard.press("d")
        expect(progress).to_have_text("1 of 1 suggestions · 1 added · 1 dismissed")
        page.keyboard.press("d")
        expect(progress).to_have_text("No suggestions waiting · 1 added · 2 dismissed")
    assert member_sources(store, "dosing", [first, second, third]) == {first: "suggestion"}
    assert sorted(item.pmid for item in load_suggestions(store, "dosing", statuses=("dismissed",))) == sorted(
        [second, third])
    listed = run_tracker("suggest", "dosing", "--status", "added", "--format", "csv",
                         env=cli_env(settings.home, None, TRACKER_DB_URL=settings.database_url))
    assert [line.split(",")[0] for line in listed.out.splitlines()[1:]] == [str(first)]
