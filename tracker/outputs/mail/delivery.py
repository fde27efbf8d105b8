"""Exactly once: each paper reaches each reader once, however a run ends.

1. The message is built completely (charts, CSV) first, so nothing slow happens inside the window.
2. An outbox row (status `pending`, the Message-ID, the PMIDs) is committed in its own transaction.
3. The message is handed to the SMTP server.
4. Right after the server accepts it, one transaction marks the row `sent` and writes a ledger row for
   every PMID it carried (all of a capped topic's papers, shown or only in the CSV) and one for every
   status event it told.
If SMTP fails (connection refused, TLS or login refused, recipient refused, timeout), the row becomes
`failed` with the reason, no ledger row is written, the other recipients are still tried (when the
server cannot be reached or refuses the login, they fail at once with the same reason), and the run
reports failure: the next run sends the same papers again.

The remaining window is a crash (power loss, kill -9) between the server's acceptance and the commit of
step 4: that message was delivered but not recorded, so the next run sends its papers once more. Its
outbox row is still `pending`; the next run reports each such row older than itself on stderr as
"possibly sent", marks it `failed` (its papers are not in the ledger) with that explanation, and sends
its papers again. A second run while one is sending (`tracker email`, the scheduler's e-mail job) would
take the first one's rows for such leftovers: the e-mail run lock (tracker/store/locks.py) stops it
before it sends anything.

A dry run takes none of these steps: it writes the messages (tracker/outputs/mail/transport.py), records
nothing, needs no lock, and only reports the rows a stopped run left `pending`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from tracker.errors import SendFailure
from tracker.outputs.mail.audience import Mailing, already_told, plan_mailing, select_audience
from tracker.outputs.mail.message import BuiltMessage, build_message
from tracker.outputs.mail.transport import DryRunTransport, SmtpFactory, SmtpTransport, Transport
from tracker.settings import Settings
from tracker.store import Store
from tracker.store.deliveries import mark_failed, mark_sent, pending_messages, save_pending
from tracker.store.locks import EmailRunLock
from tracker.text import as_utc, plural, utcnow
from tracker.topics import Topic

log = logging.getLogger("tracker.mail")


@dataclass(frozen=True)
class MailResult:
    recipient: str
    message_id: str
    subject: str
    papers: tuple[int, ...]  # every paper the message carried (and the ledger records), its baseline's included
    path: Path | None = None
    sent: bool = False
    error: str | None = None
    events: tuple[int, ...] = ()  # the status events the message told
    size_refused: bool = False  # the server refused the message for its size
    new_papers: int = 0  # as the subject and the body count them
    baseline_papers: int = 0
    sender_notes: tuple[str, ...] = ()  # for the sender's console, never the body
    told_at: datetime | None = None  # nothing new, and a message reached the reader then, earlier this week

    def summary(self) -> str:
        if self.path is not None:
            return str(self.path)
        if self.error:
            return f"not sent to {self.recipient}: {self.error}"
        if self.told_at is not None:
            return (f"nothing sent to {self.recipient}: nothing new since the message of "
                    f"{self.told_at:%Y-%m-%d %H:%M} UTC (with nothing new, a reader hears so once a week)")
        return f"sent to {self.recipient}: {describe_carried(self)}, Message-ID {self.message_id}"


def describe_carried(result: MailResult) -> str:
    """"14 new papers and a baseline of 19,658", the subject's numbers; "no new papers (heartbeat)"."""
    parts = [plural(result.new_papers, "new paper")] if result.new_papers else []
    if result.baseline_papers:
        parts.append(f"a baseline of {result.baseline_papers:,}")
    if result.events:
        parts.append(f"{plural(len(result.events), 'update')} to papers sent before")
    return " and ".join(parts) if parts else "no new papers (heartbeat)"


def send_weekly_email(store: Store, settings: Settings, topics: Sequence[Topic], *, dry_run: bool = False,
                      only: str | None = None, now: datetime | None = None,
                      smtp_factory: SmtpFactory | None = None) -> list[MailResult]:
    """Mail every recipient (or only `only`) the papers they have not been sent; see the package docstring.

    `now` dates the mail (subject week, file names, a new reader's `since`) and bounds the papers to those
    first seen before it. `smtp_factory(settings)` returns a connected, logged-in `smtplib.SMTP`
    (default: `connect_smtp`). Failures are in the results, not raised; see `describe_failures`.
    """
    started = utcnow()
    now = as_utc(now) if now is not None else started
    transport = DryRunTransport(settings, now) if dry_run else SmtpTransport(settings, smtp_factory)
    audience = select_audience(settings, topics, only)
    if not transport.records:
        return mail_audience(store, settings, audience, transport, now=now, started=started)
    with EmailRunLock(store) as lock:
        return mail_audience(store, settings, audience, transport, now=now, started=started, heartbeat=lock.beat)


def mail_audience(store: Store, settings: Settings, audience: dict[str, tuple[Topic, ...]], transport: Transport, *,
                  now: datetime, started: datetime, heartbeat: Callable[[], object] = lambda: None) -> list[MailResult]:
    """One message to each recipient of `audience` through `transport`; `heartbeat` keeps the run lock."""
    report_possibly_sent(store, list(audience), before=started, mark=transport.records)
    results: list[MailResult] = []
    charts: dict[str, bytes] = {}
    try:
        limit = min(filter(None, (settings.mail_max_bytes, transport.size_limit())))
        for recipient, followed in audience.items():
            heartbeat()
            mailing = plan_mailing(store, recipient, followed, now=now, record=transport.records)
            told = already_told(store, mailing, now=now)
            if told is not None:
                results.append(MailResult(recipient, "", "", (), told_at=told))
                continue
            results.append(mail_one(store, transport, mailing, settings, now=now, charts=charts, limit=limit))
    finally:
        transport.close()
    return results


SMALLEST_TRY = 20_000  # bytes: below this a message refused for its size is not made smaller again


def mail_one(store: Store, transport: Transport, mailing: Mailing, settings: Settings, *, now: datetime,
             charts: dict[str, bytes], limit: int) -> MailResult:
    """Build and deliver one recipient's message under `limit` bytes. A server that still refuses it for its size
    gets it again at half that size, so a limit the server does not announce is found in the run itself, not by
    failing the same way every week."""
    while True:
        try:
            built = build_message(store, mailing, sender=transport.sender, now=now, chart_cache=charts,
                                  quiet_weeks=settings.quiet_weeks, max_bytes=limit, public_url=settings.web_public_url)
        except SendFailure as failure:
            return MailResult(mailing.recipient, "", "", mailing.pmids, error=failure.reason)
        result = deliver_once(store, transport, mailing, built)
        size = len(bytes(built.message))
        if not result.size_refused or size // 2 < SMALLEST_TRY:
            return result
        log.warning("the server refused %d bytes for %s; sending again within %d bytes", size, mailing.recipient,
                    size // 2)
        limit = size // 2


def deliver_once(store: Store, transport: Transport, mailing: Mailing, built: BuiltMessage) -> MailResult:
    """Outbox row, delivery, then the `sent` mark and the ledger in one transaction (see the module docstring).

    Through a transport that records nothing (a dry run) the message is only delivered.
    """
    message = built.message
    message_id, subject, recipient = message["Message-ID"], message["Subject"], mailing.recipient
    counted = replace(MailResult(recipient, message_id, subject, mailing.pmids, events=mailing.event_ids),
                      new_papers=built.new_papers, baseline_papers=built.baseline_papers,
                      sender_notes=built.sender_notes)
    if not transport.records:
        return replace(counted, path=transport.deliver(message, recipient))
    save_pending(store, message_id=message_id, recipient=recipient, subject=subject, pmids=mailing.pmids, now=utcnow())
    try:
        transport.deliver(message, recipient)
    except SendFailure as failure:
        mark_failed(store, message_id, failure.reason)
        log.debug("not sent to %s: %s", recipient, failure.reason)
        return MailResult(recipient, message_id, subject, mailing.pmids, error=failure.reason,
                          size_refused=failure.size_refused)
    mark_sent(store, message_id, recipient=recipient, topic_of=mailing.topic_of, now=utcnow(),
              event_ids=mailing.event_ids)
    return replace(counted, sent=True)


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


__all__ = ["MailResult", "describe_carried", "send_weekly_email", "mail_audience", "deliver_once", "report_possibly_sent",
           "describe_failures"]
