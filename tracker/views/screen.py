"""The screening page: one paper of a topic's queue at a stage, with the reviewer's progress, where `k` goes back
(the papers they decided in this session) and where `j` goes next (the queue: tracker/review/screening.py
`next_to_screen`), and, while the topic is screened in relevance order, what is likely left to find."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracker.ncbi.evidence import classify
from tracker.ncbi.pubmed import Paper
from tracker.ncbi.registries import TrialId
from tracker.review.screening import PaperScreening, next_to_screen, screened_by, screening_of
from tracker.review.states import Stage
from tracker.store import Store
from tracker.store.changes import EventView
from tracker.store.database import reads_on_one_connection
from tracker.topics import Topic
from tracker.views.paper import FactsView, PaperLinks, facts_view, paper_trials


@dataclass(frozen=True)
class ScreenView(PaperLinks):
    """The screening page: one paper of a topic with the reviewer's progress and where the keys go."""

    topic: Topic
    reviewer: str
    paper: Paper | None  # None: the queue is empty
    screening: PaperScreening | None
    screened: int
    total: int
    back: int | None  # `k`: the paper decided before this one in this session
    forward: int | None  # `j`: the paper decided after it in this session, else the next one of the queue
    next_in_queue: int | None  # where a decision on this paper goes next
    events: tuple[EventView, ...] = ()
    trials: tuple[TrialId, ...] = ()
    # "most relevant first: ordered by 12 earlier decisions in this topic", or "newest first: ranking starts
    # after 2 more decisions" (tracker/review/relevance.py)
    order: str = ""
    relevance: float | None = None
    stage: Stage = Stage.TITLE_ABSTRACT
    left: str = ""  # what is likely left to find (tracker/review/stopping.py), while screening in relevance order
    facts: FactsView | None = None  # its study facts, the words they came from marked (tracker/views/paper.py)

    @property
    def tier(self) -> str:
        if self.facts is not None:
            return self.facts.tier
        return classify(self.paper.publication_types) if self.paper else "other"


# Seconds the screening page may show an estimate of what is left made before the latest decisions: each reviewer's
# page would otherwise recompute it after every decision any reviewer gives (benchmark 14).
LEFT_FRESH_WITHIN = 2.0


@reads_on_one_connection
def screen_view(store: Store, topic: Topic, *, reviewer: str, pmid: int | None = None,
                stage: Stage = Stage.TITLE_ABSTRACT, session_started: datetime | None = None) -> ScreenView:
    """The paper `pmid` of `topic` at `stage` (or the first of `reviewer`'s queue) as the screening page shows it;
    `session_started`: since when `k` walks back through the reviewer's decisions."""
    from tracker.review.relevance import ranking_status
    from tracker.review.screening import reached_total, what_is_left
    from tracker.store.changes import list_events
    from tracker.store.decisions import decided_since, latest_decision_id
    from tracker.store.listing import topic_row
    from tracker.store.papers import load_papers
    from tracker.store.relevance import scores_of
    from tracker.store.studyfacts import stored_facts

    total = reached_total(store, topic, stage)
    screened = screened_by(store, topic, reviewer, stage)
    status = ranking_status(store, topic)
    ranked = status.ranked and stage == Stage.TITLE_ABSTRACT
    order = f"{'most relevant' if ranked else 'newest'} first: {status.sentence}"
    mark = latest_decision_id(store, topic.slug) if ranked else None  # read once: the queue's seed and the estimate's key
    left = what_is_left(store, topic, fresh_within=LEFT_FRESH_WITHIN, mark=mark) if ranked else ""
    decided = decided_since(store, topic.slug, reviewer, session_started, stage=stage) if session_started else []
    shown = topic_row(store, topic.slug, pmid) if pmid is not None else None
    if shown is None:
        shown = next_to_screen(store, topic, reviewer, ranked=ranked, waiting=total - screened, stage=stage,
                               mark=mark)
        if shown is None:
            return ScreenView(topic, reviewer, None, None, screened, total, decided[-1] if decided else None, None,
                              None, order=order, stage=stage, left=left)
    following = next_to_screen(store, topic, reviewer, ranked=ranked, waiting=total - screened, current=shown,
                               stage=stage, mark=mark)
    next_in_queue = following.pmid if following else None
    if shown.pmid in decided:
        at = decided.index(shown.pmid)
        back = decided[at - 1] if at else None
        forward = decided[at + 1] if at + 1 < len(decided) else next_in_queue
    else:
        back, forward = (decided[-1] if decided else None), next_in_queue
    [paper] = load_papers(store, [shown.pmid])
    screening = screening_of(store, topic, [paper.pmid], reviewer=reviewer, stage=stage)[paper.pmid]
    events = tuple(list_events(store, pmids=[paper.pmid]))
    relevance = scores_of(store, [topic.slug], [paper.pmid]).get(paper.pmid) if ranked else None
    return ScreenView(topic, reviewer, paper, screening, screened, total, back, forward, next_in_queue, events,
                      paper_trials(paper), order=order, relevance=relevance, stage=stage, left=left,
                      facts=facts_view(paper, stored_facts(store, [paper.pmid]).get(paper.pmid)))


__all__ = ["ScreenView", "screen_view"]
