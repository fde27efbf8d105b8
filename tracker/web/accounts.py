"""Team accounts for the web app (`tracker users`, `tracker serve`): who may sign in, as what, and how hard
guessing a password is made.

Accounts
    A name (also the reviewer name the account's screening decisions carry, so it follows the reviewer
    name rules of tracker/review/screening.py) and a role: a reviewer screens, searches and reads; an admin also saves
    topics from the Query page and manages accounts. Passwords are hashed with Argon2id (argon2-cffi's
    defaults, RFC 9106's second recommended profile). With no account in the database the app runs in personal mode (tracker/web).

Failed logins
    Counted in the database per user name and per client address, so a restart does not reset them. After
    `FREE_FAILURES` failures under a key, each further attempt waits twice as long as the last (1 s, 2 s, 4 s
    ... at most `MAX_DELAY`) after the latest failure, and is refused unanswered while it waits; the count of a
    key restarts after `FORGET_AFTER` without a failure, and a user's on a successful login.

    An attempt is counted as a failure before its password is checked, in one step with reading the count
    (`start_login`; a right password takes it back): attempts that arrive together are counted one after
    another, so a burst of 40 wrong passwords for one name has at most `FREE_FAILURES` (5) of them checked,
    the others refused with the wait, and the right password sent inside that burst is refused too. One address
    gets at most `FREE_FAILURES * 4` (20) checks in a burst, whatever names it tries.

Password checks
    An Argon2id check takes 64 MiB and about 0.2 s of a core, so at most `PASSWORD_CHECKS_AT_ONCE` run at once
    (`password_checks`; the web app also queues them outside its worker threads): 40 logins at once cost the
    memory of two, not 2 GB.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tracker.errors import ConfigError
from tracker.review.screening import check_reviewer
from tracker.store import Store
from tracker.store.accounts import (
    AccountView,
    account_with_hash,
    count_accounts,
    count_login_attempt,
    delete_account,
    delete_feed_token,
    failures_of,
    feed_token_account,
    list_accounts,
    save_account,
    save_feed_token,
    save_password,
    settle_login_attempt,
)
from tracker.text import utcnow

ROLES = ("reviewer", "admin")
MIN_PASSWORD = 10
FREE_FAILURES = 5  # per user name; an address gets four times as many (a ward's shared terminal)
MAX_DELAY = 300.0
FORGET_AFTER = timedelta(hours=1)

PASSWORD_CHECKS_AT_ONCE = 2

_hasher = PasswordHasher()
password_checks = threading.BoundedSemaphore(PASSWORD_CHECKS_AT_ONCE)  # every Argon2 hash or check holds one
# Verified when the name is unknown, so that a wrong name takes as long as a wrong password.
_UNKNOWN = _hasher.hash("no such account")


def _hash(password: str) -> str:
    with password_checks:
        return _hasher.hash(password)


def check_name(name: str) -> str:
    try:
        return check_reviewer(name)
    except ConfigError:
        raise ConfigError(f"user name {name!r} is not usable: use up to 64 letters, digits, spaces and . @ + - _ "
                          "(it is also the reviewer name on the user's decisions)") from None


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password is shorter than {MIN_PASSWORD} characters: choose a longer one")
    if password != password.strip():
        raise ConfigError("the password starts or ends with a space: leave them out")
    return password


def add_user(store: Store, name: str, password: str, *, admin: bool = False) -> AccountView:
    name = check_name(name)
    check_password(password)
    if not save_account(store, name, _hash(password), "admin" if admin else "reviewer", utcnow()):
        raise ConfigError(f"user {name!r} exists already: 'tracker users passwd {name}' changes the password")
    return next(account for account in list_accounts(store) if account.name == name)


def remove_user(store: Store, name: str) -> None:
    if not delete_account(store, name):
        raise ConfigError(f"no user {name!r}: 'tracker users list' lists them")


def change_password(store: Store, name: str, password: str) -> None:
    check_password(password)
    if not save_password(store, name, _hash(password), utcnow()):
        raise ConfigError(f"no user {name!r}: 'tracker users list' lists them")


# -- feed tokens -----------------------------------------------------------------------------
# Feed readers cannot log in, so a person's feed addresses carry a token of their own: it reads topic feeds and nothing
# else (tracker/web/security.py admits it only there), one per account (or one in personal mode), stored as its SHA-256.

def feed_token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _feed_owner(store: Store, name: str | None) -> str | None:
    """The account a feed token is for: `name`, which must exist; None (personal mode) only while there are none."""
    if name is None:
        if count_accounts(store):
            raise ConfigError("tracker serve asks everyone to log in, so feed tokens belong to accounts: give the "
                              "account's name ('tracker users list' lists them)")
        return None
    if name not in {account.name for account in list_accounts(store)}:
        known = "'tracker users list' lists them" if count_accounts(store) else (
            "there are no accounts: leave the name out for your own feed token")
        raise ConfigError(f"no user {name!r}: {known}")
    return name


def issue_feed_token(store: Store, name: str | None) -> str:
    """A new feed token for `name` (None: personal mode), replacing the one it had; returned once, stored hashed."""
    owner = _feed_owner(store, name)
    token = secrets.token_urlsafe(24)
    save_feed_token(store, feed_token_id(token), owner, utcnow())
    return token


def revoke_feed_token(store: Store, name: str | None) -> bool:
    """Revoke `name`'s feed token (None: personal mode's); False when there was none."""
    return delete_feed_token(store, _feed_owner(store, name))


def feed_token_valid(store: Store, token: str, *, team: bool) -> bool:
    """Whether `token` opens the topic feeds: an account's, or in personal mode (no accounts) the personal one."""
    if not token or len(token) > 200:
        return False
    found, account = feed_token_account(store, feed_token_id(token))
    return found and (account is not None) == team


@dataclass(frozen=True)
class LoginOutcome:
    account: AccountView | None  # None: refused
    wait: float = 0.0  # seconds to wait before trying again (the attempt was not checked)


def failure_keys(name: str, address: str) -> tuple[str, str]:
    return f"user:{' '.join(name.split()).casefold()}", f"address:{address}"


def wait_owed(found: Mapping[str, tuple[int, datetime]], keys: tuple[str, str], now: datetime) -> float:
    """Seconds an attempt under `keys` must still wait, given the failures `found` under them (0: check it)."""
    wait = 0.0
    for key, free in zip(keys, (FREE_FAILURES, FREE_FAILURES * 4), strict=True):
        if key not in found:
            continue
        failures, last = found[key]
        if failures < free or now - last > FORGET_AFTER:
            continue
        delay = min(2.0 ** (failures - free), MAX_DELAY)
        wait = max(wait, delay - (now - last).total_seconds())
    return max(wait, 0.0)


def login_delay(store: Store, name: str, address: str, now: datetime | None = None) -> float:
    """Seconds an attempt must still wait because of earlier failures (0: it would be checked); reads only."""
    now = now or utcnow()
    keys = failure_keys(name, address)
    return wait_owed(failures_of(store, list(keys)), keys, now)


@dataclass(frozen=True)
class LoginAttempt:
    """An attempt counted and allowed: its password is checked next (`password_matches`)."""

    keys: tuple[str, str]  # (user key, address key)
    found: tuple[AccountView, str] | None  # the account and its hash; None for an unknown name


def start_login(store: Store, name: str, address: str) -> LoginAttempt | LoginOutcome:
    """Count the attempt as a failure, in one step with checking the wait it owes: a LoginAttempt to check, or a
    LoginOutcome refusing it with that wait (nothing counted)."""
    now = utcnow()
    keys = failure_keys(name, address)
    wait = count_login_attempt(store, keys, now, forget_before=now - FORGET_AFTER,
                               wait_for=lambda found: wait_owed(found, keys, now))
    if wait > 0:
        return LoginOutcome(None, wait)
    return LoginAttempt(keys, account_with_hash(store, " ".join(name.split())))


def password_matches(attempt: LoginAttempt, password: str) -> bool:
    """Argon2id, at most PASSWORD_CHECKS_AT_ONCE at a time; an unknown name costs the same as a wrong password."""
    with password_checks:
        try:
            _hasher.verify(attempt.found[1] if attempt.found else _UNKNOWN, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    return attempt.found is not None


def finish_login(store: Store, attempt: LoginAttempt, verified: bool) -> LoginOutcome:
    """The account for a right password (its counted failure taken back), else a refusal (it stays counted)."""
    if not verified or attempt.found is None:
        return LoginOutcome(None)
    settle_login_attempt(store, *attempt.keys)
    return LoginOutcome(attempt.found[0])


def authenticate(store: Store, name: str, password: str, *, address: str) -> LoginOutcome:
    """The account when `password` is its own and no delay is pending; a failure is counted (`start_login`,
    `password_matches`, `finish_login` in turn)."""
    started = start_login(store, name, address)
    if isinstance(started, LoginOutcome):
        return started
    return finish_login(store, started, password_matches(started, password))


__all__ = ["ROLES", "MIN_PASSWORD", "FREE_FAILURES", "MAX_DELAY", "FORGET_AFTER", "PASSWORD_CHECKS_AT_ONCE",
           "check_name", "check_password", "add_user", "remove_user", "change_password", "LoginOutcome", "LoginAttempt",
           "login_delay", "wait_owed", "start_login", "password_matches", "finish_login", "authenticate",
           "failure_keys", "list_accounts", "password_checks", "feed_token_id", "issue_feed_token", "revoke_feed_token",
           "feed_token_valid"]
