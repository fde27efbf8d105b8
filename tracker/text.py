"""Small text helpers every layer shares: whole numbers and PMIDs read strictly, the links a paper has, times in
UTC, counts in words, cut text.

No imports beyond the standard library, so that any module may use them.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from urllib.parse import quote

PUBMED = "https://pubmed.ncbi.nlm.nih.gov"
PMC = "https://www.ncbi.nlm.nih.gov/pmc/articles"
# The largest PMID the store keeps: its pmid columns are SQL `integer` (4 bytes on PostgreSQL). PubMed's PMIDs
# are near 40 million in 2025, so this leaves room for centuries of them.
PMID_MAX = 2**31 - 1
INTEGER_MAX = 2**63 - 1  # SQLite's and PostgreSQL's largest bigint: anything larger cannot even be a parameter
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


# -- numbers -----------------------------------------------------------------------------------
# str.isdigit() and int() accept far more than a person types as a number: "²" is a digit to isdigit() (and then
# int() raises), "١٢" and "1_000" are numbers to int(), and a 30-digit number overflows every database integer.
# Every number read from text a person or another program wrote (options, forms, query strings, files, XML)
# goes through these.

def whole_number(text: str | None, *, low: int = 0, high: int = INTEGER_MAX) -> int | None:
    """`text` (spaces around it allowed) as a whole number from `low` to `high`, written in ASCII digits only
    (no sign, no "_", no other script's digits); None when it is anything else."""
    text = (text or "").strip()
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_pmid(text: str | None) -> int | None:
    """`text` as a PMID (1 to PMID_MAX in ASCII digits), or None."""
    return whole_number(text, low=1, high=PMID_MAX)


# -- links -------------------------------------------------------------------------------------

def pubmed_url(pmid: int) -> str:
    return f"{PUBMED}/{pmid}/"


def doi_url(doi: str | None) -> str | None:
    # Percent-encoded, so that the URL stays one token in HTML attributes and Markdown links.
    return f"https://doi.org/{quote(doi.strip(), safe='/:;._-')}" if doi and doi.strip() else None


def normal_pmcid(pmcid: str | None) -> str | None:
    """"PMC1234567" as PubMed Central writes it (a bare number gains its "PMC"); None for anything else."""
    value = (pmcid or "").strip().upper()
    if whole_number(value) is not None:
        value = "PMC" + value
    return value if re.fullmatch(r"PMC[0-9]+", value) else None


def pmc_url(pmcid: str | None) -> str | None:
    normal = normal_pmcid(pmcid)
    return f"{PMC}/{normal}/" if normal else None


# -- time --------------------------------------------------------------------------------------

def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime | date) -> datetime:
    """An aware UTC datetime; a date is midnight UTC, a naive datetime is taken as UTC (as the store keeps them)."""
    if not isinstance(moment, datetime):
        return datetime.combine(moment, time.min, timezone.utc)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def format_utc(moment: datetime | None) -> str:
    """ISO 8601 in UTC with a "Z", to the second ("2024-03-01T06:00:00Z"); a naive time is taken as UTC already."""
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "Z"  # strftime took 9 us a row


# -- words -------------------------------------------------------------------------------------

def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """"1 paper", "2 papers", "1,204 papers"; `nouns` where adding an s is wrong ("1 query", "2 queries")."""
    word = noun if count == 1 else (nouns or noun + "s")
    return f"{count:,} {word}"


def cut(text: str, width: int) -> str:
    """`text` in a table cell `width` wide: cut anywhere, "…" last (prose is cut at a word: `cut_at_word`)."""
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def cut_at_word(text: str, limit: int) -> str:
    """`text` in at most `limit` characters and "…", cut at a word boundary when one is in its second half."""
    if len(text) <= limit:
        return text
    shortened = text[:limit]
    if not text[limit].isspace() and " " in shortened[limit // 2:]:
        shortened = shortened[:shortened.rindex(" ")]
    return shortened.rstrip(" ,;:-–") + "…"


def format_relevance(score: float | None) -> float | None:
    """A relevance score as exports and listings show it: three decimals (None before the topic ranks)."""
    return None if score is None else round(score, 3)


__all__ = ["PMID_MAX", "INTEGER_MAX", "whole_number", "parse_pmid", "PUBMED", "pubmed_url", "doi_url", "normal_pmcid",
           "pmc_url", "utcnow", "as_utc", "format_utc", "plural", "cut", "cut_at_word", "format_relevance"]
