"""The screening page (one paper of a topic's queue at a time, a decision per button or key, undo) at either stage,
and the Conflicts page, where a conflict between two reviewers is settled.

A decision is `tracker.review.screening.decide` with source "web" and the session's reviewer name, so the CLI sees
it at once; undo is `tracker.review.screening.undo_last`. Without JavaScript every button is a plain form post that
redirects to the next paper; with it (static/tracker.js) the keys press the same buttons and follow the same links.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tracker.errors import ConfigError
from tracker.review.screening import decide, highlight_terms, list_conflicts, reasons_of, undo_last
from tracker.review.states import Stage
from tracker.text import parse_pmid
from tracker.views.screen import screen_view
from tracker.web.state import web_of


def stage_of(value: str | None) -> Stage:
    """The stage a page or form names (title and abstract when it names none); any other value is refused."""
    if not value:
        return Stage.TITLE_ABSTRACT
    if value not in Stage.__members__.values():
        raise ConfigError(f"unknown screening stage {value!r}: use title-abstract or full-text")
    return Stage(value)


async def page(request: Request) -> Response:
    web = web_of(request)
    topic = web.scans.topic(request.path_params["slug"])
    stage = stage_of(request.query_params.get("stage"))
    session = request.state.session
    pmid = _pmid(request.query_params.get("pmid"))
    view = await run_in_threadpool(screen_view, web.store, topic, reviewer=session.reviewer, pmid=pmid, stage=stage,
                                   session_started=session.created_at)
    done = request.query_params.get("done", "")
    message = DONE.get(done, "").format(pmid=_pmid(request.query_params.get("of")) or "")
    include, exclude = highlight_terms(topic)
    return web.render(request, "screen.html", view=view, topic=topic, paper=view.paper, message=message, stage=stage,
                      reasons=reasons_of(topic, stage), highlight_include=include, highlight_exclude=exclude)


async def decision(request: Request) -> Response:
    web = web_of(request)
    topic = web.scans.topic(request.path_params["slug"])
    form = await request.form()
    stage = stage_of(str(form.get("stage", "")))
    pmid = _pmid(str(form.get("pmid", "")))
    chosen = str(form.get("decision", ""))
    if pmid is None:
        raise ConfigError("the form names no paper: reload the screening page")
    reasons = [str(value) for value in form.getlist("reason") if str(value).strip()]
    if chosen != "exclude":
        reasons = []
    await run_in_threadpool(decide, web.store, topic, [pmid], chosen, reviewer=request.state.session.reviewer,
                            reasons=reasons, note=str(form.get("note", "")), source="web", stage=stage)
    web.refresher.request(topic.slug)  # retrained in the background once the reviewer pauses
    following = _pmid(str(form.get("next", "")))
    return _to(topic.slug, following, chosen, pmid, stage)


async def undo(request: Request) -> Response:
    web = web_of(request)
    topic = web.scans.topic(request.path_params["slug"])
    form = await request.form()
    stage = stage_of(str(form.get("stage", "")))
    try:
        saved = await run_in_threadpool(undo_last, web.store, topic, reviewer=request.state.session.reviewer,
                                        stage=stage)
    except ConfigError as refused:
        held = _pmid(str(refused).removeprefix("PMID ").split(":", 1)[0])
        return _to(topic.slug, held, "refused", held, stage)
    web.refresher.request(topic.slug)
    if saved is None:
        return _to(topic.slug, None, "none", None, stage)
    return _to(topic.slug, saved.decision.pmid, "undone", saved.decision.pmid, stage)


def may_settle(request: Request) -> bool:
    """Admins settle conflicts in team mode; the one person does in personal mode."""
    return not web_of(request).access.team or request.state.session.admin


async def conflicts(request: Request) -> Response:
    web = web_of(request)
    topic = web.scans.topic(request.path_params["slug"])
    if not may_settle(request):
        return web.error(request, 403, "Only an admin settles conflicts: ask one to look at this topic's conflicts.")
    stage = stage_of(request.query_params.get("stage"))
    found = await run_in_threadpool(list_conflicts, web.store, topic, stage=stage)
    settled = _pmid(request.query_params.get("settled"))
    return web.render(request, "conflicts.html", topic=topic, stage=stage, conflicts=found, settled=settled,
                      reasons=reasons_of(topic, stage))


async def settle(request: Request) -> Response:
    web = web_of(request)
    topic = web.scans.topic(request.path_params["slug"])
    if not may_settle(request):
        return web.error(request, 403, "Only an admin settles conflicts: ask one to look at this topic's conflicts.")
    form = await request.form()
    stage = stage_of(str(form.get("stage", "")))
    pmid = _pmid(str(form.get("pmid", "")))
    if pmid is None:
        raise ConfigError("the form names no paper: reload the Conflicts page")
    chosen = str(form.get("decision", ""))
    reasons = [str(value) for value in form.getlist("reason") if str(value).strip()] if chosen == "exclude" else []
    await run_in_threadpool(decide, web.store, topic, [pmid], chosen, reviewer=request.state.session.reviewer,
                            reasons=reasons, note=str(form.get("note", "")), resolve=True, source="web", stage=stage)
    web.refresher.request(topic.slug)
    query = {"settled": str(pmid)} | ({"stage": str(stage)} if stage != Stage.TITLE_ABSTRACT else {})
    return RedirectResponse(f"/topics/{topic.slug}/conflicts?{urlencode(query)}", status_code=303)


DONE = {"include": "PMID {pmid} included.", "exclude": "PMID {pmid} excluded.", "maybe": "PMID {pmid}: maybe.",
        "not-retrieved": "PMID {pmid}: full text not retrieved.",
        "undone": "Your decision on PMID {pmid} was undone.", "none": "Nothing to undo.",
        "refused": "Your decision on PMID {pmid} stays: the other reviewer has decided it too, and blind decisions are "
                   "not taken back once both are in (a conflict between you is settled on the Conflicts page)."}


def _to(slug: str, pmid: int | None, done: str, of: int | None, stage: Stage) -> RedirectResponse:
    query = {"pmid": str(pmid)} if pmid is not None else {}
    if stage != Stage.TITLE_ABSTRACT:
        query["stage"] = str(stage)
    query["done"] = done
    if of is not None:
        query["of"] = str(of)
    return RedirectResponse(f"/topics/{slug}/screen?{urlencode(query)}", status_code=303)


def _pmid(text: str | None) -> int | None:
    return parse_pmid(text)


__all__ = ["page", "decision", "undo", "conflicts", "settle", "stage_of", "may_settle"]
