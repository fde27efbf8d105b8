"""Ad-hoc PubMed queries against the loopback fake E-utilities server."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import pytest
from click.testing import CliRunner

from tests.conftest import cli_env, run_tracker, write_topic
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_set, article_xml
from tracker.cli import cli
from tracker.ncbi.pubmed import iter_papers
from tracker.store import open_store
from tracker.store.papers import save_papers
from tracker.topics import Topic, load_topic

TODAY = date.today()
QUERY = "norepinephrine bolus"


def record(pmid: int, days_ago: int, query: str = QUERY) -> FakeRecord:
    created = TODAY - timedelta(days=days_ago)
    xml = article_xml(pmid, created=created, title=f"Norepinephrine bolus study {pmid}",
                      authors=({"last": "Sözeri", "fore": "Ömer", "initials": "Ö"}, "Smith JA"), pub_date=created)
    return FakeRecord(pmid=pmid, xml=xml, created=created, queries={query})


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    return home


@pytest.fixture
def server(fake_eutils):
    fake_eutils.add(record(11, 5), record(12, 3), record(13, 1), record(20, 1, query="something else"))
    return fake_eutils


def db_path(home):
    return home / "db" / "tracker.sqlite3"


def invoke(home, server, *args):
    env = {"TRACKER_EUTILS_URL": server.url, "TRACKER_RATE_LIMIT": "100", "TRACKER_BACKOFF": "0.01",
           "TRACKER_BACKOFF_MAX": "0.05", "TRACKER_TIMEOUT": "5", "NCBI_EMAIL": "library@tracker.test",
           "TRACKER_DB_URL": f"sqlite:///{db_path(home)}"}
    result = CliRunner().invoke(cli, ["--home", str(home), "query", *args], env=env, prog_name="tracker")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def rows(home, sql: str) -> list[tuple]:
    with sqlite3.connect(db_path(home)) as connection:
        return connection.execute(sql).fetchall()


def test_query_stores_only_new_matches_in_no_topic_and_shows_the_newest(home, server):
    store = open_store(f"sqlite:///{db_path(home)}")
    save_papers(store, list(iter_papers(article_set(record(11, 5).xml))))
    store.close()
    result = invoke(home, server, QUERY, "--limit", "2")
    assert (result.exit_code, result.stderr) == (0, "")
    created = {pmid: TODAY - timedelta(days=days) for pmid, days in ((12, 3), (13, 1))}
    assert result.stdout == (
        "pmid  created     year  first author  title\n"
        "----  ----------  ----  ------------  -----------------------------\n"
        f"13    {created[13]}  {created[13].year}  Sözeri Ö      Norepinephrine bolus study 13\n"
        f"12    {created[12]}  {created[12].year}  Sözeri Ö      Norepinephrine bolus study 12\n"
        "showing 2 of 3 matches; 2 new papers stored, 2 requests\n"
    )
    [efetch] = [r for r in server.requests if r.endpoint == "efetch"]
    assert efetch.params["id"] == "13,12"
    assert rows(home, "SELECT pmid FROM paper ORDER BY pmid") == [(11,), (12,), (13,)]
    assert rows(home, "SELECT * FROM topic_paper") == []
    assert rows(home, "SELECT topic, kind, status, query, count, matched, new_papers, requests, window_start, "
                      "window_end FROM run") == [
        ("(query)", "query", "succeeded", QUERY, 3, 3, 2, 2, None, str(TODAY + timedelta(days=1)))]

    again = invoke(home, server, QUERY)
    assert again.stdout.splitlines()[-1] == "showing 3 of 3 matches; 0 new papers stored, 1 request"
    assert [line.split()[0] for line in again.stdout.splitlines()[2:-1]] == ["13", "12", "11"]


def test_since_limits_the_create_date_window(home, server):
    since = TODAY - timedelta(days=2)
    result = invoke(home, server, QUERY, "--since", str(since))
    assert result.stdout.splitlines()[-1] == "showing 1 of 1 match; 1 new paper stored, 2 requests"
    [search] = [r for r in server.requests if r.endpoint == "esearch"]
    assert search.params["term"] == (
        f'({QUERY}) AND ("{since:%Y/%m/%d}"[crdt] : "{TODAY + timedelta(days=1):%Y/%m/%d}"[crdt])')


def test_save_as_writes_a_loadable_topic_and_refuses_to_overwrite(home, server):
    since = TODAY - timedelta(days=30)
    result = invoke(home, server, QUERY, "--since", str(since), "--save-as", "bolus", "--title", "Bolus  dosing")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == ("saved as queries/bolus.toml, titled 'Bolus dosing' (edit the file to "
                                              "change it): run 'tracker run bolus' to track it")
    path = home / "queries" / "bolus.toml"
    assert load_topic(path) == Topic(slug="bolus", title="Bolus dosing", query=QUERY, since=since, path=path)
    saved = path.read_text()

    requests = server.count()
    refused = invoke(home, server, "another query", "--save-as", "bolus")
    assert (refused.exit_code, refused.stdout) == (2, "")
    assert refused.stderr == "error: queries/bolus.toml already exists: choose another name for --save-as\n"
    assert path.read_text() == saved and server.count() == requests

    invalid = invoke(home, server, QUERY, "--save-as", "Bad Slug")
    assert (invalid.exit_code, invalid.stderr) == (
        2, "error: invalid topic name 'Bad Slug': use lower-case letters, digits and dashes (for example 'cesarean')\n")
    assert server.count() == requests


def test_without_a_title_the_slug_names_the_topic_not_the_raw_query(home, server):
    query = "(norepinephrine[tiab] OR noradrenaline[tiab]) AND (bolus[tiab] OR push[tiab]) AND (spinal[tiab] OR cesarean)"
    assert invoke(home, server, query, "--save-as", "bolus-or-push").exit_code == 0
    topic = load_topic(home / "queries" / "bolus-or-push.toml")
    assert (topic.title, topic.query) == ("Bolus or push", query)
    refused = invoke(home, server, query, "--title", "Alone")
    assert (refused.exit_code, refused.stderr) == (
        2, "error: --title goes with --save-as: add --save-as SLUG to save the query as a topic (see 'tracker query "
           "--help')\n")


def test_phrase_not_found_prints_pubmeds_warnings(home, server):
    result = invoke(home, server, "nosuchterm")
    assert (result.exit_code, result.stdout) == (0, "showing 0 of 0 matches; 0 new papers stored, 1 request\n")
    assert result.stderr == ("warning: PubMed: PhraseNotFound: nosuchterm\n"
                             "warning: PubMed: OutputMessage: No items found.\n")


def test_limit_must_be_at_least_one(home, server):
    result = invoke(home, server, QUERY, "--limit", "0")
    assert (result.exit_code, result.stderr) == (
        2, "error: Invalid value for '--limit': 0 is not in the range x>=1. (see 'tracker query --help')\n")
    assert server.count() == 0


def test_a_failed_query_is_recorded_and_exits_1(home, server):
    server.inject("500", endpoint="esearch", times=5)
    result = run_tracker("query", QUERY, env=cli_env(home, server.url, TRACKER_MAX_ATTEMPTS="2"))
    assert (result.code, result.out) == (1, "")
    assert result.err.splitlines()[-1] == (
        "error: query run 1 failed: esearch failed after 2 attempts: HTTP 500 Internal Server Error: "
        "run the query again later")
    assert rows(home, "SELECT topic, kind, status, error FROM run") == [
        ("(query)", "query", "failed", "esearch failed after 2 attempts: HTTP 500 Internal Server Error")]
