"""What `tracker topics`, `tracker status`, the scheduler's logs and the web app's Topics and Runs pages show: each
topic file (bad ones included) with its papers, last run, schedule, health and screening counts, and the recent runs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

from tracker.review.screening import count_states
from tracker.runs.suggest import WARNING_PREFIX
from tracker.runs.watch import HealthFlag, topic_health
from tracker.settings import Settings
from tracker.store import Store
from tracker.store.database import reads_on_one_connection
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
    # The suggestion pass's warnings (tracker/runs/suggest.py): the run succeeded, but its suggestions may lag.
    notes: tuple[str, ...] = ()

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
                   window_start=run.window_start, window_end=run.window_end, error=run.error,
                   notes=tuple(warning for warning in run.warnings or () if warning.startswith(WARNING_PREFIX)))


class _HealthKept:
    """Health flags as last computed, kept while nothing they are made of changed: the topics' latest runs (id,
    status, end), their paper counts, the hour (the quiet flag counts weeks) and the setting. A web page then
    costs no three queries over the runs and memberships; the CLI computes them once anyway."""

    def __init__(self, size: int = 64):
        self._kept: dict[tuple, dict[str, list[HealthFlag]]] = {}
        self._size = size
        self._lock = threading.Lock()

    def flags(self, store: Store, slugs: list[str], runs: dict, counts: dict[str, int],
              quiet_weeks: int) -> dict[str, list[HealthFlag]]:
        now = datetime.now(timezone.utc)
        key = (store.url, tuple(slugs), quiet_weeks, now.strftime("%Y-%m-%dT%H"),
               tuple((slug, counts.get(slug, 0), *((runs[slug].id, runs[slug].status, runs[slug].finished_at)
                                                   if slug in runs else ())) for slug in slugs))
        with self._lock:
            if key in self._kept:
                return self._kept[key]
        found = topic_health(store, slugs, quiet_weeks=quiet_weeks, now=now)
        with self._lock:
            if len(self._kept) >= self._size:
                self._kept.pop(next(iter(self._kept)))
            self._kept[key] = found
        return found


_HEALTH = _HealthKept()


@reads_on_one_connection
def topic_summaries(store: Store, settings: Settings, *, topic: str | None = None, scan: TopicScan | None = None,
                    schedules: bool = False, now: datetime | None = None) -> list[TopicSummary]:
    """Every topic file (bad ones included), sorted by slug, or only `topic`; `schedules` adds each topic's
    schedule and next run time (as `tracker status` shows them)."""
    from tracker.store.membership import member_counts
    from tracker.store.runs import last_runs

    scan = scan or scan_topics(settings.queries_dir)
    slugs = sorted(set(scan.topics) | set(scan.errors))
    if topic is not None:
        slugs = [slug for slug in slugs if slug == topic]
    counts, runs = member_counts(store, slugs), last_runs(store)
    health = _HEALTH.flags(store, slugs, runs, counts, settings.quiet_weeks)
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
            states=count_states(store, found, members=counts.get(slug, 0)) if found else {},
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


__all__ = ["RESULT_WORDS", "RunView", "TopicSummary", "StatusView", "run_view", "topic_summaries", "recent_runs",
           "status_view", "health_of"]
