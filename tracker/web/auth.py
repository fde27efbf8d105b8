"""Logging in and out (team mode), and the admins' Users page.

The login form has its own CSRF token, from a cookie set with the form (double submit); a successful login
starts a new session (a new random cookie); a failure is counted per user name and address
(tracker/web/accounts.py) and answered after the same Argon2 work whether the name exists or not. The attempt is
counted before its password is checked, and the checks run PASSWORD_CHECKS_AT_ONCE at a time in threads of their
own; past MAX_LOGINS_WAITING logins in progress, another is asked to try again in a few seconds, unchecked.
"""

from __future__ import annotations

import math
import re
import secrets

from anyio import to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tracker.errors import ConfigError, DatabaseBusyError, TimeLimitError
from tracker.store.accounts import delete_session, list_accounts
from tracker.text import plural
from tracker.web.accounts import LoginOutcome, add_user, finish_login, password_matches, remove_user, start_login
from tracker.web.reliability import busy_message
from tracker.web.security import LOGIN_COOKIE, SESSION_COOKIE, new_session, safe_next, session_id, set_session_cookie
from tracker.web.state import web_of

MAX_LOGINS_WAITING = 32  # at two checks of ~0.2 s at a time, the last of them is answered within ~3 s


def login_page(request: Request, *, status_code: int = 200, error: str = "", name: str = "") -> Response:
    # One token per browser, not per form: another tab (or the browser asking for /favicon.ico, which
    # lands here too) must not invalidate the form already on screen.
    kept = request.cookies.get(LOGIN_COOKIE, "")
    token = kept if re.fullmatch(r"[\w-]{32}", kept) else secrets.token_urlsafe(24)
    response = web_of(request).render(request, "login.html", status_code=status_code, login_csrf=token, error=error,
                                         name=name, next=safe_next(request.query_params.get("next", "/")))
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/login", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


async def login(request: Request) -> Response:
    web = web_of(request)
    if not web.access.team:
        return web.error(request, 404, "This app runs in personal mode: there is nothing to log in to.")
    if request.state.session is not None and request.method == "GET":
        return RedirectResponse("/", status_code=303)
    return login_page(request)


async def login_post(request: Request) -> Response:
    web = web_of(request)
    if not web.access.team:
        return web.error(request, 404, "This app runs in personal mode: there is nothing to log in to.")
    form = await request.form()
    name, password = str(form.get("user", "")), str(form.get("password", ""))
    address = request.client.host if request.client else "unknown"
    if web.logins_waiting >= MAX_LOGINS_WAITING:
        return login_page(request, status_code=503, name=name,
                          error="Too many logins are being checked at once: wait a few seconds, then try again.")
    web.logins_waiting += 1
    try:
        outcome = await authenticate(web, name, password, address)
    except (DatabaseBusyError, TimeLimitError) as error:
        return login_page(request, status_code=503, name=name, error=busy_message(error, web.settings.web_time_limit))
    finally:
        web.logins_waiting -= 1
    if outcome.wait > 0:
        return login_page(request, status_code=429, name=name,
                          error=f"Too many failed logins: wait {plural(math.ceil(outcome.wait), 'second')}, then try again.")
    account = outcome.account
    if account is None:
        return login_page(request, status_code=401, name=name, error="Wrong user name or password.")
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await run_in_threadpool(delete_session, web.store, session_id(old))
    value, _ = await run_in_threadpool(lambda: new_session(web.access, account=account.name,
                                                           reviewer=account.name, role=account.role))
    response = RedirectResponse(safe_next(str(form.get("next", "/"))), status_code=303)
    set_session_cookie(response, request, web.access, value)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


async def authenticate(web, name: str, password: str, address: str) -> LoginOutcome:
    """tracker.web.accounts.authenticate's steps, the password check in the password checks' own threads."""
    started = await run_in_threadpool(start_login, web.store, name, address)
    if isinstance(started, LoginOutcome):
        return started
    verified = await to_thread.run_sync(password_matches, started, password, limiter=web.password_limiter())
    return await run_in_threadpool(finish_login, web.store, started, verified)


async def logout(request: Request) -> Response:
    web = web_of(request)
    value = request.cookies.get(SESSION_COOKIE)
    if value:
        await run_in_threadpool(delete_session, web.store, session_id(value))
    response = RedirectResponse("/login" if web.access.team else "/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def users(request: Request, *, error: str = "", status_code: int = 200) -> Response:
    web = web_of(request)
    if not request.state.session.admin or not web.access.team:
        return web.error(request, 403, "Only an admin of a team manages accounts.")
    accounts = await run_in_threadpool(list_accounts, web.store)
    return web.render(request, "users.html", accounts=accounts, error=error, status_code=status_code)


async def users_post(request: Request) -> Response:
    web = web_of(request)
    if not request.state.session.admin or not web.access.team:
        return web.error(request, 403, "Only an admin of a team manages accounts.")
    form = await request.form()
    try:
        if form.get("remove"):
            name = str(form.get("remove"))
            if name == request.state.session.account:
                raise ConfigError("you cannot remove your own account here: ask another admin, or use "
                                  "'tracker users remove'")
            await run_in_threadpool(remove_user, web.store, name)
        else:
            await run_in_threadpool(lambda: add_user(web.store, str(form.get("user", "")),
                                                     str(form.get("password", "")), admin=form.get("admin") == "1"))
    except ConfigError as error:
        return await users(request, error=str(error), status_code=400)
    return RedirectResponse("/users", status_code=303)


__all__ = ["login", "login_post", "logout", "users", "users_post", "safe_next"]
