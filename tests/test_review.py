"""Screening a review can report (issue 23) and blind review that stays blind (issue 25): decisions that cannot be
wrong by accident, PRISMA that adds up at both stages, the full-text stage, adjudication and agreement, the
spreadsheet round trip, and nothing of a blind reviewer's decisions shown to the other before both decided."""

from __future__ import annotations

import csv
import html
import io
import json
import random
import re
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from tests.test_store import make_paper
from tracker.cli import cli
from tracker.errors import ConfigError
from tracker.outputs.export import export_papers
from tracker.review.importing import import_decisions
from tracker.review.prisma import agreement, prisma_counts, render_csv, render_svg, render_text
from tracker.review.screening import (
    count_states,
    decide,
    list_conflicts,
    list_screening,
    paper_stages,
    rule_for,
    undo_last,
)
from tracker.review.states import ScreeningRule, Stage
from tracker.store import open_store
from tracker.store.decisions import decision_history
from tracker.store.papers import save_papers
from tracker.topics import ScreeningMode, Topic
from tracker.web.accounts import add_user

ONE = Topic(slug="dosing", title="Dosing", query="norepinephrine dosing", exclusion_reasons=("wrong population", "other"),
            full_text_reasons=("wrong outcome", "wrong design"))
PAIR = replace(ONE, screening=ScreeningMode(reviewers=2, blind=True))
NAMED = replace(ONE, screening=ScreeningMode(reviewers=2, blind=True, names=("ana", "ben")))


@pytest.fixture
def papers(store):
    save_papers(store, [make_paper(pmid) for pmid in range(1, 9)], topic="dosing")
    return store


def cli_in(home: Path, url: str, *args: str, reviewer: str = "ana"):
    result = CliRunner().invoke(cli, ["--home", str(home), *args], prog_name="tracker",
                                env={"TRACKER_DB_URL": url, "TRACKER_REVIEWER": reviewer})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def home(tmp_path):
    """A tracker home with topic 'dosing' (one reviewer) over eight stored papers."""
    home = tmp_path / "home"
    (home / "queries").mkdir(parents=True)
    (home / "queries" / "dosing.toml").write_text(
        'title = "Dosing"\nquery = "norepinephrine dosing"\nexclusion_reasons = ["wrong population", "other"]\n'
        'full_text_reasons = ["wrong outcome", "wrong design"]\n', encoding="utf-8")
    url = f"sqlite:///{home / 'db' / 'tracker.sqlite3'}"
    store = open_store(url)
    save_papers(store, [make_paper(pmid) for pmid in range(1, 9)], topic="dosing")
    store.close()
    return home, url


# -- decisions that cannot be wrong by accident ------------------------------------------------------

@pytest.mark.parametrize(("flags", "said"), [
    (("--include", "--exclude"), "--include and --exclude were both given: choose one decision; nothing was recorded"),
    (("--maybe", "--include", "--exclude", "--reason", "1"),
     "--include, --exclude, --maybe were all given: choose one decision; nothing was recorded"),
])
def test_two_decision_flags_are_an_error_that_records_nothing(home, flags, said):
    path, url = home
    result = cli_in(path, url, "screen", "set", "dosing", "3", *flags)
    assert (result.exit_code, result.stderr) == (2, f"error: {said} (see 'tracker screen set --help')\n")
    store = open_store(url)
    try:
        assert decision_history(store, 3) == []
    finally:
        store.close()


def test_a_reason_goes_with_an_exclusion_only(papers):
    for decision in ("include", "maybe"):
        with pytest.raises(ConfigError) as refused:
            decide(papers, ONE, [1], decision, reviewer="ana", reasons=["other"])
        assert str(refused.value) == "reasons go with an exclusion: add --exclude, or leave out --reason"
    assert decision_history(papers, 1) == []


def test_team_mode_takes_only_accounts_and_personal_mode_free_names(papers):
    decide(papers, ONE, [1], "include", reviewer="anyone at all")
    add_user(papers, "ana", "ana-password-1")
    with pytest.raises(ConfigError) as refused:
        decide(papers, ONE, [2], "include", reviewer="zed")
    assert str(refused.value) == ("'zed' is not an account of this team (accounts: ana): decide as one of them, or add "
                                  "it with 'tracker users add'")
    decide(papers, ONE, [2], "include", reviewer="ana")
    assert [d.reviewer for d in decision_history(papers, 2)] == ["ana"]


def test_a_note_is_capped_and_plain(papers):
    with pytest.raises(ConfigError) as refused:
        decide(papers, ONE, [1], "include", reviewer="ana", note="x" * 10_001)
    assert str(refused.value) == "the note is 10,001 characters long: keep it under 10,000"
    with pytest.raises(ConfigError) as refused:
        decide(papers, ONE, [1], "include", reviewer="ana", note="see \x1b[31mhere\x00")
    assert str(refused.value) == "the note holds control characters: write it as plain text"
    assert decision_history(papers, 1) == []


# -- the full-text stage ---------------------------------------------------------------------

def test_full_text_follows_title_and_abstract_and_needs_its_reasons(papers):
    decide(papers, ONE, [1, 2, 3, 4], "include", reviewer="ana")
    decide(papers, ONE, [5], "exclude", reviewer="ana", reasons=["other"])
    with pytest.raises(ConfigError) as early:
        decide(papers, ONE, [5, 6], "include", reviewer="ana", stage=Stage.FULL_TEXT)
    assert str(early.value) == ("PMIDs 5, 6 are not included by title and abstract (5 excluded, 6 unscreened), so not "
                                "at the full text yet: nothing was recorded")
    with pytest.raises(ConfigError) as reasonless:
        decide(papers, ONE, [1], "exclude", reviewer="ana", stage=Stage.FULL_TEXT)
    assert str(reasonless.value) == ("a full-text exclusion needs its reason: add --reason, one of 1 'wrong outcome', "
                                     "2 'wrong design'")
    with pytest.raises(ConfigError) as wrong:
        decide(papers, ONE, [1], "maybe", reviewer="ana", stage=Stage.FULL_TEXT)
    assert str(wrong.value) == "unknown decision 'maybe' at full text: use include, exclude or not-retrieved"
    decide(papers, ONE, [1], "include", reviewer="ana", stage=Stage.FULL_TEXT)
    decide(papers, ONE, [2], "exclude", reviewer="ana", reasons=["2", "wrong outcome"], stage=Stage.FULL_TEXT)
    decide(papers, ONE, [3], "not-retrieved", reviewer="ana", stage=Stage.FULL_TEXT)
    states = {row.paper.pmid: row.screening.state
              for row in list_screening(papers, ONE, reviewer="ana", stage=Stage.FULL_TEXT)}
    assert states == {1: "included", 2: "excluded", 3: "not-retrieved", 4: "unscreened"}
    assert count_states(papers, ONE, stage=Stage.FULL_TEXT) == {
        "unscreened": 1, "awaiting": 0, "included": 1, "excluded": 1, "maybe": 0, "conflict": 0, "not-retrieved": 1}
    first, later, history = paper_stages(papers, ONE, 2, reviewer="ana")
    assert (first.state, later.state if later else None, later.reasons if later else None) == (
        "included", "excluded", ("wrong design", "wrong outcome"))
    assert [(entry.stage, entry.decision) for entry in history] == [("title-abstract", "include"),
                                                                     ("full-text", "exclude")]
    counts = prisma_counts(papers, ONE)
    assert (counts.full_text, counts.reports_sought, counts.reports_not_retrieved, counts.awaiting_retrieval,
            counts.reports_assessed, counts.reports_excluded, counts.included) == (True, 4, 1, 1, 2, 1, 1)
    assert (counts.reports_excluded_by_reason, counts.reports_also_given) == ({"wrong design": 1}, {"wrong outcome": 1})


def test_a_topic_that_never_uses_full_text_reads_as_before(papers):
    decide(papers, ONE, [1, 2], "include", reviewer="ana")
    counts = prisma_counts(papers, ONE)
    assert (counts.full_text, counts.included, counts.reports_sought, counts.awaiting_retrieval) == (False, 2, 2, 2)
    assert "reports sought" not in render_text(counts) and "Reports sought" not in render_svg(counts)


def test_the_cli_screens_full_texts_and_exports_their_states(home):
    path, url = home
    assert cli_in(path, url, "screen", "set", "dosing", "1", "2", "3", "--include").exit_code == 0
    done = cli_in(path, url, "screen", "set", "dosing", "1", "--stage", "full-text", "--exclude", "--reason", "1")
    assert (done.exit_code, done.stdout) == (0, "dosing 1: exclude at full text by ana (wrong outcome); now excluded\n")
    done = cli_in(path, url, "screen", "set", "dosing", "2", "--stage", "full-text", "--not-retrieved")
    assert done.stdout == "dosing 2: not-retrieved at full text by ana; now not-retrieved\n"
    refused = cli_in(path, url, "screen", "set", "dosing", "2", "--not-retrieved")
    assert (refused.exit_code, refused.stderr) == (
        2, "error: unknown decision 'not-retrieved': use include, exclude or maybe (not-retrieved is a full-text "
           "decision: add --stage full-text)\n")
    listed = json.loads(cli_in(path, url, "screen", "list", "dosing", "--stage", "full-text", "--format", "json").stdout)
    assert [(row["pmid"], row["stage"], row["state"]) for row in listed] == [
        (3, "full-text", "unscreened"), (2, "full-text", "not-retrieved"), (1, "full-text", "excluded")]
    exported = cli_in(path, url, "export", "dosing", "--state", "not-retrieved")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(row["pmid"], row["decision"], row["full_text"]) for row in rows] == [("2", "included", "not-retrieved")]
    everything = list(csv.DictReader(io.StringIO(cli_in(path, url, "export", "dosing").stdout)))
    assert {row["pmid"]: (row["full_text"], row["full_text_reasons"]) for row in everything if row["full_text"]} == {
        "1": ("excluded", "wrong outcome"), "2": ("not-retrieved", ""), "3": ("unscreened", "")}
    prisma = json.loads(cli_in(path, url, "prisma", "dosing", "--format", "json").stdout)
    assert {key: prisma[key] for key in ("reports_sought", "reports_not_retrieved", "reports_assessed",
                                         "reports_excluded", "reports_excluded_by_reason", "included")} == {
        "reports_sought": 3, "reports_not_retrieved": 1, "reports_assessed": 1, "reports_excluded": 1,
        "reports_excluded_by_reason": {"wrong outcome": 1}, "included": 0}


# -- PRISMA that adds up ----------------------------------------------------------------------

def random_screening(store, topic: Topic, seed: int) -> None:
    """Two reviewers (and now and then a third person's resolution) deciding at random, at both stages."""
    draw = random.Random(seed)
    pmids = list(range(1, 41))
    for reviewer in ("ana", "ben"):
        for pmid in draw.sample(pmids, draw.randint(10, 40)):
            decision = draw.choice(("include", "include", "exclude", "maybe"))
            reasons = draw.sample(topic.exclusion_reasons, draw.randint(0, 2)) if decision == "exclude" else ()
            decide(store, topic, [pmid], decision, reviewer=reviewer, reasons=reasons)
    for pmid in [row.paper.pmid for row in list_conflicts(store, topic)][:3]:
        decide(store, topic, [pmid], draw.choice(("include", "exclude")), reviewer="chair", resolve=True)
    reached = [row.paper.pmid for row in list_screening(store, topic, reviewer=None, stage=Stage.FULL_TEXT)]
    for reviewer in ("ana", "ben"):
        for pmid in draw.sample(reached, draw.randint(0, len(reached))):
            decision = draw.choice(("include", "exclude", "not-retrieved"))
            reasons = draw.sample(topic.full_text_reasons, draw.randint(1, 2)) if decision == "exclude" else ()
            decide(store, topic, [pmid], decision, reviewer=reviewer, reasons=reasons, stage=Stage.FULL_TEXT)


@pytest.mark.parametrize("seed", range(6))
def test_prisma_adds_up_on_every_rendering(store, seed):
    save_papers(store, [make_paper(pmid) for pmid in range(1, 41)], topic="dosing")
    topic = replace(PAIR, screening=ScreeningMode(reviewers=2, blind=seed % 2 == 0))
    random_screening(store, topic, seed)
    counts = prisma_counts(store, topic)
    assert counts.records == counts.excluded + counts.reports_sought + counts.awaiting_title_abstract
    assert counts.reports_sought == counts.reports_not_retrieved + counts.reports_assessed + counts.awaiting_retrieval
    included_at_full_text = counts.included if counts.full_text else 0
    assert counts.reports_assessed == counts.reports_excluded + included_at_full_text + counts.awaiting_full_text
    assert sum(counts.excluded_by_reason.values()) == counts.excluded
    assert sum(counts.reports_excluded_by_reason.values()) == counts.reports_excluded
    measures = {row[0]: int(row[1]) for row in csv.reader(io.StringIO(render_csv(counts)))
                if row[0] != "measure"}
    assert sum(number for name, number in measures.items() if name.startswith("excluded: ")) == measures["excluded"]
    assert sum(number for name, number in measures.items()
               if name.startswith("reports excluded: ")) == measures["reports_excluded"]
    as_json = json.loads(json.dumps(counts.as_json()))
    assert as_json["records"] == as_json["excluded"] + as_json["reports_sought"] + as_json["awaiting_title_abstract"]
    svg = render_svg(counts)
    assert f"Records screened (n = {counts.records})" in svg and f"Records excluded (n = {counts.excluded})" in svg
    if counts.full_text:
        assert f"Reports sought for retrieval (n = {counts.reports_sought})" in svg
        assert f"Reports assessed for eligibility (n = {counts.reports_assessed})" in svg
    shown = render_text(counts)
    assert f"  excluded: {counts.excluded}\n" in shown


def test_kappa_of_a_hand_computed_example():
    """Twenty papers both decided: 9 both include, 6 both not, 3 ana only, 2 ben only. Agreement 15/20 = 75 %;
    ana includes 12/20, ben 11/20: chance = 0.6*0.55 + 0.4*0.45 = 0.51, kappa = (0.75 - 0.51) / 0.49 = 0.490."""

    class Row:
        resolution = None

        def __init__(self, ana, ben):
            self.votes_by = {"ana": ana, "ben": ben}

    rows = ([Row("include", "include")] * 9 + [Row("exclude", "exclude")] * 4 + [Row("maybe", "exclude")] * 2
            + [Row("include", "exclude")] * 3 + [Row("exclude", "include")] * 2)
    found = agreement(ScreeningRule(2, True, names=("ana", "ben")), rows)
    assert (found.percent, found.kappa, found.per_reviewer, found.both) == (75.0, 0.49, {"ana": 20, "ben": 20}, 20)


def test_prisma_reports_each_reviewers_count_agreement_and_settled_conflicts(home):
    path, url = home
    (path / "queries" / "dosing.toml").write_text(
        'title = "Dosing"\nquery = "q"\nexclusion_reasons = ["wrong population", "other"]\n'
        'screening = { reviewers = ["ana", "ben"], blind = true }\n', encoding="utf-8")
    assert cli_in(path, url, "screen", "set", "dosing", "1", "2", "3", "--include").exit_code == 0
    assert cli_in(path, url, "screen", "set", "dosing", "1", "2", "--include", reviewer="ben").exit_code == 0
    assert cli_in(path, url, "screen", "set", "dosing", "3", "4", "--exclude", reviewer="ben").exit_code == 0
    settled = cli_in(path, url, "screen", "set", "dosing", "3", "--include", "--resolve", reviewer="chair")
    assert settled.exit_code == 0, settled.stderr
    prisma = json.loads(cli_in(path, url, "prisma", "dosing", "--format", "json").stdout)
    assert prisma["agreement"]["title_abstract"] == {"percent": 66.7, "kappa": 0.0, "per_reviewer": {"ana": 3, "ben": 4},
                                                     "settled": 1, "both": 3}
    assert prisma["agreement"]["full_text"] == {"percent": None, "kappa": None, "per_reviewer": {}, "settled": 0,
                                                "both": 0}
    shown = cli_in(path, url, "prisma", "dosing").stdout
    assert ("reviewers at title and abstract: ana 3, ben 4; agreement 66.7 % (Cohen's kappa 0.00) over 3 papers both "
            "decided; 1 conflict settled\n") in shown


# -- blind means blind --------------------------------------------------------------------------

def test_a_withdrawn_decision_of_the_other_reviewer_stays_hidden(papers):
    decide(papers, NAMED, [1], "exclude", reviewer="ben", reasons=["other"], note="ben's view", source="web")
    assert undo_last(papers, NAMED, reviewer="ben", source="web") is not None  # withdrawn: ben has no decision now
    first, _, history = paper_stages(papers, NAMED, 1, reviewer="ana")
    assert (first.state, first.decisions, first.hidden, history) == ("unscreened", (), 0, ())
    _, _, own = paper_stages(papers, NAMED, 1, reviewer="ben")
    assert [entry.decision for entry in own] == ["exclude", "withdraw"]


def test_a_third_person_is_no_vote_of_a_named_pair(papers):
    decide(papers, NAMED, [1], "include", reviewer="ana")
    with pytest.raises(ConfigError) as refused:
        decide(papers, NAMED, [1], "include", reviewer="admin")
    assert str(refused.value) == ("admin is not a reviewer of topic 'dosing' (its reviewers: ana, ben): a decision by "
                                  "anyone else only settles a conflict, with --resolve")
    assert [row.screening.state for row in list_screening(papers, NAMED, reviewer="ben") if row.paper.pmid == 1] == [
        "unscreened"]


def test_the_count_form_assigns_the_first_two_who_decide(papers):
    decide(papers, PAIR, [1], "include", reviewer="ana")
    decide(papers, PAIR, [2], "include", reviewer="ben")
    assert rule_for(papers, PAIR).names == ("ana", "ben")
    with pytest.raises(ConfigError) as refused:
        decide(papers, PAIR, [1], "exclude", reviewer="carol")
    assert "carol is not a reviewer of topic 'dosing' (its reviewers: ana, ben)" in str(refused.value)


def test_a_blind_decision_is_not_taken_back_once_the_other_has_decided(papers):
    decide(papers, NAMED, [1], "include", reviewer="ana", source="web")
    decide(papers, NAMED, [1], "exclude", reviewer="ben", reasons=["other"], source="web")
    with pytest.raises(ConfigError) as refused:
        undo_last(papers, NAMED, reviewer="ana", source="web")
    assert str(refused.value) == ("PMID 1: the other reviewer has decided it too, so your blind decision (include) "
                                  "stays; a conflict between you is settled on the Conflicts page")
    assert [d.decision for d in decision_history(papers, 1)] == ["include", "exclude"]


def test_blind_exports_and_counts_show_nothing_of_the_other_reviewer(papers):
    decide(papers, NAMED, [1, 2], "include", reviewer="ben", note="ben was here")
    decide(papers, NAMED, [3], "include", reviewer="ana")
    for reviewer in ("ana", None):
        buffer = io.BytesIO()
        export_papers(papers, [NAMED], buffer, reviewer=reviewer)
        rows = {row["pmid"]: row for row in csv.DictReader(io.StringIO(buffer.getvalue().decode("utf-8")))}
        assert rows["1"]["decision"] == rows["2"]["decision"] == "unscreened"
        assert "ben" not in buffer.getvalue().decode("utf-8")
        for fmt in ("ris", "xlsx"):
            other = io.BytesIO()
            export_papers(papers, [NAMED], other, fmt=fmt, reviewer=reviewer)
            shown = other.getvalue() if fmt == "ris" else _workbook_text(other.getvalue())
            assert b"ben" not in shown, fmt
            assert (b"awaiting" in shown) == (reviewer == "ana"), fmt  # ana sees her own paper 3 awaiting, no more
    assert count_states(papers, NAMED, viewer="ana") == {
        "unscreened": 7, "awaiting": 1, "included": 0, "excluded": 0, "maybe": 0, "conflict": 0}
    assert count_states(papers, NAMED) == {
        "unscreened": 8, "awaiting": 0, "included": 0, "excluded": 0, "maybe": 0, "conflict": 0}
    buffer = io.BytesIO()
    export_papers(papers, [NAMED], buffer, state="awaiting", reviewer="ana")
    assert [row["pmid"] for row in csv.DictReader(io.StringIO(buffer.getvalue().decode("utf-8")))] == ["3"]


def _workbook_text(data: bytes) -> bytes:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True)
    return "\n".join(str(value) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                     for value in row if value is not None).encode()


def test_two_undos_at_once_take_two_steps(papers):
    decide(papers, ONE, [1], "include", reviewer="ana", source="web")
    decide(papers, ONE, [2], "exclude", reviewer="ana", reasons=["other"], source="web")
    results: list = []
    barrier = threading.Barrier(2)

    def undo():
        barrier.wait()
        results.append(undo_last(papers, ONE, reviewer="ana", source="web"))

    threads = [threading.Thread(target=undo) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(saved.decision.pmid for saved in results) == [1, 2]
    assert [row.screening.state for row in list_screening(papers, ONE, reviewer="ana") if row.paper.pmid <= 2] == [
        "unscreened", "unscreened"]


# -- the spreadsheet round trip ------------------------------------------------------------------

def exported_csv(store, topic=ONE) -> str:
    buffer = io.BytesIO()
    export_papers(store, [topic], buffer, bom=True)
    return buffer.getvalue().decode("utf-8-sig")


def test_an_edited_csv_export_imports_back_as_its_edits(papers, tmp_path):
    decide(papers, ONE, [1, 2], "include", reviewer="ana")
    rows = list(csv.DictReader(io.StringIO(exported_csv(papers))))
    edits = {"1": ("excluded", "other"), "3": ("included", ""), "4": ("excluded", "wrong population; other"),
             "5": ("maybe", "")}
    for row in rows:
        if row["pmid"] in edits:
            row["decision"], row["reasons"] = edits[row["pmid"]]
    for separator, name in ((";", "semicolon.csv"), ("\t", "tab.csv")):
        target = tmp_path / name
        with target.open("w", encoding="utf-8-sig", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]), delimiter=separator)
            writer.writeheader()
            writer.writerows(rows)
        result = import_decisions(papers, ONE, target, reviewer="ana")
        if separator == ";":
            assert (result.imported, result.unchanged, result.source) == (4, 1, "CSV, semicolon-separated")
        else:
            assert (result.imported, result.unchanged, result.source) == (0, 5, "CSV, tab-separated")
    again = {row["pmid"]: (row["decision"], row["reasons"]) for row in csv.DictReader(io.StringIO(exported_csv(papers)))}
    assert {pmid: again[pmid] for pmid in edits} == edits
    assert again["2"] == ("included", "") and again["6"] == ("unscreened", "")


def test_an_edited_excel_export_imports_back_as_its_edits(papers, tmp_path):
    from openpyxl import load_workbook

    decide(papers, ONE, [1], "include", reviewer="ana")
    workbook_path = tmp_path / "dosing.xlsx"
    with workbook_path.open("wb") as file:
        export_papers(papers, [ONE], file, fmt="xlsx")
    book = load_workbook(workbook_path)
    sheet = book.worksheets[0]
    header = [cell.value for cell in sheet[1]]
    pmid_at, decision_at, reasons_at = header.index("pmid"), header.index("decision"), header.index("reasons")
    for row in sheet.iter_rows(min_row=2):
        if row[pmid_at].value in (1, "1"):
            row[decision_at].value, row[reasons_at].value = "excluded", "2"
        if row[pmid_at].value in (7, "7"):
            row[decision_at].value = "included"
    book.save(workbook_path)
    result = import_decisions(papers, ONE, workbook_path, reviewer="ana")
    assert (result.imported, result.source) == (2, "Excel workbook")
    again = {row["pmid"]: (row["decision"], row["reasons"]) for row in csv.DictReader(io.StringIO(exported_csv(papers)))}
    assert (again["1"], again["7"], again["2"]) == (("excluded", "other"), ("included", ""), ("unscreened", ""))


@pytest.mark.parametrize(("content", "said"), [
    ("pmid,decision\n1,include\n2,exclude\n1,exclude\n",
     "d.csv line 4: PMID 1 is already on line 2: keep one row per paper; nothing was imported"),
    ('pmid,decision,note\n1,include,"fine\n2,exclude,other\n',
     "d.csv line 2: a quote opens and never closes: check the quotes in that row; nothing was imported"),
    ('pmid,decision,note\n1,include,"first\n2,exclude,"second\n3,include,ok\n',
     "d.csv line 2: a quote opens here and does not close where its cell ends (the row runs on to line 3): check the "
     "quotes in that row; nothing was imported"),
    ("pmid,decision\n²,include\n", "d.csv line 2: pmid '²' is not a PMID: nothing was imported"),
    ("pmid,decision\n99,include\n", "d.csv line 2: PMID 99 is not in topic 'dosing': import again with --add-missing "
                                    "to fetch and add the missing papers first; nothing was imported"),
    ("pmid;decision;reasons\n1;excluded;no such reason\n",
     "d.csv line 2: 'no such reason' is not an exclusion reason of topic 'dosing': use one of 1 'wrong population', "
     "2 'other', or list it in exclusion_reasons in queries/dosing.toml: nothing was imported"),
])
def test_a_bad_file_is_one_line_and_stores_nothing(papers, tmp_path, content, said):
    path = tmp_path / "d.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        import_decisions(papers, ONE, path, reviewer="ana")
    assert str(refused.value) == said
    assert all(decision_history(papers, pmid) == [] for pmid in range(1, 9))


def test_missing_papers_pubmed_does_not_return_are_an_error(papers, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("pmid,decision\n1,include\n77,include\n", encoding="utf-8")
    fetched: list = []
    with pytest.raises(ConfigError) as refused:
        import_decisions(papers, ONE, path, reviewer="ana", add_missing=fetched.append)
    assert str(refused.value) == ("d.csv line 3: PMID 77 was not returned by PubMed: check the PMIDs (a deleted record "
                                  "cannot be added); the papers fetched stay in the topic, and no decision was imported")
    assert fetched == [[77]] and decision_history(papers, 1) == []


def test_a_large_import_writes_in_short_batches_beside_a_reviewer(store, tmp_path, monkeypatch):
    """The import writes BATCH decisions a transaction, so a web decision made meanwhile gets the lock in between."""
    import tracker.review.importing as importing

    save_papers(store, [make_paper(pmid) for pmid in range(1, 61)], topic="dosing")
    monkeypatch.setattr(importing, "BATCH", 10)
    path = tmp_path / "d.csv"
    path.write_text("pmid,decision\n" + "".join(f"{pmid},include\n" for pmid in range(1, 61)), encoding="utf-8")
    committed: list[int] = []
    original = importing.save_decisions

    def counting(store_, topic, decisions, **options):
        saved = original(store_, topic, decisions, **options)
        committed.append(len(decisions))
        if len(committed) == 3:  # between two batches, a reviewer decides in the web app
            decide(store_, ONE, [60], "exclude", reviewer="ben", reasons=["other"], source="web")
        return saved

    monkeypatch.setattr(importing, "save_decisions", counting)
    result = import_decisions(store, ONE, path, reviewer="ana")
    assert (result.imported, committed) == (60, [10] * 6)
    with store.engine.connect() as connection:
        sources = dict(connection.execute(text("SELECT source, count(*) FROM decision GROUP BY source")).all())
    assert sources == {"import": 60, "web": 1}


# -- the web app ------------------------------------------------------------------------------

def web_home(tmp_path, db_url, topic_file: str):
    from tracker.settings import Settings

    home = tmp_path / "web-home"
    (home / "queries").mkdir(parents=True)
    (home / "queries" / "dosing.toml").write_text(topic_file, encoding="utf-8")
    settings = Settings.from_env(home=home, env={"TRACKER_REVIEWER": "ana", "TRACKER_DB_URL": db_url})
    store = open_store(db_url)
    save_papers(store, [make_paper(pmid) for pmid in range(1, 9)], topic="dosing")
    return settings, store


def test_the_screening_page_keys_only_the_first_nine_reasons_and_marks_the_topics_words(tmp_path, db_url):
    from tests.test_web import personal

    reasons = ", ".join(f'"reason {number}"' for number in range(1, 12))
    settings, store = web_home(tmp_path, db_url, f'title = "Dosing"\nquery = "norepinephrine[tiab] AND trial"\n'
                                                 f'exclusion_reasons = [{reasons}]\n'
                                                 'highlight = { exclude = ["trial 8"] }\n')
    try:
        page = personal(settings, store).get("/topics/dosing/screen").text
        assert re.findall(r'data-key="(\d+)"', page) == [str(number) for number in range(1, 10)]
        assert "<kbd>10</kbd>" not in page and "reason 11" in page
        # The query's words for inclusion, the topic's exclude list against it (the longer phrase wins).
        assert '<h1><mark class="for">Norepinephrine</mark> <mark class="against">trial 8</mark></h1>' in page
    finally:
        store.close()


def test_the_ranking_line_says_scores_are_coming_once_enough_decisions_are_in(papers):
    from tracker.review.relevance import ranking_status

    decide(papers, ONE, [1], "include", reviewer="ana")
    decide(papers, ONE, [2], "exclude", reviewer="ana", reasons=["other"])
    assert ranking_status(papers, ONE).sentence == "the scores are being updated from 2 decisions"


def test_only_an_admin_settles_conflicts_and_the_settling_is_a_resolution(tmp_path, db_url):
    from tests.test_web import csrf_of, logged_in
    from tracker.web import build_app

    settings, store = web_home(tmp_path, db_url, 'title = "Dosing"\nquery = "q"\nexclusion_reasons = ["other"]\n'
                                                 'screening = { reviewers = ["ana", "bo"], blind = true }\n')
    try:
        add_user(store, "ana", "ana-password-1")
        add_user(store, "bo", "bo-password-22")
        add_user(store, "chief", "chief-password-3", admin=True)
        topic = replace(NAMED, screening=ScreeningMode(reviewers=2, blind=True, names=("ana", "bo")),
                        exclusion_reasons=("other",))
        decide(store, topic, [3], "include", reviewer="ana", note="looks right")
        decide(store, topic, [3], "exclude", reviewer="bo", reasons=["other"], note="adults only")
        app, _ = build_app(settings, store, host="127.0.0.1", port=8765)
        reviewer = logged_in(app, "bo", "bo-password-22")
        assert reviewer.get("/topics/dosing/conflicts").status_code == 403
        chief = logged_in(app, "chief", "chief-password-3")
        page = chief.get("/topics/dosing/conflicts").text
        assert "ana</strong>: include: “looks right”" in page and "bo</strong>: exclude (other): “adults only”" in page
        settled = chief.post("/topics/dosing/conflicts", data={"csrf": csrf_of(page), "pmid": "3", "decision": "exclude",
                                                               "reason": "other"}, follow_redirects=False)
        assert (settled.status_code, settled.headers["location"]) == (303, "/topics/dosing/conflicts?settled=3")
        [entry] = [d for d in decision_history(store, 3) if d.reviewer == "chief"]
        assert (entry.decision, entry.reasons, entry.resolves, entry.source) == ("exclude", ("other",), True, "web")
        prisma = html.unescape(chief.get("/topics/dosing/prisma").text)
        assert "Agreement 0.0 % over 1 papers both decided; Cohen's kappa 0.00; 1 conflict settled." in prisma
    finally:
        store.close()


def test_the_topic_page_switches_to_the_full_text_stage(tmp_path, db_url):
    from tests.test_web import listed, personal

    settings, store = web_home(tmp_path, db_url, 'title = "Dosing"\nquery = "q"\n'
                                                 'full_text_reasons = ["wrong outcome"]\n')
    try:
        topic = replace(ONE, full_text_reasons=("wrong outcome",))
        decide(store, topic, [2, 4], "include", reviewer="ana")
        decide(store, topic, [4], "exclude", reviewer="ana", reasons=["wrong outcome"], stage=Stage.FULL_TEXT)
        client = personal(settings, store)
        assert listed(client.get("/topics/dosing?stage=full-text").text) == [4, 2]
        assert listed(client.get("/topics/dosing?stage=full-text&state=excluded").text) == [4]
        exported = client.get("/topics/dosing/export.csv?stage=full-text&state=unscreened").text.splitlines()
        assert [line.split(",")[0] for line in exported[1:]] == ["2"]
        screening = client.get("/topics/dosing/screen?stage=full-text").text
        assert ">Not retrieved</button>" in screening and "wrong outcome" in screening and ">Maybe</button>" not in screening
        refused = client.get("/topics/dosing?stage=abstract-only")
        assert refused.status_code == 400 and "unknown screening stage &#39;abstract-only&#39;" in refused.text
    finally:
        store.close()


# -- what is left -----------------------------------------------------------------------------

def test_what_is_left_is_said_once_a_topic_screens_in_relevance_order(store):
    from tests.test_relevance import FIRST, LATER, SEPSIS
    from tracker.review.relevance import refresh_relevance
    from tracker.review.screening import what_is_left
    from tracker.review.stopping import describe, estimate_stopping

    save_papers(store, FIRST + LATER, topic="sepsis")
    decide(store, SEPSIS, [1, 2, 3], "include", reviewer="ana")
    decide(store, SEPSIS, [11, 12, 13], "exclude", reviewer="ana")
    refresh_relevance(store, SEPSIS)
    expected = describe(estimate_stopping([True] * 3 + [False] * 3, len(FIRST + LATER)))
    assert what_is_left(store, SEPSIS) == expected
    assert expected == "too few decisions in relevance order to estimate what is left: 4 more"
    assert prisma_counts(store, SEPSIS).left == expected
    assert f"what is left: {expected}\n" in render_text(prisma_counts(store, SEPSIS))


def test_an_estimate_being_made_again_is_not_made_twice_at_once(store, monkeypatch):
    """While one request makes the estimate again after a decision, another screening page shows the one before
    (pages accept an estimate a moment old) rather than making it too."""
    import threading

    from tests.test_relevance import FIRST, LATER, SEPSIS
    from tracker.review import stopping
    from tracker.review.relevance import refresh_relevance
    from tracker.review.screening import what_is_left

    save_papers(store, FIRST + LATER, topic="sepsis")
    decide(store, SEPSIS, [1, 2, 3], "include", reviewer="ana")
    decide(store, SEPSIS, [11, 12, 13], "exclude", reviewer="ana")
    refresh_relevance(store, SEPSIS)
    before = what_is_left(store, SEPSIS)
    decide(store, SEPSIS, [22], "exclude", reviewer="ana")
    real, started, release, made = stopping.estimate_stopping, threading.Event(), threading.Event(), []

    def slow_estimate(history, papers):
        made.append(len(history))
        started.set()
        release.wait(10)
        return real(history, papers)

    monkeypatch.setattr(stopping, "estimate_stopping", slow_estimate)
    making = threading.Thread(target=what_is_left, args=(store, SEPSIS))
    making.start()
    assert started.wait(10)
    assert what_is_left(store, SEPSIS, fresh_within=0.001) == before
    release.set()
    making.join(10)
    assert made == [7]
    assert what_is_left(store, SEPSIS, fresh_within=0.001) == describe_left(7, len(FIRST + LATER))


def describe_left(decided: int, papers: int) -> str:
    from tracker.review.stopping import describe, estimate_stopping

    return describe(estimate_stopping([True] * 3 + [False] * (decided - 3), papers))
