"""Incremental sync against a simulated PubMed timeline served by the loopback fake E-utilities server."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from tests.fake_eutils import FakeEutils, FakeRecord
from tests.pubmed_xml import article_xml
from tracker.ncbi.eutils import EutilsClient
from tracker.runs.sync import plan_window, sync_topic
from tracker.settings import Settings
from tracker.store.membership import topic_pmids
from tracker.store.models import PaperRow, Run, TopicPaper
from tracker.store.runs import topic_state
from tracker.topics import Topic

DOSING = Topic(slug="dosing", title="Dosing", query="norepinephrine dosing", since=date(2020, 1, 1))
ELDERLY = Topic(slug="elderly", title="Elderly", query="norepinephrine elderly", since=date(2020, 1, 1))


def record(pmid: int, created: date, *, entrez: date | None = None, queries=None) -> FakeRecord:
    return FakeRecord(pmid=pmid, xml=article_xml(pmid, created=created, entrez=entrez or created),
                      created=created, entrez=entrez or created, queries=queries)


@pytest.fixture
def server(fake_eutils):
    return fake_eutils




def stored_count(store) -> int:
    with store.session() as session:
        return session.execute(select(func.count()).select_from(PaperRow)).scalar()


def test_first_run_backfills_from_since_and_the_next_fetches_only_what_is_new(server, store, client):
    server.add(*[record(p, date(2019, 12, 1)) for p in (1, 2)])  # before `since`
    server.add(*[record(p, date(2024, 5, p % 28 + 1)) for p in range(10, 130)])
    first = sync_topic(store, client, DOSING, today=date(2024, 6, 1))
    assert first.succeeded and first.kind == "backfill"
    assert (first.new_papers, first.matched, first.fetched) == (120, 120, 120)
    # One esearch, ceil(120 / 50) efetch batches, and the query's total Count (tracker/runs/watch.py); a topic's
    # first run only sets where the modification-date check starts.
    assert first.requests == 1 + 3 + 1
    assert topic_pmids(store, "dosing") == set(range(10, 130))
    assert topic_state(store, "dosing").watermark == date(2024, 6, 2)

    server.add(record(500, date(2024, 6, 3)), record(501, date(2024, 6, 4)))
    server.reset_log()
    second = sync_topic(store, client, DOSING, today=date(2024, 6, 5))
    assert second.kind == "fetch" and second.window.start == date(2024, 5, 30)
    # The create-date search and its efetch, the total Count, the modification-date search (which lists 500
    # and 501 too: just stored, they are not fetched again).
    assert (second.new_papers, second.fetched, second.requests, second.refetched) == (2, 2, 4, 0)
    [fetch] = [r for r in server.requests if r.endpoint == "efetch"]
    assert sorted(fetch.params["id"].split(",")) == ["500", "501"]

    server.reset_log()
    quiet = sync_topic(store, client, DOSING, today=date(2024, 6, 6))
    # 500 and 501 were stored inside the overlap window, so the modification-date search lists them again
    # and they are refetched once, in one efetch.
    assert (quiet.new_papers, quiet.requests, quiet.refetched) == (0, 4, 2)
    [refetch] = [r for r in server.requests if r.endpoint == "efetch"]
    assert sorted(refetch.params["id"].split(",")) == ["500", "501"]


def test_simulated_weeks_store_every_record_exactly_once_including_back_dated_ones(server, store, client):
    rng = random.Random(7)
    day, pmid, expected = date(2024, 1, 1), 1000, set()
    sync_topic(store, client, DOSING, today=day)
    for _week in range(10):
        for offset in range(7):
            today = day + timedelta(days=offset)
            for _ in range(rng.randint(0, 4)):
                pmid += 1
                # One record in four is indexed years after publication: its entry date is back-dated.
                back_dated = today - timedelta(days=rng.randint(400, 3000)) if rng.random() < 0.25 else None
                server.add(record(pmid, today, entrez=back_dated))
                expected.add(pmid)
        day += timedelta(days=7)
        # Some records enter PubMed on the day of the run, after it ran; the overlap picks them up next week.
        result = sync_topic(store, client, DOSING, today=day)
        assert result.succeeded
        pmid += 1
        server.add(record(pmid, day))
        expected.add(pmid)
    sync_topic(store, client, DOSING, today=day + timedelta(days=7))
    assert topic_pmids(store, "dosing") == expected
    assert stored_count(store) == len(expected)
    with store.session() as session:
        fetched = session.execute(select(func.sum(Run.fetched)).where(Run.topic == "dosing")).scalar()
        new = session.execute(select(func.sum(Run.new_papers)).where(Run.topic == "dosing")).scalar()
        late = session.execute(select(func.count()).select_from(PaperRow).where(PaperRow.late_arrival)).scalar()
    assert fetched == new == len(expected)  # nothing fetched twice, nothing counted new twice
    assert late > 0


def test_a_topic_past_the_9999_cap_is_fetched_completely(tmp_path, store, monkeypatch):
    monkeypatch.setattr("tracker.ncbi.eutils.MAX_RETRIEVABLE", 40)
    with FakeEutils(max_ids=40) as server:
        server.add(*[record(p, date(2023, 1, 1) + timedelta(days=p % 200)) for p in range(1, 401)])
        settings = Settings(home=tmp_path, eutils_url=server.url, requests_per_second=1000.0, esearch_page=40,
                            efetch_batch=100, backoff_initial=0.01, max_attempts=2)
        with EutilsClient(settings) as client:
            result = sync_topic(store, client, DOSING, today=date(2024, 1, 1))
    assert result.succeeded and result.matched == 400
    assert topic_pmids(store, "dosing") == set(range(1, 401))


def test_a_failed_run_changes_nothing_the_next_run_depends_on(server, store, client):
    server.add(*[record(p, date(2024, 1, 5)) for p in range(1, 101)])
    assert sync_topic(store, client, DOSING, today=date(2024, 1, 10)).succeeded
    watermark = topic_state(store, "dosing").watermark
    server.add(*[record(p, date(2024, 1, 12)) for p in range(200, 300)])
    server.reset_log()
    server.inject("502", endpoint="efetch", at=2, times=3)  # the second batch fails on every attempt
    failed = sync_topic(store, client, DOSING, today=date(2024, 1, 14))
    assert not failed.succeeded
    assert failed.error == "topic 'dosing': efetch failed after 3 attempts: HTTP 502 Bad Gateway"
    assert topic_state(store, "dosing").watermark == watermark
    with store.session() as session:
        assert session.get(Run, failed.run_id).status == "failed"
    recovered = sync_topic(store, client, DOSING, today=date(2024, 1, 14))
    assert recovered.succeeded
    assert topic_pmids(store, "dosing") == set(range(1, 101)) | set(range(200, 300))
    assert stored_count(store) == 200


def test_a_run_killed_half_way_is_marked_failed_by_the_next_run_of_its_topic(server, store, client, caplog):
    from tracker.store.runs import start_run

    server.add(*[record(p, date(2024, 1, 5)) for p in range(1, 11)])
    killed = start_run(store, "dosing", kind="backfill", query=DOSING.query, window_start=DOSING.since,
                       window_end=date(2024, 1, 11))  # a process that died before finish_run
    other_topic = start_run(store, "elderly", kind="fetch", query=ELDERLY.query, window_start=None, window_end=None)
    importing = start_run(store, "dosing", kind="import", query=DOSING.query, window_start=None, window_end=None)
    result = sync_topic(store, client, DOSING, today=date(2024, 1, 10))
    assert result.succeeded and result.kind == "backfill" and result.new_papers == 10
    with store.session() as session:
        runs = {run.id: run for run in session.execute(select(Run)).scalars()}
    assert (runs[killed.id].status, runs[killed.id].finished_at) == ("failed", None)
    assert runs[killed.id].error == (
        f"interrupted: its process (pid {killed.pid}) stopped before the run finished (killed, or its machine went "
        "down); nothing it saved was lost, and the next fetch searches the same dates again")
    # Another topic's run may be alive (it holds another lock); imports take no lock.
    assert runs[other_topic.id].status == runs[importing.id].status == "running"
    assert runs[result.run_id].status == "succeeded"
    assert f"topic 'dosing': run {killed.id} was interrupted before it finished" in caplog.text


def test_a_paper_in_two_topics_is_fetched_once_and_linked_twice(server, store, client):
    server.add(record(1, date(2024, 2, 1), queries={DOSING.query, ELDERLY.query}),
               record(2, date(2024, 2, 1), queries={ELDERLY.query}))
    sync_topic(store, client, DOSING, today=date(2024, 2, 2))
    server.reset_log()
    result = sync_topic(store, client, ELDERLY, today=date(2024, 2, 2))
    assert (result.new_papers, result.fetched) == (2, 1)
    [fetch] = [r for r in server.requests if r.endpoint == "efetch"]
    assert fetch.params["id"] == "2"
    with store.session() as session:
        assert session.execute(select(func.count()).select_from(TopicPaper)).scalar() == 3
    assert stored_count(store) == 2


def test_window_rules():
    state = type("State", (), {"query": DOSING.query, "since": date(2020, 1, 1), "watermark": date(2024, 3, 10)})
    plan = lambda **kw: plan_window(DOSING, kw.pop("state", state), today=date(2024, 3, 20), overlap_days=3, **kw)
    assert plan(state=None).kind == "backfill" and plan(state=None).start == date(2020, 1, 1)
    assert plan().start == date(2024, 3, 7) and plan().end == date(2024, 3, 21) and plan().moves_watermark
    assert plan(full=True).kind == "backfill"
    # An explicit start after the watermark would leave a gap, so it does not move the watermark.
    assert not plan(since=date(2024, 3, 15)).moves_watermark
    assert plan(since=date(2024, 3, 1)).moves_watermark
    changed = type("State", (), {"query": "old query", "since": date(2020, 1, 1), "watermark": date(2024, 3, 10)})
    assert plan(state=changed).kind == "backfill"
    earlier = Topic(slug="dosing", title="D", query=DOSING.query, since=date(2015, 1, 1))
    assert plan_window(earlier, state, today=date(2024, 3, 20), overlap_days=3).kind == "backfill"
