"""Every request's checks, in one middleware: the Host, the session, the personal-mode token, the role and the
CSRF token; and every response's security headers.

Order
    1. `Host` must be one the app is served as (the listening address and port, and the names in
       TRACKER_WEB_HOSTS): a page that a DNS-rebinding site loads under its own name is refused (400).
    2. In personal mode, `?token=` equal to this start's token becomes a session; the answer redirects to
       the same address without it, so the token leaves the address bar and the history.
    3. A session is the cookie's random value, looked up by its SHA-256 in the database (expired, logged
       out or of a removed account: none). Without one, a page redirects to the login form (team mode) or
       says to open the address `tracker serve` printed (personal mode); only the login form and the static
       files are open.
    4. A state-changing request (any method but GET and HEAD) must carry the session's CSRF token as the
       form field `csrf` (or the X-CSRF-Token header), and an `Origin`, when the browser sends one, of a
       served host; the login form has a token of its own, from a cookie set with the form.
    Feeds. Feed readers cannot log in: `/topics/<slug>/feed.xml` (GET or HEAD only) is let through with a valid feed
       token in the address (`?token=`, tracker/web/accounts.py; a removed account's or a revoked one is not valid)
       or a session, and is checked before step 2, so that no feed token is ever taken for personal mode's token.
       Nothing else accepts a feed token.
    5. Every answer has a Content-Security-Policy without inline scripts or styles, no framing, no
       referrer to other sites and no caching: the pages hold a team's unpublished judgements. (Not
       "no-referrer": with it Chromium sends `Origin: null` on form posts, which step 4 must refuse.)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

from anyio import to_thread
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracker.store import Store
from tracker.store.accounts import SessionView, load_session, save_session
from tracker.text import utcnow
from tracker.web.accounts import feed_token_valid

SESSION_COOKIE = "tracker_session"
LOGIN_COOKIE = "tracker_login"
CSRF_FIELD = "csrf"
OPEN_PATHS = ("/login", "/static/")
SAFE_METHODS = ("GET", "HEAD")
MAX_FORM_BYTES = 1_000_000
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
FEED_PATH = re.compile(r"/topics/[^/]+/feed\.xml")
FEED_REFUSED = ("This feed address's token is not valid (revoked, replaced by a newer one, or mistyped): ask for a new "
                "address with 'tracker users feed-token'.")
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
}


@dataclass
class Access:
    """How this start of the app lets people in (kept on app.state.access)."""

    store: Store
    hosts: frozenset[str]  # Host header values served ("127.0.0.1:8765", "tracker.hospital.org")
    team: bool  # accounts exist: log in; otherwise personal mode, the token
    session_hours: float = 12.0
    personal_name: str = ""  # personal mode: the reviewer name decisions carry
    token: str = field(default="", repr=False)  # personal mode's token for this start


def session_id(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_session(access: Access, *, account: str | None, reviewer: str, role: str) -> tuple[str, SessionView]:
    """A new session (saved); returns the cookie's value, which only the browser keeps, and the session."""
    value = secrets.token_urlsafe(32)
    now = utcnow()
    session = SessionView(id=session_id(value), account=account, reviewer=reviewer, role=role,
                          csrf=secrets.token_urlsafe(32), created_at=now,
                          expires_at=now + timedelta(hours=access.session_hours))
    save_session(access.store, session, now)
    return value, session


def set_session_cookie(response: Response, request: Request, access: Access, value: str) -> None:
    response.set_cookie(SESSION_COOKIE, value, max_age=int(access.session_hours * 3600), path="/", httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")


def served_hosts(host: str, port: int, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The Host values a request may carry: the address served (loopback under any of its names) and `extra`."""
    names = {host}
    if host in ("127.0.0.1", "localhost", "::1"):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    elif ":" in host:
        names = {f"[{host}]"}
    found = {f"{name}:{port}" for name in names} | ({*names} if port in (80, 443) else set())
    return frozenset(found | {name.strip().lower() for name in extra if name.strip()})


class Guard:
    """The ASGI middleware that applies the checks above, in that order."""

    def __init__(self, app: ASGIApp, access: Access):
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = with_security_headers(send, static=scope["path"].startswith("/static/"))
        headers = Headers(scope=scope)
        if headers.get("host", "").lower() not in self.access.hosts:
            await PlainTextResponse("This address is not served here: open the address tracker serve printed.",
                                    status_code=400)(scope, receive, send)
            return
        request = Request(scope)
        path = scope["path"]
        if path.startswith("/static/") and scope["method"] in SAFE_METHODS:  # open to all: no session to look up
            await self.app(scope, receive, send)
            return
        if FEED_PATH.fullmatch(path):
            await self._feed(request, scope, receive, send)
            return
        if not self.access.team and "token" in request.query_params:
            await self._exchange_token(request)(scope, receive, send)
            return
        session = await self._session(request)
        scope.setdefault("state", {})["session"] = session
        scope["state"]["access"] = self.access
        open_path = path == "/login" or path.startswith("/static/")
        if session is None and not open_path:
            await self._refuse_anonymous(request)(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS:
            body = await _read_body(receive)
            if body is None:
                await PlainTextResponse("The form is too large.", status_code=413)(scope, receive, send)
                return
            if not self._csrf_ok(request, headers, body, session):
                await PlainTextResponse("This form has expired or did not come from this app: go back, reload the "
                                        "page and send it again.", status_code=403)(scope, receive, send)
                return
            # Kept for a page that must give the form back (the database was busy: tracker/web/app.py).
            scope["state"]["form"] = parse_qsl(body.decode("utf-8", "replace")) if _is_urlencoded(headers) else []
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _feed(self, request: Request, scope: Scope, receive: Receive, send: Send) -> None:
        """A topic feed, for a valid feed token or a session; refused otherwise, and for any method but GET and HEAD."""
        token = request.query_params.get("token", "")
        allowed = scope["method"] in SAFE_METHODS and bool(
            token and await to_thread.run_sync(lambda: feed_token_valid(self.access.store, token, team=self.access.team))
            or await self._session(request))
        if not allowed:
            await PlainTextResponse(FEED_REFUSED, status_code=403)(scope, receive, send)
            return
        scope.setdefault("state", {})["session"] = None
        scope["state"]["access"] = self.access
        await self.app(scope, receive, send)

    async def _session(self, request: Request) -> SessionView | None:
        value = request.cookies.get(SESSION_COOKIE)
        if not value or len(value) > 200:
            return None
        session = await to_thread.run_sync(load_session, self.access.store, session_id(value), utcnow())
        if session is not None and self.access.team and session.account is None:
            return None  # a personal-mode session is nobody once accounts exist
        return session

    def _exchange_token(self, request: Request) -> Response:
        given = request.query_params.get("token", "")
        kept = urlencode([(key, value) for key, value in parse_qsl(request.url.query) if key != "token"])
        if not self.access.token or not hmac.compare_digest(given.encode(), self.access.token.encode()):
            return PlainTextResponse("This token is not this start's: open the address tracker serve printed last.",
                                     status_code=403)
        value, _ = new_session(self.access, account=None, reviewer=self.access.personal_name, role="admin")
        response = RedirectResponse(safe_next(request.url.path + (f"?{kept}" if kept else "")), status_code=303)
        set_session_cookie(response, request, self.access, value)
        return response

    def _refuse_anonymous(self, request: Request) -> Response:
        if not self.access.team:
            return PlainTextResponse("Not signed in: open the address (with its token) that tracker serve printed "
                                     "when it started.", status_code=403)
        if request.method not in SAFE_METHODS:
            return PlainTextResponse("Your session has ended: log in again.", status_code=403)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)

    def _csrf_ok(self, request: Request, headers: Headers, body: bytes, session: SessionView | None) -> bool:
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() not in self.access.hosts:
            return False
        form = dict(parse_qsl(body.decode("utf-8", "replace"))) if _is_urlencoded(headers) else {}
        given = headers.get("x-csrf-token") or form.get(CSRF_FIELD, "")
        if request.url.path == "/login" and session is None:
            expected = request.cookies.get(LOGIN_COOKIE, "")
        else:
            expected = session.csrf if session is not None else ""
        return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _is_urlencoded(headers: Headers) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded"


async def _read_body(receive: Receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, then: Receive) -> Receive:
    """The body already read, then whatever comes next (the client's disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def with_security_headers(send: Send, *, static: bool = False) -> Send:
    """`send` with the security headers (step 5) added to the answer's start, where it lacks them."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            if static:  # the app's own script and style sheet, the same for everyone
                headers["cache-control"] = "private, max-age=3600"
            for name, value in SECURITY_HEADERS.items():
                if name not in headers:
                    headers[name] = value
        await send(message)

    return sending


def safe_next(target: str) -> str:
    """A path on this app to go to next (after logging in, or after the personal token): anything else, such as
    //other.site/, /\\other.site or /<tab>/other.site (browsers drop the tab), which browsers read as another site,
    is the Topics page."""
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(character) < 32 or ord(character) == 127 for character in target)):
        return "/"
    return target


def login_token() -> str:
    return secrets.token_urlsafe(24)


__all__ = ["Access", "Guard", "safe_next", "with_security_headers", "SAFE_METHODS", "SESSION_COOKIE", "LOGIN_COOKIE",
           "CSRF_FIELD", "CONTENT_SECURITY_POLICY", "served_hosts", "new_session", "set_session_cookie", "session_id",
           "login_token"]
