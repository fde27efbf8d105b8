"""The benchmark's quick mode runs end to end and produces every row; no timing is asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from benchmarks.fetching import libfaketime
from tests.conftest import REPO

# The backfill adds its run under libfaketime where Debian's faketime package is installed.
EXPECTED_ROWS = {"ingest": 5, "backfill": 6 + (libfaketime() is not None), "rate-limit": 6, "weekly": 3, "scale": 4,
                 "versus-lean": 4, "refetch": 2, "web": 11, "ranking": 18, "stopping": 8, "search": 11, "suggest": 11,
                 "facts": 14, "load": 7}
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


@pytest.mark.slow
def test_quick_mode_runs_every_benchmark_and_prints_its_rows(samples_dir, tmp_path):
    report = tmp_path / "report.md"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--output", str(report)], cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TRACKER_BENCHMARK_CACHE": str(tmp_path / "cache"),
                               "TMPDIR": str(tmp_path)}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| # |")]
    seen: dict[str, int] = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        benchmark, what, _size, figure, _ratio, target, met = cells
        name = benchmark.split(" ", 1)[1]
        seen[name] = seen.get(name, 0) + 1
        assert what and figure
        assert NUMBER.search(figure), row
        assert met in ("yes", "**no**", "-"), row
        if met != "-":
            assert target != "-" and NUMBER.search(target), row
    assert seen == EXPECTED_ROWS
    written = report.read_text(encoding="utf-8")
    assert all(line in written for line in rows)
    assert "900,000,000" in written and "## Reproduce" in written
    assert not (REPO / "BENCHMARKS.md").exists() or "--quick" not in (REPO / "BENCHMARKS.md").read_text()


def test_without_the_samples_the_benchmark_says_where_it_looked(tmp_path):
    from benchmarks import corpus

    with pytest.raises(SystemExit) as stopped:
        corpus.require_samples(tmp_path / "repo")
    assert str(tmp_path / "shared" / "pubmed-samples") in str(stopped.value)


def test_with_facts_skipped_neither_ingest_path_reads_them():
    from benchmarks.facts import facts_skipped
    from tests.test_study_facts import rct_paper
    from tracker.facts import StudyFacts
    from tracker.runs.ingest import with_facts
    from tracker.store.rows import facts_of

    paper = rct_paper(41)
    with facts_skipped():
        assert (facts_of(paper), with_facts([paper]).facts) == (StudyFacts(), {41: StudyFacts()})
    assert (facts_of(paper).design, with_facts([paper]).facts[41].design) == ("rct", "rct")


def test_without_a_postgresql_server_the_search_benchmark_says_what_to_do(monkeypatch):
    import socket

    from benchmarks import search

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(search, "POSTGRES_URL", f"postgresql+psycopg://tracker:secret@127.0.0.1:{port}/tracker_test")
    with pytest.raises(SystemExit) as stopped:
        search.connect_postgres()
    message = str(stopped.value)
    assert message.startswith(f"benchmark search: no PostgreSQL server answered at "
                              f"postgresql+psycopg://tracker:***@127.0.0.1:{port}/tracker_test (")
    assert message.endswith("). Start one (.ci/run shows how the tests' server is made) or set "
                            "TRACKER_BENCHMARK_POSTGRES_URL; `python -m benchmarks --only NAME ...` runs the others.")
    assert "secret" not in message


def test_replicas_get_fresh_pmids_and_marked_titles(samples_dir):
    from benchmarks import corpus
    from tracker.ncbi.pubmed import iter_papers

    bases = corpus.load_base_records(samples_dir)
    assert len(bases) >= 170
    replicas = list(corpus.replicas(bases, len(bases) + 2))
    body = corpus.EFETCH_HEAD + b"\n".join(r.xml for r in replicas) + b"\n" + corpus.EFETCH_TAIL
    papers = list(iter_papers(body))
    assert [p.pmid for p in papers] == [corpus.FIRST_PMID + i for i in range(len(replicas))]
    assert all("[benchmark replica: " in p.title for p in papers)
    assert papers[-1].abstract == next(iter_papers(corpus.EFETCH_HEAD + bases[1].xml + corpus.EFETCH_TAIL)).abstract
