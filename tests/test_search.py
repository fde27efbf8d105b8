"""Full-text search: ranking, topic restriction, stemming, syntax errors and output formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from click.testing import CliRunner

from tests.conftest import write_topic
from tracker.cli import cli
from tracker.export import CSV_COLUMNS
from tracker.pubmed import AbstractSection, Author, Paper
from tracker.store import open_store
from tracker.store.papers import save_papers
from tracker.store.search import SearchSyntaxError, fts_query, search_papers

LONG_TITLE = ("Vasopressin versus norepinephrine infusion in patients with septic shock and acute kidney "
              "injury: a randomised trial")
HINT = 'use plain words, "quoted phrases", AND/OR/NOT, and prefix* terms'


def make_paper(pmid: int, title: str, abstract: str, **changes) -> Paper:
    values = dict(
        pmid=pmid, kind="article", title=title, abstract_sections=(AbstractSection(None, None, abstract),),
        authors=(Author("Ngan Kee", "Warwick D", "WD"), Author("Kjørsvik", "Åse", "Å")),
        journal="Anesthesia and analgesia", pub_date_text="2024 Mar", pub_date=date(2024, 3, 1),
        doi=f"10.1000/{pmid}", publication_types=("Journal Article",),
        history=(("entrez", "2024-03-02"), ("pubmed", "2024-03-02")),
    )
    values.update(changes)
    return Paper(**values)


PAPERS = [
    make_paper(1, "Norepinephrine bolus for spinal hypotension", "We compared doses in two groups."),
    make_paper(2, "Phenylephrine infusion in caesarean delivery", "Norepinephrine was the comparator."),
    make_paper(3, LONG_TITLE, "Catecholamines and beta-blocker use were recorded.", keywords=("beta-blocker",),
               authors=(Author(collective_name="VANISH Investigators"),), pub_date_text=None, pub_date=None),
    make_paper(4, "A single dose of ephedrine", "Blood pressure was restored."),
    make_paper(5, "Crohn's disease and vasopressors", "Case series."),
]


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    write_topic(home, "elderly", "norepinephrine elderly")
    store = open_store(db_url(home))
    save_papers(store, [PAPERS[0], PAPERS[3]], topic="dosing")
    save_papers(store, [PAPERS[1], PAPERS[2]], topic="elderly")
    save_papers(store, [PAPERS[4]])
    store.close()
    return home


@pytest.fixture
def store(home):
    store = open_store(db_url(home))
    yield store
    store.close()


def db_url(home) -> str:
    return f"sqlite:///{home / 'db' / 'tracker.sqlite3'}"


def invoke(home, *args):
    result = CliRunner().invoke(cli, ["--home", str(home), "search", *args], env={"TRACKER_DB_URL": db_url(home)},
                                prog_name="tracker")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def found(store, text: str, **options) -> list[int]:
    return [hit.pmid for hit in search_papers(store, text, **options)]


def test_a_title_hit_ranks_above_an_abstract_hit(home):
    result = invoke(home, "norepinephrine")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        "pmid  year  first author          title                                                                   topics\n"
        "----  ----  --------------------  ----------------------------------------------------------------------  -------\n"
        "1     2024  Ngan Kee WD           Norepinephrine bolus for spinal hypotension                             dosing\n"
        "3           VANISH Investigators  Vasopressin versus norepinephrine infusion in patients with septic sh…  elderly\n"
        "2     2024  Ngan Kee WD           Phenylephrine infusion in caesarean delivery                            elderly\n"
    )
    assert invoke(home, "crohn").stdout.splitlines()[2].endswith("Crohn's disease and vasopressors  -")


def test_topic_restriction_stemming_and_plain_punctuation(store):
    assert found(store, "norepinephrine", topic="elderly") == [3, 2]
    assert found(store, "norepinephrine", topic="dosing") == [1]
    assert found(store, "doses") == [4, 1]
    assert found(store, "beta-blocker") == [3]
    assert found(store, "Crohn's disease") == [5]
    assert found(store, "norepinephrine bolus") == [1]
    assert sorted(found(store, "norepinephrine OR ephedrine", limit=2)) == [1, 4]
    assert found(store, "title:norepinephrine") == [1, 3]
    assert found(store, "vaso*") == [5, 3]


def test_fts_query_quotes_only_what_fts5_would_misread():
    assert fts_query('beta-blocker Crohn\'s  "septic shock" (a OR b*) title:x , -') == (
        '"beta-blocker" "Crohn\'s" "septic shock" ( a OR b* ) title:x')


@pytest.mark.parametrize("text", ['"unbalanced', "AND OR", "title:", "nosuchcolumn:word", "(bolus"])
def test_invalid_syntax_is_one_line_with_exit_2(home, text):
    result = invoke(home, text)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: invalid search syntax ({text}): {HINT}\n"


def test_invalid_syntax_from_the_library(store):
    with pytest.raises(SearchSyntaxError) as caught:
        search_papers(store, "AND OR")
    assert str(caught.value) == f"invalid search syntax (AND OR): {HINT}"
    assert caught.value.exit_code == 2


def test_limit_must_be_at_least_one(home):
    result = invoke(home, "norepinephrine", "--limit", "0")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("error: Invalid value for '--limit': 0 is not in the range x>=1. "
                             "(see 'tracker search --help')\n")
    assert [line.split()[0] for line in invoke(home, "norepinephrine", "--limit", "1").stdout.splitlines()[2:]] == ["1"]


def test_json_output(home):
    result = invoke(home, "norepinephrine", "--topic", "elderly", "--format", "json")
    hits = json.loads(result.stdout)
    scores = [hit.pop("score") for hit in hits]
    assert all(isinstance(score, float) for score in scores) and scores == sorted(scores, reverse=True)
    assert hits == [
        {"pmid": 3, "title": LONG_TITLE, "authors": ["VANISH Investigators"], "journal": "Anesthesia and analgesia",
         "year": None, "doi": "10.1000/3", "topics": ["elderly"], "pubmed_url": "https://pubmed.ncbi.nlm.nih.gov/3/",
         "status": None},
        {"pmid": 2, "title": "Phenylephrine infusion in caesarean delivery", "authors": ["Ngan Kee WD", "Kjørsvik Å"],
         "journal": "Anesthesia and analgesia", "year": 2024, "doi": "10.1000/2", "topics": ["elderly"],
         "pubmed_url": "https://pubmed.ncbi.nlm.nih.gov/2/", "status": None},
    ]


def test_csv_output_has_the_export_columns(home):
    result = invoke(home, "crohn", "--format", "csv")
    assert result.exit_code == 0
    assert list(csv.reader(io.StringIO(result.stdout_bytes.decode("utf-8"), newline=""))) == [
        list(CSV_COLUMNS),
        ["5", "Crohn's disease and vasopressors", "Ngan Kee WD; Kjørsvik Å", "Anesthesia and analgesia", "2024",
         "2024 Mar", "10.1000/5", "", "Journal Article", "", "", "", "", "false", "https://pubmed.ncbi.nlm.nih.gov/5/",
         ""],
    ]


def test_resaving_a_paper_replaces_its_index_entry(store):
    save_papers(store, [make_paper(1, "Norepinephrine infusion for spinal hypotension", "We compared doses.")],
                topic="dosing")
    save_papers(store, [make_paper(1, "Norepinephrine infusion for spinal hypotension", "We compared doses.")],
                topic="elderly")
    assert found(store, "norepinephrine") == [1, 3, 2]
    assert found(store, "bolus") == []
    [hit] = search_papers(store, "spinal")
    assert (hit.pmid, hit.title, hit.topics) == (1, "Norepinephrine infusion for spinal hypotension",
                                                  ("dosing", "elderly"))


def test_no_match_and_unknown_topic(home):
    result = invoke(home, "zebrafish")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "no stored papers match 'zebrafish'\n", "")
    as_json = invoke(home, "zebrafish", "--format", "json")
    assert (as_json.stdout, as_json.stderr) == ("[]\n", "no stored papers match 'zebrafish'\n")
    unknown = invoke(home, "norepinephrine", "--topic", "nope")
    assert (unknown.exit_code, unknown.stderr) == (2, "error: unknown topic 'nope'; known topics: dosing, elderly\n")


def test_other_back_ends_fall_back_to_matching_every_word(store):
    store.dialect = "postgresql"  # the portable path runs on any database, SQLite included
    assert found(store, "norepinephrine") == [3, 2, 1]
    assert found(store, "Norepinephrine compared", topic="dosing") == [1]
    assert found(store, "norepinephrine", limit=1) == [3]
    [hit] = search_papers(store, "crohn")
    assert (hit.pmid, hit.score, hit.topics) == (5, None, ())
