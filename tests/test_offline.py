"""Offline or pointed at the wrong place: one line that says what to check, the other topics not tried.

The real command in a subprocess with the retry settings' defaults (6 attempts, backoff 1 s up to 60 s): an
E-utilities host that cannot be reached on the run's first request is given up after two attempts, said once,
and nothing is recorded or written for the topics after it. Failures after a first answer keep the full budget.
"""

from __future__ import annotations

import re
import socket
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_tracker
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml

DEFAULT_RETRIES = dict(TRACKER_MAX_ATTEMPTS="6", TRACKER_BACKOFF="1", TRACKER_BACKOFF_MAX="60")
ADVICE = "check the network, a proxy (HTTPS_PROXY) or TRACKER_EUTILS_URL"
DEFAULT_TOPICS = ["cardiac-surgery", "cesarean", "dosing", "elderly", "hepatorenal", "pediatric", "prophylactic",
                  "sepsis", "vasopressor-comparison"]


def sql(home: Path, statement: str) -> list[tuple]:
    with sqlite3.connect(home / "db" / "tracker.sqlite3") as connection:
        return connection.execute(statement).fetchall()


def default_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    made = run_tracker("init", str(home), env=cli_env(tmp_path, None))
    assert made.code == 0, made.err
    assert sorted(p.stem for p in (home / "queries").glob("*.toml")) == DEFAULT_TOPICS
    return home


@pytest.fixture
def refused_url():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused, and no one else gets it
        yield f"http://127.0.0.1:{closed.getsockname()[1]}/entrez/eutils/"


def test_an_unresolvable_host_is_said_once_and_the_other_topics_are_not_tried(tmp_path):
    home = default_home(tmp_path)
    env = cli_env(home, "http://eutils.invalid/entrez/eutils/", **DEFAULT_RETRIES)
    result = run_tracker("run", env=env)
    day = datetime.now(timezone.utc).date().isoformat()  # digests are named by their UTC day
    first, *others = DEFAULT_TOPICS
    assert result.code == 1
    assert result.err == f"error: cannot reach eutils.invalid (name resolution failed): {ADVICE}\n"
    lines = result.out.splitlines()
    assert re.fullmatch(rf"{first}: FAILED after 2 requests, [\d.]+ s: esearch failed after 2 "
                        r"attempts: connection failed \(ConnectError: .+\)", lines[0]), lines[0]
    assert lines[1:] == [f"{slug}: not tried: E-utilities unreachable" for slug in others] + [
        f"digests written to {home / 'reports'}:",
        *(f"  {home / 'reports' / first / name}" for name in (f"{day}.md", f"{day}.html", "feed.xml"))]
    assert sorted(p.name for p in (home / "reports").iterdir()) == [first]
    assert sql(home, "SELECT topic, status, requests, error FROM run") == [
        (first, "failed", 2, f"topic '{first}': cannot reach eutils.invalid (name resolution failed): {ADVICE}")]
    assert sql(home, "SELECT topic FROM digest") == [(first,)]
    assert sql(home, "SELECT * FROM topic_state") == []


def test_a_refused_connection_says_connection_refused(home, refused_url):
    result = run_tracker("fetch", env=cli_env(home, refused_url, **DEFAULT_RETRIES))
    assert result.code == 1
    assert result.err == f"error: cannot reach 127.0.0.1 (connection refused): {ADVICE}\n"
    dosing, elderly = result.out.splitlines()
    assert dosing.startswith("dosing: FAILED after 2 requests, ")
    assert dosing.endswith("s: esearch failed after 2 attempts: connection failed "
                           "(ConnectError: [Errno 111] Connection refused)")
    assert elderly == "elderly: not tried: E-utilities unreachable"
    assert sql(home, "SELECT topic, status FROM run") == [("dosing", "failed")]


def test_a_wrong_path_names_tracker_eutils_url_and_is_not_retried(home, fake_eutils):
    url = fake_eutils.url.replace("/entrez/eutils/", "/entrez/")
    result = run_tracker("fetch", "dosing", env=cli_env(home, url, **DEFAULT_RETRIES))
    assert result.code == 1
    reason = (f"HTTP 404 Not Found: check TRACKER_EUTILS_URL (now {url}): it should be the "
              "E-utilities base URL ending in /eutils/, by default https://eutils.ncbi.nlm.nih.gov/entrez/eutils/")
    [line] = result.out.splitlines()
    assert line.startswith("dosing: FAILED after 1 request, ") and line.endswith(f" s: {reason}")
    assert result.err.splitlines() == ["error: dosing failed; what they stored is kept, and their next run searches "
                                       "the same dates again: run 'tracker fetch' again later"]
    assert [r.endpoint for r in fake_eutils.requests] == ["/entrez/esearch.fcgi"]


def test_a_failure_after_the_first_answer_keeps_the_full_retry_budget(home, fake_eutils):
    created = date.today() - timedelta(days=3)
    fake_eutils.add(*[FakeRecord(pmid=p, xml=article_xml(p, created=created), created=created) for p in range(1, 4)])
    fake_eutils.inject("502", endpoint="efetch", times=4)  # after esearch answered: 4 failures, the 5th succeeds
    result = run_tracker("fetch", "dosing", "--verbose", env=cli_env(home, fake_eutils.url, TRACKER_MAX_ATTEMPTS="5"))
    assert result.code == 0, result.err
    assert result.out.startswith("dosing: 3 new, 3 matched, 7 requests, ")
    assert [line.split("attempt ", 1)[1].split(" failed")[0] for line in result.err.splitlines()
            if "attempt " in line] == ["1", "2", "3", "4"]
