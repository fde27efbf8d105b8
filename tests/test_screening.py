"""Screening: decisions per topic, paper and reviewer, their history, dual blind screening, imports, exports and
PRISMA counts, on both back ends, and against the real labelled datasets of Cohen 2006."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import threading
from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import REPO, cli_env, run_tracker, write_topic
from tests.test_store import make_paper
from tracker.errors import ConfigError
from tracker.ncbi.pubmed import AbstractSection, Author, MeshHeading, Paper
from tracker.outputs.export import export_papers
from tracker.review.importing import import_decisions
from tracker.review.prisma import prisma_counts, render_svg
from tracker.review.screening import count_states, decide, list_screening, screening_record
from tracker.store import open_store
from tracker.store.decisions import decision_history
from tracker.store.papers import save_papers
from tracker.topics import ScreeningMode, Topic, load_topic

DOSING = Topic(slug="dosing", title="Dosing", query="norepinephrine dosing")
DUAL = replace(DOSING, screening=ScreeningMode(reviewers=2, blind=True))
OPEN_DUAL = replace(DOSING, screening=ScreeningMode(reviewers=2, blind=False))
COHEN = REPO.parent / "shared" / "screening-datasets" / "cohen-2006"


@pytest.fixture
def topic_store(store):
    save_papers(store, [make_paper(pmid) for pmid in range(1, 7)], topic="dosing")
    save_papers(store, [make_paper(pmid) for pmid in (5, 6, 7)], topic="elderly")
    return store


def states(store, topic: Topic, reviewer: str | None = None) -> dict[int, str]:
    return {row.paper.pmid: row.screening.state for row in list_screening(store, topic, reviewer=reviewer)}


# -- one reviewer ----------------------------------------------------------------------------

def test_one_reviewer_the_state_is_their_latest_decision_and_history_is_kept(topic_store):
    store = topic_store
    assert set(states(store, DOSING).values()) == {"unscreened"}
    decide(store, DOSING, [1, 2], "include", reviewer="ana")
    decide(store, DOSING, [3], "exclude", reviewer="ana", reasons=["wrong population", "2"], note="  adults   only ")
    decide(store, DOSING, [4], "maybe", reviewer="ana")
    [changed] = decide(store, DOSING, [2], "exclude", reviewer="ana", reasons=["WRONG OUTCOME"])
    assert changed.replaced.decision == "include" and changed.decision.replaces == changed.replaced.id
    assert states(store, DOSING) == {1: "included", 2: "excluded", 3: "excluded", 4: "maybe", 5: "unscreened",
                                     6: "unscreened"}
    history = decision_history(store, 2)
    assert [(d.reviewer, d.decision, d.reasons, d.replaces) for d in history] == [
        ("ana", "include", (), None), ("ana", "exclude", ("wrong outcome",), history[0].id)]
    [row] = [r for r in list_screening(store, DOSING, reviewer="ben") if r.paper.pmid == 3]
    assert row.screening.reasons == ("wrong population", "wrong intervention")
    assert row.screening.decisions[0].note == "adults only"
    assert count_states(store, DOSING) == {"unscreened": 2, "awaiting": 0, "included": 1, "excluded": 2,
                                                "maybe": 1, "conflict": 0}


def test_a_paper_in_two_topics_is_screened_in_each_and_sees_the_other(topic_store):
    elderly = Topic(slug="elderly", title="Elderly", query="x")
    decide(topic_store, DOSING, [5], "include", reviewer="ana")
    decide(topic_store, elderly, [5], "exclude", reviewer="ana", reasons=["wrong population"])
    [row] = [r for r in list_screening(topic_store, DOSING, reviewer="ana", topics=[DOSING, elderly])
             if r.paper.pmid == 5]
    assert (row.screening.state, row.other_topics) == ("included", (("elderly", "excluded"),))
    record = screening_record(row)
    assert record["other_topics"] == {"elderly": "excluded"} and record["decisions"][0]["decision"] == "include"


@pytest.mark.parametrize("call, message", [
    (dict(pmids=[1, 99, 98], decision="include"),
     "PMIDs 98, 99 are not in topic 'dosing': nothing was recorded; 'tracker screen list dosing' lists its papers"),
    (dict(pmids=[1], decision="include", reasons=["other"]),
     "reasons go with an exclusion: add --exclude, or leave out --reason"),
    (dict(pmids=[1], decision="exclude", reasons=["too long"]),
     "'too long' is not an exclusion reason of topic 'dosing': use one of 1 'wrong population', 2 'wrong "
     "intervention', 3 'wrong comparator', 4 'wrong outcome', 5 'wrong study design', 6 'wrong publication type', "
     "7 'not about norepinephrine as a drug', 8 'duplicate report', 9 'other', or list it in exclusion_reasons in "
     "queries/dosing.toml"),
    (dict(pmids=[1], decision="include", resolve=True),
     "--resolve settles a conflict between two reviewers, and topic 'dosing' has one: leave it out, or set "
     "screening = { reviewers = 2 } in its file"),
])
def test_a_refused_decision_records_nothing(topic_store, call, message):
    with pytest.raises(ConfigError) as caught:
        decide(topic_store, DOSING, reviewer="ana", **call)
    assert str(caught.value) == message
    assert decision_history(topic_store, 1) == []


# -- two reviewers, blind ----------------------------------------------------------------------

def test_blind_dual_screening_hides_the_other_until_both_decided_then_a_conflict_is_resolved(topic_store):
    store = topic_store
    decide(store, DUAL, [1, 2], "include", reviewer="ana")
    # A reader who decides nothing (an export, a digest) is not told either that one reviewer has decided.
    assert (states(store, DUAL, "ana")[1], states(store, DUAL, "ben")[1], states(store, DUAL)[1]) == (
        "awaiting", "unscreened", "unscreened")
    [ben_view] = [r for r in list_screening(store, DUAL, reviewer="ben") if r.paper.pmid == 1]
    assert ben_view.screening.decisions == () and ben_view.screening.hidden == 1
    assert [r.paper.pmid for r in list_screening(store, DUAL, reviewer="ben", state="unscreened")] == [6, 5, 4, 3, 2, 1]
    assert [r.paper.pmid for r in list_screening(store, DUAL, reviewer="ana", state="unscreened")] == [6, 5, 4, 3]

    decide(store, DUAL, [1], "include", reviewer="ben")
    decide(store, DUAL, [2], "exclude", reviewer="ben", reasons=["wrong population"])
    assert {pmid: state for pmid, state in states(store, DUAL, "ben").items() if pmid < 3} == {
        1: "included", 2: "conflict"}
    [conflict] = [r for r in list_screening(store, DUAL, reviewer="ben", state="conflict")]
    assert [(d.reviewer, d.decision) for d in conflict.screening.decisions] == [("ana", "include"), ("ben", "exclude")]

    with pytest.raises(ConfigError, match=r"--resolve settles conflicts, and PMID 1 is not in conflict \(1 included\)"):
        decide(store, DUAL, [1], "exclude", reviewer="carol", resolve=True)
    decide(store, DUAL, [2], "exclude", reviewer="carol", reasons=["wrong population"], resolve=True)
    assert states(store, DUAL)[2] == "excluded"
    assert prisma_counts(store, DUAL).conflicts == 0
    # The same decisions under an open dual mode and under one reviewer: the state follows the topic file.
    assert states(store, OPEN_DUAL, "ben")[3] == "unscreened" and states(store, DOSING)[2] == "excluded"


def test_two_reviewers_deciding_the_same_paper_at_once_both_keep_their_decision(db_url, topic_store):
    stores = [open_store(db_url), open_store(db_url)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def reviewer(store, name: str, decision: str):
        try:
            barrier.wait()
            for _ in range(5):
                decide(store, OPEN_DUAL, [1], decision, reviewer=name)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=reviewer, args=(stores[0], "ana", "include")),
               threading.Thread(target=reviewer, args=(stores[1], "ben", "exclude"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    assert len(decision_history(topic_store, 1)) == 10
    assert states(topic_store, OPEN_DUAL)[1] == "conflict"
    [row] = [r for r in list_screening(topic_store, OPEN_DUAL, reviewer=None) if r.paper.pmid == 1]
    assert sorted(d.reviewer for d in row.screening.decisions) == ["ana", "ben"]


# -- decisions survive updates -----------------------------------------------------------------

def test_refetching_a_paper_keeps_every_decision(topic_store, client, fake_eutils):
    decide(topic_store, DOSING, [1], "exclude", reviewer="ana", reasons=["other"])
    save_papers(topic_store, [make_paper(1, title="A corrected title")], topic="dosing")
    with topic_store.engine.connect() as connection:
        assert connection.execute(text("SELECT title FROM paper WHERE pmid = 1")).scalar() == "A corrected title"
    assert states(topic_store, DOSING)[1] == "excluded"
    assert len(decision_history(topic_store, 1)) == 1


def test_the_modified_records_check_keeps_every_decision(store, client, fake_eutils):
    from tests.test_watch import DOSING as WATCHED
    from tests.test_watch import RETRACTION_SOURCE, record
    from tracker.runs.sync import sync_topic

    fake_eutils.add(*[record(pmid) for pmid in (1, 2)])
    assert sync_topic(store, client, WATCHED, today=date(2024, 6, 1)).succeeded
    decide(store, WATCHED, [1], "include", reviewer="ana")
    decide(store, WATCHED, [2], "exclude", reviewer="ana", reasons=["other"])
    fake_eutils.add(record(1, modified=date(2024, 6, 3), publication_types=("Journal Article", "Retracted Publication"),
                           comments_corrections=[("RetractionIn", 900, RETRACTION_SOURCE)]),
                    record(2, modified=date(2024, 6, 3), title="A corrected title"))
    result = sync_topic(store, client, WATCHED, today=date(2024, 6, 4))
    assert result.succeeded and result.refetched == 2 and result.status_changes == 1
    assert states(store, WATCHED) == {1: "included", 2: "excluded"}
    assert [len(decision_history(store, pmid)) for pmid in (1, 2)] == [1, 1]


# -- imports ---------------------------------------------------------------------------------

def write_csv_file(path: Path, rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(rows)
    return path


def test_an_import_with_a_bad_row_at_line_40_stores_nothing(topic_store, tmp_path):
    rows = [["pmid", "decision", "reason"]] + [[str(1000 + i), "include", ""] for i in range(38)]
    rows.append(["3", "exclude", "not a reason"])
    path = write_csv_file(tmp_path / "decisions.csv", rows)
    with pytest.raises(ConfigError) as caught:
        import_decisions(topic_store, DOSING, path, reviewer="ana")
    assert str(caught.value).startswith("decisions.csv line 40: 'not a reason' is not an exclusion reason of topic "
                                        "'dosing': use one of 1 'wrong population'")
    assert str(caught.value).endswith(": nothing was imported")
    assert all(decision_history(topic_store, pmid) == [] for pmid in range(1, 7))


def test_an_import_of_the_trackers_csv_keeps_reviewers_notes_and_refuses_what_the_topic_lacks(topic_store, tmp_path):
    rows = [["PMID", "Decision", "Reason", "Note", "Reviewer"],
            ["1", "include", "", "", ""], ["2", "exclude", "wrong population; 5", "kids", "ben"],
            ["3", "maybe", "", "", ""], ["77", "include", "", "", ""], ["", "", "", "", ""]]
    with pytest.raises(ConfigError) as caught:
        import_decisions(topic_store, DOSING, write_csv_file(tmp_path / "d.csv", rows), reviewer="ana")
    assert str(caught.value) == ("d.csv line 5: PMID 77 is not in topic 'dosing': import again with --add-missing to "
                                 "fetch and add the missing papers first; nothing was imported")
    assert all(decision_history(topic_store, pmid) == [] for pmid in (1, 2, 3))
    result = import_decisions(topic_store, DOSING, write_csv_file(tmp_path / "d.csv", rows[:4]), reviewer="ana")
    assert (result.kind, result.imported, result.reviewers, result.unchanged) == ("tracker", 3, ("ana", "ben"), 0)
    [two] = decision_history(topic_store, 2)
    assert (two.reviewer, two.reasons, two.note, two.source) == ("ben", ("wrong population", "wrong study design"),
                                                                 "kids", "import")


def test_asreviews_export_is_read_by_its_label_and_pmid_columns(topic_store, tmp_path):
    path = tmp_path / "asreview_result.csv"
    path.write_bytes("\ufeffrecord_id,title,pubmedID,included,asreview_ranking\n0,A,1,1,1\n1,B,2,0,2\n"
                     "2,C,3,,3\n3,D,4,1.0,4\n".encode())
    result = import_decisions(topic_store, DOSING, path, reviewer="ana")
    assert (result.kind, result.imported, result.unlabelled) == ("asreview", 3, 1)
    assert {pmid: state for pmid, state in states(topic_store, DOSING).items() if pmid <= 4} == {
        1: "included", 2: "excluded", 3: "unscreened", 4: "included"}
    by_record = tmp_path / "by-record.csv"
    by_record.write_text("record_id,asreview_label\n5,1\n6,0\n", encoding="utf-8")
    assert import_decisions(topic_store, DOSING, by_record, reviewer="ana").imported == 2
    assert states(topic_store, DOSING)[6] == "excluded"


def test_the_cli_screens_imports_and_exports_the_included_set(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", screening="{ reviewers = 2, blind = true }")
    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}")
    save_papers(store, [make_paper(pmid) for pmid in (11, 12, 13)], topic="dosing")
    store.close()
    env = cli_env(home, None, TRACKER_REVIEWER="ana")
    done = run_tracker("screen", "set", "dosing", "11", "12", "--include", env=env)
    assert (done.code, done.out) == (0, "dosing 11: include by ana; now awaiting the other reviewer\n"
                                        "dosing 12: include by ana; now awaiting the other reviewer\n")
    done = run_tracker("screen", "set", "dosing", "11", "--exclude", "--reason", "other", "--reviewer", "ben", env=env)
    assert done.out == "dosing 11: exclude by ben (other); now conflict\n"
    done = run_tracker("screen", "set", "dosing", "12", "--include", "--reviewer", "ben", env=env)
    assert done.out == "dosing 12: include by ben; now included\n"
    refused = run_tracker("screen", "set", "dosing", "12", "99", "--include", env=env)
    assert (refused.code, refused.err) == (2, "error: PMID 99 is not in topic 'dosing': nothing was recorded; "
                                              "'tracker screen list dosing' lists its papers\n")
    no_decision = run_tracker("screen", "set", "dosing", "12", env=env)
    assert no_decision.code == 2 and "give the decision: --include, --exclude or --maybe" in no_decision.err

    listing = json.loads(run_tracker("screen", "list", "dosing", "--format", "json", env=env).out)
    assert [(r["pmid"], r["state"]) for r in listing] == [(13, "unscreened"), (12, "included"), (11, "conflict")]
    mine = run_tracker("screen", "list", "dosing", "--state", "unscreened", "--reviewer", "carol", env=env)
    assert mine.code == 0 and mine.out.splitlines()[2].split()[:2] == ["13", "unscreened"]

    exported = run_tracker("export", "dosing", "--state", "included", env=env)
    rows = list(csv.DictReader(io.StringIO(exported.out)))
    assert [(row["pmid"], row["decision"], row["reviewers"]) for row in rows] == [
        ("12", "included", "ana: include; ben: include")]
    ris = run_tracker("export", "dosing", "--state", "conflict", "--format", "ris", env=env).out
    assert "KW  - screening: conflict\n" in ris and "AN  - 11\n" in ris and "AN  - 12\n" not in ris

    prisma = json.loads(run_tracker("prisma", "dosing", "--format", "json", env=env).out)
    assert {key: prisma[key] for key in ("records", "screened", "included", "excluded", "unscreened", "conflicts",
                                         "awaiting", "excluded_by_reason")} == {
        "records": 3, "screened": 2, "included": 1, "excluded": 0, "unscreened": 1, "conflicts": 1, "awaiting": 0,
        "excluded_by_reason": {}}


# -- PRISMA ----------------------------------------------------------------------------------

def test_prisma_counts_runs_duplicates_and_reasons(store):
    from tracker.store.runs import RunCounts, finish_run, start_run

    first = start_run(store, "dosing", kind="backfill", query="q", window_start=None, window_end=date(2024, 1, 1))
    save_papers(store, [make_paper(pmid) for pmid in range(1, 9)], topic="dosing", run_id=first.id)
    finish_run(store, first.id, RunCounts(count=8, matched=8, new_papers=8, fetched=8))
    second = start_run(store, "dosing", kind="fetch", query="q", window_start=date(2023, 12, 29),
                       window_end=date(2024, 1, 8))
    save_papers(store, [make_paper(pmid) for pmid in (9, 10)], topic="dosing", run_id=second.id)
    finish_run(store, second.id, RunCounts(count=4, matched=4, new_papers=2, fetched=2))
    save_papers(store, [make_paper(3)], topic="elderly")
    decide(store, DOSING, [1, 2], "include", reviewer="ana")
    decide(store, DOSING, [3, 4], "exclude", reviewer="ana", reasons=["wrong population", "wrong outcome"])
    decide(store, DOSING, [5], "exclude", reviewer="ana", reasons=["wrong population"])
    decide(store, DOSING, [6], "exclude", reviewer="ana")
    decide(store, DOSING, [7], "maybe", reviewer="ana")
    counts = prisma_counts(store, DOSING)
    assert (counts.identified, counts.duplicates, counts.records, counts.from_other_topics) == (12, 2, 10, 1)
    assert (counts.screened, counts.unscreened, counts.included, counts.excluded, counts.maybe) == (7, 3, 2, 4, 1)
    # Each excluded record once, under its first reason; the further ones apart (PRISMA 2020).
    assert counts.excluded_by_reason == {"wrong population": 3, "(no reason given)": 1}
    assert counts.excluded_also_given == {"wrong outcome": 2}
    assert [(run.kind, run.count, run.listed, run.new) for run in counts.runs] == [("backfill", 8, 8, 8),
                                                                                  ("fetch", 4, 4, 2)]


def test_the_prisma_diagram_renders_in_a_real_browser(store, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed: apt-get install -y chromium")
    save_papers(store, [make_paper(pmid) for pmid in range(1, 6)], topic="dosing")
    decide(store, DUAL, [1, 2], "include", reviewer="ana")
    decide(store, DUAL, [1], "include", reviewer="ben")
    decide(store, DUAL, [3], "exclude", reviewer="ana", reasons=["wrong population"])
    decide(store, DUAL, [3], "exclude", reviewer="ben", reasons=["wrong outcome"])
    svg = render_svg(prisma_counts(store, replace(DUAL, title='Norepinephrine <dosing> & "bolus"')))
    from lxml import etree

    root = etree.fromstring(svg.encode())  # well-formed XML, whatever the title holds
    texts = [node.text for node in root.iter("{http://www.w3.org/2000/svg}text")]
    assert 'PRISMA 2020 flow diagram: Norepinephrine <dosing> & "bolus"' in texts
    assert "Records screened (n = 5)" in texts and "Records excluded (n = 1)" in texts
    assert "Awaiting a decision (n = 3)" in texts
    assert "Studies included (n = 1)" in texts and "Awaiting the second reviewer (n = 1)" in texts
    assert "wrong population: 1" in texts and "wrong outcome: 1" in texts
    assert root.findall(".//{http://www.w3.org/2000/svg}script") == []
    page = tmp_path / "prisma.svg"
    page.write_text(svg, encoding="utf-8")
    shot = tmp_path / "prisma.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=820,700",
                    page.as_uri()], capture_output=True, timeout=90, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


# -- the real labelled datasets ----------------------------------------------------------------

COHEN_REASONS = ["foreign language", "wrong outcome", "wrong drug", "wrong population", "wrong publication type",
                 "wrong study design", "wrong study duration", "background article", "only an abstract"]


def cohen_papers(path: Path) -> tuple[list[Paper], dict[int, str]]:
    papers, labels = [], {}
    with open(path, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            pmid = int(row["pubmedID"])
            papers.append(Paper(
                pmid=pmid, kind="article", title=row["title"], abstract_sections=(AbstractSection(None, None, row["abstracts"]),),
                authors=tuple(Author(last_name=name.split(",")[0].strip(), initials=name.partition(",")[2].strip() or None)
                              for name in row["authors"].split("; ") if name.strip()),
                mesh_headings=tuple(MeshHeading(term.strip(), None, False) for term in row["keywords"].split(";")
                                    if term.strip()),
                history=(("pubmed", "2005-01-01"),)))
            labels[pmid] = row["label1"].strip()
    return papers, labels


@pytest.mark.slow
def test_imported_cohen_labels_give_the_prisma_counts_and_export_column_the_file_implies(store, tmp_path):
    if not COHEN.is_dir():
        pytest.skip(f"the screening datasets are read in place from {COHEN} and are not there")
    papers, labels = cohen_papers(COHEN / "NSAIDS.csv")
    save_papers(store, papers, topic="nsaids")
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "nsaids.toml").write_text('title = "NSAIDs"\nquery = "nsaids"\nexclusion_reasons = ['
                                         + ", ".join(json.dumps(reason) for reason in COHEN_REASONS) + "]\n")
    topic = load_topic(queries / "nsaids.toml")
    rows = [["pmid", "decision", "reason"]]
    for pmid, label in labels.items():
        rows.append([str(pmid), "include" if label == "I" else "exclude", label if label.isdigit() else ""])
    result = import_decisions(store, topic, write_csv_file(tmp_path / "labels.csv", rows), reviewer="cohen")
    assert result.imported == len(labels) and result.unchanged == 0

    expected_reasons = Counter(COHEN_REASONS[int(label) - 1] if label.isdigit() else "(no reason given)"
                               for label in labels.values() if label != "I")
    counts = prisma_counts(store, topic).as_json()
    assert (counts["records"], counts["screened"], counts["unscreened"], counts["conflicts"]) == (len(labels),) * 2 + (0, 0)
    assert counts["included"] == sum(label == "I" for label in labels.values()) == 88
    assert counts["excluded"] == len(labels) - 88
    assert counts["excluded_by_reason"] == dict(expected_reasons) and sum(expected_reasons.values()) == len(labels) - 88

    buffer = io.BytesIO()
    export_papers(store, [topic], buffer)
    exported = {int(row["pmid"]): row for row in csv.DictReader(io.StringIO(buffer.getvalue().decode("utf-8")))}
    assert {pmid: row["decision"] for pmid, row in exported.items()} == {
        pmid: "included" if label == "I" else "excluded" for pmid, label in labels.items()}
    assert {pmid: row["reasons"] for pmid, row in exported.items() if labels[pmid].isdigit()} == {
        pmid: COHEN_REASONS[int(label) - 1] for pmid, label in labels.items() if label.isdigit()}


# -- digests, the e-mail and status changes ----------------------------------------------------

def test_digests_say_what_is_left_to_screen_and_leave_excluded_papers_out(topic_store):
    from tracker.outputs.digest import build_topic_digest, render_text

    decide(topic_store, DOSING, [1], "include", reviewer="ana")
    decide(topic_store, DOSING, [2, 3], "exclude", reviewer="ana", reasons=["other"])
    digest = build_topic_digest(topic_store, DOSING, since=date(2000, 1, 1))
    assert sorted(entry.paper.pmid for entry in digest.entries) == [1, 4, 5, 6]
    assert (digest.total_new, digest.screening.to_screen, digest.screening.included, digest.screening.left_out) == (
        4, 3, 1, 2)
    assert "Screening: 3 new to screen; 1 included so far; 2 already excluded are left out\n" in render_text(digest)


def test_a_retracted_included_paper_is_called_out_first_in_digest_mail_and_status(store, client, fake_eutils,
                                                                                  tmp_path, monkeypatch):
    from tests.smtp_server import LoopbackSMTP
    from tests.test_watch import DOSING as WATCHED
    from tests.test_watch import RETRACTION_SOURCE, record, text_of
    from tracker.outputs.digest import build_topic_digest, render_markdown
    from tracker.outputs.mail import send_weekly_email
    from tracker.runs.sync import sync_topic
    from tracker.settings import Settings

    monkeypatch.setattr("tracker.outputs.charts.chart_png", lambda store, slug, *, end: b"\x89PNG\r\n\x1a\n")
    fake_eutils.add(*[record(pmid) for pmid in (1, 2)])
    assert sync_topic(store, client, WATCHED, today=date(2024, 6, 1)).succeeded
    settings = Settings(home=tmp_path / "home", smtp_host="127.0.0.1", smtp_security="none",
                        mail_from="tracker@lab.example.org", timeout=5)
    with LoopbackSMTP() as smtp:
        send_weekly_email(store, replace(settings, smtp_port=smtp.port), [WATCHED])
        decide(store, WATCHED, [2], "include", reviewer="ana")
        for pmid in (1, 2):
            fake_eutils.add(record(pmid, modified=date(2024, 6, 3),
                                   publication_types=("Journal Article", "Retracted Publication"),
                                   comments_corrections=[("RetractionIn", 900 + pmid, RETRACTION_SOURCE)]))
        assert sync_topic(store, client, WATCHED, today=date(2024, 6, 4)).status_changes == 2
        send_weekly_email(store, replace(settings, smtp_port=smtp.port), [WATCHED])
        plain = text_of(smtp.messages[-1])
    updates = plain[plain.index("UPDATES TO PAPERS"):]
    assert updates.count("!! AN INCLUDED PAPER WAS RETRACTED (DOSING)") == 1
    assert updates.index("!! AN INCLUDED PAPER") < updates.index("/2/") < updates.index("/1/")
    digest = build_topic_digest(store, WATCHED, since=date(2024, 1, 1))
    assert [update.pmid for update in digest.updates] == [2, 1]
    assert "**⚠ an included paper was retracted (dosing).** **Retracted:**" in render_markdown(digest)

    home = tmp_path / "cli"
    write_topic(home, "dosing", "norepinephrine dosing")
    env = cli_env(home, None, TRACKER_DB_URL=store.url)
    changes = run_tracker("status", "--changes", env=env)
    assert changes.code == 0, changes.err
    assert changes.out.splitlines()[0].startswith("!! an included paper was retracted (dosing): PMID 2 ")
    table = changes.out.splitlines()[1:]
    assert [line.split()[2] for line in table[2:]] == ["2", "1"]
