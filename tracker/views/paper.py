"""One paper as the web app shows it: its record, links, trial registrations, status changes, and its screening in
each of its topics as the reader may see it (blind rules: tracker/review/states.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracker.ncbi.pubmed import Paper
from tracker.ncbi.registries import TrialId
from tracker.review.screening import PaperScreening
from tracker.settings import Settings
from tracker.store import Store
from tracker.store.changes import EventView
from tracker.store.decisions import ReviewerDecision
from tracker.text import doi_url, pmc_url, pubmed_url
from tracker.topics import TopicScan, scan_topics


@dataclass(frozen=True)
class PaperTopic:
    """One topic a paper belongs to, with its screening there as the reader may see it."""

    slug: str
    title: str
    first_seen_at: datetime
    screening: PaperScreening | None  # None: the topic's file does not load
    history: tuple[ReviewerDecision, ...]  # the decisions on the paper in this topic the reader may see, oldest first
    full_text: PaperScreening | None = None  # its screening at full text, once included by title and abstract


class PaperLinks:
    """The links a page shows beside a paper (the digest's, tracker/outputs/digest.py)."""

    paper: Paper | None

    @property
    def pubmed_url(self) -> str | None:
        return pubmed_url(self.paper.pmid) if self.paper else None

    @property
    def doi_url(self) -> str | None:
        return doi_url(self.paper.doi) if self.paper else None

    @property
    def pmc_url(self) -> str | None:
        return pmc_url(self.paper.pmcid) if self.paper else None


@dataclass(frozen=True)
class PaperView(PaperLinks):
    paper: Paper
    tier: str
    events: tuple[EventView, ...]
    topics: tuple[PaperTopic, ...]
    trials: tuple[TrialId, ...]



def paper_view(store: Store, settings: Settings, pmid: int, *, reviewer: str | None,
               scan: TopicScan | None = None) -> PaperView | None:
    """Everything the store knows of a paper, its screening in each topic as `reviewer` may see it (blind rules:
    tracker.review.screening.view_of); None when the store lacks it."""
    from tracker.ncbi.evidence import classify
    from tracker.review.screening import paper_stages
    from tracker.store.changes import list_events
    from tracker.store.membership import memberships
    from tracker.store.papers import load_papers

    found = load_papers(store, [pmid])
    if not found:
        return None
    paper = found[0]
    scan = scan or scan_topics(settings.queries_dir)
    topics = []
    for slug, seen in memberships(store, [pmid]).get(pmid, {}).items():
        topic = scan.topics.get(slug)
        if topic is None:
            topics.append(PaperTopic(slug, slug, seen, None, ()))
            continue
        first, later, shown = paper_stages(store, topic, pmid, reviewer=reviewer)
        topics.append(PaperTopic(slug, topic.title, seen, first, shown, later))
    events = tuple(list_events(store, pmids=[pmid]))
    return PaperView(paper=paper, tier=classify(paper.publication_types), events=events, topics=tuple(topics),
                     trials=paper_trials(paper))


def paper_trials(paper: Paper) -> tuple[TrialId, ...]:
    """The paper's trial registrations; a stored paper's DataBank accessions are read from its stored record."""
    from dataclasses import replace

    from tracker.ncbi.pubmed import iter_papers
    from tracker.ncbi.registries import trial_ids

    if not paper.databanks and paper.xml and b"<DataBankList" in paper.xml:
        parsed = next(iter_papers(b"<PubmedArticleSet>" + paper.xml + b"</PubmedArticleSet>"), None)
        if parsed is not None:
            paper = replace(paper, databanks=parsed.databanks)
    return trial_ids(paper)


__all__ = ["PaperTopic", "PaperLinks", "PaperView", "paper_view", "paper_trials"]
