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


def test_the_chart_of_a_fresh_backfill_shows_the_literature_month_by_month(tmp_path, fake_eutils):
    """Papers stored in one first run, received by PubMed over several months: one bar each month."""
    from tracker.charts import chart_png
    from tracker.store import open_store
    from tracker.store.digests import monthly_received_counts

    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", since="2024-01-01")
    for pmid, created in ((1, date(2024, 1, 5)), (2, date(2024, 1, 20)), (3, date(2024, 3, 2)), (4, date(2024, 6, 30)),
                          (5, date(2024, 6, 1))):
        add(fake_eutils, [pmid], "norepinephrine dosing", created=created)
    assert run_tracker("fetch", env=cli_env(home, fake_eutils.url)).code == 0
    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}", readonly=True)
    try:
        counts = monthly_received_counts(store, "dosing", date(2024, 1, 1), date(2024, 7, 1))
        assert counts == [(date(2024, 1, 1), 2), (date(2024, 2, 1), 0), (date(2024, 3, 1), 1), (date(2024, 4, 1), 0),
                          (date(2024, 5, 1), 0), (date(2024, 6, 1), 2)]
        assert chart_png(store, "dosing", end=date(2024, 7, 15))[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        store.close()


def test_ctrl_c_says_what_was_kept_and_that_the_next_run_resumes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.fake_eutils import FakeEutils

    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", since="2024-01-01")
    with FakeEutils(delay=0.3) as server:
        add(server, range(1, 400), "norepinephrine dosing")
        env = cli_env(home, server.url, TRACKER_EFETCH_BATCH="20")
        process = subprocess.Popen([sys.executable, "-m", "tracker", "fetch"], env=env, cwd=home,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while server.count("efetch") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.splitlines()[-1] == ("error: interrupted: every batch saved so far is kept, and the interrupted run is "
                                    "recorded as failed without moving its watermark: the next run resumes where "
                                    "this one stopped")
    from tracker.store import open_store

    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}", readonly=True)
    try:
        with store.engine.connect() as connection:
            status, error = connection.exec_driver_sql("SELECT status, error FROM run").one()
            watermarks = connection.exec_driver_sql("SELECT count(*) FROM topic_state").scalar()
    finally:
        store.close()
    assert (status, error, watermarks) == ("failed", "topic 'dosing': interrupted (KeyboardInterrupt)", 0)
