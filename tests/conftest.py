"""Shared fixtures: a tracker home, the fake E-utilities server, and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "pubmed-samples"


_OPEN: list[ExitStack] = []


@pytest.fixture(autouse=True)
def _started_clients():
    """Closes at the end of each test what `started` opened."""
    with ExitStack() as stack:
        _OPEN.append(stack)
        try:
            yield
        finally:
            _OPEN.pop()


def started(client):
    """A Starlette test client with its app's lifespan started (as uvicorn starts it), shut down when the test ends."""
    return _OPEN[-1].enter_context(client)


@pytest.fixture
def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"real PubMed samples not found at {SAMPLES} (they are read in place, never copied)")
    return SAMPLES


@dataclass
class Result:
    code: int
    out: str
    err: str


def write_topic(home: Path, slug: str, query: str, **extra) -> Path:
    lines = [f'title = "{slug.title()} topic"', f'query = "{query}"']
    lines += [f"{key} = {value}" for key, value in extra.items()]
    path = home / "queries" / f"{slug}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", since="2020-01-01")
    write_topic(home, "elderly", "norepinephrine elderly", since="2020-01-01")
    return home


@pytest.fixture
def fake_eutils():
    from tests.fake_eutils import FakeEutils

    with FakeEutils() as server:
        yield server
        assert not server.errors, server.errors


def cli_env(home: Path, server_url: str | None, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TRACKER_", "NCBI_"))}
    env.update({
        "TRACKER_HOME": str(home),
        "NCBI_EMAIL": "library@tracker.test",
        "TRACKER_RATE_LIMIT": "1000",
        "TRACKER_BACKOFF": "0.01",
        "TRACKER_BACKOFF_MAX": "0.05",
        "TRACKER_MAX_ATTEMPTS": "3",
        "TRACKER_TIMEOUT": "5",
    })
    if server_url:
        env["TRACKER_EUTILS_URL"] = server_url
    env.update(extra)
    return env


def run_tracker(*args: str, env: dict[str, str], timeout: float = 120) -> Result:
    """The real command line in a subprocess, as a user or a script would run it."""
    done = subprocess.run([sys.executable, "-m", "tracker", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=env.get("TRACKER_HOME"))
    return Result(done.returncode, done.stdout, done.stderr)


# PostgreSQL for the tests that run on both back ends: TRACKER_TEST_POSTGRES_URL, or a local server with
# the role and database .ci/run creates. Each test gets a schema of its own, dropped afterwards.
POSTGRES_URL = os.environ.get("TRACKER_TEST_POSTGRES_URL",
                              "postgresql+psycopg://tracker:tracker@127.0.0.1:5432/tracker_test")
_postgres_problem: list[str] = []


def postgres_unavailable() -> str | None:
    """Why the PostgreSQL half cannot run here (checked once per session), or None when it can."""
    if not _postgres_problem:
        try:
            import psycopg
            from sqlalchemy.engine import make_url

            url = make_url(POSTGRES_URL).set(drivername="postgresql")
            with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=3):
                pass
            _postgres_problem.append("")
        except ImportError:
            _postgres_problem.append("psycopg is not installed (pip install -e '.[test]')")
        except Exception as error:  # noqa: BLE001  (any reason the server cannot be reached)
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            _postgres_problem.append(f"no PostgreSQL server at {POSTGRES_URL.split('@')[-1]} ({first}); "
                                     "set TRACKER_TEST_POSTGRES_URL or run .ci/run")
    return _postgres_problem[0] or None


@contextmanager
def postgres_schema():
    """A URL whose connections see only a fresh schema of their own; the schema is dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    problem = postgres_unavailable()
    if problem and os.environ.get("TRACKER_TEST_POSTGRES_REQUIRED") == "1":
        pytest.fail(f"TRACKER_TEST_POSTGRES_REQUIRED=1 but {problem}")
    if problem:
        pytest.skip(problem)
    name = f"t_{uuid.uuid4().hex[:12]}"
    plain = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {name}")
    try:
        yield make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
            hide_password=False)
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {name} CASCADE")


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A fresh, empty tracker database URL on each back end: SQLite in the tmp home, PostgreSQL in a new schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'tracker.sqlite3'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def sqlite_store(tmp_path):
    """A fresh SQLite store, for what only SQLite has (the file, its pragmas)."""
    from tracker.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'db' / 'tracker.sqlite3'}")
    yield store
    store.close()


@pytest.fixture
def store(db_url):
    """A fresh store on each back end."""
    from tracker.store import open_store

    store = open_store(db_url)
    yield store
    store.close()


@pytest.fixture
def client(fake_eutils, tmp_path):
    """The real E-utilities client pointed at the fake server, with the rate limit lifted and short backoffs."""
    from tracker.ncbi.eutils import EutilsClient
    from tracker.settings import Settings

    settings = Settings(home=tmp_path, eutils_url=fake_eutils.url, email="t@example.org", requests_per_second=1000.0,
                        backoff_initial=0.01, backoff_max=0.02, max_attempts=3, timeout=5.0, efetch_batch=50)
    with EutilsClient(settings) as client:
        yield client
