"""Rendering: the Jinja environments of every template (digests and the e-mail) and the text helpers they use.

One environment per output kind, chosen by the template's name: `*.html.j2` autoescapes, `*.md.j2`
escapes every printed value as literal Markdown (no record text can form a link, emphasis, an autolink
or HTML), `*.txt.j2` prints values as they are. In all three a printed value first loses its control and
bidi-override characters and has its whitespace collapsed (`plain`). `Literal` marks text already written
in the output format (a fenced block, a wrapped paragraph, a URL), which Markdown and plain text print
unchanged; HTML's counterpart is markupsafe's `Markup`.

Every template gets the filters `wrap`, `code_block` and `literal` and the globals `moment` and `plural`; the caller
passes the rest of its context (the digest's phrases are in tracker/outputs/digest.py).
"""

from __future__ import annotations

import functools
import re
import textwrap
from datetime import datetime

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from tracker.text import as_utc, plural

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
# Each character that can start Markdown syntax (CommonMark and GitHub's extensions) wherever it stands; the others
# are escaped only where they can (see escape_markdown), so that a digest file read as text has few backslashes.
_MARKDOWN_ALWAYS = re.compile(r"([\\`*\[\]<>~|])")
_EDGE_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_ENTITY = re.compile(r"&(?=#[0-9]+;|#[xX][0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]*;)")
# What makes a line a list item, a heading or a rule when a value starts it (its first character is escaped).
_LINE_START = re.compile(r"^(?:[-+]|#{1,6}|[0-9]{1,9}[.)])(?=\s|$)|^[-=]+\s*$")
_KINDS = {".html.j2": "html", ".md.j2": "md", ".txt.j2": "text"}


class Literal(str):
    """Text already written in the output format: the Markdown and text templates print it as it is."""


# -- text helpers -----------------------------------------------------------------------------

def plain(text) -> str:
    """Record text made safe to show: control and bidi-override characters dropped, whitespace collapsed."""
    return " ".join(_CONTROL.sub(" ", str(text)).split())


def wrap(text, width: int = 76, indent: int = 4) -> Literal:
    return Literal(textwrap.fill(plain(text), width=width, initial_indent=" " * indent,
                                 subsequent_indent=" " * indent, break_long_words=False, break_on_hyphens=False))


def escape_markdown(text) -> str:
    """`text` as literal Markdown: no emphasis, code, links, autolinks, HTML, entities, headings or lists can form
    from it, wherever the template puts it (a line's start included).

    Only what can start syntax is escaped: backslashes, backticks, `*`, `[`, `]`, `<`, `>`, `~`, `|` everywhere;
    `_` unless inside a word (CommonMark never makes emphasis there); `&` before what reads as an entity; the
    "://" and "www." GitHub links; and at the start, what would make the line a list item ("- ", "+ ", "1. "), a
    heading ("# ") or a rule ("---"). Parentheses need nothing: only after a `]`, which is escaped, do they make a
    link. GitHub links an e-mail address whatever is escaped in it (cmark-gfm
    finds them after unescaping), so `@` is left alone: such a link shows the address it goes to.
    """
    escaped = _MARKDOWN_ALWAYS.sub(r"\\\1", plain(text))
    escaped = _EDGE_UNDERSCORE.sub(r"\\_", escaped)
    escaped = _ENTITY.sub(r"\\&", escaped)
    escaped = re.sub(r":(?=//)", r"\\:", escaped)
    escaped = re.sub(r"(?i)\b(www)\.", r"\1\\.", escaped)
    start = _LINE_START.match(escaped)
    if start:  # "1." is escaped at its punctuation, the others at their first character
        at = start.end() - 1 if escaped[:1].isdigit() else 0
        return escaped[:at] + "\\" + escaped[at:]
    return escaped


def markdown_code_block(text) -> Literal:
    """A fenced block that no backticks inside `text` can close early."""
    runs = [len(run) for run in re.findall(r"`+", str(text))]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return Literal(f"{fence}text\n{plain(text)}\n{fence}")


def moment(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


# -- templates --------------------------------------------------------------------------------

def render(template: str, **context) -> str:
    """The template (tracker/outputs/templates/`template`) rendered in the environment its name ends in."""
    kind = next((kind for suffix, kind in _KINDS.items() if template.endswith(suffix)), None)
    if kind is None:
        raise ValueError(f"{template!r} does not end in {', '.join(_KINDS)}")
    return _environment(kind).get_template(template).render(**context)


def _finalize_html(value):
    return value if isinstance(value, Markup) or not isinstance(value, str) else plain(value)


def _finalize_markdown(value):
    return value if isinstance(value, Literal) else escape_markdown(value)


def _finalize_text(value):
    return value if isinstance(value, Literal) else plain(value)


@functools.cache
def _environment(kind: str) -> Environment:
    environment = Environment(
        loader=PackageLoader("tracker.outputs", "templates"),
        autoescape=kind == "html",
        finalize={"html": _finalize_html, "md": _finalize_markdown, "text": _finalize_text}[kind],
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    environment.filters.update(wrap=wrap, code_block=markdown_code_block, literal=Literal)
    environment.globals.update(moment=moment, plural=plural)
    return environment


__all__ = [
    "Literal", "plain", "wrap", "escape_markdown", "markdown_code_block", "moment",
    "render",
]
