"""A clinician's second month: the rough edges a new user meets, each checked by the text they see."""

from __future__ import annotations

import re
from datetime import date, timedelta

import httpx
import pytest

from tests.conftest import cli_env, run_tracker, write_topic
from tests.fake_eutils import HTML_BLOCKED, HTML_TYPE, FakeRecord
from tests.pubmed_xml import article_xml
from tests.test_eutils import Recorder, client_for
from tracker.errors import BlockedError

TODAY = date.today()


def add(server, pmids, query: str, created: date | None = None, **fields) -> None:
    created = created or TODAY - timedelta(days=30)
    server.add(*[FakeRecord(pmid, article_xml(pmid, created=created, **fields), created, queries=frozenset({query}))
                 for pmid in pmids])


@pytest.fixture
def two_topics(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", since="2020-01-01")
    write_topic(home, "elderly", "norepinephrine elderly", since="2020-01-01")
    return home


# -- NCBI's blocked page ---------------------------------------------------------------------------------------------

BLOCKED_ADVICE = ("NCBI blocked this machine's requests (its Blocked Diagnostic page), so nothing more was asked: check "
                  "that NCBI_EMAIL is a real address NCBI can write to (now library@tracker.test), that NCBI_API_KEY is "
                  "yours and valid (none is set), and that TRACKER_RATE_LIMIT stays within NCBI's limit of 3 "
                  "requests/s, 10 with a key (now 1000); then try again later, or ask info@ncbi.nlm.nih.gov to lift "
                  "the block")


def test_ncbis_blocked_page_stops_the_run_at_once_and_says_what_to_check(two_topics, fake_eutils):
    add(fake_eutils, range(1, 4), "norepinephrine dosing")
    fake_eutils.inject("blocked", endpoint="esearch", times=100)
    result = run_tracker("fetch", env=cli_env(two_topics, fake_eutils.url))
    assert result.code == 1
    dosing, elderly = result.out.splitlines()
    assert re.fullmatch(r"dosing: FAILED after 1 request, [\d.]+ s: esearch was answered with NCBI's Blocked "
                        r"Diagnostic page", dosing), dosing
    assert elderly == "elderly: not tried: NCBI blocked this machine's requests"
    assert result.err == f"error: {BLOCKED_ADVICE}\n"
    assert fake_eutils.count() == 1  # not retried, and no other topic asked


def test_a_blocked_efetch_mid_backfill_keeps_the_batches_before_it(two_topics, fake_eutils):
    add(fake_eutils, range(1, 31), "norepinephrine dosing")
    fake_eutils.inject("blocked", endpoint="efetch", at=2, times=100)
    result = run_tracker("fetch", "dosing", env=cli_env(two_topics, fake_eutils.url, TRACKER_EFETCH_BATCH="10",
                                                        TRACKER_EFETCH_IN_FLIGHT="1"))
    assert result.code == 1 and result.err == f"error: {BLOCKED_ADVICE}\n"
    assert fake_eutils.count("efetch") <= 3  # no batch asked twice: the blocked one is not retried
    from tests.test_faults import topic_pmids, topic_state

    assert len(topic_pmids(two_topics)) == 10 and topic_state(two_topics) is None


def test_the_blocked_page_is_not_retried_by_the_client():
    handler = Recorder(httpx.Response(200, text=HTML_BLOCKED, headers={"content-type": HTML_TYPE}))
    client = client_for(handler, api_key=None, email="lib@hospital.org", requests_per_second=None)
    with pytest.raises(BlockedError) as blocked:
        client.search("x")
    assert client.request_count == 1 and client.sleeps == []
    assert "(now lib@hospital.org)" in str(blocked.value) and "(none is set)" in str(blocked.value)
    assert "(now 3)" in str(blocked.value)


# -- search ----------------------------------------------------------------------------------------------------------

def test_search_takes_several_words_as_one_query(two_topics, fake_eutils):
    add(fake_eutils, [1], "norepinephrine dosing", title="Norepinephrine in septic shock")
    add(fake_eutils, [2], "norepinephrine dosing", title="Septic patients and cardiogenic shock")
    add(fake_eutils, [3], "norepinephrine dosing", title="Shock alone")
    env = cli_env(two_topics, fake_eutils.url)
    assert run_tracker("fetch", env=env).code == 0
    result = run_tracker("search", "septic", "shock", "--format", "json", env=env)
    assert result.code == 0, result.err
    import json

    assert sorted(hit["pmid"] for hit in json.loads(result.out)) == [1, 2]
    phrase = run_tracker("search", '"septic shock"', "--format", "json", env=env)
    assert [hit["pmid"] for hit in json.loads(phrase.out)] == [1]
    nothing = run_tracker("search", "vasopressin", "analogue", env=env)
    assert (nothing.code, nothing.out) == (0, "no stored papers match 'vasopressin analogue'\n")


def test_search_titles_are_never_cut():
    from tracker.cli.output import hits_table
    from tracker.store.search import SearchHit

    title = ("Norepinephrine versus phenylephrine for the prevention of spinal anaesthesia-induced hypotension during "
             "caesarean delivery: a randomised controlled trial")
    hit = SearchHit(pmid=1, title=title, authors=("Ngan Kee WD",), journal="Anesthesiology", year=2015, doi=None,
                    topics=("cesarean",), score=1.0, status=None)
    assert hits_table([hit])[1] == [["1", "2015", "Ngan Kee WD", title, "cesarean"]]  # a pipe gets it whole
    headers, rows = hits_table([hit], width=100)
    assert " ".join(row[3] for row in rows) == title  # a terminal gets it wrapped in its column
    assert all(len("  ".join(row).rstrip()) <= 100 for row in rows) and len(rows) > 1
    assert [row[0] for row in rows] == ["1"] + [""] * (len(rows) - 1)


# -- tracker serve ---------------------------------------------------------------------------------------------------

def test_serve_on_a_busy_port_says_so_and_prints_no_address(tmp_path):
    import socket

    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = run_tracker("serve", "--port", str(port), env=cli_env(home, None))
    assert (result.code, result.out) == (2, "")
    assert result.err == f"error: port {port} is in use: choose another with --port\n"


def test_serve_prints_its_address_only_once_it_listens(tmp_path):
    import socket
    import subprocess
    import sys

    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tracker", "serve", "--port", str(port)], env=cli_env(home, None),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=home)
    try:
        line = server.stdout.readline().strip()
        assert re.fullmatch(rf"http://127\.0\.0\.1:{port}/\?token=[\w-]{{32}}", line), line
        # No waiting: the address leads here as soon as it is printed (the connection waits in the listen queue).
        answer = httpx.get(line, timeout=30, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/")
    finally:
        server.terminate()
        server.wait(10)
