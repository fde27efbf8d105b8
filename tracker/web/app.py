"""The app factory: one Starlette app over one store and the topic files, with the guard in front of it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tracker._version import __version__
from tracker.errors import ConfigError
from tracker.ncbi.evidence import TIER_RULES, tier_label
from tracker.ncbi.notices import describe_status
from tracker.outputs.render import moment
from tracker.review.relevance import RelevanceRefresher
from tracker.settings import Settings
from tracker.store import Store
from tracker.store.decisions import STATES
from tracker.topics import Topic
from tracker.web.security import CSRF_FIELD, Access, Guard

if TYPE_CHECKING:
    from tracker.web.pages import ScanCache

HERE = Path(__file__).parent
SCRIPT = "htmx-2.0.11.min.js"  # vendored, pinned: tracker/web/static/htmx-LICENSE.txt


def environment() -> Environment:
    """Jinja2 with autoescaping on for every template: every field of every record is text, never markup."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(tiers=TIER_RULES, states=STATES, tier_label=tier_label, script=SCRIPT, version=__version__,
                       csrf_field=CSRF_FIELD, describe_status=describe_status)
    env.filters["when"] = lambda value: moment(value) if value else ""
    env.filters["number"] = lambda value: f"{value:,}" if isinstance(value, int) else ("" if value is None else value)
    return env


class Pages:
    """Renders templates with what every page needs: the session (its user, role and CSRF token)."""

    def __init__(self, settings: Settings, store: Store, access: Access):
        self.settings = settings
        self.store = store
        self.access = access
        self.env = environment()
        self.scans: ScanCache  # the topic files, read again when they change: set by tracker.web.pages.routes
        # Decisions made here retrain their topic's relevance model in the background (tracker/review/relevance.py).
        self.refresher = RelevanceRefresher(store, self._topic_for)

    def _topic_for(self, slug: str) -> Topic | None:
        return self.scans.scan().topics.get(slug)

    def render(self, request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
        session = request.state.session
        html = self.env.get_template(template).render(request=request, session=session, team=self.access.team,
                                                  csrf=session.csrf if session else "", path=request.url.path,
                                                  **context)
        return HTMLResponse(html, status_code=status_code)

    def error(self, request: Request, status_code: int, message: str) -> HTMLResponse:
        return self.render(request, "error.html", status_code=status_code, message=message)


def create_app(settings: Settings, store: Store, access: Access) -> Starlette:
    from tracker.review.relevance import RelevanceRefresher
    from tracker.web import auth, pages, query, screen

    web = Pages(settings, store, access)
    web.refresher = RelevanceRefresher(store, lambda slug: web.scans.scan().topics.get(slug))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await run_in_threadpool(web.refresher.close)  # a refresh under way finishes; the rest wait for the next run

    async def config_error(request: Request, error: Exception) -> HTMLResponse:
        return web.error(request, 400, str(error))

    async def not_found(request: Request, error: Exception) -> HTMLResponse:
        if getattr(request.state, "session", None) is None:
            return HTMLResponse("Not found.", status_code=404)
        return web.error(request, 404, "There is no such page: go back to the topics.")

    routes = [
        *pages.routes(web), *screen.routes(web), *query.routes(web), *auth.routes(web),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Guard, access=access)],
                    exception_handlers={ConfigError: config_error, 404: not_found}, lifespan=lifespan)
    app.state.pages = web
    return app


__all__ = ["create_app", "environment", "Pages", "Route"]
