"""Screening: each reviewer's include / exclude / maybe decisions on a topic's papers, kept while new papers
keep arriving.

Decisions
    A decision is per topic, paper and reviewer: `include`, `exclude` (with reasons from the topic file's
    `exclusion_reasons`, or the default list in tracker/topics.py) or `maybe`, with a free note. The history
    is append-only (table `decision`: who decided what, when, and which of their decisions it replaced); each
    reviewer's latest decision is their current one. A paper in two topics is screened in each.

States
    One reviewer (the default): a paper's state is the latest decision given on it: `included`, `excluded`,
    `maybe`, or `unscreened` before any. Two reviewers (`screening = { reviewers = 2 }`): `unscreened`,
    `awaiting` (one of the two has decided), then `included`, `excluded` or `maybe` when they agree and
    `conflict` when they do not. A decision given with `resolve` settles the paper whatever the reviewers
    said (the latest such decision counts).

Blind screening (`blind = true`, the default with two reviewers)
    Until both reviewers have decided a paper, neither sees the other's decision: in a reviewer's own
    listing a paper they have not decided is `unscreened` (even if the other has) and one they have decided
    is `awaiting`; other reviewers' decisions, notes and reasons are hidden there, in exports and in digests.

Updates never reset decisions: new papers enter as `unscreened`, and the store keeps decisions apart from
the papers' records (tracker/store/decisions.py).
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tracker.errors import ConfigError
from tracker.review.ranking.queue import ScreeningQueue
from tracker.review.states import DECISIONS, STATES, WITHDRAWN, ScreeningRule, State, check_state
from tracker.store import Store
from tracker.store.decisions import (
    NewDecision,
    ReviewerDecision,
    Saved,
    current_decisions,
    current_from,
    decision_by_id,
    save_decisions,
    state_counts,
    summaries,
)
from tracker.store.listing import Cursor, ListedRow, PaperFilter, queue_by_relevance, queue_pmids, screened_count, walk_topic
from tracker.store.membership import other_topics_for, topic_pmids
from tracker.store.relevance import decision_mark, scores_of
from tracker.text import format_relevance, format_utc, pubmed_url
from tracker.topics import Topic

REVIEWER_PATTERN = re.compile(r"^[\w.@+-][\w .@+-]{0,63}$")


def default_reviewer(configured: str | None = None) -> str:
    """TRACKER_REVIEWER (or --reviewer), else the login name."""
    name = (configured or "").strip()
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            raise ConfigError("cannot tell who is screening: pass --reviewer NAME or set TRACKER_REVIEWER") from None
    return check_reviewer(name)


def check_reviewer(name: str) -> str:
    name = " ".join(str(name).split())
    if not REVIEWER_PATTERN.match(name):
        raise ConfigError(f"reviewer name {name!r} is not usable: use up to 64 letters, digits, spaces and . @ + - _")
    return name


def resolve_reasons(topic: Topic, given: Sequence[str]) -> tuple[str, ...]:
    """The topic's exclusion reasons that `given` names, by text (any case) or by number (1 is the first)."""
    known = {reason.casefold(): reason for reason in topic.exclusion_reasons}
    chosen: list[str] = []
    for text in given:
        for part in str(text).split(";"):
            part = " ".join(part.split())
            if not part:
                continue
            if part.isdigit() and 1 <= int(part) <= len(topic.exclusion_reasons):
                chosen.append(topic.exclusion_reasons[int(part) - 1])
            elif part.casefold() in known:
                chosen.append(known[part.casefold()])
            else:
                raise ConfigError(f"{part!r} is not an exclusion reason of topic '{topic.slug}': use one of "
                                  f"{describe_reasons(topic)}, or list it in exclusion_reasons in queries/{topic.slug}.toml")
    return tuple(dict.fromkeys(chosen))


def describe_reasons(topic: Topic) -> str:
    return ", ".join(f"{number} {reason!r}" for number, reason in enumerate(topic.exclusion_reasons, start=1))


def decide(store: Store, topic: Topic, pmids: Sequence[int], decision: str, *, reviewer: str,
           reasons: Sequence[str] = (), note: str = "", resolve: bool = False, source: str = "cli") -> list[Saved]:
    """Record `reviewer`'s `decision` on each of `pmids` in `topic`: all of them, or (on any error) none."""
    reviewer = check_reviewer(reviewer)
    if decision not in DECISIONS:
        raise ConfigError(f"unknown decision {decision!r}: use include, exclude or maybe")
    if reasons and decision != "exclude":
        raise ConfigError("reasons go with an exclusion: add --exclude, or leave out --reason")
    chosen = resolve_reasons(topic, reasons)
    pmids = list(dict.fromkeys(pmids))
    if not pmids:
        raise ConfigError("give at least one PMID to decide")
    missing = sorted(set(pmids) - topic_pmids(store, topic.slug, pmids))
    if missing:
        raise ConfigError(f"{describe_pmids(missing)} not in topic '{topic.slug}': nothing was recorded; "
                          f"'tracker screen list {topic.slug}' lists its papers")
    if resolve:
        check_resolvable(store, topic, pmids)
    return save_decisions(store, topic.slug, [
        NewDecision(pmid=pmid, reviewer=reviewer, decision=decision, reasons=chosen, note=" ".join(note.split()),
                    resolves=resolve, source=source)
        for pmid in pmids])


def undo_last(store: Store, topic: Topic, *, reviewer: str, source: str = "web") -> Saved | None:
    """Take back `reviewer`'s latest decision from `source` in `topic` that still stands.

    The history stays append-only: the decision it replaced comes back as a new decision (source
    "<source>-undo"), and when it replaced none, a withdrawal (`WITHDRAWN`) leaves the reviewer undecided on
    the paper. A decision brought back by an undo stands for the one it copies, so undoing again walks
    further back through the reviewer's decisions from `source`, newest first. None: nothing to undo.
    """
    reviewer = check_reviewer(reviewer)
    undo_source = f"{source}-undo"
    best: tuple[tuple[datetime, int], ReviewerDecision, ReviewerDecision] | None = None
    for current in current_from(store, topic.slug, reviewer, (source, undo_source)):
        original = current
        if current.source == undo_source:  # a copy of the decision before the one undone
            undone = decision_by_id(store, current.replaces) if current.replaces is not None else None
            before = decision_by_id(store, undone.replaces) if undone and undone.replaces is not None else None
            if before is None or before.source != source:
                continue
            original = before
        key = (original.decided_at, original.id)
        if best is None or key > best[0]:
            best = (key, current, original)
    if best is None:
        return None
    _, current, original = best
    previous = decision_by_id(store, original.replaces) if original.replaces is not None else None
    if previous is None or previous.decision == WITHDRAWN:
        restored = NewDecision(pmid=current.pmid, reviewer=reviewer, decision=WITHDRAWN, source=undo_source)
    else:
        restored = NewDecision(pmid=current.pmid, reviewer=reviewer, decision=previous.decision,
                               reasons=previous.reasons, note=previous.note, resolves=previous.resolves,
                               source=undo_source)
    return save_decisions(store, topic.slug, [restored])[0]


def check_resolvable(store: Store, topic: Topic, pmids: Sequence[int]) -> None:
    if not topic.screening.dual:
        raise ConfigError(f"--resolve settles a conflict between two reviewers, and topic '{topic.slug}' has one: "
                          "leave it out, or set screening = { reviewers = 2 } in its file")
    rows, rule = summaries(store, topic.slug, pmids), ScreeningRule.of(topic)
    settled = [pmid for pmid in pmids if rule.state(rows.get(pmid)) != State.CONFLICT]
    if settled:
        states = ", ".join(f"{pmid} {rule.state(rows.get(pmid))}" for pmid in settled[:5])
        raise ConfigError(f"--resolve settles conflicts, and {describe_pmids(settled)} not in conflict ({states}): "
                          "nothing was recorded")


def describe_pmids(pmids: Sequence[int]) -> str:
    shown = ", ".join(map(str, pmids[:10])) + (f" and {len(pmids) - 10} more" if len(pmids) > 10 else "")
    return f"PMID {shown} is" if len(pmids) == 1 else f"PMIDs {shown} are"


def count_states(store: Store, topic: Topic, *, members: int | None = None) -> dict[str, int]:
    """How many of the topic's papers are in each state, every state named (in STATES order); `members`, the
    topic's paper count, when the caller has it."""
    counts = state_counts(store, topic.slug, ScreeningRule.of(topic), members=members)
    return {state: counts.get(state, 0) for state in STATES}


# -- what a reviewer may see -------------------------------------------------------------------

@dataclass(frozen=True)
class PaperScreening:
    """A paper's screening in one topic, as one reviewer may see it."""

    topic: str
    pmid: int
    state: str  # the topic-level state, or this reviewer's view of it in blind screening
    reasons: tuple[str, ...]  # behind an `excluded` state
    decisions: tuple[ReviewerDecision, ...]  # the current decisions this reviewer may see, oldest first
    hidden: int = 0  # decisions of other reviewers blind screening hides for now


def view_of(topic: Topic, pmid: int, summary, current: Sequence[ReviewerDecision], *,
            reviewer: str | None) -> PaperScreening:
    """The paper's screening as `reviewer` may see it (None: an overall view, such as an export or a digest)."""
    rule = ScreeningRule.of(topic)
    state = rule.state(summary)
    shown = tuple(current)
    hidden = 0
    if rule.blind and not rule.settled(summary):
        shown = tuple(d for d in current if reviewer is not None and d.reviewer == reviewer)
        hidden = len(current) - len(shown)
        if reviewer is not None:
            state = rule.view(summary, mine=bool(shown))
    return PaperScreening(topic=topic.slug, pmid=pmid, state=state, reasons=rule.reasons(summary),
                          decisions=shown, hidden=hidden)


@dataclass(frozen=True)
class ScreeningRow:
    paper: ListedRow
    first_seen_at: datetime
    screening: PaperScreening
    other_topics: tuple[tuple[str, str], ...]  # (slug, state) in the paper's other topics, as a digest shows them
    relevance: float | None = None  # the topic's relevance score in (0, 1) (tracker/review/relevance.py); None before ranking


def list_screening(store: Store, topic: Topic, *, reviewer: str | None, state: str | None = None,
                   limit: int | None = None, topics: Sequence[Topic] = (), sort: str = "newest") -> list[ScreeningRow]:
    """The topic's papers in `sort` order (newest first seen first by default; SORTS) with their screening as
    `reviewer` may see it; `topics` (all the known ones) give the states in the paper's other topics."""
    rule = ScreeningRule.of(topic)
    listed = list(walk_topic(store, topic.slug, rule, filters=PaperFilter(state=check_state(state)), sort=sort,
                             blind_reviewer=reviewer if rule.blind else None, limit=limit))
    pmids = [item.pmid for item in listed]
    scores = scores_of(store, [topic.slug], pmids)
    others = {other.slug: other for other in topics if other.slug != topic.slug}
    memberships = other_topics_for(store, pmids, exclude=topic.slug)
    wanted = [slug for slug in {slug for found in memberships.values() for slug in found} if slug in others]
    current = current_decisions(store, [topic.slug, *wanted], pmids)
    rows_by_topic = {slug: summaries(store, slug, pmids) for slug in [topic.slug, *wanted]}
    found = []
    for item in listed:
        screening = view_of(topic, item.pmid, rows_by_topic[topic.slug].get(item.pmid),
                            current.get((topic.slug, item.pmid), ()), reviewer=reviewer)
        other_states = tuple(
            (slug, view_of(others[slug], item.pmid, rows_by_topic[slug].get(item.pmid),
                           current.get((slug, item.pmid), ()), reviewer=None).state)
            for slug in memberships.get(item.pmid, ()) if slug in others)
        found.append(ScreeningRow(item, item.first_seen_at, screening, other_states, scores.get(item.pmid)))
    return found


# -- the queue ---------------------------------------------------------------------------------

QUEUE = ScreeningQueue()


def next_to_screen(store: Store, topic: Topic, reviewer: str, *, ranked: bool, waiting: int,
                   current: ListedRow | None = None) -> ListedRow | None:
    """The paper `reviewer` screens next (after `current`, the one on screen, when given).

    A ranked topic follows the queue's policy (tracker/review/ranking/queue.py, the one the benchmark measures):
    the most relevant waiting paper, or now and then one from the lower-scored half, drawn with a seed of the topic,
    the reviewer, the topic's newest decision and the paper on screen, so that reloading a page shows the same paper
    and each decision moves the queue on. Otherwise the newest first seen after `current`, wrapping round to the
    newest still waiting. `waiting`: how many papers wait for the reviewer (the page has counted them)."""
    import random

    rule = ScreeningRule.of(topic)
    skip = current.pmid if current is not None else None
    if ranked:
        draw = random.Random(f"{topic.slug}/{reviewer}/{decision_mark(store, topic.slug)}/{skip}")
        left = waiting - (1 if skip is not None and waiting > 0 else 0)
        position = QUEUE.next_position(left, draw)
        found = queue_by_relevance(store, topic.slug, rule, reviewer, skip=skip, offset=position)
        if found is None and position:
            found = queue_by_relevance(store, topic.slug, rule, reviewer, skip=skip)
        return found
    after = Cursor(current.first_seen_at, current.pmid) if current is not None else None
    following = queue_pmids(store, topic.slug, rule, reviewer, after=after, limit=1)
    if not following and current is not None:  # wrap round to the newest paper still waiting, if it is not this one
        following = [row for row in queue_pmids(store, topic.slug, rule, reviewer, limit=2) if row.pmid != current.pmid]
    return following[0] if following else None


def screened_by(store: Store, topic: Topic, reviewer: str) -> int:
    """How many of the topic's papers are out of `reviewer`'s queue."""
    return screened_count(store, topic.slug, ScreeningRule.of(topic), reviewer)


def included_in(store: Store, topics: Sequence[Topic], pmids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    """The topics (of `topics`) whose screening has included each paper; papers included nowhere are absent."""
    from tracker.store.decisions import summaries_of

    by_slug = {topic.slug: topic for topic in topics}
    found: dict[int, list[str]] = {}
    for (slug, pmid), summary in sorted(summaries_of(store, list(by_slug), pmids).items()):
        if ScreeningRule.of(by_slug[slug]).state(summary) == State.INCLUDED:
            found.setdefault(pmid, []).append(slug)
    return {pmid: tuple(slugs) for pmid, slugs in found.items()}


def with_included_first(store: Store, topics: Sequence[Topic], events: Sequence) -> tuple:
    """Status events (EventView) marked with the topics that included their paper, those first (stable)."""
    from dataclasses import replace as changed

    included = included_in(store, topics, [event.pmid for event in events])
    marked = [changed(event, included_in=included.get(event.pmid, ())) for event in events]
    return tuple(sorted(marked, key=lambda event: not event.included_in))


def describe_decision(decision: ReviewerDecision) -> str:
    """"ana: exclude (wrong population)", as the export's `reviewers` column and the CLI show it."""
    return describe_decision_record(decision_record(decision))


def describe_decision_record(record: dict) -> str:
    text = f"{record['reviewer']}: {record['decision']}"
    if record["reasons"]:
        text += f" ({', '.join(record['reasons'])})"
    if record["resolves"]:
        text += " [resolves]"
    return text


def decision_record(decision: ReviewerDecision) -> dict:
    return {"reviewer": decision.reviewer, "decision": decision.decision, "reasons": list(decision.reasons),
            "note": decision.note, "resolves": decision.resolves, "decided_at": format_utc(decision.decided_at)}


def screening_record(row: ScreeningRow) -> dict:
    """A listed paper as plain values (the JSON of `tracker screen list`)."""
    paper, screening = row.paper, row.screening
    return {
        "pmid": paper.pmid, "title": paper.title, "authors": paper.authors, "journal": paper.journal,
        "year": paper.year, "status": paper.status or "", "first_seen": format_utc(row.first_seen_at),
        "topic": screening.topic, "state": screening.state, "reasons": list(screening.reasons),
        "decisions": [decision_record(d) for d in screening.decisions], "hidden_decisions": screening.hidden,
        "other_topics": dict(row.other_topics), "pubmed_url": pubmed_url(paper.pmid),
        "relevance": format_relevance(row.relevance),
    }


__all__ = [
    "default_reviewer", "check_reviewer", "resolve_reasons", "undo_last", "describe_reasons", "decide", "check_resolvable",
    "check_state", "count_states", "PaperScreening", "view_of", "describe_decision", "describe_pmids",
    "ScreeningRow", "list_screening", "screening_record", "decision_record",
    "describe_decision_record", "included_in", "with_included_first", "next_to_screen", "screened_by", "QUEUE",
]
