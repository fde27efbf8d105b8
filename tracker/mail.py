"""The weekly e-mail: one message per recipient with the papers they have not been sent yet.

Who gets what
    A recipient follows the topics whose file lists them in `recipients = [...]`; every address in
    TRACKER_MAIL_TO (comma-separated) follows every topic. Addresses are compared in lower case.
    `only` (`tracker email --to ADDR`) limits a run to one known recipient; when no recipient is
    configured anywhere, ADDR is taken as following every topic, so a first test mail needs no set-up.

    A recipient's mail covers every paper linked to one of their topics that the delivery ledger
    (table `delivery`, keyed by recipient + PMID) does not hold for them, and that the topic first saw
    at or after the recipient's `since`. `since` is set once, on the first real send to the address,
    to seven days before it: a new reader gets last week, not the whole backlog. A paper in two of
    their topics is shown under each but counted, attached and recorded once (under the first topic).
    A topic showing more than its `max_per_digest` papers shows the strongest ones first and says
    "N new, M shown"; all N are in the attached CSV and all N count as delivered.

    When nothing is new the mail still goes out (a heartbeat), listing each topic with its last run,
    so a silent week can be told from a broken tracker. A topic whose last run failed is shown in red
    (#b00020) with its error, in the HTML and (marked "!!") in the plain text, and so are the query's
    health flags (tracker/watch.py).

    The mail opens with "Updates to papers you already received": the status events (retraction,
    expression of concern, erratum, update, removal; tracker/watch.py) on papers of the reader's topics,
    detected from the reader's `since` on, that the event ledger (table `event_delivery`, recipient +
    event) does not hold for them. Its ledger rows are written with the paper ledger's, so an update is
    told to each reader once, and again only when SMTP failed. A retracted paper is marked RETRACTED.

The message
    multipart/mixed [ multipart/related [ multipart/alternative [ text/plain, text/html ],
    image/png (one chart per topic, referenced from the HTML as cid:) ], text/csv ]. The HTML is
    tables with inline styles only (role="presentation", 640 px wide), which Outlook and Gmail both
    render; every record text is escaped. The CSV (tracker/export.py columns) is named
    norepinephrine-papers-<Monday>.csv and is left out when there is no paper to list. Subject:
    "Norepinephrine literature, week of <Monday>: 14 new papers in 4 topics", counting the topics that
    have new papers, or "…: no new papers in 4 topics", counting every topic the mail covers.

Exactly once
    1. The message is built completely (charts, CSV) first, so nothing slow happens inside the window.
    2. An outbox row (status `pending`, the Message-ID, the PMIDs) is committed in its own transaction.
    3. The message is handed to the SMTP server.
    4. Right after the server accepts it, one transaction marks the row `sent` and writes a ledger row
       for every PMID it carried.
    If SMTP fails (connection refused, TLS or login refused, recipient refused, timeout), the row
    becomes `failed` with the reason, no ledger row is written, the other recipients are still tried
    (when the server cannot be reached or refuses the login, they fail at once with the same reason),
    and the run reports failure: the next run sends the same papers again.

    The remaining window is a crash (power loss, kill -9) between the server's acceptance and the commit
    of step 4: that message was delivered but not recorded, so the next run sends its papers once more.
    Its outbox row is still `pending`; the next run reports each such row older than itself on stderr
    as "possibly sent", marks it `failed` (its papers are not in the ledger) with that explanation, and
    sends its papers again. Two runs for the same recipient at the same moment are not guarded
    against: run `tracker email` from one scheduler.

Sending
    TRACKER_SMTP_HOST, TRACKER_SMTP_PORT (default 587 for starttls, 465 for ssl, 25 for none),
    TRACKER_SMTP_SECURITY (starttls, the default; ssl; none), TRACKER_SMTP_USER and
    TRACKER_SMTP_PASSWORD (log in when set), TRACKER_MAIL_FROM (the sender). Certificates are verified
    against the system's trust store; with starttls, a server that does not offer STARTTLS is an error,
    never a reason to send in clear. One connection serves every recipient of a run. The password is
    never printed, logged, stored or written into a message: SMTP error texts are scrubbed of it.

Dry run
    `dry_run=True` writes each message to reports/outbox/<date>-<address>.eml instead of sending, needs
    no SMTP settings (the sender defaults to tracker@localhost) and records nothing: no ledger rows, no
    outbox rows, no recipient rows.
"""

from __future__ import annotations

import base64
import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from pathlib import Path

from tracker import files
from tracker.digest import PHRASES, TopicDigest, build_topic_digest
from tracker.errors import ConfigError, TrackerError
from tracker.render import as_utc, plural, render
from tracker.settings import Settings
from tracker.store import Store
from tracker.store.changes import list_events, untold_events
from tracker.store.database import utcnow
from tracker.store.locks import EmailRunLock
from tracker.store.deliveries import (
    ensure_recipient, mark_failed, mark_sent, pending_messages, recipient_since, save_pending, undelivered_papers,
)
from tracker.topics import EMAIL_PATTERN, Topic
from tracker.watch import DEFAULT_QUIET_WEEKS

log = logging.getLogger("tracker.mail")

MAIL_TITLE = "Norepinephrine literature"
NEW_READER_PERIOD = timedelta(days=7)
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DRY_RUN_SENDER = "tracker@localhost"
FAILED_COLOR = "#b00020"
CHART_WIDTH, CHART_HEIGHT = 592, 186  # the 700 x 220 chart scaled into the 640 px column less its padding
# Python folds some headers a little over 78 characters (the subject) onto a line of their own, which
# parsers then read with a leading space; RFC 5322 allows 998. Parts keep 78, which their encoders need.
MESSAGE_POLICY = SMTP_POLICY.clone(max_line_length=998)

SmtpFactory = Callable[[Settings], smtplib.SMTP]


@dataclass(frozen=True)
class MailResult:
    recipient: str
    message_id: str
    subject: str
    papers: tuple[int, ...]
    path: Path | None = None
    sent: bool = False
    error: str | None = None
    events: tuple[int, ...] = ()  # the status events the message told

    def summary(self) -> str:
        if self.path is not None:
            return str(self.path)
        if self.error:
            return f"not sent to {self.recipient}: {self.error}"
        what = plural(len(self.papers), "new paper") if self.papers else "no new papers (heartbeat)"
        if self.events:
            what += f" and {plural(len(self.events), 'update')} to papers sent before"
        return f"sent to {self.recipient}: {what}, Message-ID {self.message_id}"


@dataclass(frozen=True)
class Mailing:
    """What one recipient's message covers."""

    recipient: str
    topics: tuple[Topic, ...]
    since: datetime
    until: datetime
    pmids_by_topic: dict[str, tuple[int, ...]] = field(default_factory=dict)
    topic_of: dict[int, str] = field(default_factory=dict)  # each paper once, under its first topic
    event_ids: tuple[int, ...] = ()  # status events not yet told to the recipient

    @property
    def pmids(self) -> tuple[int, ...]:
        return tuple(self.topic_of)


class SendFailure(Exception):
    """One message was not accepted; `reason` is scrubbed and fits in a line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class StartTLSUnavailable(smtplib.SMTPException):
    pass


# -- who gets what ----------------------------------------------------------------------------

def followers(settings: Settings, topics: Sequence[Topic]) -> dict[str, tuple[Topic, ...]]:
    """Each configured recipient (lower case) and the topics they follow, in the order of `topics`."""
    for address in settings.mail_to:
        if not EMAIL_PATTERN.match(address):
            raise ConfigError(f"TRACKER_MAIL_TO: {address!r} is not an e-mail address; "
                              "give comma-separated addresses such as a@example.org,b@example.org")
    everyone = {address.lower() for address in settings.mail_to}
    following: dict[str, list[Topic]] = {address: [] for address in everyone}
    for topic in topics:
        for address in sorted(everyone | {r.lower() for r in topic.recipients}):
            following.setdefault(address, []).append(topic)
    return {address: tuple(following[address]) for address in sorted(following)}


def select_audience(settings: Settings, topics: Sequence[Topic], only: str | None = None) -> dict[str, tuple[Topic, ...]]:
    audience = followers(settings, topics)
    if only is not None:
        address = only.strip().lower()
        if address in audience:
            return {address: audience[address]}
        if audience:
            raise ConfigError(f"{only} is not a recipient of any topic; known recipients: {', '.join(audience)}")
        if not EMAIL_PATTERN.match(address):
            raise ConfigError(f"--to {only!r} is not an e-mail address")
        return {address: tuple(topics)}
    if not audience:
        raise ConfigError("no recipients: add recipients = [...] to a topic file or set TRACKER_MAIL_TO")
    return audience


def plan_mailing(store: Store, recipient: str, topics: Sequence[Topic], *, now: datetime,
                 record: bool) -> Mailing:
    """The papers and status events `recipient` has not been sent. `record` stores a first-time reader's `since`."""
    since = recipient_since(store, recipient)
    if since is None:
        since = now - NEW_READER_PERIOD
        if record:
            since = ensure_recipient(store, recipient, since=since, now=now)
    since = as_utc(since)
    found = undelivered_papers(store, recipient, [topic.slug for topic in topics], since=since, until=now)
    by_topic: dict[str, list[int]] = {topic.slug: [] for topic in topics}
    for slug, pmid in found:
        by_topic[slug].append(pmid)
    topic_of: dict[int, str] = {}
    for topic in topics:
        for pmid in by_topic[topic.slug]:
            topic_of.setdefault(pmid, topic.slug)
    events = untold_events(store, recipient, [topic.slug for topic in topics], since=since)
    return Mailing(recipient=recipient, topics=tuple(topics), since=since, until=now,
                   pmids_by_topic={slug: tuple(pmids) for slug, pmids in by_topic.items()}, topic_of=topic_of,
                   event_ids=tuple(events))


# -- the message ------------------------------------------------------------------------------

def week_of(now: datetime) -> date:
    """The Monday of `now`'s week (UTC)."""
    day = as_utc(now).date()
    return day - timedelta(days=day.weekday())


def make_subject(week: date, papers: int, topics_with_papers: int, topics: int, updates: int = 0) -> str:
    head = f"{MAIL_TITLE}, week of {week.isoformat()}"
    if not papers:
        subject = f"{head}: no new papers in {plural(topics, 'topic')}"
    else:
        subject = f"{head}: {plural(papers, 'new paper')} in {plural(topics_with_papers, 'topic')}"
    return f"{subject}; {plural(updates, 'update')} to papers sent before" if updates else subject


def csv_filename(week: date) -> str:
    return f"norepinephrine-papers-{week.isoformat()}.csv"


def build_message(store: Store, mailing: Mailing, *, sender: str, now: datetime | None = None,
                  chart_cache: dict[str, bytes] | None = None, quiet_weeks: int = DEFAULT_QUIET_WEEKS) -> EmailMessage:
    """The complete message for `mailing`, From `sender` (an address, optionally with a display name).

    `chart_cache` (slug to PNG) lets one run draw each topic's chart once for all its recipients;
    `quiet_weeks` is TRACKER_QUIET_WEEKS, for the topics' health flags.
    """
    from tracker.charts import chart_png  # matplotlib takes a second to import: only when a message is built
    from tracker.export import csv_bytes

    now = as_utc(now) if now is not None else utcnow()
    week = week_of(now)
    attachment = csv_filename(week)
    digests = [
        build_topic_digest(store, topic, pmids=mailing.pmids_by_topic.get(topic.slug, ()), until=mailing.until,
                           max_items=topic.max_per_digest, full_report=f"the attached {attachment}",
                           quiet_weeks=quiet_weeks)
        for topic in mailing.topics
    ]
    total = len(mailing.pmids)
    updates = list_events(store, ids=mailing.event_ids) if mailing.event_ids else []
    subject = make_subject(week, total, sum(1 for d in digests if d.total_new), len(digests), len(updates))
    domain = sender_address(sender).rpartition("@")[2]
    chart_cache = {} if chart_cache is None else chart_cache
    for topic in mailing.topics:
        if topic.slug not in chart_cache:
            chart_cache[topic.slug] = chart_png(store, topic.slug, end=now)
    charts = {topic.slug: (make_msgid(idstring=f"chart.{topic.slug}", domain=domain), chart_cache[topic.slug])
              for topic in mailing.topics}
    context = dict(
        heading=f"{MAIL_TITLE}, week of {week.isoformat()}", subject=subject, intro=describe_intro(digests, total),
        updates=updates, digests=digests, recipient=mailing.recipient, attachment=attachment if total else None, total=total,
        charts={slug: cid[1:-1] for slug, (cid, _) in charts.items()}, failed_color=FAILED_COLOR,
        chart_width=CHART_WIDTH, chart_height=CHART_HEIGHT, **PHRASES,
    )
    body = MIMEPart(policy=SMTP_POLICY)
    body.set_content(render("mail.txt.j2", **context), cte="quoted-printable")
    body.add_alternative(render("mail.html.j2", **context), subtype="html", cte="quoted-printable")
    related = MIMEPart(policy=SMTP_POLICY)
    related.make_related()
    related.attach(body)
    for slug, (cid, png) in charts.items():
        image = MIMEPart(policy=SMTP_POLICY)
        image.set_content(png, "image", "png", disposition="inline", filename=f"chart-{slug}.png", cid=cid)
        related.attach(image)

    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = sender
    message["To"] = mailing.recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=domain)
    message["MIME-Version"] = "1.0"
    message["Auto-Submitted"] = "auto-generated"
    # Outlook's out-of-office and read-receipt replies are not wanted by an unattended sender.
    message["X-Auto-Response-Suppress"] = "All"
    message.make_mixed()
    message.attach(related)
    if total:
        table = MIMEPart(policy=SMTP_POLICY)
        table.set_content(csv_bytes(store, list(mailing.pmids), [t.slug for t in mailing.topics]), "text", "csv",
                          disposition="attachment", filename=attachment, params={"charset": "utf-8"})
        message.attach(table)
    return message


def describe_intro(digests: Sequence[TopicDigest], total: int) -> str:
    if total:
        with_papers = sum(1 for d in digests if d.total_new)
        where = (f"the {plural(len(digests), 'topic')} you follow" if with_papers == len(digests)
                 else f"{with_papers} of the {plural(len(digests), 'topic')} you follow")
        return (f"{plural(total, 'new paper')} in {where}. "
                f"The strongest evidence comes first in each topic; the attached CSV lists all {total}.")
    troubled = [d for d in digests if d.last_run is None or d.last_run.status != "succeeded"]
    flagged = [d for d in digests if d.health]
    if not troubled and not flagged:
        return "No new papers this week: every query ran and found nothing new."
    if not troubled:
        return (f"No new papers this week, but the query of {plural(len(flagged), 'topic')} needs a look "
                "(marked below): the quiet may be a fault, not an empty week.")
    return (f"No new papers this week, but {plural(len(troubled), 'topic')} did not run cleanly "
            "(marked below): the quiet may be a fault, not an empty week.")


# -- sending ----------------------------------------------------------------------------------

def smtp_port(settings: Settings) -> int:
    return settings.smtp_port or DEFAULT_PORTS[settings.smtp_security]


def connect_smtp(settings: Settings, *, context: ssl.SSLContext | None = None) -> smtplib.SMTP:
    """An SMTP connection ready to send: TLS as configured (certificates verified), logged in if configured.

    `context` replaces the system trust store, for a server with a private CA.
    """
    host, port, security = settings.smtp_host, smtp_port(settings), settings.smtp_security
    context = context or ssl.create_default_context()
    log.debug("connecting to %s:%d (%s)", host, port, security)
    if security == "ssl":
        smtp = smtplib.SMTP_SSL(host, port, timeout=settings.timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=settings.timeout)
    try:
        smtp.ehlo()
        if security == "starttls":
            if not smtp.has_extn("starttls"):
                raise StartTLSUnavailable(
                    f"the SMTP server at {host}:{port} does not offer STARTTLS, and tracker never sends in clear "
                    "when TRACKER_SMTP_SECURITY=starttls: use ssl (port 465) or, on a trusted network only, none")
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.smtp_user:
            log.debug("logging in as %s", settings.smtp_user)
            smtp.login(settings.smtp_user, settings.smtp_password or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


class Postman:
    """One SMTP connection for a run, opened at the first message and reopened after a broken one.

    A failure to open it at all is remembered: the other recipients fail with the same reason at once
    instead of each waiting for the same timeout.
    """

    def __init__(self, settings: Settings, factory: SmtpFactory):
        self.settings, self.factory = settings, factory
        self.smtp: smtplib.SMTP | None = None
        self.open_error: str | None = None

    def deliver(self, message: EmailMessage, sender: str, recipient: str) -> None:
        if self.open_error is not None:
            raise SendFailure(self.open_error)
        if self.smtp is None:
            try:
                self.smtp = self.factory(self.settings)
            except (smtplib.SMTPException, OSError) as error:
                self.open_error = describe_smtp_error(error, self.settings)
                raise SendFailure(self.open_error) from None
        try:
            refused = self.smtp.send_message(message, from_addr=sender, to_addrs=[recipient])
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            # smtplib has reset the transaction: the connection can carry the next recipient's message.
            raise SendFailure(describe_smtp_error(error, self.settings)) from None
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise SendFailure(describe_smtp_error(error, self.settings)) from None
        if refused:
            raise SendFailure(describe_smtp_error(smtplib.SMTPRecipientsRefused(refused), self.settings))

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def describe_smtp_error(error: BaseException, settings: Settings) -> str:
    """One line saying what went wrong, without the password."""
    host, port = settings.smtp_host, smtp_port(settings)
    where = f"{host}:{port}"
    if isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(error.__context__, OSError):
        error = error.__context__  # smtplib turns a timeout or reset while reading a reply into this
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(error.recipients.values()), (None, b""))
        reason = f"SMTP {code} {_decode(text)}"
    elif isinstance(error, smtplib.SMTPAuthenticationError):
        reason = (f"SMTP {error.smtp_code} {_decode(error.smtp_error)}; the server refused the login: "
                  "check TRACKER_SMTP_USER and TRACKER_SMTP_PASSWORD")
    elif isinstance(error, smtplib.SMTPResponseException):
        reason = f"SMTP {error.smtp_code} {_decode(error.smtp_error)}"
    elif isinstance(error, smtplib.SMTPNotSupportedError) and "AUTH" in str(error):
        reason = (f"the SMTP server at {where} does not offer a login (AUTH){' before STARTTLS' if settings.smtp_security == 'none' else ''}: "
                  "unset TRACKER_SMTP_USER or check TRACKER_SMTP_SECURITY")
    elif isinstance(error, smtplib.SMTPServerDisconnected):
        reason = f"the SMTP server at {where} closed the connection ({error or 'no reason given'})"
    elif isinstance(error, smtplib.SMTPException):  # before OSError, its base class
        reason = str(error) or type(error).__name__
    elif isinstance(error, ssl.SSLCertVerificationError):
        reason = (f"the TLS certificate of {host} is not trusted ({error.verify_message}): "
                  "fix the server's certificate or check TRACKER_SMTP_HOST")
    elif isinstance(error, ssl.SSLError):
        reason = (f"TLS with {where} failed ({error.reason or error}): check TRACKER_SMTP_SECURITY "
                  "(ssl for port 465, starttls for 587) and TRACKER_SMTP_PORT")
    elif isinstance(error, TimeoutError):
        reason = f"no answer from the SMTP server at {where} within {settings.timeout:g} s"
    elif isinstance(error, ConnectionRefusedError):
        reason = f"the SMTP server at {where} refused the connection: check TRACKER_SMTP_HOST and TRACKER_SMTP_PORT"
    elif isinstance(error, socket.gaierror):
        reason = f"cannot find the SMTP server {host!r} ({error.strerror}): check TRACKER_SMTP_HOST"
    elif isinstance(error, OSError):
        reason = f"cannot talk to the SMTP server at {where} ({error.strerror or error})"
    else:
        reason = str(error) or type(error).__name__
    return scrub(" ".join(reason.split()), settings)


def _decode(text) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def scrub(text: str, settings: Settings) -> str:
    """`text` without the SMTP password, plain or in the base64 forms AUTH PLAIN and LOGIN send."""
    secret = settings.smtp_password
    if not secret:
        return text
    forms = {secret, _b64(secret), _b64(f"\0{settings.smtp_user or ''}\0{secret}"),
             _b64(f"{settings.smtp_user or ''}\0{settings.smtp_user or ''}\0{secret}")}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def sender_address(sender: str) -> str:
    return parseaddr(sender)[1]


def check_sender(settings: Settings, dry_run: bool) -> str:
    """The From header to use; the bare address is the envelope sender."""
    if not settings.mail_from:
        if dry_run:
            return DRY_RUN_SENDER
        raise ConfigError("no sender: set TRACKER_MAIL_FROM")
    name, address = parseaddr(settings.mail_from)
    if "@" not in address or not address.rpartition("@")[2] or any(c.isspace() for c in address):
        raise ConfigError(f"TRACKER_MAIL_FROM={settings.mail_from!r} is not an e-mail address: "
                          "set it to one such as tracker@example.org")
    return formataddr((name, address)) if name else address


def check_smtp(settings: Settings) -> None:
    if not settings.smtp_host:
        raise ConfigError("no SMTP server configured: set TRACKER_SMTP_HOST (or use --dry-run)")
    if settings.smtp_user and not settings.smtp_password:
        raise ConfigError("TRACKER_SMTP_USER is set but TRACKER_SMTP_PASSWORD is not: set both to log in, or neither")
    if settings.smtp_password and not settings.smtp_user:
        raise ConfigError("TRACKER_SMTP_PASSWORD is set but TRACKER_SMTP_USER is not: set both to log in, or neither")


def send_weekly_email(store: Store, settings: Settings, topics: Sequence[Topic], *, dry_run: bool = False,
                      only: str | None = None, now: datetime | None = None,
                      smtp_factory: SmtpFactory | None = None) -> list[MailResult]:
    """Mail every recipient (or only `only`) the papers they have not been sent; see the module docstring.

    `now` dates the mail (subject week, file names, a new reader's `since`) and bounds the papers to those
    first seen before it. `smtp_factory(settings)` returns a connected, logged-in `smtplib.SMTP`
    (default: `connect_smtp`). Failures are in the results, not raised; see `describe_failures`.
    """
    started = utcnow()
    now = as_utc(now) if now is not None else started
    if not dry_run:
        check_smtp(settings)
    sender = check_sender(settings, dry_run)
    audience = select_audience(settings, topics, only)
    if dry_run:
        return _send(store, settings, audience, None, sender=sender, now=now, started=started, dry_run=True)
    with EmailRunLock(store) as lock:
        return _send(store, settings, audience, lock, sender=sender, now=now, started=started, dry_run=False,
                     smtp_factory=smtp_factory)


def _send(store: Store, settings: Settings, audience: dict, lock: EmailRunLock | None, *, sender: str,
          now: datetime, started: datetime, dry_run: bool, smtp_factory: SmtpFactory | None = None) -> list[MailResult]:
    report_possibly_sent(store, list(audience), before=started, mark=not dry_run)
    postman = None if dry_run else Postman(settings, smtp_factory or connect_smtp)
    results: list[MailResult] = []
    charts: dict[str, bytes] = {}
    try:
        for recipient, followed in audience.items():
            if lock is not None:
                lock.beat()
            mailing = plan_mailing(store, recipient, followed, now=now, record=not dry_run)
            message = build_message(store, mailing, sender=sender, now=now, chart_cache=charts,
                                    quiet_weeks=settings.quiet_weeks)
            if dry_run:
                path = write_eml(settings.reports_dir / "outbox" / eml_name(recipient, now), message)
                results.append(MailResult(recipient, message["Message-ID"], message["Subject"], mailing.pmids, path=path,
                                          events=mailing.event_ids))
            else:
                results.append(deliver(store, postman, mailing, message, sender=sender))
    finally:
        if postman is not None:
            postman.close()
    return results


def deliver(store: Store, postman: Postman, mailing: Mailing, message: EmailMessage, *, sender: str) -> MailResult:
    """Outbox row, SMTP, then the `sent` mark and the ledger in one transaction (see "Exactly once")."""
    message_id, subject, recipient = message["Message-ID"], message["Subject"], mailing.recipient
    save_pending(store, message_id=message_id, recipient=recipient, subject=subject, pmids=mailing.pmids, now=utcnow())
    try:
        postman.deliver(message, sender_address(sender), recipient)
    except SendFailure as failure:
        mark_failed(store, message_id, failure.reason)
        log.debug("not sent to %s: %s", recipient, failure.reason)
        return MailResult(recipient, message_id, subject, mailing.pmids, error=failure.reason)
    mark_sent(store, message_id, recipient=recipient, topic_of=mailing.topic_of, now=utcnow(),
              event_ids=mailing.event_ids)
    return MailResult(recipient, message_id, subject, mailing.pmids, sent=True, events=mailing.event_ids)


def report_possibly_sent(store: Store, recipients: Sequence[str], *, before: datetime, mark: bool) -> None:
    """Warn about messages a stopped run may have delivered without recording; their papers go out again."""
    for row in pending_messages(store, recipients=recipients, before=before):
        created = as_utc(row.created_at).strftime("%Y-%m-%d %H:%M UTC")
        log.warning("possibly sent: the message %s to %s (%s, %s) was handed to SMTP by a run that stopped "
                    "before recording it; its papers are sent again", row.message_id, row.recipient,
                    plural(len(row.pmids), "paper"), created)
        if mark:
            mark_failed(store, row.message_id, f"possibly sent: the run stopped between SMTP and the ledger; "
                                               f"its papers were offered again on {before:%Y-%m-%d %H:%M} UTC")


def describe_failures(results: Sequence[MailResult]) -> str | None:
    """The one-line error for the recipients that were not sent to (None when all were)."""
    failed = [result for result in results if result.error]
    if not failed:
        return None
    if len(failed) == 1:
        head = f"sending to {failed[0].recipient} failed ({failed[0].error})"
        tail = "nothing was marked delivered"
    else:
        head = (f"sending to {len(failed)} of {len(results)} recipients failed ("
                + "; ".join(f"{r.recipient}: {r.error}" for r in failed) + ")")
        tail = "nothing was marked delivered for them"
    return f"{head}: {tail}; run 'tracker email' again"


# -- dry-run files ----------------------------------------------------------------------------

def eml_name(recipient: str, now: datetime) -> str:
    safe = re.sub(r"[^a-z0-9._+-]", "_", recipient.lower().replace("@", "_at_"))
    return f"{as_utc(now).date().isoformat()}-{safe}.eml"


def write_eml(path: Path, message: EmailMessage) -> Path:
    """Write the message as it would go on the wire, replacing the file in one step, readable by the owner only."""
    try:
        return files.write_atomically(path, bytes(message), mode=0o600, make_parents=True)
    except OSError as error:
        raise TrackerError(f"cannot write {path} ({error.strerror}): make {path.parent} writable "
                           "or choose another home with --home") from None


__all__ = [
    "MailResult", "Mailing", "send_weekly_email", "build_message", "plan_mailing", "select_audience", "followers",
    "connect_smtp", "describe_failures", "describe_smtp_error", "make_subject", "week_of", "csv_filename",
    "eml_name", "scrub",
]
