"""Every request's bounds and failures, in one middleware outside the guard (tracker/web/security.py).

Id
    Each request gets a random id, sent back as `X-Request-Id` and kept as `request.state.request_id`; every log
    line about the request carries it, and so does the page of a request that failed.
Database budget
    Each request runs under a `Budget` (tracker/store/limits.py): each of its database statements may run, or
    wait for another program's write, TRACKER_WEB_TIME_LIMIT seconds; then it is stopped and the page says so.
Client gone
    Once the request's body has been read (at once for GET and HEAD), the middleware listens for the client's
    disconnect; when it comes, the budget is cancelled, which stops the statement under way and refuses the
    next ones, so a request nobody waits for frees its worker thread and its connection at once instead of
    searching on for minutes.
Failures
    An exception nothing else answered is logged with the id and its traceback and answered with a page that
    says what happened and gives the id, with the same security headers as every other page. A statement
    stopped by the time limit, a database still locked by another writer after the wait, and a pool with no
    free connection in time are 503 pages that say so (the app's own handlers, which also keep a form's input,
    come first: tracker/web/app.py).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

import anyio
from anyio import to_thread
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracker.errors import DatabaseBusyError, TimeLimitError
from tracker.store.limits import Budget, PoolTimeout, RequestCancelled, budget_set
from tracker.web.security import SAFE_METHODS, with_security_headers

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
MAX_SAFE_BODY = 65_536  # a GET or HEAD carries no form; a body is read (and dropped) only up to this


def failure_message(request_id: str) -> str:
    return (f"Something went wrong on the server and this page could not be made (request {request_id}). Nothing "
            "past the last saved step was changed: try again, and if it happens again, tell whoever runs tracker "
            f"the request id {request_id}; their log (db/tracker.log) has the details.")


def busy_message(error: Exception, time_limit: float) -> str:
    """What a page says when the database could not answer in time, whatever the reason."""
    if isinstance(error, PoolTimeout):
        return (f"The server is busy: every database connection stayed in use for {time_limit:g} seconds. Nothing "
                "was changed: try again in a moment.")
    said = str(error)
    return f"{said[0].upper()}{said[1:]}. Nothing was changed: try again in a moment."


class _Listener:
    """The request's `receive`: hands the body to the app, then listens for the client's disconnect."""

    def __init__(self, receive: Receive, budget: Budget, start: Callable, answered: Callable[[], bool]):
        self._receive = receive
        self._budget = budget
        self._start = start  # starts a task in the middleware's task group
        self._answered = answered  # the whole answer was sent: a disconnect now is the connection's end, not news
        self._pending: list[Message] = []
        self._body_done = False
        self.gone = anyio.Event()

    async def drain(self) -> bool:
        """Read a GET's or HEAD's body (normally empty) and start listening; False when it is too large."""
        size = 0
        while not self._body_done:
            message = await self.receive()
            size += len(message.get("body", b""))
            if size > MAX_SAFE_BODY:
                return False
        self._pending = [{"type": "http.request", "body": b"", "more_body": False}]
        return True

    async def receive(self) -> Message:
        if self._pending:
            return self._pending.pop(0)
        if not self._body_done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                await self._left()
            elif not message.get("more_body", False):
                self._body_done = True
                self._start(self._listen)
            return message
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def _listen(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                await self._left()
                return

    async def _left(self) -> None:
        if self._answered():
            return
        self.gone.set()
        if self._budget.cancelled:
            return
        if self._budget.cancel_blocks():
            await to_thread.run_sync(self._budget.cancel)  # PostgreSQL's cancel request is a connection of its own
        else:
            self._budget.cancel()


class Reliability:
    """The ASGI middleware that gives each request its id and budget, and answers its failures."""

    def __init__(self, app: ASGIApp, *, time_limit: float):
        self.app = app
        self.time_limit = time_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        budget = Budget(self.time_limit)
        started = finished = False

        async def sending(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        failure: Exception | None = None
        async with anyio.create_task_group() as tasks:
            listener = _Listener(receive, budget, tasks.start_soon, lambda: finished)
            try:
                if scope["method"] in SAFE_METHODS and not await listener.drain():
                    await PlainTextResponse("A GET request carries no form: send it without a body.",
                                            status_code=413)(scope, listener.receive, with_security_headers(sending))
                else:
                    with budget_set(budget):
                        await self.app(scope, listener.receive, sending)
            except Exception as error:  # noqa: BLE001  (answered below, after the listener has stopped)
                failure = error
            finally:
                tasks.cancel_scope.cancel()
        if failure is None:
            return
        where = f"request {request_id} ({scope['method']} {scope['path']})"
        if isinstance(failure, RequestCancelled) or listener.gone.is_set():
            log.info("%s: the client went away; its database work was stopped", where)
            return
        if started:  # the page was on its way: nothing more can be said to the browser
            log.error("%s failed after its answer had started", where, exc_info=failure)
            raise failure
        if isinstance(failure, (TimeLimitError, DatabaseBusyError, PoolTimeout)):
            log.warning("%s: %s", where, failure)
            response = self._page(scope, 503, busy_message(failure, self.time_limit))
        else:
            log.error("%s failed", where, exc_info=failure)
            response = self._page(scope, 500, failure_message(request_id))
        await response(scope, listener.receive, with_security_headers(sending))

    def _page(self, scope: Scope, status_code: int, message: str) -> Response:
        web = scope.get("state", {}).get("web")
        if web is not None:
            try:
                return web.error(Request(scope), status_code, message)
            except Exception:  # noqa: BLE001  (the templates themselves failing: the words still get through)
                log.exception("request %s: the error page could not be made", scope["state"]["request_id"])
        return HTMLResponse(f"<!doctype html><title>Problem</title><p role=\"alert\">{_escape(message)}</p>",
                            status_code=status_code)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["Reliability", "REQUEST_ID_HEADER", "failure_message", "busy_message"]
