"""How commands print: tables for people, the search hits as a table or JSON, progress bars on a terminal, and the
check that an output file's name matches its format."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tracker.ncbi.notices import describe_status, status_mark

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar as ClickProgressBar

    from tracker.store.search import SearchHit


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [headers, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


def echo_health(health: dict) -> None:
    """"health:" and the flags of the topics that have any, one line each."""
    click.echo("health:")
    for slug, flags in health.items():
        for flag in flags:
            click.echo(f"  {slug}: {flag}")


class ProgressBar:
    """A progress bar on stderr for long backfills, only when stderr is a terminal."""

    def __init__(self, label: str, threshold: int = 1000):
        self.label, self.threshold = label, threshold
        self.bar: ClickProgressBar[int] | None = None

    def __call__(self, advance: int, total: int) -> None:
        if self.bar is None:
            if total < self.threshold or not sys.stderr.isatty():
                return
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr, show_pos=True)
            self.bar.__enter__()
        self.bar.update(advance)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def check_output_format(output, fmt: str, suffixes: dict[str, str]) -> None:
    """A -o file named for one format while another is written (x.html with --format md) is a usage error."""
    path = Path(output)
    named = suffixes.get(path.suffix.lower())
    if named is not None and named != fmt:
        raise click.UsageError(f"-o {path.name} names a {named} file but the format is {fmt}: "
                               f"pass --format {named}, or name the file {path.stem}.{fmt}")


def echo_json(value) -> None:
    """`value` as indented JSON on stdout, text as it is (not escaped to ASCII)."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def echo_csv(header: Sequence[str], rows: Iterable[Sequence]) -> None:
    """`rows` under `header` as CSV on stdout (RFC 4180, UTF-8), each text cell guarded as the exports guard it."""
    from tracker.outputs.export import guarded, write_table

    write_table(header, (guarded(list(row)) for row in rows), sys.stdout.buffer)


# -- search hits ------------------------------------------------------------------------------

NARROWEST_TITLE = 30


def terminal_width() -> int | None:
    """The terminal's width when stdout is one; None when it is a pipe or a file (nothing is wrapped then)."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def hits_table(hits: Sequence[SearchHit], width: int | None = None) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for a terminal table: pmid, year, first author, title, topics. With `width` (a terminal's),
    a title longer than its column's share wraps onto the rows below it; a title is never cut."""
    headers = ["pmid", "year", "first author", "title", "topics"]
    cells = [[str(hit.pmid), str(hit.year or ""), hit.authors[0] if hit.authors else "", _marked_title(hit),
              ", ".join(hit.topics) or "-"] for hit in hits]
    if width is None:
        return headers, cells
    others = sum(max(len(header), *(len(row[index]) for row in cells)) + 2
                 for index, header in enumerate(headers) if index != 3)
    room = max(width - others - 1, NARROWEST_TITLE)
    rows: list[list[str]] = []
    for row in cells:
        lines = textwrap.wrap(row[3], room, break_on_hyphens=False) or [""]
        rows.append([*row[:3], lines[0], row[4]])
        rows.extend(["", "", "", line, ""] for line in lines[1:])
    return headers, rows


def hits_json(hits: Sequence[SearchHit]) -> list[dict]:
    return [
        {"pmid": hit.pmid, "title": hit.title, "authors": list(hit.authors), "journal": hit.journal,
         "year": hit.year, "doi": hit.doi, "topics": list(hit.topics), "score": hit.score,
         "pubmed_url": hit.pubmed_url, "status": describe_status(hit.status) or None}
        for hit in hits
    ]


def _marked_title(hit: SearchHit) -> str:
    mark = status_mark(hit.status)
    return f"[{mark}] {hit.title}" if mark else hit.title
