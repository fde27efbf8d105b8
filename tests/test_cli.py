"""End to end: the real `tracker` command in a subprocess against the fake E-utilities server."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone

from tests.conftest import cli_env, run_tracker, write_topic
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml

TODAY = date.today()


def add_records(server, pmids, *, query=None, created=None):
    created = created or TODAY - timedelta(days=30)
    queries = None if query is None else {query} if isinstance(query, str) else set(query)
    server.add(*[FakeRecord(pmid=p, xml=article_xml(p, created=created), created=created, queries=queries)
                 for p in pmids])


def stored(home) -> dict[str, set[int]]:
    with sqlite3.connect(home / "db" / "tracker.sqlite3") as connection:
        rows = connection.execute("SELECT topic, pmid FROM topic_paper").fetchall()
    topics: dict[str, set[int]] = {}
    for topic, pmid in rows:
        topics.setdefault(topic, set()).add(pmid)
    return topics


def test_init_creates_a_home_with_the_default_topics(tmp_path):
    target = tmp_path / "library"
    result = run_tracker("init", str(target), env=cli_env(tmp_path, None))
    assert result.code == 0, result.err
    assert sorted(p.stem for p in (target / "queries").glob("*.toml")) == [
        "cardiac-surgery", "cesarean", "dosing", "elderly", "hepatorenal", "pediatric", "prophylactic", "sepsis",
        "vasopressor-comparison"]
    assert (target / "db").is_dir() and (target / "reports").is_dir()
    (target / "queries" / "dosing.toml").write_text('title = "Mine"\nquery = "my own query"\n')
    again = run_tracker("init", str(target), env=cli_env(tmp_path, None))
    assert again.code == 0 and f"kept {target / 'queries' / 'dosing.toml'} (already there)" in again.out
    assert (target / "queries" / "dosing.toml").read_text() == 'title = "Mine"\nquery = "my own query"\n'
    topics = run_tracker("topics", env=cli_env(target, None))
    assert topics.code == 0 and "never" in topics.out


def test_fetch_then_fetch_again(home, fake_eutils):
    add_records(fake_eutils, range(1, 50), query="norepinephrine dosing")
    add_records(fake_eutils, range(50, 61), query=["norepinephrine dosing", "norepinephrine elderly"])
    add_records(fake_eutils, range(61, 81), query="norepinephrine elderly")
    env = cli_env(home, fake_eutils.url)
    first = run_tracker("fetch", env=env)
    assert first.code == 0, first.err
    lines = first.out.splitlines()
    # esearch, efetch, and the esearch of the query's total Count (tracker/runs/watch.py).
    assert lines[0].startswith("dosing: 60 new, 60 matched, 3 requests, ")
    assert lines[0].endswith(" s (backfill from 2020-01-01)")
    assert lines[1].startswith("elderly: 31 new, 31 matched, 3 requests, ")
    assert stored(home) == {"dosing": set(range(1, 61)), "elderly": set(range(50, 81))}
    # Papers 50-60 were already stored by 'dosing': 'elderly' fetched only the other 20.
    fetched = [r.params["id"].split(",") for r in fake_eutils.requests if r.endpoint == "efetch"]
    assert sorted(int(p) for p in fetched[1]) == list(range(61, 81))
    assert all(r.params["tool"] == "tracker" and r.params["email"] == "library@tracker.test"
               for r in fake_eutils.requests)

    add_records(fake_eutils, [90], query="norepinephrine dosing", created=TODAY)
    second = run_tracker("fetch", "dosing", env=env)
    assert second.code == 0, second.err
    # One more esearch for the records modified since the first run (none are stored, so no efetch).
    assert second.out.startswith("dosing: 1 new, 1 matched, 4 requests, ")

    topics = run_tracker("topics", env=env)
    assert topics.code == 0
    [dosing_line] = [line for line in topics.out.splitlines() if line.startswith("dosing ")]
    assert dosing_line.split()[:6] == ["dosing", "Dosing", "topic", "61", "1", TODAY.isoformat()]
    assert dosing_line.endswith("succeeded")

    status = run_tracker("status", env=env)
    assert status.code == 0 and status.out.count("succeeded") == 3


def test_one_failing_topic_exits_1_and_the_others_still_run(home, fake_eutils):
    add_records(fake_eutils, range(1, 11))
    fake_eutils.inject("500", endpoint="esearch", times=3)  # every attempt of the first topic
    result = run_tracker("fetch", env=cli_env(home, fake_eutils.url))
    assert result.code == 1
    assert "dosing: FAILED after 3 requests" in result.out
    assert "dosing: FAILED after 3 requests, " in result.out and "s: esearch failed after 3 attempts: HTTP 500" in result.out
    assert result.out.splitlines()[1].startswith("elderly: 10 new")
    assert result.err.strip().splitlines()[-1] == (
        "error: 1 of 2 topics failed (dosing); what they stored is kept, and their next run searches the same dates "
        "again: run 'tracker fetch' again later")
    assert len(result.err.strip().splitlines()) == 1  # the failure is said once, on its topic's line
    assert "Traceback" not in result.err
    retry = run_tracker("fetch", "dosing", env=cli_env(home, fake_eutils.url))
    assert retry.code == 0 and retry.out.startswith("dosing: 10 new")
    assert stored(home) == {"dosing": set(range(1, 11)), "elderly": set(range(1, 11))}


def test_retries_are_reported_and_succeed(home, fake_eutils):
    add_records(fake_eutils, range(1, 6))
    fake_eutils.inject("429", endpoint="efetch")
    fake_eutils.inject("truncated", endpoint="efetch")
    result = run_tracker("fetch", "dosing", "--verbose", env=cli_env(home, fake_eutils.url))
    assert result.code == 0, result.err
    assert "attempt 1 failed (rate limited by NCBI (HTTP 429)); retrying" in result.err
    assert stored(home) == {"dosing": {1, 2, 3, 4, 5}}


def test_attempt_lines_are_shown_only_with_verbose(home, fake_eutils):
    add_records(fake_eutils, range(1, 6))
    fake_eutils.inject("429", endpoint="efetch")
    fake_eutils.inject("500", endpoint="esearch")
    result = run_tracker("fetch", "dosing", env=cli_env(home, fake_eutils.url))
    assert (result.code, result.err) == (0, "")
    assert result.out.startswith("dosing: 5 new, 5 matched, 5 requests, ")  # both retries happened, unsaid
    assert [r.fault for r in fake_eutils.requests if r.fault] == ["500", "429"]


def test_usage_and_configuration_errors_are_one_line_exit_2(home, fake_eutils):
    env = cli_env(home, fake_eutils.url)
    cases = [
        (["fetch", "nosuch"], "error: unknown topic 'nosuch'; known topics: dosing, elderly"),
        (["fetch", "--since", "yesterday"],
         "error: Invalid value for '--since': invalid date 'yesterday': use YYYY-MM-DD, for example 2024-01-31 "
         "(see 'tracker fetch --help')"),
        (["fetch", "--bogus"], "error: No such option '--bogus'. Did you mean '--verbose'? (see 'tracker fetch --help')"),
        (["status", "--limit", "0"],
         "error: Invalid value for '--limit': 0 is not in the range x>=1. (see 'tracker status --help')"),
        (["status", "--limit", "99999999999999999999"],
         "error: Invalid value for '--limit': 99999999999999999999 is too large: give at most 2,147,483,647 (see "
         "'tracker status --help')"),
        (["search", "norepinephrine", "--limit", "\u0661\u0662"],
         "error: Invalid value for '--limit': '\u0661\u0662' is not a whole number: write it in the digits 0-9 (see "
         "'tracker search --help')"),
        (["screen", "set", "dosing", "\u00b2", "--include"],
         "error: Invalid value for 'PMID...': '\u00b2' is not a PMID (a whole number from 1 to 2,147,483,647, such as "
         "31415926) (see 'tracker screen set --help')"),
        (["screen", "set", "dosing", "2147483648", "--include"],
         "error: Invalid value for 'PMID...': '2147483648' is not a PMID (a whole number from 1 to 2,147,483,647, such "
         "as 31415926) (see 'tracker screen set --help')"),
        (["serve", "--port", "\u0668\u0660"],
         "error: Invalid value for '--port': '\u0668\u0660' is not a whole number: write it in the digits 0-9 (see "
         "'tracker serve --help')"),
    ]
    for args, message in cases:
        result = run_tracker(*args, env=env)
        assert (result.code, result.err.strip()) == (2, message), args
    write_topic(home, "broken", "")
    result = run_tracker("fetch", "broken", env=env)  # asked for by name: its error, and nothing runs
    assert (result.code, result.err.strip()) == (
        2, "error: broken.toml: key 'query' is missing or empty; give the PubMed query to track")
    assert not (home / "db" / "tracker.sqlite3").exists()
    bad_url = run_tracker("topics", env={**env, "TRACKER_EUTILS_URL": "ftp://example.org"})
    assert bad_url.code == 2 and bad_url.err.strip().startswith("error: TRACKER_EUTILS_URL='ftp://example.org' is not")


def test_unreachable_eutils_fails_the_topic_with_a_reason(home):
    env = cli_env(home, "http://127.0.0.1:9/entrez/eutils/", TRACKER_MAX_ATTEMPTS="2")
    result = run_tracker("fetch", "dosing", env=env)
    assert result.code == 1
    assert "s: esearch failed after 2 attempts: connection failed (ConnectError" in result.out
    assert "Traceback" not in result.err


def test_secrets_never_appear_in_output_or_database(home, fake_eutils):
    add_records(fake_eutils, range(1, 4))
    sentinel = "SENTINEL-API-KEY-0123456789"
    env = cli_env(home, fake_eutils.url, NCBI_API_KEY=sentinel)
    result = run_tracker("--verbose", "fetch", env=env)
    assert result.code == 0, result.err
    assert "esearch.fcgi" in result.err  # request-level detail is there
    assert all(r.params["api_key"] == sentinel for r in fake_eutils.requests)
    for args in (["status"], ["topics"], ["--verbose", "status"]):
        shown = run_tracker(*args, env=env)
        assert sentinel not in shown.out + shown.err
    assert sentinel not in result.out + result.err
    for path in (home / "db").iterdir():
        assert sentinel.encode() not in path.read_bytes()


def test_run_fetches_every_topic_and_writes_each_digest(home, fake_eutils):
    add_records(fake_eutils, range(1, 6), created=TODAY - timedelta(days=1))
    result = run_tracker("run", env=cli_env(home, fake_eutils.url))
    assert result.code == 0, result.err
    day = datetime.now(timezone.utc).date().isoformat()  # digests are named by their UTC day
    expected = [home / "reports" / slug / name for slug in ("dosing", "elderly")
                for name in (f"{day}.md", f"{day}.html", "feed.xml")]
    for path in expected:
        assert f"  {path}" in result.out.splitlines()
        assert path.is_file()
    markdown = (home / "reports" / "dosing" / f"{day}.md").read_text()
    assert "5 new" in markdown and "https://pubmed.ncbi.nlm.nih.gov/3/" in markdown
