"""Secrets, TLS and file permissions.

NCBI_API_KEY and TRACKER_SMTP_PASSWORD must never be written anywhere the user or another program could read
them: not in output at any verbosity, not in the database or the scheduler's job store, not in logs, reports,
exports or mail. SMTP verifies certificates and host names unless TLS is explicitly turned off. The database,
its folder, the log and the outbox are readable by their owner only, whatever the umask.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from datetime import date, timedelta

import pytest

from tests.conftest import Result, cli_env, started, write_topic
from tests.fake_eutils import FakeEutils, FakeRecord
from tests.pubmed_xml import article_xml
from tests.smtp_server import LoopbackSMTP, make_certificate
from tests.test_faults import invoke, sql
from tracker.outputs.mail import connect_smtp, send_weekly_email
from tracker.settings import Settings
from tracker.store import open_store
from tracker.topics import Topic

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

API_KEY = "SENTINEL-KEY-c0ffee42"
PASSWORD = "SENTINEL-PASS-d00dfeed"
WRONG_PASSWORD = "SENTINEL-WRONG-beefcafe"
USER = "mailer"
CREATED = date.today() - timedelta(days=2)


def forms(secret: str) -> list[bytes]:
    """The secret as it could leak: plain, and base64 as SMTP AUTH PLAIN and LOGIN send it."""
    encoded = [secret, f"\0{USER}\0{secret}", f"{USER}\0{USER}\0{secret}"]
    return [secret.encode()] + [base64.b64encode(text.encode()) for text in encoded]


def run(env: dict[str, str], *args: str, umask: int | None = None) -> Result:
    done = subprocess.run([sys.executable, "-m", "tracker", *args], env=env, cwd=env["TRACKER_HOME"],
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.mark.slow
def test_no_command_at_any_verbosity_writes_a_secret_anywhere(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", recipients='["a@example.org"]')
    write_topic(home, "elderly", "norepinephrine elderly", recipients='["a@example.org", "b@example.org"]')
    (tmp_path / "export.nbib").write_text("PMID- 3\nTI  - One.\n\nPMID- 900\nTI  - Two.\n\n", encoding="utf-8")
    outputs: list[str] = []
    with FakeEutils() as server, LoopbackSMTP(users={USER: PASSWORD}) as smtp:
        server.add(*[FakeRecord(pmid=p, xml=article_xml(p, created=CREATED), created=CREATED) for p in range(1, 9)])
        server.add(FakeRecord(pmid=900, xml=article_xml(900, created=CREATED), created=CREATED, queries={"x"}))
        env = cli_env(home, server.url, NCBI_API_KEY=API_KEY, TRACKER_SMTP_HOST=smtp.host,
                      TRACKER_SMTP_PORT=str(smtp.port), TRACKER_SMTP_SECURITY="none", TRACKER_SMTP_USER=USER,
                      TRACKER_SMTP_PASSWORD=PASSWORD, TRACKER_MAIL_FROM="tracker@example.org",
                      TRACKER_SCHEDULE_EVERY="1", TRACKER_TZ="UTC")
        commands = [
            ["init", str(tmp_path / "other")], ["fetch"], ["topics"], ["run"], ["status"], ["digest"],
            ["digest", "--format", "html"], ["email", "--dry-run"], ["email"],
            ["export", "-o", str(tmp_path / "papers.csv")],
            ["export", "--format", "ris", "-o", str(tmp_path / "p.ris")],
            ["export", "--format", "ris"], ["search", "norepinephrine"],
            ["search", "norepinephrine", "--format", "json"],
            ["query", "norepinephrine"], ["import", str(tmp_path / "export.nbib"), "--topic", "dosing"],
            ["schedule", "--list"], ["schedule", "--run-now", "dosing"], ["schedule", "--run-now", "email"],
        ]
        # Every command in this process (the real command line, a second each instead of a new Python), the
        # two that talk to servers also as processes of their own.
        for verbose in ([], ["--verbose"]):
            for args in commands:
                result = invoke(env, *verbose, *args)
                assert result.code == 0, (args, result.err)
                outputs += [result.out, result.err]
        for args in (["--verbose", "fetch"], ["--verbose", "email"], ["--verbose", "query", "norepinephrine",
                                                                      "--save-as", "saved"]):
            result = run(env, *args)
            assert result.code == 0, (args, result.err)
            outputs += [result.out, result.err]

        # Something new to send (with nothing new a reader hears so once a week, and this week they did).
        server.add(*[FakeRecord(pmid=p, xml=article_xml(p, created=CREATED), created=CREATED) for p in (9, 10)])
        assert invoke(env, "fetch", "--full").code == 0
        # Failures that name what went wrong: a refused login, and a key NCBI rejects (its answer echoes the key).
        for verbose in ([], ["--verbose"]):
            refused = invoke({**env, "TRACKER_SMTP_PASSWORD": WRONG_PASSWORD}, *verbose, "email")
            assert refused.code == 1 and "the server refused the login" in refused.err, refused.err
            server.inject("400-api-key", times=2)
            rejected = invoke(env, *verbose, "fetch", "dosing", "elderly")
            assert rejected.code == 1 and "NCBI rejected the API key" in rejected.out, rejected.out
            outputs += [refused.out, refused.err, rejected.out, rejected.err]

        daemon_err = tmp_path / "schedule.err"
        with open(daemon_err, "w") as err:
            daemon = subprocess.Popen([sys.executable, "-m", "tracker", "--verbose", "schedule"], env=env, cwd=home,
                                      stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            deadline = time.monotonic() + 60
            while "email: sent to" not in daemon_err.read_text() or "fetch:elderly" not in daemon_err.read_text():
                assert daemon.poll() is None and time.monotonic() < deadline, daemon_err.read_text()
                time.sleep(0.2)
            daemon.send_signal(signal.SIGTERM)
            out, _ = daemon.communicate(timeout=60)
            assert daemon.returncode == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
        outputs += [out, daemon_err.read_text()]

        assert {r.params.get("api_key") for r in server.requests} == {API_KEY}  # the key was in use throughout
        assert smtp.messages and {m.login for m in smtp.messages} == {USER}  # and so was the password
        received = b"".join(m.data for m in smtp.messages)

    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    written = {path.suffix or path.name for path in files}
    assert {".sqlite3", ".log", ".eml", ".md", ".html", ".csv", ".ris", ".toml"} <= written, written
    assert any(path.name.endswith("-wal") or path.name.endswith(".sqlite3") for path in files)
    assert sql(home, "SELECT count(*) FROM scheduler_jobs") == [(4,)]  # the job store is in the file searched below
    for secret in (API_KEY, PASSWORD, WRONG_PASSWORD):
        for form in forms(secret):
            for text in outputs:
                assert form.decode() not in text, (secret, text)
            assert form not in received
            for path in files:
                assert form not in path.read_bytes(), (secret, path)


@pytest.mark.slow
def test_the_database_its_folder_the_log_and_the_outbox_are_private_whatever_the_umask(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", recipients='["a@example.org"]')
    with FakeEutils() as server:
        server.add(*[FakeRecord(pmid=p, xml=article_xml(p, created=CREATED), created=CREATED) for p in range(1, 4)])
        env = cli_env(home, server.url)
        for args in (["fetch"], ["email", "--dry-run"], ["schedule", "--run-now", "dosing"]):
            result = run(env, *args, umask=0)
            assert result.code == 0, (args, result.err)
        init = run(env, "init", str(tmp_path / "fresh"), umask=0)
        assert init.code == 0, init.err
    mode = lambda path: stat.S_IMODE(path.stat().st_mode)  # noqa: E731
    for folder in (home / "db", tmp_path / "fresh" / "db"):
        assert mode(folder) == 0o700, folder
    private = [*(home / "db").iterdir(), *(home / "reports" / "outbox").glob("*.eml")]
    assert {p.name.split(".")[-1] for p in private} >= {"sqlite3", "log", "eml"}
    for path in private:
        assert mode(path) == 0o600, (path, oct(mode(path)))


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    return (make_certificate(tmp_path_factory.mktemp("right")),
            make_certificate(tmp_path_factory.mktemp("wrong"), host="127.0.0.2"))


@pytest.fixture
def mail_store(tmp_path):
    from tests.test_digest import make_paper
    from tracker.store.papers import save_papers

    store = open_store(f"sqlite:///{tmp_path / 'db' / 'tracker.sqlite3'}")
    save_papers(store, [make_paper(1)], topic="dosing")
    yield store
    store.close()


TOPICS = [Topic(slug="dosing", title="Dosing", query="q", recipients=("a@example.org",))]


def settings_for(tmp_path, server, security: str) -> Settings:
    return Settings(home=tmp_path, smtp_host="127.0.0.1", smtp_port=server.port, smtp_security=security,
                    smtp_user=USER, smtp_password=PASSWORD, mail_from="tracker@example.org", timeout=5)


def test_implicit_tls_refuses_an_untrusted_certificate(mail_store, tmp_path, certificates):
    right, _ = certificates
    with LoopbackSMTP(users={USER: PASSWORD}, implicit_tls=right) as server:
        [result] = send_weekly_email(mail_store, settings_for(tmp_path, server, "ssl"), TOPICS)
        assert server.messages == []
    assert result.error.startswith("the TLS certificate of 127.0.0.1 is not trusted (")
    assert PASSWORD not in result.error


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_trusted_certificate_for_another_host_is_refused(security, mail_store, tmp_path, certificates):
    _, wrong = certificates
    tls = {"tls": wrong} if security == "starttls" else {"implicit_tls": wrong}
    with LoopbackSMTP(users={USER: PASSWORD}, **tls) as server:
        trusting = lambda s: connect_smtp(s, context=wrong.client_context())  # noqa: E731
        [result] = send_weekly_email(mail_store, settings_for(tmp_path, server, security), TOPICS,
                                     smtp_factory=trusting)
        assert server.messages == []
    assert result.error.startswith("the TLS certificate of 127.0.0.1 is not trusted (IP address mismatch"), result.error


def test_the_command_line_refuses_an_untrusted_server_in_one_line(tmp_path, certificates):
    right, _ = certificates
    home = tmp_path / "home"
    write_topic(home, "dosing", "q", recipients='["a@example.org"]')
    with LoopbackSMTP(users={USER: PASSWORD}, tls=right) as server:
        env = cli_env(home, None, TRACKER_SMTP_HOST="127.0.0.1", TRACKER_SMTP_PORT=str(server.port),
                      TRACKER_SMTP_USER=USER, TRACKER_SMTP_PASSWORD=PASSWORD, TRACKER_MAIL_FROM="t@example.org")
        result = run(env, "--verbose", "email")
        assert server.messages == []
    assert result.code == 1
    assert result.err.splitlines()[-1].startswith(
        "error: sending to a@example.org failed (the TLS certificate of 127.0.0.1 is not trusted (")
    assert "Traceback" not in result.err and PASSWORD not in result.out + result.err


def test_the_web_app_never_shows_a_secret(tmp_path):
    """Every page of `tracker serve`, as an admin, and what the server prints: no API key, SMTP password, account
    password or its hash, and no session cookie; the personal-mode token only on the one line printed at start."""
    import re
    import socket
    import warnings

    import httpx

    from tests.pubmed_xml import article_set
    from tracker.ncbi.pubmed import iter_papers
    from tracker.store.papers import save_papers
    from tracker.web import build_app
    from tracker.web.accounts import add_user

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    account_password = "SENTINEL-ACCOUNT-5ecret99"
    pages: list[str] = []
    with FakeEutils() as server:
        server.add(*[FakeRecord(pmid=p, xml=article_xml(p, created=CREATED), created=CREATED) for p in range(1, 4)])
        env = cli_env(home, server.url, NCBI_API_KEY=API_KEY, TRACKER_SMTP_PASSWORD=PASSWORD, TRACKER_SMTP_USER=USER)
        settings = Settings.from_env(home=home, env=env)
        store = open_store(settings.database_url)
        save_papers(store, list(iter_papers(article_set(*[article_xml(p, created=CREATED) for p in (1, 2)]))),
                    topic="dosing")
        app, access = build_app(settings, store, host="127.0.0.1", port=8765)  # personal mode first
        client = started(TestClient(app, base_url="http://127.0.0.1:8765"))
        client.get(f"/?token={access.token}")
        for url in ("/", "/topics/dosing", "/papers/1", "/search?q=norepinephrine", "/runs", "/query",
                    "/topics/dosing/screen", "/topics/dosing/prisma"):
            pages.append(client.get(url).text)
        assert all(access.token not in page for page in pages)
        pages.append(client.post("/query", data={"csrf": re.search(r'name="csrf" value="([^"]+)"', pages[-2]).group(1),
                                                 "q": "norepinephrine"}).text)
        assert "<dt>Count</dt>" in pages[-1]
        cookies = [client.cookies["tracker_session"]]
        add_user(store, "chief", account_password, admin=True)
        app, _ = build_app(settings, store, host="127.0.0.1", port=8765)
        admin = started(TestClient(app, base_url="http://127.0.0.1:8765"))
        login = admin.get("/login").text
        admin.post("/login", data={"csrf": re.search(r'name="csrf" value="([^"]+)"', login).group(1), "user": "chief",
                                   "password": account_password})
        cookies.append(admin.cookies["tracker_session"])
        for url in ("/", "/users", "/topics/dosing", "/papers/2", "/runs", "/query"):
            pages.append(admin.get(url).text)
        with store.engine.connect() as connection:
            [stored_hash] = connection.exec_driver_sql("SELECT password_hash FROM account").scalars()
        store.close()

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        served = subprocess.Popen([sys.executable, "-m", "tracker", "--verbose", "serve", "--port", str(port)], env=env,
                                  cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = served.stdout.readline()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/login")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            pages.append(answer.text)
            httpx.post(f"http://127.0.0.1:{port}/login", data={"user": "chief", "password": account_password})
        finally:
            served.terminate()
            out, err = served.communicate(timeout=20)
        assert first == f"http://127.0.0.1:{port}/ (team mode: log in)\n"
    secrets = [API_KEY, PASSWORD, account_password, stored_hash, *cookies]
    for text in [*pages, first, out, err]:
        for secret in secrets:
            assert secret not in text, secret
    database = home / "db" / "tracker.sqlite3"
    stored = b"".join(path.read_bytes() for path in (database, database.with_name(database.name + "-wal"))
                      if path.exists())
    assert account_password.encode() not in stored and all(cookie.encode() not in stored for cookie in cookies)
