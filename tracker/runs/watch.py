"""Watching what was delivered: status changes of stored papers, and the health of each topic's query.

Status changes
    Every topic run, after its create-date search, asks PubMed which records of the topic's query were
    modified [mdat] since the last check (from the day the last check reached, minus the overlap days,
    to tomorrow), with the run's own client and rate limit. Of the PMIDs listed, only papers the store
    already holds are fetched again: new ones are the create-date search's job, and papers this run has
    just stored are skipped.

    Only what may have changed since it was fetched is fetched again. A record's modification date [mdat] is
    a day, and a paper the tracker fetched (stored or refreshed) during the window is listed for changes its
    copy already holds. A stored copy is taken to hold every change dated before the day it was fetched (US
    Eastern, PubMed's day, which is never later than the UTC day, whichever PubMed uses; efetch answers with
    the record as it is), not those of that day itself (before or after the fetch? unknown). So a listed paper
    fetched on day F inside the window is fetched again only when the search of [F, end] lists it too. That
    costs one esearch per such day among the listed papers (a weekly run: usually one, the previous run's).
    A paper fetched before the window keeps the whole overlap: listed is enough, so a change PubMed indexed
    late is still caught.

    Each refetched record replaces the stored one (fields, XML, full-text entry, status). The notices it
    carries that the stored record did not (tracker/ncbi/notices.py: retraction, expression of concern, erratum,
    update, republication) become status events, dated when they were detected; the stored record they
    replaced is kept in `paper_revision`. A listed PMID that efetch does not return, even when asked twice,
    is marked deleted (an event "deleted"; when efetch returned exactly one other PMID in its place, that
    one is named as the record it was merged into). PubMed usually drops a deleted record from its search
    index too, so a deletion is seen only while the modification search still lists the PMID.

    The first run of a topic only sets where the next check starts: everything it stored is fresh. The
    check's watermark (`change_check`) moves when the check has finished; a check that fails fails the
    topic run, and the next run looks at the same days again (events are recorded once per paper, kind
    and notice). PubMed's yearly MeSH reload modifies most records, so one run a year refetches most
    stored papers, in efetch batches.

Query health
    Every topic run also asks PubMed for the query's total Count (esearch with retmax=0, no date clause):
    incremental windows differ in size, so only the total compares fairly from run to run. The run keeps
    that search's QueryTranslation, its ErrorList (`run.errors`) and its WarningList (`run.warnings`).
    A topic is flagged when PubMed could not find a term (PhraseNotFound, FieldNotFound,
    QuotedPhraseNotFound, PhraseIgnored), when the query matches nothing, when the total Count fell by more
    than half (compared with the highest Count measured in the week before the latest run, and at least
    with the previous run: a drop on Tuesday is still flagged in Monday's e-mail), and when no paper was
    new to it for longer than TRACKER_QUIET_WEEKS weeks (default 8).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tracker.ncbi.eutils import EutilsClient, SearchResult
from tracker.ncbi.notices import new_notices
from tracker.runs.ingest import Batch, fetch_each_batch
from tracker.runs.ledger import NO_HOOKS, RunHooks, RunLedger
from tracker.store import Store
from tracker.store.changes import (
    checked_through,
    first_success,
    last_fetched,
    last_new_paper,
    mark_deleted,
    measured_runs,
    save_checked_through,
    save_refreshed,
    stored_notice_fields,
)
from tracker.store.models import Run, StatusEvent
from tracker.topics import Topic

log = logging.getLogger("tracker.watch")

DEFAULT_QUIET_WEEKS = 8
# How long a fall of the Count stays flagged: a week, so that the weekly e-mail shows it.
DROP_MEMORY = timedelta(days=7)
try:
    _PUBMED_ZONE: tzinfo = ZoneInfo("America/New_York")  # PubMed's dates are US Eastern
except ZoneInfoNotFoundError:  # no time zone data: Eastern standard time, a day never later than Eastern's
    _PUBMED_ZONE = timezone(timedelta(hours=-5))
# PubMed's ErrorList and WarningList entries that mean part of the query was not understood.
NOT_FOUND_TAGS = ("PhraseNotFound", "FieldNotFound", "QuotedPhraseNotFound", "PhraseIgnored")


# -- status changes --------------------------------------------------------------------------

@dataclass
class WatchResult:
    total: SearchResult
    window: tuple[date, date] | None = None  # the [mdat] days searched; None on a topic's first check
    modified: int = 0  # PMIDs the modification search listed
    refetched: int = 0  # stored papers fetched again
    events: list[StatusEvent] = field(default_factory=list)


def watch_topic(store: Store, client: EutilsClient, topic: Topic, *, ledger: RunLedger, today: date,
                fresh: Collection[int] = (), hooks: RunHooks = NO_HOOKS) -> WatchResult:
    """Measure the query's total Count, then refresh the stored papers PubMed modified; tells `ledger` both.

    `fresh` are the PMIDs this run has just stored; `hooks` are called after each saved batch.
    """
    total = measure_query(client, topic.query)
    ledger.measured(total.count, translation=total.query_translation, errors=total.errors, warnings=total.warnings)
    result = WatchResult(total=total)
    end = today + timedelta(days=1)  # as the create-date window: PubMed's dates are US Eastern
    checked = checked_through(store, topic.slug)
    if checked is None:
        save_checked_through(store, topic.slug, end, ledger.run_id)
        return result
    start = checked - timedelta(days=client.settings.overlap_days)
    modified = client.fetch_pmids(topic.query, start, end, field_tag="mdat")
    skip = set(fresh)
    unseen = changes_unseen_from(store, [pmid for pmid in modified.pmids if pmid not in skip])
    changed = changed_since_fetched(client, topic.query, unseen, start, end)
    result.window, result.modified = (start, end), len(modified.pmids)
    result.refetched, result.events = refresh_papers(store, client, [p for p in modified.pmids if p in changed],
                                                     run_id=ledger.run_id, hooks=hooks)
    ledger.refetched(result.refetched)
    save_checked_through(store, topic.slug, max(end, checked), ledger.run_id)
    for event in result.events:
        log.info("%s: PMID %d: %s", topic.slug, event.pmid, event.detail)
    return result


def changes_unseen_from(store: Store, pmids: Sequence[int]) -> dict[int, date]:
    """For each stored paper among `pmids`, the first modification date its stored copy may lack: the day (US
    Eastern) it was last fetched on (see the module docstring). Papers the store lacks are absent."""
    return {pmid: _pubmed_day(moment) for pmid, moment in last_fetched(store, pmids).items()}


def changed_since_fetched(client: EutilsClient, query: str, unseen: dict[int, date], start: date,
                          end: date) -> set[int]:
    """Of the stored papers PubMed listed as modified in [start, end] (`unseen`: from `changes_unseen_from`), those
    it may have modified since their copy: any whose unseen day is not after `start`, and the others when the
    search of [unseen day, end] lists them too. One unseen after `end` (a clock that disagrees with the run's day)
    is taken as changed."""
    changed = {pmid for pmid, day in unseen.items() if not start < day <= end}
    for day in sorted({day for day in unseen.values() if start < day <= end}):
        later = set(client.fetch_pmids(query, day, end, field_tag="mdat").pmids)
        changed.update(pmid for pmid, first in unseen.items() if first == day and pmid in later)
    return changed


def _pubmed_day(moment: datetime) -> date:
    return _utc(moment).astimezone(_PUBMED_ZONE).date()


def measure_query(client: EutilsClient, query: str) -> SearchResult:
    """PubMed's Count, translation, errors and warnings for `query` as written: one esearch, no ids."""
    return client.search(query, retmax=0)


def refresh_papers(store: Store, client: EutilsClient, pmids: Sequence[int], *, run_id: int | None,
                   hooks: RunHooks = NO_HOOKS) -> tuple[int, list[StatusEvent]]:
    """Fetch stored papers again, replace them and record what changed; returns (refetched, events)."""
    asked = set(pmids)
    events: list[StatusEvent] = []
    returned: set[int] = set()
    strangers: set[int] = set()  # records efetch returned under a PMID it was not asked for

    def save(batch: Batch) -> None:
        papers = batch.papers
        before = stored_notice_fields(store, [paper.pmid for paper in papers if paper.pmid in asked])
        wanted = {paper.pmid: paper for paper in papers if paper.pmid in before}
        strangers.update(paper.pmid for paper in papers if paper.pmid not in asked)
        events.extend(save_refreshed(store, [(paper, new_notices(before[pmid], paper)) for pmid, paper in wanted.items()],
                                     run_id=run_id, facts=batch.facts))
        returned.update(wanted)

    pending = fetch_each_batch(client, pmids, save, hooks=hooks)
    if pending:
        replacement = next(iter(strangers)) if len(pending) == 1 and len(strangers) == 1 else None
        removals = {pmid: (replacement, describe_removal(pmid, replacement)) for pmid in pending}
        events += mark_deleted(store, removals, run_id=run_id)
    return len(returned), events


def describe_removal(pmid: int, replacement: int | None) -> str:
    if replacement is not None:
        return f"PubMed returns PMID {replacement} in place of PMID {pmid} (merged)"
    return f"PubMed no longer returns PMID {pmid} (deleted, or merged into another record)"


# -- query health ----------------------------------------------------------------------------

@dataclass(frozen=True)
class HealthFlag:
    kind: str  # not-found, no-match, count-drop, quiet
    message: str  # for whoever runs the tracker: what was found and the command or setting to look at
    reader: str = ""  # the same finding for readers of the e-mail, who run no command

    def __str__(self) -> str:
        return self.message

    @property
    def for_readers(self) -> str:
        return self.reader or self.message


def topic_health(store: Store, slugs: Sequence[str], *, now: datetime | None = None,
                 quiet_weeks: int = DEFAULT_QUIET_WEEKS) -> dict[str, list[HealthFlag]]:
    """Every topic's health flags (an empty list for a healthy topic)."""
    now = _utc(now or datetime.now(timezone.utc))
    runs, last_new, first = measured_runs(store, slugs), last_new_paper(store, slugs), first_success(store, slugs)
    return {slug: assess_health(slug, runs.get(slug, []), last_new=last_new.get(slug), first_success=first.get(slug),
                                now=now, quiet_weeks=quiet_weeks)
            for slug in slugs}


def assess_health(slug: str, runs: Sequence[Run], *, last_new: datetime | None, first_success: datetime | None,
                  now: datetime, quiet_weeks: int = DEFAULT_QUIET_WEEKS) -> list[HealthFlag]:
    """The flags for one topic from its measured runs (newest first) and when it last saw a new paper."""
    flags: list[HealthFlag] = []
    check = f"check the query with 'tracker topics --check {slug}'"
    if runs:
        latest = runs[0]
        missing = unknown_terms([*latest.errors, *latest.warnings])
        look = "the query may need a look"
        if missing:
            found = f"PubMed could not find {', '.join(missing)}"
            flags.append(HealthFlag("not-found", f"{found}: {check}", f"{found}: {look}"))
        if latest.total_count == 0:
            found = "the query matches no PubMed record (Count 0)"
            flags.append(HealthFlag("no-match", f"{found}: {check}", f"{found}: {look}"))
        elif len(runs) > 1:
            recent = [run for run in runs[1:] if _utc(run.started_at) >= _utc(latest.started_at) - DROP_MEMORY]
            peak = max(recent or runs[1:2], key=lambda run: run.total_count or 0)
            if peak.total_count and latest.total_count is not None and 2 * latest.total_count < peak.total_count:
                found = (f"PubMed's Count fell by more than half, from {peak.total_count} on "
                         f"{_utc(peak.started_at):%Y-%m-%d} to {latest.total_count}")
                flags.append(HealthFlag("count-drop", f"{found}: {check}", f"{found}: {look}"))
    quiet_since = last_new or first_success
    if quiet_since is not None:
        quiet_since = _utc(quiet_since)
        if now - quiet_since > timedelta(weeks=quiet_weeks):
            weeks = (now - quiet_since).days // 7
            flags.append(HealthFlag("quiet", f"no new paper for {weeks} weeks (last {quiet_since:%Y-%m-%d}; "
                                             f"TRACKER_QUIET_WEEKS is {quiet_weeks})",
                                    f"no new paper for {weeks} weeks (the last on {quiet_since:%Y-%m-%d})"))
    return flags


def unknown_terms(messages: Sequence[str]) -> list[str]:
    """'"term" (PhraseNotFound)' for every entry of PubMed's lists that names a term it did not understand."""
    found = []
    for message in messages:
        tag, _, term = str(message).partition(": ")
        if tag in NOT_FOUND_TAGS:
            found.append(f'"{term}" ({tag})')
    return list(dict.fromkeys(found))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


# -- checking a query before tracking it -----------------------------------------------------

def describe_check(query: str, result: SearchResult) -> list[str]:
    """How PubMed understood `query`: the lines `tracker topics --check` prints."""
    lines = [f"query:       {' '.join(query.split())}",
             f"translation: {result.query_translation or '(none given)'}",
             f"count:       {result.count}"]
    lines += [f"error:       {message}" for message in result.errors]
    lines += [f"warning:     {message}" for message in result.warnings]
    missing = unknown_terms([*result.errors, *result.warnings])
    if missing:
        lines.append(f"PubMed could not find {', '.join(missing)}: fix the query before tracking it")
    elif result.count == 0:
        lines.append("the query matches no PubMed record: widen it before tracking it")
    return lines


__all__ = [
    "DEFAULT_QUIET_WEEKS", "WatchResult", "watch_topic", "changes_unseen_from", "changed_since_fetched", "measure_query",
    "refresh_papers", "HealthFlag",
    "topic_health", "assess_health", "unknown_terms", "describe_check",
]
