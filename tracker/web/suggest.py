"""The Suggestions page: a topic's suggestions beyond its query one at a time, most relevant first, each added to the
topic or dismissed (tracker/runs/suggest.py `add_suggestions`, `dismiss_suggestions`, the CLI's `tracker suggest
--add/--dismiss`), and the last dismissal undone. Without JavaScript every button is a plain form post that redirects
to the next suggestion; with it (static/suggest.js) the keys press the same buttons.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tracker.errors import ConfigError
from tracker.runs.suggest import add_suggestions, dismiss_suggestions, undo_dismissal
from tracker.views.suggest import suggest_view
from tracker.web.state import web_of

DONE = {"add": "PMID {pmid} was added to the topic: it waits in the screening queue.",
        "dismiss": "PMID {pmid} was dismissed: it is not suggested to this topic again.",
        "undone": "PMID {pmid} is suggested again.", "none": "Nothing to undo."}


async def page(request: Request) -> Response:
    web = web_of(request)
    topic = web.scans.topic(request.path_params["slug"])
    view = await run_in_threadpool(suggest_view, web.store, topic, reviewer=request.state.session.reviewer,
                                   pmid=_pmid(request.query_params.get("pmid")))
    done = request.query_params.get("done", "")
    message = DONE.get(done, "").format(pmid=_pmid(request.query_params.get("of")) or "")
    return web.render(request, "suggestions.html", view=view, topic=topic, paper=view.paper, message=message)


async def decision(request: Request) -> Response:
    web = web_of(request)
    topic = web.scans.topic(request.path_params["slug"])
    form = await request.form()
    pmid = _pmid(str(form.get("pmid", "")))
    action = str(form.get("action", ""))
    if pmid is None:
        raise ConfigError("the form names no paper: reload the Suggestions page")
    if action not in ("add", "dismiss"):
        raise ConfigError(f"unknown action {action!r}: a suggestion is added or dismissed")
    reviewer = request.state.session.reviewer
    chosen = add_suggestions if action == "add" else dismiss_suggestions
    await run_in_threadpool(chosen, web.store, topic, [pmid], reviewer=reviewer)
    if action == "add":
        web.refresher.request(topic.slug)  # the added paper takes its place in the screening order
    return _to(topic.slug, _pmid(str(form.get("next", ""))), action, pmid)


async def undo(request: Request) -> Response:
    web = web_of(request)
    topic = web.scans.topic(request.path_params["slug"])
    pmid = await run_in_threadpool(undo_dismissal, web.store, topic, reviewer=request.state.session.reviewer)
    if pmid is None:
        return _to(topic.slug, None, "none", None)
    web.refresher.request(topic.slug)  # scored again with the other pending suggestions
    return _to(topic.slug, pmid, "undone", pmid)


def _to(slug: str, pmid: int | None, done: str, of: int | None) -> RedirectResponse:
    query = {"pmid": str(pmid)} if pmid is not None else {}
    query["done"] = done
    if of is not None:
        query["of"] = str(of)
    return RedirectResponse(f"/topics/{slug}/suggestions?{urlencode(query)}", status_code=303)


def _pmid(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None


__all__ = ["page", "decision", "undo"]
