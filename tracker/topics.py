"""Topic files: `queries/<slug>.toml` loaded and validated into `Topic` values."""

from __future__ import annotations

import difflib
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

from tracker.errors import ConfigError, TopicFileError, UnknownTopicError
from tracker.settings import EMAIL_PATTERN, SETTINGS_FILE, render_settings_file

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEFAULT_SCHEDULE = "0 6 * * *"
ALLOWED_KEYS = {"title", "description", "query", "since", "schedule", "recipients", "max_per_digest",
                "exclusion_reasons", "full_text_reasons", "screening", "highlight", "seeds"}
# Why a paper is excluded, when the topic file gives no `exclusion_reasons` (PRISMA's usual headings).
DEFAULT_EXCLUSION_REASONS = (
    "wrong population", "wrong intervention", "wrong comparator", "wrong outcome", "wrong study design",
    "wrong publication type", "not about norepinephrine as a drug", "duplicate report", "other",
)
# Why a report is excluded after reading its full text, when the topic file gives no `full_text_reasons`: PRISMA
# 2020's usual headings for reports (a report that could not be had is "not retrieved", a decision of its own).
DEFAULT_FULL_TEXT_REASONS = (
    "wrong population", "wrong intervention", "wrong comparator", "wrong outcome", "wrong study design",
    "wrong setting", "conference abstract only", "duplicate report", "language", "other",
)
MAX_REVIEWERS = 2
# PubMed's PMIDs are below 2^31 (SQLite's and PostgreSQL's INTEGER); a larger number is a typing slip.
MAX_PMID = 2**31 - 1
# Seeds a topic file may list: a starting set for the suggestions, not a library (import those with `tracker import`).
MAX_SEEDS = 500


@dataclass(frozen=True)
class ScreeningMode:
    """`screening = { reviewers = ["ana", "ben"], blind = true }`: who decides each paper (or how many:
    `reviewers = 2` takes the first two who decide), and whether a reviewer sees the other's decision before giving
    their own (dual screening is blind unless it says not)."""

    reviewers: int = 1
    blind: bool = False
    names: tuple[str, ...] = ()  # the named reviewers, when the file names them

    @property
    def dual(self) -> bool:
        return self.reviewers > 1


@dataclass(frozen=True)
class Highlight:
    """`highlight = { include = ["randomised", "spinal"], exclude = ["rat", "review"] }`: words the screening page
    marks in titles and abstracts, green for the ones that speak for inclusion and red for the others."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Topic:
    slug: str
    title: str
    query: str
    description: str = ""
    since: date | None = None
    schedule: str = DEFAULT_SCHEDULE
    recipients: tuple[str, ...] = ()
    max_per_digest: int | None = None
    exclusion_reasons: tuple[str, ...] = DEFAULT_EXCLUSION_REASONS
    screening: ScreeningMode = ScreeningMode()
    # Papers the suggestions start from before the topic has inclusions (tracker/runs/suggest.py), in file order.
    seeds: tuple[int, ...] = ()
    path: Path | None = None
    full_text_reasons: tuple[str, ...] = DEFAULT_FULL_TEXT_REASONS
    highlight: Highlight = Highlight()


def validate_slug(slug: str) -> str:
    if not SLUG_PATTERN.match(slug):
        raise ConfigError(
            f"invalid topic name {slug!r}: use lower-case letters, digits and dashes (for example 'cesarean')"
        )
    return slug


def validate_cron(expression: str) -> str:
    from datetime import timezone

    from tracker.cron import cron_trigger

    cron_trigger(expression, timezone.utc)
    return expression


def load_topic(path: Path) -> Topic:
    """The topic in `path`; anything wrong with the file, whatever it is, is its one-line TopicFileError."""
    path = Path(path)
    slug = _slug_of(path)
    data = _read_table(path)
    try:
        return _topic_from(slug, path, data)
    except TopicFileError:
        raise
    except Exception as error:  # noqa: BLE001  (a value no check below foresaw is still this file's one line)
        raise TopicFileError(f"{path.name}: cannot be read as a topic ({type(error).__name__}: {error}); fix the "
                             "file or move it out of queries/") from None


def _slug_of(path: Path) -> str:
    name = path.name
    if path.suffix != ".toml":
        twin = path.with_suffix(".toml")
        raise TopicFileError(f"{name}: topic files end in lower-case .toml; "
                             + (f"{twin.name} exists too: remove one of them" if twin.exists()
                                else f"rename it to {twin.name}"))
    try:
        return validate_slug(path.stem)
    except ConfigError:
        raise TopicFileError(
            f"{name}: file name must be a topic slug (lower-case letters, digits, dashes) followed by .toml") from None


def _read_table(path: Path) -> dict:
    name = path.name
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TopicFileError(f"{name}: not UTF-8 text; save the file as UTF-8") from None
    except OSError as error:
        raise TopicFileError(f"{name}: cannot be read ({error.strerror}): fix its permissions or move it out of "
                             "queries/") from None
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as error:
        raise TopicFileError(_describe_toml_error(name, source, error)) from None
    except RecursionError:  # tomllib reads nested arrays and tables recursively: [[[[...]]]] thousands deep
        raise TopicFileError(f"{name}: not valid TOML (arrays or tables nested too deep to read); fix the file or "
                             "move it out of queries/") from None
    unknown = sorted(set(data) - ALLOWED_KEYS)
    if unknown:
        raise TopicFileError(f"{name}: unknown key '{unknown[0]}'; allowed keys are {', '.join(sorted(ALLOWED_KEYS))}")
    return data


def _topic_from(slug: str, path: Path, data: dict) -> Topic:
    name = path.name
    query = " ".join(_text(name, data, "query", required=True).split())
    return Topic(
        slug=slug,
        title=_text(name, data, "title", required=True),
        query=query,
        description=_text(name, data, "description", required=False),
        since=_since(name, data),
        schedule=_schedule(name, data),
        recipients=_recipients(name, data),
        max_per_digest=_max_per_digest(name, data),
        exclusion_reasons=tuple(_reasons(name, data, "exclusion_reasons", DEFAULT_EXCLUSION_REASONS)),
        screening=_screening_mode(name, data.get("screening")),
        seeds=_seeds(name, data.get("seeds")),
        path=path,
        full_text_reasons=tuple(_reasons(name, data, "full_text_reasons", DEFAULT_FULL_TEXT_REASONS)),
        highlight=_highlight(name, data.get("highlight")),
    )


def _text(name: str, data: dict, key: str, *, required: bool) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise TopicFileError(f"{name}: key '{key}' must be a string")
    if required and not value.strip():
        raise TopicFileError(f"{name}: key '{key}' is missing or empty; give the PubMed query to track" if key == "query"
                             else f"{name}: key '{key}' is missing or empty")
    return value.strip()


def _since(name: str, data: dict) -> date | None:
    since = data.get("since")
    if since is None:
        return None
    if isinstance(since, str):
        try:
            since = date.fromisoformat(since.strip())
        except ValueError:
            raise TopicFileError(f"{name}: key 'since' = {data['since']!r} is not a date; use YYYY-MM-DD") from None
    elif not isinstance(since, date) or hasattr(since, "hour"):
        raise TopicFileError(f"{name}: key 'since' must be a date such as 2015-01-01")
    if since > date.today():
        raise TopicFileError(f"{name}: key 'since' = {since} is in the future")
    return since


def _schedule(name: str, data: dict) -> str:
    schedule = data.get("schedule", DEFAULT_SCHEDULE)
    if not isinstance(schedule, str):
        raise TopicFileError(f"{name}: key 'schedule' must be a cron string such as '0 6 * * *'")
    try:
        return validate_cron(schedule.strip())
    except ValueError as error:
        raise TopicFileError(f"{name}: key 'schedule': {error}") from None


def _recipients(name: str, data: dict) -> tuple[str, ...]:
    recipients = data.get("recipients", [])
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise TopicFileError(f"{name}: key 'recipients' must be a list of e-mail addresses")
    for recipient in recipients:
        if not EMAIL_PATTERN.match(recipient.strip()):
            raise TopicFileError(f"{name}: key 'recipients': {recipient!r} is not an e-mail address")
    return tuple(r.strip() for r in recipients)


def _max_per_digest(name: str, data: dict) -> int | None:
    value = data.get("max_per_digest")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise TopicFileError(f"{name}: key 'max_per_digest' must be a whole number of at least 1")
    return value



def _reasons(name: str, data: dict, key: str, default: tuple[str, ...]) -> list[str]:
    reasons = data.get(key, list(default))
    if (not isinstance(reasons, list) or not reasons
            or not all(isinstance(reason, str) and reason.strip() for reason in reasons)):
        raise TopicFileError(f"{name}: key '{key}' must be a list of reasons such as "
                             "[\"wrong population\", \"wrong study design\"]")
    reasons = [" ".join(reason.split()) for reason in reasons]
    folded = [reason.casefold() for reason in reasons]
    if len(set(folded)) != len(folded):
        twice = next(reason for index, reason in enumerate(reasons) if reason.casefold() in folded[:index])
        raise TopicFileError(f"{name}: key '{key}' names {twice!r} twice")
    if any(reason.isdigit() or ";" in reason for reason in reasons):
        raise TopicFileError(f"{name}: key '{key}': a reason cannot be a number or contain ';' "
                             "(numbers choose reasons by position, ';' separates them in exports)")
    return reasons


def _highlight(name: str, value) -> Highlight:
    if value is None:
        return Highlight()
    example = '{ include = ["randomised"], exclude = ["rat"] }'
    if not isinstance(value, dict):
        raise TopicFileError(f"{name}: key 'highlight' must be a table such as {example}")
    unknown = sorted(set(value) - {"include", "exclude"})
    if unknown:
        raise TopicFileError(f"{name}: key 'highlight' has an unknown key '{unknown[0]}'; it takes include and exclude")
    lists = {}
    for key in ("include", "exclude"):
        words = value.get(key, [])
        if not isinstance(words, list) or not all(isinstance(word, str) and word.strip() for word in words):
            raise TopicFileError(f"{name}: key 'highlight': {key} must be a list of words such as {example}")
        lists[key] = tuple(dict.fromkeys(" ".join(word.split()) for word in words))
    return Highlight(include=lists["include"], exclude=lists["exclude"])


def _seeds(name: str, value) -> tuple[int, ...]:
    if value is None:
        return ()
    example = "[31415926, 27182818]"
    if not isinstance(value, list):
        raise TopicFileError(f"{name}: key 'seeds' must be a list of PMIDs such as {example}")
    seeds: list[int] = []
    for pmid in value:
        if isinstance(pmid, bool) or not isinstance(pmid, int) or not 0 < pmid <= MAX_PMID:
            raise TopicFileError(f"{name}: key 'seeds': {pmid!r} is not a PMID (a whole number such as 31415926, "
                                 "without quotes)")
        if pmid in seeds:
            raise TopicFileError(f"{name}: key 'seeds' lists {pmid} twice")
        seeds.append(pmid)
    if len(seeds) > MAX_SEEDS:
        raise TopicFileError(f"{name}: key 'seeds' lists {len(seeds)} PMIDs, more than {MAX_SEEDS}: keep the few "
                             "papers the topic is about, and add a library with 'tracker import'")
    return tuple(seeds)


def _screening_mode(name: str, value) -> ScreeningMode:
    if value is None:
        return ScreeningMode()
    example = '{ reviewers = ["ana", "ben"], blind = true }'
    if not isinstance(value, dict):
        raise TopicFileError(f"{name}: key 'screening' must be a table such as {example}")
    unknown = sorted(set(value) - {"reviewers", "blind"})
    if unknown:
        raise TopicFileError(f"{name}: key 'screening' has an unknown key '{unknown[0]}'; it takes reviewers and blind")
    given = value.get("reviewers", 1)
    names: tuple[str, ...] = ()
    if isinstance(given, list):
        if not all(isinstance(who, str) and who.strip() for who in given):
            raise TopicFileError(f"{name}: key 'screening': reviewers must be names such as {example}, or a number")
        names = tuple(" ".join(who.split()) for who in given)
        twice = [who for index, who in enumerate(names) if who in names[:index]]
        if twice:
            raise TopicFileError(f"{name}: key 'screening': reviewers names {twice[0]!r} twice")
        if not 1 <= len(names) <= MAX_REVIEWERS:
            raise TopicFileError(f"{name}: key 'screening': reviewers must name one or two people, such as {example}")
        reviewers = len(names)
    elif isinstance(given, bool) or not isinstance(given, int):
        raise TopicFileError(f"{name}: key 'screening': reviewers must be names such as {example}, or a number")
    else:
        reviewers = given
    if not 1 <= reviewers <= MAX_REVIEWERS:
        raise TopicFileError(f"{name}: key 'screening': reviewers must be 1 or 2 (two for dual screening)")
    blind = value.get("blind", reviewers > 1)
    if not isinstance(blind, bool):
        raise TopicFileError(f"{name}: key 'screening': blind must be true or false")
    if blind and reviewers == 1:
        raise TopicFileError(f"{name}: key 'screening': blind screening needs reviewers = 2")
    return ScreeningMode(reviewers=reviewers, blind=blind, names=names)


def load_topics(queries_dir: Path) -> list[Topic]:
    """Every topic in `queries_dir`, sorted by slug; the first bad file raises TopicFileError."""
    scan = scan_topics(queries_dir)
    if scan.errors:
        raise TopicFileError(next(iter(scan.errors.values())))
    return scan.good()


@dataclass
class TopicScan:
    """Every topic file of a folder loaded on its own: one bad file does not hide the others."""

    topics: dict[str, Topic] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # file stem -> the one-line error

    def good(self) -> list[Topic]:
        return [self.topics[slug] for slug in sorted(self.topics)]

    def select(self, slugs: tuple[str, ...] | list[str]) -> list[Topic]:
        """The topics asked for by name (all the good ones when none is named); a bad one asked for raises its error."""
        if not slugs:
            return self.good()
        for slug in slugs:
            if slug in self.errors:
                raise TopicFileError(self.errors[slug])
        return select_topics(self.good(), slugs)


def scan_topics(queries_dir: Path) -> TopicScan:
    """Load each topic file of `queries_dir` on its own (TopicScan); refuses a missing or empty folder."""
    queries_dir = Path(queries_dir)
    if not queries_dir.is_dir():
        raise ConfigError(f"no topics folder at {queries_dir}: run 'tracker init' or pass --home DIR")
    scan = TopicScan()
    for path in topic_paths(queries_dir):
        try:
            topic = load_topic(path)
        except TopicFileError as error:
            scan.errors[path.stem] = str(error)
        else:
            scan.topics[topic.slug] = topic
    if not scan.topics and not scan.errors:
        raise ConfigError(f"no topic files in {queries_dir}: add one (see README) or run 'tracker init'")
    return scan


def topic_paths(queries_dir: Path) -> list[Path]:
    """The files of `queries_dir` that look like topics, sorted; `dosing.TOML` is one, so that it is refused
    (by load_topic) instead of silently ignored beside, or instead of, `dosing.toml`."""
    return sorted(path for path in Path(queries_dir).iterdir() if path.suffix.lower() == ".toml")


def select_topics(topics: list[Topic], slugs: tuple[str, ...] | list[str]) -> list[Topic]:
    if not slugs:
        return topics
    by_slug = {topic.slug: topic for topic in topics}
    missing = [slug for slug in slugs if slug not in by_slug]
    if missing:
        close = difflib.get_close_matches(missing[0], list(by_slug), n=1)
        guess = f"did you mean '{close[0]}'? " if close else ""
        raise UnknownTopicError(f"unknown topic '{missing[0]}'; {guess}known topics: {', '.join(sorted(by_slug))}",
                                slug=missing[0])
    return [by_slug[slug] for slug in dict.fromkeys(slugs)]


_TOML_LINE = re.compile(r"at line (\d+)")
_DATE_VALUE = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*=\s*(\d{4}-\d{1,2}-\d{1,2}\S*)")


def _describe_toml_error(name: str, text: str, error: tomllib.TOMLDecodeError) -> str:
    """TOML's complaint, or, when the line holds a date TOML cannot read (2015-13-01, 2015-1-1), that date."""
    found = _TOML_LINE.search(str(error))
    lines = text.splitlines()
    if found and 0 < int(found.group(1)) <= len(lines):
        date_value = _DATE_VALUE.match(lines[int(found.group(1)) - 1])
        if date_value:
            key, value = date_value.groups()
            return (f"{name}: key '{key}' = {value} is not a date (line {found.group(1)}): write it as YYYY-MM-DD, "
                    "for example 2015-01-31")
    return f"{name}: not valid TOML ({error}); fix the file or move it out of queries/"


def new_topic_path(queries_dir: Path, slug: str) -> Path:
    """Where a new topic would be saved; refuses an invalid slug, a missing folder or an existing file."""
    target = Path(queries_dir) / f"{validate_slug(slug)}.toml"
    if not target.parent.is_dir():
        raise ConfigError(f"no topics folder at {target.parent}: run 'tracker init' or pass --home DIR")
    if target.exists():
        raise ConfigError(f"queries/{slug}.toml already exists: choose another name for --save-as")
    return target


def topic_from_query(slug: str, query: str, *, since: date | None = None, title: str | None = None) -> Topic:
    """The topic `tracker query --save-as` (or the web app's "Save as topic") makes of a query; without a title,
    the slug's words make one ("norepinephrine-preeclampsia" is "Norepinephrine preeclampsia")."""
    validate_slug(slug)
    query = " ".join(query.split())
    if not query:
        raise ConfigError("the query is empty: give a PubMed query, for example 'norepinephrine AND bolus'")
    given = " ".join((title or "").split())
    if title is not None and not given:
        raise ConfigError("the title is empty: give the topic a title, for example 'Norepinephrine in preeclampsia'")
    if len(given) > 200:
        raise ConfigError("the title is longer than 200 characters: give a shorter one")
    return Topic(slug=slug, title=given or slug.replace("-", " ").capitalize(), query=query, since=since)


def save_topic_file(queries_dir: Path, topic: Topic) -> Path:
    """Write a new topic file (never replacing one) and check it loads back."""
    target = new_topic_path(queries_dir, topic.slug)
    try:
        with open(target, "x", encoding="utf-8") as file:
            file.write(render_topic_file(topic))
    except FileExistsError:
        raise ConfigError(f"queries/{topic.slug}.toml already exists: choose another name for --save-as") from None
    except OSError as error:
        raise ConfigError(f"cannot write {target} ({error.strerror}): make {target.parent} writable") from None
    try:
        load_topic(target)
    except ConfigError as error:
        target.unlink()
        raise ConfigError(f"the query cannot be saved as a topic ({error}); write queries/{topic.slug}.toml by hand") from None
    return target


def render_topic_file(topic: Topic) -> str:
    """TOML for a topic, as `tracker query --save-as` writes it."""

    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"title = {quoted(topic.title)}"]
    if topic.description:
        lines.append(f"description = {quoted(topic.description)}")
    lines.append(f"query = {quoted(topic.query)}")
    if topic.since:
        lines.append(f"since = {topic.since.isoformat()}")
    if topic.schedule != DEFAULT_SCHEDULE:
        lines.append(f"schedule = {quoted(topic.schedule)}")
    if topic.recipients:
        lines.append("recipients = [" + ", ".join(quoted(r) for r in topic.recipients) + "]")
    if topic.max_per_digest:
        lines.append(f"max_per_digest = {topic.max_per_digest}")
    if topic.seeds:
        lines.append("seeds = [" + ", ".join(str(pmid) for pmid in topic.seeds) + "]")
    return "\n".join(lines) + "\n"


def create_home(home: Path) -> list[str]:
    """A tracker home: queries/ with the shipped topics and a commented tracker.toml (never replacing a file),
    db/ (owner only), reports/."""
    lines = []
    try:
        for name in ("queries", "db", "reports"):
            folder = home / name
            if not folder.exists():
                folder.mkdir(parents=True, mode=0o700 if name == "db" else 0o777)
                lines.append(f"created {folder}")
        defaults = resources.files("tracker") / "default_topics"
        for source in sorted(defaults.iterdir(), key=lambda p: p.name):
            if not source.name.endswith(".toml"):
                continue
            target = home / "queries" / source.name
            if target.exists():
                lines.append(f"kept {target} (already there)")
                continue
            with resources.as_file(source) as path:
                shutil.copyfile(path, target)
            lines.append(f"created {target}")
        settings = home / SETTINGS_FILE
        if settings.exists():
            lines.append(f"kept {settings} (already there)")
        else:
            with open(settings, "x", encoding="utf-8") as file:
                file.write(render_settings_file())
            lines.append(f"created {settings} (every setting, commented out: set your NCBI e-mail there)")
    except OSError as error:
        raise ConfigError(f"cannot create the tracker home at {home} ({error.strerror}): choose a writable folder") from None
    return lines
