"""Relevance scores kept in the store (tracker/review/relevance.py): trained from a topic's decisions, refreshed after runs
and decisions, shown in exports, `tracker screen list`, digests and the e-mail; on both back ends."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import date

import pytest
from sqlalchemy import inspect

from tests.conftest import cli_env, run_tracker
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml
from tests.test_store import make_paper
from tracker.ncbi.pubmed import AbstractSection
from tracker.outputs.digest import build_topic_digest, render_text
from tracker.outputs.export import CSV_COLUMNS, export_papers
from tracker.review.relevance import RelevanceRefresher, ranking_status, refresh_relevance, scores_stale
from tracker.review.screening import decide, list_screening
from tracker.store import open_store
from tracker.store.papers import save_papers
from tracker.store.relevance import ranking_state, scores_of
from tracker.topics import Topic

SEPSIS = Topic(slug="sepsis", title="Sepsis", query="norepinephrine sepsis")

# Papers 1-3 and 11-13 get decisions; 21-24 arrive later. The included ones and 21 and 23 share "vasopressin
# septic shock"; the excluded ones and 22 and 24 are about the neurotransmitter in mood disorders.
SHOCK = "Vasopressin added to norepinephrine in septic shock"
MOOD = "Noradrenaline reuptake in depression and anxiety"


def paper(pmid: int, title: str, abstract: str, journal: str = "Crit Care"):
    return make_paper(pmid, title=title, journal=journal, abstract_sections=(AbstractSection(None, None, abstract),),
                      mesh_headings=(), keywords=(), publication_types=("Journal Article",))


FIRST = [
    paper(1, "Early vasopressin in septic shock", SHOCK),
    paper(2, "Norepinephrine and vasopressin in shock", SHOCK + " after cardiac surgery"),
    paper(3, "Septic shock vasopressor timing", SHOCK + " in the emergency department"),
    paper(11, "Reuptake inhibitors in major depression", MOOD, journal="J Affect Disord"),
    paper(12, "Locus coeruleus and stress", MOOD + " in rodents", journal="Neuron"),
    paper(13, "Noradrenergic signalling in anxiety", MOOD + " among adolescents", journal="J Affect Disord"),
]
LATER = [
    paper(21, "Vasopressin dosing in septic shock", SHOCK + " titrated to pressure"),
    paper(22, "Depression and noradrenaline transporters", MOOD + " imaged by PET", journal="J Affect Disord"),
    paper(23, "Septic shock and vasopressin", SHOCK + " in older adults"),
    paper(24, "Anxiety after noradrenaline reuptake blockade", MOOD, journal="Neuron"),
]


@pytest.fixture
def screened(store):
    save_papers(store, FIRST, topic="sepsis")
    decide(store, SEPSIS, [1, 2, 3], "include", reviewer="ana")
    decide(store, SEPSIS, [11, 12, 13], "exclude", reviewer="ana", reasons=["wrong population"])
    return store


def test_below_the_minimum_there_are_no_scores_and_the_status_says_how_many_more(store):
    save_papers(store, FIRST, topic="sepsis")
    assert ranking_status(store, SEPSIS).sentence == "ranking starts after 2 more decisions"
    decide(store, SEPSIS, [1], "include", reviewer="ana")
    status = refresh_relevance(store, SEPSIS)
    assert (status.ranked, status.needed, status.sentence) == (False, 1, "ranking starts after 1 more decision")
    assert scores_of(store, ["sepsis"], [1, 2, 3]) == {}
    decide(store, SEPSIS, [2, 3], "maybe", reviewer="ana")  # maybe teaches nothing
    assert refresh_relevance(store, SEPSIS).needed == 1


def test_scores_order_the_topics_papers_and_only_numbers_are_stored(screened):
    status = refresh_relevance(screened, SEPSIS)
    assert (status.ranked, status.decisions, status.sentence) == (True, 6, "ordered by 6 earlier decisions in this topic")
    save_papers(screened, LATER, topic="sepsis")
    assert scores_stale(screened, SEPSIS)  # new papers without a score
    refresh_relevance(screened, SEPSIS)
    scores = scores_of(screened, ["sepsis"], [21, 22, 23, 24])
    assert set(scores) == {21, 22, 23, 24} and all(0 < value < 1 for value in scores.values())
    assert min(scores[21], scores[23]) > max(scores[22], scores[24])
    state = ranking_state(screened, "sepsis")
    assert (state.included, state.excluded, state.papers) == (3, 3, 10)
    with screened.engine.connect() as connection:
        found = inspect(connection)
        assert {c["name"] for c in found.get_columns("relevance_score")} == {"topic", "pmid", "score"}
        assert {str(c["type"]) for c in found.get_columns("relevance_score") if c["name"] == "score"} <= {
            "FLOAT", "DOUBLE PRECISION", "REAL"}


def test_the_relevance_queue_gives_the_scored_papers_best_first_then_the_unscored_newest_first(screened):
    from tracker.review.screening import rule_for
    from tracker.store.listing import queue_by_relevance

    save_papers(screened, [paper(31, "Vasopressin before norepinephrine", SHOCK)], topic="sepsis")
    refresh_relevance(screened, SEPSIS)
    save_papers(screened, LATER[:2], topic="sepsis")  # after the refresh: unscored, so last
    save_papers(screened, LATER[2:], topic="sepsis")
    decide(screened, SEPSIS, [22], "exclude", reviewer="ana", reasons=["wrong population"])
    scores = scores_of(screened, ["sepsis"], [4, 31, 21, 22, 23, 24])
    assert set(scores) == {31}
    rule = rule_for(screened, SEPSIS)
    expected = [(31, scores[31]), (24, None), (23, None), (21, None)]  # LATER[2:] were first seen after LATER[:2]
    queue = [queue_by_relevance(screened, "sepsis", rule, "ana", offset=offset) for offset in range(5)]
    assert [(row.pmid, row.relevance) for row in queue if row is not None] == expected
    assert queue[4] is None
    skipping = [queue_by_relevance(screened, "sepsis", rule, "ana", skip=24, offset=offset) for offset in range(3)]
    assert [(row.pmid, row.relevance) for row in skipping] == [expected[0], *expected[2:]]


def test_a_refresh_with_nothing_new_changes_nothing_and_a_new_decision_retrains(screened):
    refresh_relevance(screened, SEPSIS)
    trained = ranking_state(screened, "sepsis").trained_at
    assert not scores_stale(screened, SEPSIS)
    refresh_relevance(screened, SEPSIS)
    assert ranking_state(screened, "sepsis").trained_at == trained
    decide(screened, SEPSIS, [1], "exclude", reviewer="ana", reasons=["wrong population"])
    assert scores_stale(screened, SEPSIS)
    status = refresh_relevance(screened, SEPSIS)
    assert ranking_state(screened, "sepsis").included == 2 and status.decisions == 6


def test_taking_decisions_back_below_the_minimum_removes_the_scores(screened):
    refresh_relevance(screened, SEPSIS)
    decide(screened, SEPSIS, [11, 12, 13], "maybe", reviewer="ana")
    assert refresh_relevance(screened, SEPSIS).sentence == "ranking starts after 1 more decision"
    assert scores_of(screened, ["sepsis"], [1, 2, 3, 11]) == {} and ranking_state(screened, "sepsis") is None


def test_dual_screening_learns_only_from_settled_papers(store):
    from dataclasses import replace

    from tracker.topics import ScreeningMode

    dual = replace(SEPSIS, screening=ScreeningMode(reviewers=2, blind=True))
    save_papers(store, FIRST, topic="sepsis")
    decide(store, dual, [1, 11], "include", reviewer="ana")  # 11: a conflict once ben excludes it
    decide(store, dual, [12], "exclude", reviewer="ana", reasons=["wrong population"])
    assert refresh_relevance(store, dual).needed == 2  # one vote each: nothing settled yet
    decide(store, dual, [1], "include", reviewer="ben")
    decide(store, dual, [11, 12], "exclude", reviewer="ben", reasons=["wrong population"])
    status = refresh_relevance(store, dual)
    assert (status.ranked, status.decisions) == (True, 2)  # 1 included, 12 excluded; 11 is a conflict


def test_export_has_a_relevance_column_and_sorts_by_it(screened):
    save_papers(screened, LATER, topic="sepsis")
    refresh_relevance(screened, SEPSIS)
    out = io.BytesIO()
    export_papers(screened, [SEPSIS], out, sort="relevance")
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8"))))
    assert list(rows[0]) == list(CSV_COLUMNS) and CSV_COLUMNS[CSV_COLUMNS.index("trial_ids") + 1] == "relevance"
    relevance = [float(row["relevance"]) for row in rows]
    assert relevance == sorted(relevance, reverse=True) and len(rows) == 10
    assert {row["pmid"] for row in rows[:5]} == {"1", "2", "3", "21", "23"}
    scores = scores_of(screened, ["sepsis"], [21])
    assert [row["relevance"] for row in rows if row["pmid"] == "21"] == [str(round(scores[21], 3))]
    newest = io.BytesIO()
    export_papers(screened, [SEPSIS], newest)
    assert [row["pmid"] for row in csv.DictReader(io.StringIO(newest.getvalue().decode("utf-8")))] == [
        "24", "23", "22", "21", "13", "12", "11", "3", "2", "1"]


def test_without_a_model_the_column_is_empty_and_relevance_order_falls_back_to_newest(store):
    save_papers(store, FIRST, topic="sepsis")
    out = io.BytesIO()
    export_papers(store, [SEPSIS], out, sort="relevance")
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8"))))
    assert [row["pmid"] for row in rows] == ["13", "12", "11", "3", "2", "1"]
    assert {row["relevance"] for row in rows} == {""}


def test_screen_list_sorts_by_relevance_with_the_score(screened):
    save_papers(screened, LATER, topic="sepsis")
    refresh_relevance(screened, SEPSIS)
    rows = list_screening(screened, SEPSIS, reviewer="ana", state="unscreened", sort="relevance")
    assert [row.paper.pmid for row in rows][:2] in ([21, 23], [23, 21])
    assert [row.relevance for row in rows] == sorted((row.relevance for row in rows), reverse=True)


def test_the_digest_orders_each_tier_by_relevance_and_says_how(screened):
    save_papers(screened, LATER, topic="sepsis")
    refresh_relevance(screened, SEPSIS)
    digest = build_topic_digest(screened, SEPSIS, pmids=[21, 22, 23, 24])
    assert [entry.paper.pmid for entry in digest.entries][:2] in ([21, 23], [23, 21])
    assert digest.ranking == "ordered by 6 earlier decisions in this topic"
    scores = scores_of(screened, ["sepsis"], [21, 22, 23, 24])
    likely = {entry.paper.pmid for entry in digest.entries if entry.likely_relevant}
    assert likely and likely <= {21, 23} and all(scores[pmid] >= max(scores[22], scores[24]) for pmid in likely)
    rendered = render_text(digest)
    assert "Order: ordered by 6 earlier decisions in this topic" in rendered and "likely relevant" in rendered


def test_the_digest_of_an_unscreened_topic_says_nothing_about_ranking(store):
    save_papers(store, FIRST, topic="sepsis")
    digest = build_topic_digest(store, SEPSIS, pmids=[1, 2])
    assert digest.ranking is None and "Order:" not in render_text(digest)
    decide(store, SEPSIS, [1], "include", reviewer="ana")
    assert build_topic_digest(store, SEPSIS, pmids=[2]).ranking == "ranking starts after 1 more decision"


def test_the_background_refresher_retrains_once_after_a_pause(screened):
    refresher = RelevanceRefresher(screened, {"sepsis": SEPSIS}.get, delay=0.2, longest=5)
    try:
        for _ in range(5):
            refresher.request("sepsis")
        deadline = time.monotonic() + 20
        while ranking_state(screened, "sepsis") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ranking_state(screened, "sepsis").included == 3
    finally:
        refresher.close()


def test_nothing_in_the_ranking_can_load_code_from_the_database():
    from pathlib import Path

    import tracker

    package = Path(tracker.__file__).parent
    sources = [package / "review" / "relevance.py", package / "store" / "relevance.py",
               *(package / "review" / "ranking").glob("*.py")]
    for source in sources:
        code = source.read_text()
        assert not any(word in code for word in ("import pickle", "joblib", "cloudpickle", "pickle.load")), source


# -- through the CLI -------------------------------------------------------------------------

def add_records(server, pmids, created):
    server.add(*[FakeRecord(pmid=pmid, created=created, queries="norepinephrine dosing", xml=article_xml(
        pmid, created=created, title=(SHOCK if pmid % 2 else MOOD) + f" ({pmid})", abstract=SHOCK if pmid % 2 else MOOD))
        for pmid in pmids])


def test_fetch_scores_the_new_papers_and_screen_commands_retrain(home, fake_eutils):
    env = cli_env(home, fake_eutils.url)
    add_records(fake_eutils, range(101, 113), date(2024, 3, 1))
    assert run_tracker("fetch", "dosing", env=env).code == 0
    listed = json.loads(run_tracker("screen", "list", "dosing", "--format", "json", env=env).out)
    assert len(listed) == 12 and {record["relevance"] for record in listed} == {None}
    included = run_tracker("screen", "set", "dosing", "101", "103", "--include", env=env)
    excluded = run_tracker("screen", "set", "dosing", "102", "--exclude", "--reason", "1", env=env)
    assert (included.code, excluded.code) == (0, 0)
    listed = json.loads(run_tracker("screen", "list", "dosing", "--format", "json", "--sort", "relevance", env=env).out)
    assert all(isinstance(record["relevance"], float) for record in listed)
    assert [r["relevance"] for r in listed] == sorted((r["relevance"] for r in listed), reverse=True)
    assert {r["pmid"] for r in listed[:6]} == {101, 103, 105, 107, 109, 111}  # the shock papers first
    add_records(fake_eutils, range(113, 116), date.today())
    assert run_tracker("fetch", "dosing", env=env).code == 0
    exported = list(csv.DictReader(io.StringIO(run_tracker("export", "dosing", "--sort", "relevance", env=env).out)))
    assert len(exported) == 15 and all(row["relevance"] for row in exported)
    assert exported[0]["pmid"] in {"101", "103", "105", "107", "109", "111", "113", "115"}
    table = run_tracker("screen", "list", "dosing", "--sort", "relevance", "--limit", "3", env=env)
    assert table.err == ("dosing: ordered by 3 earlier decisions in this topic\n"
                         "dosing: too few decisions in relevance order to estimate what is left: 12 more\n")
    assert table.out.splitlines()[0].split() == ["pmid", "state", "first", "seen", "year", "relevance", "decisions",
                                                 "title"]


def test_an_import_of_decisions_retrains_once(home, fake_eutils, tmp_path):
    env = cli_env(home, fake_eutils.url)
    add_records(fake_eutils, range(101, 109), date(2024, 3, 1))
    assert run_tracker("fetch", "dosing", env=env).code == 0
    decisions = tmp_path / "decisions.csv"
    decisions.write_text("pmid,decision,reason\n101,include,\n103,include,\n102,exclude,1\n104,exclude,1\n",
                         encoding="utf-8")
    imported = run_tracker("screen", "import", str(decisions), "--topic", "dosing", env=env)
    assert imported.code == 0, imported.err
    listed = json.loads(run_tracker("screen", "list", "dosing", "--format", "json", "--sort", "relevance",
                                    "--state", "unscreened", env=env).out)
    assert [record["pmid"] for record in listed][:2] in ([105, 107], [107, 105])
    store = open_store(f"sqlite:///{home}/db/tracker.sqlite3", readonly=True)
    try:
        state = ranking_state(store, "dosing")
        assert (state.included, state.excluded, state.papers) == (2, 2, 8)
    finally:
        store.close()
