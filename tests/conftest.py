"""Shared fixtures: a tracker home, the fake E-utilities server, and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "pubmed-samples"


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
        "NCBI_EMAIL": "library@example.org",
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
