"""What every request of one running web app shares, typed: `WebApp` (the settings, the store, who may come in,
the templates, the topic files, the charts kept between requests, the background relevance refresher), made once by
tracker/web/app.py `create_app` and handed to each request through Starlette's lifespan state (`web_of`)."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar, cast

from anyio import CapacityLimiter, to_thread
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from tracker._version import __version__
from tracker.errors import ConfigError, UnknownTopicError
from tracker.facts import DESIGNS, POPULATIONS, design_label, population_label
from tracker.ncbi.evidence import TIER_RULES, tier_label
from tracker.ncbi.notices import describe_status
from tracker.outputs.render import moment
from tracker.review.relevance import RelevanceRefresher
from tracker.review.states import STATES, STATES_AT, Stage
from tracker.settings import Settings
from tracker.store import Store
from tracker.text import plural
from tracker.topics import Topic, TopicScan, scan_topics
from tracker.views.paper import MARK_NAMES
from tracker.views.status import TopicSummary
from tracker.web.accounts import PASSWORD_CHECKS_AT_ONCE
from tracker.web.security import CSRF_FIELD, Access

HERE = Path(__file__).parent
# Worker threads of the slow lane (WebApp.in_slow_lane), apart from the pages' TRACKER_WEB_THREADS: as many of the
# costliest searches as this run at once while screening goes on (BENCHMARKS.md, load).
SLOW_LANE_THREADS = 4
T = TypeVar("T")
SCRIPT = "htmx-2.0.11.min.js"  # vendored, pinned: tracker/web/static/htmx-LICENSE.txt


def environment() -> Environment:
    """Jinja2 with autoescaping on for every template: every field of every record is text, never markup."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(tiers=TIER_RULES, states=STATES, full_text_states=STATES_AT[Stage.FULL_TEXT],
                       tier_label=tier_label, script=SCRIPT, version=__version__,
                       csrf_field=CSRF_FIELD, describe_status=describe_status, plural=plural, mark_names=MARK_NAMES,
                       design_label=design_label, designs=[(design, design_label(design)) for design in DESIGNS],
                       populations=[(value, population_label(value)) for value in POPULATIONS])
    env.filters["when"] = lambda value: moment(value) if value else ""
    env.filters["marked"] = marked
    env.filters["number"] = lambda value: f"{value:,}" if isinstance(value, int) else ("" if value is None else value)
    return env


def marked(text, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Markup:
    """`text`, escaped, with the words that begin with one of `include` in <mark class="for"> and those of `exclude`
    in <mark class="against"> (the screening page's highlighting; a word in both lists is marked against)."""
    escaped = str(escape(text))
    marker = _marker(tuple(include), tuple(exclude))
    return Markup(marker.sub(escaped) if marker is not None else escaped)


@dataclass(frozen=True)
class _Marker:
    pattern: re.Pattern[str]
    kinds: dict[str, str]

    def sub(self, escaped: str) -> str:
        return self.pattern.sub(self._mark, escaped)

    def _mark(self, found: re.Match) -> str:
        return f'<mark class="{self.kinds[found.group(1).casefold()]}">{found.group(0)}</mark>'


@lru_cache(maxsize=256)
def _marker(include: tuple[str, ...], exclude: tuple[str, ...]) -> _Marker | None:
    """The pattern of `marked` for a topic's words, built once: a screening page marks each piece of its text."""
    kinds = {term.casefold(): "for" for term in include if term.strip()}
    kinds.update({term.casefold(): "against" for term in exclude if term.strip()})
    if not kinds:
        return None
    # Not inside an entity the escaping wrote (&amp;, &#39;).
    return _Marker(re.compile(r"(?<![&#])\b(" + "|".join(re.escape(str(escape(term)))
                                                        for term in sorted(kinds, key=len, reverse=True))
                              + r")[\w-]*", re.IGNORECASE), kinds)


class ScanCache:
    """The topic files, read again when the folder or a file in it changed: looked at (a stat of each file, not a
    parse) at most every `LOOK_EVERY` seconds, and at once after the app saved a topic itself (`forget`)."""

    LOOK_EVERY = 1.0

    def __init__(self, settings: Settings):
        self.settings = settings
        self._key: tuple | None = None
        self._scan: TopicScan | None = None
        self._looked = -math.inf
        self._lock = threading.Lock()

    def scan(self) -> TopicScan:
        now = time.monotonic()
        with self._lock:
            if self._scan is not None and now - self._looked < self.LOOK_EVERY:
                return self._scan
        folder = self.settings.queries_dir
        try:
            key = tuple(sorted((path.name, info.st_mtime_ns, info.st_size)
                               for path in folder.glob("*.toml") for info in (path.stat(),)))
        except OSError:
            key = ()
        with self._lock:
            if self._scan is None or key != self._key:
                self._scan, self._key = scan_topics(folder), key
            self._looked = now
            return self._scan

    def forget(self) -> None:
        with self._lock:
            self._looked = -math.inf

    def topic(self, slug: str) -> Topic:
        """The topic `slug`; a bad file is its one-line error, an unknown slug a 404 page (UnknownTopicError)."""
        scan = self.scan()
        if slug in scan.errors:
            raise ConfigError(scan.errors[slug])
        if slug not in scan.topics:
            raise UnknownTopicError(f"no topic '{slug}': the Topics page lists them", slug=slug)
        return scan.topics[slug]


@dataclass
class WebApp:
    """What every page of one running app shares: the settings, the store, who may come in, the templates, the
    topic files, the charts kept between requests, and the background relevance refresher."""

    settings: Settings
    store: Store
    access: Access
    env: Environment = field(default_factory=environment)
    scans: ScanCache = field(init=False)
    charts: Charts = field(init=False)
    # Decisions made here retrain their topic's relevance model in the background (tracker/review/relevance.py).
    refresher: RelevanceRefresher = field(init=False)
    logins_waiting: int = field(default=0, init=False)  # logins between their form and their answer (tracker/web/auth.py)
    _password_limiter: CapacityLimiter | None = field(default=None, init=False, repr=False)
    _slow_lane: CapacityLimiter | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.scans = ScanCache(self.settings)
        self.charts = Charts()
        self.refresher = RelevanceRefresher(self.store, lambda slug: self.scans.scan().topics.get(slug),
                                            separate_process=True)

    def password_limiter(self) -> CapacityLimiter:
        """The password checks' own worker threads, PASSWORD_CHECKS_AT_ONCE of them: a login waiting for one waits
        in the event loop, not in a thread a page needs (made on first use: anyio wants its event loop then)."""
        if self._password_limiter is None:
            self._password_limiter = CapacityLimiter(PASSWORD_CHECKS_AT_ONCE)
        return self._password_limiter

    async def in_slow_lane(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`function` on one of the slow lane's SLOW_LANE_THREADS worker threads: the work whose cost the person
        asking sets (searches, exports, feeds, PubMed queries) waits there for its turn, and never takes the few
        threads the screening and reading pages share (TRACKER_WEB_THREADS)."""
        if self._slow_lane is None:
            self._slow_lane = CapacityLimiter(SLOW_LANE_THREADS)
        return await to_thread.run_sync(partial(function, *args, **kwargs), limiter=self._slow_lane)

    def render(self, request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
        session = getattr(request.state, "session", None)
        html = self.env.get_template(template).render(request=request, session=session, team=self.access.team,
                                                      csrf=session.csrf if session else "", path=request.url.path,
                                                      **context)
        return HTMLResponse(html, status_code=status_code)

    def error(self, request: Request, status_code: int, message: str) -> HTMLResponse:
        return self.render(request, "error.html", status_code=status_code, message=message)


def web_of(request: Request) -> WebApp:
    """The app's shared state, as the lifespan handed it to this request."""
    return cast(WebApp, request.state.web)


@dataclass(frozen=True)
class Bar:
    month: date
    count: int
    x: int
    y: int
    height: int


class Charts:
    """Papers per month by PubMed's create date (the digest chart's counts, tracker/outputs/charts.py), per topic,
    kept until the topic's last run or paper count changes: they cost a join over the topic's papers."""

    def __init__(self):
        self._kept: dict[tuple, list[Bar]] = {}
        self._lock = threading.Lock()

    def bars(self, store, summary: TopicSummary, today: date) -> list[Bar]:
        from tracker.outputs.charts import chart_months
        from tracker.store.digests import monthly_received_counts

        key = (summary.slug, summary.last_run.id if summary.last_run else None, summary.papers, today)
        with self._lock:
            if key in self._kept:
                return self._kept[key]
        end = datetime.combine(today, datetime.min.time(), timezone.utc)
        start, _ = chart_months(end)
        counts = monthly_received_counts(store, summary.slug, start.date(), today + timedelta(days=1))
        top = max((count for _, count in counts), default=0) or 1
        bars = [Bar(month, count, index * 5, 30 - round(28 * count / top), round(28 * count / top))
                for index, (month, count) in enumerate(counts)]
        with self._lock:
            self._kept = {k: v for k, v in self._kept.items() if k[0] != summary.slug} | {key: bars}
        return bars



__all__ = ["WebApp", "web_of", "ScanCache", "Charts", "Bar", "environment", "marked", "HERE", "SCRIPT"]
