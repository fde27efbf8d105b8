"""Benchmark 1: ingest throughput, side by side on one generated efetch body.

Each side runs in its own fresh Python process (`python -m benchmarks.ingest SIDE FILE ...`), so its peak
resident memory is its own: a warm-up pass over a small body, then the timed runs; it prints one JSON line.

  tracker      PaperParser fed 64 KiB chunks -> save_papers() every 500 papers into a fresh SQLite database
  tracker-pipelined  the tracker's backfill path without the network: the same records as 500-record efetch
               bodies, each parsed on a prefetch thread (tracker/ncbi/prefetch.py, three ahead), each record's XML
               compressed as it is parsed and its papers' study facts read on the child process a backfill uses
               (tracker/runs/ingest.py packed, with_facts; tracker/facts/process.py), and saved in order by save_papers() in the
               calling thread (the bodies are cut from the file before the clock starts)
  tracker-parse  the same parser alone (no store), to show what storing costs
  lxml         the parse-only ceiling: lxml.iterparse + find() reading the same fields (lxml_ceiling.py)
  bare         lxml.iterparse finding the records and freeing them, reading nothing: libxml2's own floor
  biopython    Bio.Entrez.read, parse only, on the same records cut into 500-record efetch bodies (Entrez.parse
               cannot stream a PubmedArticleSet: Biopython 1.88 says it "does not represent a list", and
               Entrez.read of the whole body holds about ten times its size in memory)
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks import PYTHON, REPO, Outcome, Profile, Row, Sizes, child_env, corpus, number, peak_rss_mb

BATCH = 500
SIDES = ("tracker", "tracker-parse", "lxml", "bare", "biopython")  # benchmark 1's; tracker-pipelined is 6's
ALL_SIDES = (*SIDES, "tracker-pipelined")
_RECORD_END = re.compile(rb"</(?:PubmedArticle|PubmedBookArticle)>\n")


def ingest_with_tracker(path: Path, database: Path) -> int:
    from tracker.ncbi.pubmed import CHUNK_SIZE, PaperParser
    from tracker.store import open_store
    from tracker.store.papers import save_papers

    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    store = open_store(f"sqlite:///{database}")
    parser, pending, stored = PaperParser(), [], 0
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK_SIZE), b""):
            pending.extend(parser.feed(chunk))
            while len(pending) >= BATCH:
                save_papers(store, pending[:BATCH], topic="ingest")
                stored += BATCH
                del pending[:BATCH]
    pending.extend(parser.close())
    if pending:
        save_papers(store, pending, topic="ingest")
        stored += len(pending)
    store.close()
    return stored


def split_bodies(path: Path) -> list[Path]:
    """The records of a generated body as 500-record efetch bodies, one file each, beside it."""
    folder = path.with_name(path.stem + "-bodies")
    folder.mkdir(exist_ok=True)
    files = []
    for index, body in enumerate(efetch_bodies(path, BATCH)):
        files.append(folder / f"{index:05d}.xml")
        files[-1].write_bytes(body)
    return files


def ingest_pipelined(bodies: list[Path], database: Path, *, facts_process: bool = True) -> int:
    """The backfill's path without the network (tracker/runs/ingest.py fetch_each_batch), its study facts read on a
    child process as a fetch of more than one batch reads them, or in this process with `facts_process=False`."""
    from contextlib import nullcontext

    from tracker.facts.process import FactsProcess
    from tracker.ncbi.prefetch import prefetched
    from tracker.ncbi.pubmed import iter_papers
    from tracker.runs.ingest import packed, with_facts
    from tracker.store import open_store
    from tracker.store.papers import save_papers

    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    store = open_store(f"sqlite:///{database}")
    stored = 0
    with FactsProcess() if facts_process else nullcontext() as reader:
        jobs = [lambda ticket, body=body: with_facts([packed(paper) for paper in iter_papers(body)], reader)
                for body in bodies]
        for batch in prefetched(jobs, depth=3):
            save_papers(store, batch.papers, topic="ingest", facts=batch.facts)
            stored += len(batch.papers)
    store.close()
    return stored


def parse_with_tracker(path: Path) -> int:
    from tracker.ncbi.pubmed import iter_papers

    return sum(1 for _paper in iter_papers(path))


def parse_with_lxml(path: Path) -> int:
    from benchmarks.lxml_ceiling import iter_records

    return sum(1 for _record in iter_records(path))


def parse_bare(path: Path) -> int:
    from lxml import etree

    count = 0
    for _event, record in etree.iterparse(str(path), events=("end",), tag=corpus.RECORD_TAGS, resolve_entities=False,
                                          no_network=True, load_dtd=False):
        count += 1
        record.clear()
        while record.getprevious() is not None:
            del record.getparent()[0]
    return count


def efetch_bodies(path: Path, size: int) -> Iterator[bytes]:
    """The records of a generated body regrouped into bodies of `size` records, each framed as efetch does."""
    records: list[bytes] = []
    buffer = b""
    with open(path, "rb") as file:
        buffer = file.read(len(corpus.EFETCH_HEAD))
        if buffer != corpus.EFETCH_HEAD:
            raise ValueError(f"{path} was not written by benchmarks.corpus")
        buffer = b""
        for chunk in iter(lambda: file.read(1 << 20), b""):
            buffer += chunk
            start = 0
            for end in _RECORD_END.finditer(buffer):
                records.append(buffer[start:end.end()])
                start = end.end()
                if len(records) == size:
                    yield corpus.EFETCH_HEAD + b"".join(records) + corpus.EFETCH_TAIL
                    records = []
            buffer = buffer[start:]
    if records:
        yield corpus.EFETCH_HEAD + b"".join(records) + corpus.EFETCH_TAIL


def parse_with_biopython(path: Path) -> int:
    from Bio import Entrez

    count = 0
    for body in efetch_bodies(path, BATCH):
        result = Entrez.read(io.BytesIO(body))
        count += len(result["PubmedArticle"]) + len(result["PubmedBookArticle"])
    return count


def run_side(side: str, path: Path, warmup: Path, repeats: int, workdir: Path) -> dict:
    calls = {
        "tracker": lambda p: ingest_with_tracker(p, workdir / "ingest.sqlite3"),
        "tracker-pipelined": lambda p: ingest_pipelined(bodies[p], workdir / "ingest.sqlite3"),
        "tracker-parse": parse_with_tracker,
        "lxml": parse_with_lxml,
        "bare": parse_bare,
        "biopython": parse_with_biopython,
    }
    bodies = {p: split_bodies(p) for p in (path, warmup)} if side == "tracker-pipelined" else {}
    call = calls[side]
    call(warmup)
    runs, cpu, records = [], [], 0
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        records = call(path)
        runs.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return {"side": side, "records": records, "runs": runs, "median": statistics.median(runs),
            "cpu_median": statistics.median(cpu), "peak_rss_mb": peak_rss_mb()}


def profile_side(side: str, path: Path, workdir: Path) -> str:
    from benchmarks import profile_summary

    if side == "tracker":
        return profile_summary(lambda: ingest_with_tracker(path, workdir / "profile.sqlite3"))
    return profile_summary(lambda: {"tracker-parse": parse_with_tracker, "lxml": parse_with_lxml}[side](path))


def side_command(side: str, path: Path, warmup: Path, repeats: int, workdir: Path) -> list[str]:
    return [PYTHON, "-m", "benchmarks.ingest", side, str(path), "--warmup", str(warmup), "--repeats", str(repeats),
            "--workdir", str(workdir)]


def measure(side: str, path: Path, warmup: Path, repeats: int, workdir: Path) -> dict:
    done = subprocess.run(side_command(side, path, warmup, repeats, workdir), env=child_env(), cwd=REPO,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ingest side {side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(sizes: Sizes, workdir: Path) -> Outcome:
    outcome = Outcome("ingest")
    bases = corpus.load_base_records(corpus.require_samples())
    body = workdir / f"efetch-{sizes.ingest_records}.xml"
    warmup = workdir / "efetch-warmup.xml"
    warmup_records = max(100, sizes.ingest_records // 100)
    megabytes = corpus.write_efetch_file(body, bases, sizes.ingest_records) / 1e6
    corpus.write_efetch_file(warmup, bases, warmup_records)
    results = {}
    for side in SIDES:
        repeats = sizes.biopython_repeats if side == "biopython" else (
            sizes.ingest_repeats if side in ("tracker", "lxml") else 1)
        results[side] = measure(side, body, warmup, repeats, workdir)
        if results[side]["records"] != sizes.ingest_records:
            raise RuntimeError(f"ingest side {side} read {results[side]['records']} of {sizes.ingest_records} records")
    rate = {side: result["records"] / result["median"] for side, result in results.items()}
    ratio = rate["tracker"] / rate["lxml"]
    size = f"{number(sizes.ingest_records)} records, {number(megabytes)} MB"
    reproduce = f"python -m benchmarks{sizes.flag} --only ingest"

    def figure(side: str) -> str:
        result = results[side]
        runs = len(result["runs"])
        return (f"{number(rate[side])} records/s (median of {runs}), peak RSS {number(result['peak_rss_mb'])} MB"
                if runs > 1 else f"{number(rate[side])} records/s (1 run), peak RSS {number(result['peak_rss_mb'])} MB")

    outcome.rows += [
        Row("ingest (a): tracker parse + store, PaperParser -> save_papers per 500 into a fresh SQLite", size,
            figure("tracker"), f"a/b = {ratio:.2f}", "a/b >= 0.7", ratio >= 0.7, reproduce),
        Row("ingest (b): lxml iterparse + find() of the same fields, parse only (ceiling)", size, figure("lxml"),
            command=reproduce),
        Row("ingest (c): Biopython Entrez.read per 500-record body, parse only", size, figure("biopython"),
            f"a/c = {rate['tracker'] / rate['biopython']:.2f}", command=reproduce),
        Row("ingest: tracker PaperParser alone, parse only (no store)", size, figure("tracker-parse"),
            f"vs b = {rate['tracker-parse'] / rate['lxml']:.2f}", command=reproduce),
        Row("ingest: lxml iterparse reading no field (libxml2 floor)", size, figure("bare"),
            f"vs b = {rate['bare'] / rate['lxml']:.2f}", command=reproduce),
    ]
    if ratio < 0.7:
        profile_body = workdir / "efetch-profile.xml"
        corpus.write_efetch_file(profile_body, bases, min(sizes.ingest_records, 5_000))
        done = subprocess.run([PYTHON, "-m", "benchmarks.ingest", "tracker", str(profile_body), "--profile",
                               "--workdir", str(workdir)], env=child_env(), cwd=REPO, capture_output=True, text=True,
                              check=False)
        outcome.profiles.append(Profile(
            "ingest (a): tracker parse + store, 5,000 records", done.stdout.strip() or done.stderr[-2000:],
            "storing costs more than parsing: see the entries above (zlib.compress of each record's XML, "
            "JSON encoding, SQLite executemany)"))
    outcome.notes.append(
        "Ingest: each side runs in its own process over the same generated file (a warm-up pass over a "
        f"{warmup_records:,}-record body first, untimed); peak RSS is that process's ru_maxrss. Biopython's "
        "Entrez.parse cannot stream a PubmedArticleSet (\"does not represent a list\"), and Entrez.read of the "
        "whole body needs about ten times its size in memory, so it reads the same records as 500-record "
        "efetch bodies cut from the file as it goes (the cutting is included and negligible).")
    return outcome


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("side", choices=ALL_SIDES)
    parser.add_argument("file", type=Path)
    parser.add_argument("--warmup", type=Path)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary of one run instead")
    args = parser.parse_args(argv)
    if args.side.startswith("tracker"):
        from tracker.memory import tune_allocators

        tune_allocators()  # as every tracker process does (tracker/cli/base.py main)
    if args.profile:
        print(profile_side(args.side, args.file, args.workdir))
        return
    print(json.dumps(run_side(args.side, args.file, args.warmup or args.file, args.repeats, args.workdir)))


if __name__ == "__main__":
    sys.exit(main())
