"""Benchmark 11: the web app under load, served by a real `tracker serve` process on loopback.

The database is the scale benchmark's (benchmarks/scale.py) at LOAD_PAPERS papers, whose topic `sepsis` holds
about 5,000 of them, copied for the run (the clients write decisions and sessions). The server runs in team
mode, one account per client, with its defaults (SQLite, TRACKER_WEB_TIME_LIMIT 10 s); its memory is the highest
resident size of it and its processes together (the relevance refresher's), sampled every 50 ms in each phase, as the
backfill benchmark samples the CLI's; each process's own peak (VmHWM), added, is given beside it as an upper bound.

Clients are processes of their own (as browsers are), each with its own keep-alive connection and login, in a
closed loop without pauses (a harder load than people make): each visit screens (the screening page, a decision with a
reason and sometimes a note, the next paper it redirects to), reads the topic page (filters, orders, the next
keyset page), a paper, searches, the Topics page, or undoes. Every request is timed from sending to the last
byte of its answer; redirects count as the requests they are. Each phase is bounded in time and in requests.

Phases: one client alone (the single-client figures); 20 clients at once (p95 < 300 ms, no errors, server
under 600 MB); 45 of the costliest searches the caps allow at once beside one reader (the reader's answers and
the searches'); 40 logins at once for one name, then for 40 names from the same address (passwords checked,
from the answers: 401 is a checked wrong password, 429 a refusal with the wait, 503 "try again"; last, since
they leave the address refused for a while).
"""

from __future__ import annotations

import random
import re
import shutil
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import PYTHON, Outcome, Row, Sizes, child_env, corpus, number, seconds
from benchmarks.scale import DIGEST_TOPIC, ensure_database, make_home

LOAD_PAPERS = 37_500  # sepsis: one ninth of them, and every fifth paper's second topic: ~5,000
CLIENTS = 20
P95_TARGET = 0.3
MEMORY_TARGET_MB = 600
LOGINS = 40
SEARCHES = 45
PASSWORD = "load-benchmark-password"
# The costliest search the caps allow that a person might type: five prefixes of common stems, or'ed, with the
# commonest words of abstracts: bm25 scores nearly every paper.
COSTLY_SEARCH = ("con* OR pat* OR inc* OR pre* OR res* OR " + " OR ".join(
    ["patients", "the", "and", "with", "of", "in", "to", "for", "was", "were", "is", "by", "on", "at", "or", "as",
     "be", "this", "that", "from", "after", "group", "study", "results", "than", "not", "between", "had", "these",
     "we", "all", "during", "both", "but", "norepinephrine"]))
WORDS = ("norepinephrine", "vasopressin", "septic shock", "infusion", "bolus", "mortality", "hypotension",
         "cardiac", "dose", "randomized")
NEXT = re.compile(r'rel="next" href="([^"]+)"')
PMIDS = re.compile(r'href="/papers/(\d+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Timings:
    """Every request's (seconds, status, what) of one phase, from all its clients."""

    entries: list[tuple[float, int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, spent: float, status: int, what: str) -> None:
        with self.lock:
            self.entries.append((spent, status, what))

    def p95(self) -> float:
        ordered = sorted(spent for spent, _, _ in self.entries)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else 0.0

    def errors(self) -> list[tuple[int, str]]:
        return [(status, what) for _, status, what in self.entries if status >= 400]

    def by_kind(self) -> dict[str, float]:
        kinds: dict[str, list[float]] = {}
        for spent, _, what in self.entries:
            kinds.setdefault(what, []).append(spent)
        return {kind: sorted(values)[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
                for kind, values in sorted(kinds.items())}


class Server:
    """`python -m tracker serve` on a free port, over a copy of the database."""

    def __init__(self, workdir: Path, database: Path, env: dict[str, str] | None = None):
        self.home = make_home(workdir / "load-home")
        copy = workdir / "load.sqlite3"
        shutil.copyfile(database, copy)
        self.url_db = f"sqlite:///{copy}"
        self.env = child_env(TRACKER_HOME=str(self.home), TRACKER_DB_URL=self.url_db, **(env or {}))
        self.process: subprocess.Popen | None = None
        self.url = ""
        self._sampled_kb = 0
        self._sampling = threading.Event()

    def _sample(self) -> None:
        from benchmarks.fetching import tree_rss_kb

        while not self._sampling.is_set() and self.process is not None:
            self._sampled_kb = max(self._sampled_kb, tree_rss_kb(self.process.pid))
            self._sampling.wait(0.05)

    def sampled_mb(self, *, reset: bool = False) -> float:
        """The highest resident size of the server and its processes together, sampled every 50 ms since the last
        reset: what they held at once (`peak_mb` adds each one's own peak, reached at different moments)."""
        found = self._sampled_kb / 1024
        if reset:
            self._sampled_kb = 0
        return found

    def add_accounts(self, names: list[str]) -> None:
        from tracker.store import open_store
        from tracker.web.accounts import add_user

        store = open_store(self.url_db)
        try:
            for name in names:
                add_user(store, name, PASSWORD, admin=name == "chief")
        finally:
            store.close()

    def start(self) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.process = subprocess.Popen([PYTHON, "-m", "tracker", "serve", "--port", str(port)], env=self.env,
                                        cwd=self.home, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("http://"):
            raise RuntimeError(f"tracker serve did not start: {line!r}")
        self.url = f"http://127.0.0.1:{port}"
        threading.Thread(target=self._sample, daemon=True).start()

    def peak_mb(self) -> float:
        """The peak resident size of the server and of every process it started (the relevance refresher's),
        added up: an upper bound of what they held at once."""
        assert self.process is not None
        return sum(_peak_kb(pid) for pid in _tree(self.process.pid)) / 1024

    def stop(self) -> None:
        self._sampling.set()
        if self.process is not None:
            self.process.terminate()
            self.process.wait(60)


def _tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            found += _tree(int(child))
    return found


def _peak_kb(pid: int) -> int:
    try:
        found = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0
    return int(found.group(1)) if found else 0


class Reviewer:
    """One client: a logged-in reviewer who screens and reads, timing every request."""

    def __init__(self, url: str, name: str, papers: list[int], timings: Timings, seed: int):
        import httpx

        self.client = httpx.Client(base_url=url, timeout=120)
        self.name, self.papers, self.timings = name, papers, timings
        self.random = random.Random(seed)
        self.csrf = ""
        self.topic = f"/topics/{DIGEST_TOPIC}"

    def log_in(self) -> None:
        form = self.client.get("/login").text
        answer = self.client.post("/login", data={"csrf": CSRF.search(form).group(1), "user": self.name,
                                                  "password": PASSWORD, "next": "/"}, follow_redirects=True)
        if answer.status_code != 200:
            raise RuntimeError(f"{self.name} could not log in: {answer.status_code}")
        self.csrf = CSRF.search(answer.text).group(1)

    def get(self, path: str, what: str, **params) -> str:
        started = time.perf_counter()
        answer = self.client.get(path, params=params or None)
        self.timings.add(time.perf_counter() - started, answer.status_code, what)
        return answer.text

    def post(self, path: str, what: str, data: dict) -> str:
        started = time.perf_counter()
        answer = self.client.post(path, data={"csrf": self.csrf, **data})
        self.timings.add(time.perf_counter() - started, answer.status_code, what)
        location = answer.headers.get("location")
        return self.get(location, "screening page") if answer.status_code == 303 and location else answer.text

    def visit(self) -> None:
        roll = self.random.random()
        if roll < 0.45:
            page = self.get(f"{self.topic}/screen", "screening page")
            found = re.search(r'name="pmid" value="(\d+)"', page)
            if found:
                choice = self.random.choice(["include", "exclude", "exclude", "maybe"])
                data = {"pmid": found.group(1), "decision": choice,
                        "note": "checked the abstract" if self.random.random() < 0.3 else ""}
                if choice == "exclude":
                    data["reason"] = self.random.choice(["wrong population", "wrong study design", "other"])
                self.post(f"{self.topic}/screen", "decision", data)
        elif roll < 0.65:
            filters = self.random.choice([{}, {"state": "unscreened"}, {"tier": "rct"}, {"sort": "tier"},
                                          {"from": "2018", "state": "included"}, {"sort": "relevance"}])
            page = self.get(self.topic, "topic page", **filters)
            following = NEXT.search(page)
            if following and self.random.random() < 0.5:
                self.get(following.group(1).replace("&amp;", "&"), "topic page, next")
        elif roll < 0.80:
            self.get(f"/papers/{self.random.choice(self.papers)}", "paper page")
        elif roll < 0.90:
            words = " ".join(self.random.sample(WORDS, 2))
            self.get("/search", "search", q=words, **({"topic": DIGEST_TOPIC} if self.random.random() < 0.5 else {}))
        elif roll < 0.95:
            self.get("/", "topics page")
        else:
            self.post(f"{self.topic}/screen/undo", "undo", {})

    def close(self) -> None:
        self.client.close()


def _client(job: tuple[str, str, list[int], int, float, float, int]) -> tuple[list[tuple[float, int, str]], float]:
    """One client process: log in, wait for the common start, visit until the end (or `most` requests)."""
    url, name, papers, seed, start_at, seconds_each, most = job
    timings = Timings()
    reviewer = Reviewer(url, name, papers, timings, seed=seed)
    try:
        reviewer.log_in()
        timings.entries.clear()
        time.sleep(max(0.0, start_at - time.time()))
        began = time.monotonic()
        while time.monotonic() < began + seconds_each and len(timings.entries) < most:
            reviewer.visit()
    finally:
        reviewer.close()
    return timings.entries, time.monotonic() - began


def run_clients(url: str, names: list[str], papers: list[int], seconds_each: float, most: int) -> Timings:
    """`names` logged in, then visiting at once for `seconds_each` (or `most` requests each). Each client is a
    process of its own, as browsers are: threads of one process would wait for each other's interpreter lock and
    add that to what they measure."""
    import multiprocessing

    start_at = time.time() + 3 + 0.3 * len(names)  # after every login (Argon2, two at a time on the server)
    jobs = [(url, name, papers, index, start_at, seconds_each, most) for index, name in enumerate(names)]
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        results = pool.map(_client, jobs)
    timings = Timings()
    for entries, _ in results:
        timings.entries.extend(entries)
    timings.elapsed = max(spent for _, spent in results)  # type: ignore[attr-defined]
    return timings


def login_burst(url: str, names: list[str], password: str) -> list[int]:
    """Everyone in `names` sends the login form at the same moment; the answers' status codes."""
    import httpx

    clients = [httpx.Client(base_url=url, timeout=300) for _ in names]
    try:
        tokens = [CSRF.search(client.get("/login").text).group(1) for client in clients]
        start = threading.Barrier(len(clients))

        def post(index: int) -> int:
            start.wait()
            return clients[index].post("/login", data={"csrf": tokens[index], "user": names[index],
                                                       "password": password}).status_code

        with ThreadPoolExecutor(len(clients)) as pool:
            return list(pool.map(post, range(len(clients))))
    finally:
        for client in clients:
            client.close()


def search_burst(url: str, papers: list[int]) -> tuple[list[int], Timings]:
    """SEARCHES costly searches at once from one account, and one reader's pages meanwhile."""
    reader_timings, search_timings = Timings(), Timings()
    searcher = Reviewer(url, "searcher", papers, search_timings, seed=99)
    reader = Reviewer(url, "reader", papers, reader_timings, seed=98)
    searcher.log_in()
    reader.log_in()
    try:
        with ThreadPoolExecutor(SEARCHES) as pool:
            answers = [pool.submit(searcher.client.get, "/search", params={"q": COSTLY_SEARCH})
                       for _ in range(SEARCHES)]
            time.sleep(0.5)
            while not all(answer.done() for answer in answers):
                reader.get(reader.topic, "topic page")
                reader.get(f"/papers/{reader.random.choice(papers)}", "paper page")
            codes = [answer.result().status_code for answer in answers]
    finally:
        searcher.close()
        reader.close()
    return codes, reader_timings


def topic_papers(database: Path) -> list[int]:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(database)) as connection:
        return [pmid for (pmid,) in connection.execute("SELECT pmid FROM topic_paper WHERE topic = ? ORDER BY pmid",
                                                       (DIGEST_TOPIC,))]


def run(sizes: Sizes, workdir: Path) -> Outcome:
    corpus.require_samples()
    outcome = Outcome("load")
    database, built = ensure_database(LOAD_PAPERS)
    papers = topic_papers(database)
    server = Server(workdir, database)
    names = [f"reviewer{index:02d}" for index in range(CLIENTS)]
    server.add_accounts([*names, "searcher", "reader", "chief"])
    server.start()
    alone, together = (5.0, 15.0) if sizes.quick else (20.0, 60.0)
    most = 200 if sizes.quick else 2_000
    command = f"python -m benchmarks{sizes.flag} --only load"
    size = f"topic {DIGEST_TOPIC}: {number(len(papers))} papers (of {number(LOAD_PAPERS)})"
    try:
        one = run_clients(server.url, names[:1], papers, alone, most)
        outcome.rows.append(Row(
            "load: 1 client screening and browsing (tracker serve, SQLite, loopback)", size,
            f"p95 {seconds(one.p95())}, median {seconds(statistics.median(s for s, _, _ in one.entries))}, "
            f"{len(one.entries) / one.elapsed:,.0f} requests/s, {len(one.errors())} errors",  # type: ignore[attr-defined]
            command=command))
        server.sampled_mb(reset=True)
        many = run_clients(server.url, names, papers, together, most)
        peak, at_once = server.peak_mb(), server.sampled_mb(reset=True)
        rate = len(many.entries) / many.elapsed  # type: ignore[attr-defined]
        outcome.rows.append(Row(
            f"load: {CLIENTS} clients screening and browsing at once, no pauses", size,
            f"p95 {seconds(many.p95())} of {number(len(many.entries))} requests, "
            f"median {seconds(statistics.median(s for s, _, _ in many.entries))}, {rate:,.0f} requests/s",
            f"{many.p95() / P95_TARGET:.2f} of target", f"p95 < {seconds(P95_TARGET)}", many.p95() < P95_TARGET,
            command))
        errors = many.errors()
        outcome.rows.append(Row(f"load: {CLIENTS} clients: answers that were errors", size,
                                f"{len(errors)} of {number(len(many.entries))}"
                                + (f" ({', '.join(sorted({f'{status} {what}' for status, what in errors}))})"
                                   if errors else ""), "-", "0", not errors, command))
        outcome.rows.append(Row(f"load: {CLIENTS} clients: server memory", "tracker serve and its refresher, resident",
                                f"{at_once:,.0f} MB at once (50 ms samples; each process's own peak, added: "
                                f"{peak:,.0f} MB)", f"{at_once / MEMORY_TARGET_MB:.2f} of target",
                                f"< {MEMORY_TARGET_MB} MB", at_once < MEMORY_TARGET_MB, command))
        outcome.notes.append("Load, p95 by kind of request with 20 clients: " + ", ".join(
            f"{kind} {seconds(value)}" for kind, value in many.by_kind().items()) + ".")
        codes, reader = search_burst(server.url, papers)
        outcome.rows.append(Row(
            f"load: {SEARCHES} of the costliest searches the caps allow at once, beside one reader", size,
            f"searches: {codes.count(200)} answered, {codes.count(503)} stopped by the time limit, "
            f"{len(codes) - codes.count(200) - codes.count(503)} other; reader: p95 {seconds(reader.p95())} of "
            f"{len(reader.entries)} pages, {len(reader.errors())} errors", "-", "no reader errors, no 500",
            not reader.errors() and 500 not in codes, command))
        for label, burst_names, free in (("one name", ["reviewer00"] * LOGINS, 5),
                                         (f"{LOGINS} names, one address", [f"nobody{i}" for i in range(LOGINS)], 20)):
            server.sampled_mb(reset=True)
            codes = login_burst(server.url, burst_names, "not-the-password")
            checked = codes.count(401)
            peak, at_once = server.peak_mb(), server.sampled_mb(reset=True)
            outcome.rows.append(Row(
                f"load: {LOGINS} wrong logins at once, {label}", "tracker serve, Argon2id 64 MiB per check",
                f"{checked} passwords checked ({codes.count(429)} refused with the wait, {codes.count(503)} asked to "
                f"try again, {len(codes) - checked - codes.count(429) - codes.count(503)} other); server "
                f"{at_once:,.0f} MB at once during the burst (each process's own peak since it started, added: "
                f"{peak:,.0f} MB)", "-", f"<= {free} checked, < {MEMORY_TARGET_MB} MB",
                checked <= free and at_once < MEMORY_TARGET_MB, command))
    finally:
        server.stop()
    outcome.notes.append(
        f"Load: the scale database of {number(LOAD_PAPERS)} papers"
        + (f", built in {seconds(built)} by this run" if built is not None else ", reused from the cache")
        + f", copied; tracker serve in its own process (team mode, {CLIENTS} reviewer accounts), clients as "
        f"processes of their own on loopback (on the same two cores), each visit one of: screen a paper (45 %), "
        f"the topic page with a filter or order and maybe its next page (20 %), a paper (15 %), a search (10 %), "
        f"Topics (5 %), undo (5 %); "
        f"{seconds(alone)} alone, then {seconds(together)} with {CLIENTS} clients, no pauses between requests.")
    return outcome


__all__ = ["run", "COSTLY_SEARCH", "LOAD_PAPERS"]
