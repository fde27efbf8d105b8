"""Benchmark 6: the web app's pages on the scale benchmark's database (benchmarks/scale.py: N papers in the 9
shipped topics), served in-process and asked through Starlette's test client, so each figure is the server's
time for the request (routing, the guard's session lookup, the views' SQL, rendering), without a network.

Each page is asked `WEB_REQUESTS` times (after a first request of each address, timed apart) over a set of
realistic requests, and its p95 is compared with the 200 ms target: the topics page; a topic page plain and
with filters (state, tier, years, late arrivals, retractions; by tier), with the study-facts filters (design,
population, "states a dose") and its Doses page, and searched within the topic;
page 50 of a topic, reached by following the keyset "next" links; paper pages; a search of the whole store;
the screening page; PRISMA; the runs page. Counts the store keeps while memberships do not change
(tracker/store/papers.py) and the Topics page's charts are computed by the first request: its time is
reported beside the p95. The cached database is only read, except for the one personal-mode session the
requests carry, removed at the end, and the search's champion lists (tracker/store/search.py), cleared first so
that the first request of each search page ranks its terms' lists, as the first search after a change does.
"""

from __future__ import annotations

import re
import statistics
import time
import warnings
from pathlib import Path

from benchmarks import Outcome, Profile, Row, Sizes, corpus, number, seconds
from benchmarks.scale import DIGEST_TOPIC, SEARCH_TEXT, ensure_database, make_home, slowest_statements

TARGET = 0.2
WEB_REQUESTS = 40
QUICK_REQUESTS = 10
PAGE_DEPTH = 50


NEXT_STEPS = {
    "search": "see which statement is slow: a query the champion lists cannot answer (OR, NOT, groups, too few "
              "papers in every term's list) ranks every match (tracker/store/search.py; benchmarks/search.py).",
    "topic page, searched": "a search within a topic is search_papers(topic=..., limit=500): its terms' lists within "
                            "the topic hold 2,000 papers; fewer than 500 in all of them rank every match in the topic.",
}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def ensure_indexes(url: str) -> list[str]:
    """Create the models' indexes a cached database lacks (one built before an index was added: the cache is
    keyed by tables and columns); returns their names."""
    from sqlalchemy import create_engine, inspect
    from sqlmodel import SQLModel

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            found = inspect(connection)
            made = []
            for table in SQLModel.metadata.sorted_tables:
                if not found.has_table(table.name):
                    continue
                present = {index["name"] for index in found.get_indexes(table.name)}
                for index in table.indexes:
                    if index.name not in present:
                        index.create(connection)
                        made.append(index.name)
            return made
    finally:
        engine.dispose()


def clear_search_lists(url: str) -> None:
    from sqlalchemy import create_engine, text

    from tracker.store.schema import SEARCH_LISTS

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"DELETE FROM {SEARCH_LISTS}"))
    finally:
        engine.dispose()


def run(sizes: Sizes, workdir: Path) -> Outcome:
    from tracker.settings import Settings
    from tracker.store import open_store
    from tracker.store.accounts import delete_personal_sessions
    from tracker.web import build_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    corpus.require_samples()
    outcome = Outcome("web")
    database, built = ensure_database(sizes.scale_papers)
    home = make_home(workdir / "web-home")
    url = f"sqlite:///{database}"
    started = time.perf_counter()
    made = ensure_indexes(url)
    indexing = time.perf_counter() - started
    clear_search_lists(url)
    settings = Settings.from_env(home=home, env={"TRACKER_DB_URL": url, "TRACKER_REVIEWER": "benchmark"})
    store = open_store(url)
    repeats = QUICK_REQUESTS if sizes.quick else WEB_REQUESTS
    client = None
    try:
        app, access = build_app(settings, store, host="127.0.0.1", port=8765)
        client = TestClient(app, base_url="http://127.0.0.1:8765")
        client.__enter__()  # the app's lifespan, as uvicorn runs it
        client.get(f"/?token={access.token}")
        topic = f"/topics/{DIGEST_TOPIC}"
        pmids = [int(pmid) for pmid in re.findall(r'href="/papers/(\d+)"', client.get(topic).text)][:repeats]
        deep = topic
        for _ in range(PAGE_DEPTH - 1):
            found = re.search(r'rel="next" href="([^"]+)"', client.get(deep).text)
            if not found:
                break
            deep = found.group(1).replace("&amp;", "&")
        search = "+".join(SEARCH_TEXT.split())
        pages = {
            "topics page": ["/"],
            "topic page": [topic],
            "topic page, filtered": [f"{topic}?state=unscreened&tier=rct&from=2015", f"{topic}?tier=guideline",
                                     f"{topic}?sort=tier", f"{topic}?late=1", f"{topic}?retracted=1",
                                     f"{topic}?state=included&from=2020&to=2024"],
            # The study-facts filters (tracker/store/listing.py): common and rare values, alone and together.
            "topic page, study-facts filters": [f"{topic}?design=rct", f"{topic}?design=guideline",
                                                f"{topic}?population=pediatric", f"{topic}?population=hepatorenal",
                                                f"{topic}?dose=1", f"{topic}?design=observational&population=elderly",
                                                f"{topic}?design=review&sort=tier", f"{topic}/doses"],
            "topic page, searched": [f"{topic}?q=vasopressin", f"{topic}?q={search}&sort=tier"],
            f"topic page {PAGE_DEPTH} (keyset)": [deep],
            "paper page": [f"/papers/{pmid}" for pmid in pmids],
            "search": [f"/search?q={search}", "/search?q=septic+shock", f"/search?q={search}&topic={DIGEST_TOPIC}"],
            "screening page": [f"{topic}/screen", f"{topic}/screen?pmid={pmids[len(pmids) // 2]}"],
            "PRISMA page": [f"{topic}/prisma"],
            "runs page": ["/runs"],
        }
        papers = number(sizes.scale_papers)
        for name, urls in pages.items():
            first = 0.0
            for address in urls:
                started = time.perf_counter()
                answer = client.get(address)
                first = max(first, time.perf_counter() - started)
                if answer.status_code != 200:
                    raise RuntimeError(f"GET {address} answered {answer.status_code}: {answer.text[:500]}")
            timings: list[float] = []
            slowest = (0.0, urls[0])
            for index in range(repeats):
                address = urls[index % len(urls)]
                started = time.perf_counter()
                client.get(address)
                spent = time.perf_counter() - started
                timings.append(spent)
                slowest = max(slowest, (spent, address))
            high = p95(timings)
            met = high < TARGET
            shown = urls[0] if len(urls) == 1 else f"{len(urls)} requests such as {urls[0]}"
            outcome.rows.append(Row(
                f"web: {name} (GET {shown})", f"{papers} papers; topic {DIGEST_TOPIC}",
                f"p95 {seconds(high)} of {len(timings)} (median {seconds(statistics.median(timings))}; "
                f"first request {seconds(first)})",
                f"{high / TARGET:.2f} of target", f"< {seconds(TARGET)}", met,
                f"python -m benchmarks{sizes.flag} --only web"))
            if not met:
                address = slowest[1]
                # The app answers on the test client's own thread: cProfile here would see only the wait, so the
                # profile is the request's SQL, timed by the engine's events.
                outcome.profiles.append(Profile(f"web: {name} on {papers} papers ({address})",
                                                "slowest SQL statements of one request:\n"
                                                + slowest_statements(store, lambda address=address: client.get(address)),
                                                NEXT_STEPS.get(name, "see the statements the view runs (EXPLAIN "
                                                                           "QUERY PLAN) for this request")))
    finally:
        if client is not None:
            client.__exit__(None, None, None)
        delete_personal_sessions(store)
        store.close()
    outcome.notes.append(
        f"Web: the scale database ({number(sizes.scale_papers)} papers"
        + (f", built in {seconds(built)} by this run" if built is not None else ", reused from the cache")
        + (f"; indexes {', '.join(made)} made on the cached copy in {seconds(indexing)}" if made else "")
        + f"); each page asked {repeats} times after a first request of each address (reported apart: it computes "
        "the counts the store keeps and the Topics page's charts, and a search's champion lists), through "
        "Starlette's test client against the app in-process (the server's time: the guard's session lookup, the "
        f"views' SQL and rendering; no network). Page {PAGE_DEPTH} is reached by following the keyset 'next' links.")
    return outcome


__all__ = ["run", "p95", "TARGET"]
