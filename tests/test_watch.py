"""Watching what was delivered, end to end against the fake E-utilities server: status changes of stored
papers (retraction, expression of concern, erratum, update, deletion), told once per reader, and query health."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import random
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from tests.conftest import cli_env, write_topic
from tests.fake_eutils import FakeRecord
from tests.pubmed_xml import article_xml
from tests.smtp_server import LoopbackSMTP
from tracker.cli import cli
from tracker.cli.output import hits_json, hits_table
from tracker.outputs.digest import build_topic_digest, render_html, render_markdown, render_text
from tracker.outputs.export import csv_bytes, export_papers
from tracker.outputs.mail import send_weekly_email
from tracker.runs.sync import sync_topic
from tracker.runs.watch import assess_health, topic_health
from tracker.settings import Settings
from tracker.store import open_store
from tracker.store.changes import list_events, told_events
from tracker.store.models import PaperRevision, PaperRow, Run, StatusEvent, TopicPaper
from tracker.store.search import search_papers
from tracker.topics import Topic

READER = "reader@example.org"
DOSING = Topic(slug="dosing", title="Norepinephrine dosing", query="norepinephrine dosing", since=date(2020, 1, 1),
               recipients=(READER,))
CREATED = date(2024, 5, 20)
RETRACTION_SOURCE = "Anesth Analg. 2024 Jun;138(6):e1"


def record(pmid: int, *, created: date = CREATED, modified: date | None = None, queries=None, xml_pmid=None,
           **xml) -> FakeRecord:
    return FakeRecord(pmid=pmid, xml=article_xml(xml_pmid or pmid, created=created, **xml), created=created,
                      modified=modified, queries=queries)


@pytest.fixture
def server(fake_eutils):
    return fake_eutils




@pytest.fixture(autouse=True)
def no_charts(monkeypatch):
    """The e-mail's charts are not under test here; drawing them costs a second of matplotlib each."""
    monkeypatch.setattr("tracker.outputs.charts.chart_png", lambda store, slug, *, end: b"\x89PNG\r\n\x1a\n")


def sync(store, client, server, today: date, topic: Topic = DOSING):
    server.reset_log()
    result = sync_topic(store, client, topic, today=today)
    assert result.succeeded, result.error
    return result


def efetched(server) -> list[list[int]]:
    return [sorted(int(p) for p in r.params["id"].split(",")) for r in server.requests if r.endpoint == "efetch"]


def events(store) -> list[tuple[int, str, int | None]]:
    with store.session() as session:
        rows = session.execute(select(StatusEvent.pmid, StatusEvent.kind, StatusEvent.notice_pmid)
                               .order_by(StatusEvent.pmid, StatusEvent.kind, StatusEvent.id)).all()
    return [tuple(row) for row in rows]


def statuses(store) -> dict[int, str | None]:
    with store.session() as session:
        return dict(session.execute(select(PaperRow.pmid, PaperRow.status)).all())


def mail(store, tmp_path, smtp) -> list:
    settings = Settings(home=tmp_path / "home", smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
                        mail_from="tracker@lab.example.org", timeout=5)
    return send_weekly_email(store, settings, [DOSING])


def text_of(received) -> str:
    return received.parsed().get_body(("plain",)).get_content()


def html_of(received) -> str:
    return received.parsed().get_body(("html",)).get_content()


# -- status changes --------------------------------------------------------------------------

def test_a_delivered_paper_retracted_later_is_told_once_and_marked_everywhere(server, store, client, tmp_path):
    server.add(*[record(pmid) for pmid in (1, 2, 3)])
    first = sync(store, client, server, date(2024, 6, 1))
    assert first.kind == "backfill" and first.requests == 1 + 1 + 1  # esearch, efetch, total Count
    with LoopbackSMTP() as smtp:
        [sent] = mail(store, tmp_path, smtp)
        assert sent.sent and sorted(sent.papers) == [1, 2, 3] and sent.events == ()

        # PubMed retracts paper 2: the record gains the publication type and a RetractionIn comment.
        server.add(record(2, modified=date(2024, 6, 3),
                          publication_types=("Journal Article", "Retracted Publication"),
                          comments_corrections=[("RetractionIn", 900, RETRACTION_SOURCE)]))
        second = sync(store, client, server, date(2024, 6, 4))
        # The create-date search, the total Count, the modification-date search, one efetch of paper 2 alone.
        assert (second.new_papers, second.refetched, second.status_changes, second.requests) == (0, 1, 1, 4)
        assert efetched(server) == [[2]]
        assert "; 1 status change (see 'tracker status --changes')" in second.summary()
        assert events(store) == [(2, "retraction", 900)]
        assert statuses(store) == {1: None, 2: "retracted", 3: None}
        with store.session() as session:
            [revision] = session.execute(select(PaperRevision)).scalars().all()
            assert revision.pmid == 2 and revision.run_id == second.run_id
            assert session.get(PaperRow, 2).publication_types == ["Journal Article", "Retracted Publication"]

        # The record stays in the modification window: refetched, but the retraction is not recorded twice.
        third = sync(store, client, server, date(2024, 6, 5))
        assert (third.refetched, third.status_changes) == (1, 0) and len(events(store)) == 1

        [update_mail] = mail(store, tmp_path, smtp)
        assert update_mail.sent and update_mail.papers == () and len(update_mail.events) == 1
        [_, received] = smtp.messages
        assert received.parsed()["Subject"].endswith(": no new papers in 1 topic; 1 update to papers sent before")
        plain, html = text_of(received), html_of(received)
        updates_at = plain.index("UPDATES TO PAPERS YOU ALREADY RECEIVED (1)")
        assert updates_at < plain.index("Norepinephrine dosing")  # the mail opens with the updates
        assert "RETRACTED: Norepinephrine versus phenylephrine" in plain
        assert "    PubMed: https://pubmed.ncbi.nlm.nih.gov/2/" in plain
        assert "    Notice: https://pubmed.ncbi.nlm.nih.gov/900/" in plain
        assert f"Retracted: {RETRACTION_SOURCE}" in plain
        assert 'href="https://pubmed.ncbi.nlm.nih.gov/900/"' in html and 'data-kind="retraction"' in html

        [told] = mail(store, tmp_path, smtp)  # nothing new, and the reader had this week's message: none is sent
        assert told.told_at is not None and told.events == () and len(smtp.messages) == 2
    [event_id] = [event.id for event in list_events(store)]
    assert told_events(store, READER) == {event_id}

    rows = list(csv.DictReader(io.StringIO(csv_bytes(store, [1, 2, 3]).decode("utf-8"))))
    assert [(row["pmid"], row["status"]) for row in rows] == [("1", ""), ("2", "retracted"), ("3", "")]
    assert list(rows[0])[14:16] == ["pubmed_url", "status"]  # appended after every column that came before it
    ris = io.BytesIO()
    export_papers(store, ["dosing"], ris, fmt="ris")
    assert ris.getvalue().decode().count("N1  - status: retracted (PubMed)\r\n") == 1

    digest = build_topic_digest(store, DOSING, since=date.today() - timedelta(days=1))
    assert [(update.pmid, update.kind, update.notice_url) for update in digest.updates] == [
        (2, "retraction", "https://pubmed.ncbi.nlm.nih.gov/900/")]
    [marked] = [entry for entry in digest.entries if entry.status_mark]
    assert (marked.paper.pmid, marked.status_mark) == (2, "RETRACTED")
    markdown = render_markdown(digest)
    # The updates come first; the papers' abstracts say "randomised trial", so their tier is read from the text.
    assert [line for line in markdown.splitlines() if line.startswith("## ")] == [
        "## Updates to papers you already received (1)", "## Randomized controlled trials (3)"]
    assert "### **RETRACTED** [Norepinephrine versus phenylephrine" in markdown
    assert "notice: [PMID 900](https://pubmed.ncbi.nlm.nih.gov/900/)" in markdown
    assert "[RETRACTED] Norepinephrine versus phenylephrine" in render_text(digest)
    assert '<span class="status-mark">RETRACTED</span>' in render_html(digest)

    [hit] = [hit for hit in search_papers(store, "phenylephrine") if hit.pmid == 2]
    assert hits_table([hit])[1][0][3].startswith("[RETRACTED] ")
    assert hits_json([hit])[0]["status"] == "retracted"


def test_an_update_that_smtp_refused_is_told_on_the_next_mail(server, store, client, tmp_path):
    server.add(record(5))
    sync(store, client, server, date(2024, 6, 1))
    server.add(record(5, modified=date(2024, 6, 2), comments_corrections=[("ErratumIn", 901, "Erratum source")]))
    sync(store, client, server, date(2024, 6, 3))
    with LoopbackSMTP() as smtp:
        smtp.refuse_all = "550 mailbox unavailable"
        [refused] = mail(store, tmp_path, smtp)
        assert refused.error and told_events(store, READER) == set()
        smtp.refuse_all = None
        [sent] = mail(store, tmp_path, smtp)
        assert sent.sent and len(sent.events) == 1 and sent.papers == (5,)
        assert "ERRATUM PUBLISHED: Norepinephrine versus" in text_of(smtp.messages[-1])


def test_errata_updates_concerns_and_deletions_become_events(server, store, client):
    server.add(*[record(pmid) for pmid in (10, 11, 12, 13, 20)])
    sync(store, client, server, date(2024, 6, 1))
    modified = date(2024, 6, 2)
    server.add(
        record(10, modified=modified, comments_corrections=[("ErratumIn", 950, "Anesthesiology. 2024;141:1")]),
        record(13, modified=modified, comments_corrections=[("UpdateIn", 951, "Cochrane update"),
                                                            ("ExpressionOfConcernIn", 952, "Editor's note"),
                                                            ("CommentIn", 953, "A letter")]),
        # PubMed deleted 11: its efetch answer holds only a DeleteCitation, however often it is asked.
        FakeRecord(pmid=11, xml='<DeleteCitation><PMID Version="1">11</PMID></DeleteCitation>', created=CREATED,
                   modified=modified),
    )
    result = sync(store, client, server, date(2024, 6, 3))
    assert efetched(server) == [[10, 11, 13], [11]]  # a missing record is asked for once more
    assert result.status_changes == 4 and result.refetched == 2
    assert events(store) == [(10, "erratum", 950), (11, "deleted", None), (13, "concern", 952), (13, "update", 951)]
    assert statuses(store) == {10: None, 11: "deleted", 12: None, 13: "concern", 20: None}
    [deleted] = [event for event in list_events(store) if event.kind == "deleted"]
    assert deleted.detail == "PubMed no longer returns PMID 11 (deleted, or merged into another record)"

    # PubMed merged 12 into 21: efetch for 12 answers with record 21. (11 has left PubMed's search.)
    server.remove(11)
    server.add(record(12, modified=date(2024, 6, 5), xml_pmid=21))
    merged = sync(store, client, server, date(2024, 6, 6))
    assert efetched(server) == [[10, 12, 13], [12]]
    assert merged.status_changes == 1
    [event] = [event for event in list_events(store) if event.pmid == 12]
    assert (event.kind, event.notice_pmid, event.notice_url) == ("deleted", 21, "https://pubmed.ncbi.nlm.nih.gov/21/")
    assert event.detail == "PubMed returns PMID 21 in place of PMID 12 (merged)"
    with store.session() as session:
        assert session.get(PaperRow, 21) is None  # the other record is not this topic's to store
    assert statuses(store)[12] == "deleted"


def test_a_stored_paper_is_refetched_only_when_the_modification_search_lists_it(server, store, client):
    server.add(*[record(pmid, created=date(2024, 5, 1)) for pmid in range(30, 36)])
    sync(store, client, server, date(2024, 6, 1))
    quiet = sync(store, client, server, date(2024, 6, 10))
    assert (quiet.requests, quiet.refetched, efetched(server)) == (3, 0, [])
    searches = [r.params["term"] for r in server.requests if r.endpoint == "esearch"]
    assert searches == ['(norepinephrine dosing) AND ("2024/05/30"[crdt] : "2024/06/11"[crdt])',
                        "norepinephrine dosing",
                        '(norepinephrine dosing) AND ("2024/05/30"[mdat] : "2024/06/11"[mdat])']
    assert [r.params["retmax"] for r in server.requests if r.endpoint == "esearch"][1] == "0"

    # 33 is modified (a new title, no notice); 40 is new and modified the same day: only 33 is refetched.
    server.add(record(33, created=date(2024, 5, 1), modified=date(2024, 6, 12), title="A corrected title"),
               record(40, created=date(2024, 6, 12)))
    result = sync(store, client, server, date(2024, 6, 13))
    assert efetched(server) == [[40], [33]]
    assert (result.new_papers, result.refetched, result.status_changes) == (1, 1, 0)
    with store.session() as session:
        assert session.get(PaperRow, 33).title == "A corrected title"
        assert session.execute(select(PaperRevision)).first() is None  # no event, no revision kept
    assert [hit.pmid for hit in search_papers(store, "corrected")] == [33]
    with store.session() as session:
        refetched = session.execute(select(Run.refetched).where(Run.id == result.run_id)).scalar_one()
    assert refetched == 1


class Clock:
    """The store's wall clock, set to noon UTC of each simulated run's day (saved papers are stamped with it)."""

    def __init__(self, monkeypatch):
        self.now = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
        for module in ("tracker.store.papers", "tracker.store.membership", "tracker.store.changes"):
            monkeypatch.setattr(f"{module}.utcnow", lambda: self.now)

    def on(self, day: date) -> date:
        self.now = datetime.combine(day, datetime.min.time(), timezone.utc) + timedelta(hours=12)
        return day


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def test_a_paper_fetched_inside_the_window_is_fetched_again_only_if_modified_on_or_after_that_day(
        server, store, client, clock):
    server.add(record(5, created=date(2024, 5, 19)))
    sync(store, client, server, clock.on(date(2024, 5, 20)))
    # The run of June 3 stores 1-4 (created, and last modified, June 1-3). Its check of [May 18, June 4] lists 5,
    # fetched May 20 and last modified May 19: the search from May 20 on does not list it, so it is not fetched.
    server.add(record(1, created=date(2024, 6, 1)), record(2, created=date(2024, 6, 2)),
               record(3, created=date(2024, 6, 3)), record(4, created=date(2024, 6, 2)))
    second = sync(store, client, server, clock.on(date(2024, 6, 3)))
    assert (second.new_papers, second.refetched) == (4, 0)
    assert efetched(server) == [[1, 2, 3, 4]]
    mdat_searches = [r.params["term"][-40:] for r in server.requests if "[mdat]" in r.params.get("term", "")]
    assert mdat_searches == ['"2024/05/18"[mdat] : "2024/06/04"[mdat])', '"2024/05/20"[mdat] : "2024/06/04"[mdat])']

    # By June 10: 2 is retracted (June 5), 5 gains an erratum (June 2). 3 was last modified June 3, the day the
    # tracker fetched it (before or after? unknown: fetched again). 1 and 4 have not changed since June 1 and 2.
    server.add(record(2, created=date(2024, 6, 2), modified=date(2024, 6, 5),
                      publication_types=("Journal Article", "Retracted Publication"),
                      comments_corrections=[("RetractionIn", 900, RETRACTION_SOURCE)]),
               record(5, created=date(2024, 5, 19), modified=date(2024, 6, 2),
                      comments_corrections=[("ErratumIn", 901, "Anesth Analg. 2024;138:e2")]))
    third = sync(store, client, server, clock.on(date(2024, 6, 10)))
    # The window [June 1, June 11] lists 1-5; 1-4 were fetched June 3, inside it: the search from June 3 on
    # lists 2 and 3. 5 was fetched before the window: listed is enough.
    assert efetched(server) == [[2, 3, 5]]
    assert (third.refetched, third.status_changes, third.requests) == (3, 2, 5)
    assert events(store) == [(2, "retraction", 900), (5, "erratum", 901)]

    # 1, fetched June 3 and not since, is corrected on June 9: June 17's check of [June 8, June 18] catches it.
    server.add(record(1, created=date(2024, 6, 1), modified=date(2024, 6, 9), title="A corrected title"))
    fourth = sync(store, client, server, clock.on(date(2024, 6, 17)))
    assert (fourth.refetched, efetched(server)) == (1, [[1]])


def test_the_refetch_count_over_a_simulated_timeline(server, store, client, clock):
    """Eight weekly runs over papers created daily, modified again when indexed for MEDLINE (2-9 days later) and,
    for some, retracted weeks later: each stored paper is fetched again exactly when PubMed modified it on or
    after the day the tracker last fetched it (within the run's window), and every retraction is caught."""
    rng = random.Random(14)
    start = date(2024, 3, 4)
    timeline: dict[date, list[FakeRecord]] = {}
    retracted: dict[int, date] = {}
    for pmid in range(1, 281):
        created = start - timedelta(days=7) + timedelta(days=pmid % 56)
        timeline.setdefault(created, []).append(record(pmid, created=created))
        indexed = created + timedelta(days=rng.randint(2, 9))
        timeline.setdefault(indexed, []).append(record(pmid, created=created, modified=indexed, mesh=("Humans",)))
        if pmid % 40 == 0:
            retraction = indexed + timedelta(days=rng.randint(5, 20))
            retracted[pmid] = retraction
            timeline.setdefault(retraction, []).append(record(
                pmid, created=created, modified=retraction, mesh=("Humans",),
                publication_types=("Journal Article", "Retracted Publication")))
    last_fetched: dict[int, date] = {}
    current: dict[int, date] = {}  # each record's modification date as the server has it
    day = start - timedelta(days=8)
    for week in range(9):
        run_day = start + timedelta(days=7 * week)
        while day < run_day:
            day += timedelta(days=1)
            for changed in timeline.get(day, []):
                server.add(changed)
                current[changed.pmid] = changed.modified
        checked = None if week == 0 else run_day - timedelta(days=7) + timedelta(days=1)
        window = (checked - timedelta(days=3), run_day + timedelta(days=1)) if checked else None
        # The copy fetched on day F may lack changes dated F or later (PubMed's day is US Eastern: noon UTC is the
        # same day there).
        expected = sorted(pmid for pmid, fetched_on in last_fetched.items()
                          if window and window[0] <= current[pmid] <= window[1]
                          and (fetched_on <= window[0] or current[pmid] >= fetched_on))
        result = sync(store, client, server, clock.on(run_day))
        refetched = [pmid for batch in efetched(server)[1 if result.new_papers else 0:] for pmid in batch]
        assert sorted(refetched) == expected, week
        new = [pmid for pmid in current if pmid not in last_fetched]
        assert result.new_papers == len(new)
        last_fetched.update((pmid, run_day) for pmid in [*new, *refetched])
    assert {pmid for pmid, status in statuses(store).items() if status == "retracted"} == {
        pmid for pmid, retraction in retracted.items() if retraction <= run_day}


def test_a_failed_modification_check_fails_the_run_and_is_repeated(server, store, client):
    server.add(record(50))
    sync(store, client, server, date(2024, 6, 1))
    server.add(record(50, modified=date(2024, 6, 2), publication_types=("Retracted Publication",)))
    server.reset_log()
    server.inject("502", endpoint="efetch", times=3)
    failed = sync_topic(store, client, DOSING, today=date(2024, 6, 3))
    assert not failed.succeeded and "efetch failed after 3 attempts" in failed.error
    assert events(store) == []
    recovered = sync(store, client, server, date(2024, 6, 3))
    assert recovered.status_changes == 1
    [event] = list_events(store)
    assert (event.kind, event.notice_pmid, event.detail) == (
        "retraction", None, 'publication type "Retracted Publication"')


# -- the command line ------------------------------------------------------------------------

def invoke(home, server, *args):
    result = CliRunner().invoke(cli, ["--home", str(home), *args], env=cli_env(home, server.url))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_status_changes_lists_events_and_since_filters_them(tmp_path, server):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", since="2020-01-01")
    server.add(*[record(pmid, created=date.today() - timedelta(days=30)) for pmid in (60, 61)])
    assert invoke(home, server, "fetch").exit_code == 0
    assert invoke(home, server, "status", "--changes").stdout == (
        "no status changes recorded: each run checks the records PubMed modified\n")
    # Modified after the first fetch: dated tomorrow, as this machine's day may be before PubMed's (US Eastern) one.
    modified = date.today() + timedelta(days=1)
    server.add(record(60, created=date.today() - timedelta(days=30), modified=modified,
                      comments_corrections=[("RetractionIn", 990, RETRACTION_SOURCE)]),
               record(61, created=date.today() - timedelta(days=30), modified=modified,
                      comments_corrections=[("ErratumIn", 991, "Erratum")]))
    fetched = invoke(home, server, "fetch")
    assert fetched.exit_code == 0 and "2 status changes (see 'tracker status --changes')" in fetched.stdout

    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}")
    with store.engine.begin() as connection:
        connection.execute(update(StatusEvent).where(StatusEvent.pmid == 61)
                           .values(detected_at=datetime(2024, 1, 2, 3, 4, tzinfo=timezone.utc)))
    store.close()
    listed = invoke(home, server, "status", "--changes")
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["detected", "(UTC)", "pmid", "change", "notice", "topics", "title"]
    assert lines[2].split()[:7] == ["2024-01-02", "03:04", "61", "Erratum", "published", "991", "dosing"]
    assert lines[3].split()[2:5] == ["60", "Retracted", "990"] and len(lines) == 4
    recent = invoke(home, server, "status", "--changes", "--since", date.today().isoformat())
    assert [line.split()[2] for line in recent.stdout.splitlines()[2:]] == ["60"]
    assert invoke(home, server, "status", "--changes", "--topic", "dosing").stdout == listed.stdout
    misuse = invoke(home, server, "status", "--since", "2024-01-01")
    assert misuse.exit_code == 2 and "--since goes with --changes" in misuse.stderr


def test_topics_check_shows_how_pubmed_reads_a_query_and_stores_nothing(tmp_path, server):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing")
    server.add(*[record(pmid) for pmid in (70, 71, 72)])
    result = invoke(home, server, "topics", "--check", "dosing")
    assert (result.exit_code, result.stdout) == (0, "query:       norepinephrine dosing\n"
                                                    "translation: norepinephrine dosing\n"
                                                    "count:       3\n")
    [request] = server.requests
    assert (request.endpoint, request.params["term"], request.params["retmax"]) == (
        "esearch", "norepinephrine dosing", "0")
    assert not (home / "db" / "tracker.sqlite3").exists()
    unknown = invoke(home, server, "topics", "--check-query", "nosuchterm")
    assert unknown.exit_code == 0 and unknown.stdout.splitlines()[2:] == [
        "count:       0",
        "error:       PhraseNotFound: nosuchterm",
        "warning:     OutputMessage: No items found.",
        'PubMed could not find "nosuchterm" (PhraseNotFound): fix the query before tracking it',
    ]
    missing = invoke(home, server, "topics", "--check", "nosuch")
    assert missing.exit_code == 2 and "unknown topic 'nosuch'" in missing.stderr


# -- query health ----------------------------------------------------------------------------

def test_a_term_pubmed_cannot_find_is_flagged_in_topics_status_and_digests(tmp_path, server):
    home = tmp_path / "home"
    write_topic(home, "dosing", "norepinephrine dosing", since="2020-01-01")
    write_topic(home, "typo", "nosuchterm")
    server.add(record(80))
    assert invoke(home, server, "fetch").exit_code == 0
    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}")
    with store.session() as session:
        runs = {run.topic: run for run in session.execute(select(Run)).scalars()}
    assert (runs["typo"].errors, runs["typo"].warnings) == (["PhraseNotFound: nosuchterm"],
                                                            ["OutputMessage: No items found."])
    assert (runs["typo"].total_count, runs["typo"].query_translation) == (0, "nosuchterm")
    assert (runs["dosing"].errors, runs["dosing"].warnings, runs["dosing"].total_count) == ([], [], 1)
    health = topic_health(store, ["dosing", "typo"])
    assert health["dosing"] == [] and [flag.kind for flag in health["typo"]] == ["not-found", "no-match"]
    store.close()

    expected = ("  typo: PubMed could not find \"nosuchterm\" (PhraseNotFound): check the query with "
                "'tracker topics --check typo'")
    topics = invoke(home, server, "topics").stdout.splitlines()
    assert topics[-3:] == ["health:", expected, "  typo: the query matches no PubMed record (Count 0): check the "
                                                "query with 'tracker topics --check typo'"]
    assert expected in invoke(home, server, "status").stdout.splitlines()
    markdown = invoke(home, server, "digest", "typo", "--format", "md").stdout
    assert '- **⚠ Query health:** PubMed could not find "nosuchterm" (PhraseNotFound)' in markdown
    dry = invoke(home, server, "email", "--dry-run", "--to", READER)
    [eml] = (home / "reports" / "outbox").glob("*.eml")
    assert dry.exit_code == 0 and dry.stdout == f"{eml}\n"
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    plain = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    typo_section = plain[plain.index("Typo topic\n----------"):]
    assert '!! Query health: PubMed could not find "nosuchterm" (PhraseNotFound)' in typo_section
    assert 'data-flag="no-match"' in message.get_body(("html",)).get_content()


def test_a_count_that_fell_by_more_than_half_is_flagged_for_a_week(server, store, client):
    server.add(*[record(pmid) for pmid in range(100, 110)])
    first = sync(store, client, server, date(2024, 6, 1))
    assert topic_health(store, ["dosing"])["dosing"] == []
    for pmid in range(100, 105):
        server.remove(pmid)
    sync(store, client, server, date(2024, 6, 2))
    assert topic_health(store, ["dosing"])["dosing"] == []  # 5 of 10: not more than half
    server.remove(105)
    sync(store, client, server, date(2024, 6, 3))
    [flag] = topic_health(store, ["dosing"])["dosing"]
    day = datetime.now(timezone.utc).date().isoformat()
    assert flag.kind == "count-drop" and flag.message == (
        f"PubMed's Count fell by more than half, from 10 on {day} to 4: "
        "check the query with 'tracker topics --check dosing'")
    # Incremental windows differ in size; the total Count (one esearch with retmax=0) does not.
    with store.session() as session:
        measured = session.execute(select(Run.count, Run.total_count).order_by(Run.id)).all()
    assert [tuple(row) for row in measured] == [(10, 10), (0, 5), (0, 4)]
    sync(store, client, server, date(2024, 6, 4))
    assert [f.kind for f in topic_health(store, ["dosing"])["dosing"]] == ["count-drop"]  # still within a week
    with store.engine.begin() as connection:
        connection.execute(update(Run).where(Run.id == first.run_id)
                           .values(started_at=datetime.now(timezone.utc) - timedelta(days=8)))
    assert topic_health(store, ["dosing"])["dosing"] == []


def test_a_topic_without_new_papers_for_longer_than_the_quiet_weeks_is_flagged(server, store, client):
    server.add(record(120))
    sync(store, client, server, date(2024, 6, 1))
    now = datetime.now(timezone.utc)
    with store.engine.begin() as connection:
        connection.execute(update(TopicPaper).values(first_seen_at=now - timedelta(weeks=9)))
    [flag] = topic_health(store, ["dosing"], quiet_weeks=8)["dosing"]
    assert flag.kind == "quiet" and flag.message.startswith("no new paper for 9 weeks (last ")
    assert flag.message.endswith("; TRACKER_QUIET_WEEKS is 8)")
    assert topic_health(store, ["dosing"], quiet_weeks=10)["dosing"] == []
    # A topic that never found a paper is quiet since its first successful run.
    never = SimpleNamespace(errors=[], warnings=[], total_count=3, started_at=now)
    assert [f.kind for f in assess_health("x", [never], last_new=None, first_success=now - timedelta(weeks=12),
                                          now=now, quiet_weeks=8)] == ["quiet"]
    assert assess_health("x", [], last_new=None, first_success=None, now=now) == []
    assert Settings.from_env(env={"TRACKER_QUIET_WEEKS": "3"}).quiet_weeks == 3
