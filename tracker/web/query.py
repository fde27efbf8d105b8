"""The Query page: an ad-hoc PubMed query as `tracker query` runs it, and "Save as topic" (admins only).

PubMed's own reading of the query comes first (one esearch: translation, Count, errors and warnings, as
`tracker topics --check-query` shows them); a query PubMed can run is then `tracker.runs.sync.run_query`: the
newest matches are stored (in no topic) and listed. Running a query is a POST with the CSRF token: it spends
requests to NCBI and writes to the store.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tracker.errors import ConfigError, TrackerError
from tracker.topics import new_topic_path, save_topic_file, topic_from_query
from tracker.web.state import web_of

SHOWN = 20


def run_ad_hoc(settings, store, query: str):
    """(PubMed's reading of `query`, the run's result or None when PubMed reported errors)."""
    from tracker.ncbi.eutils import EutilsClient
    from tracker.runs.sync import run_query
    from tracker.runs.watch import measure_query, unknown_terms

    with EutilsClient(settings) as client:
        measured = measure_query(client, query)
        if measured.errors and unknown_terms(measured.errors) or measured.count == 0:
            return measured, None
        return measured, run_query(store, client, query, limit=SHOWN)


async def form(request: Request) -> Response:
    web = web_of(request)
    return web.render(request, "query.html", query="", measured=None, result=None, error=None,
                      saved=request.query_params.get("saved", ""))


async def run(request: Request) -> Response:
    web = web_of(request)
    from tracker.runs.watch import unknown_terms

    form = await request.form()
    query = " ".join(str(form.get("q", "")).split())
    if not query:
        return web.render(request, "query.html", status_code=400, query="", measured=None, result=None,
                          error="The query is empty: give a PubMed query, for example 'norepinephrine AND bolus'.",
                          saved="")
    try:
        measured, result = await web.in_slow_lane(run_ad_hoc, web.settings, web.store, query)
    except TrackerError as error:
        return web.render(request, "query.html", status_code=502, query=query, measured=None, result=None,
                          error=str(error), saved="")
    return web.render(request, "query.html", query=query, measured=measured, result=result, error=None,
                      missing=unknown_terms([*measured.errors, *measured.warnings]), saved="")


async def save(request: Request) -> Response:
    web = web_of(request)
    if not request.state.session.admin:
        return web.error(request, 403, "Only an admin saves topics: ask one to save this query.")
    form = await request.form()
    query = " ".join(str(form.get("q", "")).split())
    slug = str(form.get("slug", "")).strip()
    title = str(form.get("title", ""))
    try:
        new_topic_path(web.settings.queries_dir, slug)
        if not " ".join(title.split()):
            raise ConfigError("give the topic a title, for example 'Norepinephrine in preeclampsia'")
        topic = topic_from_query(slug, query, title=title)
        await run_in_threadpool(save_topic_file, web.settings.queries_dir, topic)
        web.scans.forget()
    except ConfigError as error:
        return web.render(request, "query.html", status_code=400, query=query, measured=None, result=None,
                          error=str(error), saved="", slug=slug, title=title)
    return RedirectResponse(f"/query?saved={topic.slug}", status_code=303)


__all__ = ["form", "run", "save", "run_ad_hoc"]
