"""Where a run's messages go: to the SMTP server, or, in a dry run, into files.

Both are a `Transport`, chosen once per run (tracker/outputs/mail/delivery.py): it names the sender, says whether
the run records its deliveries, and delivers one message at a time.

Sending
    TRACKER_SMTP_HOST, TRACKER_SMTP_PORT (default 587 for starttls, 465 for ssl, 25 for none),
    TRACKER_SMTP_SECURITY (starttls, the default; ssl; none), TRACKER_SMTP_USER and
    TRACKER_SMTP_PASSWORD (log in when set), TRACKER_MAIL_FROM (the sender). Certificates are verified
    against the system's trust store; with starttls, a server that does not offer STARTTLS is an error,
    never a reason to send in clear. One connection serves every recipient of a run. The password is
    never printed, logged, stored or written into a message: SMTP error texts are scrubbed of it.

Dry run
    Each message is written to reports/outbox/<date>-<address>.eml as it would go on the wire, replaced
    in one step and readable by its owner only. A dry run needs no SMTP settings (the sender defaults to
    tracker@localhost) and records nothing: no ledger rows, no outbox rows, no recipient rows.
"""

from __future__ import annotations

import base64
import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Protocol

from tracker import files
from tracker.errors import ConfigError, SendFailure, StartTLSUnavailable
from tracker.settings import Settings
from tracker.text import as_utc, whole_number

log = logging.getLogger("tracker.mail")

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DRY_RUN_SENDER = "tracker@localhost"

SmtpFactory = Callable[[Settings], smtplib.SMTP]


class Transport(Protocol):
    """Where messages go. `sender` is their From header; `records` says whether the run records what it
    delivers (a new reader's `since`, the outbox, the ledgers), and so holds the e-mail run lock."""

    sender: str
    records: bool

    def size_limit(self) -> int | None:
        """The largest message the other side takes, when it says; None when it sets none."""

    def deliver(self, message: EmailMessage, recipient: str) -> Path | None:
        """Hand `message` over for `recipient`; a dry run returns the file it wrote.

        Raises SendFailure when the message was not accepted.
        """

    def close(self) -> None:
        ...


class SmtpTransport:
    """One SMTP connection for a run, opened at the first message and reopened after a broken one.

    A failure to open it at all is remembered: the other recipients fail with the same reason at once
    instead of each waiting for the same timeout. `factory(settings)` returns a connected, logged-in
    `smtplib.SMTP` (default: `connect_smtp`).
    """

    records = True

    def __init__(self, settings: Settings, factory: SmtpFactory | None = None):
        check_smtp(settings)
        self.sender = check_sender(settings)
        self.envelope_sender = parseaddr(self.sender)[1]
        self.settings, self.factory = settings, factory or connect_smtp
        self.smtp: smtplib.SMTP | None = None
        self.open_error: str | None = None

    def size_limit(self) -> int | None:
        """The largest message the server takes, when it says (ESMTP SIZE); None if it does not or is unreachable
        (delivering then says why)."""
        try:
            smtp = self._connected()
        except SendFailure:
            return None
        return whole_number(smtp.esmtp_features.get("size"), low=1)

    def _connected(self) -> smtplib.SMTP:
        if self.open_error is not None:
            raise SendFailure(self.open_error)
        if self.smtp is None:
            try:
                self.smtp = self.factory(self.settings)
            except (smtplib.SMTPException, OSError) as error:
                self.open_error = describe_smtp_error(error, self.settings)
                raise SendFailure(self.open_error) from None
        return self.smtp

    def deliver(self, message: EmailMessage, recipient: str) -> None:
        smtp = self._connected()
        try:
            refused = smtp.send_message(message, from_addr=self.envelope_sender, to_addrs=[recipient])
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            # smtplib has reset the transaction: the connection can carry the next recipient's message.
            raise SendFailure(describe_smtp_error(error, self.settings), size_refused=size_refusal(error)) from None
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


class DryRunTransport:
    """Each message written to reports/outbox/<date of `now`>-<address>.eml; nothing is sent or recorded."""

    records = False

    def __init__(self, settings: Settings, now: datetime):
        self.sender = check_sender(settings, default=DRY_RUN_SENDER)
        self.outbox, self.now = settings.reports_dir / "outbox", now

    def size_limit(self) -> int | None:
        return None

    def deliver(self, message: EmailMessage, recipient: str) -> Path:
        return write_eml(self.outbox / eml_name(recipient, self.now), message)

    def close(self) -> None:
        pass


# -- the settings -----------------------------------------------------------------------------

def check_smtp(settings: Settings) -> None:
    if not settings.smtp_host:
        raise ConfigError("no SMTP server configured: set TRACKER_SMTP_HOST (or use --dry-run)")
    if settings.smtp_user and not settings.smtp_password:
        raise ConfigError("TRACKER_SMTP_USER is set but TRACKER_SMTP_PASSWORD is not: set both to log in, or neither")
    if settings.smtp_password and not settings.smtp_user:
        raise ConfigError("TRACKER_SMTP_PASSWORD is set but TRACKER_SMTP_USER is not: set both to log in, or neither")


def check_sender(settings: Settings, *, default: str | None = None) -> str:
    """The From header to use (TRACKER_MAIL_FROM, else `default`); its bare address is the envelope sender."""
    if not settings.mail_from:
        if default is not None:
            return default
        raise ConfigError("no sender: set TRACKER_MAIL_FROM")
    name, address = parseaddr(settings.mail_from)
    if "@" not in address or not address.rpartition("@")[2] or any(c.isspace() for c in address):
        raise ConfigError(f"TRACKER_MAIL_FROM={settings.mail_from!r} is not an e-mail address: "
                          "set it to one such as tracker@example.org")
    return formataddr((name, address)) if name else address


# -- SMTP -------------------------------------------------------------------------------------

def smtp_port(settings: Settings) -> int:
    return settings.smtp_port or DEFAULT_PORTS[settings.smtp_security]


def connect_smtp(settings: Settings, *, context: ssl.SSLContext | None = None) -> smtplib.SMTP:
    """An SMTP connection ready to send: TLS as configured (certificates verified), logged in if configured.

    `context` replaces the system trust store, for a server with a private CA.
    """
    host, port, security = settings.smtp_host, smtp_port(settings), settings.smtp_security
    context = context or ssl.create_default_context()
    log.debug("connecting to %s:%d (%s)", host, port, security)
    if not host:
        raise ConfigError("no SMTP server configured: set TRACKER_SMTP_HOST (or use --dry-run)")
    smtp: smtplib.SMTP
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
    elif isinstance(error, smtplib.SMTPResponseException) and size_refusal(error):
        reason = (f"SMTP {error.smtp_code} {_decode(error.smtp_error)}; the server refused the message for its size: "
                  f"lower TRACKER_MAIL_MAX_BYTES (now {settings.mail_max_bytes:,}) or max_per_digest in the topic files")
    elif isinstance(error, smtplib.SMTPResponseException):
        reason = f"SMTP {error.smtp_code} {_decode(error.smtp_error)}"
    elif isinstance(error, smtplib.SMTPNotSupportedError) and "AUTH" in str(error):
        before = " before STARTTLS" if settings.smtp_security == "none" else ""
        reason = (f"the SMTP server at {where} does not offer a login (AUTH){before}: "
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


def size_refusal(error: BaseException) -> bool:
    """Whether the server refused a message for its size (RFC 5321's 552, or a 5xx that says so)."""
    if not isinstance(error, smtplib.SMTPResponseException):
        return False
    text = _decode(error.smtp_error).lower()
    return error.smtp_code == 552 or (500 <= error.smtp_code < 600 and ("size" in text or "too much" in text
                                                                        or "too large" in text))


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


# -- dry-run files ----------------------------------------------------------------------------

def eml_name(recipient: str, now: datetime) -> str:
    safe = re.sub(r"[^a-z0-9._+-]", "_", recipient.lower().replace("@", "_at_"))
    return f"{as_utc(now).date().isoformat()}-{safe}.eml"


def write_eml(path: Path, message: EmailMessage) -> Path:
    """Write the message as it would go on the wire, replacing the file in one step, readable by the owner only."""
    return files.write_output(path, bytes(message), advice=files.home_advice(path.parent), mode=0o600,
                              make_parents=True)


__all__ = [
    "Transport", "SmtpTransport", "DryRunTransport", "SendFailure", "SmtpFactory", "connect_smtp", "describe_smtp_error",
    "scrub", "check_smtp", "check_sender", "smtp_port", "eml_name", "write_eml",
]
