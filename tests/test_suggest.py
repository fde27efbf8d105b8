"""Suggestions beyond the query (tracker/runs/suggest.py) against the fake E-utilities server, on both back ends:
what a run asks and keeps, the weekly window, dismissals, adding with the membership's source and PRISMA's other
methods, the request budget, and ELink faults that leave the run's papers and watermark as they are."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest

from tests.link_records import WEEK, linked_records
from tracker.errors import ConfigError
from tracker.review.prisma import prisma_counts, render_csv, render_json, render_svg, render_text
from tracker.review.screening import decide
from tracker.runs.suggest import (
    REQUEST_BUDGET,
    add_by_pmid,
    add_suggestions,
    describe_why,
    dismiss_suggestions,
    find_suggestions,
    list_suggestions,
    order_seeds,
    refresh_suggestions,
    stated_participants,
    undo_dismissal,
)
from tracker.runs.sync import sync_topic
from tracker.store.membership import member_sources
from tracker.store.papers import load_papers
from tracker.store.runs import recent_runs, topic_state
from tracker.store.suggestions import StoredSuggestion, load_suggestions, suggestion_state
from tracker.topics import Topic
from tracker.views.status import run_view

QUERY = "caesarean vasopressors"
TOPIC = Topic(slug="cesarean", title="Vasopressors at caesarean delivery", query=QUERY)
BEFORE = WEEK[0] - timedelta(days=1)  # 2024-06-07: the week's records are not in PubMed yet
MATCHED = (101, 102)  # what the query finds; 103 and 106 are what it misses


def serve(fake, *, week: bool = False, matched=MATCHED) -> None:
    """The linked records in the fake, the week's new ones only with `week`; the query matches `matched`."""
    for record in linked_records():
        if week or record.created < WEEK[0]:
            fake.add(dataclasses.replace(record, queries=frozenset({QUERY} if record.pmid in matched else ())))


def pending(store, topic=TOPIC) -> list[tuple[int, tuple[str, ...], dict]]:
    return [(item.pmid, item.ways, item.seeds) for item in load_suggestions(store, topic.slug)]


def elinks(fake) -> list[dict[str, str]]:
    return [{key: value for key, value in request.params.items() if key not in ("tool", "email", "db", "dbfrom",
                                                                                 "retmode")}
            for request in fake.requests if request.endpoint == "elink"]


@pytest.fixture
def included(fake_eutils, store, client):
    """The topic's first run, 101 included and 102 excluded, then the run that asks for 101's links."""
    serve(fake_eutils)
    assert sync_topic(store, client, TOPIC, today=BEFORE).succeeded
    decide(store, TOPIC, [101], "include", reviewer="ana")
    decide(store, TOPIC, [102], "exclude", reviewer="ana", reasons=["wrong population"])
    fake_eutils.reset_log()
    result = sync_topic(store, client, TOPIC, today=BEFORE)
    assert result.succeeded, result.error
    return result


# -- what a run asks and keeps ------------------------------------------------------------------------

def test_a_run_keeps_what_the_included_papers_link_to_and_the_topic_lacks(included, fake_eutils, store):
    # 103 is similar to 101 and cites it; 102 links to 101 too, but the query found it (and it is excluded).
    assert pending(store) == [(103, ("similar", "cites"), {"similar": (101,), "cites": (101,)})]
    [stored] = load_suggestions(store, TOPIC.slug)
    assert stored.similarity is not None and stored.similarity > 0 and stored.relevance is not None
    # A new seed is asked once without a date limit: scored similar articles, then its citations both ways.
    assert elinks(fake_eutils) == [
        {"cmd": "neighbor_score", "id": "101", "linkname": "pubmed_pubmed"},
        {"cmd": "neighbor", "id": "101"},
    ]
    assert [request.params["id"] for request in fake_eutils.requests if request.endpoint == "efetch"] == ["103"]
    assert included.suggestions == 1 and included.suggestion_warnings == ()
    assert included.summary().endswith("; 1 new suggestion outside the query (see 'tracker suggest cesarean')")
    run = recent_runs(store, topic=TOPIC.slug, limit=1)[0]
    assert (run.status, run.requests, run.warnings) == ("succeeded", 6, [])  # 3 esearch, 2 elink, 1 efetch
    assert member_sources(store, TOPIC.slug, [101, 102, 103]) == {101: "query", 102: "query"}


def test_a_weekly_run_asks_only_for_the_links_that_entered_pubmed_in_its_window(included, fake_eutils, store, client):
    assert suggestion_state(store, TOPIC.slug).checked_through == BEFORE + timedelta(days=1)
    serve(fake_eutils, week=True)
    fake_eutils.reset_log()
    result = sync_topic(store, client, TOPIC, today=WEEK[1])
    assert result.succeeded and result.suggestions == 1
    # 101 was asked already: only the links that entered PubMed from the last pass's day (less the overlap) on.
    assert elinks(fake_eutils) == [{"cmd": "neighbor", "datetype": "edat", "mindate": "2024/06/05",
                                    "maxdate": "2024/06/15", "id": "101"}]
    assert pending(store) == [(103, ("similar", "cites"), {"similar": (101,), "cites": (101,)}),
                              (106, ("similar", "cites"), {"similar": (101,), "cites": (101,)})]
    assert suggestion_state(store, TOPIC.slug).checked_through == WEEK[1] + timedelta(days=1)
    assert recent_runs(store, topic=TOPIC.slug, limit=1)[0].requests == 5  # 3 esearch, 1 elink, 1 efetch


def test_a_seed_in_the_topic_file_starts_the_suggestions_before_any_decision(fake_eutils, store, client):
    serve(fake_eutils, week=True, matched=(102,))
    seeded = dataclasses.replace(TOPIC, seeds=(101, 104))
    assert sync_topic(store, client, seeded, today=WEEK[1]).succeeded
    found = {item.pmid: item.seeds for item in load_suggestions(store, seeded.slug)}
    # The seeds themselves and the topic's paper (102) are never suggested; 101 is not even stored.
    assert found == {103: {"similar": (101,), "cites": (101,)}, 106: {"similar": (101,), "cites": (101,)},
                     105: {"similar": (104,), "cites": (104,)}, 107: {"similar": (104,)}}
    assert load_papers(store, [101, 104]) == []
    assert [view.why for view in list_suggestions(store, seeded).items if view.pmid == 107] == [("similar to PMID 104",)]


# -- the reader's choices -----------------------------------------------------------------------------

def test_a_dismissed_suggestion_never_comes_back_and_one_the_query_finds_later_is_dropped(included, fake_eutils,
                                                                                         store, client):
    dismiss_suggestions(store, TOPIC, [103], reviewer="ana")
    serve(fake_eutils, week=True, matched=(101, 102, 106))  # the query finds 106 at its next run
    refresh_suggestions(store, client, TOPIC, today=WEEK[1])
    assert pending(store) == [(106, ("similar", "cites"), {"similar": (101,), "cites": (101,)})]
    assert sync_topic(store, client, TOPIC, today=WEEK[1]).succeeded
    assert pending(store) == []
    assert [item.pmid for item in load_suggestions(store, TOPIC.slug, statuses=("dismissed",))] == [103]
    assert member_sources(store, TOPIC.slug, [106]) == {106: "query"}
    assert undo_dismissal(store, TOPIC, reviewer="bo") is None  # bo dismissed nothing
    assert undo_dismissal(store, TOPIC, reviewer="ana") == 103
    assert pending(store) == [(103, ("similar", "cites"), {"similar": (101,), "cites": (101,)})]


def test_adding_records_the_source_and_prisma_counts_it_by_method(included, fake_eutils, store, client):
    serve(fake_eutils, week=True)
    assert sync_topic(store, client, TOPIC, today=WEEK[1]).succeeded
    add_suggestions(store, TOPIC, [103], reviewer="ana")
    assert member_sources(store, TOPIC.slug, [101, 102, 103]) == {101: "query", 102: "query", 103: "suggestion"}
    [added] = load_suggestions(store, TOPIC.slug, statuses=("added",))
    assert (added.pmid, added.decided_by) == (103, "ana")
    counts = prisma_counts(store, TOPIC)
    assert counts.other_methods == {"similar articles": 1, "citation searching": 0}
    assert (counts.records, counts.unscreened, counts.included) == (3, 1, 1)  # screened like the rest
    assert render_json(counts).count('"other_methods": {\n    "similar articles": 1,\n    "citation searching": 0\n  }') == 1
    assert "identified via other methods: 1 records added from the suggestions (similar articles: 1, citation " \
           "searching: 0)\n" in render_text(counts)
    assert render_csv(counts).endswith("other methods: similar articles,1\r\nother methods: citation searching,0\r\n")
    svg = render_svg(counts)
    assert "Identification of studies via other methods" in svg and "Similar articles (n = 1)" in svg
    assert 'width="1200"' in svg
    assert "Identification of studies via other methods" not in render_svg(prisma_counts(store, TOPIC,
                                                                                         since=date.today() + timedelta(1)))


def test_add_and_dismiss_take_every_pmid_or_none(included, store):
    with pytest.raises(ConfigError) as refused:
        dismiss_suggestions(store, TOPIC, [103, 104], reviewer="ana")
    assert str(refused.value) == ("PMID 104 is not a suggestion of topic 'cesarean': 'tracker suggest cesarean' "
                                  "lists them")
    with pytest.raises(ConfigError) as refused:
        add_suggestions(store, TOPIC, [103, 101], reviewer="ana")
    assert str(refused.value) == "PMID 101 is already in topic 'cesarean': nothing to add"
    assert pending(store) == [(103, ("similar", "cites"), {"similar": (101,), "cites": (101,)})]
    dismiss_suggestions(store, TOPIC, [103], reviewer="ana")
    with pytest.raises(ConfigError) as refused:
        dismiss_suggestions(store, TOPIC, [103], reviewer="ana")
    assert str(refused.value) == "PMID 103 was already dismissed from topic 'cesarean's suggestions"
    add_suggestions(store, TOPIC, [103], reviewer="bo")  # a dismissed one can still be added
    assert member_sources(store, TOPIC.slug, [103]) == {103: "suggestion"}


def test_a_paper_that_was_never_suggested_is_added_by_hand(included, fake_eutils, store, client):
    added = add_by_pmid(store, client, TOPIC, [103, 105, 99999999], reviewer="ana")
    assert (added.suggested, added.by_hand, added.missing) == ((103,), (105,), (99999999,))
    assert member_sources(store, TOPIC.slug, [103, 105]) == {103: "suggestion", 105: "manual"}
    assert recent_runs(store, topic=TOPIC.slug, limit=1)[0].kind == "manual"
    assert prisma_counts(store, TOPIC).other_methods == {"similar articles": 1, "citation searching": 0}


# -- the request budget and faults --------------------------------------------------------------------

def test_a_pass_of_a_topic_with_hundreds_of_seeds_stays_within_its_budget(fake_eutils, store, client):
    serve(fake_eutils, week=True, matched=())
    many = dataclasses.replace(TOPIC, seeds=(101, 104, *range(200_000, 200_300)))
    first = find_suggestions(store, client, many, today=WEEK[1])
    # The newest 50 (by PMID: none is stored) asked without a date limit (2 ELink), the other 252 for the window
    # (3 ELink: 101 and 104, the oldest, are among them), 1 efetch.
    assert (first.seeds, first.new_seeds, first.requests, first.left_out) == (302, 50, 6, 0)
    assert first.requests <= REQUEST_BUDGET
    assert [item.pmid for item in load_suggestions(store, many.slug)] == [106, 107]
    second = find_suggestions(store, client, many, today=WEEK[1])
    assert (second.seeds, second.new_seeds, second.requests, second.new) == (302, 50, 5, 0)


def test_candidates_past_the_budget_wait_and_the_run_says_so(fake_eutils, store, client):
    serve(fake_eutils, week=True, matched=())
    client.settings = dataclasses.replace(client.settings, efetch_batch=1)
    seeded = dataclasses.replace(TOPIC, seeds=(101,))
    found = find_suggestions(store, client, seeded, today=WEEK[1], budget=4)  # 2 ELink, 1 efetch and 1 spare
    assert (found.candidates, found.left_out, found.requests) == (3, 2, 3)
    assert found.warnings == ["suggestions: 2 weaker candidates left out to keep within 4 requests: run 'tracker "
                              "suggest cesarean --refresh' to ask without a limit"]
    assert [item.pmid for item in load_suggestions(store, seeded.slug)] == [103]  # the strongest: similar and cites


@pytest.mark.parametrize("fault", ["500", "reset", "blocked", "backend-error"])
def test_a_failing_elink_is_a_warning_and_leaves_the_runs_papers_and_watermark(included, fake_eutils, store, client,
                                                                               fault):
    serve(fake_eutils, week=True, matched=(101, 102, 107))
    fake_eutils.inject(fault, endpoint="elink", times=10)
    result = sync_topic(store, client, TOPIC, today=WEEK[1])
    assert result.succeeded and result.new_papers == 1  # 107, from the query
    assert topic_state(store, TOPIC.slug).watermark == WEEK[1] + timedelta(days=1)
    assert member_sources(store, TOPIC.slug, [107]) == {107: "query"}
    [warning] = result.suggestion_warnings
    # A Blocked Diagnostic page is not retried: NCBI has blocked the machine, and asking again makes it worse.
    attempts = 1 if fault == "blocked" else 3
    assert warning.startswith("suggestions not updated: NCBI blocked this machine's requests (its Blocked Diagnostic "
                              "page), so nothing more was asked: " if fault == "blocked" else
                              "suggestions not updated: elink failed after 3 attempts: ")
    assert warning.endswith("; the next run asks for the same days again")
    assert result.summary().endswith(f"; warning: {warning}")
    run = recent_runs(store, topic=TOPIC.slug, limit=1)[0]
    assert (run.status, run.error, run.warnings) == ("succeeded", None, [warning])
    assert run_view(run).notes == (warning,)  # `tracker status` and the Runs page show it under the run
    assert run.requests == 3 + 1 + attempts  # the run's esearches, its efetch of 107, and the ELink attempts
    assert suggestion_state(store, TOPIC.slug).checked_through == BEFORE + timedelta(days=1)  # not moved
    assert pending(store) == [(103, ("similar", "cites"), {"similar": (101,), "cites": (101,)})]
    fake_eutils.clear_faults()
    again = sync_topic(store, client, TOPIC, today=WEEK[1])
    assert again.succeeded and again.suggestions == 1 and again.suggestion_warnings == ()
    assert [pmid for pmid, _ways, _seeds in pending(store)] == [103, 106]


def test_a_failing_efetch_of_the_suggestions_keeps_nothing_half_done(included, fake_eutils, store, client):
    serve(fake_eutils, week=True)
    fake_eutils.reset_log()
    fake_eutils.inject("500", endpoint="efetch", times=10)
    result = sync_topic(store, client, TOPIC, today=WEEK[1])
    assert result.succeeded
    assert result.suggestion_warnings[0].startswith("suggestions not updated: efetch failed after 3 attempts: HTTP 500")
    assert pending(store) == [(103, ("similar", "cites"), {"similar": (101,), "cites": (101,)})]
    assert suggestion_state(store, TOPIC.slug).checked_through == BEFORE + timedelta(days=1)


# -- seeds and phrases --------------------------------------------------------------------------------

def test_participants_are_read_from_what_an_abstract_states():
    assert stated_participants("We randomised 120 healthy parturients to two groups.") == 120
    assert stated_participants("Of 1,204 patients screened, 310 women were enrolled.") == 310  # not those screened
    assert stated_participants("In 2019 the dose was 0.05 µg/kg/min.") is None
    assert stated_participants("") is None


def test_seeds_come_newest_and_largest_in_turn():
    from tests.test_store import make_paper
    from tracker.ncbi.pubmed import AbstractSection

    def paper(pmid, created, people):
        return make_paper(pmid, history=(("pubmed", f"{created}T06:00"),),
                          abstract_sections=(AbstractSection(None, None, f"We enrolled {people} patients."),))

    papers = [paper(1, "2020-01-01", 900), paper(2, "2024-01-01", 40), paper(3, "2023-01-01", 60),
              paper(4, "2019-01-01", 500), paper(5, "2022-01-01", 30)]
    # 9 is not stored: a seed from the topic file, newest by its PMID, of no known size.
    assert order_seeds([1, 2, 3, 4, 5, 9], papers) == [9, 1, 2, 4, 3, 5]


def test_why_a_paper_is_suggested_names_its_seeds_or_counts_them():
    from tests.test_store import make_paper
    from tracker.ncbi.pubmed import Author

    papers = {11: make_paper(11, authors=(Author("Ngan Kee", "Warwick", "WD"),)),
              12: make_paper(12, authors=(Author(collective_name="NOR-CS Investigators"),), pub_date=None)}
    item = StoredSuggestion("t", 5, "pending", ("similar", "cites", "cited by"),
                            {"similar": (11, 12, 13), "cites": (11,), "cited by": (13,)})
    assert describe_why(item, papers) == ("similar to 3 of your included papers", "cites Ngan Kee 2019",
                                          "cited by PMID 13")
    assert describe_why(item, papers, file_seeds={13}) == ("similar to 3 of your included papers and seeds",
                                                           "cites Ngan Kee 2019", "cited by PMID 13")
    assert describe_why(dataclasses.replace(item, seeds={"similar": (12, 13)}), papers, file_seeds={12, 13}) == (
        "similar to 2 of the topic's seeds",)
