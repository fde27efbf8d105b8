"""One settings object, read once from the home's `tracker.toml` and the environment, and passed down explicitly.

Where settings come from
    `OPTIONS` names every setting once: its environment variable, its key in `tracker.toml` (a section and a
    key), its kind and what it means. `tracker init` writes a commented `tracker.toml` from it, the README's
    configuration table lists it, and `Settings.from_env` reads it: first the file (`<home>/tracker.toml`, or
    the file TRACKER_CONFIG names), then the environment, which overrides the file. A bad value is one line
    naming where it came from: the variable, or the file, section and key.

Secrets
    NCBI_API_KEY and TRACKER_SMTP_PASSWORD come from the environment, or from a file the settings name
    (`api_key_file`, `smtp_password_file`, or NCBI_API_KEY_FILE, TRACKER_SMTP_PASSWORD_FILE) that only its
    owner may read. They are never read from `tracker.toml` itself: a secret found there is refused, without
    being repeated, so that the settings file can be shared, versioned and shown.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tracker.errors import ConfigError

DEFAULT_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
SMTP_SECURITY = ("starttls", "ssl", "none")
SETTINGS_FILE = "tracker.toml"
EMAIL_PATTERN = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
# Documentation domains (RFC 2606): an address there reaches nobody, so NCBI could not warn before blocking.
PLACEHOLDER_DOMAINS = ("example.org", "example.com", "example.net")
MAIL_MAX_BYTES = 10_000_000
LARGEST_NUMBER = 10**12  # no setting means more; above it, seconds and bytes stop being what anyone meant
_DECIMAL = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")


@dataclass(frozen=True)
class Option:
    """One setting: its Settings field, environment variable, place in tracker.toml, kind and meaning."""

    field: str
    env: str
    section: str
    key: str
    kind: str  # text, url, int, number, addresses, names, choice, path, flag
    help: str
    example: str = ""  # written, commented out, in the tracker.toml `tracker init` creates
    choices: tuple[str, ...] = ()


OPTIONS: tuple[Option, ...] = (
    Option("email", "NCBI_EMAIL", "ncbi", "email", "text",
           "sent as `email` on every request, so NCBI can reach you before blocking heavy use", '"you@hospital.org"'),
    Option("tool", "NCBI_TOOL", "ncbi", "tool", "text", "sent as `tool` on every request", '"tracker"'),
    Option("api_key_file", "NCBI_API_KEY_FILE", "ncbi", "api_key_file", "path",
           "a file (owner-only) holding the NCBI API key: 10 requests/s instead of 3; or set NCBI_API_KEY",
           '"/etc/tracker/ncbi-api-key"'),
    Option("requests_per_second", "TRACKER_RATE_LIMIT", "ncbi", "rate_limit", "number",
           "requests per second; only lower it against NCBI (default 3, or 10 with an API key)", "3"),
    Option("eutils_url", "TRACKER_EUTILS_URL", "ncbi", "eutils_url", "url", "the E-utilities base URL",
           f'"{DEFAULT_EUTILS_URL}"'),
    Option("max_attempts", "TRACKER_MAX_ATTEMPTS", "ncbi", "max_attempts", "int",
           "attempts per request before a topic fails", "6"),
    Option("timeout", "TRACKER_TIMEOUT", "ncbi", "timeout", "number", "seconds to wait for an answer", "60"),
    Option("backoff_initial", "TRACKER_BACKOFF", "ncbi", "backoff", "number",
           "first wait between attempts, seconds (exponential with jitter)", "1"),
    Option("backoff_max", "TRACKER_BACKOFF_MAX", "ncbi", "backoff_max", "number", "longest wait between attempts", "60"),
    Option("efetch_batch", "TRACKER_EFETCH_BATCH", "ncbi", "efetch_batch", "int", "PMIDs per efetch request", "500"),
    Option("efetch_in_flight", "TRACKER_EFETCH_IN_FLIGHT", "ncbi", "efetch_in_flight", "int",
           "efetch requests on their way while a batch is parsed and stored; 1 sends one at a time", "3"),
    Option("efetch_in_flight_mb", "TRACKER_EFETCH_IN_FLIGHT_MB", "ncbi", "efetch_in_flight_mb", "int",
           "megabytes of efetch bodies on their way or parsed and waiting to be stored; fewer requests go ahead "
           "when bodies are large (the next batch is always fetched)", "32"),
    Option("esearch_page", "TRACKER_ESEARCH_PAGE", "ncbi", "esearch_page", "int",
           "PMIDs per esearch page (at most 9999)", "9999"),
    Option("overlap_days", "TRACKER_OVERLAP_DAYS", "runs", "overlap_days", "int",
           "days each incremental window (and the modified-records check) reaches back", "3"),
    Option("quiet_weeks", "TRACKER_QUIET_WEEKS", "runs", "quiet_weeks", "int",
           "weeks without a new paper before a topic is flagged as quiet", "8"),
    Option("db_url", "TRACKER_DB_URL", "database", "url", "text",
           "SQLAlchemy URL of the database (default db/tracker.sqlite3); leave the password to PGPASSWORD or ~/.pgpass",
           '"postgresql+psycopg://tracker@db.hospital.org/tracker"'),
    Option("auto_migrate", "TRACKER_AUTO_MIGRATE", "database", "auto_migrate", "flag",
           "upgrade a SQLite database to a newer tracker's schema on its own, after a backup in db/backups/, when the "
           "upgrade should take under a minute (else, and on PostgreSQL, 'tracker db migrate' does it)", "true"),
    Option("smtp_host", "TRACKER_SMTP_HOST", "mail", "smtp_host", "text", "the mail server", '"smtp.hospital.org"'),
    Option("smtp_port", "TRACKER_SMTP_PORT", "mail", "smtp_port", "int",
           "its port (default 587 for starttls, 465 for ssl, 25 for none)", "587"),
    Option("smtp_security", "TRACKER_SMTP_SECURITY", "mail", "smtp_security", "choice",
           "starttls, ssl or none; certificates are always verified with TLS", '"starttls"', SMTP_SECURITY),
    Option("smtp_user", "TRACKER_SMTP_USER", "mail", "smtp_user", "text", "the login, if the server wants one",
           '"alerts"'),
    Option("smtp_password_file", "TRACKER_SMTP_PASSWORD_FILE", "mail", "smtp_password_file", "path",
           "a file (owner-only) holding the SMTP password; or set TRACKER_SMTP_PASSWORD",
           '"/etc/tracker/smtp-password"'),
    Option("mail_from", "TRACKER_MAIL_FROM", "mail", "from", "text", "the sender", '"alerts@hospital.org"'),
    Option("mail_to", "TRACKER_MAIL_TO", "mail", "to", "addresses",
           "readers of every topic (topic files add their own `recipients`)", '["team@hospital.org"]'),
    Option("mail_max_bytes", "TRACKER_MAIL_MAX_BYTES", "mail", "max_bytes", "int",
           "largest message to send, in bytes; a server's own SIZE limit counts too", str(MAIL_MAX_BYTES)),
    Option("timezone", "TRACKER_TZ", "schedule", "timezone", "text",
           "IANA zone of every cron schedule and every time `tracker schedule` shows (default: the machine's)",
           '"Europe/Berlin"'),
    Option("digest_cron", "TRACKER_DIGEST_CRON", "schedule", "digest_cron", "text",
           "when `tracker schedule` sends the weekly e-mail (cron)", '"0 7 * * 1"'),
    Option("misfire_grace", "TRACKER_MISFIRE_GRACE", "schedule", "misfire_grace", "number",
           "seconds a missed scheduled run may be late and still run (once)", "86400"),
    Option("lease_timeout", "TRACKER_LEASE_TIMEOUT", "schedule", "lease_timeout", "number",
           "seconds a scheduler's claim on a running job survives without a heartbeat", "300"),
    Option("schedule_every", "TRACKER_SCHEDULE_EVERY", "schedule", "every", "number",
           "run every scheduled job this often, in seconds, instead of its cron (trials and tests only)", ""),
    Option("reviewer", "TRACKER_REVIEWER", "screening", "reviewer", "text",
           "who decides when screening from this shell (default: the login name)", '"ana"'),
    Option("web_session_hours", "TRACKER_WEB_SESSION_HOURS", "web", "session_hours", "number",
           "hours a web app login lasts before the next one is asked for", "12"),
    Option("web_hosts", "TRACKER_WEB_HOSTS", "web", "hosts", "names",
           "host names `tracker serve` answers to besides the address it listens on: behind a reverse proxy, "
           "its public name", '["tracker.hospital.org"]'),
    Option("web_trusted_proxy", "TRACKER_WEB_TRUSTED_PROXY", "web", "trusted_proxy", "text",
           "the address of the reverse proxy whose X-Forwarded-For and -Proto the web app believes (HTTPS there "
           "makes the session cookie Secure)", '"127.0.0.1"'),
    Option("web_public_url", "TRACKER_WEB_PUBLIC_URL", "web", "public_url", "url",
           "the address colleagues open the web app at: the e-mail links each topic and paper there, and feed "
           "addresses start with it", '"https://tracker.hospital.org/"'),
    Option("web_time_limit", "TRACKER_WEB_TIME_LIMIT", "web", "time_limit", "number",
           "seconds one database statement of a web page may run, or wait for another program's write, before it is "
           "stopped and the page says so (an export may take six times as long)", "10"),
    Option("web_threads", "TRACKER_WEB_THREADS", "web", "threads", "int",
           "pages the web app works on at once (the rest wait their turn; searches, exports and feeds have 4 "
           "threads of their own); the database has a connection for each thread, and as many again", "2"),
)
OPTION_BY_ENV = {option.env: option for option in OPTIONS}
# Read from the environment or from a file the settings name, never from tracker.toml itself.
SECRETS = {"api_key": ("NCBI_API_KEY", "api_key_file"), "smtp_password": ("TRACKER_SMTP_PASSWORD", "smtp_password_file")}
SECRET_WORDS = ("password", "api_key", "secret", "token")


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
    # efetch requests on their way while a batch is parsed and stored (tracker/ncbi/prefetch.py); 1: one at a time.
    efetch_in_flight: int = 3
    # Megabytes (10^6 bytes) of those requests' bodies, received or expected (the largest whole body so far).
    efetch_in_flight_mb: int = 32
    esearch_page: int = 9999
    overlap_days: int = 3
    # A topic with no new paper for longer than this is flagged in `tracker topics`, digests and the e-mail.
    quiet_weeks: int = 8
    verbose: bool = False
    # The weekly e-mail (tracker/mail). The port, when not given, follows the security mode.
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_security: str = "starttls"
    mail_from: str | None = None
    mail_to: tuple[str, ...] = ()
    mail_max_bytes: int = MAIL_MAX_BYTES
    # `tracker schedule` (tracker/schedule). `timezone` None: the machine's local zone.
    digest_cron: str = "0 7 * * 1"
    timezone: str | None = None
    misfire_grace: float = 24 * 3600.0
    schedule_every: float | None = None  # seconds; replaces every cron, for trials and tests only
    # Seconds a scheduler's job lease survives without a heartbeat before another scheduler takes the job over.
    lease_timeout: float = 300.0
    # Who decides when screening from this shell (tracker/review/screening.py); None: the login name.
    reviewer: str | None = None
    # `tracker serve` (tracker/web).
    web_session_hours: float = 12.0
    web_hosts: tuple[str, ...] = ()
    web_trusted_proxy: str | None = None
    web_public_url: str | None = None  # with a trailing slash
    # Upgrade an older SQLite database on its own when that is quick (tracker/store/upgrade.py).
    auto_migrate: bool = True
    web_time_limit: float = 10.0
    # On two cores, 20 clients without pauses: 2 threads answered 110-122 requests/s at p95 226-244 ms, 4 threads
    # 96-115 at 251-287 ms, 16 threads 51-58 at 600-870 ms: more threads only wait for each other's interpreter lock
    # (docs/performance.md, the web app under load).
    web_threads: int = 2
    api_key_file: Path | None = None
    smtp_password_file: Path | None = None
    settings_file: Path | None = None  # the tracker.toml that was read, if any
    warnings: tuple[str, ...] = ()  # said once by the commands that use NCBI (a placeholder address)

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
                 **overrides) -> Settings:
        env = dict(os.environ if env is None else env)
        home_path = Path(home or env.get("TRACKER_HOME") or ".").expanduser().resolve()
        configured = env.get("TRACKER_CONFIG")
        path = Path(configured).expanduser() if configured else home_path / SETTINGS_FILE
        if configured and not path.is_file():
            raise ConfigError(f"TRACKER_CONFIG={configured!r} names no file: point it at a tracker.toml, or unset it")
        values: dict[str, Any] = {}
        read_from = None
        if path.is_file():
            values.update(read_settings_file(path))
            read_from = path
        for option in OPTIONS:
            raw = env.get(option.env)
            if raw is not None and raw.strip() != "":
                values[option.field] = convert(option, raw, f"{option.env}={raw!r}", from_env=True)
        for name, (variable, file_field) in SECRETS.items():
            if env.get(variable):
                values[name] = env[variable]
            elif values.get(file_field) is not None:
                values[name] = read_secret_file(values[file_field], file_field)
        settings = cls(home=home_path, settings_file=read_from, **values)
        settings = replace(settings, warnings=tuple(check(settings, values)))
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


# -- reading ---------------------------------------------------------------------------------

def read_settings_file(path: Path) -> dict[str, Any]:
    """The settings `path` holds, checked key by key; ConfigError naming the file, section and key."""
    name = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{name}: not valid TOML ({error}); fix the file or move it aside") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: not UTF-8 text; save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"{name}: cannot be read ({error.strerror})") from None
    by_place = {(option.section, option.key): option for option in OPTIONS}
    sections = sorted({option.section for option in OPTIONS})
    values: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            refuse_secret(name, section, None)
            raise ConfigError(f"{name}: {section!r} is not a section; settings go in the sections "
                              f"{', '.join(f'[{s}]' for s in sections)}")
        if section not in sections:
            raise ConfigError(f"{name}: unknown section [{section}]; the sections are "
                              f"{', '.join(f'[{s}]' for s in sections)}")
        for key, value in table.items():
            refuse_secret(name, section, key)
            option = by_place.get((section, key))
            if option is None:
                known = ", ".join(o.key for o in OPTIONS if o.section == section)
                raise ConfigError(f"{name}: unknown key '{key}' in [{section}]; its keys are {known}")
            values[option.field] = convert(option, value, f"{name}: [{section}] {key} = {value!r}", from_env=False)
    return values


def refuse_secret(name: str, section: str, key: str | None) -> None:
    word = key or section
    if any(secret in word.lower() for secret in SECRET_WORDS) and not word.lower().endswith("_file"):
        where = f"[{section}] {key}" if key else section
        raise ConfigError(f"{name}: {where} is a secret, and tracker never reads secrets from {SETTINGS_FILE}: "
                          "remove it, and set NCBI_API_KEY or TRACKER_SMTP_PASSWORD in the environment, or name a "
                          "file only you can read with api_key_file or smtp_password_file")


def convert(option: Option, value: Any, where: str, *, from_env: bool) -> Any:
    """`value` as the setting's kind; `where` ("NAME='x'" or "file: [section] key = 'x'") opens the error."""
    kind = option.kind
    if kind in ("int", "number"):
        number = _number(value, where, from_env)
        if number <= 0:
            raise ConfigError(f"{where} must be greater than zero")
        if kind == "int":
            if number != int(number):
                raise ConfigError(f"{where} must be a whole number")
            return int(number)
        return float(number)
    if kind == "flag":
        return _flag(value, where, from_env)
    if kind in ("addresses", "names"):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            example = '[\"a@example.org\"]' if kind == "addresses" else '[\"tracker.hospital.org\"]'
            raise ConfigError(f"{where} must be a list of {'e-mail addresses' if kind == 'addresses' else 'names'} "
                              f"such as {example}")
        return tuple(item.strip() for item in items if item.strip())
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string in quotes")
    text = value.strip()
    if kind == "path":
        return Path(text).expanduser()
    if kind == "choice":
        text = text.lower()
        if text not in option.choices:
            raise ConfigError(f"{where} is not one of {', '.join(option.choices)}")
    if kind == "url":
        if not text.startswith(("http://", "https://")):
            what = "the E-utilities base URL" if option.field == "eutils_url" else "an address such as https://tracker.hospital.org/"
            raise ConfigError(f"{where} is not an http(s) URL: set it to {what}")
        return text if text.endswith("/") else text + "/"
    if option.field == "digest_cron":
        return " ".join(text.split())
    return text


def _number(value: Any, where: str, from_env: bool) -> float:
    """`value` as a number: a TOML number, or text of ASCII digits with an optional sign and decimals (float()
    would also take "inf", "nan", "1e400", "1_0" and other scripts' digits)."""
    if isinstance(value, bool):
        raise ConfigError(f"{where} is not a number")
    if isinstance(value, (int, float)):
        number = float(value) if abs(value) <= LARGEST_NUMBER else math.inf
    elif _DECIMAL.fullmatch(str(value).strip()):
        number = float(str(value).strip())
    else:
        hint = ": set it to a number" if from_env else ": write a number without quotes"
        raise ConfigError(f"{where} is not a number{hint}")
    if not math.isfinite(number) or abs(number) > LARGEST_NUMBER:
        raise ConfigError(f"{where} is not a number tracker can use: give one below {LARGEST_NUMBER:,.0f}")
    return number


FLAG_WORDS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def _flag(value: Any, where: str, from_env: bool) -> bool:
    if isinstance(value, bool):
        return value
    if from_env and isinstance(value, str) and value.strip().lower() in FLAG_WORDS:
        return FLAG_WORDS[value.strip().lower()]
    hint = "set it to true or false (or 1 or 0)" if from_env else "write true or false, without quotes"
    raise ConfigError(f"{where} is not true or false: {hint}")


def read_secret_file(path: Path, setting: str) -> str:
    """The secret in `path` (its first line), which must be a file only its owner can read."""
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{setting}: {path} can be read by others (mode {stat.S_IMODE(info.st_mode):04o}): "
                              f"run 'chmod 600 {path}'; tracker reads secrets only from files their owner alone can read")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{setting}: no file {path}: create it, or remove the setting") from None
    except OSError as error:
        raise ConfigError(f"{setting}: cannot read {path} ({error.strerror})") from None
    secret = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not secret:
        raise ConfigError(f"{setting}: {path} is empty: put the secret on its first line")
    return secret


# -- checks ----------------------------------------------------------------------------------

def check(settings: Settings, values: Mapping[str, Any]) -> list[str]:
    """Refuse settings that cannot work together; return the warnings worth saying once."""
    warnings = []
    if settings.esearch_page > 9999:
        raise ConfigError("TRACKER_ESEARCH_PAGE cannot exceed 9999: PubMed's esearch returns at most 9,999 ids")
    if settings.smtp_port is not None and settings.smtp_port > 65535:
        raise ConfigError(f"TRACKER_SMTP_PORT={str(settings.smtp_port)!r} is not a port: use 1-65535, or leave it "
                          "unset for 587 (starttls), 465 (ssl) or 25 (none)")
    if settings.email is not None:
        if not EMAIL_PATTERN.match(settings.email):
            raise ConfigError(f"NCBI_EMAIL={settings.email!r} is not an e-mail address: set it to yours, so that NCBI "
                              "can reach you before blocking heavy use")
        domain = settings.email.rpartition("@")[2].lower()
        if domain in PLACEHOLDER_DOMAINS or domain.endswith(tuple("." + d for d in PLACEHOLDER_DOMAINS)):
            warnings.append(f"NCBI_EMAIL={settings.email} is a placeholder address that reaches nobody: set your own, "
                            "so that NCBI can reach you before blocking heavy use")
    _check_schedule(settings)
    return warnings


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


# -- the commented file `tracker init` writes --------------------------------------------------

def render_settings_file() -> str:
    """A tracker.toml with every setting commented out, its variable and meaning beside it."""
    lines = [
        "# tracker settings. Uncomment what you need; environment variables (named beside each key) override it.",
        "# Secrets never go here: set NCBI_API_KEY and TRACKER_SMTP_PASSWORD in the environment, or name a file",
        "# only you can read (chmod 600) with api_key_file and smtp_password_file.",
    ]
    for section in dict.fromkeys(option.section for option in OPTIONS):
        lines += ["", f"[{section}]"]
        for option in (o for o in OPTIONS if o.section == section):
            lines.append(f"# {option.key} = {option.example or '...'}  # {option.env}: {option.help}")
    return "\n".join(lines) + "\n"


__all__ = ["Settings", "OPTIONS", "Option", "SETTINGS_FILE", "render_settings_file", "read_settings_file",
           "DEFAULT_EUTILS_URL", "EMAIL_PATTERN", "MAIL_MAX_BYTES"]
