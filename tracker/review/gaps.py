"""Why the query missed them: the words and MeSH terms that the papers added to a topic from outside its query share
and that the query does not name, so that the reader can widen the query.

The added papers are those that joined from the topic's suggestions or by hand (tracker/store/membership.py) and
that screening has not excluded. A term is a gap when at least a third of them (and two at least) have it, the
query (nor PubMed's translation of it, when known) does not name it, and it is at least GAP_MARGIN more common among
the added papers than among the papers the query found (the QUERY_SAMPLE it found last): a word every paper of the
topic uses says nothing about what the query misses. MeSH check tags (Humans, Female, Adult...) are left out: a
query is not widened by them. `tracker topics --check SLUG` and the web app's Suggestions page say them:
"9 of 12 added papers are indexed with 'Hypotension'; the query does not name it".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tracker.review.screening import rule_for
from tracker.review.states import State
from tracker.store import Store
from tracker.store.membership import MANUAL, QUERY, SUGGESTION, members_from
from tracker.store.relevance import PaperText, topic_states
from tracker.store.suggestions import member_texts, paper_texts
from tracker.topics import Topic

ADDED_SOURCES = (SUGGESTION, MANUAL)
MIN_ADDED = 2  # fewer added papers say nothing shared
MIN_SHARE = 1 / 3  # of the added papers that have a term
GAP_MARGIN = 0.25  # how much more common among the added papers than among the query's
QUERY_SAMPLE = 2000
SHOWN = 5
MESH, WORD = "MeSH", "word"
CHECK_TAGS = frozenset({
    "humans", "animals", "male", "female", "adult", "aged", "aged, 80 and over", "middle aged", "young adult",
    "adolescent", "child", "child, preschool", "infant", "infant, newborn", "pregnancy", "mice", "rats",
})
STOPWORDS = frozenset("""
about above after again against also among an and any are as at be because been before being below between both but by
can could did does doing down during each either few for from further had has have having here how however if in into
is it its itself may might more most much must no nor not of off on once only or other our out over own same should
since so some such than that the their them then there these they this those through thus to too under until up upon
very was we were what when where which while who whom why will with within without would yet
""".split())
_WORD = re.compile(r"[a-z][a-z0-9-]{3,}")


@dataclass(frozen=True)
class QueryGap:
    kind: str  # MESH or WORD
    term: str  # as the papers write it ("Hypotension", "vasopressor")
    papers: int  # added papers that have it
    added: int  # added papers in all
    query_share: float  # the share of the query's papers that have it

    @property
    def sentence(self) -> str:
        """"9 of 12 added papers are indexed with 'Hypotension'; the query does not name it"."""
        have = (f"are indexed with '{self.term}'" if self.kind == MESH
                else f"use the word '{self.term}' in their title or abstract")
        if self.papers == 1:
            have = have.replace("are indexed", "is indexed").replace("use the word", "uses the word")
        return f"{self.papers} of {self.added} added papers {have}; the query does not name it"


@dataclass(frozen=True)
class GapReport:
    added: int  # papers added from outside the query and not excluded
    gaps: tuple[QueryGap, ...]

    def lines(self) -> list[str]:
        """What `tracker topics --check` prints about them."""
        if self.added == 0:
            return ["no paper was added to this topic from outside its query yet: nothing to compare the query with"]
        if not self.gaps:
            if self.added < MIN_ADDED:
                return ["1 paper was added from outside the query: too few to say what the query misses"]
            return [f"the {self.added} papers added from outside the query share no word or MeSH term that the query "
                    "does not name"]
        return [gap.sentence for gap in self.gaps]


def added_papers(store: Store, topic: Topic) -> list[int]:
    """The topic's papers added from its suggestions or by hand that screening has not excluded."""
    added = members_from(store, topic.slug, ADDED_SOURCES)
    states = topic_states(store, topic.slug, rule_for(store, topic))
    return sorted(pmid for pmid in added if states.get(pmid) != State.EXCLUDED)


def query_gaps(store: Store, topic: Topic, *, translation: str | None = None, shown: int = SHOWN) -> GapReport:
    """The terms most of the topic's added papers share that its query (or `translation`) does not name."""
    added = paper_texts(store, added_papers(store, topic))
    if len(added) < MIN_ADDED:
        return GapReport(len(added), ())
    found = member_texts(store, topic.slug, sources=(QUERY,), limit=QUERY_SAMPLE)
    named = _named_by(" ".join(part for part in (topic.query, translation) if part))
    least = max(MIN_ADDED, math.ceil(len(added) * MIN_SHARE))
    gaps = []
    for kind, read in ((MESH, _mesh), (WORD, _words)):
        counts = _document_counts(added, read)
        common = {term for term, count in counts.items() if count >= least and not named(term)}
        if not common:
            continue
        in_query = _document_counts(found, read, only=common)
        for term in common:
            share = in_query[term] / len(found) if found else 0.0
            if counts[term] / len(added) - share >= GAP_MARGIN:
                gaps.append(QueryGap(kind, _shown_term(added, read, term), counts[term], len(added), share))
    gaps.sort(key=lambda gap: (-gap.papers, gap.kind != MESH, gap.query_share, gap.term.lower()))
    return GapReport(len(added), tuple(_distinct(gaps)[:shown]))


def _distinct(gaps: Sequence[QueryGap]) -> list[QueryGap]:
    """A word that is also a MeSH term said once, as the MeSH term."""
    headings = {gap.term.lower() for gap in gaps if gap.kind == MESH}
    return [gap for gap in gaps if gap.kind == MESH or gap.term.lower() not in headings]


def _mesh(text: PaperText) -> set[str]:
    return {heading.lower() for heading in text.mesh_headings if heading.lower() not in CHECK_TAGS}


def _words(text: PaperText) -> set[str]:
    return {word.strip("-") for word in _WORD.findall(f"{text.title} {text.abstract}".lower())
            if word not in STOPWORDS and not word.isdigit()}


def _document_counts(texts: Iterable[PaperText], read, *, only: set[str] | None = None) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        terms = read(text)
        counts.update(terms if only is None else terms & only)
    return counts


def _shown_term(texts: Sequence[PaperText], read, term: str) -> str:
    """The term as the papers write it: a MeSH heading's own capitals."""
    for text in texts:
        for heading in text.mesh_headings:
            if heading.lower() == term:
                return heading
    return term


def _named_by(query: str):
    """Whether the query names a term: the term's words in order, or a truncation (hypotens*) that starts it."""
    text = " ".join(re.sub(r"[^a-z0-9*]+", " ", query.lower()).split())
    prefixes = [found[:-1] for found in re.findall(r"[a-z0-9]+\*", text)]

    def named(term: str) -> bool:
        words = " ".join(re.sub(r"[^a-z0-9]+", " ", term.lower()).split())
        if re.search(rf"(?<![a-z0-9]){re.escape(words)}(?![a-z0-9])", text):
            return True
        return any(words.startswith(prefix) for prefix in prefixes if len(prefix) >= 3)

    return named


__all__ = ["QueryGap", "GapReport", "added_papers", "query_gaps", "ADDED_SOURCES", "MESH", "WORD"]
