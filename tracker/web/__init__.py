"""`tracker serve`: the web app for reading, searching and screening tracked papers, a thin face over the same
library functions and views (tracker/views/) the CLI uses, on SQLite or PostgreSQL.

Modes
    Personal (no account in the database): the app listens on loopback only and prints, on one line, an
    address with a random token made at this start; opening it exchanges the token for a session cookie (as
    Jupyter does). The one person screens under TRACKER_REVIEWER (or their login name) and may do
    everything. Asking for another address is refused: serving a team needs accounts.
    Team (`tracker users add`): everyone logs in; reviewers screen, search and read, admins also save
    topics from the Query page and manage accounts. A decision carries its account's name.

Pieces
    security.py: the Host, session, token, CSRF checks and the security headers, as one middleware;
    app.py: the app factory and the templates' environment; pages.py, screen.py, query.py, auth.py: the
    routes, grouped by page; templates/ and static/ (the vendored htmx, pinned, with its licence, and the
    keyboard shortcuts). No page needs JavaScript for its basic actions.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
import threading
from collections.abc import Callable
from datetime import timezone

from tracker.errors import ConfigError
from tracker.settings import Settings
from tracker.store import Store

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(store: Store, host: str) -> bool:
    """Whether the app runs in team mode (the store holds accounts); another address than loopback needs one."""
    from tracker.store.accounts import count_accounts

    team = count_accounts(store) > 0
    if not team and not is_loopback(host):
        raise ConfigError(f"no accounts yet, so tracker serve runs for you alone on 127.0.0.1: to serve a team on "
                          f"{host}, create an account first with 'tracker users add NAME --admin'")
    return team


def build_app(settings: Settings, store: Store, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
              token: str | None = None):
    """The app for `store`, in team mode when it holds accounts, else personal mode with `token` (made here when
    None); returns (app, access)."""
    from tracker.review.screening import default_reviewer
    from tracker.store.accounts import delete_personal_sessions
    from tracker.web.app import create_app
    from tracker.web.security import Access, login_token, served_hosts

    team = check_host(store, host)
    access = Access(store=store, hosts=served_hosts(host, port, settings.web_hosts), team=team,
                    session_hours=settings.web_session_hours)
    delete_personal_sessions(store)  # the previous start's token sessions, in either mode
    if not team:
        access.personal_name = default_reviewer(settings.reviewer)
        access.token = token or login_token()
    return create_app(settings, store, access), access


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` and listening, so that the address printed next already leads here; a port
    another program holds is one line naming --port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn binds: a port left in TIME_WAIT by a stopped server is free, one that is listened on is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} is in use: choose another with --port") from None
        if error.errno == errno.EACCES:
            raise ConfigError(f"port {port} needs administrator rights: choose one above 1023 with --port") from None
        raise ConfigError(f"cannot listen on {host} port {port} ({error.strerror}): check --host") from None
    return sock


def serve(settings: Settings, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, open_browser: bool = False,
          say: Callable[[str], None] = print, warn: Callable[[str], None] = print) -> None:
    """Serve until interrupted. The port is bound first: only then is the address said, on one line (with the token,
    in personal mode), so it never leads to another server. `warn` says the rest (an upgrade of the database)."""
    import uvicorn

    from tracker.store.upgrade import open_current_store

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a port: use 1-65535, for example {DEFAULT_PORT}")
    from tracker.logs import log_service
    from tracker.web.state import SLOW_LANE_THREADS

    try:
        zone = settings.zone
    except ConfigError:
        zone = timezone.utc  # the log's stamps only; the pages say their times in UTC
    log_service(settings.verbose, zone=zone, log_file=settings.log_file)  # failures with their request ids
    store = open_current_store(settings.database_url, auto_migrate=settings.auto_migrate, say=warn,
                               pool_size=settings.web_threads + SLOW_LANE_THREADS)
    sock = None
    try:
        check_host(store, host)
        sock = listen(host, port)
        app, access = build_app(settings, store, host=host, port=port)
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/" + (f"?token={access.token}" if not access.team else "")
        say(url if not access.team else f"{url} (team mode: log in)")
        if hasattr(sys.stdout, "flush"):
            sys.stdout.flush()
        if open_browser:
            import webbrowser

            threading.Timer(1.0, webbrowser.open, args=(url,)).start()
        trusted = settings.web_trusted_proxy
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, server_header=False,
                                proxy_headers=bool(trusted), forwarded_allow_ips=trusted or "", lifespan="on")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if sock is not None:
            sock.close()
        store.close()


__all__ = ["serve", "build_app", "check_host", "listen", "is_loopback", "DEFAULT_HOST", "DEFAULT_PORT"]
