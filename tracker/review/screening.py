"""Screening: each reviewer's decisions on a topic's papers, at two stages, kept while new papers keep arriving.

Decisions
    A decision is per topic, paper, stage and reviewer. By title and abstract: `include`, `exclude` (with reasons
    from the topic file's `exclusion_reasons`, or the default list in tracker/topics.py) or `maybe`. The papers
    included there go on to their full text: `include`, `exclude` (a reason from `full_text_reasons` is required)
    or `not-retrieved` (the report could not be had). Each has a free note. The history is append-only (table
    `decision`: who decided what, when, at which stage, and which of their decisions it replaced); each reviewer's
    latest decision at a stage is their current one. A paper in two topics is screened in each.

States and their rules
    tracker/review/states.py: one reviewer, or two (named in the topic file, or the first two who decide), blind
    or not; a resolution (`--resolve`, the Conflicts page) settles a paper whatever the reviewers said. A decision by
    someone who is not one of a topic's named reviewers is refused unless it is a resolution.

Blind screening (`blind = true`, the default with two reviewers)
    Until both reviewers have decided a paper, neither sees anything of the other's decisions, withdrawn ones
    included: in a reviewer's own listing, exports and counts a paper they have not decided is `unscreened` (even if
    the other has) and one they have decided is `awaiting`. Once the other has decided, a reviewer's undo is refused:
    their decision was given blind and stays so.

Updates never reset decisions: new papers enter as `unscreened`, and the store keeps decisions apart from the papers'
records (tracker/store/decisions.py).
"""

from __future__ import annotations

import getpass
import re
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tracker.errors import ConfigError
from tracker.review.ranking.queue import ScreeningQueue
from tracker.review.states import (
    DECISIONS_AT,
    OPEN,
    STATES_AT,
    WITHDRAWN,
    Decision,
    ScreeningRule,
    Stage,
    State,
    check_state,
)
from tracker.store import Store
from tracker.store.accounts import is_team_member, list_accounts
from tracker.store.decisions import (
    NewDecision,
    ReviewerDecision,
    Saved,
    current_decisions,
    current_from,
    decision_by_id,
    first_reviewers,
    latest_decision_id,
    save_decisions,
    state_counts,
    summaries,
)
from tracker.store.listing import (
    Cursor,
    ListedRow,
    PaperFilter,
    queue_by_relevance,
    queue_pmids,
    screened_count,
    walk_topic,
)
from tracker.store.membership import other_topics_for, topic_pmids
from tracker.store.relevance import scores_of
from tracker.text import format_relevance, format_utc, pubmed_url
from tracker.topics import Topic

REVIEWER_PATTERN = re.compile(r"^[\w.@+-][\w .@+-]{0,63}$")
NOTE_LIMIT = 10_000  # characters: a note is a remark, not a document (and it is shown on every page of the paper)


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


def check_account(store: Store, name: str) -> str:
    """In team mode (the database holds accounts) a decision is someone's: `name` must be an account."""
    if not is_team_member(store, name):
        accounts = [account.name for account in list_accounts(store)]
        raise ConfigError(f"{name!r} is not an account of this team (accounts: {', '.join(sorted(accounts))}): "
                          "decide as one of them, or add it with 'tracker users add'")
    return name


def check_note(note: str) -> str:
    """A note as it is kept: whitespace collapsed; control characters and notes past NOTE_LIMIT refused."""
    if any(unicodedata.category(char) == "Cc" and char not in "\t\n\r" for char in note):
        raise ConfigError("the note holds control characters: write it as plain text")
    note = " ".join(note.split())
    if len(note) > NOTE_LIMIT:
        raise ConfigError(f"the note is {len(note):,} characters long: keep it under {NOTE_LIMIT:,}")
    return note


def reasons_of(topic: Topic, stage: Stage) -> tuple[str, ...]:
    """The topic's exclusion reasons at `stage`."""
    return topic.full_text_reasons if stage == Stage.FULL_TEXT else topic.exclusion_reasons


def resolve_reasons(topic: Topic, given: Sequence[str], stage: Stage = Stage.TITLE_ABSTRACT) -> tuple[str, ...]:
    """The topic's exclusion reasons at `stage` that `given` names, by text (any case) or number (1 is the first)."""
    listed = reasons_of(topic, stage)
    known = {reason.casefold(): reason for reason in listed}
    key = "full_text_reasons" if stage == Stage.FULL_TEXT else "exclusion_reasons"
    chosen: list[str] = []
    for text in given:
        for part in str(text).split(";"):
            part = " ".join(part.split())
            if not part:
                continue
            if part.isascii() and part.isdigit() and 1 <= int(part) <= len(listed):
                chosen.append(listed[int(part) - 1])
            elif part.casefold() in known:
                chosen.append(known[part.casefold()])
            else:
                raise ConfigError(f"{part!r} is not {'a full-text' if stage == Stage.FULL_TEXT else 'an'} exclusion "
                                  f"reason of topic '{topic.slug}': use one of {describe_reasons(topic, stage)}, or list "
                                  f"it in {key} in queries/{topic.slug}.toml")
    return tuple(dict.fromkeys(chosen))


def describe_reasons(topic: Topic, stage: Stage = Stage.TITLE_ABSTRACT) -> str:
    return ", ".join(f"{number} {reason!r}" for number, reason in enumerate(reasons_of(topic, stage), start=1))


def rule_for(store: Store, topic: Topic, stage: Stage = Stage.TITLE_ABSTRACT) -> ScreeningRule:
    """The topic's rules at `stage`, with its reviewers: the names its file gives, or for `reviewers = 2` the first
    two people who gave a decision at that stage (in order of their first decision, so that the assignment never
    changes once made)."""
    mode = topic.screening

    def assigned(at: Stage) -> tuple[str, ...]:
        return () if mode.names or not mode.dual else first_reviewers(store, topic.slug, mode.reviewers, stage=at)

    first = ScreeningRule.of(topic, names=assigned(Stage.TITLE_ABSTRACT))
    return first if stage == Stage.TITLE_ABSTRACT else first.later(stage, names=assigned(stage))


def decide(store: Store, topic: Topic, pmids: Sequence[int], decision: str, *, reviewer: str,
           reasons: Sequence[str] = (), note: str = "", resolve: bool = False, source: str = "cli",
           stage: Stage = Stage.TITLE_ABSTRACT) -> list[Saved]:
    """Record `reviewer`'s `decision` on each of `pmids` in `topic` at `stage`: all of them, or (on any error) none."""
    reviewer = check_account(store, check_reviewer(reviewer))
    allowed = DECISIONS_AT[stage]
    if decision not in allowed:
        where = " at full text" if stage == Stage.FULL_TEXT else ""
        hint = " (not-retrieved is a full-text decision: add --stage full-text)" if decision == Decision.NOT_RETRIEVED else ""
        raise ConfigError(f"unknown decision {decision!r}{where}: use {', '.join(allowed[:-1])} or {allowed[-1]}{hint}")
    if reasons and decision != Decision.EXCLUDE:
        raise ConfigError("reasons go with an exclusion: add --exclude, or leave out --reason")
    chosen = resolve_reasons(topic, reasons, stage)
    if stage == Stage.FULL_TEXT and decision == Decision.EXCLUDE and not chosen:
        raise ConfigError(f"a full-text exclusion needs its reason: add --reason, one of "
                          f"{describe_reasons(topic, Stage.FULL_TEXT)}")
    note = check_note(note)
    pmids = list(dict.fromkeys(pmids))
    if not pmids:
        raise ConfigError("give at least one PMID to decide")
    missing = sorted(set(pmids) - topic_pmids(store, topic.slug, pmids))
    if missing:
        raise ConfigError(f"{describe_pmids(missing)} not in topic '{topic.slug}': nothing was recorded; "
                          f"'tracker screen list {topic.slug}' lists its papers")
    rule = rule_for(store, topic, stage)
    if stage == Stage.FULL_TEXT:
        check_reached(store, topic, rule, pmids)
    if resolve:
        check_resolvable(store, topic, rule, pmids)
    elif rule.names and not rule.counts(reviewer):
        raise ConfigError(f"{reviewer} is not a reviewer of topic '{topic.slug}' (its reviewers: "
                          f"{', '.join(rule.names)}): a decision by anyone else only settles a conflict, with --resolve")
    return save_decisions(store, topic.slug, [
        NewDecision(pmid=pmid, reviewer=reviewer, decision=decision, reasons=chosen, note=note, resolves=resolve,
                    source=source, stage=stage)
        for pmid in pmids])


def check_reached(store: Store, topic: Topic, rule: ScreeningRule, pmids: Sequence[int]) -> None:
    """Full text is for the papers included by title and abstract."""
    assert rule.previous is not None
    rows = summaries(store, topic.slug, pmids, stage=rule.previous.stage)
    early = [pmid for pmid in pmids if rule.previous.state(rows.get(pmid)) != State.INCLUDED]
    if early:
        states = ", ".join(f"{pmid} {rule.previous.state(rows.get(pmid))}" for pmid in early[:5])
        raise ConfigError(f"{describe_pmids(early)} not included by title and abstract ({states}), so not at the full "
                          "text yet: nothing was recorded")


class UndoRaced(Exception):
    """Another undo (or decision) of the same reviewer came first: work out the undo again."""


def undo_last(store: Store, topic: Topic, *, reviewer: str, source: str = "web",
              stage: Stage = Stage.TITLE_ABSTRACT) -> Saved | None:
    """Take back `reviewer`'s latest decision from `source` in `topic` at `stage` that still stands.

    The history stays append-only: the decision it replaced comes back as a new decision (source "<source>-undo"),
    and when it replaced none, a withdrawal (`WITHDRAWN`) leaves the reviewer undecided on the paper. A decision
    brought back by an undo stands for the one it copies, so undoing again walks further back through the
    reviewer's decisions from `source`, newest first. Two undos at once take two steps: each is checked, inside the
    transaction that records it, against the decision it takes back. In blind screening a decision on a paper the
    other reviewer has decided too is not taken back (ConfigError). None: nothing to undo.
    """
    reviewer = check_reviewer(reviewer)
    for _ in range(5):
        try:
            return _undo_once(store, topic, reviewer, source, stage)
        except UndoRaced:
            continue
    raise ConfigError("your decisions kept changing while this undo was worked out: reload the page and try again")


def _undo_once(store: Store, topic: Topic, reviewer: str, source: str, stage: Stage) -> Saved | None:
    from tracker.store.decisions import current_decision_id, summary_in

    undo_source = f"{source}-undo"
    best: tuple[tuple[datetime, int], ReviewerDecision, ReviewerDecision] | None = None
    for current in current_from(store, topic.slug, reviewer, (source, undo_source), stage=stage):
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
        restored = NewDecision(pmid=current.pmid, reviewer=reviewer, decision=WITHDRAWN, source=undo_source, stage=stage)
    else:
        restored = NewDecision(pmid=current.pmid, reviewer=reviewer, decision=previous.decision,
                               reasons=previous.reasons, note=previous.note, resolves=previous.resolves,
                               source=undo_source, stage=stage)
    rule = rule_for(store, topic, stage)

    def still_so(connection) -> None:
        if current_decision_id(connection, topic.slug, current.pmid, stage, reviewer) != current.id:
            raise UndoRaced()
        summary = summary_in(connection, topic.slug, current.pmid, stage)
        if rule.blind and not current.resolves and summary is not None and set(rule.votes(summary)) - {reviewer}:
            raise ConfigError(f"PMID {current.pmid}: the other reviewer has decided it too, so your blind decision "
                              f"({current.decision}) stays; a conflict between you is settled on the Conflicts page")

    return save_decisions(store, topic.slug, [restored], check=still_so)[0]


def check_resolvable(store: Store, topic: Topic, rule: ScreeningRule, pmids: Sequence[int]) -> None:
    if not topic.screening.dual:
        raise ConfigError(f"--resolve settles a conflict between two reviewers, and topic '{topic.slug}' has one: "
                          "leave it out, or set screening = { reviewers = 2 } in its file")
    rows = summaries(store, topic.slug, pmids, stage=rule.stage)
    settled = [pmid for pmid in pmids if rule.state(rows.get(pmid)) != State.CONFLICT]
    if settled:
        states = ", ".join(f"{pmid} {rule.state(rows.get(pmid))}" for pmid in settled[:5])
        raise ConfigError(f"--resolve settles conflicts, and {describe_pmids(settled)} not in conflict ({states}): "
                          "nothing was recorded")


def describe_pmids(pmids: Sequence[int]) -> str:
    shown = ", ".join(map(str, pmids[:10])) + (f" and {len(pmids) - 10} more" if len(pmids) > 10 else "")
    return f"PMID {shown} is" if len(pmids) == 1 else f"PMIDs {shown} are"


def count_states(store: Store, topic: Topic, *, members: int | None = None, viewer: str | None = None,
                 stage: Stage = Stage.TITLE_ABSTRACT) -> dict[str, int]:
    """How many of the topic's papers are in each state at `stage`, every state named (in STATES_AT order), as
    `viewer` may see them in blind screening; `members`, the topic's paper count, when the caller has it. At the
    full text the papers counted are those included by title and abstract."""
    rule = rule_for(store, topic, stage)
    eligible = None
    if rule.previous is not None:
        from tracker.store.listing import reached

        eligible = reached(store, topic.slug, rule)
    counts = state_counts(store, topic.slug, rule, eligible, members=members,
                          viewer=viewer if rule.blind else None)
    return {state: counts.get(state, 0) for state in STATES_AT[stage]}


# -- what a reviewer may see -------------------------------------------------------------------

@dataclass(frozen=True)
class PaperScreening:
    """A paper's screening at one stage of one topic, as one reviewer may see it."""

    topic: str
    pmid: int
    state: str  # the state, or this reviewer's view of it in blind screening
    reasons: tuple[str, ...]  # behind an `excluded` state, the first one first
    decisions: tuple[ReviewerDecision, ...]  # the current decisions this reviewer may see, oldest first
    hidden: int = 0  # decisions of other reviewers blind screening hides for now
    stage: Stage = Stage.TITLE_ABSTRACT


def view_of(rule: ScreeningRule, topic: str, pmid: int, summary, current: Sequence[ReviewerDecision], *,
            reviewer: str | None) -> PaperScreening:
    """The paper's screening as `reviewer` may see it (None: an overall view, for a reader who screens nothing, such
    as a digest's; in blind screening the state then leaves out whether anyone has decided an open paper)."""
    state = rule.state(summary)
    shown = tuple(current)
    hidden = 0
    if rule.blind and not rule.settled(summary):
        shown = tuple(d for d in current if reviewer is not None and d.reviewer == reviewer)
        hidden = len(current) - len(shown)
        state = rule.view(summary, mine=bool(shown))
    return PaperScreening(topic=topic, pmid=pmid, state=state, reasons=rule.reasons(summary), decisions=shown,
                          hidden=hidden, stage=rule.stage)


def visible_history(rule: ScreeningRule, summary, history: Sequence[ReviewerDecision], *,
                    reviewer: str | None) -> tuple[ReviewerDecision, ...]:
    """The entries of a paper's history at the rule's stage that `reviewer` may see: in blind screening, until the
    paper is settled, their own alone (nothing of the other's, withdrawn decisions included)."""
    at_stage = [entry for entry in history if entry.stage == rule.stage]
    if rule.blind and not rule.settled(summary):
        return tuple(entry for entry in at_stage if reviewer is not None and entry.reviewer == reviewer)
    return tuple(at_stage)


def screening_of(store: Store, topic: Topic, pmids: Sequence[int], *, reviewer: str | None,
                 stage: Stage = Stage.TITLE_ABSTRACT) -> dict[int, PaperScreening]:
    """Each paper's screening in `topic` at `stage` as `reviewer` may see it."""
    rule = rule_for(store, topic, stage)
    rows = summaries(store, topic.slug, pmids, stage=stage)
    current = current_decisions(store, [topic.slug], pmids, stage=stage)
    return {pmid: view_of(rule, topic.slug, pmid, rows.get(pmid), current.get((topic.slug, pmid), ()),
                          reviewer=reviewer) for pmid in pmids}


def paper_stages(store: Store, topic: Topic, pmid: int, *, reviewer: str | None
                 ) -> tuple[PaperScreening, PaperScreening | None, tuple[ReviewerDecision, ...]]:
    """A paper's screening in `topic` as `reviewer` may see it: by title and abstract, at full text (None before it
    was included there), and the entries of its history they may see, oldest first."""
    from tracker.store.decisions import decision_history

    first = screening_of(store, topic, [pmid], reviewer=reviewer)[pmid]
    history = decision_history(store, pmid, [topic.slug])
    rules = [rule_for(store, topic)]
    later = None
    if first.state == State.INCLUDED:
        later = screening_of(store, topic, [pmid], reviewer=reviewer, stage=Stage.FULL_TEXT)[pmid]
        rules.append(rule_for(store, topic, Stage.FULL_TEXT))
    shown = [entry for rule in rules
             for entry in visible_history(rule, summaries(store, topic.slug, [pmid], stage=rule.stage).get(pmid),
                                          history, reviewer=reviewer)]
    return first, later, tuple(sorted(shown, key=lambda entry: (entry.decided_at, entry.id)))


@dataclass(frozen=True)
class ScreeningRow:
    paper: ListedRow
    first_seen_at: datetime
    screening: PaperScreening
    other_topics: tuple[tuple[str, str], ...]  # (slug, state) in the paper's other topics, as a digest shows them
    relevance: float | None = None  # the topic's relevance score in (0, 1) (tracker/review/relevance.py); None before ranking


def list_screening(store: Store, topic: Topic, *, reviewer: str | None, state: str | None = None,
                   limit: int | None = None, topics: Sequence[Topic] = (), sort: str = "newest",
                   stage: Stage = Stage.TITLE_ABSTRACT) -> list[ScreeningRow]:
    """The topic's papers at `stage` in `sort` order (newest first seen first by default; SORTS) with their screening
    as `reviewer` may see it; `topics` (all the known ones) give the states in the paper's other topics."""
    rule = rule_for(store, topic, stage)
    listed = list(walk_topic(store, topic.slug, rule, filters=PaperFilter(state=check_state(state, stage)), sort=sort,
                             blind_reviewer=reviewer if rule.blind else None, limit=limit))
    pmids = [item.pmid for item in listed]
    scores = scores_of(store, [topic.slug], pmids)
    others = {other.slug: other for other in topics if other.slug != topic.slug}
    memberships = other_topics_for(store, pmids, exclude=topic.slug)
    wanted = [slug for slug in {slug for found in memberships.values() for slug in found} if slug in others]
    current = current_decisions(store, [topic.slug], pmids, stage=stage)
    current.update(current_decisions(store, wanted, pmids))
    rows_by_topic = {slug: summaries(store, slug, pmids) for slug in wanted}
    rows_by_topic[topic.slug] = summaries(store, topic.slug, pmids, stage=stage)
    rules = {slug: rule_for(store, others[slug]) for slug in wanted}
    found = []
    for item in listed:
        screening = view_of(rule, topic.slug, item.pmid, rows_by_topic[topic.slug].get(item.pmid),
                            current.get((topic.slug, item.pmid), ()), reviewer=reviewer)
        other_states = tuple(
            (slug, view_of(rules[slug], slug, item.pmid, rows_by_topic[slug].get(item.pmid),
                           current.get((slug, item.pmid), ()), reviewer=reviewer).state)
            for slug in memberships.get(item.pmid, ()) if slug in others)
        found.append(ScreeningRow(item, item.first_seen_at, screening, other_states, scores.get(item.pmid)))
    return found


@dataclass(frozen=True)
class Conflict:
    """A paper the reviewers decided differently, with every current decision on it (reasons and notes), for the
    one who settles it."""

    paper: ListedRow
    decisions: tuple[ReviewerDecision, ...]


def list_conflicts(store: Store, topic: Topic, *, stage: Stage = Stage.TITLE_ABSTRACT,
                   limit: int | None = None) -> list[Conflict]:
    """The topic's papers in conflict at `stage`, newest first seen first."""
    rule = rule_for(store, topic, stage)
    listed = list(walk_topic(store, topic.slug, rule, filters=PaperFilter(state=State.CONFLICT), limit=limit))
    current = current_decisions(store, [topic.slug], [row.pmid for row in listed], stage=stage)
    return [Conflict(row, tuple(current.get((topic.slug, row.pmid), ()))) for row in listed]


def highlight_terms(topic: Topic) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The words the screening page marks: (for inclusion: the query's words and the topic's `highlight.include`;
    against it: `highlight.exclude`). The query's words lose PubMed's field tags, operators, quotes and wildcards."""
    query = re.sub(r"\[[^\]]*\]", " ", topic.query)
    words = re.findall(r"[A-Za-z][A-Za-z0-9-]{2,}", query.replace("*", " "))
    operators = {"and", "or", "not"}
    include = [word for word in words if word.lower() not in operators]
    return (tuple(dict.fromkeys([*topic.highlight.include, *include])),
            tuple(dict.fromkeys(topic.highlight.exclude)))


# -- the queue ---------------------------------------------------------------------------------

QUEUE = ScreeningQueue()


def next_to_screen(store: Store, topic: Topic, reviewer: str, *, ranked: bool, waiting: int,
                   current: ListedRow | None = None, stage: Stage = Stage.TITLE_ABSTRACT,
                   mark: int | None = None) -> ListedRow | None:
    """The paper `reviewer` screens next at `stage` (after `current`, the one on screen, when given).

    A ranked topic follows the queue's policy (tracker/review/ranking/queue.py, the one the benchmark measures):
    the most relevant waiting paper, or now and then one from the lower-scored half, drawn with a seed of the topic,
    the reviewer, the topic's newest decision and the paper on screen, so that reloading a page shows the same paper
    and each decision moves the queue on. Otherwise (and always at the full text, which has few papers) the newest
    first seen after `current`, wrapping round to the newest still waiting. `waiting`: how many papers wait for the
    reviewer (the page has counted them); `mark`: the topic's newest decision id, when the page has read it."""
    import random

    rule = rule_for(store, topic, stage)
    skip = current.pmid if current is not None else None
    if ranked and stage == Stage.TITLE_ABSTRACT:
        mark = mark if mark is not None else latest_decision_id(store, topic.slug)
        draw = random.Random(f"{topic.slug}/{reviewer}/{mark}/{skip}")
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


def screened_by(store: Store, topic: Topic, reviewer: str, stage: Stage = Stage.TITLE_ABSTRACT) -> int:
    """How many of the topic's papers at `stage` are out of `reviewer`'s queue."""
    return screened_count(store, topic.slug, rule_for(store, topic, stage), reviewer)


def reached_total(store: Store, topic: Topic, stage: Stage) -> int:
    """How many of the topic's papers are at `stage` (all of them at the first; at full text, those included by title
    and abstract)."""
    from tracker.store.listing import count_reached
    from tracker.store.membership import member_counts

    if stage == Stage.TITLE_ABSTRACT:
        return member_counts(store, [topic.slug])[topic.slug]
    return count_reached(store, topic.slug, rule_for(store, topic, stage))


# The estimate reads every decision of the topic, and the screening page shows it on every request: with 20
# reviewers at once it took a third of the server's time (py-spy, benchmark 14). It changes only with a decision or
# the topic's papers, so it is kept until either does; the screening page may also take one a second or two old.
_LEFT_KEPT = 256
_left_kept: dict[tuple, tuple[int, float, str]] = {}
_left_lock = threading.Lock()
_left_making: set[tuple] = set()  # estimates being made now


def what_is_left(store: Store, topic: Topic, *, fresh_within: float = 0.0, mark: int | None = None) -> str:
    """While a topic is screened in relevance order: how many relevant papers are likely left among the unscreened,
    and whether it is safe to stop (tracker/review/stopping.py). The history is the topic's papers in the order they
    were first decided, a paper relevant when it stands included, maybe or in conflict (the conservative side).
    `fresh_within`: seconds an estimate made before the latest decisions may still be given (0: never); `mark`: the
    topic's newest decision id, when the caller has read it."""
    from tracker.review.stopping import describe, estimate_stopping
    from tracker.store.decisions import decision_order
    from tracker.store.membership import member_counts

    papers = member_counts(store, [topic.slug])[topic.slug]
    key = (store.url, topic.slug, topic.screening, papers)
    latest = mark if mark is not None else latest_decision_id(store, topic.slug)
    with _left_lock:
        kept = _left_kept.get(key)
        if kept is not None and (kept[0] == latest or time.monotonic() - kept[1] < fresh_within
                                 or (fresh_within and key in _left_making)):
            return kept[2]  # fresh enough, or being made again by another request: the pages do not all redo it
        _left_making.add(key)
    said = None
    try:
        rule = rule_for(store, topic)
        order = decision_order(store, topic.slug)
        rows = summaries(store, topic.slug, order)
        decided = [rule.state(rows.get(pmid)) for pmid in order]
        history = [state in (State.INCLUDED, State.MAYBE, State.CONFLICT) for state in decided if state not in OPEN]
        said = describe(estimate_stopping(history, papers))
        return said
    finally:
        with _left_lock:
            _left_making.discard(key)
            if said is not None:
                if len(_left_kept) >= _LEFT_KEPT:
                    _left_kept.clear()
                _left_kept[key] = (latest, time.monotonic(), said)


def included_in(store: Store, topics: Sequence[Topic], pmids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    """The topics (of `topics`) whose screening has included each paper (by title and abstract, as a review's
    included set starts); papers included nowhere are absent."""
    from tracker.store.decisions import summaries_of

    by_slug = {topic.slug: topic for topic in topics}
    rules = {slug: rule_for(store, topic) for slug, topic in by_slug.items()}
    found: dict[int, list[str]] = {}
    for (slug, pmid), summary in sorted(summaries_of(store, list(by_slug), pmids).items()):
        if rules[slug].state(summary) == State.INCLUDED:
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
            "note": decision.note, "resolves": decision.resolves, "decided_at": format_utc(decision.decided_at),
            "stage": str(decision.stage)}


def screening_record(row: ScreeningRow) -> dict:
    """A listed paper as plain values (the JSON of `tracker screen list`)."""
    paper, screening = row.paper, row.screening
    return {
        "pmid": paper.pmid, "title": paper.title, "authors": paper.authors, "journal": paper.journal,
        "year": paper.year, "status": paper.status or "", "first_seen": format_utc(row.first_seen_at),
        "topic": screening.topic, "stage": str(screening.stage), "state": screening.state,
        "reasons": list(screening.reasons),
        "decisions": [decision_record(d) for d in screening.decisions], "hidden_decisions": screening.hidden,
        "other_topics": dict(row.other_topics), "pubmed_url": pubmed_url(paper.pmid),
        "relevance": format_relevance(row.relevance),
    }


__all__ = ["default_reviewer", "check_reviewer", "check_account", "check_note", "NOTE_LIMIT", "reasons_of",
    "rule_for", "resolve_reasons", "undo_last", "describe_reasons", "decide", "check_resolvable", "check_reached",
    "UndoRaced", "check_state", "count_states", "PaperScreening", "view_of", "visible_history", "screening_of",
    "paper_stages", "describe_decision", "describe_pmids", "ScreeningRow", "list_screening", "screening_record",
    "decision_record", "describe_decision_record", "included_in", "with_included_first", "Conflict",
    "list_conflicts", "highlight_terms", "reached_total", "what_is_left", "next_to_screen", "screened_by", "QUEUE"]
