"""One settings object, read from the environment once and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tracker.errors import ConfigError

DEFAULT_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
SMTP_SECURITY = ("starttls", "ssl", "none")


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
    # efetch requests on their way while a batch is parsed and stored (tracker/prefetch.py); 1: one at a time.
    efetch_in_flight: int = 3
    esearch_page: int = 9999
    overlap_days: int = 3
    # A topic with no new paper for longer than this is flagged in `tracker topics`, digests and the e-mail.
    quiet_weeks: int = 8
    verbose: bool = False
    # The weekly e-mail (tracker/mail/). The port, when not given, follows the security mode.
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_security: str = "starttls"
    mail_from: str | None = None
    mail_to: tuple[str, ...] = ()
    # `tracker schedule` (tracker/schedule.py). `timezone` None: the machine's local zone.
    digest_cron: str = "0 7 * * 1"
    timezone: str | None = None
    misfire_grace: float = 24 * 3600.0
    schedule_every: float | None = None  # seconds; replaces every cron, for trials and tests only
    # Seconds a scheduler's job lease survives without a heartbeat before another scheduler takes the job over.
    lease_timeout: float = 300.0
    # Who decides when screening from this shell (tracker/screening); None: the login name.
    reviewer: str | None = None

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
            efetch_in_flight=_int(env, "TRACKER_EFETCH_IN_FLIGHT", cls.efetch_in_flight),
            esearch_page=_int(env, "TRACKER_ESEARCH_PAGE", cls.esearch_page),
            overlap_days=_int(env, "TRACKER_OVERLAP_DAYS", cls.overlap_days),
            quiet_weeks=_int(env, "TRACKER_QUIET_WEEKS", cls.quiet_weeks),
            smtp_host=(env.get("TRACKER_SMTP_HOST") or "").strip() or None,
            smtp_port=_int(env, "TRACKER_SMTP_PORT", 587) if env.get("TRACKER_SMTP_PORT") else None,
            smtp_user=env.get("TRACKER_SMTP_USER") or None,
            smtp_password=env.get("TRACKER_SMTP_PASSWORD") or None,
            smtp_security=(env.get("TRACKER_SMTP_SECURITY") or "starttls").strip().lower(),
            mail_from=(env.get("TRACKER_MAIL_FROM") or "").strip() or None,
            mail_to=tuple(a.strip() for a in (env.get("TRACKER_MAIL_TO") or "").split(",") if a.strip()),
            digest_cron=" ".join((env.get("TRACKER_DIGEST_CRON") or cls.digest_cron).split()),
            timezone=(env.get("TRACKER_TZ") or "").strip() or None,
            misfire_grace=_float(env, "TRACKER_MISFIRE_GRACE", cls.misfire_grace),
            lease_timeout=_float(env, "TRACKER_LEASE_TIMEOUT", cls.lease_timeout),
            schedule_every=_float(env, "TRACKER_SCHEDULE_EVERY", 0) if env.get("TRACKER_SCHEDULE_EVERY") else None,
            reviewer=(env.get("TRACKER_REVIEWER") or "").strip() or None,
        )
        if settings.esearch_page > 9999:
            raise ConfigError("TRACKER_ESEARCH_PAGE cannot exceed 9999: PubMed's esearch returns at most 9,999 ids")
        if settings.smtp_security not in SMTP_SECURITY:
            raise ConfigError(f"TRACKER_SMTP_SECURITY={env['TRACKER_SMTP_SECURITY']!r} is not a security mode: "
                              f"set it to {', '.join(SMTP_SECURITY)}")
        if settings.smtp_port is not None and settings.smtp_port > 65535:
            raise ConfigError(f"TRACKER_SMTP_PORT={env['TRACKER_SMTP_PORT']!r} is not a port: use 1-65535, or leave it "
                              "unset for 587 (starttls), 465 (ssl) or 25 (none)")
        _check_schedule(settings)
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

    @property
    def zone(self) -> tzinfo:
        """TRACKER_TZ, else the machine's local zone: cron times and every shown time are in it."""
        if self.timezone:
            return ZoneInfo(self.timezone)
        from tzlocal import get_localzone

        try:
            return get_localzone()
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ConfigError(f"cannot tell this machine's time zone ({error}): set TRACKER_TZ, for example "
                              "TRACKER_TZ=Europe/Berlin") from None

    @property
    def log_file(self) -> Path:
        return self.db_dir / "tracker.log"


def _check_schedule(settings: Settings) -> None:
    from tracker.cron import cron_trigger

    try:
        cron_trigger(settings.digest_cron, ZoneInfo("UTC"))
    except ValueError as error:
        raise ConfigError(f"TRACKER_DIGEST_CRON: {error}") from None
    if settings.timezone:
        try:
            ZoneInfo(settings.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"TRACKER_TZ={settings.timezone!r} is not a time zone: use an IANA name such as "
                              "Europe/Berlin or UTC, or unset it for the machine's zone") from None
