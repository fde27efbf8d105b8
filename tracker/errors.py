"""Every exception the tracker raises, in one place. The CLI turns each into one line and its `exit_code`.

    TrackerError (1)                  a message for the user: one line that says what to do next
    ├── ConfigError (2)               bad settings, options, topic files or input: nothing was changed
    │   ├── TopicFileError            a topic file that does not load (file and key named)
    │   └── SearchSyntaxError         search text that is not a query
    ├── OutputError (2)               a report, export or message file that cannot be written
    ├── StoreError (2)                the database cannot be opened, is not a tracker's, or needs a migration
    ├── DatabaseBusyError (1)         another writer kept the database locked past the wait allowed: nothing written
    ├── TimeLimitError (1)            a statement ran past its request's time limit and was stopped (the web app)
    ├── LockHeldError (2)             another live process holds the lock: nothing was started
    ├── LockLostError (1)             another process took this one's lock over: it stops at once
    ├── EutilsError (1)               E-utilities failed after every retry, or answered with a permanent error
    │   ├── TransientEutilsError      worth retrying: rate limit, 5xx, timeout, truncated or in-band error
    │   ├── UnreachableError          the first request of a run never reached E-utilities (DNS, refused, TLS)
    │   │   └── BlockedError          NCBI answered with its Blocked Diagnostic page: no request is worth retrying
    │   └── IncompleteSearchError     PubMed returned fewer PMIDs than its Count
    └── ParseError (1)                a PubMed XML body could not be parsed
    BaseException
    └── ShutdownRequested             the scheduler is stopping: a running fetch stops after its current batch

Two never reach the CLI: SendFailure (one message the SMTP server did not accept; the mail run records it
and goes on to the next reader) and StartTLSUnavailable (an smtplib.SMTPException, so that the transport
handles it as any other SMTP failure).

Exit codes: 0 success, 1 a run failed after retries (the other topics still ran), 2 a usage or configuration
error. An error re-raised with more context keeps its class, and so its exit code (`with_context`).
"""

from __future__ import annotations

import smtplib
from typing import TypeVar


class TrackerError(Exception):
    """Base class: its message is shown to the user as one line and says what to do next."""

    exit_code = 1


class ConfigError(TrackerError):
    """Bad settings, options or topic files: nothing was changed."""

    exit_code = 2


class TopicFileError(ConfigError):
    """A topic file that does not load; the message names the file and the key."""


class UnknownTopicError(ConfigError):
    """A topic asked for by name that no file in queries/ defines (faces word the advice their own way: `slug`)."""

    def __init__(self, message: str, *, slug: str):
        super().__init__(message)
        self.slug = slug


class SearchSyntaxError(ConfigError):
    """The search text is not a query: unbalanced parentheses or quotes, a stray operator, no words."""


class OutputError(TrackerError):
    """A file the command was asked to write (a digest, an export, a message) cannot be written; nothing was."""

    exit_code = 2


class StoreError(TrackerError):
    """The database cannot be opened, is not one this version understands, or needs `tracker db migrate`."""

    exit_code = 2


class DatabaseBusyError(TrackerError):
    """Another program (an import, a run, a migration) kept the database locked for the whole wait allowed;
    this write was not made."""


class TimeLimitError(TrackerError):
    """A database statement ran longer than the time limit of its request and was stopped (the web app's
    requests have one: tracker/store/limits.py)."""

    def __init__(self, message: str, *, seconds: float = 0.0):
        super().__init__(message)
        self.seconds = seconds


class LockHeldError(TrackerError):
    """Another live process holds the lock: nothing was started."""

    exit_code = 2


class LockLostError(TrackerError):
    """Another process took the lock over (this one looked dead to it): stop at once."""


class EutilsError(TrackerError):
    """E-utilities failed after every retry, or answered with a permanent error."""

    exit_code = 1


class TransientEutilsError(EutilsError):
    """A failure worth retrying: rate limit, 5xx, timeout, truncated or in-band error."""

    retry_after: float = 0.0  # seconds the server asked us to wait (HTTP 429 Retry-After)
    unreachable: str | None = None  # the connection never reached the host: why ("name resolution failed", ...)


class UnreachableError(EutilsError):
    """The first request of a run never reached E-utilities: the other topics would fail the same way.

    The message is the one line for the user (host, cause, what to check); `detail` is the last attempt's
    failure as the retries saw it.
    """

    reason = "E-utilities unreachable"  # why the topics after it are not tried

    def __init__(self, message: str, *, host: str = "", cause: str = "", detail: str = ""):
        super().__init__(message)
        self.host, self.cause, self.detail = host, cause, detail or message


class BlockedError(UnreachableError):
    """NCBI answered with its "Blocked Diagnostic" page: every further request would be blocked too, so the run
    stops at once (no retries) and the topics after it are not tried. The message says what to check."""

    reason = "NCBI blocked this machine's requests"


class IncompleteSearchError(EutilsError):
    """PubMed returned fewer PMIDs than its Count: the result would be silently truncated."""


class ParseError(TrackerError):
    """A PubMed XML body could not be parsed."""


class ShutdownRequested(BaseException):
    """Raised inside a running fetch, between two saved batches, when the process is asked to stop.

    A BaseException, so that a run records itself as interrupted and re-raises it instead of reporting an
    ordinary failure.
    """


class SendFailure(Exception):
    """One message was not accepted; `reason` is scrubbed of the password and fits in a line."""

    def __init__(self, reason: str, *, size_refused: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.size_refused = size_refused  # the server said the message is too large


class StartTLSUnavailable(smtplib.SMTPException):
    """The server does not offer STARTTLS while TRACKER_SMTP_SECURITY=starttls: never send in clear."""


Error = TypeVar("Error", bound=TrackerError)


def with_context(error: Error, message: str) -> Error:
    """`error`'s class (and exit code) with a new message, for re-raising it with what the caller adds."""
    return type(error)(message)


__all__ = [
    "TrackerError", "ConfigError", "TopicFileError", "UnknownTopicError", "SearchSyntaxError", "OutputError", "StoreError",
    "DatabaseBusyError", "TimeLimitError",
    "LockHeldError", "LockLostError", "EutilsError", "TransientEutilsError", "UnreachableError", "BlockedError",
    "IncompleteSearchError", "ParseError",
    "ShutdownRequested", "SendFailure", "StartTLSUnavailable", "with_context",
]
