"""The screening page: one paper of a topic's queue at a time, a decision per button (or key), undo.

A decision is `tracker.review.screening.decide` with source "web" and the session's reviewer name, so the CLI sees
it at once; undo is `tracker.review.screening.undo_last`. Without JavaScript every button is a plain form post that
redirects to the next paper; with it (static/tracker.js) the keys press the same buttons.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tracker.errors import ConfigError
from tracker.review.screening import decide, undo_last
from tracker.text import parse_pmid
from tracker.views.screen import screen_view
from tracker.web.state import web_of


async def page(request: Request) -> Response:
    web = web_of(request)
    topic = web.scans.topic(request.path_params["slug"])
    pmid = _pmid(request.query_params.get("pmid"))
    view = await run_in_threadpool(screen_view, web.store, topic, reviewer=request.state.session.reviewer, pmid=pmid)
    done = request.query_params.get("done", "")
    message = DONE.get(done, "").format(pmid=_pmid(request.query_params.get("of")) or "")
    return web.render(request, "screen.html", view=view, topic=topic, paper=view.paper, message=message)


async def decision(request: Request) -> Response:
    web = web_of(request)
    topic = web.scans.topic(request.path_params["slug"])
    form = await request.form()
    pmid = _pmid(str(form.get("pmid", "")))
    chosen = str(form.get("decision", ""))
    if pmid is None:
        raise ConfigError("the form names no paper: reload the screening page")
    reasons = [str(value) for value in form.getlist("reason") if str(value).strip()]
    if chosen != "exclude":
        reasons = []
    await run_in_threadpool(decide, web.store, topic, [pmid], chosen, reviewer=request.state.session.reviewer,
                            reasons=reasons, note=str(form.get("note", "")), source="web")
    web.refresher.request(topic.slug)  # retrained in the background once the reviewer pauses
    following = _pmid(str(form.get("next", "")))
    return _to(topic.slug, following, chosen, pmid)


async def undo(request: Request) -> Response:
    web = web_of(request)
    topic = web.scans.topic(request.path_params["slug"])
    saved = await run_in_threadpool(undo_last, web.store, topic, reviewer=request.state.session.reviewer)
    web.refresher.request(topic.slug)
    if saved is None:
        return _to(topic.slug, None, "none", None)
    return _to(topic.slug, saved.decision.pmid, "undone", saved.decision.pmid)


DONE = {"include": "PMID {pmid} included.", "exclude": "PMID {pmid} excluded.", "maybe": "PMID {pmid}: maybe.",
        "undone": "Your decision on PMID {pmid} was undone.", "none": "Nothing to undo."}


def _to(slug: str, pmid: int | None, done: str, of: int | None) -> RedirectResponse:
    query = {"pmid": str(pmid)} if pmid is not None else {}
    query["done"] = done
    if of is not None:
        query["of"] = str(of)
    return RedirectResponse(f"/topics/{slug}/screen?{urlencode(query)}", status_code=303)


def _pmid(text: str | None) -> int | None:
    return parse_pmid(text)


__all__ = ["page", "decision", "undo"]
