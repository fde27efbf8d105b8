"""Topic files: the shipped topics load, and each kind of broken file gives one line naming the file and key."""

from datetime import date
from pathlib import Path

import pytest

from tracker.errors import ConfigError, TopicFileError
from tracker.topics import Topic, load_topic, load_topics, render_topic_file, select_topics

REPO = Path(__file__).resolve().parents[1]
REQUIRED = {"dosing", "cesarean", "elderly", "prophylactic"}
ALSO = {"sepsis", "cardiac-surgery", "hepatorenal", "vasopressor-comparison", "pediatric"}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_topics_load_with_real_pubmed_syntax():
    topics = {topic.slug: topic for topic in load_topics(REPO / "queries")}
    assert set(topics) == REQUIRED | ALSO
    for topic in topics.values():
        assert topic.title and topic.description
        assert "noradrenaline[tiab]" in topic.query and '"Norepinephrine"[Mesh]' in topic.query
        assert topic.query.count("(") == topic.query.count(")")
        assert "\n" not in topic.query and "  " not in topic.query
    assert "caesarean[tiab]" in topics["cesarean"].query and "cesarean[tiab]" in topics["cesarean"].query
    for comparator in ("vasopressin", "phenylephrine", "epinephrine", "dopamine"):
        assert f"{comparator}[tiab]" in topics["vasopressor-comparison"].query


def test_packaged_default_topics_are_the_repository_topics():
    packaged = REPO / "tracker" / "default_topics"
    assert sorted(p.name for p in packaged.glob("*.toml")) == sorted(p.name for p in (REPO / "queries").glob("*.toml"))


def test_full_topic_file(tmp_path):
    path = write(tmp_path, "bolus.toml", '''
title = "Bolus"
description = "Bolus versus infusion"
query = """norepinephrine[tiab]
   AND bolus[tiab]"""
since = 2020-01-01
schedule = "30 7 * * 1"
recipients = ["a@example.org", "b@example.org"]
max_per_digest = 10
''')
    assert load_topic(path) == Topic(
        slug="bolus", title="Bolus", description="Bolus versus infusion",
        query="norepinephrine[tiab] AND bolus[tiab]", since=date(2020, 1, 1), schedule="30 7 * * 1",
        recipients=("a@example.org", "b@example.org"), max_per_digest=10, path=path,
    )


def test_screening_settings_and_reasons_are_read_from_the_topic_file(tmp_path):
    from tracker.topics import DEFAULT_EXCLUSION_REASONS, ScreeningMode

    path = write(tmp_path, "dual.toml", 'title = "Dual"\nquery = "a"\nscreening = { reviewers = 2 }\n'
                                        'exclusion_reasons = ["wrong   dose", "animal study"]')
    topic = load_topic(path)
    assert (topic.screening, topic.exclusion_reasons) == (ScreeningMode(2, True), ("wrong dose", "animal study"))
    plain = load_topic(write(tmp_path, "plain.toml",
                             'title = "Plain"\nquery = "a"\nscreening = { reviewers = 2, blind = false }'))
    assert (plain.screening, plain.exclusion_reasons) == (ScreeningMode(2, False), DEFAULT_EXCLUSION_REASONS)


@pytest.mark.parametrize("name, text, message", [
    ("bad.toml", 'title = "x"\nquery = "unclosed', "bad.toml: not valid TOML"),
    ("bad.toml", 'title = "x"\nquery = "a"\ncolour = "red"', "bad.toml: unknown key 'colour'; allowed keys are"),
    ("bad.toml", 'title = "x"\nquery = ""', "bad.toml: key 'query' is missing or empty; give the PubMed query to track"),
    ("bad.toml", 'title = "x"\nquery = "   \\n  "', "bad.toml: key 'query' is missing or empty"),
    ("bad.toml", 'title = "x"', "bad.toml: key 'query' is missing or empty"),
    ("bad.toml", 'query = "a"', "bad.toml: key 'title' is missing or empty"),
    ("bad.toml", 'title = "x"\nquery = "a"\nschedule = "every monday"',
     "bad.toml: key 'schedule': invalid cron expression 'every monday'"),
    ("bad.toml", 'title = "x"\nquery = "a"\nsince = "last year"',
     "bad.toml: key 'since' = 'last year' is not a date; use YYYY-MM-DD"),
    ("bad.toml", 'title = "x"\nquery = "a"\nsince = 2999-01-01', "bad.toml: key 'since' = 2999-01-01 is in the future"),
    ("bad.toml", 'title = "x"\nquery = "a"\nrecipients = ["not-an-address"]',
     "bad.toml: key 'recipients': 'not-an-address' is not an e-mail address"),
    ("bad.toml", 'title = "x"\nquery = "a"\nmax_per_digest = 0',
     "bad.toml: key 'max_per_digest' must be a whole number of at least 1"),
    ("Bad Name.toml", 'title = "x"\nquery = "a"', "Bad Name.toml: file name must be a topic slug"),
    ("bad.toml", 'title = "x"\nquery = "a"\nsince = 2015-13-01\n',
     "bad.toml: key 'since' = 2015-13-01 is not a date (line 3): write it as YYYY-MM-DD, for example 2015-01-31"),
    ("bad.toml", 'title = "x"\nsince = 2015-1-1\nquery = "a"\n',
     "bad.toml: key 'since' = 2015-1-1 is not a date (line 2): write it as YYYY-MM-DD, for example 2015-01-31"),
    ("bad.toml", 'title = "x"\nquery = "a"\nexclusion_reasons = []',
     "bad.toml: key 'exclusion_reasons' must be a list of reasons such as"),
    ("bad.toml", 'title = "x"\nquery = "a"\nexclusion_reasons = ["Other", "other "]',
     "bad.toml: key 'exclusion_reasons' names 'other' twice"),
    ("bad.toml", 'title = "x"\nquery = "a"\nexclusion_reasons = ["12"]',
     "bad.toml: key 'exclusion_reasons': a reason cannot be a number or contain ';'"),
    ("bad.toml", 'title = "x"\nquery = "a"\nscreening = { reviewers = 3 }',
     "bad.toml: key 'screening': reviewers must be 1 or 2 (two for dual screening)"),
    ("bad.toml", 'title = "x"\nquery = "a"\nscreening = { reviewers = 1, blind = true }',
     "bad.toml: key 'screening': blind screening needs reviewers = 2"),
    ("bad.toml", 'title = "x"\nquery = "a"\nscreening = { reviewer = 2 }',
     "bad.toml: key 'screening' has an unknown key 'reviewer'; it takes reviewers and blind"),
    ("bad.toml", 'title = "x"\nquery = "a"\nscreening = "dual"',
     "bad.toml: key 'screening' must be a table such as { reviewers = [\"ana\", \"ben\"], blind = true }"),
])
def test_broken_topic_files_name_the_file_and_key(tmp_path, name, text, message):
    with pytest.raises(TopicFileError) as caught:
        load_topic(write(tmp_path, name, text))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(ConfigError, match="no topics folder at .*: run 'tracker init'"):
        load_topics(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="no topic files in"):
        load_topics(tmp_path)


def test_select_unknown_topic_lists_known_ones():
    topics = [Topic(slug="a", title="A", query="q"), Topic(slug="b", title="B", query="q")]
    assert select_topics(topics, ["b", "b"]) == [topics[1]]
    with pytest.raises(ConfigError, match="unknown topic 'c'; known topics: a, b"):
        select_topics(topics, ["c"])


def test_rendered_topic_file_loads_back(tmp_path):
    topic = Topic(slug="adhoc", title='Bolus "vs" infusion', query='"norepinephrine"[tiab] AND bolus[tiab]',
                  since=date(2021, 5, 1), recipients=("x@example.org",), max_per_digest=5)
    path = write(tmp_path, "adhoc.toml", render_topic_file(topic))
    assert load_topic(path) == Topic(**{**topic.__dict__, "path": path})


def test_weekday_7_is_sunday_as_in_cron(tmp_path):
    path = write(tmp_path, "weekly.toml", 'title = "x"\nquery = "a"\nschedule = "0 7 * * 7"')
    assert load_topic(path).schedule == "0 7 * * 7"


def test_seeds_are_pmids_listed_once(tmp_path):
    path = write(tmp_path, "bolus.toml", 'title = "Bolus"\nquery = "bolus"\nseeds = [31415926, 27182818]\n')
    topic = load_topic(path)
    assert topic.seeds == (31415926, 27182818)
    assert "seeds = [31415926, 27182818]\n" in render_topic_file(topic)
    assert load_topic(write(tmp_path, "plain.toml", 'title = "Plain"\nquery = "plain"\n')).seeds == ()


@pytest.mark.parametrize(("value", "message"), [
    ('"31415926"', "bolus.toml: key 'seeds' must be a list of PMIDs such as [31415926, 27182818]"),
    ('["31415926"]', "bolus.toml: key 'seeds': '31415926' is not a PMID (a whole number such as 31415926, without "
                     "quotes)"),
    ("[0]", "bolus.toml: key 'seeds': 0 is not a PMID (a whole number such as 31415926, without quotes)"),
    ("[3.5]", "bolus.toml: key 'seeds': 3.5 is not a PMID (a whole number such as 31415926, without quotes)"),
    ("[true]", "bolus.toml: key 'seeds': True is not a PMID (a whole number such as 31415926, without quotes)"),
    ("[4294967296]", "bolus.toml: key 'seeds': 4294967296 is not a PMID (a whole number such as 31415926, without "
                     "quotes)"),
    ("[12, 13, 12]", "bolus.toml: key 'seeds' lists 12 twice"),
    ("[" + ", ".join(str(n) for n in range(1, 502)) + "]",
     "bolus.toml: key 'seeds' lists 501 PMIDs, more than 500: keep the few papers the topic is about, and add a "
     "library with 'tracker import'"),
])
def test_bad_seeds_are_one_line_naming_the_file_and_key(tmp_path, value, message):
    path = write(tmp_path, "bolus.toml", f'title = "Bolus"\nquery = "bolus"\nseeds = {value}\n')
    with pytest.raises(TopicFileError) as refused:
        load_topic(path)
    assert str(refused.value) == message


def test_a_failure_no_check_foresaw_is_still_the_files_one_line(tmp_path, monkeypatch):
    import tracker.topics

    def broken(expression):
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(tracker.topics, "validate_cron", broken)
    with pytest.raises(TopicFileError) as caught:
        load_topic(write(tmp_path, "odd.toml", 'title = "x"\nquery = "a"\n'))
    assert str(caught.value) == ("odd.toml: cannot be read as a topic (TypeError: unhashable type: 'list'); fix the "
                                 "file or move it out of queries/")


def test_a_topic_file_nested_thousands_deep_is_one_line_and_leaves_the_others_loaded(tmp_path):
    from tracker.topics import scan_topics

    write(tmp_path, "good.toml", 'title = "x"\nquery = "a"\n')
    write(tmp_path, "deep.toml", 'title = "x"\nquery = "a"\nrecipients = ' + "[" * 5000 + "]" * 5000)
    scan = scan_topics(tmp_path)
    assert list(scan.topics) == ["good"]
    assert scan.errors == {"deep": "deep.toml: not valid TOML (arrays or tables nested too deep to read); fix the "
                                   "file or move it out of queries/"}
