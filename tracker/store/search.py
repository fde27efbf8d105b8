"""Full-text search of stored papers: SQLite FTS5 ranked by bm25, PostgreSQL tsvector ranked by ts_rank_cd,
a plain LIKE match on other back ends. A query of joined terms is ranked from each term's best papers, kept per
generation of the index, rather than by scoring every match ("many matches" below).

One query language on both: plain words (all must match; stemming lets "doses" find "dose"),
"quoted phrases", AND/OR/NOT (NOT binds tighter than AND, AND tighter than OR, adjacent terms
tighter still), parentheses, prefix* terms and column filters such as title:bolus. A word FTS5 would
misread as syntax ("beta-blocker", "Crohn's") is searched as the phrase it spells.

On SQLite the text goes to FTS5 almost as typed (`fts_query`). On PostgreSQL a small parser turns it
into a tsquery built from bound parameters (`_rank_postgres`). There, English stop words ("the",
"of") are ignored (a query of nothing else finds nothing), mesh: and keywords: share one weight so
each also matches the other, a ^first-token anchor is ignored, NEAR(...) is matched as AND, "covid 19"
misses COVID-19 (which PostgreSQL reads as covid, -19; "COVID-19" finds both), and a parenthesised
group may stand next to a term (FTS5 wants an explicit AND there).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from sqlalchemy import and_, bindparam, func, or_, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from tracker.errors import ConfigError, SearchSyntaxError
from tracker.ncbi.pubmed import Author
from tracker.store.database import Store
from tracker.store.models import PaperRow, TopicPaper
from tracker.store.schema import FTS_COLUMNS, SEARCH_LISTS, search_changes
from tracker.text import pubmed_url

# bm25 weights in FTS_COLUMNS order (title, abstract, mesh, keywords, authors): a title hit counts most.
WEIGHTS = {"title": 10.0, "abstract": 1.0, "mesh": 3.0, "keywords": 3.0, "authors": 1.0}
SYNTAX_HINT = 'use plain words, "quoted phrases", AND/OR/NOT, and prefix* terms'

_paper = PaperRow.__table__
_membership = TopicPaper.__table__
_TOKEN = re.compile(r'"[^"]*"\*?|"[^"]*$|[()]|[^\s()"]+(?:"[^"]*"?)?')
_OPERATORS = {"AND", "OR", "NOT", "NEAR"}
_BAREWORD = re.compile(r"^\w+\*?$")
_WORD = re.compile(r"\w")
_WORDS = re.compile(r"\w+")
RANKING = "bm25(" + ", ".join(str(WEIGHTS[column]) for column in FTS_COLUMNS) + ")"
_SQLITE_SYNTAX_ERRORS = ("fts5:", "unterminated string", "no such column", "unknown special query")
_FILTERED_SPELLING = re.compile(r'(-?\{?\w+\}?:)([^":{}^]*\w[^":{}^]*)')  # title:beta-blocker

# PostgreSQL: tsvector weights per column (tracker/store/papers.py writes the document this way) and
# ts_rank_cd's weight array, {D, C, B, A}, scaled from the bm25 weights so that a title hit counts most.
COLUMN_WEIGHTS = {"title": "A", "mesh": "B", "keywords": "B", "abstract": "C", "authors": "D"}
RANK_WEIGHTS = [WEIGHTS[column] / WEIGHTS["title"] for column in ("authors", "abstract", "mesh", "title")]
RANK_NORMALIZATION = 1  # divide by 1 + log(document length), as bm25 favours the shorter of two equal hits
MAX_TERMS = 1000
_ALL_WEIGHTS = frozenset("ABCD")
_COLUMN_SPEC = re.compile(r"(-?)(?:(\w+)|\{([^{}]*)\})")
_COLUMN_NAME = re.compile(r"-?\{?\w+\}?")


@dataclass(frozen=True)
class SearchHit:
    pmid: int
    score: float | None  # higher is better (negated bm25, or ts_rank_cd); None from the LIKE fallback
    title: str
    authors: tuple[str, ...]
    journal: str | None
    year: int | None
    doi: str | None
    topics: tuple[str, ...]
    status: str | None = None  # retracted, concern, deleted (tracker/ncbi/notices.py)

    @property
    def pubmed_url(self) -> str:
        return pubmed_url(self.pmid)


# What one search may ask for. A prefix term walks every indexed word it starts (FTS5 has no prefix index here):
# "a*" costs 85 ms on 10,000 papers, about 8 s on a million, and "a* " typed 100 times took 13 s on 10,000 papers.
# PubMed itself wants four letters before a truncation; three keep "nor*" and "vaso*" usable.
MAX_SEARCH_CHARACTERS = 500
MAX_SEARCH_WORDS = 40
MAX_PREFIX_TERMS = 5
MIN_PREFIX_LETTERS = 3
_FILTER_PREFIX = re.compile(r"^-?(?:\w+|\{[^{}]*\})\s*:")


def check_search_text(query: str) -> None:
    """Refuse, in words that say what to change, search text whose cost would have no useful bound: too long, too
    many words, too many prefix* terms, or a prefix too short to narrow anything."""
    length = len(query)
    if length > MAX_SEARCH_CHARACTERS:
        raise SearchSyntaxError(f"the search is {length:,} characters long and at most {MAX_SEARCH_CHARACTERS} are "
                                "searched: keep the words that matter")
    words = prefixes = 0
    for token in _TOKEN.findall(query):
        if token in _OPERATORS or token in ("(", ")"):
            continue
        term = _FILTER_PREFIX.sub("", token)
        words += len(_WORDS.findall(term))
        if term.endswith("*"):
            prefixes += 1
            stem = _WORDS.findall(term)
            if not stem or len(stem[-1]) < MIN_PREFIX_LETTERS:
                raise SearchSyntaxError(f"the prefix term {token!r} is too short: write at least {MIN_PREFIX_LETTERS} "
                                        "letters before the *, such as vaso*")
    if words > MAX_SEARCH_WORDS:
        raise SearchSyntaxError(f"the search has {words} words and at most {MAX_SEARCH_WORDS} are searched together: "
                                "leave some out")
    if prefixes > MAX_PREFIX_TERMS:
        raise SearchSyntaxError(f"the search has {prefixes} prefix* terms and at most {MAX_PREFIX_TERMS} are searched "
                                "together (each one reads every stored word it starts): write more of the words out")


def search_papers(store: Store, query: str, *, topic: str | None = None, limit: int = 20) -> list[SearchHit]:
    """The best `limit` stored papers for `query`, best first, optionally only `topic`'s."""
    return _hits(store, _ranked(store, query, topic, limit))


def search_pmids(store: Store, query: str, *, topic: str | None = None, limit: int = 20) -> list[int]:
    """The PMIDs `search_papers` finds, in its order, without reading the papers: a topic page searched within
    lists its matches in the page's own order (reading 500 papers' rows for nothing cost more than the ranking on
    a 37,500-paper store)."""
    return [pmid for pmid, _score in _ranked(store, query, topic, limit)]


def _ranked(store: Store, query: str, topic: str | None, limit: int) -> list[tuple[int, float | None]]:
    check_search_text(query)
    if limit < 1:
        raise ConfigError(f"limit must be at least 1, not {limit}")
    if not query.strip():
        raise SearchSyntaxError("nothing to search for: give some words, for example 'norepinephrine bolus'")
    if store.dialect == "sqlite":
        ranked = _rank_fts(store, query, topic, limit)
    elif store.dialect == "postgresql":
        ranked = _rank_postgres(store, query, topic, limit)
    else:
        ranked = _rank_like(store, query, topic, limit)
    return ranked


def fts_query(query: str) -> str:
    """`query` with each word FTS5 would misread as syntax quoted into the phrase it spells."""
    parts = []
    for token in _TOKEN.findall(query):
        filtered = _FILTERED_SPELLING.fullmatch(token)
        if filtered and not _BAREWORD.match(filtered[2]):
            parts.append(f'{filtered[1]}"{filtered[2]}"')
        elif token in _OPERATORS or token in ("(", ")") or _BAREWORD.match(token) or any(c in token for c in ':{}^"'):
            parts.append(token)
        elif _WORD.search(token):
            parts.append(f'"{token}"')
    return " ".join(parts)


def _rank_fts(store: Store, query: str, topic: str | None, limit: int, *,
              champions: bool = True) -> list[tuple[int, float | None]]:
    """The best `limit` matches by bm25, from champion lists where they can answer (`champions`, see below)."""
    match = fts_query(query)
    if not match:
        raise _syntax_error(query)
    try:
        leaves = _conjunction(match) if champions else None
        if leaves:
            found = _rank_by_lists(store, _SqliteLists(topic, match), leaves, limit)
            if found is not None:
                return [(pmid, score) for pmid, score in found]
        return [(pmid, score) for pmid, score in _bm25(store, match, topic, limit)]
    except OperationalError as error:
        detail = str(error.orig)
        if detail.startswith(_SQLITE_SYNTAX_ERRORS):
            raise _syntax_error(query) from None
        raise


def _bm25(store: Store, match: str, topic: str | None, limit: int, connection=None) -> list[tuple[int, float]]:
    """The exhaustive ranking: bm25 of every match (as a score, higher is better), ties broken newest PMID first."""
    join = ("JOIN topic_paper ON topic_paper.pmid = paper_fts.rowid AND topic_paper.topic = :topic "
            if topic else "")
    statement = text(
        "SELECT paper_fts.rowid, paper_fts.rank FROM paper_fts " + join
        + "WHERE paper_fts MATCH :query AND paper_fts.rank MATCH :ranking "
        "ORDER BY paper_fts.rank, paper_fts.rowid DESC LIMIT :limit"
    )
    values = {"query": match, "ranking": RANKING, "topic": topic, "limit": limit}
    if connection is not None:
        return [(pmid, -rank) for pmid, rank in connection.execute(statement, values)]
    with store.engine.connect() as connection:
        return [(pmid, -rank) for pmid, rank in connection.execute(statement, values)]


# -- many matches: each term's best papers ------------------------------------------------------------------
# Ranking every match is what costs: FTS5's bm25 reads each match's token counts (3-20 us a match on a million
# papers) and PostgreSQL's ts_rank_cd each match's TOASTed document (more), so a word in a seventh of a million
# papers took half a second to seconds. A query that only joins terms (words, phrases, prefixes, column filters:
# the usual shape) is answered instead from each term's "champion list" (Manning, Raghavan and Schuetze,
# Introduction to Information Retrieval, 7.1.3): its best papers by the ranking of that term alone, kept in
# paper_fts_best for the generation of the index (and of the memberships) it was ranked in.
#   * One term: its list is the exhaustive ranking's top, the same papers with the same scores.
#   * Several: the papers in every term's list. On SQLite, bm25 of several phrases is the sum of each one's, so
#     their scores are exact, and the lists' first and last scores bound what any other paper can score: the
#     answer is given only where that proves it the exhaustive ranking's (_SqliteLists.combine). PostgreSQL ranks
#     them again with ts_rank_cd of the whole query, which is no sum and has no such bound: a paper below one
#     term's list is not considered there (BENCHMARKS.md, search: overlap@20 with the exhaustive ranking).
#   * On SQLite, fewer than `limit` papers in every list or no proof: the lists are ranked again 4 and then 16
#     times deeper (at most 16,000 papers), once: they are kept.
#   * Still neither, or a term whose list holds all its matches (so the query has few): the exhaustive ranking.
#   * The answer to several terms, however found, is kept for those terms and that limit until the next change:
#     a topic page searched within asks the same search again for each page, order and filter it shows, and on
#     PostgreSQL ranking a topic's matches reads every match in the whole store first (GIN bitmap, then each
#     row) before it keeps the topic's: 110-130 ms for a search on a million papers (BENCHMARKS.md).
#   * Any other shape (OR, NOT, NEAR, groups): the exhaustive ranking.
# A list is ranked the first time its term is asked in a generation, as the exhaustive ranking of that term costs,
# by a store that may write; a read-only store (`tracker search`) uses the lists it finds or ranks exhaustively.

LIST_DEPTH = 1000  # a term's list holds its best max(LIST_DEPTH, LIST_FACTOR * limit) papers,
LIST_FACTOR = 4
LIST_DEEPER = 4  # and on SQLite up to twice LIST_DEEPER times more (at most LIST_DEPTH_MOST) where they prove nothing
LIST_DEPTH_MOST = 16_000
_LIST_WRITE_WAIT_MS = 200  # a list is a cache: a search does not queue behind a writer to keep one


@dataclass(frozen=True)
class _List:
    entries: list[tuple[int, float]]  # (pmid, score), best first, ties newest PMID first
    complete: bool  # every match of the term is in it


def _rank_by_lists(store: Store, lists, leaves: list, limit: int) -> list[tuple[int, float]] | None:
    """The best `limit` matches of the conjunction of `leaves` from their champion lists, else the exhaustive
    ranking's, kept for the generation; None where the caller must rank every match itself (a read-only store
    that lacks a list or the kept answer). `lists` is the back end's _SqliteLists or _PostgresLists."""
    depth = max(LIST_DEPTH, LIST_FACTOR * limit)
    deepest = min(LIST_DEPTH_MOST, depth * LIST_DEEPER ** 2) if lists.deepens else depth
    keys = list(dict.fromkeys(lists.key(leaf) for leaf in leaves))
    # The answer to several terms, from the lists or the exhaustive ranking, is kept under this key for the
    # generation: the next search of the same terms (in the same order: bm25 adds their scores in it) and limit
    # reads it alone.
    answer = "\x1d".join(["", *keys, str(limit)])
    topic = lists.topic or ""
    while True:
        with lists.reading(store) as connection:
            generation = lists.generation(connection)
            if len(keys) > 1:
                kept = _read_lists(connection, [answer], topic, generation, 0)
                if kept:
                    return kept[answer].entries
            found = _read_lists(connection, keys, topic, generation, depth)
            missing = [leaf for leaf in dict.fromkeys(leaves) if lists.key(leaf) not in found]
            if missing and store.readonly:
                return None
            built = {lists.key(leaf): lists.build(store, connection, leaf, depth) for leaf in missing}
        if built:
            _save_lists(store, built, topic, generation, depth)
            found.update({key: _List(entries, len(entries) < depth) for key, entries in built.items()})
        if len(keys) == 1:
            return found[keys[0]].entries[:limit]
        ranked = None
        if not any(found[key].complete for key in keys):  # else a term has few matches: so has the query
            common = set.intersection(*({pmid for pmid, _score in found[key].entries} for key in keys))
            if len(common) >= limit:
                ranked = lists.combine(store, leaves, [found[lists.key(leaf)] for leaf in leaves], common, limit)
            if ranked is None and depth < deepest and not store.readonly:
                depth = min(deepest, depth * LIST_DEEPER)  # rank deeper lists once, kept for the next searches
                continue
        if store.readonly:
            return ranked
        if ranked is None:
            with lists.reading(store) as connection:
                generation = lists.generation(connection)
                ranked = lists.rank_all(store, connection, limit)
        _save_lists(store, {answer: ranked}, topic, generation, limit)
        return ranked


def _read_lists(connection, keys: list[str], topic: str, generation: str, depth: int) -> dict[str, _List]:
    rows = connection.execute(
        text(f"SELECT leaf, depth, entries FROM {SEARCH_LISTS} WHERE topic = :topic AND generation = :generation "
             "AND depth >= :depth AND leaf IN :keys").bindparams(bindparam("keys", expanding=True)),
        {"topic": topic, "generation": generation, "depth": depth, "keys": keys})
    found = {}
    for leaf, built_depth, entries in rows:
        pairs = [(pmid, score) for pmid, score in json.loads(entries)]
        found[leaf] = _List(pairs, len(pairs) < built_depth)
    return found


def _save_lists(store: Store, built: dict[str, list[tuple[int, float]]], topic: str, generation: str,
                depth: int) -> None:
    """Keep the lists ranked for `generation` (and drop those of older ones); a cache, so a writer in the way, or
    a database that cannot be written, only means they are ranked again next time."""
    rows = [{"leaf": key, "topic": topic, "generation": generation, "depth": depth, "entries": json.dumps(entries)}
            for key, entries in built.items()]
    try:
        with store.engine.connect() as connection:
            waited = connection.exec_driver_sql("PRAGMA busy_timeout").scalar() if store.dialect == "sqlite" else None
            connection.rollback()
            try:
                with connection.begin():
                    connection.exec_driver_sql(f"PRAGMA busy_timeout = {_LIST_WRITE_WAIT_MS}" if store.dialect == "sqlite"
                                               else f"SET LOCAL lock_timeout = {_LIST_WRITE_WAIT_MS}")
                    connection.execute(text(f"DELETE FROM {SEARCH_LISTS} WHERE generation <> :generation"),
                                       {"generation": generation})
                    connection.execute(text(
                        f"INSERT INTO {SEARCH_LISTS} (leaf, topic, generation, depth, entries) "
                        "VALUES (:leaf, :topic, :generation, :depth, :entries) ON CONFLICT (leaf, topic) DO UPDATE "
                        "SET generation = excluded.generation, depth = excluded.depth, entries = excluded.entries"),
                        rows)
            finally:
                if waited is not None:
                    connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(waited)}")
    except DBAPIError:
        pass


_LEAF = re.compile(r'(?:\w+:)?(?:\w+\*?|"[^"]*"\*?)')


def _conjunction(match: str) -> list[str] | None:
    """The terms of an FTS5 query that only joins them (words, "phrases", prefix*, column:filtered), each as FTS5
    reads it alone, or None for any other shape (AND, OR, NOT, NEAR, groups, {column sets}, ^anchors)."""
    tokens = _TOKEN.findall(match)
    if not tokens or not all(_LEAF.fullmatch(token) and token not in _OPERATORS for token in tokens):
        return None
    return [token.lower() for token in tokens]


class _SqliteLists:
    """Champion lists on SQLite: a term's list is its exhaustive bm25 ranking, cut at the list's depth."""

    deepens = True  # deeper lists can prove more (combine)

    def __init__(self, topic: str | None, match: str):
        self.topic = topic
        self.match = match

    def key(self, leaf: str) -> str:
        return leaf

    def reading(self, store: Store):
        return store.engine.connect()

    def generation(self, connection) -> str:
        # FTS5 rewrites its structure record (rowid 10) and averages (rowid 1) on every committed change to the
        # index; memberships are only ever added, so the highest rowid of topic_paper says when one was.
        blocks = connection.execute(text("SELECT block FROM paper_fts_data WHERE id IN (1, 10) ORDER BY id")).scalars()
        newest = connection.execute(text("SELECT ifnull(max(rowid), 0) FROM topic_paper")).scalar_one()
        return hashlib.sha256(b"".join(blocks) + str(newest).encode()).hexdigest()[:32]

    def build(self, store: Store, connection, leaf: str, depth: int) -> list[tuple[int, float]]:
        return _bm25(store, leaf, self.topic, depth, connection)

    def rank_all(self, store: Store, connection, limit: int) -> list[tuple[int, float]]:
        return _bm25(store, self.match, self.topic, limit, connection)

    def combine(self, store: Store, leaves: list[str], lists: list[_List], common: set[int],
                limit: int) -> list[tuple[int, float]] | None:
        """The best `limit` of `common` by bm25, or None unless they are the best of every match.

        bm25 of several phrases is the sum of each one's (the same IDF, document length and weights), added in the
        query's order as FTS5 adds them: the very score the exhaustive ranking gives. A paper missing from one
        term's list scores there at most that list's last score, and at most each other list's first elsewhere
        (Fagin's threshold algorithm); the answer stands if its last paper scores above every such bound, or ties
        the highest bound with a newer PMID than each list's last paper (lists are cut newest PMID first among ties,
        so a paper below a list that ties its last score is older).
        """
        scores = [dict(found.entries) for found in lists]
        summed = [(pmid, sum(score[pmid] for score in scores)) for pmid in common]
        best = sorted(summed, key=lambda hit: (-hit[1], -hit[0]))[:limit]
        firsts = [found.entries[0][1] for found in lists]
        bound = max(found.entries[-1][1] + sum(firsts) - firsts[index] for index, found in enumerate(lists))
        last_pmid, last = best[-1]
        margin = 1e-9 * max(1.0, abs(bound))  # the bound adds the same numbers in another order
        if last > bound + margin or (last >= bound - margin
                                     and last_pmid > max(found.entries[-1][0] for found in lists)):
            return best
        return None


def _syntax_error(query: str) -> SearchSyntaxError:
    return SearchSyntaxError(f"invalid search syntax ({' '.join(query.split())}): {SYNTAX_HINT}")


# -- PostgreSQL ----------------------------------------------------------------------------------
# The query is parsed here into a tree of terms and operators, with FTS5's grammar and precedence:
#
#   query := or ;  or := and ("OR" and)* ;  and := not ("AND" not)* ;  not := seq ("NOT" seq)*
#   seq   := unit unit*                      (adjacent units: an implicit AND, binding tightest)
#   unit  := term | column ":" unit | "(" or ")" | "NEAR" "(" term+ ")"
#
# Each term becomes one to_tsquery call on one bound parameter (quoted lexemes, never SQL; see
# _term_query), and the tree becomes those calls joined with &&, || and !!. Terms that reduce to no
# lexeme (stop words) are found first and dropped: from an AND or OR they vanish, `x NOT the` is x,
# `the NOT x` is nothing, and a query that is nothing finds nothing (rather than everything).


@dataclass(frozen=True)
class _Term:
    text: str
    phrase: bool  # a "quoted phrase" or a word spelled with punctuation, rather than a bare word
    prefix: bool = False
    weights: frozenset[str] | None = None  # None: any column; empty: column filters no column passes


@dataclass(frozen=True)
class _Columns:  # a column filter with nothing attached ("title:" before a word or a group)
    weights: frozenset[str]


@dataclass(frozen=True)
class _Node:
    op: str  # "and", "or", "not" (the first child is what to keep, the others what to leave out)
    children: tuple


_NOTHING = object()  # a term without lexemes: ignored where it can be, no hits where it cannot
_NEVER = object()  # a term under column filters that exclude every column: matches no paper


def _lex(query: str) -> list:
    """`query`'s tokens (_TOKEN, as FTS5 gets them) as operators, parentheses, column filters and terms."""
    tokens = _TOKEN.findall(query.replace("\x00", " "))
    items: list = []
    at = 0
    while at < len(tokens):
        token = tokens[at]
        at += 1
        if token in ("(", ")", "AND", "OR", "NOT"):
            items.append(token)
            continue
        if token.lstrip("-").startswith("{"):  # a column set, {title abstract}:word, split at its spaces
            while "}" not in token:
                if at == len(tokens):
                    raise SearchSyntaxError(SYNTAX_HINT)
                token += " " + tokens[at]
                at += 1
        if (":" not in token and at < len(tokens) and tokens[at].startswith(":")
                and (_COLUMN_NAME.fullmatch(token) or token.lstrip("-").startswith("{"))):
            token += tokens[at]  # title :word
            at += 1
        if at < len(tokens) and tokens[at] == "(" and (token == "NEAR" or token.endswith(":NEAR")):
            if token != "NEAR":
                items.extend(_column_filter(token[:-5], ""))  # title:NEAR(a b)
            items.append("NEAR")
            continue
        items.extend(_token_items(token))
    return items


def _token_items(token: str) -> list:
    quote, colon = token.find('"'), token.find(":")
    if colon != -1 and (quote == -1 or colon < quote):
        return _column_filter(token[:colon], token[colon + 1:])
    if quote > 0:  # abc"def": FTS5 reads a word, then a phrase
        return _token_items(token[:quote]) + _token_items(token[quote:])
    if quote == 0:
        phrase = re.fullmatch(r'"([^"]*)"(\*?)', token)
        if phrase is None:
            raise SearchSyntaxError(SYNTAX_HINT)  # an unterminated quote
        return [_Term(phrase[1], phrase=True, prefix=bool(phrase[2]))]
    token = token.lstrip("^")  # FTS5's first-token anchor: tsquery cannot say it, the term still counts
    if _BAREWORD.match(token):
        return [_Term(token.rstrip("*"), phrase=False, prefix=token.endswith("*"))]
    if _WORD.search(token):
        return [_Term(token, phrase=True)]  # beta-blocker, Crohn's: the phrase it spells
    return []


def _column_filter(spec: str, rest: str) -> list:
    match = _COLUMN_SPEC.fullmatch(spec)
    names = ([match[2]] if match[2] else match[3].split()) if match else []
    if match is None or not names or any(name.lower() not in COLUMN_WEIGHTS for name in names):
        raise SearchSyntaxError(SYNTAX_HINT)  # FTS5: no such column
    weights = frozenset(COLUMN_WEIGHTS[name.lower()] for name in names)
    if match[1]:
        weights = _ALL_WEIGHTS - weights  # -title: every column but the title
    if not rest:
        return [_Columns(weights)]
    quote = rest.find('"')
    if ":" in (rest if quote == -1 else rest[:quote]):
        raise SearchSyntaxError(SYNTAX_HINT)
    items = _token_items(rest)
    if not items:
        raise SearchSyntaxError(SYNTAX_HINT)  # title:- filters nothing
    return [_within(items[0], weights), *items[1:]]  # like FTS5, the filter takes the first phrase only


def _within(node, weights: frozenset[str]):
    """`node` with every term also restricted to `weights` (nested filters intersect, as in FTS5)."""
    if isinstance(node, _Term):
        return replace(node, weights=weights if node.weights is None else node.weights & weights)
    return _Node(node.op, tuple(_within(child, weights) for child in node.children))


class _Parser:
    def __init__(self, items: list):
        self.items = items
        self.at = 0

    def parse(self):
        if not self.items:
            raise SearchSyntaxError(SYNTAX_HINT)
        node = self.any_of()
        if self.at != len(self.items):
            raise SearchSyntaxError(SYNTAX_HINT)  # a stray ")"
        return node

    def peek(self):
        return self.items[self.at] if self.at < len(self.items) else None

    def take(self):
        item = self.peek()
        self.at += 1
        return item

    def any_of(self):
        return self._chain("OR", "or", self.all_of)

    def all_of(self):
        return self._chain("AND", "and", self.but_not)

    def but_not(self):  # a NOT b NOT c: a, leaving out b and c (one flat node, however long the chain)
        nodes = [self.sequence()]
        while self.peek() == "NOT":
            self.take()
            nodes.append(self.sequence())
        return nodes[0] if len(nodes) == 1 else _Node("not", tuple(nodes))

    def _chain(self, word: str, op: str, operand):
        nodes = [operand()]
        while self.peek() == word:
            self.take()
            nodes.append(operand())
        return nodes[0] if len(nodes) == 1 else _Node(op, tuple(nodes))

    def sequence(self):
        nodes = [self.unit()]
        while self.peek() not in (None, ")", "AND", "OR", "NOT"):
            nodes.append(self.unit())
        return nodes[0] if len(nodes) == 1 else _Node("and", tuple(nodes))

    def unit(self):
        item = self.take()
        if isinstance(item, _Term):
            return item
        if isinstance(item, _Columns):
            if not (isinstance(self.peek(), _Term) or self.peek() in ("(", "NEAR")):
                raise SearchSyntaxError(SYNTAX_HINT)
            return _within(self.unit(), item.weights)
        if item == "(":
            node = self.any_of()
            if self.take() != ")":
                raise SearchSyntaxError(SYNTAX_HINT)
            return node
        if item == "NEAR":  # NEAR(a b): tsquery has no "within N words", so all of them anywhere
            self.take()
            terms = []
            while isinstance(self.peek(), (_Term, _Columns)):
                terms.append(self.unit())
            if not terms or self.take() != ")":
                raise SearchSyntaxError(SYNTAX_HINT)
            return terms[0] if len(terms) == 1 else _Node("and", tuple(terms))
        raise SearchSyntaxError(SYNTAX_HINT)  # an operator, ")" or the end where a term belongs


def parse_postgres_query(query: str):
    """The tree of `_Term`s and `_Node`s for `query`; SearchSyntaxError where FTS5 would refuse it."""
    try:
        tree = _Parser(_lex(query)).parse()
    except (SearchSyntaxError, RecursionError):
        raise _syntax_error(query) from None
    if sum(1 for _ in _terms(tree)) > MAX_TERMS:
        raise _syntax_error(query)
    return tree


def _terms(node):
    if isinstance(node, _Term):
        yield node
    else:
        for child in node.children:
            yield from _terms(child)


def _lexeme(text: str, prefix: bool = False, weights: str = "") -> str:
    """`text` as one quoted to_tsquery operand (the text parser and the stemmer still see it, the operators
    not), with :* for a prefix and :AB... for the weights a column filter allows."""
    quoted = "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    return quoted + ":" + ("*" if prefix else "") + weights if prefix or weights else quoted


def _term_query(term: _Term) -> str | object:
    """The to_tsquery text for `term` (its words quoted, so nothing in them is an operator), or a marker.

    A term of several words is one phrase per column weight it may match, so that a phrase cannot run
    from the end of the title into the MeSH terms after it (the document is the columns end to end).
    A term spelled with punctuation is also matched as its bare words, as FTS5 reads it: "COVID-19" finds
    COVID-19 (which PostgreSQL's parser reads as covid, -19) and COVID 19, "beta-blocker" beta blocker.
    """
    if term.weights is not None and not term.weights:
        return _NEVER
    words = _WORDS.findall(term.text)
    if not words:
        return _NOTHING  # "" or "--": no word at all (to_tsquery would even refuse '')
    spellings = [term.text]
    if term.phrase and words != term.text.split():
        spellings.append(" ".join(words))
    allowed = "".join(sorted(term.weights or ()))
    weights = list(allowed or "ABCD") if len(words) > 1 else [allowed]
    alternatives = []
    for spelling in spellings:
        for weight in weights:
            if term.prefix:  # "septic sho"*: word after word, the last a prefix (stop words keep their place)
                chunks = [chunk for chunk in spelling.split() if _WORD.search(chunk)]
                alternatives.append(" <-> ".join(_lexeme(chunk, index == len(chunks) - 1, weight)
                                                 for index, chunk in enumerate(chunks)))
            else:  # one quoted operand: to_tsquery parses and stems it as text, a phrase if several words
                alternatives.append(_lexeme(spelling, False, weight))
    return " | ".join(f"( {alternative} )" for alternative in alternatives) if len(alternatives) > 1 \
        else alternatives[0]


def _rank_postgres(store: Store, query: str, topic: str | None, limit: int, *,
                   champions: bool = True) -> list[tuple[int, float | None]]:
    tree = parse_postgres_query(query)
    terms = list(_terms(tree))
    values = [_term_query(term) for term in terms]
    params = {f"p{index}": value for index, value in enumerate(values) if isinstance(value, str)}
    # Which terms have lexemes: a stop word has none in English, and a prefix of only a stop word
    # ("the*") is then looked up unstemmed, to find words such as theory.
    lookups = [(index, config) for index, term in enumerate(terms) if f"p{index}" in params
               for config in (("english", "simple") if term.prefix else ("english",))]
    chosen = {id(term): _NOTHING if isinstance(value, str) else value for term, value in zip(terms, values, strict=True)}
    with store.engine.connect() as connection:
        if lookups:
            counts = connection.execute(text("SELECT ARRAY[" + ", ".join(
                f"numnode(to_tsquery('{config}', :p{index}))" for index, config in lookups) + "]"), params).scalar_one()
            for (index, config), count in zip(lookups, counts, strict=True):
                if count and chosen[id(terms[index])] is _NOTHING:
                    chosen[id(terms[index])] = f"to_tsquery('{config}', :p{index})"
    expression = _compose(tree, chosen)
    if expression is _NOTHING or expression is _NEVER:
        return []
    leaves = _postgres_conjunction(tree, chosen, params) if champions else None
    if leaves:
        found = _rank_by_lists(store, _PostgresLists(topic, str(expression), params), leaves, limit)
        if found is not None:
            return [(pmid, score) for pmid, score in found]
    with store.engine.connect() as connection:
        return [(pmid, score) for pmid, score in _ts_rank(connection, str(expression), params, topic, limit)]


def _ts_rank(connection, expression: str, params: dict, topic: str | None, limit: int,
             candidates: Sequence[int] | None = None) -> list[tuple[int, float]]:
    """ts_rank_cd of every match of `expression` (or only of `candidates`), best first, ties newest PMID first."""
    join = ("JOIN topic_paper ON topic_paper.pmid = paper_fts.pmid AND topic_paper.topic = :topic "
            if topic else "")
    among = "AND paper_fts.pmid = ANY(:candidates) " if candidates is not None else ""
    statement = text(
        "SELECT paper_fts.pmid, ts_rank_cd(CAST(:weights AS float4[]), paper_fts.document, q.query, "
        f"{RANK_NORMALIZATION}) AS score FROM paper_fts CROSS JOIN (SELECT {expression} AS query) AS q " + join
        + "WHERE paper_fts.document @@ q.query " + among + "ORDER BY score DESC, paper_fts.pmid DESC LIMIT :limit"
    )
    rows = connection.execute(statement, {**params, "weights": RANK_WEIGHTS, "topic": topic, "limit": limit,
                                          "candidates": list(candidates) if candidates is not None else None}).all()
    return [(pmid, float(score)) for pmid, score in rows]


_PARAMETER = re.compile(r":p\d+")


def _postgres_conjunction(tree, chosen: dict[int, object], params: dict) -> list[tuple[str, str]] | None:
    """The terms of a query that only joins them, each as (tsquery expression on :leaf, its parameter), or None."""
    terms = [tree] if isinstance(tree, _Term) else list(tree.children) if tree.op == "and" else []
    if not terms or not all(isinstance(term, _Term) for term in terms):
        return None
    leaves = []
    for term in terms:
        expression = chosen[id(term)]
        if expression is _NOTHING:
            continue  # a stop word: it neither matches nor ranks
        [name] = _PARAMETER.findall(str(expression))
        leaves.append((str(expression).replace(name, ":leaf"), params[name[1:]]))
    return leaves or None


class _PostgresLists:
    """Champion lists on PostgreSQL: a term's list is its exhaustive ts_rank_cd ranking, cut at the list's depth;
    the papers in every list are ranked again with ts_rank_cd of the whole query (it is no sum of the terms')."""

    RERANK_FACTOR = 4  # of those, the best by the sum of the terms' scores, `limit` times this many, are ranked
    # No deeper lists: without a bound to prove an answer, papers deep in every list are no better a guess
    # (measured: "systematic review" got none of the exhaustive top 20 from lists of 16,000).
    deepens = False

    def __init__(self, topic: str | None, expression: str, params: dict):
        self.topic = topic
        self.expression = expression
        self.params = params

    def key(self, leaf: tuple[str, str]) -> str:
        return f"{leaf[0]}\x1f{leaf[1]}"

    @contextmanager
    def reading(self, store: Store):
        with store.engine.connect() as connection:  # its own: a view's shared connection has begun already
            # One snapshot for the generation and the lists ranked in it.
            connection.execution_options(isolation_level="REPEATABLE READ")
            yield connection

    def generation(self, connection) -> str:
        return str(search_changes(connection))

    def build(self, store: Store, connection, leaf: tuple[str, str], depth: int) -> list[tuple[int, float]]:
        return _ts_rank(connection, leaf[0], {"leaf": leaf[1]}, self.topic, depth)

    def rank_all(self, store: Store, connection, limit: int) -> list[tuple[int, float]]:
        return _ts_rank(connection, self.expression, self.params, self.topic, limit)

    def combine(self, store: Store, leaves: list, lists: list[_List], common: set[int],
                limit: int) -> list[tuple[int, float]]:
        scores = [dict(found.entries) for found in lists]
        summed = sorted(((pmid, sum(score[pmid] for score in scores)) for pmid in common),
                        key=lambda hit: (-hit[1], -hit[0]))
        candidates = [pmid for pmid, _score in summed[:self.RERANK_FACTOR * limit]]
        with store.engine.connect() as connection:
            return _ts_rank(connection, self.expression, self.params, None, limit, candidates)


def _compose(node, chosen: dict[int, object]):
    """The SQL tsquery expression for `node`, or _NOTHING / _NEVER."""
    if isinstance(node, _Term):
        return chosen[id(node)]
    parts = [_compose(child, chosen) for child in node.children]
    real = [part for part in parts if part is not _NOTHING and part is not _NEVER]
    if node.op == "not":
        keep, leave_out = parts[0], [part for part in parts[1:] if part is not _NOTHING and part is not _NEVER]
        if keep is _NOTHING or keep is _NEVER or not leave_out:
            return keep  # `the NOT x` is nothing (never everything but x); `x NOT the` is x
        return "(" + " && ".join([keep, *(f"(!!{part})" for part in leave_out)]) + ")"
    if node.op == "and" and any(part is _NEVER for part in parts):
        return _NEVER
    if not real:
        return _NEVER if any(part is _NEVER for part in parts) else _NOTHING
    return real[0] if len(real) == 1 else "(" + (" && " if node.op == "and" else " || ").join(real) + ")"


def _rank_like(store: Store, query: str, topic: str | None, limit: int) -> list[tuple[int, float | None]]:
    """Every word in the title or abstract, newest first: no ranking, but it runs anywhere."""
    words = [word for word in re.findall(r"\w+", query) if word not in _OPERATORS]
    if not words:
        raise _syntax_error(query)
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
    # The authors' display names are author_names split at "; " where that gives one name per author; decoding
    # the authors' JSON (affiliations and all) took most of a 500-paper search within a topic.
    columns = (_paper.c.pmid, _paper.c.title, _paper.c.author_names, func.json_array_length(_paper.c.authors),
               _paper.c.journal, _paper.c.pub_year, _paper.c.doi, _paper.c.status)
    with store.engine.connect() as connection:
        rows = {row.pmid: row for row in connection.execute(select(*columns).where(_paper.c.pmid.in_(pmids)))}
        authors = {pmid: tuple(row.author_names.split("; ")) for pmid, row in rows.items()}
        unclear = [pmid for pmid, names in authors.items() if len(names) != rows[pmid][3]]
        if unclear:  # no authors, or a name with "; " in it
            for pmid, listed in connection.execute(select(_paper.c.pmid, _paper.c.authors).where(_paper.c.pmid.in_(unclear))):
                authors[pmid] = tuple(_display(author) for author in listed)
        topics: dict[int, list[str]] = {}
        memberships = select(_membership.c.pmid, _membership.c.topic).where(_membership.c.pmid.in_(pmids))
        for pmid, slug in connection.execute(memberships.order_by(_membership.c.topic)):
            topics.setdefault(pmid, []).append(slug)
    return [
        SearchHit(pmid=pmid, score=score, title=rows[pmid].title, authors=authors[pmid], journal=rows[pmid].journal,
                  year=rows[pmid].pub_year, doi=rows[pmid].doi, topics=tuple(topics.get(pmid, ())),
                  status=rows[pmid].status)
        for pmid, score in ranked if pmid in rows
    ]


def _display(author: dict) -> str:
    return Author(last_name=author.get("last_name"), initials=author.get("initials"),
                  collective_name=author.get("collective_name")).display


__all__ = ["SearchHit", "SearchSyntaxError", "search_papers", "search_pmids", "check_search_text", "fts_query",
           "MAX_SEARCH_CHARACTERS", "MAX_SEARCH_WORDS", "MAX_PREFIX_TERMS", "MIN_PREFIX_LETTERS"]
