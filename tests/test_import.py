"""Importing a PubMed MEDLINE export (.nbib) into a topic: Biopython reads it, the client fetches what is missing."""

from __future__ import annotations

import sqlite3
from datetime import date

from tests.conftest import cli_env, run_tracker
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml

# Hand-written in PubMed's "Save > Format: PubMed" layout: tag, padding to four columns, "- ", value;
# continuation lines indented by six spaces.
NBIB = """PMID- 31000001
OWN - NLM
STAT- MEDLINE
TI  - Norepinephrine infusion for spinal hypotension during caesarean delivery: a
      randomised trial.
AU  - Ngan Kee WD

PMID- 31000002
TI  - Prophylactic norepinephrine in elderly patients.

PMID- 31000001
TI  - The same record exported twice.
"""


def test_import_fetches_missing_papers_and_links_all_to_the_topic(home, fake_eutils):
    for pmid in (31000001, 31000002):
        fake_eutils.add(FakeRecord(pmid=pmid, xml=article_xml(pmid, created=date(2023, 5, 1)),
                                   created=date(2023, 5, 1)))
    export = home / "export.nbib"
    export.write_text(NBIB, encoding="utf-8")
    env = cli_env(home, fake_eutils.url)
    first = run_tracker("import", str(export), "--topic", "dosing", env=env)
    assert first.code == 0, first.err
    assert first.out == "dosing: 2 PMIDs in export.nbib, 2 new to the topic, 2 fetched, 1 request\n"
    second = run_tracker("import", str(export), "--topic", "elderly", env=env)
    assert second.out == "elderly: 2 PMIDs in export.nbib, 2 new to the topic, 0 fetched, 0 requests\n"
    with sqlite3.connect(home / "db" / "tracker.sqlite3") as connection:
        assert sorted(connection.execute("SELECT topic, pmid FROM topic_paper")) == [
            ("dosing", 31000001), ("dosing", 31000002), ("elderly", 31000001), ("elderly", 31000002)]
        assert connection.execute("SELECT count(*) FROM topic_state").fetchone() == (0,)


def test_import_errors_are_one_line(home, fake_eutils):
    env = cli_env(home, fake_eutils.url)
    notes = home / "notes.txt"
    notes.write_text("just some notes\nnothing to see\n")
    result = run_tracker("import", str(notes), "--topic", "dosing", env=env)
    assert (result.code, result.err.strip()) == (
        2, f"error: {notes} holds no MEDLINE records (no 'PMID- ' lines): in PubMed use Save > Format: PubMed")
    missing = run_tracker("import", str(home / "nope.nbib"), "--topic", "dosing", env=env)
    assert (missing.code, missing.err.strip()) == (
        2, f"error: cannot read {home / 'nope.nbib'} (No such file or directory): give the path of a PubMed export")
    unknown = run_tracker("import", str(notes), "--topic", "nosuch", env=env)
    assert unknown.code == 2 and unknown.err.startswith("error: unknown topic 'nosuch'")
