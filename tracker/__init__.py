"""Track PubMed topics into SQLite: incremental E-utilities sync, digests, e-mail, screening and export.

The command line (`tracker ...`) is the main door. For notebooks, `tracker.papers_frame(...)` returns a topic's
papers as a pandas DataFrame with the CSV export's columns (tracker/outputs/export.py).
"""

from tracker._version import __version__


def papers_frame(*args, **kwargs):
    """See tracker.outputs.export.papers_frame (imported on first use: the CLI's start-up stays light)."""
    from tracker.outputs.export import papers_frame as frame

    return frame(*args, **kwargs)


__all__ = ["__version__", "papers_frame"]
