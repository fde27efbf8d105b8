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


# -- the e-mail: a reader set up late, counts that agree, a body for colleagues ----------------------------------------

def mail_env(home, server_url, smtp, **extra):
    return cli_env(home, server_url, TRACKER_SMTP_HOST=smtp.host, TRACKER_SMTP_PORT=str(smtp.port),
                   TRACKER_SMTP_SECURITY="none", TRACKER_MAIL_FROM="tracker@hospital.test", **extra)


def bodies(message) -> str:
    return " ".join((message.get_body(("plain",)).get_content() + message.get_body(("html",)).get_content()).split())


def attached_pmids(message) -> list[int]:
    import csv
    import io

    [table] = [part for part in message.walk() if part.get_content_disposition() == "attachment"]
    return sorted(int(row["pmid"]) for row in csv.DictReader(io.StringIO(table.get_content().removeprefix("\ufeff"))))


CLI_TEXT = re.compile(r"'tracker |TRACKER_|tracker\.toml|--\w|max_bytes|\[mail\]|\[web\]")


def test_a_reader_added_a_week_after_the_baseline_gets_it_summed_up_and_every_paper_since(tmp_path, fake_eutils):
    from tests.smtp_server import LoopbackSMTP

    pytest.importorskip("aiosmtpd")
    home = tmp_path / "home"
    first_reader, late_reader = "ana@hospital.test", "bo@hospital.test"
    topic = write_topic(home, "dosing", "norepinephrine dosing", since="2010-01-01", max_per_digest="5",
                        recipients=f'["{first_reader}"]')
    add(fake_eutils, range(1, 41), "norepinephrine dosing", created=date(2015, 3, 1))
    with LoopbackSMTP() as smtp:
        env = mail_env(home, fake_eutils.url, smtp, TRACKER_WEB_PUBLIC_URL="https://tracker.hospital.org")
        assert run_tracker("run", env=env).code == 0
        assert run_tracker("email", env=env).code == 0  # the first reader's baseline message

        add(fake_eutils, range(101, 113), "norepinephrine dosing", created=TODAY)
        assert run_tracker("run", env=env).code == 0  # a week's news: 12 papers
        topic.write_text(topic.read_text().replace(f'["{first_reader}"]', f'["{first_reader}", "{late_reader}"]'))
        sent = run_tracker("email", env=env)
        assert sent.code == 0, sent.err
        by_reader = {message.rcpt_tos[0]: message.parsed() for message in smtp.messages[1:]}
    late = by_reader[late_reader]
    # Counts that agree: the console, the subject and the body give the same numbers.
    lines = dict(line.split(": ", 1) for line in sent.out.splitlines())
    assert lines[f"sent to {late_reader}"].startswith("12 new papers and a baseline of 40, Message-ID <")
    assert lines[f"sent to {first_reader}"].startswith("12 new papers, Message-ID <")
    assert late["Subject"].endswith(": 12 new papers in 1 topic and a baseline of 40")
    assert by_reader[first_reader]["Subject"].endswith(": 12 new papers in 1 topic")
    text = bodies(late)
    assert "12 new papers in the 1 topic you follow." in text
    assert ("Baseline: 40 papers matched since 2010 when this topic started (not listed; what the topic found since "
            "follows)") in text
    assert "12 new, 5 shown (strongest evidence first; all 12 are in the attached norepinephrine-papers-" in text
    assert text.count("PubMed: https://pubmed.ncbi.nlm.nih.gov/") == 5  # max_per_digest in the body, no baseline list
    assert attached_pmids(late) == list(range(101, 113))  # all of it in the attachment
    # Linked to the web app at [web] public_url, and no command or setting for colleagues who run none.
    assert "In the web app: https://tracker.hospital.org/topics/dosing" in text
    assert "In the web app: https://tracker.hospital.org/papers/101" in text
    assert 'href="https://tracker.hospital.org/papers/101"' in text
    for message in smtp.messages:
        assert not CLI_TEXT.search(bodies(message.parsed())), CLI_TEXT.search(bodies(message.parsed()))
    from tests.test_faults import sql

    assert sql(home, "SELECT count(*) FROM delivery WHERE recipient = ?", late_reader) == [(52,)]


def test_the_sender_gets_on_the_console_what_readers_are_only_told(tmp_path, fake_eutils):
    from tests.smtp_server import LoopbackSMTP

    pytest.importorskip("aiosmtpd")
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", since="2020-01-01", recipients='["ana@hospital.test"]')
    write_topic(home, "sepsis", "norepinephrine sepsis", since="2020-01-01", recipients='["ana@hospital.test"]')
    add(fake_eutils, range(1, 4), "norepinephrine dosing")
    with LoopbackSMTP() as smtp:
        env = mail_env(home, fake_eutils.url, smtp)
        assert run_tracker("run", "dosing", env=env).code == 0
        fake_eutils.inject("500", endpoint="esearch", times=100)
        assert run_tracker("run", "sepsis", env=env).code == 1
        sent = run_tracker("email", env=env)
        [message] = [received.parsed() for received in smtp.messages]
    assert sent.code == 0, sent.err
    assert sent.err == ("note: sepsis: its last run failed (esearch failed after 3 attempts: HTTP 500 Internal Server "
                        "Error); its readers are told their list may be incomplete: run 'tracker run sepsis' to retry\n")
    text = bodies(message)
    assert "!! Last run: the search of PubMed failed at " in text
    assert "papers it would have found come in a later message, once a search succeeds" in text
    assert not CLI_TEXT.search(text) and "HTTP 500" not in text
