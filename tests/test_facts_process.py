"""Study facts read on a process of their own (tracker/facts/process.py): the same facts, a fault kept to its paper,
a child that fails leaves the work to the parent, Ctrl-C is the parent's, and a backfill uses it and ends it."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from datetime import date

from sqlalchemy import text

from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml
from tests.test_sync import DOSING
from tracker.facts import StudyFacts, extract_facts
from tracker.facts.process import FactsProcess, FactsRead, FactsText
from tracker.runs import ingest
from tracker.runs.sync import sync_topic

TEXTS = [
    FactsText(1, "Norepinephrine versus phenylephrine for spinal hypotension during caesarean delivery: a randomised "
                 "trial", "110 women were randomly allocated to a prophylactic infusion of norepinephrine 2.5 µg/min "
                 "or phenylephrine 50 µg/min.", ("Journal Article",), ()),
    FactsText(2, "Vasopressors in septic shock: a narrative review", "This review discusses norepinephrine in sepsis.",
              ("Review",), ("Shock, Septic",)),
    FactsText(3, "", "", ("Case Reports",), ()),
    FactsText(4, "The ED90 of norepinephrine in elderly patients", "The ED90 was 0.08 µg/kg/min (95% CI 0.06 to 0.1).",
              (), ()),
]


def read_here(texts) -> list[FactsRead]:
    return [FactsRead(extract_facts(t.title, t.abstract, t.publication_types, t.mesh_terms)) for t in texts]


def child_running(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", "import sys\nfrom tracker.facts import child\n" + script, *args]


# A child whose rules break on one title.
BROKEN_ON_REVIEWS = child_running(
    "real = child.extract_facts\n"
    "def extract(title, *rest):\n"
    "    if title.startswith('Vasopressors'):\n"
    "        raise RuntimeError('a rule broke')\n"
    "    return real(title, *rest)\n"
    "child.extract_facts = extract\n"
    "child.serve(sys.stdin.buffer, sys.stdout.buffer)\n")


def test_the_child_reads_the_facts_this_process_reads_batch_after_batch():
    with FactsProcess() as reader:
        first = reader.read(TEXTS)
        pid = reader.pid
        second = reader.read(TEXTS[::-1])
        assert reader.pid == pid  # one child for every batch
    assert (first, second) == (read_here(TEXTS), read_here(TEXTS[::-1]))
    assert first[0].facts.design == "rct" and first[0].facts.sample_size == 110
    assert reader.pid is None


def test_a_fault_in_a_rule_comes_back_as_that_paper_s_fault_and_the_others_are_read():
    with FactsProcess(BROKEN_ON_REVIEWS) as reader:
        reads = reader.read(TEXTS)
    expected = read_here(TEXTS)
    assert [reads[0], reads[2], reads[3]] == [expected[0], expected[2], expected[3]]
    assert reads[1].facts == StudyFacts()
    assert reads[1].fault is not None and reads[1].fault.endswith("RuntimeError: a rule broke\n")


def test_a_child_that_dies_leaves_the_facts_to_this_process_and_is_not_started_again(tmp_path, caplog):
    starts = tmp_path / "starts"
    dying = child_running("open(sys.argv[1], 'a').write('started\\n')\nsys.exit(3)", str(starts))
    with caplog.at_level(logging.WARNING, logger="tracker.facts"), FactsProcess(dying) as reader:
        assert reader.read(TEXTS) == read_here(TEXTS)
        assert reader.read(TEXTS[:2]) == read_here(TEXTS[:2])
    assert starts.read_text() == "started\n"
    assert [record.getMessage() for record in caplog.records] == [
        "the process reading study facts stopped (exit code 3); they are read in this one from now on"]


def test_a_child_that_answers_nonsense_is_ended_and_the_facts_are_read_here(caplog):
    nonsense = child_running("import pickle\npickle.load(sys.stdin.buffer)\n"
                             "pickle.dump(['not', 'facts'], sys.stdout.buffer)\nsys.stdout.flush()\n"
                             "sys.stdin.buffer.read()\n")
    with caplog.at_level(logging.WARNING, logger="tracker.facts"), FactsProcess(nonsense) as reader:
        assert reader.read(TEXTS) == read_here(TEXTS)
    assert [record.getMessage() for record in caplog.records] == [
        "the process reading study facts stopped (it answered 4 texts with list); they are read in this one from now "
        "on"]


def test_a_child_that_fails_on_start_is_reported_with_its_error(caplog):
    failing = child_running("raise ImportError('no module named ahocorasick')")
    with caplog.at_level(logging.WARNING, logger="tracker.facts"), FactsProcess(failing) as reader:
        assert reader.read(TEXTS) == read_here(TEXTS)
    assert [record.getMessage() for record in caplog.records] == [
        "the process reading study facts stopped (exit code 1: ImportError: no module named ahocorasick); they are "
        "read in this one from now on"]


def test_a_child_that_cannot_start_leaves_the_facts_to_this_process(tmp_path, caplog):
    missing = tmp_path / "no-python"
    with caplog.at_level(logging.WARNING, logger="tracker.facts"), FactsProcess([str(missing)]) as reader:
        assert reader.read(TEXTS) == read_here(TEXTS)
    assert [record.getMessage() for record in caplog.records] == [
        f"the process reading study facts stopped ([Errno 2] No such file or directory: '{missing}'); they are read "
        "in this one from now on"]


def test_closing_ends_the_child_once_its_pipe_is_closed(tmp_path):
    ended = tmp_path / "ended"
    child = child_running("child.serve(sys.stdin.buffer, sys.stdout.buffer)\nopen(sys.argv[1], 'w').write('ended')",
                          str(ended))
    reader = FactsProcess(child)
    reader.read(TEXTS[:1])
    reader.close()
    assert ended.read_text() == "ended"
    assert reader.read(TEXTS[:1]) == read_here(TEXTS[:1])  # after closing, read here
    assert reader.pid is None


def test_ctrl_c_is_the_parent_s_to_handle_the_child_keeps_answering(caplog):
    with caplog.at_level(logging.WARNING, logger="tracker.facts"), FactsProcess() as reader:
        reader.read(TEXTS[:1])
        pid = reader.pid
        assert pid is not None
        os.kill(pid, signal.SIGINT)
        assert reader.read(TEXTS) == read_here(TEXTS)
        assert reader.pid == pid
    assert caplog.records == []


def test_a_backfill_of_several_batches_stores_the_facts_read_by_the_child_and_ends_it(fake_eutils, store, client,
                                                                                       monkeypatch, caplog):
    readers: list[FactsProcess] = []

    class Recorded(FactsProcess):
        def __init__(self) -> None:
            super().__init__()
            readers.append(self)

    monkeypatch.setattr(ingest, "FactsProcess", Recorded)
    abstracts = {pmid: f"{pmid} patients having caesarean delivery were randomised to norepinephrine {pmid % 7 + 1} "
                       "µg/min or phenylephrine." for pmid in range(10, 130)}
    fake_eutils.add(*[FakeRecord(pmid=pmid, xml=article_xml(pmid, created=date(2024, 5, pmid % 28 + 1), abstract=abstract),
                            created=date(2024, 5, pmid % 28 + 1)) for pmid, abstract in abstracts.items()])
    with caplog.at_level(logging.WARNING):
        outcome = sync_topic(store, client, DOSING, today=date(2024, 6, 1))
    assert outcome.succeeded and outcome.new_papers == 120
    with store.engine.connect() as connection:
        stored = dict(connection.execute(text("SELECT pmid, facts FROM paper")).all())
    title = "Norepinephrine versus phenylephrine for spinal hypotension during caesarean delivery."
    assert stored == {pmid: extract_facts(title, abstract, ["Journal Article"]).to_json()
                      for pmid, abstract in abstracts.items()}
    assert len(readers) == 1 and readers[0].pid is None
    assert caplog.records == []


def test_a_batch_whose_paper_s_rule_broke_in_the_child_stores_it_without_facts_and_logs_it(caplog):
    from tests.test_store import make_paper
    from tests.test_study_facts import REVIEW_SECTIONS, REVIEW_TITLE, rct_paper

    trial = ingest.packed(rct_paper(45))
    review = ingest.packed(make_paper(46, title=REVIEW_TITLE, abstract_sections=REVIEW_SECTIONS))
    with caplog.at_level(logging.ERROR, logger="tracker.store"), FactsProcess(BROKEN_ON_REVIEWS) as reader:
        batch = ingest.with_facts([trial, review], reader)
    assert batch == ingest.Batch([trial, review], {
        45: extract_facts(trial.title, trial.abstract, trial.publication_types), 46: StudyFacts()})
    [logged] = caplog.records
    assert logged.getMessage().startswith("PMID 46: its study facts could not be read; it is stored without them\n"
                                          "Traceback (most recent call last):\n")
    assert logged.getMessage().endswith("RuntimeError: a rule broke")


def test_closing_kills_a_child_that_does_not_answer_and_the_waiting_thread_reads_its_texts_itself(caplog):
    silent = child_running("sys.stdin.buffer.read()\n")  # reads until its pipe closes, answers nothing
    reader = FactsProcess(silent)
    reads: list[list[FactsRead]] = []
    waiting = threading.Thread(target=lambda: reads.append(reader.read(TEXTS)))
    with caplog.at_level(logging.WARNING, logger="tracker.facts"):
        waiting.start()
        while reader.pid is None:
            time.sleep(0.01)
        reader.close(timeout=0.2)
        waiting.join(10)
    assert not waiting.is_alive()
    assert reads == [read_here(TEXTS)]
    assert reader.pid is None and caplog.records == []
