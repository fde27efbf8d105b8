"""Full-text search of stored papers: SQLite FTS5 ranked by bm25, a plain LIKE match on other back ends.

On SQLite the text goes to FTS5 almost as typed: plain words (all must match; the porter stemmer
lets "doses" find "dose"), "quoted phrases", AND/OR/NOT, parentheses, prefix* terms and column
filters such as title:bolus. A word FTS5 would misread as syntax ("beta-blocker", "Crohn's") is
searched as the phrase it spells.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, text
from sqlalchemy.exc import OperationalError

from tracker.errors import ConfigError
from tracker.notices import describe_status, status_mark
from tracker.pubmed import Author
from tracker.store.database import FTS_COLUMNS, Store
from tracker.store.models import PaperRow, TopicPaper

# bm25 weights in FTS_COLUMNS order (title, abstract, mesh, keywords, authors): a title hit counts most.
WEIGHTS = {"title": 10.0, "abstract": 1.0, "mesh": 3.0, "keywords": 3.0, "authors": 1.0}
SYNTAX_HINT = 'use plain words, "quoted phrases", AND/OR/NOT, and prefix* terms'
TITLE_WIDTH = 70

_paper = PaperRow.__table__
_membership = TopicPaper.__table__
_TOKEN = re.compile(r'"[^"]*"\*?|"[^"]*$|[()]|[^\s()"]+(?:"[^"]*"?)?')
_OPERATORS = {"AND", "OR", "NOT", "NEAR"}
_BAREWORD = re.compile(r"^\w+\*?$")
_WORD = re.compile(r"\w")
_SQLITE_SYNTAX_ERRORS = ("fts5:", "unterminated string", "no such column", "unknown special query")


class SearchSyntaxError(ConfigError):
    """The search text is not a query FTS5 can run."""


@dataclass(frozen=True)
class SearchHit:
    pmid: int
    score: float | None  # higher is better (negated bm25); None from the LIKE fallback
    title: str
    authors: tuple[str, ...]
    journal: str | None
    year: int | None
    doi: str | None
    topics: tuple[str, ...]
    status: str | None = None  # retracted, concern, deleted (tracker/notices.py)

    @property
    def pubmed_url(self) -> str:
        return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/"


def search_papers(store: Store, query: str, *, topic: str | None = None, limit: int = 20) -> list[SearchHit]:
    """The best `limit` stored papers for `query`, best first, optionally only `topic`'s."""
    if limit < 1:
        raise ConfigError(f"limit must be at least 1, not {limit}")
    if not query.strip():
        raise SearchSyntaxError("nothing to search for: give some words, for example 'norepinephrine bolus'")
    if store.dialect == "sqlite":
        ranked = _rank_fts(store, query, topic, limit)
    else:
        ranked = _rank_like(store, query, topic, limit)
    return _hits(store, ranked)


def fts_query(query: str) -> str:
    """`query` with each word FTS5 would misread as syntax quoted into the phrase it spells."""
    parts = []
    for token in _TOKEN.findall(query):
        if token in _OPERATORS or token in ("(", ")") or _BAREWORD.match(token) or any(c in token for c in ':{}^"'):
            parts.append(token)
        elif _WORD.search(token):
            parts.append(f'"{token}"')
    return " ".join(parts)


def _rank_fts(store: Store, query: str, topic: str | None, limit: int) -> list[tuple[int, float | None]]:
    ranking = "bm25(" + ", ".join(str(WEIGHTS[column]) for column in FTS_COLUMNS) + ")"
    join = ("JOIN topic_paper ON topic_paper.pmid = paper_fts.rowid AND topic_paper.topic = :topic "
            if topic else "")
    statement = text(
        "SELECT paper_fts.rowid, paper_fts.rank FROM paper_fts " + join
        + "WHERE paper_fts MATCH :query AND paper_fts.rank MATCH :ranking ORDER BY paper_fts.rank LIMIT :limit"
    )
    match = fts_query(query)
    if not match:
        raise SearchSyntaxError(f"invalid search syntax ({' '.join(query.split())}): {SYNTAX_HINT}")
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(statement, {"query": match, "ranking": ranking,
                                                  "topic": topic, "limit": limit}).all()
    except OperationalError as error:
        detail = str(error.orig)
        if detail.startswith(_SQLITE_SYNTAX_ERRORS):
            raise SearchSyntaxError(f"invalid search syntax ({' '.join(query.split())}): {SYNTAX_HINT}") from None
        raise
    return [(pmid, -rank) for pmid, rank in rows]


def _rank_like(store: Store, query: str, topic: str | None, limit: int) -> list[tuple[int, float | None]]:
    """Every word in the title or abstract, newest first: no ranking, but it runs anywhere."""
    words = [word for word in re.findall(r"\w+", query) if word not in _OPERATORS]
    if not words:
        raise SearchSyntaxError(f"invalid search syntax ({' '.join(query.split())}): {SYNTAX_HINT}")
    conditions = []
    for word in words:
        pattern = "%" + word.replace("\\", "\\\\").replace("_", "\\_") + "%"
        conditions.append(or_(_paper.c.title.ilike(pattern, escape="\\"), _paper.c.abstract.ilike(pattern, escape="\\")))
    statement = select(_paper.c.pmid).where(and_(*conditions))
    if topic:
        statement = statement.join(_membership, and_(_membership.c.pmid == _paper.c.pmid, _membership.c.topic == topic))
    statement = statement.order_by(_paper.c.create_date.desc().nulls_last(), _paper.c.pmid.desc()).limit(limit)
    with store.engine.connect() as connection:
        return [(pmid, None) for pmid in connection.execute(statement).scalars()]


def _hits(store: Store, ranked: Sequence[tuple[int, float | None]]) -> list[SearchHit]:
    if not ranked:
        return []
    pmids = [pmid for pmid, _score in ranked]
    columns = (_paper.c.pmid, _paper.c.title, _paper.c.authors, _paper.c.journal, _paper.c.pub_year, _paper.c.doi,
               _paper.c.status)
    with store.engine.connect() as connection:
        rows = {row.pmid: row for row in connection.execute(select(*columns).where(_paper.c.pmid.in_(pmids)))}
        topics: dict[int, list[str]] = {}
        memberships = select(_membership.c.pmid, _membership.c.topic).where(_membership.c.pmid.in_(pmids))
        for pmid, slug in connection.execute(memberships.order_by(_membership.c.topic)):
            topics.setdefault(pmid, []).append(slug)
    return [
        SearchHit(pmid=pmid, score=score, title=rows[pmid].title,
                  authors=tuple(_display(author) for author in rows[pmid].authors), journal=rows[pmid].journal,
                  year=rows[pmid].pub_year, doi=rows[pmid].doi, topics=tuple(topics.get(pmid, ())),
                  status=rows[pmid].status)
        for pmid, score in ranked if pmid in rows
    ]


def _display(author: dict) -> str:
    return Author(last_name=author.get("last_name"), initials=author.get("initials"),
                  collective_name=author.get("collective_name")).display


def hits_table(hits: Sequence[SearchHit]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for a terminal table: pmid, year, first author, title cut to TITLE_WIDTH, topics."""
    rows = [[str(hit.pmid), str(hit.year or ""), hit.authors[0] if hit.authors else "", _marked_title(hit),
             ", ".join(hit.topics) or "-"] for hit in hits]
    return ["pmid", "year", "first author", "title", "topics"], rows


def hits_json(hits: Sequence[SearchHit]) -> str:
    return json.dumps([
        {"pmid": hit.pmid, "title": hit.title, "authors": list(hit.authors), "journal": hit.journal,
         "year": hit.year, "doi": hit.doi, "topics": list(hit.topics), "score": hit.score,
         "pubmed_url": hit.pubmed_url, "status": describe_status(hit.status) or None}
        for hit in hits
    ], ensure_ascii=False, indent=2)


def _marked_title(hit: SearchHit) -> str:
    mark = status_mark(hit.status)
    return shorten(f"[{mark}] {hit.title}" if mark else hit.title)


def shorten(title: str, width: int = TITLE_WIDTH) -> str:
    return title if len(title) <= width else title[:width - 1].rstrip() + "…"


__all__ = ["SearchHit", "SearchSyntaxError", "search_papers", "fts_query", "hits_table", "hits_json", "shorten"]
