"""Benchmarks 2-4: the real `tracker fetch` in a subprocess against tests/fake_eutils.py, started here.

2. backfill: wall time, requests (the fake server's log) and peak memory of a first run over N records;
3. rate limit: NCBI's real limits (3/s without a key, 10/s with one), the fake server answering 429 past them;
4. weekly run: the requests of a run finding 0, 10 or 500 new papers after a backfill.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import subprocess
import threading
import time
from bisect import bisect_left, bisect_right
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from benchmarks import PYTHON, Outcome, Row, Sizes, child_env, corpus, number, seconds

TOPIC = "backfill"
SINCE = date(2015, 1, 1)
MAX_RETRIEVABLE = 9999
DEFAULT_BATCH = 500
OVERLAP_STORED = 20  # stored records the weekly window reaches back over


@dataclass
class CliRun:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    sampled_rss_mb: float  # highest VmRSS sum of the process and its descendants, sampled every 50 ms
    maxrss_mb: float  # ru_maxrss of the process, from wait4()
    user_seconds: float = 0.0  # CPU time of the process and its waited-for descendants, from wait4()
    system_seconds: float = 0.0


def make_home(folder: Path, slug: str = TOPIC, since: date = SINCE) -> Path:
    (folder / "queries").mkdir(parents=True, exist_ok=True)
    (folder / "queries" / f"{slug}.toml").write_text(
        f'title = "Benchmark topic {slug}"\nquery = "norepinephrine"\nsince = {since.isoformat()}\n', encoding="utf-8")
    return folder


def fake_records(replicas: list[corpus.Replica], created: date | None = None) -> list:
    from tests.fake_eutils import FakeRecord

    return [FakeRecord(r.pmid, r.xml, created or r.created) for r in replicas]


def tree_rss_kb(pid: int) -> int:
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending += [int(child) for child in children.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> CliRun:
    """`python -m tracker ARGS`, sampling the memory of its process tree every 50 ms until it exits."""
    started = time.perf_counter()
    process = subprocess.Popen([PYTHON, "-m", "tracker", *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_kb(process.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # Reading the pipes in threads keeps a chatty child from blocking; wait4 gives this child's own ru_maxrss.
    outputs: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda name=name, pipe=pipe: outputs.__setitem__(name, pipe.read()))
               for name, pipe in (("out", process.stdout), ("err", process.stderr))]
    for reader in readers:
        reader.start()
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    for reader in readers:
        reader.join()
    return CliRun(elapsed, process.returncode, outputs["out"].decode(), outputs["err"].decode(), peak / 1024,
                  usage.ru_maxrss / 1024, usage.ru_utime, usage.ru_stime)


def libfaketime() -> Path | None:
    """Debian's libfaketime (package faketime), which acceptance tests of time-dependent behaviour preload."""
    return next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), None)


def fetch_env(url: str, home: Path, **extra: str) -> dict[str, str]:
    return child_env(TRACKER_HOME=str(home), TRACKER_EUTILS_URL=url, NCBI_EMAIL="benchmarks@tracker.test",
                     TRACKER_TIMEOUT="120", **extra)


def expected_searches(created: list[date], start: date, end: date) -> int:
    """The esearch calls the documented slicing needs: halve any window past 9,999 records until each fits."""
    ordered = sorted(created)
    calls, pending = 0, [(start, end)]
    while pending:
        low, high = pending.pop()
        calls += 1
        count = bisect_right(ordered, high) - bisect_left(ordered, low)
        if count > MAX_RETRIEVABLE:
            middle = low + (high - low) // 2
            pending += [(middle + timedelta(days=1), high), (low, middle)]
    return calls


_CLAUSE = re.compile(r'"(\d{4}/\d{2}/\d{2})"\[(crdt|mdat)\] : "(\d{4}/\d{2}/\d{2})"\[(?:crdt|mdat)\]\)$')


@dataclass
class Requests:
    """The fake server's log of one run, by purpose."""

    window: int = 0  # esearch of the create-date [crdt] window (one per slice and page)
    total: int = 0  # esearch of the query without dates (the total Count, retmax=0)
    modified: int = 0  # esearch of the modification-date [mdat] window
    efetch: int = 0
    fetched: list[int] = field(default_factory=list)  # every PMID asked of efetch, in order
    modified_windows: list[tuple[date, date]] = field(default_factory=list)

    @property
    def esearch(self) -> int:
        return self.window + self.total + self.modified

    @property
    def all(self) -> int:
        return self.esearch + self.efetch

    def describe(self) -> str:
        searches = f"{self.window} window" + (f" + {self.total} total Count" if self.total else "") + (
            f" + {self.modified} modified" if self.modified else "")
        return f"{self.all} ({searches} esearch + {self.efetch} efetch)"


def classify(log) -> Requests:
    found = Requests()
    for entry in log:
        if entry.endpoint == "efetch":
            found.efetch += 1
            found.fetched += [int(pmid) for pmid in entry.params.get("id", "").split(",") if pmid]
            continue
        clause = _CLAUSE.search(entry.params.get("term", ""))
        if clause is None:
            found.total += 1
        elif clause.group(2) == "mdat":
            found.modified += 1
            found.modified_windows.append((_day(clause.group(1)), _day(clause.group(3))))
        else:
            found.window += 1
    return found


def _day(text: str) -> date:
    return date(*(int(part) for part in text.split("/")))


def stored_papers(home: Path) -> int:
    with closing(sqlite3.connect(home / "db" / "tracker.sqlite3")) as connection:
        return connection.execute("SELECT count(*) FROM paper").fetchone()[0]


def command_line(env_names: str, args: str) -> str:
    return f"{env_names} python -m tracker {args}"


# -- 2. backfill ---------------------------------------------------------------------------------

def backfill(sizes: Sizes, workdir: Path) -> Outcome:
    from tests.fake_eutils import FakeEutils

    outcome = Outcome("backfill")
    bases = corpus.load_base_records(corpus.require_samples())
    peaks: dict[int, float] = {}
    runs: dict[int, tuple[CliRun, int, int, int, int]] = {}
    for count in sizes.backfill_records:
        replicas = list(corpus.replicas(bases, count))
        home = make_home(workdir / f"backfill-{count}")
        with FakeEutils() as server:
            server.add(*fake_records(replicas))
            del replicas
            cli = run_cli(["fetch", TOPIC], fetch_env(server.url, home, TRACKER_RATE_LIMIT="1000"), home)
            if cli.returncode != 0:
                raise RuntimeError(f"backfill of {count} failed: {cli.stderr[-2000:]}")
            requests = classify(server.requests)
            created = [corpus.created_on(index, count) for index in range(count)]
        runs[count] = (cli, requests, expected_searches(created, SINCE, date.today() + timedelta(days=1)),
                       stored_papers(home))
        peaks[count] = cli.sampled_rss_mb
        if count == min(sizes.backfill_records) and (preload := libfaketime()) is not None:
            faked = faked_clock_run(server_records=list(corpus.replicas(bases, count)), preload=preload,
                                    home=make_home(workdir / f"backfill-{count}-faketime"))
            outcome.rows.append(faked_clock_row(sizes, count, cli, faked))
    smallest, largest = min(peaks), max(peaks)
    growth = peaks[largest] / peaks[smallest]
    for count, (cli, requests, want_slices, stored) in runs.items():
        want_fetches = math.ceil(count / DEFAULT_BATCH)
        want = want_slices + requests.total + want_fetches
        reproduce = f"python -m benchmarks{sizes.flag} --only backfill  # runs: " + command_line(
            "TRACKER_EUTILS_URL=<fake> TRACKER_RATE_LIMIT=1000", f"fetch {TOPIC}")
        size = f"{number(count)} records"
        outcome.rows += [
            Row("backfill via CLI: wall time (process start to exit)", size,
                f"{seconds(cli.seconds)} ({number(count / cli.seconds)} records/s), {number(stored)} stored",
                command=reproduce),
            Row("backfill via CLI: requests", size, requests.describe(), f"{requests.all / want:.2f} of target",
                f"= {want_slices} window slice{'s' if want_slices != 1 else ''}"
                f"{' + 1 total Count' if requests.total else ''} + ceil({number(count)}/500) efetch = {want}",
                requests.window == want_slices and requests.total <= 1 and requests.modified == 0
                and requests.efetch == want_fetches and stored == count, reproduce),
            Row("backfill via CLI: peak RSS of the process tree", size,
                f"{number(cli.sampled_rss_mb)} MB (50 ms VmRSS samples; wait4 ru_maxrss {number(cli.maxrss_mb)} MB)",
                f"{number(largest)}/{number(smallest)}: {growth:.2f}",
                f"< 150 MB; {number(largest)} <= 1.1 x {number(smallest)}",
                cli.sampled_rss_mb < 150 and growth <= 1.1, reproduce),
        ]
    outcome.notes.append(
        "Backfill: a fresh tracker home with one topic (since 2015-01-01) and the fake E-utilities server started "
        "by the benchmark process, serving the replicas with create dates spread evenly over 2015-01-01.."
        f"{corpus.LAST_CREATED}; the window therefore splits by date until every slice holds at most 9,999 "
        "records, and the target counts the esearch calls that slicing needs (computed from the same dates), "
        "plus the one esearch for the query's total Count that every run makes since tracker/runs/watch.py. "
        "Peak RSS is the highest sum of VmRSS over the CLI process and its descendants, sampled every 50 ms; "
        "ru_maxrss from wait4() of the CLI process is shown beside it but is not the CLI's own peak: it also counts "
        "the benchmark process's pages (the fake server holds the whole corpus in memory) that the child shared "
        "between fork() and exec(), so the target uses the sampled figure.")
    return outcome


def faked_clock_run(*, server_records: list[corpus.Replica], preload: Path, home: Path) -> CliRun:
    """The same backfill with libfaketime preloaded, its clock started at 10:00 today, against a server of its own."""
    from tests.fake_eutils import FakeEutils

    with FakeEutils() as server:
        server.add(*fake_records(server_records))
        env = fetch_env(server.url, home, TRACKER_RATE_LIMIT="1000", LD_PRELOAD=str(preload),
                        FAKETIME=f"@{date.today():%Y-%m-%d} 10:00:00")
        cli = run_cli(["fetch", TOPIC], env, home)
    if cli.returncode != 0:
        raise RuntimeError(f"backfill under libfaketime failed: {cli.stderr[-2000:]}")
    return cli


def faked_clock_row(sizes: Sizes, count: int, real: CliRun, faked: CliRun) -> Row:
    ratio = faked.seconds / real.seconds
    return Row(
        "backfill via CLI under libfaketime (LD_PRELOAD, FAKETIME=@<today> 10:00:00) beside the real clock",
        f"{number(count)} records",
        f"libfaketime {seconds(faked.seconds)} (user {faked.user_seconds:.1f} s, system {faked.system_seconds:.1f} s); "
        f"real clock {seconds(real.seconds)} (user {real.user_seconds:.1f} s, system {real.system_seconds:.1f} s)",
        f"{ratio:.2f}", "<= 1.2 x real clock", ratio <= 1.2,
        f"python -m benchmarks{sizes.flag} --only backfill  # runs: " + command_line(
            "LD_PRELOAD=libfaketime.so.1 FAKETIME='@<today> 10:00:00' TRACKER_EUTILS_URL=<fake> TRACKER_RATE_LIMIT=1000",
            f"fetch {TOPIC}"))


# -- 3. rate limit -------------------------------------------------------------------------------

def rate_limit(sizes: Sizes, workdir: Path) -> Outcome:
    from tests.fake_eutils import FakeEutils

    outcome = Outcome("rate-limit")
    bases = corpus.load_base_records(corpus.require_samples())
    for limit, count, batch, has_target in sizes.rate_runs:
        home = make_home(workdir / f"rate-{limit}-{count}-{batch}")
        key = {"NCBI_API_KEY": "benchmark-dummy-key"} if limit == 10 else {}
        with FakeEutils(rate_limit=limit) as server:
            server.add(*fake_records(list(corpus.replicas(bases, count))))
            cli = run_cli(["fetch", TOPIC], fetch_env(server.url, home, TRACKER_EFETCH_BATCH=str(batch), **key), home)
            if cli.returncode != 0:
                raise RuntimeError(f"rate-limit run at {limit}/s failed: {cli.stderr[-2000:]}")
            log = server.requests
            busiest = server.max_requests_per_second()
        refused = sum(1 for entry in log if entry.fault == "rate-limit")
        span = log[-1].time - log[0].time
        achieved = (len(log) - 1) / span if span > 0 else float("inf")
        env_names = ("NCBI_API_KEY=dummy " if key else "") + f"TRACKER_EFETCH_BATCH={batch} TRACKER_EUTILS_URL=<fake>"
        reproduce = (f"python -m benchmarks{sizes.flag} --only rate-limit  # runs: "
                     + command_line(env_names, f"fetch {TOPIC}"))
        what = f"rate limit {limit}/s ({'dummy API key' if key else 'no key'}), efetch batch {batch}"
        size = f"{number(count)} records, {len(log)} requests"
        figure = (f"busiest 1-s window {busiest}, achieved {achieved:.2f}/s over {span:.1f} s, {refused} answered 429")
        if has_target:
            outcome.rows.append(Row(what, size, figure, f"{achieved / limit:.2f} of limit",
                                    f"busiest <= {limit}, achieved >= {0.85 * limit:.2f}/s, no 429",
                                    busiest <= limit and achieved >= 0.85 * limit and refused == 0, reproduce))
        else:
            outcome.rows.append(Row(what + ", bound by parse + store", size, figure, f"{achieved / limit:.2f} of limit",
                                    f"busiest <= {limit}, no 429", busiest <= limit and refused == 0, reproduce))
    outcome.notes.append(
        "Rate limit: the CLI runs with NCBI's own limits (no TRACKER_RATE_LIMIT); the fake server counts arrivals "
        "in a sliding one-second window and answers 429 past the limit. The achieved rate is (requests - 1) / "
        "(last arrival - first arrival). Up to three efetch requests are on their way while a batch is parsed and "
        "stored (tracker/ncbi/prefetch.py), yet a 100-record batch still costs more parsing and storing than a tenth of "
        "a second: at 10/s the run with batch 100 can be bound by that work rather than by the limiter (shown "
        "without the rate target), and the 10/s target is measured with batch 20. The limiter's window is one "
        "second plus its margin (0.13 s), so the most it allows is 10/1.13 = 8.8 requests/s.")
    from benchmarks.pacing import margin_rows

    rows, note = margin_rows(sizes)
    outcome.rows += rows
    outcome.notes.append(note)
    return outcome


# -- 4. weekly run -------------------------------------------------------------------------------

def weekly(sizes: Sizes, workdir: Path) -> Outcome:
    from tests.fake_eutils import FakeEutils

    outcome = Outcome("weekly")
    bases = corpus.load_base_records(corpus.require_samples())
    home = make_home(workdir / "weekly")
    today = date.today()
    backfilled = list(corpus.replicas(bases, sizes.weekly_backfill))
    env_extra = {"TRACKER_RATE_LIMIT": "1000"}
    with FakeEutils() as server:
        recent = {r.pmid for r in backfilled[-OVERLAP_STORED:]}
        server.add(*fake_records(backfilled[:-OVERLAP_STORED]))
        server.add(*fake_records(backfilled[-OVERLAP_STORED:], created=today - timedelta(days=1)))
        first = run_cli(["fetch", TOPIC], fetch_env(server.url, home, **env_extra), home)
        if first.returncode != 0:
            raise RuntimeError(f"weekly backfill failed: {first.stderr[-2000:]}")
        stored = {r.pmid for r in backfilled}
        next_index = sizes.weekly_backfill
        created_on = {r.pmid: r.created for r in backfilled}
        created_on.update({pmid: today - timedelta(days=1) for pmid in recent})
        for new in sizes.weekly_new:
            added = list(corpus.replicas(bases, new, first_index=next_index))
            next_index += new
            if added:
                server.add(*fake_records(added, created=today))
            server.reset_log()
            cli = run_cli(["fetch", TOPIC], fetch_env(server.url, home, **env_extra), home)
            if cli.returncode != 0:
                raise RuntimeError(f"weekly run with {new} new failed: {cli.stderr[-2000:]}")
            requests = classify(server.requests)
            # A stored paper may be fetched again only when the modification search listed it (a fake
            # record's modification date is its create date).
            listed = {pmid for low, high in requests.modified_windows for pmid, day in created_on.items()
                      if low <= day <= high}
            new_pmids = {r.pmid for r in added}
            refetched = set(requests.fetched) & stored
            unmodified = refetched - listed
            want = math.ceil(new / DEFAULT_BATCH) + math.ceil(len(refetched & listed) / DEFAULT_BATCH)
            ok = (requests.window == 1 and requests.total <= 1 and requests.modified <= 1 and requests.efetch == want
                  and not unmodified and set(requests.fetched) - stored == new_pmids)
            stored |= new_pmids
            created_on.update({pmid: today for pmid in new_pmids})
            outcome.rows.append(Row(
                "weekly run after a backfill: requests", f"{number(new)} new, {number(len(stored))} stored",
                f"{requests.describe()}; {len(refetched)} stored papers refetched, all listed as modified: "
                f"{'yes' if not unmodified else 'no'}; {seconds(cli.seconds)}",
                target=f"1 window esearch + ceil({new}/500) efetch for new papers = {1 + math.ceil(new / 500)}; "
                       "a stored paper refetched only when listed as modified",
                met=ok,
                command=f"python -m benchmarks{sizes.flag} --only weekly  # runs: "
                        + command_line("TRACKER_EUTILS_URL=<fake> TRACKER_RATE_LIMIT=1000", f"fetch {TOPIC}")))
        assert recent <= stored
    outcome.notes.append(
        f"Weekly run: after a backfill of {number(sizes.weekly_backfill)} records, whose last {OVERLAP_STORED} were "
        "created yesterday (inside the run's 3-day overlap, so the create-date search lists them again), each run "
        "adds 0, 10 or 500 records created today. Since tracker/runs/watch.py, every run also asks for the query's "
        "total Count (one esearch without dates) and, after the first run, for the records modified [mdat] since "
        "the last check, and refetches the stored ones among them (a fake record's modification date is its "
        "create date, so the three runs, all on one day, list yesterday's and the earlier runs' papers again). "
        "The target therefore counts one create-date search and ceil(new/500) efetch requests for new papers, "
        "plus those two searches and the efetch batches of refetched papers, and checks that no stored paper is "
        "fetched unless the modification search listed it.")
    return outcome
