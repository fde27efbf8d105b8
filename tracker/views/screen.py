"""The screening page: one paper of a topic's queue with the reviewer's progress, the paper's neighbours and the
next paper of the queue (tracker/review/screening.py `next_to_screen`)."""

from __future__ import annotations

from dataclasses import dataclass

from tracker.ncbi.evidence import classify
from tracker.ncbi.pubmed import Paper
from tracker.ncbi.registries import TrialId
from tracker.review.screening import PaperScreening, next_to_screen, screened_by, view_of
from tracker.store import Store
from tracker.store.changes import EventView
from tracker.topics import Topic
from tracker.views.paper import FactsView, PaperLinks, facts_view, paper_trials


@dataclass(frozen=True)
class ScreenView(PaperLinks):
    """The screening page: one paper of a topic with the reviewer's progress and where the queue goes next."""

    topic: Topic
    reviewer: str
    paper: Paper | None  # None: the queue is empty
    screening: PaperScreening | None
    screened: int
    total: int
    newer: int | None  # the paper before this one in the topic's newest-first order (any state)
    older: int | None  # the one after it
    next_in_queue: int | None  # the next paper still waiting for this reviewer, after this one
    events: tuple[EventView, ...] = ()
    trials: tuple[TrialId, ...] = ()
    # "most relevant first: ordered by 12 earlier decisions in this topic", or "newest first: ranking starts
    # after 2 more decisions" (tracker/review/relevance.py)
    order: str = ""
    relevance: float | None = None
    facts: FactsView | None = None  # its study facts, the words they came from marked (tracker/views/paper.py)

    @property
    def tier(self) -> str:
        if self.facts is not None:
            return self.facts.tier
        return classify(self.paper.publication_types) if self.paper else "other"


def screen_view(store: Store, topic: Topic, *, reviewer: str, pmid: int | None = None) -> ScreenView:
    """The paper `pmid` of `topic` (or the first of `reviewer`'s queue) as the screening page shows it."""
    from tracker.review.relevance import ranking_status
    from tracker.store.changes import list_events
    from tracker.store.decisions import current_decisions, summaries
    from tracker.store.listing import Cursor, count_members, neighbours, topic_row
    from tracker.store.papers import load_papers
    from tracker.store.relevance import scores_of
    from tracker.store.studyfacts import stored_facts

    total = count_members(store, topic.slug)
    screened = screened_by(store, topic, reviewer)
    status = ranking_status(store, topic)
    ranked = status.ranked
    order = f"{'most relevant' if ranked else 'newest'} first: {status.sentence}"
    shown = topic_row(store, topic.slug, pmid) if pmid is not None else None
    if shown is None:
        shown = next_to_screen(store, topic, reviewer, ranked=ranked, waiting=total - screened)
        if shown is None:
            return ScreenView(topic, reviewer, None, None, screened, total, None, None, None, order=order)
    newer, older = neighbours(store, topic.slug, Cursor(shown.first_seen_at, shown.pmid))
    following = next_to_screen(store, topic, reviewer, ranked=ranked, waiting=total - screened, current=shown)
    [paper] = load_papers(store, [shown.pmid])
    screening = view_of(topic, paper.pmid, summaries(store, topic.slug, [paper.pmid]).get(paper.pmid),
                        current_decisions(store, [topic.slug], [paper.pmid]).get((topic.slug, paper.pmid), ()),
                        reviewer=reviewer)
    events = tuple(list_events(store, pmids=[paper.pmid]))
    relevance = scores_of(store, [topic.slug], [paper.pmid]).get(paper.pmid) if ranked else None
    return ScreenView(topic, reviewer, paper, screening, screened, total, newer, older,
                      following.pmid if following else None, events, paper_trials(paper), order=order,
                      relevance=relevance, facts=facts_view(paper, stored_facts(store, [paper.pmid]).get(paper.pmid)))


__all__ = ["ScreenView", "screen_view"]
