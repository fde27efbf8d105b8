"""The stopping estimate (tracker/review/stopping.py): the hypergeometric test by hand, the knee, the sentences, and
the promise on simulated screening of a real dataset."""

from __future__ import annotations

import math
import random

import pytest

from tests.conftest import REPO
from tracker.review import stopping
from tracker.review.stopping import StoppingEstimate, TooFewDecisions

COHEN = REPO.parent / "shared" / "screening-datasets" / "cohen-2006"


def all_runs_p_value(history: list[bool], total: int, target: float) -> float:
    """Callaghan and Müller-Hansen's p-value as buscarpy computes it: every run of the last 1 .. n records."""
    from scipy.stats import hypergeom

    found, screened = sum(history), len(history)
    smallest = 1.0
    for length in range(1, screened + 1):
        in_run = sum(history[screened - length:])
        least = math.floor(found / target + 1 - (found - in_run))
        smallest = min(smallest, float(hypergeom.cdf(in_run, total - screened + length, least, length)))
    return smallest


def test_p_value_by_hand():
    # Found 1, then 2 irrelevant, 2 unscreened; target 1/2: H0 says at least 3 relevant, 2 of them unscreened.
    # The last 2 records drawn from themselves and the unscreened (4, 2 relevant) with none relevant: 1/6;
    # the last 1: 2/3 x ... = 1/3; all 3 from 5 holding 3 with at most 1 relevant: (0 + 3 x 1) / 10.
    assert stopping.hypergeometric_p_value([True, False, False], 5, 0.5) == pytest.approx(min(1 / 6, 1 / 3, 3 / 10))
    # Found 4, then 40 irrelevant, 6 unscreened; target 0.8: H0 needs 2 of the 6; the last 40 drawn from 46.
    assert stopping.hypergeometric_p_value([True] * 4 + [False] * 40, 50, 0.8) == pytest.approx(
        math.comb(44, 40) / math.comb(46, 40))


def test_the_p_value_is_the_all_runs_formula():
    draw = random.Random(7)
    for _ in range(40):
        screened = draw.randint(1, 120)
        total = screened + draw.randint(1, 400)
        rate = draw.choice([0.05, 0.3, 0.7])
        history = [draw.random() < rate * (1 - position / screened) for position in range(screened)]
        for target in (0.8, 0.9, 0.95):
            assert stopping.hypergeometric_p_value(history, total, target) == pytest.approx(
                all_runs_p_value(history, total, target), rel=1e-9, abs=1e-15)


def test_recall_exactly_at_the_target_is_not_below_it():
    # 18 found at target 0.9: 20 relevant would be exactly 90 %, so H0 needs 21, the 3 unscreened all relevant,
    # and none of them in the last 20 drawn from 23: 1 / C(23, 20). With 1 unscreened, H0 is impossible.
    history = [True] * 18 + [False] * 20
    assert stopping.hypergeometric_p_value(history, 41, 0.9) == pytest.approx(1 / math.comb(23, 20))
    assert stopping.hypergeometric_p_value(history, 39, 0.9) == 0.0


def test_hypergeometric_cdf_matches_scipy():
    from scipy.stats import hypergeom

    draw = random.Random(11)
    for _ in range(2000):
        population = draw.randint(1, 5000)
        successes, draws = draw.randint(0, population), draw.randint(0, population)
        drawn = draw.randint(-1, min(draws, successes) + 1)
        assert stopping.hypergeometric_cdf(drawn, population, successes, draws) == pytest.approx(
            float(hypergeom.cdf(drawn, population, successes, draws)), rel=1e-9, abs=1e-12)


def test_estimate_by_hand():
    # Found 1, then 9 irrelevant; 10 unscreened. With m more relevant, none in the last 9 drawn from 19 has
    # probability C(19 - m, 9) / C(19, 9): m = 1: 10/19, 2: 90/342, 3: 0.124, 4: 0.0542, 5: 0.0217.
    estimate = stopping.estimate_stopping([True] + [False] * 9, 20, min_decisions=10)
    assert estimate == StoppingEstimate(method="hypergeometric", screened=10, unscreened=10, found=1,
                                        estimated_remaining=1, remaining_upper=4, target_recall=0.95,
                                        confidence=0.95, p_value=pytest.approx(10 / 19), slope_ratio=9.0,
                                        safe_to_stop=False)
    assert (estimate.estimated_recall, estimate.recall_lower_bound) == (0.5, 0.2)
    assert stopping.remaining_upper_bound([True] + [False] * 9, 20) == 4
    assert stopping.remaining_upper_bound([True] + [False] * 9, 20, confidence=0.5) == 1


def test_the_bound_and_the_test_agree():
    draw = random.Random(5)
    for _ in range(30):
        screened = draw.randint(30, 200)
        history = [draw.random() < 0.4 * (1 - position / screened) ** 3 for position in range(screened)]
        estimate = stopping.estimate_stopping(history, screened + draw.randint(1, 300), target_recall=0.9)
        assert isinstance(estimate, StoppingEstimate)
        assert estimate.safe_to_stop == (estimate.recall_lower_bound >= 0.9)
        assert estimate.estimated_remaining <= estimate.remaining_upper <= estimate.unscreened


def test_nothing_screened_is_too_few_decisions():
    assert stopping.estimate_stopping([], 1_204) == TooFewDecisions(screened=0, needed=20)
    assert stopping.estimate_stopping([True] * 19, 1_204) == TooFewDecisions(screened=19, needed=1)
    assert stopping.estimate_stopping([False] * 3, 5) == TooFewDecisions(screened=3, needed=2)
    assert stopping.describe(TooFewDecisions(screened=0, needed=20)) == (
        "too few decisions in relevance order to estimate what is left: 20 more")
    assert not TooFewDecisions(screened=0, needed=20).safe_to_stop


def test_everything_screened():
    estimate = stopping.estimate_stopping([True] * 3 + [False] * 27, 30)
    assert isinstance(estimate, StoppingEstimate)
    assert (estimate.unscreened, estimate.estimated_remaining, estimate.remaining_upper, estimate.p_value,
            estimate.safe_to_stop) == (0, 0, 0, 0.0, True)
    assert estimate.recall_lower_bound == 1.0
    assert stopping.describe(estimate) == "every record screened (30): all 3 relevant papers found"
    nothing = stopping.estimate_stopping([False] * 30, 30)
    assert stopping.describe(nothing) == "every record screened (30): no relevant paper among them"
    assert stopping.describe(stopping.estimate_stopping([True] + [False] * 29, 30)) == (
        "every record screened (30): all 1 relevant paper found")


def test_no_inclusions_yet():
    # None of 30 relevant, 70 unscreened: m relevant left leave none in the 30 with probability C(100 - m, 30) /
    # C(100, 30): 0.70 for 1, 0.488 for 2, ..., 0.0507 for 8, 0.0342 for 9.
    estimate = stopping.estimate_stopping([False] * 30, 100)
    assert isinstance(estimate, StoppingEstimate)
    assert (estimate.found, estimate.estimated_remaining, estimate.remaining_upper) == (0, 1, 8)
    assert estimate.p_value == pytest.approx(0.7)
    assert (estimate.estimated_recall, estimate.recall_lower_bound) == (0.0, 0.0)
    assert stopping.describe(estimate) == ("no relevant paper found yet (about 1 left among 70 unscreened, at most 8, "
                                           "with 95 % confidence): keep screening for the 95 % target")
    # 95 of 100 screened, none relevant: one left would be in the last 95 with probability 0.95 (0.05 not to be).
    emptied = stopping.estimate_stopping([False] * 95, 100)
    assert stopping.describe(emptied) == ("no relevant paper found yet (probably none left among 5 unscreened, at most "
                                          "1, with 95 % confidence): keep screening for the 95 % target")
    assert stopping.describe(stopping.estimate_stopping([False] * 96, 100)) == (
        "no relevant paper found yet (none left among 4 unscreened, with 95 % confidence): safe to stop at the 95 % "
        "target")


def test_all_inclusions():
    estimate = stopping.estimate_stopping([True] * 30, 100)
    assert isinstance(estimate, StoppingEstimate)
    assert (estimate.found, estimate.estimated_remaining, estimate.remaining_upper, estimate.p_value,
            estimate.safe_to_stop) == (30, 70, 70, 1.0, False)
    assert stopping.describe(estimate) == (
        "an estimated 30 % of the relevant papers found (about 70 left among 70 unscreened, at most 70); 95 % "
        "confidence that at least 30 % are: keep screening for the 95 % target")


def test_the_sentences():
    def ranked(irrelevant_at_the_end: int) -> list[bool]:  # 71 found, 1,204 unscreened
        return [True] * 60 + [True, False] * 10 + [False] * 400 + [True] + [False] * irrelevant_at_the_end

    assert stopping.describe(stopping.estimate_stopping(ranked(300), 781 + 1_204)) == (
        "an estimated 95 % of the relevant papers found (about 3 left among 1,204 unscreened, at most 9); 95 % "
        "confidence that at least 88 % are: keep screening for the 95 % target")
    assert stopping.describe(stopping.estimate_stopping(ranked(700), 1_181 + 1_204)) == (
        "an estimated 98 % of the relevant papers found (about 1 left among 1,204 unscreened, at most 6); 95 % "
        "confidence that at least 92 % are: keep screening for the 95 % target")
    assert stopping.describe(stopping.estimate_stopping(ranked(700), 1_181 + 1_204, target_recall=0.9)) == (
        "an estimated 98 % of the relevant papers found (about 1 left among 1,204 unscreened, at most 6); 95 % "
        "confidence that at least 92 % are: safe to stop at the 90 % target")
    assert stopping.describe(stopping.estimate_stopping([True] * 4 + [False] * 40, 50, target_recall=0.8)) == (
        "an estimated 100 % of the relevant papers found (probably none left among 6 unscreened, at most 1); 95 % "
        "confidence that at least 80 % are: safe to stop at the 80 % target")
    assert stopping.describe(stopping.estimate_stopping([True] * 4 + [False] * 60, 65)) == (
        "an estimated 100 % of the relevant papers found (none left among 1 unscreened); 95 % confidence that all "
        "are: safe to stop at the 95 % target")
    assert stopping.describe(stopping.estimate_stopping([True] * 10 + [False] * 146, 400, method="knee")) == (
        "an estimated 90 % of the relevant papers found (about 1 left among 244 unscreened, at most 6); 95 % "
        "confidence that at least 62 % are; the knee method says stop (slope ratio 146)")


def test_knee_slope_ratio_by_hand():
    # Gains 1, 2, 3, 3, ..., 3 over 10: the knee at 3 (farthest above the line to (10, 3)); rate 3/3 before it,
    # (0 + 1) / 7 after: 7.
    assert stopping.knee_slope_ratio([True] * 3 + [False] * 7) == 7.0
    assert stopping.knee_slope_ratio([False] * 10) == 0.0
    assert stopping.knee_slope_ratio([]) == 0.0
    # 10 found: stop at a slope ratio of 156 - 10 = 146, reached after 146 irrelevant records in a row.
    assert stopping.knee_says_stop([True] * 10 + [False] * 146)
    assert not stopping.knee_says_stop([True] * 10 + [False] * 145)
    assert not stopping.knee_says_stop([True] * 10 + [False] * 146, min_screened=157)


def test_maybe_counts_as_relevant():
    assert stopping.relevant_history(["include", "maybe", "exclude"]) == [True, True, False]
    with pytest.raises(ValueError) as refused:
        stopping.counts_as_relevant("relevant")
    assert str(refused.value) == "unknown decision 'relevant': a decision is one of include, maybe, exclude"


def test_arguments_are_checked():
    with pytest.raises(ValueError) as refused:
        stopping.estimate_stopping([False] * 3, 2)
    assert str(refused.value) == ("3 decisions among 2 records: the total counts every record of the topic, "
                                  "screened or not")
    with pytest.raises(ValueError) as refused:
        stopping.estimate_stopping([], 10, target_recall=1.5)
    assert str(refused.value) == "the target recall is a share above 0 and at most 1, not 1.5"
    with pytest.raises(ValueError) as refused:
        stopping.estimate_stopping([], 10, confidence=1.0)
    assert str(refused.value) == "the confidence is a share between 0 and 1, not 1.0"
    with pytest.raises(ValueError) as refused:
        stopping.estimate_stopping([], 10, method="quorum")
    assert str(refused.value) == "unknown stopping method 'quorum': use one of hypergeometric, knee"


@pytest.mark.slow
def test_on_simulated_screening_of_a_real_dataset_the_claim_holds():
    if not COHEN.is_dir():
        pytest.skip(f"screening datasets not found at {COHEN} (they are read in place, never copied)")
    from benchmarks import stopping as benchmark
    from benchmarks.ranking import load_dataset

    dataset = load_dataset(COHEN / "UrinaryIncontinence.csv")
    [rule] = [rule for rule in benchmark.rules() if rule.name == "hypergeometric test, target 95 %"]
    runs = [benchmark.evaluate_order(benchmark.simulate(dataset, seed), [rule]) for seed in range(RUNS)]
    recalls = [run.found_at[rule.name] / run.relevant for run in runs]
    # The test promises recall >= 95 % with 95 % confidence: in 5 runs, every one.
    assert [recall >= 0.95 for recall in recalls] == [True] * RUNS, recalls
    # A rule that never stops would keep that promise trivially: this one stops with records left in every run.
    assert [run.stopped_at[rule.name] < run.records for run in runs] == [True] * RUNS
    within = [held for run in runs for held in run.within_bound]
    assert sum(within) >= 0.95 * len(within)


RUNS = 5
