"""The reading pages: Topics, Topic (with its exports), Paper, Search, Runs and PRISMA.

Each route reads its view from tracker/views.py (or the library call the CLI makes) and renders it; none
holds SQL or rules of its own.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tracker.errors import ConfigError, SearchSyntaxError
from tracker.ncbi.evidence import TIER_INDEX
from tracker.review.screening import check_state
from tracker.store.browse import Cursor, PaperFilter
from tracker.topics import TopicScan, scan_topics
from tracker.views import SEARCH_WITHIN, TopicSummary, paper_view, status_view, topic_page, topic_summaries

CHART_MONTHS = 24
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "ris": "application/x-research-info-systems",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
FILTER_KEYS = ("state", "tier", "from", "to", "late", "retracted", "q", "sort")


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


def routes(web) -> list[Route]:
    charts = Charts()
    scans = ScanCache(web.settings)

    async def topics(request: Request) -> Response:
        def read():
            summaries = topic_summaries(web.store, web.settings, scan=scans.scan())
            today = datetime.now(timezone.utc).date()
            return summaries, {s.slug: charts.bars(web.store, s, today) for s in summaries if s.topic}

        summaries, bars = await run_in_threadpool(read)
        return web.render(request, "topics.html", summaries=summaries, bars=bars)

    async def topic(request: Request) -> Response:
        slug = request.path_params["slug"]
        session = request.state.session
        filters, sort, search = read_filters(request)
        after = Cursor.decode(request.query_params.get("after", ""))
        before = Cursor.decode(request.query_params.get("before", ""))
        try:
            view = await run_in_threadpool(topic_page, web.store, web.settings, slug, reviewer=session.reviewer,
                                           filters=filters, sort=sort, search=search, after=after, before=before,
                                           scan=scans.scan())
        except SearchSyntaxError as error:
            return web.error(request, 400, str(error))
        shown = {key: value for key, value in request.query_params.items() if key in FILTER_KEYS and value}
        return web.render(request, "topic.html", view=view, topic=view.summary.topic, shown=shown,
                          query_string=_query(shown), search_within=SEARCH_WITHIN,
                          state_only=set(shown) <= {"state", "sort"})

    async def export(request: Request) -> Response:
        slug, fmt = request.path_params["slug"], request.path_params["fmt"]
        if fmt not in EXPORT_TYPES:
            return web.error(request, 404, f"no export as {fmt}: use csv, ris or xlsx")
        filters, _, search = read_filters(request)
        topic = scans.topic(slug)
        data = await run_in_threadpool(export_bytes, web, topic, fmt, filters, search, request.state.session.reviewer)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
        return StreamingResponse(iter([data]), media_type=EXPORT_TYPES[fmt], headers={
            "content-disposition": f'attachment; filename="{slug}-{stamp}.{fmt}"'})

    async def paper(request: Request) -> Response:
        pmid = request.path_params["pmid"]
        view = await run_in_threadpool(paper_view, web.store, web.settings, pmid,
                                       reviewer=request.state.session.reviewer, scan=scans.scan())
        if view is None:
            return web.error(request, 404, f"PMID {pmid} is not stored: search PubMed for it on the Query page")
        return web.render(request, "paper.html", view=view, paper=view.paper)

    async def search(request: Request) -> Response:
        from tracker.store.search import search_papers

        text = " ".join(request.query_params.get("q", "").split())
        slug = request.query_params.get("topic") or None
        hits, error = [], None
        if text:
            try:
                hits = await run_in_threadpool(search_papers, web.store, text, topic=slug, limit=50)
            except ConfigError as found:
                error = str(found)
        return web.render(request, "search.html", text=text, slug=slug, hits=hits, error=error,
                          topics=sorted(scans.scan().topics.values(), key=lambda t: t.slug), status_code=400 if error else 200)

    async def runs(request: Request) -> Response:
        view = await run_in_threadpool(status_view, web.store, web.settings, limit=50, scan=scans.scan())
        return web.render(request, "runs.html", view=view, zone=web.settings.zone)

    async def prisma(request: Request) -> Response:
        from tracker.review.prisma import prisma_counts

        topic = scans.topic(request.path_params["slug"])
        counts = await run_in_threadpool(prisma_counts, web.store, topic)
        return web.render(request, "prisma.html", topic=topic, counts=counts)

    async def prisma_svg(request: Request) -> Response:
        from tracker.review.prisma import prisma_counts, render_svg

        topic = scans.topic(request.path_params["slug"])
        counts = await run_in_threadpool(prisma_counts, web.store, topic)
        return Response(render_svg(counts), media_type="image/svg+xml")

    web.scans = scans
    return [
        Route("/", topics, name="topics"),
        Route("/topics/{slug}", topic, name="topic"),
        Route("/topics/{slug}/export.{fmt}", export, name="export"),
        Route("/topics/{slug}/prisma", prisma, name="prisma"),
        Route("/topics/{slug}/prisma.svg", prisma_svg, name="prisma_svg"),
        Route("/papers/{pmid:int}", paper, name="paper"),
        Route("/search", search, name="search"),
        Route("/runs", runs, name="runs"),
    ]


class ScanCache:
    """The topic files, read again when the folder or a file in it changed (a stat per request, not a parse)."""

    def __init__(self, settings):
        self.settings = settings
        self._key: tuple | None = None
        self._scan: TopicScan | None = None
        self._lock = threading.Lock()

    def scan(self) -> TopicScan:
        folder = self.settings.queries_dir
        try:
            key = tuple(sorted((path.name, path.stat().st_mtime_ns, path.stat().st_size)
                               for path in folder.glob("*.toml")))
        except OSError:
            key = ()
        with self._lock:
            if self._scan is None or key != self._key:
                self._scan, self._key = scan_topics(folder), key
            return self._scan

    def topic(self, slug: str):
        scan = self.scan()
        if slug in scan.errors:
            raise ConfigError(scan.errors[slug])
        if slug not in scan.topics:
            raise ConfigError(f"no topic '{slug}': the Topics page lists them")
        return scan.topics[slug]


def read_filters(request: Request) -> tuple[PaperFilter, str, str]:
    """The topic page's filters from its query string; a value that is not one is refused in one line."""
    params = request.query_params
    state = check_state(params.get("state") or None)
    tier = params.get("tier") or None
    if tier is not None and tier not in TIER_INDEX:
        raise ConfigError(f"unknown evidence tier {tier!r}: use one of {', '.join(TIER_INDEX)}")
    years = []
    for key in ("from", "to"):
        value = params.get(key, "").strip()
        if value and not (value.isdigit() and len(value) == 4):
            raise ConfigError(f"'{value}' is not a year: give four digits, such as 2021")
        years.append(int(value) if value else None)
    sort = params.get("sort") or "newest"
    filters = PaperFilter(state=state, tier=tier, year_from=years[0], year_to=years[1],
                          late=params.get("late") == "1", retracted=params.get("retracted") == "1")
    return filters, sort, params.get("q", "")


def export_bytes(web, topic, fmt: str, filters: PaperFilter, search: str, reviewer: str) -> bytes:
    """The export of the topic page's current filter: the export module's own selection when the filter is the
    screening state alone (every format); otherwise the filter's papers, in the page's order (CSV and RIS)."""
    from tracker.outputs.export import export_papers, rows_for_pmids, write_csv

    buffer = io.BytesIO()
    if filters == PaperFilter(state=filters.state) and not search:
        export_papers(web.store, [topic], buffer, fmt=fmt, state=filters.state)
        return buffer.getvalue()
    if fmt == "xlsx":
        raise ConfigError("the Excel export follows the screening-state filter only: clear the other filters, "
                          "or export CSV")
    pmids = filtered_pmids(web, topic, filters, search, reviewer)
    if fmt == "csv":
        write_csv(rows_for_pmids(web.store, pmids, [topic]), buffer)
    else:
        write_ris_for(web.store, topic, pmids, buffer)
    return buffer.getvalue()


def filtered_pmids(web, topic, filters: PaperFilter, search: str, reviewer: str) -> list[int]:
    from dataclasses import replace

    from tracker.store.browse import list_topic_page
    from tracker.store.search import search_papers

    if search:
        filters = replace(filters, pmids=tuple(hit.pmid for hit in search_papers(web.store, search, topic=topic.slug,
                                                                                  limit=SEARCH_WITHIN)))
    blind = reviewer if topic.screening.blind else None
    pmids: list[int] = []
    after = None
    while True:
        page = list_topic_page(web.store, topic.slug, topic.screening.reviewers, filters=filters, blind_reviewer=blind,
                               after=after, limit=5000)
        pmids += [row.pmid for row in page.rows]
        if not page.more_after:
            return pmids
        after = page.rows[-1].cursor()


def write_ris_for(store, topic, pmids: list[int], file) -> int:
    """RIS records of `pmids`, as `tracker export --format ris` writes each one."""
    from tracker.outputs.export import screening_cells, write_ris
    from tracker.store.changes import paper_statuses
    from tracker.store.membership import memberships
    from tracker.store.papers import load_papers

    papers = load_papers(store, pmids)
    found = memberships(store, pmids)
    members = {paper.pmid: list(found.get(paper.pmid, {})) for paper in papers}
    cells = screening_cells(store, [topic], [(pmid, members[pmid]) for pmid in members])
    statuses = paper_statuses(store, pmids)
    return write_ris(((paper, members[paper.pmid], statuses.get(paper.pmid), cells[paper.pmid]) for paper in papers),
                     file)


def _query(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


__all__ = ["routes", "read_filters", "export_bytes", "ScanCache", "Charts", "EXPORT_TYPES"]
