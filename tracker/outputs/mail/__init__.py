"""The weekly e-mail: one message per recipient with the papers they have not been sent yet.

Who gets what (tracker/outputs/mail/audience.py)
    A recipient follows the topics whose file lists them in `recipients = [...]`, and every topic when
    TRACKER_MAIL_TO lists them. Their mail covers every paper of those topics that the delivery ledger
    does not hold for them (a new reader: everything their topics stored, a baseline summed up in one
    line), and the status events on those papers not yet told to them.

The message (tracker/outputs/mail/message.py)
    A plain-text and an HTML part (inline-styled tables), one chart per topic as an inline image, and
    the papers as an attached CSV. A topic over its `max_per_digest` shows its strongest papers and says
    "N new, M shown"; a week with nothing new sends one heartbeat (not one per send); the body names no
    command or setting (the sender's console gets those) and links to `[web] public_url`; a failed run or
    an unhealthy query is shown in red. Subject: "Norepinephrine literature, week of <Monday>: 14 new papers in 4 topics".

Exactly once (tracker/outputs/mail/delivery.py)
    An outbox row is committed before SMTP sees the message, and the `sent` mark and the ledger rows are
    committed together right after the server accepts it. A failed send records nothing and the next
    run sends the same papers again; the one remaining window (a crash between the server's acceptance
    and that commit) is reported by the next run as "possibly sent" and its papers go out once more.
    One e-mail run at a time: the e-mail run lock stops a second one before it sends anything.

Sending and dry run (tracker/outputs/mail/transport.py)
    One SMTP connection per run (TRACKER_SMTP_*, TRACKER_MAIL_FROM), TLS verified, the password never
    shown. `dry_run=True` writes each message to reports/outbox/<date>-<address>.eml instead, needs no
    SMTP settings and records nothing. Which of the two a run uses is decided once, when
    `send_weekly_email` chooses its transport.
"""

from __future__ import annotations

from tracker.outputs.mail.audience import Mailing, followers, plan_mailing, select_audience
from tracker.outputs.mail.delivery import MailResult, describe_failures, send_weekly_email
from tracker.outputs.mail.message import MAIL_TITLE, build_message, csv_filename, make_subject, week_of
from tracker.outputs.mail.transport import connect_smtp, describe_smtp_error, eml_name, scrub

__all__ = [
    "MailResult", "Mailing", "MAIL_TITLE", "send_weekly_email", "build_message", "plan_mailing", "select_audience",
    "followers", "connect_smtp", "describe_failures", "describe_smtp_error", "make_subject", "week_of", "csv_filename",
    "eml_name", "scrub",
]
