"""Full-text search of stored papers: SQLite FTS5 ranked by bm25, PostgreSQL tsvector ranked by ts_rank_cd,
a plain LIKE match on other back ends.

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

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import and_, or_, select, text
from sqlalchemy.exc import OperationalError

from tracker.errors import ConfigError, SearchSyntaxError
from tracker.ncbi.pubmed import Author
from tracker.store.database import Store
from tracker.store.models import PaperRow, TopicPaper
from tracker.store.schema import FTS_COLUMNS
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
    return _hits(store, ranked)


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
        raise _syntax_error(query)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(statement, {"query": match, "ranking": ranking,
                                                  "topic": topic, "limit": limit}).all()
    except OperationalError as error:
        detail = str(error.orig)
        if detail.startswith(_SQLITE_SYNTAX_ERRORS):
            raise _syntax_error(query) from None
        raise
    return [(pmid, -rank) for pmid, rank in rows]


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


def _rank_postgres(store: Store, query: str, topic: str | None, limit: int) -> list[tuple[int, float | None]]:
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
        join = ("JOIN topic_paper ON topic_paper.pmid = paper_fts.pmid AND topic_paper.topic = :topic "
                if topic else "")
        statement = text(
            "SELECT paper_fts.pmid, ts_rank_cd(CAST(:weights AS float4[]), paper_fts.document, q.query, "
            f"{RANK_NORMALIZATION}) AS score FROM paper_fts CROSS JOIN (SELECT {expression} AS query) AS q " + join
            + "WHERE paper_fts.document @@ q.query ORDER BY score DESC, paper_fts.pmid DESC LIMIT :limit"
        )
        rows = connection.execute(statement, {**params, "weights": RANK_WEIGHTS, "topic": topic,
                                              "limit": limit}).all()
    return [(pmid, float(score)) for pmid, score in rows]


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


__all__ = ["SearchHit", "SearchSyntaxError", "search_papers", "check_search_text", "fts_query", "MAX_SEARCH_CHARACTERS",
           "MAX_SEARCH_WORDS", "MAX_PREFIX_TERMS", "MIN_PREFIX_LETTERS"]
