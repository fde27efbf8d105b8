"""Screening states and the rules that make them, each written once in Python and once in SQL, side by side.

A topic's screening mode (one reviewer, or dual; blind or not: `screening = { reviewers = 2, blind = true }` in
its file) is a `ScreeningRule`. What a paper's current decisions add up to is its `screening` row (the summary
the store keeps: tracker/store/models.py `Screening`); the rule turns that row into a state:

    one reviewer     the latest decision: included, excluded or maybe; unscreened before any
    dual             a resolution (a decision given with --resolve) settles the paper; else, once as many
                     reviewers as the mode asks for have decided, included / excluded / maybe when they agree
                     and conflict when they do not; awaiting while fewer have; unscreened before any
    blind            until the paper is settled, a reviewer sees it unscreened when they have not decided it and
                     awaiting when they have, and nothing of the other decisions
    waiting          a paper is in a reviewer's queue when they have not decided it and it is not settled (with
                     one reviewer: when nobody has decided it)

Each rule has a Python method (`state`, `view`, `waiting`) for a summary row read into memory and an `*_sql` twin
for a statement over the `screening` table (outer-joined: a paper without a row is unscreened). The store's
listings take the rule and never spell a state themselves; tests/test_states.py evaluates both sides on generated
decisions and checks that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import and_, case, func, literal
from sqlalchemy.sql.elements import ColumnElement

from tracker.store.decisions import WITHDRAWN
from tracker.topics import ScreeningMode, Topic


class Decision(StrEnum):
    """What a reviewer decides about a paper."""

    INCLUDE = "include"
    EXCLUDE = "exclude"
    MAYBE = "maybe"


class State(StrEnum):
    """Where a paper stands in a topic's screening."""

    UNSCREENED = "unscreened"
    AWAITING = "awaiting"
    INCLUDED = "included"
    EXCLUDED = "excluded"
    MAYBE = "maybe"
    CONFLICT = "conflict"


DECISIONS: tuple[str, ...] = tuple(Decision)
STATES: tuple[str, ...] = tuple(State)
STATE_OF: dict[str, State] = {Decision.INCLUDE: State.INCLUDED, Decision.EXCLUDE: State.EXCLUDED,
                              Decision.MAYBE: State.MAYBE}
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


def _state_of_sql(column) -> ColumnElement:
    return case(*((column == decision, literal(str(state))) for decision, state in STATE_OF.items()), else_=None)


@dataclass(frozen=True)
class ScreeningRule:
    """The rules of one topic's screening mode; `ScreeningRule.of(topic)` reads them from its file."""

    reviewers: int = 1
    blind: bool = False

    @classmethod
    def of(cls, topic: Topic | ScreeningMode) -> ScreeningRule:
        mode = topic.screening if isinstance(topic, Topic) else topic
        return cls(reviewers=mode.reviewers, blind=mode.blind)

    @property
    def dual(self) -> bool:
        return self.reviewers > 1

    # -- the topic-level state ---------------------------------------------------------------------

    def state(self, summary: Summary | None) -> State:
        if summary is None:
            return State.UNSCREENED
        if not self.dual:
            return STATE_OF.get(summary.latest or "", State.UNSCREENED)
        if summary.resolution is not None:
            return STATE_OF[summary.resolution]
        if summary.votes >= self.reviewers:
            return STATE_OF[summary.agreed] if summary.agreed else State.CONFLICT
        return State.AWAITING if summary.votes >= 1 else State.UNSCREENED

    def state_sql(self, screening) -> ColumnElement:
        if not self.dual:
            return func.coalesce(_state_of_sql(screening.c.latest), str(State.UNSCREENED))
        return case(
            (screening.c.resolution.is_not(None), _state_of_sql(screening.c.resolution)),
            (screening.c.votes >= self.reviewers, func.coalesce(_state_of_sql(screening.c.agreed), str(State.CONFLICT))),
            (screening.c.votes >= 1, str(State.AWAITING)),
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
        """`view` over `screening` and `mine`, the reviewer's `current_decision` row (outer-joined); `mine`
        None: the overall state."""
        state = self.state_sql(screening)
        if not self.blind or mine is None:
            return state
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
        """The exclusion reasons behind the topic-level state (empty unless it is excluded)."""
        if summary is None or self.state(summary) != State.EXCLUDED:
            return ()
        if not self.dual:
            return tuple(summary.latest_reasons or ())
        chosen = summary.resolution_reasons if summary.resolution is not None else summary.agreed_reasons
        return tuple(chosen or ())


def check_state(state: str | None) -> State | None:
    """`state` as a State; a name that is none is refused in one line."""
    from tracker.errors import ConfigError

    if state is None:
        return None
    if state not in STATES:
        raise ConfigError(f"unknown screening state {state!r}: use one of {', '.join(STATES)}")
    return State(state)


__all__ = ["Decision", "State", "DECISIONS", "STATES", "STATE_OF", "OPEN", "WITHDRAWN", "Summary", "ScreeningRule",
           "check_state"]
