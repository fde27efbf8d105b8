"""Benchmark 7: records fetched per distinct paper over eight weekly runs of four topics, with every retraction caught.

A simulated timeline against tests/fake_eutils.py, in this process (the store's clock is set to each run's day,
noon UTC, as tracker/runs/watch.py compares it with PubMed's modification dates): every day `refetch_per_day` records
are created, a fifth of them in two of the four topics; a record's modification date is its create date (the
fake server's default, as in the other benchmarks) except for one in fifty, retracted 2 to 5 weeks after it was
created. First a backfill of `refetch_backfill_weeks` weeks of records, then eight weekly runs of the four topics
(`tracker.runs.sync.sync_topic` with the real client, the default 3-day overlap). The same timeline runs twice: with
the tracker's rule (a paper fetched inside the modified-records window is fetched again only if listed by the
search from the day before its fetch on) and with the previous rule (every listed stored paper fetched again).
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from unittest import mock

from benchmarks import Outcome, Row, Sizes, number

TOPICS = 4
START = date(2024, 3, 4)  # the first weekly run after the backfill


def timeline(sizes: Sizes, seed: int = 14) -> tuple[dict[date, list], dict[int, date]]:
    """The records the server gains or changes each day, and each retracted PMID's retraction day."""
    from tests.fake_eutils import FakeRecord
    from tests.pubmed_xml import article_xml

    rng = random.Random(seed)
    days: dict[date, list] = {}
    retracted: dict[int, date] = {}
    pmid = 0
    for offset in range(-7 * sizes.refetch_backfill_weeks, 7 * 8):
        created = START + timedelta(days=offset)
        for _ in range(sizes.refetch_per_day):
            pmid += 1
            topics = {f"topic{rng.randrange(TOPICS)}"}
            if rng.random() < 0.2:
                topics.add(f"topic{rng.randrange(TOPICS)}")
            days.setdefault(created, []).append(FakeRecord(pmid, article_xml(pmid, created=created), created,
                                                           queries=frozenset(topics)))
            if pmid % 50 == 0:
                when = created + timedelta(days=rng.randint(14, 35))
                retracted[pmid] = when
                days.setdefault(when, []).append(FakeRecord(
                    pmid, article_xml(pmid, created=created, publication_types=("Journal Article", "Retracted Publication")),
                    created, modified=when, queries=frozenset(topics)))
    return days, retracted


def simulate(sizes: Sizes, workdir: Path, *, previous_rule: bool) -> dict:
    from sqlalchemy import func, select

    from tests.fake_eutils import FakeEutils
    from tracker.ncbi.eutils import EutilsClient
    from tracker.runs.sync import sync_topic
    from tracker.settings import Settings
    from tracker.store import open_store
    from tracker.store.models import PaperRow
    from tracker.topics import Topic

    days, retracted = timeline(sizes)
    database = workdir / f"refetch-{'previous' if previous_rule else 'tracker'}.sqlite3"
    store = open_store(f"sqlite:///{database}")
    topics = [Topic(slug=f"topic{index}", title=f"Topic {index}", query=f"topic{index}", since=date(2000, 1, 1))
              for index in range(TOPICS)]
    clock = [datetime(2000, 1, 1, tzinfo=timezone.utc)]
    patches = [mock.patch(f"{module}.utcnow", lambda: clock[0])
               for module in ("tracker.store.papers", "tracker.store.membership", "tracker.store.changes")]
    if previous_rule:
        patches.append(mock.patch("tracker.runs.watch.changed_since_fetched",
                                  lambda client, query, unseen, start, end: set(unseen)))
    fetched = esearches = 0
    first_day = min(days)
    with FakeEutils() as server:
        settings = Settings(home=workdir, eutils_url=server.url, requests_per_second=1000.0, backoff_initial=0.01)
        with EutilsClient(settings) as client:
            for patch in patches:
                patch.start()
            try:
                day = first_day - timedelta(days=1)
                run_days = [START - timedelta(days=1)] + [START + timedelta(days=7 * week) for week in range(8)]
                for run_day in run_days:
                    while day < run_day:
                        day += timedelta(days=1)
                        if days.get(day):
                            server.add(*days[day])
                    clock[0] = datetime.combine(run_day, time(12), timezone.utc)
                    server.reset_log()
                    for topic in topics:
                        result = sync_topic(store, client, topic, today=run_day)
                        if not result.succeeded:
                            raise RuntimeError(f"{topic.slug} on {run_day}: {result.error}")
                    log = server.requests
                    fetched += sum(len(entry.params["id"].split(",")) for entry in log if entry.endpoint == "efetch")
                    esearches += sum(1 for entry in log if entry.endpoint == "esearch")
            finally:
                for patch in patches:
                    patch.stop()
    with store.session() as session:
        distinct = session.execute(select(func.count()).select_from(PaperRow)).scalar_one()
        marked = set(session.execute(select(PaperRow.pmid).where(PaperRow.status == "retracted")).scalars())
    store.close()
    due = {pmid for pmid, when in retracted.items() if when <= run_days[-1]}
    return {"fetched": fetched, "distinct": distinct, "esearch": esearches, "retracted": len(due),
            "caught": len(due & marked)}


def run(sizes: Sizes, workdir: Path) -> Outcome:
    outcome = Outcome("refetch")
    size = (f"{TOPICS} topics, {sizes.refetch_backfill_weeks}-week backfill + 8 weekly runs, "
            f"{sizes.refetch_per_day} records/day")
    reproduce = f"python -m benchmarks{sizes.flag} --only refetch"
    for previous in (True, False):
        result = simulate(sizes, workdir, previous_rule=previous)
        ratio = result["fetched"] / result["distinct"]
        what = ("modified-records check, previous rule (every listed stored paper fetched again)" if previous else
                "modified-records check: fetched again only if PubMed may have changed it since its copy")
        outcome.rows.append(Row(
            what, size, f"{number(result['fetched'])} records fetched for {number(result['distinct'])} papers, "
                        f"{result['esearch']} esearch; {result['caught']} of {result['retracted']} retractions caught",
            f"{ratio:.3f}", "-" if previous else "<= 1.1 x papers, every retraction caught",
            None if previous else ratio <= 1.1 and result["caught"] == result["retracted"], reproduce))
    outcome.notes.append(
        "Refetch: " + " ".join((__doc__ or "").split("\n\n", 1)[1].split()) + " Records fetched counts every PMID "
        "asked of efetch (new papers and papers fetched again); the ratio divides it by the papers stored.")
    return outcome
