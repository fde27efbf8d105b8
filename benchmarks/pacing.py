"""The rate limiter's margin, measured: how far apart a request's recorded start and its arrival at the server fall
when the machine is busy, and how many requests reach the server in its busiest second, for several margins.

The client runs in a process of its own (`python -m benchmarks.pacing URL MARGIN REQUESTS`): three threads share
one EutilsClient and its RateLimiter at 10 requests/s, each burning CPU for 0-100 ms between its requests, while
a fourth thread burns CPU all along (the tracker's parsing and storing competing for the GIL), on this machine
with whatever else runs on it. It prints each request's recorded start (time.monotonic, which is the same clock
in every process); the server, in the benchmark's process, logs each arrival and answers 429 past 10 a second.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time

from benchmarks import PYTHON, REPO, Row, Sizes, child_env

RATE = 10
MARGINS = (0.0, 0.05, 0.1, 0.13)
TRIALS = 2


def burn(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        sum(range(200))


def client(url: str, margin: float, requests: int) -> dict[str, float]:
    from tracker.errors import EutilsError
    from tracker.ncbi.eutils import EutilsClient, RateLimiter
    from tracker.settings import Settings

    local = threading.local()
    starts: dict[str, float] = {}

    class Recording(RateLimiter):
        def _record(self, moment: float) -> None:
            starts[local.term] = moment
            super()._record(moment)

    limiter = Recording(RATE, margin=margin)
    eutils = EutilsClient(Settings(home=REPO, eutils_url=url, requests_per_second=float(RATE), max_attempts=1),
                          limiter=limiter)
    stop = threading.Event()
    threading.Thread(target=lambda: [burn(0.01) for _ in iter(stop.is_set, True)], daemon=True).start()
    numbers, lock, rng = iter(range(requests)), threading.Lock(), random.Random(3)

    def work() -> None:
        while True:
            with lock:
                number = next(numbers, None)
                pause = rng.uniform(0, 0.1)
            if number is None:
                return
            local.term = f"q{number}"
            try:
                eutils.search(local.term, retmax=0)
            except EutilsError:
                pass  # a 429: counted by the server
            burn(pause)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    eutils.close()
    return starts


def measure(margin: float, requests: int) -> dict:
    from tests.fake_eutils import FakeEutils

    with FakeEutils(rate_limit=RATE) as server:
        done = subprocess.run([PYTHON, "-m", "benchmarks.pacing", server.url, str(margin), str(requests)],
                              env=child_env(), cwd=REPO, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pacing client failed: {done.stderr[-2000:]}")
        starts = json.loads(done.stdout.strip().splitlines()[-1])
        log = server.requests
        lags = sorted(entry.time - starts[entry.params["term"]] for entry in log)
        return {"busiest": server.max_requests_per_second(), "refused": sum(1 for e in log if e.fault == "rate-limit"),
                "p50": lags[len(lags) // 2], "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
                "spread": lags[-1] - lags[0]}


def margin_rows(sizes: Sizes) -> tuple[list[Row], str]:
    from tracker.ncbi.eutils import DEFAULT_MARGIN

    rows = []
    for margin in MARGINS:
        trials = [measure(margin, sizes.margin_requests) for _ in range(TRIALS)]
        busiest = max(trial["busiest"] for trial in trials)
        refused = sum(trial["refused"] for trial in trials)
        chosen = margin == DEFAULT_MARGIN
        rows.append(Row(
            f"rate limiter margin {margin:g} s{' (the default)' if chosen else ''}: 3 sending threads + 1 CPU-bound, 10/s",
            f"{TRIALS} x {sizes.margin_requests} requests",
            f"busiest second {busiest}, {refused} answered 429; start-to-arrival p50 "
            f"{max(t['p50'] for t in trials) * 1000:.1f} ms, p99 {max(t['p99'] for t in trials) * 1000:.0f} ms, "
            f"spread {max(t['spread'] for t in trials) * 1000:.0f} ms",
            target="busiest <= 10, no 429" if chosen else "-", met=(busiest <= RATE and refused == 0) if chosen else None,
            command=f"python -m benchmarks{sizes.flag} --only rate-limit"))
    note = ("Rate limiter margin: " + " ".join((__doc__ or "").split("\n\n", 1)[1].split()) + " The spread (largest "
            "minus smallest start-to-arrival time) is how much closer two arrivals can come than their starts: the "
            "margin has to cover it. The default margin is tracker/ncbi/eutils.py's DEFAULT_MARGIN.")
    return rows, note


if __name__ == "__main__":
    print(json.dumps(client(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))))
