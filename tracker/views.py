"""Views shared by every face: what `tracker topics`, `tracker status`, the scheduler's logs and the web app show.

A view reads the store and the topic files and returns plain data (dataclasses of values and records); it
never prints or renders. The CLI formats a view as a table, the web app as a page, from the same call, so the
two always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from tracker.errors import ConfigError
from tracker.ncbi.pubmed import Paper
from tracker.ncbi.registries import TrialId
from tracker.review.screening import PaperScreening
from tracker.runs.watch import HealthFlag, topic_health
from tracker.settings import Settings
from tracker.store import Store
from tracker.store.browse import SORTS, Cursor, Page, PaperFilter
from tracker.store.changes import EventView
from tracker.store.decisions import ReviewerDecision
from tracker.text import doi_url, pmc_url, pubmed_url
from tracker.topics import Topic, TopicScan, scan_topics

RESULT_WORDS = {"succeeded": "ok", "failed": "failed", "running": "running"}


@dataclass(frozen=True)
class RunView:
    id: int
    topic: str
    kind: str  # backfill, fetch, query, import
    status: str  # running, succeeded, failed
    started_at: datetime
    finished_at: datetime | None
    new_papers: int
    matched: int
    requests: int
    window_start: date | None
    window_end: date | None
    error: str | None

    @property
    def seconds(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None

    @property
    def result(self) -> str:
        return RESULT_WORDS.get(self.status, self.status)

    @property
    def moment(self) -> datetime:
        return self.finished_at or self.started_at


@dataclass(frozen=True)
class TopicSummary:
    """One topic file, good or bad, with what the store knows of it."""

    slug: str
    topic: Topic | None  # None: the file does not load (`file_error` says why)
    file_error: str | None
    papers: int
    last_run: RunView | None
    health: tuple[HealthFlag, ...]
    states: dict[str, int]  # screening state -> papers (tracker/review/screening.py)
    schedule: str | None = None  # as `tracker schedule` runs it ("0 6 * * *", or "every 5 s")
    next_run: datetime | None = None

    @property
    def title(self) -> str:
        return self.topic.title if self.topic else "(bad file: not loaded)"

    @property
    def new_in_last_run(self) -> int | None:
        return self.last_run.new_papers if self.last_run and self.last_run.status == "succeeded" else None

    @property
    def unscreened(self) -> int:
        return self.states.get("unscreened", 0)


def run_view(run) -> RunView:
    return RunView(id=run.id, topic=run.topic, kind=run.kind, status=run.status, started_at=run.started_at,
                   finished_at=run.finished_at, new_papers=run.new_papers, matched=run.matched, requests=run.requests,
                   window_start=run.window_start, window_end=run.window_end, error=run.error)


def topic_summaries(store: Store, settings: Settings, *, topic: str | None = None, scan: TopicScan | None = None,
                    schedules: bool = False, now: datetime | None = None) -> list[TopicSummary]:
    """Every topic file (bad ones included), sorted by slug, or only `topic`; `schedules` adds each topic's
    schedule and next run time (as `tracker status` shows them)."""
    from tracker.store.decisions import state_counts
    from tracker.store.membership import member_counts
    from tracker.store.runs import last_runs

    scan = scan or scan_topics(settings.queries_dir)
    slugs = sorted(set(scan.topics) | set(scan.errors))
    if topic is not None:
        slugs = [slug for slug in slugs if slug == topic]
    counts, runs = member_counts(store, slugs), last_runs(store)
    health = topic_health(store, slugs, quiet_weeks=settings.quiet_weeks)
    summaries = []
    for slug in slugs:
        found, run = scan.topics.get(slug), runs.get(slug)
        schedule = next_run = None
        if schedules and found is not None:
            from tracker.schedule import describe_schedule, next_fire_time

            schedule = describe_schedule(found.schedule, settings)
            next_run = next_fire_time(found.schedule, settings, now or datetime.now(settings.zone))
        summaries.append(TopicSummary(
            slug=slug, topic=found, file_error=scan.errors.get(slug), papers=counts.get(slug, 0),
            last_run=run_view(run) if run else None, health=tuple(health.get(slug, ())),
            states=state_counts(store, slug, found.screening.reviewers, members=counts.get(slug, 0)) if found else {},
            schedule=schedule, next_run=next_run))
    return summaries


def recent_runs(store: Store, *, limit: int = 20, topic: str | None = None) -> list[RunView]:
    from tracker.store.runs import recent_runs as stored_runs

    return [run_view(run) for run in stored_runs(store, limit=limit, topic=topic)]


@dataclass(frozen=True)
class StatusView:
    topics: list[TopicSummary]
    runs: list[RunView]

    @property
    def file_errors(self) -> list[str]:
        return [summary.file_error for summary in self.topics if summary.file_error]


def status_view(store: Store, settings: Settings, *, topic: str | None = None, limit: int = 20,
                scan: TopicScan | None = None, now: datetime | None = None) -> StatusView:
    """What `tracker status` shows: each topic's last run, result, schedule and health, then the recent runs."""
    topics = (topic_summaries(store, settings, topic=topic, scan=scan, schedules=True, now=now)
              if settings.queries_dir.is_dir() else [])
    return StatusView(topics=topics, runs=recent_runs(store, limit=limit, topic=topic))


def health_of(summaries: Sequence[TopicSummary]) -> dict[str, tuple[HealthFlag, ...]]:
    return {summary.slug: summary.health for summary in summaries if summary.health}




# -- the web app's pages (tracker/web): a topic's papers, one paper, the screening queue ------------------

TOPIC_PAGE_SIZE = 50
SEARCH_WITHIN = 500  # a search within a topic lists its best matches, at most this many, in the page's order


@dataclass(frozen=True)
class TopicPage:
    summary: TopicSummary
    page: Page
    sort: str
    filters: PaperFilter
    search: str
    matches: int | None  # with a search: how many of the topic's papers it found (at most SEARCH_WITHIN)
    # Filtered views cost a count over the topic; the page says "papers in this view" only when asked for.
    total: int
    ranking: str = ""  # "ordered by 48 earlier decisions in this topic" or "ranking starts after 2 more decisions"


def topic_page(store: Store, settings: Settings, slug: str, *, reviewer: str | None, filters: PaperFilter,
               sort: str = "newest", search: str = "", after: Cursor | None = None, before: Cursor | None = None,
               limit: int = TOPIC_PAGE_SIZE, scan: TopicScan | None = None) -> TopicPage:
    """One page of a topic's papers, filtered and sorted, with screening states as `reviewer` may see them."""
    from dataclasses import replace

    from tracker.store.browse import count_members, list_topic_page
    from tracker.store.search import search_papers

    found: list[TopicSummary | None] = [*topic_summaries(store, settings, topic=slug, scan=scan)] or [None]
    [summary] = found
    if summary is None or summary.topic is None:
        raise ConfigError(f"no topic '{slug}': 'tracker topics' lists them")
    topic = summary.topic
    if sort not in SORTS:
        raise ConfigError(f"unknown order {sort!r}: use one of {', '.join(SORTS)}")
    matches = None
    search = " ".join(search.split())
    if search:
        hits = search_papers(store, search, topic=slug, limit=SEARCH_WITHIN)
        filters = replace(filters, pmids=tuple(hit.pmid for hit in hits))
        matches = len(hits)
    blind = reviewer if topic.screening.blind else None
    page = list_topic_page(store, slug, topic.screening.reviewers, filters=filters, sort=sort, blind_reviewer=blind,
                           after=after, before=before, limit=limit)
    ranking = ""
    if sort == "relevance":
        from tracker.review.relevance import ranking_status

        ranking = ranking_status(store, topic).sentence
    return TopicPage(summary=summary, page=page, sort=sort, filters=filters, search=search, matches=matches,
                     total=count_members(store, slug), ranking=ranking)


@dataclass(frozen=True)
class PaperTopic:
    """One topic a paper belongs to, with its screening there as the reader may see it."""

    slug: str
    title: str
    first_seen_at: datetime
    screening: PaperScreening | None  # None: the topic's file does not load
    history: tuple[ReviewerDecision, ...]  # the decisions on the paper in this topic the reader may see, oldest first


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
    from tracker.review.screening import view_of
    from tracker.store.changes import list_events
    from tracker.store.decisions import current_decisions, decision_history, summaries
    from tracker.store.membership import memberships
    from tracker.store.papers import load_papers

    found = load_papers(store, [pmid])
    if not found:
        return None
    paper = found[0]
    scan = scan or scan_topics(settings.queries_dir)
    topics_seen = list(memberships(store, [pmid]).get(pmid, {}).items())
    slugs = [slug for slug, _ in topics_seen]
    current = current_decisions(store, slugs, [pmid])
    history = decision_history(store, pmid, slugs)
    topics = []
    for slug, seen in topics_seen:
        topic = scan.topics.get(slug)
        if topic is None:
            topics.append(PaperTopic(slug, slug, seen, None, ()))
            continue
        screening = view_of(topic, pmid, summaries(store, slug, [pmid]).get(pmid), current.get((slug, pmid), ()),
                            reviewer=reviewer)
        shown = tuple(entry for entry in history if entry.topic == slug
                      and (not screening.hidden or entry.reviewer == reviewer))
        topics.append(PaperTopic(slug, topic.title, seen, screening, shown))
    events = tuple(list_events(store, ids=ids)) if (ids := _event_ids(store, pmid)) else ()
    return PaperView(paper=paper, tier=classify(paper.publication_types), events=events, topics=tuple(topics),
                     trials=paper_trials(paper))


def _event_ids(store: Store, pmid: int) -> list[int]:
    from sqlalchemy import select
    from sqlmodel import col

    from tracker.store.models import StatusEvent

    with store.engine.connect() as connection:
        ids = connection.execute(select(col(StatusEvent.id)).where(col(StatusEvent.pmid) == pmid)).scalars()
        return [cast(int, event_id) for event_id in ids]  # a stored event always has its id


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

    @property
    def tier(self) -> str:
        from tracker.ncbi.evidence import classify

        return classify(self.paper.publication_types) if self.paper else "other"


def screen_view(store: Store, topic: Topic, *, reviewer: str, pmid: int | None = None) -> ScreenView:
    """The paper `pmid` of `topic` (or the first of `reviewer`'s queue) as the screening page shows it."""
    from tracker.review.relevance import ranking_status
    from tracker.review.screening import view_of
    from tracker.store.browse import count_members, neighbours, queue_pmids, screened_count
    from tracker.store.changes import list_events
    from tracker.store.decisions import current_decisions, summaries
    from tracker.store.membership import first_seen
    from tracker.store.papers import load_papers
    from tracker.store.relevance import decision_mark, scores_of

    mode = topic.screening
    total = count_members(store, topic.slug)
    screened = screened_count(store, topic.slug, mode.reviewers, reviewer)
    status = ranking_status(store, topic)
    ranked = status.ranked
    order = f"{'most relevant' if ranked else 'newest'} first: {status.sentence}"
    mark = decision_mark(store, topic.slug) if ranked else 0
    seen = first_seen(store, topic.slug, pmid) if pmid is not None else None
    if pmid is None or seen is None:
        first = ([row] if (row := _relevance_next(store, topic, reviewer, total - screened, None, mark)) else []) \
            if ranked else queue_pmids(store, topic.slug, mode.reviewers, reviewer, limit=1)
        if not first:
            return ScreenView(topic, reviewer, None, None, screened, total, None, None, None, order=order)
        pmid, seen = first[0].pmid, first[0].first_seen_at
    at = Cursor(seen, pmid)
    newer, older = neighbours(store, topic.slug, at)
    if ranked:
        following = [row] if (row := _relevance_next(store, topic, reviewer, total - screened, pmid, mark)) else []
    else:
        following = queue_pmids(store, topic.slug, mode.reviewers, reviewer, after=at, limit=1)
        if not following:  # wrap round to the newest paper still waiting, if it is not this one
            following = [row for row in queue_pmids(store, topic.slug, mode.reviewers, reviewer, limit=2)
                         if row.pmid != pmid]
    [paper] = load_papers(store, [pmid])
    screening = view_of(topic, pmid, summaries(store, topic.slug, [pmid]).get(pmid),
                        current_decisions(store, [topic.slug], [pmid]).get((topic.slug, pmid), ()), reviewer=reviewer)
    events = tuple(list_events(store, ids=ids)) if (ids := _event_ids(store, pmid)) else ()
    relevance = scores_of(store, [topic.slug], [pmid]).get(pmid) if ranked else None
    return ScreenView(topic, reviewer, paper, screening, screened, total, newer, older,
                      following[0].pmid if following else None, events, paper_trials(paper), order=order,
                      relevance=relevance)


def _relevance_next(store: Store, topic: Topic, reviewer: str, waiting: int, skip: int | None, mark: int):
    """The next paper of a ranked topic's queue: the most relevant one still waiting, or, one time in twenty
    (tracker.review.ranking.EXPLORE), one drawn from the lower-scored half, so that the model also learns from papers
    unlike those it already likes. The draw is seeded by the topic, the reviewer, the topic's newest decision and
    the paper on screen: reloading a page shows the same paper, and each decision moves the queue on."""
    import random

    from tracker.review.ranking import EXPLORE
    from tracker.store.browse import queue_by_relevance

    draw = random.Random(f"{topic.slug}/{reviewer}/{mark}/{skip}")
    offset = 0
    if waiting > 3 and draw.random() < EXPLORE:
        offset = draw.randrange(waiting // 2, waiting - 1)
    found = queue_by_relevance(store, topic.slug, topic.screening.reviewers, reviewer, skip=skip, offset=offset)
    if found is None and offset:
        found = queue_by_relevance(store, topic.slug, topic.screening.reviewers, reviewer, skip=skip)
    return found


__all__ = ["RESULT_WORDS", "RunView", "TopicSummary", "StatusView", "run_view", "topic_summaries", "recent_runs",
           "status_view", "health_of", "TopicPage", "topic_page", "PaperTopic", "PaperView", "paper_view",
           "paper_trials", "PaperLinks", "ScreenView", "screen_view", "TOPIC_PAGE_SIZE", "SEARCH_WITHIN"]
