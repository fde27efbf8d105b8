"""Typed errors the library raises; the CLI turns each into a one-line message and an exit code."""


class TrackerError(Exception):
    """Base class: its message is shown to the user as one line and says what to do next."""

    exit_code = 1


class ConfigError(TrackerError):
    """Bad settings, options or topic files: nothing was changed."""

    exit_code = 2


class TopicFileError(ConfigError):
    pass


class StoreError(TrackerError):
    """The database cannot be opened or is not one this version understands."""

    exit_code = 2


class EutilsError(TrackerError):
    """E-utilities failed after every retry, or answered with a permanent error."""

    exit_code = 1


class TransientEutilsError(EutilsError):
    """A failure worth retrying: rate limit, 5xx, timeout, truncated or in-band error."""


class ParseError(TrackerError):
    """A PubMed XML body could not be parsed."""


class IncompleteSearchError(EutilsError):
    """PubMed returned fewer PMIDs than its Count: the result would be silently truncated."""


class ShutdownRequested(BaseException):
    """Raised inside a running fetch, between two saved batches, when the process is asked to stop.

    A BaseException, so that sync_topic records the run as interrupted and re-raises it instead of
    reporting an ordinary failure.
    """
