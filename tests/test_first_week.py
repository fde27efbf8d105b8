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
    from tracker.outputs.charts import chart_png
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
                                    "recorded as failed: the next run searches the same dates again and fetches only "
                                    "what this one did not save")
    from tracker.store import open_store

    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}", readonly=True)
    try:
        with store.engine.connect() as connection:
            status, error = connection.exec_driver_sql("SELECT status, error FROM run").one()
            watermarks = connection.exec_driver_sql("SELECT count(*) FROM topic_state").scalar()
    finally:
        store.close()
    assert (status, error, watermarks) == ("failed", "topic 'dosing': interrupted (KeyboardInterrupt)", 0)


# -- the first e-mail after a backfill -----------------------------------------------------------

def test_a_backfill_mails_a_baseline_that_fits_and_next_week_only_the_new_papers(tmp_path):
    """5,000 papers backfilled, a server refusing messages over 10 MiB: the first e-mail is a baseline well under
    it, and the next one holds only that week's papers (the baseline is never mailed as new)."""
    import csv
    import io

    import pytest

    from tests.fake_eutils import FakeEutils
    from tests.smtp_server import LoopbackSMTP

    pytest.importorskip("aiosmtpd")
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", since="2010-01-01")
    today = date.today()
    with FakeEutils() as server, LoopbackSMTP(size_limit=10 * 1024 * 1024) as smtp:
        server.add(*[FakeRecord(pmid, article_xml(pmid, created=date(2010 + pmid % 14, 1 + pmid % 12, 1 + pmid % 27),
                                                  publication_types=(("Randomized Controlled Trial",) if pmid % 50 == 0
                                                                     else ("Journal Article",))),
                                date(2010 + pmid % 14, 1 + pmid % 12, 1 + pmid % 27),
                                queries=frozenset({"norepinephrine dosing"})) for pmid in range(1, 5001)])
        env = cli_env(home, server.url, TRACKER_EFETCH_BATCH="500", TRACKER_SMTP_HOST=smtp.host,
                      TRACKER_SMTP_PORT=str(smtp.port), TRACKER_SMTP_SECURITY="none",
                      TRACKER_MAIL_FROM="tracker@hospital.test", TRACKER_MAIL_TO="team@hospital.test")
        backfill = run_tracker("fetch", env=env, timeout=300)
        assert backfill.code == 0 and backfill.out.startswith("dosing: 5000 new"), backfill.err
        first = run_tracker("email", env=env)
        assert first.code == 0, first.err
        [baseline] = smtp.messages
        message = baseline.parsed()
        assert message["Subject"].endswith(": baseline of 5,000 papers in 1 topic")
        assert len(baseline.data) < 10 * 1024 * 1024 / 20  # far under the limit
        plain = " ".join(message.get_body(("plain",)).get_content().split())
        assert "Baseline: 5,000 papers matched since 2010 are now stored; from now on you get what is new" in plain
        assert "The strongest 25 by evidence tier." in plain and "'tracker " not in plain
        assert not re.search(r"(?<![\d,])0 new", plain)  # the baseline is not "0 new" papers: the counts agree with the subject
        assert first.out.startswith("sent to team@hospital.test: a baseline of 5,000, Message-ID <")
        assert "Screening: 5,000 new to screen; 0 included so far" in plain
        assert plain.count("PubMed: https://pubmed.ncbi.nlm.nih.gov/") == 25
        assert [part for part in message.walk() if part.get_content_disposition() == "attachment"] == []

        server.add(*[FakeRecord(pmid, article_xml(pmid, created=today), today,
                                queries=frozenset({"norepinephrine dosing"})) for pmid in range(9001, 9031)])
        weekly = run_tracker("fetch", env=env)
        assert weekly.code == 0 and weekly.out.startswith("dosing: 30 new")
        second = run_tracker("email", env=env)
        assert second.code == 0, second.err
        news = smtp.messages[1].parsed()
        assert news["Subject"].endswith(": 30 new papers in 1 topic")
        [table] = [part for part in news.walk() if part.get_content_disposition() == "attachment"]
        rows = list(csv.DictReader(io.StringIO(table.get_content().removeprefix("\ufeff"))))
        assert sorted(int(row["pmid"]) for row in rows) == list(range(9001, 9031))
        assert "Baseline" not in news.get_body(("plain",)).get_content()


def test_a_message_too_large_for_the_limit_zips_then_leaves_out_its_csv(store, tmp_path, monkeypatch):
    from tests.test_store import make_paper
    from tracker.outputs.mail.audience import plan_mailing
    from tracker.outputs.mail.message import build_message, describe_bytes
    from tracker.store.papers import save_papers
    from tracker.text import utcnow
    from tracker.topics import Topic

    monkeypatch.setattr("tracker.outputs.charts.chart_png", lambda store, slug, *, end: b"\x89PNG\r\n\x1a\n" + b"\0" * 30_000)
    topic = Topic(slug="dosing", title="Dosing", query="q")
    save_papers(store, [make_paper(pmid, abstract_sections=()) for pmid in range(1, 1201)], topic="dosing")
    mailing = plan_mailing(store, "a@hospital.test", [topic], now=utcnow(), record=False)

    def attachments(message):
        return [(part.get_content_type(), part.get_filename()) for part in message.walk()
                if part.get_content_disposition() == "attachment"]

    whole = build_message(store, mailing, sender="t@hospital.test").message
    size = len(bytes(whole))
    assert attachments(whole)[0][0] == "text/csv"
    zipped = build_message(store, mailing, sender="t@hospital.test", max_bytes=size - 200).message
    assert attachments(zipped)[0][0] == "application/zip" and len(bytes(zipped)) < size
    assert "The CSV is zipped" in zipped.get_body(("plain",)).get_content()
    lean = build_message(store, mailing, sender="t@hospital.test", max_bytes=len(bytes(zipped)) - 200)
    assert attachments(lean.message) == []
    note = " ".join(lean.message.get_body(("plain",)).get_content().split())
    assert ("The CSV of all 1,200 papers" in note and "is left out" in note
            and "whoever sends these e-mails can send you the list" in note)
    assert "TRACKER_" not in note and "'tracker " not in note  # the readers run no command
    assert lean.sender_notes[-1:] == (f"the message to a@hospital.test leaves out its CSV to stay under "
                                 f"{describe_bytes(len(bytes(zipped)) - 200)}: raise TRACKER_MAIL_MAX_BYTES ([mail] "
                                 "max_bytes), or ask the mail server's administrator for a larger limit, to attach the "
                                 "whole CSV",)


def test_a_server_that_refuses_a_size_it_never_announced_gets_a_smaller_message_in_the_same_run(store, tmp_path,
                                                                                               monkeypatch):
    from dataclasses import replace

    from tests.smtp_server import LoopbackSMTP
    from tests.test_store import make_paper
    from tracker.outputs.mail import send_weekly_email
    from tracker.settings import Settings
    from tracker.store.papers import save_papers
    from tracker.topics import Topic

    monkeypatch.setattr("tracker.outputs.charts.chart_png", lambda store, slug, *, end: b"\x89PNG\r\n\x1a\n")
    topic = Topic(slug="dosing", title="Dosing", query="q", recipients=("a@hospital.test",))
    save_papers(store, [make_paper(pmid) for pmid in range(1, 801)], topic="dosing")
    with LoopbackSMTP() as smtp:
        smtp.refuse_larger_than = 120_000
        settings = Settings(home=tmp_path, smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="none",
                            mail_from="t@hospital.test", timeout=5)
        [result] = send_weekly_email(store, replace(settings), [topic])
        assert result.sent, result.error
        assert smtp.refused_sizes and len(smtp.messages[0].data) <= 120_000
