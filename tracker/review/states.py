"""Screening states and the rules that make them, each written once in Python and once in SQL, side by side.

A topic screens in two stages (Stage: by title and abstract, then the full text of the papers included there), and
each stage of its screening mode (one reviewer, or two; named in its file or the first two who decide; blind or not)
is a `ScreeningRule`. What a paper's current decisions at a stage add up to is its `screening` row (the summary the
store keeps: tracker/store/models.py `Screening`, with each reviewer's vote); the rule turns that row into a state:

    one reviewer     the latest decision: included, excluded or maybe (not-retrieved at full text); unscreened before
    dual             a resolution (a decision given with --resolve) settles the paper; else, once the reviewers the
                     rule counts have all decided, included / excluded / ... when they agree and conflict when they do
                     not; awaiting while fewer have; unscreened before any. A named pair counts its two alone: anyone
                     else's decision is no vote
    blind            until the paper is settled, a reviewer sees it unscreened when they have not decided it and
                     awaiting when they have, and nothing of the other decisions; a reader who decides nothing sees
                     an open paper unscreened
    waiting          a paper is in a reviewer's queue when they have not decided it and it is not settled (with
                     one reviewer: when nobody has decided it)

Each rule has a Python method (`state`, `view`, `waiting`) for a summary row read into memory and an `*_sql` twin
for a statement over the `screening` table (outer-joined: a paper without a row is unscreened). The store's
listings take the rule and never spell a state themselves; tests/test_states.py evaluates both sides on generated
decisions, at both stages and for named pairs, and checks that they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import and_, case, false, func, literal, or_, true
from sqlalchemy.sql.elements import ColumnElement

from tracker.store.decisions import WITHDRAWN
from tracker.topics import ScreeningMode, Topic


class Stage(StrEnum):
    """PRISMA's two screening stages: records by title and abstract, then reports by their full text."""

    TITLE_ABSTRACT = "title-abstract"
    FULL_TEXT = "full-text"


class Decision(StrEnum):
    """What a reviewer decides about a paper (not-retrieved: at full text only, the report could not be had)."""

    INCLUDE = "include"
    EXCLUDE = "exclude"
    MAYBE = "maybe"
    NOT_RETRIEVED = "not-retrieved"


class State(StrEnum):
    """Where a paper stands at a stage of a topic's screening."""

    UNSCREENED = "unscreened"
    AWAITING = "awaiting"
    INCLUDED = "included"
    EXCLUDED = "excluded"
    MAYBE = "maybe"
    CONFLICT = "conflict"
    NOT_RETRIEVED = "not-retrieved"


STAGES: tuple[str, ...] = tuple(Stage)
DECISIONS_AT: dict[Stage, tuple[str, ...]] = {
    Stage.TITLE_ABSTRACT: (Decision.INCLUDE, Decision.EXCLUDE, Decision.MAYBE),
    Stage.FULL_TEXT: (Decision.INCLUDE, Decision.EXCLUDE, Decision.NOT_RETRIEVED),
}
DECISIONS: tuple[str, ...] = DECISIONS_AT[Stage.TITLE_ABSTRACT]
STATES: tuple[str, ...] = tuple(state for state in State if state != State.NOT_RETRIEVED)  # title and abstract
STATES_AT: dict[Stage, tuple[str, ...]] = {Stage.TITLE_ABSTRACT: STATES, Stage.FULL_TEXT: tuple(State)}
STATE_OF: dict[str, State] = {Decision.INCLUDE: State.INCLUDED, Decision.EXCLUDE: State.EXCLUDED,
                              Decision.MAYBE: State.MAYBE, Decision.NOT_RETRIEVED: State.NOT_RETRIEVED}
OPEN: tuple[State, ...] = (State.UNSCREENED, State.AWAITING)  # not settled: the paper still waits for a reviewer


class Summary(Protocol):
    """A `screening` row (tracker/store/models.py) as the rules read it."""

    latest: str | None
    latest_reasons: Any
    resolution: str | None
    resolution_reasons: Any
    votes: int
    agreed: str | None
    agreed_reasons: Any
    votes_by: Any
    vote_reasons: Any


def _state_of_sql(column) -> ColumnElement:
    return case(*((column == decision, literal(str(state))) for decision, state in STATE_OF.items()), else_=None)


@dataclass(frozen=True)
class ScreeningRule:
    """The rules of one stage of a topic's screening. `names`: the reviewers whose decisions are its votes (the
    topic file's list, or for `reviewers = 2` the first two who decided: tracker/review/screening.py `rule_for`);
    a decision by anyone else settles nothing unless given as a resolution. Without names (a rule made from the
    file alone) every reviewer's decision is a vote. `previous`: the rule of the stage before, whose included papers
    are this stage's."""

    reviewers: int = 1
    blind: bool = False
    names: tuple[str, ...] = ()
    stage: Stage = Stage.TITLE_ABSTRACT
    previous: ScreeningRule | None = None
    named: bool = False  # the topic file names the reviewers (else `names` are those assigned so far)

    @classmethod
    def of(cls, topic: Topic | ScreeningMode, *, names: Sequence[str] = ()) -> ScreeningRule:
        """The rules of the first stage; `names`, the reviewers assigned when the file only counts them."""
        mode = topic.screening if isinstance(topic, Topic) else topic
        chosen = tuple(mode.names) if mode.names else tuple(names)
        return cls(reviewers=mode.reviewers, blind=mode.blind, names=chosen[:mode.reviewers], named=bool(mode.names))

    def later(self, stage: Stage, *, names: Sequence[str] = ()) -> ScreeningRule:
        """The rules of a later stage, which screens the papers this one includes."""
        return replace(self, stage=stage, previous=self, names=self.names if self.names and not names else
                       tuple(names)[:self.reviewers])

    @property
    def dual(self) -> bool:
        return self.reviewers > 1

    def counts(self, reviewer: str) -> bool:
        """Whether `reviewer`'s decisions are votes of this rule: a named reviewer's, or while the count form still
        has a seat free (`reviewers = 2` with fewer than two who decided), anyone's."""
        return not self.names or reviewer in self.names or (not self.named and len(self.names) < self.reviewers)

    # -- the state -----------------------------------------------------------------------------------

    def votes(self, summary: Summary) -> dict[str, str]:
        """The votes that count, by reviewer."""
        given = dict(summary.votes_by or {})
        return {name: given[name] for name in self.names if name in given} if self.names else given

    def state(self, summary: Summary | None) -> State:
        if summary is None:
            return State.UNSCREENED
        if not self.dual:
            return STATE_OF.get(summary.latest or "", State.UNSCREENED)
        if summary.resolution is not None:
            return STATE_OF[summary.resolution]
        votes = self.votes(summary)
        if len(votes) >= self.reviewers:
            kinds = set(votes.values())
            return STATE_OF[kinds.pop()] if len(kinds) == 1 else State.CONFLICT
        return State.AWAITING if votes else State.UNSCREENED

    def state_sql(self, screening) -> ColumnElement:
        if not self.dual:
            return func.coalesce(_state_of_sql(screening.c.latest), str(State.UNSCREENED))
        if not self.names:
            return case(
                (screening.c.resolution.is_not(None), _state_of_sql(screening.c.resolution)),
                (screening.c.votes >= self.reviewers,
                 func.coalesce(_state_of_sql(screening.c.agreed), str(State.CONFLICT))),
                (screening.c.votes >= 1, str(State.AWAITING)),
                else_=str(State.UNSCREENED),
            )
        votes = [screening.c.votes_by[name].as_string() for name in self.names]
        everyone = and_(*(vote.is_not(None) for vote in votes)) if len(votes) >= self.reviewers else false()
        agreed = and_(*(vote == votes[0] for vote in votes[1:])) if len(votes) > 1 else true()
        return case(
            (screening.c.resolution.is_not(None), _state_of_sql(screening.c.resolution)),
            (everyone, case((agreed, _state_of_sql(votes[0])), else_=str(State.CONFLICT))),
            (or_(*(vote.is_not(None) for vote in votes)), str(State.AWAITING)),
            else_=str(State.UNSCREENED),
        )

    def settled(self, summary: Summary | None) -> bool:
        """Whether every reviewer the mode asks for has decided the paper (or a resolution settled it)."""
        return self.state(summary) not in OPEN

    # -- what one reviewer sees --------------------------------------------------------------------

    def view(self, summary: Summary | None, *, mine: bool) -> State:
        """The state as a reviewer may see it; `mine`: whether they have a current decision on the paper."""
        state = self.state(summary)
        if self.blind and state in OPEN:
            return State.AWAITING if mine else State.UNSCREENED
        return state

    def view_sql(self, screening, mine) -> ColumnElement:
        """`view` over `screening` and `mine`, the reviewer's `current_decision` row (outer-joined); `mine` None: a
        reader who decides nothing (in blind screening an open paper is unscreened to them: nothing says whether
        anyone has decided it)."""
        state = self.state_sql(screening)
        if not self.blind:
            return state
        if mine is None:
            return case((state.in_([str(s) for s in OPEN]), str(State.UNSCREENED)), else_=state)
        return case((state.in_([str(s) for s in OPEN]),
                     case((mine.c.decision.is_(None), str(State.UNSCREENED)), else_=str(State.AWAITING))),
                    else_=state)

    def waiting(self, summary: Summary | None, *, mine: bool) -> bool:
        """Whether the paper is in the reviewer's queue."""
        if not self.dual:
            return summary is None or summary.latest is None
        return not mine and self.state(summary) in OPEN

    def waiting_sql(self, screening, mine) -> ColumnElement:
        if not self.dual:
            return screening.c.latest.is_(None)
        return and_(mine.c.decision.is_(None), self.state_sql(screening).in_([str(s) for s in OPEN]))

    # -- what a settled state rests on -------------------------------------------------------------

    def reasons(self, summary: Summary | None) -> tuple[str, ...]:
        """The exclusion reasons behind the state (empty unless it is excluded), the first one first."""
        if summary is None or self.state(summary) != State.EXCLUDED:
            return ()
        if not self.dual:
            return tuple(summary.latest_reasons or ())
        if summary.resolution is not None:
            return tuple(summary.resolution_reasons or ())
        if not self.names:
            return tuple(summary.agreed_reasons or ())
        given = summary.vote_reasons or {}
        return tuple(dict.fromkeys(reason for name in self.names for reason in given.get(name, ())))


def check_state(state: str | None, stage: Stage = Stage.TITLE_ABSTRACT) -> State | None:
    """`state` as a State of `stage`; a name that is none is refused in one line."""
    from tracker.errors import ConfigError

    if state is None:
        return None
    if state not in STATES_AT[stage]:
        raise ConfigError(f"unknown screening state {state!r}: use one of {', '.join(STATES_AT[stage])}"
                          + (" (not-retrieved is a full-text state: add --stage full-text)"
                             if state == State.NOT_RETRIEVED else ""))
    return State(state)


__all__ = ["Stage", "Decision", "State", "STAGES", "DECISIONS", "DECISIONS_AT", "STATES", "STATES_AT", "STATE_OF", "OPEN",
           "WITHDRAWN", "Summary", "ScreeningRule", "check_state"]
