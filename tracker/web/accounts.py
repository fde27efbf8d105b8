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
"""

from __future__ import annotations

import hashlib
import secrets
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
    clear_failures,
    count_accounts,
    delete_account,
    delete_feed_token,
    failures_of,
    feed_token_account,
    list_accounts,
    save_account,
    save_failure,
    save_feed_token,
    save_password,
)
from tracker.text import utcnow

ROLES = ("reviewer", "admin")
MIN_PASSWORD = 10
FREE_FAILURES = 5  # per user name; an address gets four times as many (a ward's shared terminal)
MAX_DELAY = 300.0
FORGET_AFTER = timedelta(hours=1)

_hasher = PasswordHasher()
# Verified when the name is unknown, so that a wrong name takes as long as a wrong password.
_UNKNOWN = _hasher.hash("no such account")


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
    if not save_account(store, name, _hasher.hash(password), "admin" if admin else "reviewer", utcnow()):
        raise ConfigError(f"user {name!r} exists already: 'tracker users passwd {name}' changes the password")
    return next(account for account in list_accounts(store) if account.name == name)


def remove_user(store: Store, name: str) -> None:
    if not delete_account(store, name):
        raise ConfigError(f"no user {name!r}: 'tracker users list' lists them")


def change_password(store: Store, name: str, password: str) -> None:
    check_password(password)
    if not save_password(store, name, _hasher.hash(password), utcnow()):
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


def login_delay(store: Store, name: str, address: str, now: datetime | None = None) -> float:
    """Seconds this attempt must still wait because of earlier failures (0: check it)."""
    now = now or utcnow()
    user_key, address_key = failure_keys(name, address)
    found = failures_of(store, [user_key, address_key])
    wait = 0.0
    for key, free in ((user_key, FREE_FAILURES), (address_key, FREE_FAILURES * 4)):
        if key not in found:
            continue
        failures, last = found[key]
        if failures < free or now - last > FORGET_AFTER:
            continue
        delay = min(2.0 ** (failures - free), MAX_DELAY)
        wait = max(wait, delay - (now - last).total_seconds())
    return max(wait, 0.0)


def authenticate(store: Store, name: str, password: str, *, address: str) -> LoginOutcome:
    """The account when `password` is its own and no delay is pending; a failure is counted."""
    now = utcnow()
    wait = login_delay(store, name, address, now)
    if wait > 0:
        return LoginOutcome(None, wait)
    found = account_with_hash(store, " ".join(name.split()))
    keys = failure_keys(name, address)
    try:
        _hasher.verify(found[1] if found else _UNKNOWN, password)
        verified = found is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        verified = False
    if not verified or found is None:
        save_failure(store, keys, now, forget_before=now - FORGET_AFTER)
        return LoginOutcome(None)
    clear_failures(store, [keys[0]])
    return LoginOutcome(found[0])


__all__ = ["ROLES", "MIN_PASSWORD", "FREE_FAILURES", "MAX_DELAY", "FORGET_AFTER", "check_name", "check_password",
           "add_user", "remove_user", "change_password", "LoginOutcome", "login_delay", "authenticate",
           "failure_keys", "list_accounts", "feed_token_id", "issue_feed_token", "revoke_feed_token", "feed_token_valid"]
