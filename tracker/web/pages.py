"""The reading pages: Topics, Topic (with its exports), Paper, Search, Runs and PRISMA.

Each handler reads its view from tracker/views/ (or the library call the CLI makes) and renders it; none holds
SQL or rules of its own. The routes are in one table (tracker/web/app.py `route_table`).
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import datetime, timezone

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tracker.errors import ConfigError, SearchSyntaxError, TimeLimitError
from tracker.facts import DESIGNS, POPULATIONS
from tracker.ncbi.evidence import TIER_INDEX
from tracker.review.states import Stage, check_state
from tracker.store import Store
from tracker.store.listing import Cursor, PaperFilter
from tracker.text import PMID_MAX, parse_pmid, whole_number
from tracker.topics import Topic
from tracker.views.paper import paper_view
from tracker.views.status import status_view, topic_summaries
from tracker.views.topic import SEARCH_WITHIN, describe_search_failure, topic_page
from tracker.web.screen import stage_of
from tracker.web.state import web_of

EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "ris": "application/x-research-info-systems",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "jsonl": "application/jsonl; charset=utf-8"}
FILTER_KEYS = ("stage", "state", "tier", "design", "population", "dose", "from", "to", "late", "retracted", "q", "sort")


async def topics(request: Request) -> Response:
    web = web_of(request)

    def read():
        summaries = topic_summaries(web.store, web.settings, scan=web.scans.scan())
        today = datetime.now(timezone.utc).date()
        return summaries, {s.slug: web.charts.bars(web.store, s, today) for s in summaries if s.topic}

    summaries, bars = await run_in_threadpool(read)
    return web.render(request, "topics.html", summaries=summaries, bars=bars)


async def topic(request: Request) -> Response:
    web = web_of(request)
    slug = request.path_params["slug"]
    session = request.state.session
    filters, sort, search = read_filters(request)
    stage = stage_of(request.query_params.get("stage"))
    after = Cursor.decode(request.query_params.get("after", ""))
    before = Cursor.decode(request.query_params.get("before", ""))
    lane = web.in_slow_lane if search else run_in_threadpool  # a search within the topic costs what its words do
    view = await lane(topic_page, web.store, web.settings, slug, reviewer=session.reviewer, filters=filters, sort=sort,
                      search=search, after=after, before=before, scan=web.scans.scan(), stage=stage)
    shown = {key: value for key, value in request.query_params.items() if key in FILTER_KEYS and value}
    status = (503 if view.search_timed_out else 400) if view.search_error else 200
    return web.render(request, "topic.html", status_code=status, view=view, topic=view.summary.topic, shown=shown,
                      query_string=_query(shown), search_within=SEARCH_WITHIN)


async def export(request: Request) -> Response:
    """The topic page's papers, every one its filters pass, in its order, as CSV, RIS or an Excel workbook."""
    web = web_of(request)
    slug, fmt = request.path_params["slug"], request.path_params["fmt"]
    if fmt not in EXPORT_TYPES:
        return web.error(request, 404, f"no export as {fmt}: use csv, ris, xlsx or jsonl")
    filters, sort, search = read_filters(request)
    chosen = web.scans.topic(slug)
    data = await web.in_slow_lane(export_bytes, web.store, chosen, fmt, filters, sort, search,
                                  request.state.session.reviewer, stage_of(request.query_params.get("stage")))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
    return StreamingResponse(iter([data]), media_type=EXPORT_TYPES[fmt], headers={
        "content-disposition": f'attachment; filename="{slug}-{stamp}.{fmt}"'})


async def paper(request: Request) -> Response:
    web = web_of(request)
    pmid = parse_pmid(request.path_params["pmid"])
    if pmid is None:
        return web.error(request, 404, f"'{request.path_params['pmid']}' is not a PMID (a whole number from 1 to "
                                       f"{PMID_MAX:,}): search for the paper on the Search page")
    view = await run_in_threadpool(paper_view, web.store, web.settings, pmid,
                                   reviewer=request.state.session.reviewer, scan=web.scans.scan())
    if view is None:
        return web.error(request, 404, f"PMID {pmid} is not stored: search PubMed for it on the Query page")
    return web.render(request, "paper.html", view=view, paper=view.paper)


async def search(request: Request) -> Response:
    from tracker.store.search import search_papers

    web = web_of(request)
    text = " ".join(request.query_params.get("q", "").split())
    slug = request.query_params.get("topic") or None
    hits, error, status = [], None, 200
    if text:
        try:
            hits = await web.in_slow_lane(search_papers, web.store, text, topic=slug, limit=50)
        except (SearchSyntaxError, TimeLimitError) as found:
            error, status = describe_search_failure(found), 503 if isinstance(found, TimeLimitError) else 400
        except ConfigError as found:
            error, status = str(found), 400
    return web.render(request, "search.html", text=text, slug=slug, hits=hits, error=error,
                      topics=sorted(web.scans.scan().topics.values(), key=lambda t: t.slug), status_code=status)


async def runs(request: Request) -> Response:
    web = web_of(request)
    view = await run_in_threadpool(status_view, web.store, web.settings, limit=50, scan=web.scans.scan())
    return web.render(request, "runs.html", view=view, zone=web.settings.zone)


async def prisma(request: Request) -> Response:
    from tracker.review.prisma import prisma_counts

    web = web_of(request)
    chosen = web.scans.topic(request.path_params["slug"])
    counts = await run_in_threadpool(prisma_counts, web.store, chosen)
    return web.render(request, "prisma.html", topic=chosen, counts=counts)


async def prisma_svg(request: Request) -> Response:
    from tracker.review.prisma import prisma_counts, render_svg

    web = web_of(request)
    chosen = web.scans.topic(request.path_params["slug"])
    counts = await run_in_threadpool(prisma_counts, web.store, chosen)
    return Response(render_svg(counts), media_type="image/svg+xml")


async def doses(request: Request) -> Response:
    """The dose map of a topic: every stated dose, one dot plot per unit, and a table per drug, way and unit."""
    from markupsafe import Markup

    from tracker.facts import VASOACTIVE
    from tracker.outputs.doses import dose_map, render_svg

    web = web_of(request)
    chosen = web.scans.topic(request.path_params["slug"])
    drug, state = read_dose_filters(request)
    found = await run_in_threadpool(dose_map, web.store, chosen, drug=drug, state=state,
                                    reviewer=request.state.session.reviewer)
    shown = {key: value for key, value in (("drug", drug), ("state", state)) if value}
    return web.render(request, "doses.html", topic=chosen, doses=found, drugs=list(VASOACTIVE), shown=shown,
                      query_string=_query(shown), svg=Markup(render_svg(found, link=lambda pmid: f"/papers/{pmid}")))


DOSE_TYPES = {"svg": "image/svg+xml", "csv": "text/csv; charset=utf-8", "json": "application/json"}


async def doses_file(request: Request) -> Response:
    """The dose map as the CLI writes it: SVG, CSV or JSON, with the page's filters."""
    import json

    from tracker.outputs.doses import dose_json, dose_map, render_svg, write_dose_csv

    web = web_of(request)
    slug, fmt = request.path_params["slug"], request.path_params["fmt"]
    if fmt not in DOSE_TYPES:
        return web.error(request, 404, f"no dose map as {fmt}: use svg, csv or json")
    chosen = web.scans.topic(slug)
    drug, state = read_dose_filters(request)
    found = await run_in_threadpool(dose_map, web.store, chosen, drug=drug, state=state,
                                    reviewer=request.state.session.reviewer)
    if fmt == "svg":
        data = render_svg(found).encode("utf-8")
    elif fmt == "json":
        data = (json.dumps(dose_json(found), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    else:
        buffer = io.BytesIO()
        write_dose_csv(found, buffer)
        data = buffer.getvalue()
    return Response(data, media_type=DOSE_TYPES[fmt],
                    headers={"content-disposition": f'attachment; filename="{slug}-doses.{fmt}"'})


def read_dose_filters(request: Request) -> tuple[str | None, str | None]:
    """The Doses page's drug and screening state; a drug that is none is refused in one line (outputs/doses.py)."""
    from tracker.outputs.doses import check_drug

    params = request.query_params
    return check_drug(params.get("drug") or None), check_state(params.get("state") or None)


def read_filters(request: Request) -> tuple[PaperFilter, str, str]:
    """The topic page's filters from its query string; a value that is not one is refused in one line."""
    params = request.query_params
    state = check_state(params.get("state") or None, stage_of(params.get("stage")))
    tier = params.get("tier") or None
    if tier is not None and tier not in TIER_INDEX:
        raise ConfigError(f"unknown evidence tier {tier!r}: use one of {', '.join(TIER_INDEX)}")
    years = []
    for key in ("from", "to"):
        value = params.get(key, "").strip()
        year = whole_number(value, low=1000, high=9999)
        if value and (year is None or len(value) != 4):
            raise ConfigError(f"'{value}' is not a year: give four digits, such as 2021")
        years.append(year if value else None)
    design = params.get("design") or None
    if design is not None and design not in DESIGNS:
        raise ConfigError(f"unknown study design {design!r}: use one of {', '.join(DESIGNS)}")
    population = params.get("population") or None
    if population is not None and population not in POPULATIONS:
        raise ConfigError(f"unknown population {population!r}: use one of {', '.join(POPULATIONS)}")
    sort = params.get("sort") or "newest"
    filters = PaperFilter(state=state, tier=tier, year_from=years[0], year_to=years[1],
                          late=params.get("late") == "1", retracted=params.get("retracted") == "1",
                          design=design, population=population, states_dose=params.get("dose") == "1")
    return filters, sort, params.get("q", "")


def export_bytes(store: Store, chosen: Topic, fmt: str, filters: PaperFilter, sort: str, search: str,
                 reviewer: str, stage: Stage = Stage.TITLE_ABSTRACT) -> bytes:
    """The export of the topic page as it stands: its filters, its search and its order, in any format."""
    from tracker.outputs.export import export_papers
    from tracker.store.search import search_pmids

    if search:
        filters = replace(filters, pmids=tuple(search_pmids(store, search, topic=chosen.slug, limit=SEARCH_WITHIN)))
    buffer = io.BytesIO()
    export_papers(store, [chosen], buffer, fmt=fmt, filters=filters, sort=sort, reviewer=reviewer, stage=stage)
    return buffer.getvalue()


def _query(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


__all__ = ["topics", "topic", "export", "paper", "search", "runs", "prisma", "prisma_svg", "doses", "doses_file",
           "read_dose_filters", "read_filters",
           "export_bytes", "EXPORT_TYPES"]
