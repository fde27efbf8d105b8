"""Suggestions beyond the query: the papers PubMed links to a topic's included papers (and the `seeds` of its topic
file) that the topic does not hold, found after each run and kept for the reader to add or dismiss.

A saved query misses relevant papers: synonyms nobody thought of, papers not yet indexed with the MeSH term, trials
that name the drug only in the full text. PubMed's similar articles of a few included studies, combined with the
subject search, found all the new evidence of 68 of 77 reviews (Sampson et al. 2008); its citation links find more.

Seeds
    The topic's included papers and its file's seeds, newest and largest first (Sampson et al. 2009 seeded with the
    3 newest and 3 largest included studies): the newest by PubMed's create date (a seed the store lacks by its
    PMID), the largest by the number of participants its abstract states, taken in turn.

What a pass asks (`find_suggestions`)
    - A seed whose links were never asked ("new": just included, or just listed) is asked once without a date
      limit: its SIMILAR_PER_SEED most similar articles (by PubMed's score), the papers citing it and the papers
      it cites (its references), at most CITATIONS_PER_SEED of each, newest first. At most NEW_SEEDS_PER_RUN
      new seeds a pass; the rest wait for the next one.
    - Every other seed (at most SEEDS_PER_RUN) is asked only for similar and citing records that entered PubMed
      in the pass's window: from the day the last pass reached, less the overlap days, to tomorrow, as a run's
      window is (tracker/runs/sync.py). ELink filters dates only with cmd=neighbor, which gives no scores.
    Up to 100 seeds travel in one ELink request (tracker/ncbi/eutils.py LINK_BATCH), so a weekly pass costs an
    ELink request or two and an efetch for the papers the store lacks, and never more than REQUEST_BUDGET:
    candidates past what the budget can fetch are left out (the fewest seeds, the least similar first) and the
    run says so. `tracker suggest SLUG --refresh` asks every seed without a date limit and without a budget.

Chosen by measurement (BENCHMARKS.md, suggest: the Cohen 2006 data, a query matching 60 % of each dataset)
    Every included paper as a seed (not only the 3 newest and 3 largest: those found half the missed inclusions
    in the first 50 suggestions), 20 similar articles a seed (as many missed inclusions as 100, from a third fewer
    suggestions), ordered by the topic's relevance model (ahead of PubMed's summed similarity, of the number of
    seeds linking and of a fusion of model and score). The per-run bounds only bite past 50 new or 300 seeds.

What is kept
    Papers the topic holds, seeds, and suggestions the reader added or dismissed are left out; the rest are
    fetched (stored like any other paper), kept as pending suggestions with the way each was found (similar to,
    cites, cited by) and the seeds that led to it, and scored by the topic's relevance model with its papers
    (tracker/review/relevance.py). They are listed most relevant first.

Failures
    The pass runs after the topic's run succeeded and moved its watermark (`suggest_after_run`): an ELink or
    efetch failure, after the client's retries, is a warning on the run, never a failed run, and the next pass
    asks the same window again (`suggestion_state` moves only when a pass finished).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from tracker.errors import ConfigError, TrackerError, with_context
from tracker.facts import extract_facts
from tracker.ncbi.eutils import CITED_IN, LINK_BATCH, REFERENCES, SIMILAR, EutilsClient, Link, fetch_links
from tracker.ncbi.pubmed import Paper
from tracker.review.relevance import refresh_quietly
from tracker.review.screening import rule_for
from tracker.review.states import State
from tracker.runs.ingest import Batch, fetch_each_batch, store_pmids
from tracker.runs.ledger import NO_HOOKS, RunHooks, RunLedger
from tracker.store import Store
from tracker.store.membership import MANUAL, topic_pmids
from tracker.store.papers import load_papers, save_papers, stored_pmids
from tracker.store.relevance import topic_states
from tracker.store.suggestions import (
    ADDED,
    CITED_BY,
    CITES,
    DISMISSED,
    PENDING,
    STATUSES,
    WAYS,
    Found,
    StoredSuggestion,
    add_by_hand,
    asked_seeds,
    decide_suggestions,
    drop_joined,
    last_dismissed,
    load_suggestions,
    mark_seeds_asked,
    restore_suggestions,
    save_found,
    save_suggestion_state,
    suggestion_state,
)
from tracker.store.suggestions import SIMILAR as SIMILAR_WAY
from tracker.text import plural, pubmed_url
from tracker.topics import Topic

log = logging.getLogger("tracker.suggest")

REQUEST_BUDGET = 10  # requests a run's pass may spend, ELink and efetch together
SEEDS_PER_RUN = 300  # seeds asked for the window's new links (3 ELink requests)
NEW_SEEDS_PER_RUN = 50  # seeds asked once without a date limit (2 ELink requests: scored similar, citations)
SIMILAR_PER_SEED = 20  # a new seed's most similar articles kept
CITATIONS_PER_SEED = 50  # a new seed's citing papers, and its references, kept (newest first)
FIRST_WINDOW_DAYS = 7  # a topic's first pass looks this far back for its seeds' new links
TOP_SHOWN = 3  # suggestions the digest and the e-mail show under "Outside your query"

REFRESH_KIND = "suggest"  # the run a refresh records
WARNING_PREFIX = "suggestions"  # every warning a pass leaves on its run starts so (tracker status shows them)

LINK_WAY = {SIMILAR: SIMILAR_WAY, CITED_IN: CITES, REFERENCES: CITED_BY}


@dataclass
class SuggestPass:
    """What one pass asked, found and kept."""

    seeds: int = 0  # seeds asked, new and windowed
    new_seeds: int = 0  # of them, asked without a date limit
    window: tuple[date, date] | None = None  # the days the windowed seeds were asked for
    candidates: int = 0  # papers the links gave that the topic does not hold (and were neither seeds nor decided)
    new: int = 0  # new pending suggestions
    fetched: int = 0  # papers stored for them
    left_out: int = 0  # candidates left for a later pass to stay within the request budget
    requests: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.seeds:
            return "no included papers or seeds to start from"
        line = (f"{plural(self.new, 'new suggestion')} from {plural(self.seeds, 'seed')} "
                f"({self.new_seeds} asked without a date limit), {plural(self.requests, 'request')}")
        if self.left_out:
            line += f"; {self.left_out} left for the next run"
        return line


# -- seeds --------------------------------------------------------------------------------------------

def stated_participants(text: str) -> int | None:
    """The participants an abstract says the study enrolled or randomised ("120 parturients were randomised"), as the
    study-facts extractor reads them (tracker/facts), or None."""
    return extract_facts(None, text).sample_size


def order_seeds(seeds: Sequence[int], papers: Sequence[Paper]) -> list[int]:
    """`seeds` newest and largest first, in turn: the newest, the largest, the next newest, the next largest, ..."""
    known = {paper.pmid: paper for paper in papers}

    def created(pmid: int) -> tuple:
        paper = known.get(pmid)
        return (paper.create_date or date.min) if paper else date.max, pmid

    def size(pmid: int) -> tuple:
        paper = known.get(pmid)
        return (stated_participants(paper.abstract) or 0) if paper else 0, pmid

    newest = sorted(seeds, key=created, reverse=True)
    largest = sorted(seeds, key=size, reverse=True)
    ordered: dict[int, None] = {}
    for pair in zip(newest, largest, strict=True):
        ordered.update(dict.fromkeys(pair))
    return list(ordered)


def included_pmids(store: Store, topic: Topic) -> list[int]:
    rule = rule_for(store, topic)
    return sorted(pmid for pmid, state in topic_states(store, topic.slug, rule).items() if state == State.INCLUDED)


def choose_seeds(store: Store, topic: Topic) -> list[int]:
    """The topic's included papers and its file's seeds, newest and largest first."""
    seeds = list(dict.fromkeys([*included_pmids(store, topic), *topic.seeds]))
    return order_seeds(seeds, load_papers(store, seeds))


# -- the pass -----------------------------------------------------------------------------------------

def _links(client: EutilsClient, seeds: Sequence[int], linknames: Sequence[str], **options) -> list[Link]:
    return list(fetch_links(client, seeds, linknames, **options)) if seeds else []


def _requests_for(seeds: int, groups: int) -> int:
    return groups * math.ceil(seeds / LINK_BATCH)


def find_suggestions(store: Store, client: EutilsClient, topic: Topic, *, today: date, run_id: int | None = None,
                     refresh: bool = False, hooks: RunHooks = NO_HOOKS,
                     budget: int | None = REQUEST_BUDGET) -> SuggestPass:
    """Ask PubMed for the links of the topic's seeds, fetch the papers they name that the store lacks and keep those
    the topic does not hold as pending suggestions (see the module docstring). Raises what the client raises; the
    suggestions, the seeds asked and the window move only once every request has been answered (papers already
    fetched stay stored, as a run's do)."""
    started = client.request_count
    result = SuggestPass()
    seeds = choose_seeds(store, topic)
    state = suggestion_state(store, topic.slug)
    end = today + timedelta(days=1)
    start = (state.checked_through - timedelta(days=client.settings.overlap_days) if state
             else today - timedelta(days=FIRST_WINDOW_DAYS))
    if not seeds:
        save_suggestion_state(store, topic.slug, checked_through=end, refreshed=refresh)
        return result
    if refresh:
        fresh, windowed = seeds, []
    else:
        asked = asked_seeds(store, topic.slug)
        fresh = [pmid for pmid in seeds if pmid not in asked][:NEW_SEEDS_PER_RUN]
        chosen = set(fresh)
        windowed = [pmid for pmid in seeds if pmid not in chosen][:SEEDS_PER_RUN]
    result.seeds, result.new_seeds = len(fresh) + len(windowed), len(fresh)
    result.window = (start, end) if windowed else None

    links = _links(client, fresh, (SIMILAR,), with_scores=True)
    links = _best_similar(links) + _newest_citations(_links(client, fresh, (CITED_IN, REFERENCES)))
    links += _links(client, windowed, (SIMILAR, CITED_IN), window=(start, end))

    found = _found(links)
    held = topic_pmids(store, topic.slug, list(found))
    decided = {item.pmid for item in load_suggestions(store, topic.slug, statuses=("added", "dismissed"),
                                                       pmids=list(found))}
    excluded = held | decided | set(seeds)
    candidates = sorted((item for pmid, item in found.items() if pmid not in excluded), key=_strength)
    result.candidates = len(candidates)
    stored = stored_pmids(store, [item.pmid for item in candidates])
    lacking = [item.pmid for item in candidates if item.pmid not in stored]
    if budget is not None:
        # One efetch request is kept back for asking again for records efetch left out (tracker/runs/ingest.py).
        spent = client.request_count - started
        room = max(0, budget - spent - 1) * client.settings.efetch_batch
        if len(lacking) > room:
            waiting = set(lacking[room:])
            lacking = lacking[:room]
            candidates = [item for item in candidates if item.pmid not in waiting]
            result.left_out = len(waiting)
            result.warnings.append(
                f"suggestions: {plural(result.left_out, 'weaker candidate')} left out to keep within {budget} requests: "
                f"run 'tracker suggest {topic.slug} --refresh' to ask without a limit")

    def save(batch: Batch) -> None:
        result.fetched += save_papers(store, batch.papers, facts=batch.facts)[0]

    missing = set(fetch_each_batch(client, lacking, save, hooks=hooks))
    kept = [item for item in candidates if item.pmid not in missing]
    result.new = save_found(store, topic.slug, kept, run_id=run_id)
    drop_joined(store, topic.slug)
    mark_seeds_asked(store, topic.slug, fresh)
    save_suggestion_state(store, topic.slug, checked_through=end, refreshed=refresh)
    result.requests = client.request_count - started
    log.info("%s: %s", topic.slug, result.summary())
    return result


def _best_similar(links: Sequence[Link]) -> list[Link]:
    """Each seed's SIMILAR_PER_SEED best-scored similar articles."""
    by_seed: dict[int, list[Link]] = {}
    for link in links:
        by_seed.setdefault(link.source_pmid, []).append(link)
    return [link for found in by_seed.values()
            for link in sorted(found, key=lambda item: -(item.score or 0))[:SIMILAR_PER_SEED]]


def _newest_citations(links: Sequence[Link]) -> list[Link]:
    """Each seed's CITATIONS_PER_SEED newest citing papers and references (a higher PMID entered PubMed later)."""
    by_seed: dict[tuple[int, str], list[Link]] = {}
    for link in links:
        by_seed.setdefault((link.source_pmid, link.linkname), []).append(link)
    return [link for found in by_seed.values()
            for link in sorted(found, key=lambda item: -item.target_pmid)[:CITATIONS_PER_SEED]]


def _found(links: Sequence[Link]) -> dict[int, Found]:
    seeds: dict[int, dict[str, list[int]]] = {}
    similarity: dict[int, int] = {}
    for link in links:
        way = LINK_WAY[link.linkname]
        by_way = seeds.setdefault(link.target_pmid, {})
        if link.source_pmid not in by_way.setdefault(way, []):
            by_way[way].append(link.source_pmid)
        if link.score is not None:
            similarity[link.target_pmid] = similarity.get(link.target_pmid, 0) + link.score
    return {pmid: Found(pmid, {way: tuple(found) for way, found in by_way.items()}, similarity.get(pmid))
            for pmid, by_way in seeds.items()}


def _strength(item: Found) -> tuple:
    """The strongest candidates first: linked from the most seeds, the most similar, the newest."""
    return (-len({pmid for found in item.seeds.values() for pmid in found}), -(item.similarity or 0), -item.pmid)


def refresh_suggestions(store: Store, client: EutilsClient, topic: Topic, *, today: date | None = None) -> SuggestPass:
    """Ask for every seed's links now, without a date limit or a request budget (`tracker suggest --refresh`), as a
    run of kind "suggest", then score the suggestions; a failure is recorded on that run and raised."""
    ledger = RunLedger(store, topic.slug, kind=REFRESH_KIND, query=topic.query)
    try:
        with ledger.recording(client, label=f"suggestions of '{topic.slug}'"):
            found = find_suggestions(store, client, topic, today=today or date.today(), run_id=ledger.run_id,
                                     refresh=True, budget=None)
    except TrackerError as error:
        raise with_context(error, f"suggestions of '{topic.slug}' not refreshed: {error}; the suggestions kept so "
                                  "far are unchanged: try again later") from None
    ledger.succeed()
    refresh_quietly(store, topic)
    return found


# -- after a run ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AfterRun:
    """The pass a run made: its figures, or the warning that says why it did not finish."""

    outcome: SuggestPass | None
    requests: int
    warnings: tuple[str, ...]


def suggest_after_run(store: Store, client: EutilsClient, topic: Topic, *, today: date, run_id: int | None,
                      hooks: RunHooks = NO_HOOKS) -> AfterRun:
    """`find_suggestions` for a run that succeeded: a failure is logged and returned as a warning, never raised (a
    stop request still stops), because the run's papers and watermark are saved whatever the links say."""
    before = client.request_count
    try:
        outcome = find_suggestions(store, client, topic, today=today, run_id=run_id, hooks=hooks)
    except Exception as error:  # noqa: BLE001  (whatever went wrong, the run it follows has succeeded)
        detail = str(error) if str(error) else type(error).__name__
        warning = f"suggestions not updated: {detail}; the next run asks for the same days again"
        log.warning("%s: %s", topic.slug, warning, exc_info=not isinstance(error, TrackerError))
        return AfterRun(None, client.request_count - before, (warning,))
    return AfterRun(outcome, outcome.requests, tuple(outcome.warnings))


# -- the reader's choices ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Added:
    suggested: tuple[int, ...]  # suggestions that joined the topic (source "suggestion")
    by_hand: tuple[int, ...] = ()  # papers that were never suggested, added by PMID (source "manual")
    missing: tuple[int, ...] = ()  # PMIDs PubMed did not return
    requests: int = 0


def _check_suggested(store: Store, topic: Topic, pmids: Sequence[int], allowed: Sequence[str], verb: str) -> None:
    statuses = {item.pmid: item.status for item in load_suggestions(store, topic.slug, statuses=STATUSES, pmids=pmids)}
    held = topic_pmids(store, topic.slug, list(pmids))
    for pmid in pmids:
        status = statuses.get(pmid)
        if status in allowed:
            continue
        if status == ADDED or (status is None and pmid in held):
            raise ConfigError(f"PMID {pmid} is already in topic '{topic.slug}': nothing to {verb}")
        if status == DISMISSED:
            raise ConfigError(f"PMID {pmid} was already dismissed from topic '{topic.slug}'s suggestions")
        raise ConfigError(f"PMID {pmid} is not a suggestion of topic '{topic.slug}': 'tracker suggest {topic.slug}' "
                          "lists them")


def add_suggestions(store: Store, topic: Topic, pmids: Sequence[int], *, reviewer: str) -> None:
    """Add the topic's suggestions `pmids` (pending or dismissed) to the topic, all or none: each joins with source
    "suggestion" and is screened like the rest."""
    pmids = list(dict.fromkeys(pmids))
    _check_suggested(store, topic, pmids, (PENDING, DISMISSED), "add")
    decide_suggestions(store, topic.slug, pmids, ADDED, reviewer=reviewer)


def dismiss_suggestions(store: Store, topic: Topic, pmids: Sequence[int], *, reviewer: str) -> None:
    """Dismiss pending suggestions `pmids`, all or none: they are never suggested to the topic again."""
    pmids = list(dict.fromkeys(pmids))
    _check_suggested(store, topic, pmids, (PENDING,), "dismiss")
    decide_suggestions(store, topic.slug, pmids, DISMISSED, reviewer=reviewer)


def undo_dismissal(store: Store, topic: Topic, *, reviewer: str) -> int | None:
    """Make `reviewer`'s last dismissed suggestion of the topic pending again; its PMID, or None when there is none."""
    pmid = last_dismissed(store, topic.slug, reviewer)
    if pmid is not None:
        restore_suggestions(store, topic.slug, [pmid])
    return pmid


def add_by_pmid(store: Store, client: EutilsClient | None, topic: Topic, pmids: Sequence[int], *,
                reviewer: str) -> Added:
    """Add papers to the topic by PMID: its suggestions as suggestions, any other paper by hand (source "manual").
    Papers the store lacks are fetched first (with `client`, recorded as a run of kind "manual"); then all are
    added together. A PMID the topic holds already is refused and nothing is added."""
    pmids = list(dict.fromkeys(pmids))
    suggested = {item.pmid for item in load_suggestions(store, topic.slug, statuses=(PENDING, DISMISSED), pmids=pmids)}
    held = topic_pmids(store, topic.slug, pmids)
    for pmid in pmids:
        if pmid in held:
            raise ConfigError(f"PMID {pmid} is already in topic '{topic.slug}': nothing to add")
    by_hand = [pmid for pmid in pmids if pmid not in suggested]
    stored = stored_pmids(store, by_hand)
    lacking = [pmid for pmid in by_hand if pmid not in stored]
    missing: tuple[int, ...] = ()
    requests = 0
    if lacking:
        if client is None:
            raise ConfigError(f"PMID {lacking[0]} is not stored: it must be fetched from PubMed to be added")
        ledger = RunLedger(store, topic.slug, kind=MANUAL, query=None)
        ledger.searched(len(lacking), len(lacking), translation=None)
        try:
            with ledger.recording(client, label=f"adding papers to '{topic.slug}'"):
                missing = store_pmids(store, client, lacking, topic=None, ledger=ledger).missing
        except TrackerError as error:
            raise with_context(error, f"adding papers to '{topic.slug}' failed: {error}; nothing was added: "
                                      "try again later") from None
        ledger.succeed()
        requests = ledger.counts.requests
    if suggested:
        decide_suggestions(store, topic.slug, [pmid for pmid in pmids if pmid in suggested], ADDED, reviewer=reviewer)
    by_hand = [pmid for pmid in by_hand if pmid not in missing]
    add_by_hand(store, topic.slug, by_hand)
    return Added(tuple(pmid for pmid in pmids if pmid in suggested), tuple(by_hand), missing, requests)


# -- reading them, for every face --------------------------------------------------------------------

@dataclass(frozen=True)
class SuggestionView:
    """One suggestion as the faces show it: the paper, why it is suggested, and how relevant the topic's model finds it."""

    paper: Paper
    suggestion: StoredSuggestion
    why: tuple[str, ...]  # "similar to 3 of your included papers", "cites Smith 2019"

    @property
    def pmid(self) -> int:
        return self.paper.pmid

    @property
    def url(self) -> str:
        return pubmed_url(self.paper.pmid)

    @property
    def year(self) -> int | None:
        return self.paper.pub_date.year if self.paper.pub_date else None

    @property
    def first_author(self) -> str:
        return self.paper.authors[0].display if self.paper.authors else ""

    @property
    def relevance(self) -> float | None:
        return self.suggestion.relevance

    @property
    def found_by(self) -> str:
        return "; ".join(self.suggestion.ways)

    @property
    def reason(self) -> str:
        return "; ".join(self.why)


@dataclass(frozen=True)
class SuggestionList:
    topic: Topic
    total: int  # the topic's suggestions in the status asked for
    items: tuple[SuggestionView, ...]  # the first `limit` of them, most relevant first


def ranked(suggestions: Sequence[StoredSuggestion]) -> list[StoredSuggestion]:
    """Most relevant first (the topic's model; unscored after scored), then linked from the most seeds, then the
    most similar, then the newest."""
    return sorted(suggestions, key=lambda item: (item.relevance is None, -(item.relevance or 0.0),
                                                 -len(item.seed_pmids), -(item.similarity or 0), -item.pmid))


def list_suggestions(store: Store, topic: Topic, *, limit: int | None = None, status: str = PENDING,
                     pmids: Sequence[int] | None = None) -> SuggestionList:
    """The topic's suggestions in `status`, most relevant first, with why each is suggested."""
    stored = ranked(load_suggestions(store, topic.slug, statuses=(status,), pmids=pmids))
    shown = stored[:limit] if limit is not None else stored
    papers = {paper.pmid: paper for paper in load_papers(store, [item.pmid for item in shown])}
    seeds = {pmid for item in shown for pmid in item.seed_pmids}
    seed_papers = {paper.pmid: paper for paper in load_papers(store, sorted(seeds))}
    file_seeds = set(topic.seeds) - set(included_pmids(store, topic)) if topic.seeds else set()
    items = tuple(SuggestionView(papers[item.pmid], item, describe_why(item, seed_papers, file_seeds))
                  for item in shown if item.pmid in papers)
    return SuggestionList(topic, len(stored), items)


# The CSV's columns, in order (`tracker suggest --format csv`); JSON has the same keys, lists as lists.
SUGGESTION_COLUMNS = ("pmid", "title", "year", "relevance", "found_by", "seeds", "why", "first_author", "journal",
                      "status", "first_found", "pubmed_url")


def suggestion_record(view: SuggestionView) -> dict:
    """A suggestion as plain values keyed by SUGGESTION_COLUMNS (`found_by` and `seeds` as lists)."""
    item = view.suggestion
    return {"pmid": view.pmid, "title": view.paper.title, "year": view.year,
            "relevance": None if item.relevance is None else round(item.relevance, 4), "found_by": list(item.ways),
            "seeds": list(item.seed_pmids), "why": list(view.why), "first_author": view.first_author or None,
            "journal": view.paper.journal, "status": item.status,
            "first_found": item.first_found_at.strftime("%Y-%m-%dT%H:%M:%SZ") if item.first_found_at else None,
            "pubmed_url": view.url}


def flat_record(record: dict) -> list:
    """A `suggestion_record` as CSV cells: lists "; "-joined, as the export joins them."""
    return ["; ".join(str(value) for value in record[name]) if isinstance(record[name], list) else record[name]
            for name in SUGGESTION_COLUMNS]


def seed_label(pmid: int, papers: dict[int, Paper]) -> str:
    """"Smith 2019" (the first author's last name and the publication year), else "PMID 123"."""
    paper = papers.get(pmid)
    if paper is None:
        return f"PMID {pmid}"
    author = paper.authors[0] if paper.authors else None
    name = (author.last_name or author.collective_name or "") if author else ""
    year = paper.pub_date.year if paper.pub_date else None
    label = " ".join(str(part) for part in (name, year) if part)
    return label or f"PMID {pmid}"


def describe_why(item: StoredSuggestion, papers: dict[int, Paper],
                 file_seeds: Collection[int] = frozenset()) -> tuple[str, ...]:
    """Why `item` is suggested, one phrase per way: "similar to 3 of your included papers", "cites Smith 2019"."""
    phrases = []
    for way in WAYS:
        seeds = item.seeds.get(way, ())
        if not seeds:
            continue
        verb = {SIMILAR_WAY: "similar to", CITES: "cites", CITED_BY: "cited by"}[way]
        if len(seeds) == 1:
            phrases.append(f"{verb} {seed_label(seeds[0], papers)}")
            continue
        from_file = sum(1 for pmid in seeds if pmid in file_seeds)
        whose = ("your included papers" if not from_file else "the topic's seeds" if from_file == len(seeds)
                 else "your included papers and seeds")
        phrases.append(f"{verb} {len(seeds)} of {whose}")
    return tuple(phrases)


__all__ = [
    "REQUEST_BUDGET", "SEEDS_PER_RUN", "NEW_SEEDS_PER_RUN", "SIMILAR_PER_SEED", "CITATIONS_PER_SEED", "TOP_SHOWN",
    "REFRESH_KIND", "WARNING_PREFIX", "SuggestPass", "AfterRun", "SuggestionView", "SuggestionList", "Added",
    "SUGGESTION_COLUMNS",
    "stated_participants", "order_seeds", "included_pmids", "choose_seeds", "find_suggestions", "refresh_suggestions",
    "suggest_after_run", "ranked", "list_suggestions", "suggestion_record", "flat_record", "seed_label", "describe_why",
    "add_suggestions", "dismiss_suggestions", "undo_dismissal", "add_by_pmid",
]
