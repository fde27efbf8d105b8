"""The weekly e-mail against a real SMTP server on loopback: MIME, headers, the ledger, failures, TLS, the CLI."""

from __future__ import annotations

import base64
import csv
import io
import logging
import os
import re
import shutil
import socket
import sqlite3
from datetime import timedelta
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from tests.conftest import cli_env, run_tracker, write_topic
from tests.smtp_server import LoopbackSMTP, free_port, make_certificate
from tests.test_digest import make_paper
from tracker.cli import cli
from tracker.errors import ConfigError
from tracker.ncbi.pubmed import Author
from tracker.outputs.export import CSV_COLUMNS
from tracker.outputs.mail import build_message, connect_smtp, describe_failures, plan_mailing, send_weekly_email, week_of
from tracker.settings import Settings
from tracker.store import open_store
from tracker.store.deliveries import delivered_pmids, outbox_messages
from tracker.store.models import Delivery, OutboxMessage, Recipient, TopicPaper
from tracker.store.papers import save_papers
from tracker.store.runs import RunCounts, finish_run, start_run
from tracker.text import as_utc, utcnow
from tracker.topics import Topic

A, B, C = "a@example.org", "b@example.org", "c@example.org"
SECRET = "S3ntinel-Pa55word-7f1c"
SENDER = "tracker@lab.example.org"
DOSING = Topic(slug="dosing", title="Norepinephrine dosing", query="q1", recipients=(A,), max_per_digest=2)
ELDERLY = Topic(slug="elderly", title="Norepinephrine in the elderly", query="q2", recipients=(A, B))
TOPICS = [DOSING, ELDERLY]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = "Effect of <script>alert(1)</script> on <i>MAP</i>"
# Login without TLS is what some tests exercise (TRACKER_SMTP_SECURITY=none); aiosmtpd warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def subject_head() -> str:
    return f"Norepinephrine literature, week of {week_of(utcnow()).isoformat()}"


def seed(store, slug: str, pmids, *, error: str | None = None, **changes) -> None:
    """A run of `slug` that stored `pmids` (first seen now), failed with `error` if given."""
    run = start_run(store, slug, kind="fetch", query="q", window_start=None, window_end=None)
    save_papers(store, [make_paper(pmid, **changes) for pmid in pmids], topic=slug, run_id=run.id)
    finish_run(store, run.id, RunCounts(new_papers=len(pmids)), error=error)


def mail_settings(tmp_path, server=None, **overrides) -> Settings:
    values = dict(home=tmp_path / "home", smtp_host="127.0.0.1", smtp_port=server.port if server else free_port(),
                  smtp_security="none", mail_from=f"Tracker <{SENDER}>", timeout=5)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def one_chart() -> bytes:
    from tracker.outputs.charts import render_chart_png

    return render_chart_png([])


@pytest.fixture(autouse=True)
def quick_charts(request, monkeypatch, one_chart):
    """Draws no chart (a third of a second each) except in tests that ask for `real_charts`."""
    if "real_charts" not in request.fixturenames:
        monkeypatch.setattr("tracker.outputs.charts.chart_png", lambda store, slug, *, end: one_chart)


@pytest.fixture
def real_charts():
    return None


@pytest.fixture
def server():
    with LoopbackSMTP() as server:
        yield server


@pytest.fixture
def seeded(store):
    seed(store, "dosing", [1, 2, 3, 4, 5])
    seed(store, "elderly", [5, 6])
    save_papers(store, [make_paper(1, title=HOSTILE, pmcid="PMC77")], topic="dosing")
    return store


def parts(message) -> list[str]:
    return [part.get_content_type() for part in message.walk()]


def body(message, subtype: str) -> str:
    """The text or HTML part as it reads, line ends made "\n"."""
    return message.get_body((subtype,)).get_content().replace("\r\n", "\n")


def csv_pmids(message) -> list[int]:
    [attachment] = [part for part in message.walk() if part.get_content_type() == "text/csv"]
    rows = list(csv.reader(io.StringIO(attachment.get_content().removeprefix("\ufeff"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    return [int(row[0]) for row in rows[1:]]


def ledger(store, recipient: str) -> dict[int, str]:
    with store.session() as session:
        rows = session.execute(select(Delivery.pmid, Delivery.topic).where(Delivery.recipient == recipient))
        return dict(rows.all())


# -- the message ------------------------------------------------------------------------------

def test_message_structure_headers_body_and_attachment(seeded, server, tmp_path, real_charts):
    before = utcnow()
    [result] = send_weekly_email(seeded, mail_settings(tmp_path, server), TOPICS, only=A)
    assert result.sent and result.error is None and sorted(result.papers) == [1, 2, 3, 4, 5, 6]
    [received] = server.messages
    assert (received.mail_from, received.rcpt_tos) == (SENDER, (A,))
    message = received.parsed()

    assert parts(message) == ["multipart/mixed", "multipart/related", "multipart/alternative", "text/plain",
                              "text/html", "image/png", "image/png", "text/csv"]
    assert message["Subject"] == f"{subject_head()}: 6 new papers in 2 topics"
    assert (message["From"], message["To"]) == (f"Tracker <{SENDER}>", A)
    assert re.fullmatch(r"<[^<>@\s]+@lab\.example\.org>", message["Message-ID"])
    assert message["Message-ID"] == result.message_id
    assert before - timedelta(seconds=1) <= parsedate_to_datetime(message["Date"]) <= utcnow()
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["MIME-Version"] == "1.0"

    html = body(message, "html")
    images = [part for part in message.walk() if part.get_content_type() == "image/png"]
    for image in images:
        assert image.get_content().startswith(PNG_MAGIC)
        assert image.get_content_disposition() == "inline"
        assert f'src="cid:{image["Content-ID"][1:-1]}"' in html
    assert len({image["Content-ID"] for image in images}) == 2

    [attachment] = [part for part in message.walk() if part.get_content_type() == "text/csv"]
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == f"norepinephrine-papers-{week_of(utcnow()).isoformat()}.csv"
    assert b'filename="norepinephrine-papers-' in received.data
    # dosing shows 2 of its 5 in the body; the CSV has every paper of the mail once.
    assert sorted(csv_pmids(message)) == [1, 2, 3, 4, 5, 6]

    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<style" not in html and "class=" not in html and "flex" not in html
    assert 'role="presentation"' in html and 'width="640"' in html
    assert all(int(width) <= 640 for width in re.findall(r'width="(\d+)"', html))
    assert "5 new, 2 shown" in html and "2 new, 2 shown" in html
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/1/"' in html and "free full text" in html

    text = body(message, "plain")
    assert text.startswith(f"{subject_head()}\n")
    assert "6 new papers in the 2 topics you follow." in text
    assert "Norepinephrine dosing\n---------------------\nLast run: succeeded, finished " in text
    assert ("5 new, 2 shown (strongest evidence first; all 5 are in the attached norepinephrine-papers-"
            in " ".join(text.split()))
    assert f"  {HOSTILE}\n    Ngan Kee WD · Anesthesiology · 2026 Mar\n" in text
    assert "    PubMed: https://pubmed.ncbi.nlm.nih.gov/1/\n    DOI: https://doi.org/10.1000/1\n" in text
    assert "    Free full text: https://www.ncbi.nlm.nih.gov/pmc/articles/PMC77/\n" in text
    assert "    Also in: dosing\n" in text

    # Every paper counts as delivered once, under the first of the recipient's topics that holds it.
    assert ledger(seeded, A) == {1: "dosing", 2: "dosing", 3: "dosing", 4: "dosing", 5: "dosing", 6: "elderly"}
    [row] = outbox_messages(seeded, A)
    assert (row.message_id, row.status, sorted(row.pmids), row.error) == (result.message_id, "sent",
                                                                          [1, 2, 3, 4, 5, 6], None)
    assert row.sent_at is not None


def test_singular_subject_and_a_heartbeat_once_a_week_once_everything_was_sent(seeded, server, tmp_path):
    settings = mail_settings(tmp_path, server)
    [first] = send_weekly_email(seeded, settings, TOPICS, only=B)
    [again] = send_weekly_email(seeded, settings, TOPICS, only=B)  # the same week, nothing new: nothing sent
    assert (again.sent, again.error, len(server.messages)) == (False, None, 1)
    [row] = outbox_messages(seeded, B)
    assert again.summary() == (f"nothing sent to {B}: nothing new since the message of {as_utc(row.sent_at):%Y-%m-%d %H:%M} "
                               "UTC (with nothing new, a reader hears so once a week)")
    next_week = utcnow() + timedelta(days=7)
    [beat] = send_weekly_email(seeded, settings, TOPICS, only=B, now=next_week)
    assert beat.sent and beat.papers == () and beat.summary().startswith(f"sent to {B}: no new papers (heartbeat), ")
    heartbeat = server.messages[-1].parsed()
    assert heartbeat["Subject"] == f"Norepinephrine literature, week of {week_of(next_week)}: no new papers in 1 topic"
    assert parts(heartbeat) == ["multipart/mixed", "multipart/related", "multipart/alternative", "text/plain",
                                "text/html", "image/png"]
    text = body(heartbeat, "plain")
    assert "No new papers this week: every query ran and found nothing new." in text
    assert "Norepinephrine in the elderly\n-----------------------------\nLast run: succeeded, finished 20" in text
    assert "No new papers in this period: the query ran at " in text

    seed(seeded, "elderly", [9])
    [third] = send_weekly_email(seeded, settings, TOPICS, only=B, now=next_week + timedelta(hours=2))
    assert third.papers == (9,)  # news goes out whatever was sent this week
    assert server.messages[-1].parsed()["Subject"].endswith(": 1 new paper in 1 topic")
    assert ledger(seeded, B) == {5: "elderly", 6: "elderly", 9: "elderly"}


def test_a_second_e_mail_run_while_one_is_sending_sends_nothing_and_says_why(seeded, server, tmp_path):
    from tracker.store.locks import EmailRunLock, LockHeldError

    settings = mail_settings(tmp_path, server)
    with EmailRunLock(seeded):  # another sending, alive (this very process)
        with pytest.raises(LockHeldError) as caught:
            send_weekly_email(seeded, settings, TOPICS)
    assert re.fullmatch(rf"another e-mail run \(pid {os.getpid()}, started \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\) "
                        r"is in progress: nothing was sent; try again when it has finished", str(caught.value))
    assert server.messages == [] and outbox_messages(seeded) == [] and ledger(seeded, A) == {}
    assert [result.sent for result in send_weekly_email(seeded, settings, TOPICS)] == [True, True]  # released


def test_topic_whose_last_run_failed_is_flagged_red_in_both_parts(store, tmp_path):
    seed(store, "dosing", [])
    seed(store, "elderly", [], error="HTTP 500 from esearch <b>bold</b>: check TRACKER_EUTILS_URL")
    mailing = plan_mailing(store, A, TOPICS, now=utcnow(), record=False)
    built = build_message(store, mailing, sender=SENDER)
    message = built.message
    assert message["Subject"] == f"{subject_head()}: no new papers in 2 topics"
    html = body(message, "html")
    flagged = re.search(r'<p style="[^"]*color:#b00020;[^"]*">([^<]*)</p>', html)
    assert flagged and "Last run: the search of PubMed failed at " in flagged.group(1)
    assert html.count("#b00020") == 1
    text = body(message, "plain")
    assert "No new papers this week, but 1 topic did not run cleanly (marked below)" in text
    assert "!! Last run: the search of PubMed failed at " in text
    assert "Last run: succeeded, finished " in text
    # The error is the sender's to act on: the readers are told what it means for them, the console what to do.
    assert "HTTP 500" not in text + html and "TRACKER_" not in text + html
    [note] = built.sender_notes
    assert note == ("elderly: its last run failed (HTTP 500 from esearch <b>bold</b>: check TRACKER_EUTILS_URL); its "
                    "readers are told their list may be incomplete: run 'tracker run elderly' to retry")


def test_trial_registrations_and_book_details_are_links_in_both_parts(store):
    seed(store, "dosing", [11], databanks=(("ClinicalTrials.gov", "NCT02149199"),))
    seed(store, "elderly", [12], kind="book", title="Vasopressors in shock", journal=None, editors=(
        Author("Holloway", "Margaret", "M"),), book_title="Critical Care Handbook", publisher="Oxford University Press",
        publisher_location="Oxford", book_accession="NBK531234", location_label="Chapter 4", chapter=True)
    message = build_message(store, plan_mailing(store, A, TOPICS, now=utcnow(), record=False), sender=SENDER).message
    html = body(message, "html")
    assert re.search(r'Trial registration: <a href="https://clinicaltrials.gov/study/NCT02149199" style="[^"]*">'
                     r"NCT02149199</a> \(ClinicalTrials.gov\)</p>", html)
    assert re.search(r'<a href="https://www.ncbi.nlm.nih.gov/books/NBK531234/" style="[^"]*">NCBI Bookshelf</a>', html)
    assert ("Chapter 4 in Critical Care Handbook, edited by Holloway M; Oxford University Press, Oxford</p>"
            in html)
    text = body(message, "plain")
    assert ("    Trial registration: NCT02149199 (ClinicalTrials.gov) https://clinicaltrials.gov/study/NCT02149199\n"
            in text)
    assert ("    Chapter 4 in Critical Care Handbook, edited by Holloway M; Oxford\n    University Press, Oxford\n"
            "    NCBI Bookshelf: https://www.ncbi.nlm.nih.gov/books/NBK531234/\n") in text


# -- who gets what ----------------------------------------------------------------------------

def test_each_recipient_gets_their_topics_and_a_new_reader_everything_not_yet_sent(store, server, tmp_path):
    seed(store, "dosing", [1, 2])
    seed(store, "elderly", [3, 4])
    seed(store, "sepsis", [5])
    with store.engine.begin() as connection:  # paper 2 was first seen a month ago: a new reader gets it too
        connection.execute(update(TopicPaper).where(TopicPaper.pmid == 2).values(first_seen_at=utcnow() - timedelta(days=30)))
    sepsis = Topic(slug="sepsis", title="Sepsis", query="q3")
    settings = mail_settings(tmp_path, server, mail_to=(C,))
    results = send_weekly_email(store, settings, [DOSING, ELDERLY, sepsis])
    assert {r.recipient: r.papers for r in results} == {A: (2, 1, 3, 4), B: (3, 4), C: (2, 1, 3, 4, 5)}
    assert {m.rcpt_tos[0]: m.parsed()["Subject"].split(": ", 1)[1] for m in server.messages} == {
        A: "4 new papers in 2 topics", B: "2 new papers in 1 topic", C: "5 new papers in 3 topics"}
    with store.session() as session:
        reader = session.get(Recipient, A)
    assert as_utc(reader.since).year == 1970 and utcnow() - as_utc(reader.created_at) < timedelta(minutes=1)


def test_to_limits_the_run_and_must_be_known(store, server, tmp_path):
    seed(store, "dosing", [1])
    settings = mail_settings(tmp_path, server)
    [result] = send_weekly_email(store, settings, TOPICS, only="B@Example.org")
    assert result.recipient == B and [m.rcpt_tos for m in server.messages] == [(B,)]
    with pytest.raises(ConfigError, match=r"^x@example\.org is not a recipient of any topic; known recipients: "
                                          r"a@example\.org, b@example\.org$"):
        send_weekly_email(store, settings, TOPICS, only="x@example.org")
    bare = [Topic(slug="dosing", title="Dosing", query="q"), Topic(slug="elderly", title="Elderly", query="q")]
    [anyone] = send_weekly_email(store, settings, bare, only="x@example.org")
    assert anyone.papers == (1,)
    assert server.messages[-1].parsed()["Subject"] == f"{subject_head()}: 1 new paper in 1 topic"


def test_missing_settings_say_what_to_set(store, tmp_path):
    bare = [Topic(slug="dosing", title="Dosing", query="q")]
    cases = [
        (dict(smtp_host=None), "no SMTP server configured: set TRACKER_SMTP_HOST (or use --dry-run)", TOPICS),
        (dict(mail_from=None), "no sender: set TRACKER_MAIL_FROM", TOPICS),
        ({}, "no recipients: add recipients = [...] to a topic file or set TRACKER_MAIL_TO", bare),
        (dict(smtp_user="u"), "TRACKER_SMTP_USER is set but TRACKER_SMTP_PASSWORD is not: set both to log in, "
                              "or neither", TOPICS),
    ]
    for overrides, message, topics in cases:
        with pytest.raises(ConfigError) as raised:
            send_weekly_email(store, mail_settings(tmp_path, **overrides), topics)
        assert str(raised.value) == message
    assert outbox_messages(store) == []


# -- failures and exactly once ----------------------------------------------------------------

def test_refused_recipient_gets_nothing_marked_and_the_next_run_sends_them(seeded, server, tmp_path):
    settings = mail_settings(tmp_path, server)
    server.reject[B] = "550 mailbox unavailable"
    results = send_weekly_email(seeded, settings, TOPICS)
    assert [(r.recipient, r.sent, r.error) for r in results] == [
        (A, True, None), (B, False, "SMTP 550 mailbox unavailable")]
    assert describe_failures(results) == (
        "sending to b@example.org failed (SMTP 550 mailbox unavailable): nothing was marked delivered; "
        "run 'tracker email' again")
    assert delivered_pmids(seeded, B) == set() and len(delivered_pmids(seeded, A)) == 6
    [failed] = outbox_messages(seeded, B)
    assert (failed.status, failed.error, sorted(failed.pmids)) == ("failed", "SMTP 550 mailbox unavailable", [5, 6])

    del server.reject[B]
    retry = send_weekly_email(seeded, settings, TOPICS)
    assert [(r.recipient, r.papers) for r in retry] == [(A, ()), (B, (5, 6))]
    assert describe_failures(retry) is None and delivered_pmids(seeded, B) == {5, 6}


def test_connection_refused_and_timeout_mark_nothing_and_say_why(seeded, tmp_path):
    closed = free_port()
    results = send_weekly_email(seeded, mail_settings(tmp_path, smtp_port=closed), TOPICS)
    reason = (f"the SMTP server at 127.0.0.1:{closed} refused the connection: check TRACKER_SMTP_HOST and "
              "TRACKER_SMTP_PORT")
    assert [(r.recipient, r.error) for r in results] == [(A, reason), (B, reason)]
    assert describe_failures(results) == (
        f"sending to 2 of 2 recipients failed (a@example.org: {reason}; b@example.org: {reason}): "
        "nothing was marked delivered for them; run 'tracker email' again")

    with socket.socket() as silent:  # accepts connections (the backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        [result] = send_weekly_email(seeded, mail_settings(tmp_path, smtp_port=port, timeout=0.3), TOPICS, only=A)
    assert result.error == f"no answer from the SMTP server at 127.0.0.1:{port} within 0.3 s"
    with seeded.session() as session:
        assert session.execute(select(Delivery)).first() is None
        assert {row.status for row in session.execute(select(OutboxMessage)).scalars()} == {"failed"}


def test_crash_after_acceptance_is_reported_as_possibly_sent_and_resent(seeded, server, tmp_path):
    settings = mail_settings(tmp_path, server)

    def crash_after_acceptance(settings):
        smtp = connect_smtp(settings)
        accept = smtp.send_message

        def send_message(*args, **kwargs):
            accept(*args, **kwargs)
            raise KeyboardInterrupt  # the process dies before the ledger write

        smtp.send_message = send_message
        return smtp

    with pytest.raises(KeyboardInterrupt):
        send_weekly_email(seeded, settings, TOPICS, only=B, smtp_factory=crash_after_acceptance)
    [pending] = outbox_messages(seeded, B)
    assert pending.status == "pending" and delivered_pmids(seeded, B) == set()
    assert server.messages[0].parsed()["Message-ID"] == pending.message_id

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)  # what the run warns of, whatever level another test left the logger at
    handler.emit = records.append
    logging.getLogger("tracker.mail").addHandler(handler)
    try:
        [result] = send_weekly_email(seeded, settings, TOPICS, only=B)
    finally:
        logging.getLogger("tracker.mail").removeHandler(handler)
    assert [r.getMessage() for r in records] == [
        f"possibly sent: the message {pending.message_id} to b@example.org (2 papers, "
        f"{pending.created_at:%Y-%m-%d %H:%M} UTC) was handed to SMTP by a run that stopped before recording it; "
        "its papers are sent again"]
    assert result.sent and result.papers == (5, 6) and len(server.messages) == 2
    old, new = outbox_messages(seeded, B)
    assert (old.message_id, old.status) == (pending.message_id, "failed") and old.error.startswith("possibly sent")
    assert (new.message_id, new.status) == (result.message_id, "sent")


def test_dry_run_writes_eml_files_and_records_nothing(seeded, tmp_path):
    settings = Settings(home=tmp_path / "home")  # no SMTP settings at all
    results = send_weekly_email(seeded, settings, TOPICS, dry_run=True)
    day = utcnow().date().isoformat()
    outbox = tmp_path / "home" / "reports" / "outbox"
    assert [r.path for r in results] == [outbox / f"{day}-a_at_example.org.eml", outbox / f"{day}-b_at_example.org.eml"]
    message = message_from_bytes(results[0].path.read_bytes(), policy=policy.default)
    assert message["From"] == "tracker@localhost" and message["Message-ID"].endswith("@localhost>")
    assert sorted(csv_pmids(message)) == [1, 2, 3, 4, 5, 6]
    with seeded.session() as session:
        for table in (Delivery, OutboxMessage, Recipient):
            assert session.execute(select(table)).first() is None
    again = send_weekly_email(seeded, settings, TOPICS, dry_run=True)
    assert [r.papers for r in again] == [r.papers for r in results]


# -- TLS and login ----------------------------------------------------------------------------

def test_login_without_tls_and_the_password_is_scrubbed(seeded, tmp_path):
    with LoopbackSMTP(users={"mailer": SECRET}) as server:
        settings = mail_settings(tmp_path, server, smtp_user="mailer", smtp_password=SECRET)
        assert SECRET not in repr(settings)
        [result] = send_weekly_email(seeded, settings, TOPICS, only=A)
        assert result.sent and server.messages[0].login == "mailer"
        wrong = mail_settings(tmp_path, server, smtp_user="mailer", smtp_password=SECRET + "x")
        [refused] = send_weekly_email(seeded, wrong, TOPICS, only=B)
    assert refused.error == ("SMTP 535 5.7.8 Authentication credentials invalid; the server refused the login: "
                             "check TRACKER_SMTP_USER and TRACKER_SMTP_PASSWORD")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    return make_certificate(tmp_path_factory.mktemp("tls"))


def test_starttls_verifies_the_certificate_and_logs_in_over_tls(seeded, tmp_path, certificate):
    with LoopbackSMTP(users={"mailer": SECRET}, tls=certificate) as server:
        settings = mail_settings(tmp_path, server, smtp_security="starttls", smtp_user="mailer", smtp_password=SECRET)
        [untrusted] = send_weekly_email(seeded, settings, TOPICS, only=A)
        assert untrusted.error.startswith("the TLS certificate of 127.0.0.1 is not trusted (")
        assert server.messages == []
        trusting = lambda s: connect_smtp(s, context=certificate.client_context())  # noqa: E731
        [result] = send_weekly_email(seeded, settings, TOPICS, only=A, smtp_factory=trusting)
        assert result.sent and [m.login for m in server.messages] == ["mailer"]
    with LoopbackSMTP(implicit_tls=certificate) as server:
        settings = mail_settings(tmp_path, server, smtp_security="ssl")
        [result] = send_weekly_email(seeded, settings, TOPICS, only=B, smtp_factory=trusting)
        assert result.sent and len(server.messages) == 1


def test_starttls_against_a_server_without_it_sends_nothing(seeded, server, tmp_path):
    results = send_weekly_email(seeded, mail_settings(tmp_path, server, smtp_security="starttls"), TOPICS)
    reason = (f"the SMTP server at 127.0.0.1:{server.port} does not offer STARTTLS, and tracker never sends in clear "
              "when TRACKER_SMTP_SECURITY=starttls: use ssl (port 465) or, on a trusted network only, none")
    assert [r.error for r in results] == [reason, reason]
    assert server.messages == [] and delivered_pmids(seeded, A) == set()


# -- the command line -------------------------------------------------------------------------

def cli_home(tmp_path):
    home = tmp_path / "home"
    write_topic(home, "dosing", "q1", recipients='["a@example.org"]', max_per_digest=1)
    write_topic(home, "elderly", "q2", recipients='["a@example.org", "b@example.org"]')
    return home


def mail_env(home, server, **extra) -> dict[str, str | None]:
    env = {
        "TRACKER_HOME": str(home), "TRACKER_DB_URL": f"sqlite:///{home / 'db' / 'tracker.sqlite3'}",
        "TRACKER_SMTP_HOST": "127.0.0.1", "TRACKER_SMTP_PORT": str(server.port), "TRACKER_SMTP_SECURITY": "none",
        "TRACKER_SMTP_USER": "mailer", "TRACKER_SMTP_PASSWORD": SECRET, "TRACKER_MAIL_FROM": SENDER,
        "TRACKER_MAIL_TO": None, "TRACKER_TIMEOUT": "5",
    }
    env.update(extra)
    return env


def sent_at(home, recipient: str) -> str:
    with sqlite3.connect(home / "db" / "tracker.sqlite3") as connection:
        [(sent,)] = connection.execute("SELECT max(sent_at) FROM outbox WHERE recipient = ? AND status = 'sent'",
                                       (recipient,)).fetchall()
    return sent[:16]


def test_cli_sends_fails_one_line_and_never_shows_the_password(tmp_path):
    home = cli_home(tmp_path)
    store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}")
    seed(store, "dosing", [1, 2, 3])
    seed(store, "elderly", [3, 4])
    store.close()
    outputs: list[str] = []
    with LoopbackSMTP(users={"mailer": SECRET}) as server:
        server.reject[B] = "550 mailbox unavailable"
        env = cli_env(home, None, **{k: v for k, v in mail_env(home, server).items() if v is not None})
        first = run_tracker("email", env=env, timeout=60)
        outputs += [first.out, first.err]
        assert first.code == 1 and server.messages, first
        assert first.out == f"sent to a@example.org: 4 new papers, Message-ID {server.messages[0].parsed()['Message-ID']}\n"
        assert first.err == ("error: sending to b@example.org failed (SMTP 550 mailbox unavailable): nothing was "
                             "marked delivered; run 'tracker email' again\n")
        assert "dosing topic" in body(server.messages[0].parsed(), "plain").lower()

        del server.reject[B]
        runner = CliRunner()
        second = runner.invoke(cli, ["email", "--to", B], env=mail_env(home, server))
        outputs += [second.stdout, second.stderr]
        assert second.exit_code == 0, second.stderr
        assert second.stdout.startswith("sent to b@example.org: 2 new papers, Message-ID <")

        told = runner.invoke(cli, ["email"], env=mail_env(home, server))
        assert told.exit_code == 0 and told.stdout.splitlines() == [
            f"nothing sent to {reader}: nothing new since the message of {sent} UTC (with nothing new, a reader hears "
            "so once a week)" for reader, sent in ((A, sent_at(home, A)), (B, sent_at(home, B)))]

        store = open_store(f"sqlite:///{home / 'db' / 'tracker.sqlite3'}")
        seed(store, "elderly", [5])
        store.close()
        dry = runner.invoke(cli, ["email", "--dry-run"], env=mail_env(home, server, TRACKER_SMTP_HOST=None))
        outputs += [dry.stdout, dry.stderr]
        day = utcnow().date().isoformat()
        assert (dry.exit_code, dry.stdout) == (0, f"{home / 'reports' / 'outbox' / f'{day}-a_at_example.org.eml'}\n"
                                                  f"{home / 'reports' / 'outbox' / f'{day}-b_at_example.org.eml'}\n")

        wrong = runner.invoke(cli, ["email"], env=mail_env(home, server, TRACKER_SMTP_PASSWORD=SECRET[::-1]))
        outputs += [wrong.stdout, wrong.stderr]
        assert wrong.exit_code == 1 and "the server refused the login" in wrong.stderr
        assert len(wrong.stderr.splitlines()) == 1
        received = b"".join(m.data for m in server.messages)
        assert len(server.messages) == 2

    unconfigured = runner.invoke(cli, ["email"], env=mail_env(home, server, TRACKER_SMTP_HOST=None))
    assert (unconfigured.exit_code, unconfigured.stderr) == (
        2, "error: no SMTP server configured: set TRACKER_SMTP_HOST (or use --dry-run)\n")

    with sqlite3.connect(home / "db" / "tracker.sqlite3") as connection:
        assert connection.execute("SELECT recipient, COUNT(*) FROM delivery GROUP BY recipient").fetchall() == [
            (A, 4), (B, 2)]  # paper 5 went only into the dry run's files and the refused login's message
    secrets = [SECRET, SECRET[::-1]]
    forms = [form for s in secrets for form in (s, base64.b64encode(s.encode()).decode(),
                                                 base64.b64encode(f"\0mailer\0{s}".encode()).decode())]
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".eml" for path in files) and any(path.name.startswith("tracker.sqlite3") for path in files)
    for form in forms:
        assert all(form not in text for text in outputs)
        assert form.encode() not in received
        for path in files:
            assert form.encode() not in path.read_bytes(), path
