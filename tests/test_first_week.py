"""A new user's first week: one bad topic file never stops the others, and advice that fits."""

from __future__ import annotations

import re
from datetime import date

from tests.conftest import cli_env, run_tracker, write_topic
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml


def add(server, pmids, query: str, created: date = date(2024, 5, 1)) -> None:
    server.add(*[FakeRecord(pmid, article_xml(pmid, created=created), created, queries=frozenset({query}))
                 for pmid in pmids])


def test_a_bad_topic_file_is_reported_skipped_and_exits_2_while_the_others_run(tmp_path, fake_eutils):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", since="2024-01-01")
    write_topic(home, "sepsis", "")  # a typo left the query empty
    (home / "queries" / "Sepsis-Old.toml").write_text('title = "old"\nquery = "x"\n')
    add(fake_eutils, range(1, 4), "norepinephrine dosing")
    env = cli_env(home, fake_eutils.url)
    said = ["error: sepsis.toml: key 'query' is missing or empty; give the PubMed query to track (this topic is "
            "skipped until the file is fixed; the others are not affected)",
            "error: Sepsis-Old.toml: file name must be a topic slug (lower-case letters, digits, dashes) followed by "
            ".toml (this topic is skipped until the file is fixed; the others are not affected)"]

    ran = run_tracker("run", env=env)
    assert ran.code == 2
    assert ran.out.splitlines()[0].startswith("dosing: 3 new, 3 matched")
    assert sorted(line for line in ran.err.splitlines() if line.startswith("error: ")) == sorted(said)
    assert (home / "reports" / "dosing").is_dir() and not (home / "reports" / "sepsis").exists()

    fetched = run_tracker("fetch", env=env)
    assert fetched.code == 2 and fetched.out.startswith("dosing: 0 new")
    exported = run_tracker("export", env=env)
    assert exported.code == 2 and len(exported.out.splitlines()) == 4
    digest = run_tracker("digest", "--format", "text", env=env)
    assert digest.code == 2 and "Dosing topic" in digest.out

    named = run_tracker("export", "dosing", env=env)
    assert (named.code, named.err) == (0, "")  # the broken file was not asked for
    broken = run_tracker("fetch", "sepsis", env=env)
    assert (broken.code, broken.out) == (2, "")
    assert broken.err == "error: sepsis.toml: key 'query' is missing or empty; give the PubMed query to track\n"

    listed = run_tracker("topics", env=env)
    assert listed.code == 2
    rows = [line.split()[0] for line in listed.out.splitlines()[2:] if line.strip()]
    assert rows == ["Sepsis-Old", "dosing", "sepsis"]
    assert re.search(r"^sepsis +\(bad file: not loaded\)", listed.out, re.M)


def test_an_unknown_topic_suggests_the_closest_one(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    write_topic(home, "cesarean", "norepinephrine cesarean")
    result = run_tracker("export", "cesarian", env=cli_env(home, None))
    assert (result.code, result.err) == (2, "error: unknown topic 'cesarian'; did you mean 'cesarean'? known topics: "
                                            "cesarean, dosing\n")
