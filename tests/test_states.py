"""Each screening rule's Python side and SQL side agree (tracker/review/states.py), on generated decisions and on
both back ends: the state, a reviewer's view of it, whether the paper waits for them, and the state counts."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest
from sqlalchemy import and_, select

from tests.test_store import make_paper
from tracker.review.states import DECISIONS_AT, OPEN, STAGES, WITHDRAWN, ScreeningRule, Stage, State, check_state
from tracker.store.decisions import NewDecision, save_decisions, state_counts, summaries
from tracker.store.models import CurrentDecision, Screening, TopicPaper
from tracker.store.papers import save_papers

REVIEWERS = ("ana", "ben", "cy")
RULES = (ScreeningRule(1, False), ScreeningRule(1, True), ScreeningRule(2, False), ScreeningRule(2, True),
         ScreeningRule(3, True), ScreeningRule(2, True, names=("ana", "ben")), ScreeningRule(2, False, names=("ben", "cy")),
         ScreeningRule(2, True, names=("ana",)))  # the last: one of two reviewers assigned so far (reviewers = 2)
PAPERS = 80
SEEDS = (0, 1, 2)


def decide_at_random(store, topic: str, seed: int) -> None:
    """Rounds of random decisions on the topic's papers: any reviewers, any decisions, now and then a resolution,
    a change of mind or a withdrawal, as the screening commands and the web app write them."""
    draw = random.Random(seed)
    for _ in range(3):
        batch = []
        for pmid in range(1, PAPERS + 1):
            for reviewer in draw.sample(REVIEWERS, draw.randint(0, 2)):
                stage = draw.choice(STAGES)
                decision = draw.choice((*DECISIONS_AT[stage], WITHDRAWN)) if draw.random() < 0.9 else WITHDRAWN
                reasons = ("wrong population",) if decision == "exclude" and draw.random() < 0.5 else ()
                batch.append(NewDecision(pmid=pmid, reviewer=reviewer, decision=decision, reasons=reasons,
                                         resolves=decision != WITHDRAWN and draw.random() < 0.1, stage=stage))
        save_decisions(store, topic, batch)


def in_sql(store, topic: str, rule: ScreeningRule, viewer: str | None) -> dict[int, tuple[str, str, bool]]:
    membership, screening, current = TopicPaper.__table__, Screening.__table__, CurrentDecision.__table__
    mine = current.alias("mine")
    joined = (membership.outerjoin(screening, and_(screening.c.topic == membership.c.topic,
                                                   screening.c.pmid == membership.c.pmid,
                                                   screening.c.stage == rule.stage))
              .outerjoin(mine, and_(mine.c.topic == membership.c.topic, mine.c.pmid == membership.c.pmid,
                                    mine.c.stage == rule.stage, mine.c.reviewer == (viewer or ""))))
    statement = (select(membership.c.pmid, rule.state_sql(screening), rule.view_sql(screening, mine),
                        rule.waiting_sql(screening, mine))
                 .select_from(joined).where(membership.c.topic == topic))
    with store.engine.connect() as connection:
        return {pmid: (state, view, bool(waiting)) for pmid, state, view, waiting in connection.execute(statement)}


def in_python(store, topic: str, rule: ScreeningRule, viewer: str | None) -> dict[int, tuple[str, str, bool]]:
    rows = summaries(store, topic, stage=rule.stage)
    current = CurrentDecision.__table__
    with store.engine.connect() as connection:
        decided = set(connection.execute(select(current.c.pmid).where(
            current.c.topic == topic, current.c.stage == rule.stage, current.c.reviewer == (viewer or ""))).scalars())
    return {pmid: (rule.state(rows.get(pmid)), rule.view(rows.get(pmid), mine=pmid in decided),
                   rule.waiting(rows.get(pmid), mine=pmid in decided))
            for pmid in range(1, PAPERS + 1)}


@pytest.fixture
def decided(store):
    for seed in SEEDS:
        save_papers(store, [make_paper(pmid) for pmid in range(1, PAPERS + 1)], topic=f"t{seed}")
        decide_at_random(store, f"t{seed}", seed)
    return store


def test_every_rule_says_the_same_in_python_and_in_sql(decided):
    seen: Counter[str] = Counter()
    for seed in SEEDS:
        for rule in (*RULES, *(replace(rule, stage=Stage.FULL_TEXT) for rule in RULES)):
            for viewer in (None, "ana", "ben"):
                expected = in_python(decided, f"t{seed}", rule, viewer)
                assert in_sql(decided, f"t{seed}", rule, viewer) == expected, (seed, rule, viewer)
                seen.update(state for state, _, _ in expected.values())
    assert set(seen) == set(State)  # the generated decisions reach every state of both stages


def test_state_counts_add_up_the_rule_over_the_topic(decided):
    for seed in SEEDS:
        for rule in (*RULES, *(replace(rule, stage=Stage.FULL_TEXT) for rule in RULES)):
            # A reader who decides nothing sees a blind topic's open papers unscreened (the view with no decision).
            expected = Counter(view for _, view, _ in in_python(decided, f"t{seed}", rule, None).values())
            assert state_counts(decided, f"t{seed}", rule) == dict(expected)
            for viewer in ("ana", "cy"):
                seen = Counter(view for _, view, _ in in_python(decided, f"t{seed}", rule, viewer).values())
                assert state_counts(decided, f"t{seed}", rule, viewer=viewer) == dict(seen)


def test_a_blind_reviewer_sees_an_open_paper_by_their_own_decision_alone():
    class Summary:
        latest, latest_reasons, resolution, resolution_reasons = "include", [], None, []
        votes, agreed, agreed_reasons = 1, "include", []
        votes_by, vote_reasons = {"ana": "include"}, {"ana": []}

    rule = ScreeningRule(2, blind=True)
    assert rule.state(Summary()) == State.AWAITING and rule.state(Summary()) in OPEN
    assert (rule.view(Summary(), mine=False), rule.view(Summary(), mine=True)) == (State.UNSCREENED, State.AWAITING)
    assert ScreeningRule(2, blind=False).view(Summary(), mine=False) == State.AWAITING
    assert (rule.waiting(Summary(), mine=False), rule.waiting(Summary(), mine=True)) == (True, False)
    assert rule.state(None) == State.UNSCREENED and rule.reasons(None) == ()


def test_an_unknown_state_is_refused_with_the_names_there_are():
    from tracker.errors import ConfigError

    assert check_state("included") == State.INCLUDED
    with pytest.raises(ConfigError) as refused:
        check_state("accepted")
    assert str(refused.value) == ("unknown screening state 'accepted': use one of unscreened, awaiting, included, "
                                  "excluded, maybe, conflict")


def test_the_command_lines_choices_are_the_libraries_states_and_orders():
    from tracker.cli.base import SCREENING_STATES, SORT_ORDERS
    from tracker.cli.base import STAGES as CLI_STAGES
    from tracker.review.states import STAGES
    from tracker.store.listing import SORTS

    assert (SCREENING_STATES, SORT_ORDERS, CLI_STAGES) == (tuple(State), SORTS, STAGES)
