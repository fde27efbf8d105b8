"""The app factory: one Starlette app over one store and the topic files, its routes in one table, the guard in front.

Everything a handler needs is one typed `WebApp` (tracker/web/state.py), made here and handed to every request
through Starlette's lifespan state (`web_of(request)`); nothing is set on the app as a side effect. The lifespan
also closes what the app started: on shutdown the background relevance refresher finishes the refresh under way.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import cast

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tracker.errors import ConfigError, UnknownTopicError
from tracker.settings import Settings
from tracker.store import Store
from tracker.web.security import Access, Guard
from tracker.web.state import HERE, WebApp


def route_table() -> list[BaseRoute]:
    """Every page and action of the app, in one table."""
    from tracker.web import auth, pages, query, screen

    return [
        Route("/", pages.topics, name="topics"),
        Route("/topics/{slug}", pages.topic, name="topic"),
        Route("/topics/{slug}/export.{fmt}", pages.export, name="export"),
        Route("/topics/{slug}/prisma", pages.prisma, name="prisma"),
        Route("/topics/{slug}/prisma.svg", pages.prisma_svg, name="prisma_svg"),
        Route("/topics/{slug}/screen", screen.page, name="screen"),
        Route("/topics/{slug}/screen", screen.decision, methods=["POST"], name="decide"),
        Route("/topics/{slug}/screen/undo", screen.undo, methods=["POST"], name="undo"),
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

    return Starlette(routes=route_table(), middleware=[Middleware(Guard, access=access)], lifespan=lifespan,
                     exception_handlers={UnknownTopicError: unknown_topic, ConfigError: config_error, 404: not_found})


__all__ = ["create_app", "route_table"]
