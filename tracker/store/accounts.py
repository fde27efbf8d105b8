"""The web app's accounts, sessions and failed-login counts in the store (tracker/web/accounts.py has the rules)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError

from tracker.store.database import Store
from tracker.store.models import Account, FeedToken, LoginFailure, WebSession
from tracker.text import as_utc

_account = Account.__table__
_session = WebSession.__table__
_failure = LoginFailure.__table__
_feed_token = FeedToken.__table__
# Any fixed number: on PostgreSQL every login attempt's count is read and written under this advisory lock.
POSTGRES_LOGIN_LOCK = 7_276_115_002


@dataclass(frozen=True)
class AccountView:
    """An account as the app and `tracker users list` see it: never its password hash."""

    name: str
    role: str
    created_at: datetime
    password_changed_at: datetime

    @property
    def admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class SessionView:
    id: str
    account: str | None
    reviewer: str
    role: str
    csrf: str
    created_at: datetime
    expires_at: datetime

    @property
    def admin(self) -> bool:
        return self.role == "admin"


def _view(row) -> AccountView:
    return AccountView(row.name, row.role, as_utc(row.created_at), as_utc(row.password_changed_at))


def save_account(store: Store, name: str, password_hash: str, role: str, now: datetime) -> bool:
    """Add an account; False when the name is taken (nothing changed)."""
    try:
        with store.engine.begin() as connection:
            connection.execute(_account.insert().values(name=name, password_hash=password_hash, role=role,
                                                        created_at=now, password_changed_at=now))
    except IntegrityError:
        return False
    return True


def save_password(store: Store, name: str, password_hash: str, now: datetime) -> bool:
    """Replace an account's password and end its sessions; False when there is no such account."""
    with store.engine.begin() as connection:
        changed = connection.execute(update(_account).where(_account.c.name == name)
                                     .values(password_hash=password_hash, password_changed_at=now)).rowcount
        connection.execute(delete(_session).where(_session.c.account == name))
    return bool(changed)


def delete_account(store: Store, name: str) -> bool:
    """Remove an account, end its sessions and revoke its feed token (its decisions stay: they are the history)."""
    with store.engine.begin() as connection:
        connection.execute(delete(_session).where(_session.c.account == name))
        connection.execute(delete(_feed_token).where(_feed_token.c.account == name))
        return bool(connection.execute(delete(_account).where(_account.c.name == name)).rowcount)


def list_accounts(store: Store) -> list[AccountView]:
    with store.connect() as connection:
        return [_view(row) for row in connection.execute(select(_account).order_by(_account.c.name))]


def count_accounts(store: Store) -> int:
    with store.connect() as connection:
        return connection.execute(select(func.count()).select_from(_account)).scalar_one()


def is_team_member(store: Store, name: str) -> bool:
    """Whether `name` may decide: an account of the team, or anyone where the database holds no accounts."""
    with store.connect() as connection:
        return bool(connection.execute(_MAY_DECIDE, {"name": name}).scalar_one())


# Every decision asks: one statement built once, rather than every account read.
_MAY_DECIDE = select(~exists(select(_account.c.name))
                     | exists(select(_account.c.name).where(_account.c.name == bindparam("name"))))


def account_with_hash(store: Store, name: str) -> tuple[AccountView, str] | None:
    with store.connect() as connection:
        row = connection.execute(select(_account).where(_account.c.name == name)).first()
    return (_view(row), row.password_hash) if row else None


# -- sessions --------------------------------------------------------------------------------

def save_session(store: Store, session: SessionView, now: datetime) -> None:
    with store.engine.begin() as connection:
        connection.execute(delete(_session).where(_session.c.expires_at <= now))
        connection.execute(_session.insert().values(
            id=session.id, account=session.account, reviewer=session.reviewer, role=session.role, csrf=session.csrf,
            created_at=session.created_at, expires_at=session.expires_at, last_seen_at=now))


# Every request reads its session: the statement is built once (as the screening queue's are).
_LIVE_SESSION = (select(_session).outerjoin(_account, _account.c.name == _session.c.account)
                 .where(_session.c.id == bindparam("id"), _session.c.expires_at > bindparam("now"),
                        (_session.c.account.is_(None)) | (_account.c.name.is_not(None))))


def load_session(store: Store, session_id: str, now: datetime) -> SessionView | None:
    """The session, unless it has expired (or its account was removed)."""
    with store.connect() as connection:
        row = connection.execute(_LIVE_SESSION, {"id": session_id, "now": now}).first()
    if row is None:
        return None
    return SessionView(row.id, row.account, row.reviewer, row.role, row.csrf, as_utc(row.created_at),
                       as_utc(row.expires_at))


def delete_session(store: Store, session_id: str) -> None:
    with store.engine.begin() as connection:
        connection.execute(delete(_session).where(_session.c.id == session_id))


def delete_personal_sessions(store: Store) -> None:
    """Personal mode's sessions: a new start's token must not leave the previous start's browsers signed in."""
    with store.engine.begin() as connection:
        connection.execute(delete(_session).where(_session.c.account.is_(None)))


# -- feed tokens -----------------------------------------------------------------------------

def save_feed_token(store: Store, token_id: str, account: str | None, now: datetime) -> None:
    """The feed token (by its SHA-256) of `account` (None: personal mode's), replacing the one it had."""
    with store.engine.begin() as connection:
        connection.execute(delete(_feed_token).where(_feed_token.c.account.is_(None) if account is None
                                                     else _feed_token.c.account == account))
        connection.execute(_feed_token.insert().values(id=token_id, account=account, created_at=now))


def delete_feed_token(store: Store, account: str | None) -> bool:
    """Revoke `account`'s feed token (None: personal mode's); False when it had none."""
    with store.engine.begin() as connection:
        return bool(connection.execute(delete(_feed_token).where(
            _feed_token.c.account.is_(None) if account is None else _feed_token.c.account == account)).rowcount)


def feed_token_account(store: Store, token_id: str) -> tuple[bool, str | None]:
    """(found, account) for the feed token whose SHA-256 is `token_id`; a removed account's is not found."""
    statement = (select(_feed_token.c.account).outerjoin(_account, _account.c.name == _feed_token.c.account)
                 .where(_feed_token.c.id == token_id,
                        _feed_token.c.account.is_(None) | _account.c.name.is_not(None)))
    with store.connect() as connection:
        row = connection.execute(statement).first()
    return (True, row.account) if row is not None else (False, None)


# -- failed logins ---------------------------------------------------------------------------

def failures_of(store: Store, keys: Sequence[str]) -> dict[str, tuple[int, datetime]]:
    with store.connect() as connection:
        return {row.key: (row.failures, as_utc(row.last_failed_at))
                for row in connection.execute(select(_failure).where(_failure.c.key.in_(list(keys))))}


def count_login_attempt(store: Store, keys: Sequence[str], now: datetime, *, forget_before: datetime,
                        wait_for: Callable[[Mapping[str, tuple[int, datetime]]], float]) -> float:
    """One step, one attempt at a time (SQLite's write lock, a PostgreSQL advisory lock): read the failures under
    `keys`, ask `wait_for` how long this attempt must still wait, and when it need not, count it as a failure
    under every key before its password is checked (`settle_login_attempt` takes that back for a right password).
    Attempts that arrive together are so counted one after another, never all read before any is written.
    Returns the wait (0: check the password)."""
    with store.engine.begin() as connection:
        if store.dialect == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif store.dialect == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRES_LOGIN_LOCK})")
        rows = connection.execute(select(_failure).where(_failure.c.key.in_(list(keys)))).all()
        found = {row.key: (row.failures, as_utc(row.last_failed_at)) for row in rows}
        wait = wait_for(found)
        if wait > 0:
            return wait
        for key in keys:
            if key not in found:
                connection.execute(_failure.insert().values(key=key, failures=1, last_failed_at=now))
            else:
                failures, last = found[key]
                connection.execute(update(_failure).where(_failure.c.key == key).values(
                    failures=1 if last < forget_before else failures + 1, last_failed_at=now))
    return 0.0


def settle_login_attempt(store: Store, user_key: str, address_key: str) -> None:
    """A right password after `count_login_attempt`: the user's failures end, the address's lose the one counted."""
    with store.engine.begin() as connection:
        connection.execute(delete(_failure).where(_failure.c.key == user_key))
        connection.execute(update(_failure).where(_failure.c.key == address_key, _failure.c.failures > 0)
                           .values(failures=_failure.c.failures - 1))


__all__ = ["AccountView", "SessionView", "save_account", "save_password", "delete_account", "list_accounts",
           "count_accounts", "account_with_hash", "save_session", "load_session", "delete_session",
           "delete_personal_sessions", "failures_of", "count_login_attempt", "settle_login_attempt",
           "POSTGRES_LOGIN_LOCK", "save_feed_token", "delete_feed_token", "feed_token_account"]
