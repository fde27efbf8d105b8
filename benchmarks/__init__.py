"""Performance benchmarks of the tracker: `python -m benchmarks [--quick] [--only NAME ...] [--output FILE]`.

Eleven benchmarks, each producing rows of one table (what, size, figure, ratio, target, met?) with the command
line that reproduces the row: ingest throughput, a backfill through the CLI, rate-limit discipline, the cost
of a weekly run, digest/search/export on a large database, the tracker against a lean sequential pipeline,
the records fetched again by eight weekly runs, the web app's pages on the large database, the relevance
ranking, when to stop screening in relevance order, ranked search of 50 queries on the large database,
SQLite's and a PostgreSQL copy of it, the suggestions beyond a topic's query, and the study-facts extractor's accuracy
and speed. The corpus is built from the real records in ../shared/pubmed-samples/ (see benchmarks/corpus.py),
generated into a temporary directory at run time; the ranking, stopping and suggest benchmarks read the labelled
datasets in ../shared/screening-datasets/ and the facts benchmark the labelled abstracts in ../shared/study-facts/,
in place.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass(frozen=True)
class Sizes:
    """Everything that differs between the full run and --quick."""

    quick: bool
    ingest_records: int
    ingest_repeats: int
    biopython_repeats: int
    backfill_records: tuple[int, ...]
    # (requests/s, records, efetch batch, target applies): 3/s runs without an API key, 10/s with one.
    rate_runs: tuple[tuple[int, int, int, bool], ...]
    weekly_backfill: int
    weekly_new: tuple[int, ...]
    scale_papers: int
    export_rows: int
    scale_repeats: int
    cli_repeats: int
    lean_records: int  # the backfill the tracker and the lean pipeline both make (benchmarks/lean.py)
    refetch_backfill_weeks: int  # benchmarks/refetch.py's timeline
    refetch_per_day: int
    margin_requests: int  # requests per trial of the rate limiter's margin measurement
    ranking_runs: int  # screening simulations per dataset and ranker
    ranking_datasets: int  # how many of the Cohen 2006 datasets, in benchmarks.ranking.DATASETS order
    ranking_repeats: int
    stopping_runs: int  # whole-dataset screening simulations per dataset (benchmarks/stopping.py)
    stopping_datasets: int  # how many of the Cohen 2006 datasets, in benchmarks.ranking.DATASETS order
    suggest_runs: int  # random 60 % query splits per dataset (benchmarks/suggest.py)
    suggest_datasets: int  # how many of the Cohen 2006 datasets, in benchmarks.ranking.DATASETS order

    @property
    def flag(self) -> str:
        return " --quick" if self.quick else ""


FULL = Sizes(
    quick=False, ingest_records=50_000, ingest_repeats=3, biopython_repeats=1, backfill_records=(10_000, 50_000),
    rate_runs=((3, 5_000, 100, True), (10, 5_000, 20, True), (10, 5_000, 100, False)), weekly_backfill=5_000,
    weekly_new=(0, 10, 500), scale_papers=1_000_000, export_rows=100_000, scale_repeats=5, cli_repeats=3,
    lean_records=10_000, refetch_backfill_weeks=16, refetch_per_day=40, margin_requests=150,
    ranking_runs=20, ranking_datasets=4, ranking_repeats=3, stopping_runs=50, stopping_datasets=4,
    suggest_runs=5, suggest_datasets=4,
)
QUICK = Sizes(
    quick=True, ingest_records=1_000, ingest_repeats=1, biopython_repeats=1, backfill_records=(500, 1_500),
    rate_runs=((3, 1_000, 50, True), (10, 400, 20, True)), weekly_backfill=500,
    weekly_new=(0, 10, 500), scale_papers=10_000, export_rows=5_000, scale_repeats=3, cli_repeats=1,
    lean_records=1_000, refetch_backfill_weeks=4, refetch_per_day=10, margin_requests=60,
    ranking_runs=2, ranking_datasets=4, ranking_repeats=1, stopping_runs=1, stopping_datasets=1,
    suggest_runs=1, suggest_datasets=1,
)


@dataclass
class Row:
    what: str
    size: str
    figure: str
    ratio: str = "-"
    target: str = "-"
    met: bool | None = None  # None: a row that informs, without a target
    command: str = ""


@dataclass
class Profile:
    title: str
    summary: str  # the cProfile entries, already trimmed
    next_step: str


@dataclass
class Outcome:
    name: str
    rows: list[Row] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def median_seconds(call: Callable[[], object], repeats: int, *, warmups: int = 1) -> tuple[float, list[float]]:
    """The median wall time of `repeats` calls after `warmups` untimed ones, and every timed run."""
    for _ in range(warmups):
        call()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), runs


def profile_summary(call: Callable[[], object], *, top: int = 12) -> str:
    """cProfile of one call: the entries with the most internal time, one line each."""
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    return summarise_stats(pstats.Stats(profiler), top=top)


def summarise_stats(stats: pstats.Stats, *, top: int = 12) -> str:
    total = stats.total_tt or 1e-9
    entries = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    lines = [f"total {total:.2f} s"]
    for (filename, line, function), (_calls, ncalls, tottime, cumtime, _callers) in entries:
        where = _short_path(filename)
        name = f"{where}:{line}({function})" if line else function
        lines.append(f"{tottime:7.2f} s {100 * tottime / total:5.1f}%  cum {cumtime:7.2f} s  {ncalls:>8} calls  {name}")
    return "\n".join(lines)


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    try:
        return str(Path(filename).resolve().relative_to(REPO))
    except ValueError:
        return filename


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: VmHWM where /proc has it, else ru_maxrss (KiB on Linux). Linux
    carries ru_maxrss across exec(), so a child of a large benchmark process reported its parent's size at fork();
    VmHWM belongs to the process's own address space."""
    import re
    import resource

    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        status = ""
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a tracker subprocess: no TRACKER_ or NCBI_ setting leaks in from the caller's.

    Its modules' bytecode is kept and compiled before the first timed run, as Python does on a program's first
    start and pip on install: with PYTHONDONTWRITEBYTECODE set (as on the machines these figures come from) and
    the project installed in place, every timed start compiled the tracker's modules again, 0.1-0.5 s each time.
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TRACKER_", "NCBI_")) and key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONPYCACHEPREFIX"] = str(_compiled_bytecode())
    env.update(extra)
    return env


@cache
def _compiled_bytecode() -> Path:
    import subprocess
    import tempfile

    prefix = Path(tempfile.gettempdir()) / "tracker-benchmarks-bytecode"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([PYTHON, "-m", "compileall", "-q", "-j", "0", str(REPO / "tracker"), str(REPO / "benchmarks")],
                   env={**env, "PYTHONPYCACHEPREFIX": str(prefix)}, check=True, stdout=subprocess.DEVNULL)
    return prefix


def number(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def seconds(value: float) -> str:
    return f"{value * 1000:,.0f} ms" if value < 1 else f"{value:,.1f} s"
