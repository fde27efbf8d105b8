"""Topic digests: a period's new papers, grouped by evidence tier, as Markdown, HTML or plain text.

The period. A digest covers papers a topic first saw in [period_start, period_end). By default it starts
where the topic's last recorded digest ended, counting only digests that ended before the report day
(UTC) began; with none, it covers the last 7 days. So a digest re-run on the same day re-renders the same
period plus anything new, and overwrites that day's files instead of leaving an empty one behind.
Writing files records a DigestRecord (the next default period starts at its end); printing does not.

Reports show every new paper. Only callers that pass `max_items` (the e-mail) cap the list, and the
header then says how many were left out and where they are.

The baseline. A topic's first run (or a backfill after its query changed) stores everything its query
matches since the topic's `since`: thousands of papers that are not news. A digest sums those up as the
topic's baseline ("Baseline: 5,175 papers matched since 2010 are now stored; from now on you get what is
new") with its strongest papers by evidence tier (up to `max_per_digest`, else 25); the full list is the
export's. A digest of an explicit period (`tracker digest --since DATE`) lists every paper instead.

What changed since (tracker/runs/watch.py). A digest of a period opens with "Updates to papers you already
received": the status events (retraction, expression of concern, erratum, update, removal) detected in the
period on any paper of the topic, each with its notice's PubMed link. A paper PubMed has retracted is marked
RETRACTED wherever it is listed, and the header names the query's health flags.

Outside your query (tracker/runs/suggest.py). Each topic ends with its pending suggestions beyond the query, "Outside
your query: 7 suggestions, 2 of them new" (first found in the period, or, in the e-mail, since the reader's last one),
and three of them, the new ones first and the most relevant first within each, with why each is suggested ("similar
to 3 of your included papers", "cites Smith 2019"); the rest are in `tracker suggest <slug>` and the web app's
Suggestions page.

Rendering. tracker/outputs/render.py renders the templates (tracker/outputs/templates/digest.*.j2) and escapes every
record text for its format; this module gives them, and the mail's templates, their phrases (PHRASES).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

from tracker import files
from tracker.errors import ConfigError
from tracker.facts import StudyFacts, design_label, summary_line
from tracker.ncbi.evidence import TIER_INDEX, TIER_RULES, classify
from tracker.ncbi.notices import status_mark
from tracker.ncbi.pubmed import AbstractSection, Paper
from tracker.ncbi.registries import TrialId, trial_ids
from tracker.outputs.render import moment, plain, render
from tracker.review.relevance import ranking_status
from tracker.review.screening import count_states, rule_for, with_included_first
from tracker.review.states import OPEN, State
from tracker.runs.suggest import TOP_SHOWN, SuggestionView, list_suggestions, ranked
from tracker.runs.watch import DEFAULT_QUIET_WEEKS, HealthFlag, topic_health
from tracker.store import Store
from tracker.store.changes import EventView, list_events, paper_statuses
from tracker.store.decisions import summaries
from tracker.store.digests import (
    baseline_pmids,
    last_digest,
    latest_run,
    load_digest_papers,
    save_digest_record,
    topic_papers_since,
)
from tracker.store.membership import other_topics_for
from tracker.store.relevance import scores_of
from tracker.store.studyfacts import StoredFacts, stored_facts
from tracker.store.suggestions import load_suggestions
from tracker.text import as_utc, cut_at_word, doi_url, normal_pmcid, plural, pmc_url, pubmed_url, utcnow
from tracker.topics import Topic

DEFAULT_PERIOD = timedelta(days=7)
BASELINE_SHOWN = 25  # the strongest papers a baseline shows when the topic sets no max_per_digest
TIER_FROM_ABSTRACT = "tier from the abstract"
EXCERPT_TAIL = 300
EXCERPT_LIMIT = 400
AUTHORS_SHOWN = 3
FORMATS = ("md", "html", "text")
_SUFFIX_FORMATS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".txt": "text", ".text": "text"}


@dataclass(frozen=True)
class RunInfo:
    status: str  # running, succeeded, failed
    started_at: datetime
    finished_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class DigestEntry:
    paper: Paper
    tier: str
    first_seen_at: datetime
    other_topics: tuple[str, ...]
    excerpt: str
    late_arrival: bool
    authors_short: str
    status: str | None = None  # retracted, concern, deleted (tracker/ncbi/notices.py)
    trials: tuple[TrialId, ...] = ()  # its trial registrations, each linked to its registry's record
    relevance: float | None = None  # the topic's relevance score (tracker/review/relevance.py); None before ranking
    likely_relevant: bool = False  # in the top fifth of the topic's scores
    facts: StudyFacts | None = None  # read from its title and abstract (tracker/facts)
    tier_from_abstract: bool = False  # its tier is the design read from the abstract: publication types name none

    @property
    def facts_line(self) -> str:
        """"Randomised trial · 110 patients · caesarean · norepinephrine 2.5 µg/min infusion (prophylactic) vs
        phenylephrine 50 µg/min": what the paper is, in one line. "" when its text says none of it, or when all it
        says is the design its publication types name (the tier it is listed under says as much)."""
        if self.facts is None:
            return ""
        line = summary_line(self.facts)
        if self.facts.design_source == "publication type" and line == design_label(self.facts.design):
            return ""
        return line

    @property
    def tier_mark(self) -> str | None:
        """"tier from the abstract" while the tier is read from the text (until publication types name one)."""
        return TIER_FROM_ABSTRACT if self.tier_from_abstract else None

    @property
    def status_mark(self) -> str | None:
        """"RETRACTED", "EXPRESSION OF CONCERN" or "REMOVED FROM PUBMED"; None for a paper in good standing."""
        return status_mark(self.status)

    @property
    def url(self) -> str:
        return pubmed_url(self.paper.pmid)

    @property
    def doi_url(self) -> str | None:
        return doi_url(self.paper.doi)

    @property
    def pmcid(self) -> str | None:
        return normal_pmcid(self.paper.pmcid)

    @property
    def pmc_url(self) -> str | None:
        return pmc_url(self.paper.pmcid)

    @property
    def published_year(self) -> int | None:
        return published_year(self.paper)

    @property
    def book_line(self) -> str | None:
        """Where a book record sits: "Chapter 4 in Critical Care Handbook, 2nd edition, edited by Holloway M;
        Oxford University Press, Oxford", or "Book, edited by …" for a whole book; None for an article."""
        paper = self.paper
        if paper.kind != "book":
            return None
        if paper.chapter:
            where = f"{paper.location_label} in" if paper.location_label else "In"
            line = f"{where} {paper.book_title}" if paper.book_title else (paper.location_label or "Part of a book")
        else:
            line = "Book"
        if paper.edition:
            line += f", {paper.edition}"
        editors = [name for name in (plain(editor.display) for editor in paper.editors) if name]
        if editors:
            line += ", edited by " + (", ".join(editors[:AUTHORS_SHOWN]) + (", et al." if len(editors) > AUTHORS_SHOWN
                                                                             else ""))
        published = ", ".join(part for part in (paper.publisher, paper.publisher_location) if part)
        return f"{line}; {published}" if published else line

    @property
    def bookshelf_url(self) -> str | None:
        return self.paper.bookshelf_url

    @property
    def late_mark(self) -> str | None:
        if not self.late_arrival:
            return None
        year = self.published_year
        return f"newly indexed, published {year}" if year else "newly indexed"


@dataclass(frozen=True)
class Baseline:
    """The papers a topic's backfill stored, summed up: how many, since when, and the strongest few."""

    papers: int
    since: date | None  # the topic's `since` (None: from the first record PubMed has)
    entries: tuple  # the strongest of them (DigestEntry), strongest tier first, at most `max_per_digest`
    tiers: tuple
    pmids: tuple[int, ...] = ()  # all `papers` of them


@dataclass(frozen=True)
class ScreeningLine:
    """Where the topic's screening stands, for the digest's header (tracker/review/screening.py)."""

    to_screen: int  # the period's new papers nobody has decided yet (dual screening: not both reviewers yet)
    included: int  # the topic's papers included so far, all periods
    left_out: int  # the period's new papers already excluded, which the digest leaves out


@dataclass(frozen=True)
class OutsideQuery:
    """The topic's pending suggestions beyond its query: how many, how many of them are new in the period, and the
    most relevant few (the new ones first)."""

    total: int
    shown: tuple[SuggestionView, ...]
    new: int = 0
    new_pmids: frozenset[int] = frozenset()


class Tier(NamedTuple):
    key: str
    label: str
    entries: tuple[DigestEntry, ...]


@dataclass(frozen=True)
class TopicDigest:
    topic: Topic
    period_start: datetime | None
    period_end: datetime
    last_run: RunInfo | None
    total_new: int
    late_arrivals: int
    tiers: tuple[Tier, ...]
    entries: tuple[DigestEntry, ...]  # the shown ones, in tier order
    max_items: int | None = None
    full_report: str | None = None  # where all papers are, named when the list is capped
    updates: tuple[EventView, ...] = ()  # status events of the topic's papers detected in the period
    health: tuple[HealthFlag, ...] = ()
    screening: ScreeningLine | None = None
    baseline: Baseline | None = None  # the papers of the period that a backfill stored, summed up
    new_pmids: tuple[int, ...] = ()  # all `total_new` papers, shown or not, in tier order
    # How the order was made, once the topic has screening decisions: "ordered by 48 earlier decisions in this
    # topic" or "ranking starts after 2 more decisions" (tracker/review/relevance.py).
    ranking: str | None = None
    outside: OutsideQuery | None = None  # pending suggestions beyond the query (none: no section)

    @property
    def shown(self) -> int:
        return len(self.entries)

    @property
    def hidden(self) -> int:
        return self.total_new - self.shown

    @property
    def run_failed(self) -> bool:
        return self.last_run is not None and self.last_run.status == "failed"

    @property
    def baseline_tiers(self) -> tuple[Tier, ...]:
        """The tiers of the baseline's strongest papers (keys "baseline-<tier>"), listed after the new papers."""
        return self.baseline.tiers if self.baseline else ()


# -- building ---------------------------------------------------------------------------------

def build_topic_digest(store: Store, topic: Topic, *, since: datetime | date | None = None,
                       until: datetime | date | None = None, pmids: Sequence[int] | None = None,
                       max_items: int | None = None, full_report: str | None = None,
                       quiet_weeks: int = DEFAULT_QUIET_WEEKS, baseline: bool | None = None,
                       suggested_since: datetime | date | None = None) -> TopicDigest:
    """The digest of `topic` for papers first seen in [since, until).

    `until` defaults to now. `since` defaults to the end of the last digest (see the module docstring),
    except with `pmids`: then only those papers count, however long ago the topic saw them, and the digest
    carries no updates (the e-mail gathers them once for all of a reader's topics).
    A date means midnight UTC at its start. With `baseline` (the default when `since` is not given), the papers
    a backfill brought are summed up as the topic's baseline, not listed as new (see the module docstring);
    without it, as for a period asked for with `tracker digest --since`, every paper is listed.
    `suggested_since` (default: the period's start) is when a suggestion beyond the query counts as new.
    """
    if baseline is None:
        baseline = since is None
    if max_items is not None and max_items < 1:
        raise ConfigError(f"max_items must be at least 1, not {max_items}: leave it out to show every paper")
    until = as_utc(until) if until is not None else utcnow()
    if since is None and pmids is None:
        since = default_since(store, topic.slug, until)
    since = as_utc(since) if since is not None else None
    seen = topic_papers_since(store, topic.slug, since, until, pmids)
    screening, excluded = screening_line(store, topic, [pmid for pmid, _ in seen])
    seen = [(pmid, first_seen) for pmid, first_seen in seen if pmid not in excluded]
    papers = load_digest_papers(store, [pmid for pmid, _ in seen])
    facts = stored_facts(store, list(papers))
    others = other_topics_for(store, list(papers), exclude=topic.slug)
    statuses = paper_statuses(store, list(papers))
    ranked = ranking_status(store, topic)
    scores = scores_of(store, [topic.slug], list(papers)) if ranked.ranked else {}
    entries = sorted(
        (make_entry(papers[pmid], first_seen, others.get(pmid, ()), statuses.get(pmid), relevance=scores.get(pmid),
                    likely_from=ranked.likely_from, stored=facts.get(pmid))
         for pmid, first_seen in seen if pmid in papers),
        key=entry_order,
    )
    summed_up = None
    if baseline:
        backfilled = baseline_pmids(store, topic.slug, [entry.paper.pmid for entry in entries])
        if backfilled:
            strongest = tuple(entry for entry in entries if entry.paper.pmid in backfilled)[:max_items or BASELINE_SHOWN]
            summed_up = Baseline(papers=len(backfilled), since=topic.since, entries=strongest,
                                 tiers=tuple(tier._replace(key=f"baseline-{tier.key}")
                                             for tier in group_by_tier(strongest)), pmids=tuple(sorted(backfilled)))
            entries = [entry for entry in entries if entry.paper.pmid not in backfilled]
    shown = tuple(entries[:max_items] if max_items else entries)
    run = latest_run(store, topic.slug)
    return TopicDigest(
        topic=topic,
        period_start=since if since is not None else (seen[0][1] if seen else None),
        period_end=until,
        last_run=RunInfo(run.status, run.started_at, run.finished_at, run.error) if run else None,
        total_new=len(entries),
        late_arrivals=sum(entry.late_arrival for entry in entries),
        tiers=group_by_tier(shown),
        entries=shown,
        max_items=max_items,
        full_report=full_report,
        updates=with_included_first(store, [topic], list_events(store, since=since, until=until, topics=[topic.slug]))
        if pmids is None else (),
        health=tuple(topic_health(store, [topic.slug], now=until, quiet_weeks=quiet_weeks)[topic.slug]),
        screening=screening,
        baseline=summed_up,
        new_pmids=tuple(entry.paper.pmid for entry in entries),
        ranking=ranked.sentence if ranked.ranked or ranked.decisions else None,
        outside=outside_query(store, topic, since=as_utc(suggested_since) if suggested_since is not None else since),
    )


def outside_query(store: Store, topic: Topic, *, since: datetime | None = None,
                  shown: int = TOP_SHOWN) -> OutsideQuery | None:
    """The topic's pending suggestions for the digest's last section, those first found at `since` or later (new)
    first; None when it has none. Only the papers shown are read."""
    pending = ranked(load_suggestions(store, topic.slug))
    if not pending:
        return None
    new = frozenset(item.pmid for item in pending if since is not None and item.first_found_at is not None
                    and as_utc(item.first_found_at) >= since)
    first = [item.pmid for item in sorted(pending, key=lambda item: item.pmid not in new)[:shown]]  # stable
    views = {view.pmid: view for view in list_suggestions(store, topic, pmids=first).items}
    return OutsideQuery(len(pending), tuple(views[pmid] for pmid in first if pmid in views), len(new), new)


def screening_line(store: Store, topic: Topic, pmids: Sequence[int]) -> tuple[ScreeningLine, set[int]]:
    """The header's screening figures for the period's papers `pmids`, and those of them already excluded."""
    rows, rule = summaries(store, topic.slug, pmids), rule_for(store, topic)
    states = {pmid: rule.state(rows.get(pmid)) for pmid in pmids}
    excluded = {pmid for pmid, state in states.items() if state == State.EXCLUDED}
    return ScreeningLine(
        to_screen=sum(state in OPEN for state in states.values()),
        included=count_states(store, topic)[State.INCLUDED],
        left_out=len(excluded),
    ), excluded


def default_since(store: Store, slug: str, until: datetime) -> datetime:
    """Where the topic's last digest before `until`'s day ended, or 7 days before `until`."""
    day_start = datetime.combine(last_day(until), time.min, timezone.utc)
    record = last_digest(store, slug, ended_by=day_start)
    return as_utc(record.period_end) if record else until - DEFAULT_PERIOD


def make_entry(paper: Paper, first_seen_at: datetime, other_topics: Sequence[str] = (),
               status: str | None = None, *, relevance: float | None = None,
               likely_from: float | None = None, stored: StoredFacts | None = None) -> DigestEntry:
    """The digest's entry for a paper; its tier is the stored tier on arrival (`stored`), else its publication
    types'."""
    return DigestEntry(
        paper=paper,
        tier=stored.tier if stored is not None else classify(paper.publication_types),
        first_seen_at=as_utc(first_seen_at),
        other_topics=tuple(other_topics),
        excerpt=abstract_excerpt(paper.abstract_sections),
        late_arrival=paper.late_arrival,
        authors_short=shorten_authors(paper),
        status=status,
        trials=trial_ids(paper),
        relevance=relevance,
        likely_relevant=relevance is not None and likely_from is not None and relevance >= likely_from,
        facts=stored.facts if stored is not None else None,
        tier_from_abstract=stored is not None and stored.tier_from_abstract,
    )


def entry_order(entry: DigestEntry) -> tuple:
    """Strongest tier first; within a tier the most relevant (once the topic ranks; unscored papers after the
    scored ones), then the newest publication date, then the lower PMID."""
    published = entry.paper.pub_date
    return (TIER_INDEX[entry.tier], entry.relevance is None, -(entry.relevance or 0.0), published is None,
            -(published.toordinal() if published else 0), entry.paper.pmid)


def group_by_tier(entries: Sequence[DigestEntry]) -> tuple[Tier, ...]:
    """Non-empty tiers in TIER_RULES order, each keeping the entries' order."""
    return tuple(
        Tier(rule.key, rule.label, members)
        for rule in TIER_RULES
        if (members := tuple(entry for entry in entries if entry.tier == rule.key))
    )


def shorten_authors(paper: Paper) -> str:
    names: list[str] = []
    for author in paper.authors:
        if name := plain(author.display):
            names.append(name)
            if len(names) > AUTHORS_SHOWN:
                break
    if len(names) > AUTHORS_SHOWN:
        return ", ".join(names[:AUTHORS_SHOWN]) + ", et al."
    return ", ".join(names)


def published_year(paper: Paper) -> int | None:
    if paper.pub_date is not None:
        return paper.pub_date.year
    found = re.search(r"\b(\d{4})\b", paper.pub_date_text or "")
    return int(found.group(1)) if found else None


_CONCLUSION_NAMES = {"CONCLUSION", "CONCLUSIONS", "INTERPRETATION"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def abstract_excerpt(sections: Sequence[AbstractSection], *, tail: int = EXCERPT_TAIL, limit: int = EXCERPT_LIMIT) -> str:
    """The conclusions of a structured abstract, else its last sentences (about `tail` characters).

    Either way at most `limit` characters, cut at a word with "…".
    """
    conclusions = [section.text for section in sections if _is_conclusion(section)]
    if conclusions:
        text = plain(" ".join(conclusions))
    else:
        text = last_sentences(plain(" ".join(section.text for section in sections)), tail)
    return cut_at_word(text, limit)


def _is_conclusion(section: AbstractSection) -> bool:
    label = re.sub(r"[^A-Z ]", "", (section.label or "").upper()).strip()
    category = (section.category or "").strip().upper()
    # Labels such as "CONCLUSIONS AND RELEVANCE" (JAMA) or "INTERPRETATION" (Lancet) say the same thing.
    return category in _CONCLUSION_NAMES or label in _CONCLUSION_NAMES or label.startswith("CONCLUSION")


def last_sentences(text: str, tail: int) -> str:
    """The trailing whole sentences of `text` that fit in `tail` characters (at least one)."""
    sentences = [s for s in _SENTENCE_END.split(text) if s]
    chosen: list[str] = []
    length = 0
    for sentence in reversed(sentences):
        if chosen and length + len(sentence) + 1 > tail:
            break
        chosen.insert(0, sentence)
        length += len(sentence) + 1
    return " ".join(chosen)


# -- phrases shared by every format -----------------------------------------------------------

def last_day(end: datetime) -> date:
    """The last day a half-open period ending at `end` covers."""
    end = as_utc(end)
    return (end - timedelta(microseconds=1)).date() if end.time() == time.min else end.date()


def describe_run(digest: TopicDigest) -> str:
    run, slug = digest.last_run, digest.topic.slug
    if run is None:
        return f"never run: run 'tracker run {slug}' to fetch it"
    if run.status == "running":
        return f"still running (started {moment(run.started_at)})"
    if run.status == "failed":
        return (f"FAILED at {moment(run.finished_at or run.started_at)}: {run.error or 'no error recorded'} "
                f"(this digest may be incomplete: run 'tracker run {slug}' to retry)")
    return f"succeeded, finished {moment(run.finished_at)}"


def describe_shown(digest: TopicDigest) -> str:
    return f"{digest.total_new} new, {digest.shown} shown"


def describe_hidden(digest: TopicDigest) -> str:
    """Where the papers a capped list leaves out are; empty when nothing is left out."""
    if not digest.hidden:
        return ""
    where = digest.full_report or f"the full report (run 'tracker digest {digest.topic.slug}')"
    return f"strongest evidence first; all {digest.total_new} are in {where}"


def describe_late(digest: TopicDigest) -> str:
    return f"{plural(digest.late_arrivals, 'late arrival')} (older papers newly indexed in PubMed)"


def describe_period(digest: TopicDigest) -> str:
    end = last_day(digest.period_end).isoformat()
    if digest.period_start is None:
        return f"Papers first seen up to {end}"
    return f"Papers first seen {as_utc(digest.period_start).date().isoformat()} – {end}"


def describe_empty(digest: TopicDigest) -> str:
    run, slug = digest.last_run, digest.topic.slug
    if run is None:
        return f"No new papers: this topic was never run; run 'tracker run {slug}' to fetch it."
    if run.status == "running":
        return f"No new papers yet: a run started at {moment(run.started_at)} is still going."
    if run.status == "failed":
        return (f"No new papers in this period, but the last run failed at {moment(run.finished_at or run.started_at)} "
                f"({run.error or 'no error recorded'}): run 'tracker run {slug}' to retry.")
    return f"No new papers in this period: the query ran at {moment(run.finished_at)} and found nothing new."


# The names the digest and mail templates call the phrases by.
def describe_screening(digest: TopicDigest) -> str:
    """"12 new to screen; 4 included so far" (and how many already-excluded papers the digest leaves out)."""
    line = digest.screening
    if line is None:
        return ""
    text = f"{line.to_screen:,} new to screen; {line.included:,} included so far"
    if line.left_out:
        text += f"; {line.left_out:,} already excluded {'is' if line.left_out == 1 else 'are'} left out"
    return text


def describe_baseline(digest: TopicDigest) -> str:
    """"Baseline: 5,175 papers matched since 2010 are now stored; from now on you get what is new"."""
    base = digest.baseline
    if base is None:
        return ""
    matched = f"matched since {base.since.year}" if base.since else "matched in PubMed"
    return (f"Baseline: {base.papers:,} paper{'' if base.papers == 1 else 's'} {matched} "
            f"{'is' if base.papers == 1 else 'are'} now stored; from now on you get what is new")


def describe_baseline_shown(digest: TopicDigest) -> str:
    base = digest.baseline
    if base is None:
        return ""
    every = f"all {base.papers:,}" if base.papers > 1 else "it"
    return (f"The strongest {len(base.entries)} by evidence tier; {every} in 'tracker export {digest.topic.slug}'"
            if len(base.entries) < base.papers else f"{every.capitalize()} in 'tracker export {digest.topic.slug}' too")


def describe_outside(digest: TopicDigest) -> str:
    """"Outside your query: 7 suggestions"."""
    if digest.outside is None:
        return ""
    new = f", {digest.outside.new:,} of them new" if digest.outside.new else ""
    return f"Outside your query: {plural(digest.outside.total, 'suggestion')}{new}"


def describe_outside_rest(digest: TopicDigest) -> str:
    """Where every suggestion is, and what they are."""
    if digest.outside is None:
        return ""
    slug = digest.topic.slug
    every = "it" if digest.outside.total == 1 else f"all {digest.outside.total:,}"
    order = ("" if len(digest.outside.shown) == digest.outside.total else
             ", the new ones first" if digest.outside.new else ", most relevant first")
    lead = f"Papers PubMed links to your included papers that the query does not find{order}. "
    return f"{lead}Add or dismiss {every} with 'tracker suggest {slug}' or on the web app's Suggestions page"


def describe_suggestion(view: SuggestionView, outside: OutsideQuery | None = None) -> str:
    """"new · Smith JA · 2019 · similar to 3 of your included papers; cites Jones 2018"."""
    new = "new" if outside is not None and view.pmid in outside.new_pmids else ""
    return " · ".join(str(part) for part in (new, view.first_author, view.year, view.reason) if part)


PHRASES = dict(describe_baseline=describe_baseline, describe_baseline_shown=describe_baseline_shown,
               describe_run=describe_run, describe_shown=describe_shown, describe_hidden=describe_hidden,
               describe_late=describe_late, describe_period=describe_period, describe_empty=describe_empty,
               describe_screening=describe_screening, describe_outside=describe_outside,
               describe_outside_rest=describe_outside_rest, describe_suggestion=describe_suggestion)


# -- rendering --------------------------------------------------------------------------------

def render_markdown(digests: TopicDigest | Sequence[TopicDigest]) -> str:
    """Markdown for one digest (or several, one after another); no record text can form a link or HTML."""
    return render("digest.md.j2", digests=_as_list(digests), **PHRASES)


def render_text(digests: TopicDigest | Sequence[TopicDigest]) -> str:
    """Plain text for terminals and e-mail bodies."""
    return render("digest.txt.j2", digests=_as_list(digests), **PHRASES)


def render_html(digests: Sequence[TopicDigest] | TopicDigest, *, chart_pngs: dict[str, bytes] | None = None) -> str:
    """One self-contained HTML page (inline CSS, charts as data: URIs) for the digests."""
    digests = _as_list(digests)
    charts = {slug: "data:image/png;base64," + base64.b64encode(png).decode("ascii")
              for slug, png in (chart_pngs or {}).items()}
    days = sorted({last_day(d.period_end) for d in digests})
    title = (f"{digests[0].topic.title} — digest {days[-1]}" if len(digests) == 1
             else f"Literature digest — {days[-1]}" if days else "Literature digest")
    return render("digest.html.j2", digests=digests, charts=charts, page_title=title, single=len(digests) == 1,
                  **PHRASES)


def render_digests(store: Store, digests: Sequence[TopicDigest], fmt: str) -> str:
    """The digests in `fmt` (md, html or text); HTML gets each topic's chart."""
    if fmt == "md":
        return render_markdown(digests)
    if fmt == "text":
        return render_text(digests)
    if fmt == "html":
        from tracker.outputs.charts import chart_png  # matplotlib takes a second to import: only when a chart is drawn

        return render_html(digests, chart_pngs={d.topic.slug: chart_png(store, d.topic.slug, end=d.period_end)
                                                for d in digests})
    raise ConfigError(f"unknown digest format {fmt!r}: use one of {', '.join(FORMATS)}")


def _as_list(digests) -> list[TopicDigest]:
    return [digests] if isinstance(digests, TopicDigest) else list(digests)


# -- writing ----------------------------------------------------------------------------------

def report_day_end(today: date | None) -> tuple[date, datetime]:
    """The report day (UTC) and the end of its period: now, or midnight after `today` if that is earlier."""
    now = utcnow()
    today = today or now.date()
    return today, min(now, datetime.combine(today + timedelta(days=1), time.min, timezone.utc))


def write_topic_digests(store: Store, topics: Sequence[Topic], reports_dir: Path, *,
                        today: date | None = None, since: datetime | date | None = None,
                        quiet_weeks: int = DEFAULT_QUIET_WEEKS) -> list[Path]:
    """Write reports/<slug>/<YYYY-MM-DD>.md and .html for each topic and record each digest (tracker/outputs/reports.py
    adds the topic's feed beside them).

    `today` (UTC) names the files and ends the period; `since` overrides the default start.
    Returns the paths written, two per topic. A same-day re-run overwrites that day's files.
    """
    from tracker.outputs.charts import chart_png

    today, until = report_day_end(today)
    written: list[Path] = []
    for topic in topics:
        digest = build_topic_digest(store, topic, since=since, until=until, quiet_weeks=quiet_weeks)
        folder = Path(reports_dir) / topic.slug
        markdown_path, html_path = folder / f"{today.isoformat()}.md", folder / f"{today.isoformat()}.html"
        advice = files.home_advice(Path(reports_dir))
        files.write_output(markdown_path, render_markdown(digest), advice=advice, make_parents=True)
        png = chart_png(store, topic.slug, end=until)
        files.write_output(html_path, render_html([digest], chart_pngs={topic.slug: png}), advice=advice,
                           make_parents=True)
        save_digest_record(store, topic.slug, period_start=digest.period_start, period_end=digest.period_end,
                           papers=digest.total_new, path=str(html_path))
        written += [markdown_path, html_path]
    return written


def render_topic_digests(store: Store, topics: Sequence[Topic], fmt: str, *,
                         since: datetime | date | None = None, quiet_weeks: int = DEFAULT_QUIET_WEEKS) -> str:
    """The topics' digests in one document, recording nothing: a peek that leaves the next period alone."""
    until = utcnow()
    return render_digests(store, [build_topic_digest(store, topic, since=since, until=until, quiet_weeks=quiet_weeks)
                                  for topic in topics], fmt)


def write_digest_file(store: Store, topics: Sequence[Topic], path: Path, *, fmt: str | None = None,
                      since: datetime | date | None = None,
                      quiet_weeks: int = DEFAULT_QUIET_WEEKS) -> list[TopicDigest]:
    """Write every topic's digest into one file at `path` (atomically) and record each digest."""
    path = Path(path)
    fmt = fmt or format_for_path(path)
    until = utcnow()
    digests = [build_topic_digest(store, topic, since=since, until=until, quiet_weeks=quiet_weeks)
               for topic in topics]
    files.write_output(path, render_digests(store, digests, fmt), advice=files.OUTPUT_FILE_ADVICE)
    for digest in digests:
        save_digest_record(store, digest.topic.slug, period_start=digest.period_start, period_end=digest.period_end,
                           papers=digest.total_new, path=str(path.resolve()))
    return digests


def format_for_path(path: Path) -> str:
    fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot tell the format of {path.name} from its extension: "
                          "pass --format md, html or text, or name the file .md, .html or .txt")
    return fmt


__all__ = [
    "TIER_RULES", "RunInfo", "DigestEntry", "Tier", "TopicDigest", "OutsideQuery", "outside_query", "build_topic_digest",
    "default_since",
    "classify", "abstract_excerpt", "PHRASES", "render_markdown", "render_html", "render_text", "render_digests",
    "write_topic_digests", "render_topic_digests", "write_digest_file",
]
