"""The app factory: one Starlette app over one store and the topic files, its routes in one table, the guard in front.

Everything a handler needs is one typed `WebApp` (tracker/web/state.py), made here and handed to every request
through Starlette's lifespan state (`web_of(request)`); nothing is set on the app as a side effect. The lifespan
also bounds the worker threads (TRACKER_WEB_THREADS, 2; with the slow lane's, the store's pool has as many
connections, and as many again)
and closes what the app started: on shutdown the background relevance refresher finishes the refresh under way.

In front of the routes: tracker/web/reliability.py (each request's id, time limit, the client's disconnect and
the page of a failure), then tracker/web/security.py (Host, session, CSRF, headers). A database that stays busy
or a statement stopped by the time limit is a 503 page that says so and, for a form, gives its input back to
send again (`busy`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import cast

from anyio import to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tracker.errors import ConfigError, DatabaseBusyError, TimeLimitError, UnknownTopicError
from tracker.settings import Settings
from tracker.store import Store
from tracker.store.limits import PoolTimeout
from tracker.web.reliability import Reliability, busy_message
from tracker.web.security import Access, Guard
from tracker.web.state import HERE, WebApp

# Form fields a busy page shows again as text to edit (the others travel hidden); never a password.
KEPT_AS_TEXT = {"note": "Note", "q": "Query", "title": "Title", "slug": "Topic file name", "user": "User name"}
NEVER_KEPT = {"csrf", "password"}


def route_table() -> list[BaseRoute]:
    """Every page and action of the app, in one table."""
    from tracker.web import auth, feeds, pages, query, screen, suggest

    return [
        Route("/", pages.topics, name="topics"),
        Route("/topics/{slug}", pages.topic, name="topic"),
        Route("/topics/{slug}/export.{fmt}", pages.export, name="export"),
        Route("/topics/{slug}/prisma", pages.prisma, name="prisma"),
        Route("/topics/{slug}/feed.xml", feeds.feed, name="feed"),
        Route("/topics/{slug}/prisma.svg", pages.prisma_svg, name="prisma_svg"),
        Route("/topics/{slug}/doses", pages.doses, name="doses"),
        Route("/topics/{slug}/doses.{fmt}", pages.doses_file, name="doses_file"),
        Route("/topics/{slug}/screen", screen.page, name="screen"),
        Route("/topics/{slug}/screen", screen.decision, methods=["POST"], name="decide"),
        Route("/topics/{slug}/screen/undo", screen.undo, methods=["POST"], name="undo"),
        Route("/topics/{slug}/conflicts", screen.conflicts, name="conflicts"),
        Route("/topics/{slug}/conflicts", screen.settle, methods=["POST"], name="settle"),
        Route("/topics/{slug}/suggestions", suggest.page, name="suggestions"),
        Route("/topics/{slug}/suggestions", suggest.decision, methods=["POST"], name="suggestion_decision"),
        Route("/topics/{slug}/suggestions/undo", suggest.undo, methods=["POST"], name="suggestion_undo"),
        Route("/papers/{pmid}", pages.paper, name="paper"),
        Route("/search", pages.search, name="search"),
        Route("/runs", pages.runs, name="runs"),
        Route("/query", query.form, name="query"),
        Route("/query", query.run, methods=["POST"], name="run_query"),
        Route("/query/save", query.save, methods=["POST"], name="save_topic"),
        Route("/login", auth.login, name="login"),
        Route("/login", auth.login_post, methods=["POST"], name="login_post"),
        Route("/logout", auth.logout, methods=["POST"], name="logout"),
        Route("/users", auth.users, name="users"),
        Route("/users", auth.users_post, methods=["POST"], name="users_post"),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(settings: Settings, store: Store, access: Access) -> Starlette:
    web = WebApp(settings, store, access)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, WebApp]]:
        to_thread.current_default_thread_limiter().total_tokens = settings.web_threads
        yield {"web": web}
        await run_in_threadpool(web.refresher.close)  # a refresh under way finishes; the rest wait for the next run

    async def config_error(request: Request, error: Exception) -> Response:
        return web.error(request, 400, str(error))

    async def unknown_topic(request: Request, error: Exception) -> Response:
        slug = cast(UnknownTopicError, error).slug
        return web.error(request, 404, f"There is no topic '{slug}': the Topics page lists them.")

    async def not_found(request: Request, error: Exception) -> Response:
        if getattr(request.state, "session", None) is None:
            return HTMLResponse("Not found.", status_code=404)
        return web.error(request, 404, "There is no such page: go back to the topics.")

    async def busy(request: Request, error: Exception) -> Response:
        return busy_page(web, request, busy_message(error, settings.web_time_limit))

    return Starlette(routes=route_table(), lifespan=lifespan,
                     middleware=[Middleware(Reliability, time_limit=settings.web_time_limit),
                                 Middleware(Guard, access=access)],
                     exception_handlers={UnknownTopicError: unknown_topic, ConfigError: config_error, 404: not_found,
                                         DatabaseBusyError: busy, TimeLimitError: busy, PoolTimeout: busy})


def busy_page(web: WebApp, request: Request, message: str) -> Response:
    """503 with `message`; a form comes back filled in as it was sent (a password excepted), to send again."""
    resend = None
    if request.method == "POST":
        fields = [(name, value) for name, value in request.state.form if name not in NEVER_KEPT] \
            if hasattr(request.state, "form") else []
        resend = {"action": request.url.path,
                  "texts": [(name, KEPT_AS_TEXT[name], value) for name, value in fields if name in KEPT_AS_TEXT],
                  "hidden": [(name, value) for name, value in fields if name not in KEPT_AS_TEXT]}
    return web.render(request, "error.html", status_code=503, message=message, resend=resend,
                      again=str(request.url) if request.method in ("GET", "HEAD") else None)


__all__ = ["create_app", "route_table", "busy_page"]
