"""The command line: options in, library calls, one-line errors out. No logic lives only here.

base.py holds the group and what every command shares, output.py how commands print; each other module holds one
family of commands (topics, fetching, reading, doses, screening, suggest, mail, schedule, database, web), registered
on the group when this package is imported.
"""

from tracker.cli import (  # noqa: F401  (registers the commands)
    database,
    doses,
    fetching,
    mail,
    reading,
    schedule,
    screening,
    suggest,
    topics,
    web,
)
from tracker.cli.base import cli, main

__all__ = ["cli", "main"]
