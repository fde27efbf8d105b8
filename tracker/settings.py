"""One settings object, read from the environment once and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from tracker.errors import ConfigError

DEFAULT_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number: set it to a number such as {default:g}") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be greater than zero")
    return value


def _int(env: dict[str, str], name: str, default: int) -> int:
    value = _float(env, name, default)
    if value != int(value):
        raise ConfigError(f"{name}={env[name]!r} must be a whole number")
    return int(value)


@dataclass(frozen=True)
class Settings:
    home: Path
    eutils_url: str = DEFAULT_EUTILS_URL
    db_url: str | None = None
    email: str | None = None
    tool: str = "tracker"
    api_key: str | None = field(default=None, repr=False)
    # NCBI allows 3 requests/s without a key and 10 with one; lower it, never raise it past that.
    requests_per_second: float | None = None
    max_attempts: int = 6
    timeout: float = 60.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    efetch_batch: int = 500
    esearch_page: int = 9999
    overlap_days: int = 3
    verbose: bool = False

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None, env: dict[str, str] | None = None, **overrides) -> "Settings":
        env = dict(os.environ if env is None else env)
        home_path = Path(home or env.get("TRACKER_HOME") or ".").expanduser().resolve()
        url = env.get("TRACKER_EUTILS_URL") or DEFAULT_EUTILS_URL
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"TRACKER_EUTILS_URL={url!r} is not an http(s) URL: set it to the E-utilities base URL")
        settings = cls(
            home=home_path,
            eutils_url=url if url.endswith("/") else url + "/",
            db_url=env.get("TRACKER_DB_URL") or None,
            email=env.get("NCBI_EMAIL") or None,
            tool=env.get("NCBI_TOOL") or "tracker",
            api_key=env.get("NCBI_API_KEY") or None,
            requests_per_second=_float(env, "TRACKER_RATE_LIMIT", 0) if env.get("TRACKER_RATE_LIMIT") else None,
            max_attempts=_int(env, "TRACKER_MAX_ATTEMPTS", cls.max_attempts),
            timeout=_float(env, "TRACKER_TIMEOUT", cls.timeout),
            backoff_initial=_float(env, "TRACKER_BACKOFF", cls.backoff_initial),
            backoff_max=_float(env, "TRACKER_BACKOFF_MAX", cls.backoff_max),
            efetch_batch=_int(env, "TRACKER_EFETCH_BATCH", cls.efetch_batch),
            esearch_page=_int(env, "TRACKER_ESEARCH_PAGE", cls.esearch_page),
            overlap_days=_int(env, "TRACKER_OVERLAP_DAYS", cls.overlap_days),
        )
        if settings.esearch_page > 9999:
            raise ConfigError("TRACKER_ESEARCH_PAGE cannot exceed 9999: PubMed's esearch returns at most 9,999 ids")
        return replace(settings, **overrides) if overrides else settings

    @property
    def rate_limit(self) -> float:
        ceiling = 10.0 if self.api_key else 3.0
        if self.requests_per_second is None:
            return ceiling
        return self.requests_per_second

    @property
    def queries_dir(self) -> Path:
        return self.home / "queries"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def db_dir(self) -> Path:
        return self.home / "db"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.db_dir / 'tracker.sqlite3'}"
