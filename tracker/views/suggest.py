"""The Suggestions page: one of a topic's suggestions beyond its query at a time, most relevant first, with why it
is suggested (and the seeds that led to it), the next few, the counts, and what the papers added from outside the
query share that the query does not name (tracker/review/gaps.py)."""

from __future__ import annotations

from dataclasses import dataclass

from tracker.ncbi.evidence import classify
from tracker.ncbi.pubmed import Paper
from tracker.ncbi.registries import TrialId
from tracker.review.gaps import GapReport, query_gaps
from tracker.runs.suggest import SuggestionView, list_suggestions, ranked, seed_label
from tracker.store import Store
from tracker.store.changes import EventView
from tracker.store.suggestions import WAYS
from tracker.text import pubmed_url
from tracker.topics import Topic
from tracker.views.paper import PaperLinks, paper_trials

UPCOMING = 8  # the next suggestions listed under the current one


@dataclass(frozen=True)
class Seed:
    pmid: int
    label: str  # "Smith 2019"
    title: str  # empty when the store does not hold the seed (a topic file's seed): the page links to PubMed

    @property
    def url(self) -> str:
        return f"/papers/{self.pmid}" if self.title else pubmed_url(self.pmid)


@dataclass(frozen=True)
class SuggestView(PaperLinks):
    topic: Topic
    reviewer: str
    paper: Paper | None  # None: nothing pending
    current: SuggestionView | None
    position: int  # the current one's place among the pending suggestions, from 1
    total: int  # pending suggestions
    previous: int | None
    following: int | None  # the next pending suggestion after the current one
    upcoming: tuple[SuggestionView, ...]
    seeds: tuple[tuple[str, tuple[Seed, ...]], ...]  # by way: ("similar", (Seed, ...))
    added: int
    dismissed: int
    gaps: GapReport
    trials: tuple[TrialId, ...] = ()
    events: tuple[EventView, ...] = ()

    @property
    def tier(self) -> str:
        return classify(self.paper.publication_types) if self.paper else "other"


def suggest_view(store: Store, topic: Topic, *, reviewer: str, pmid: int | None = None) -> SuggestView:
    """The topic's pending suggestion `pmid` (or its most relevant one) as the Suggestions page shows it."""
    from tracker.store.papers import load_papers
    from tracker.store.suggestions import load_suggestions, suggestion_counts

    # The order from the suggestions alone; only the papers the page shows are read.
    order = [item.pmid for item in ranked(load_suggestions(store, topic.slug))]
    counts = suggestion_counts(store, [topic.slug])[topic.slug]
    gaps = query_gaps(store, topic)
    if not order:
        return SuggestView(topic, reviewer, None, None, 0, 0, None, None, (), (), counts["added"], counts["dismissed"],
                           gaps)
    index = order.index(pmid) if pmid in order else 0
    shown = list_suggestions(store, topic, pmids=order[index:index + 1 + UPCOMING]).items
    current, upcoming = shown[0], shown[1:]
    seeds_by_way = current.suggestion.seeds
    seed_papers = {paper.pmid: paper for paper in load_papers(store, list(current.suggestion.seed_pmids))}
    seeds = tuple((way, tuple(Seed(seed, seed_label(seed, seed_papers),
                                   seed_papers[seed].title or "(no title)" if seed in seed_papers else "")
                              for seed in seeds_by_way[way])) for way in WAYS if seeds_by_way.get(way))
    return SuggestView(
        topic, reviewer, current.paper, current, index + 1, len(order),
        order[index - 1] if index > 0 else None, order[index + 1] if index + 1 < len(order) else None,
        tuple(upcoming), seeds, counts["added"], counts["dismissed"], gaps, paper_trials(current.paper))


__all__ = ["SuggestView", "Seed", "suggest_view", "UPCOMING"]
