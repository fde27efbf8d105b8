"""Benchmark 10: when to stop screening in relevance order (tracker/review/stopping.py), on the Cohen 2006 data.

Each run screens a whole dataset in the order of benchmarks/ranking.py's screening simulation (protocol (b):
a seeded random order until the tracker's cold start is met, then the tracker's model retrained after every
10 decisions and its 10 best-scored unscreened records screened next; `screened_in_order`), label1 = I as
relevant, seeds 0, 1, .... After every decision, from the first, each stopping rule is asked whether to stop;
its first "stop" ends its run there. Per rule and dataset, over the runs: the recall reached at that stop (mean
and the lowest), the runs whose recall at the stop reached the rule's target (the claim held), the work saved
(1 - screened / records: mean, lowest, highest) and the earliest stop. A rule that never says stop screens
everything (recall 1, nothing saved).

The rules: Callaghan and Müller-Hansen's hypergeometric test at 95 % confidence, for a target recall of 95 % and
of 90 % (the claim: recall >= target with 95 % confidence, so it should hold in at least 95 % of runs); the knee
method of Cormack and Grossman (slope ratio >= 156 - min(relevant found, 150) once 150 records are screened),
judged beside both targets although it promises neither.

What is left: after each decision from the estimate's first (stopping.MIN_DECISIONS) to the last with records
unscreened, the estimate's "about N left" against the relevant records truly left (the mean absolute error and
the mean signed error, positive when it says more are left than are; over all those decisions and over those
once 90 % of the relevant records were found) and how often the truth was within its upper bound ("at most M",
95 % confidence), over every such decision of every run.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import Outcome, Row, Sizes
from benchmarks.ranking import DATASETS, Dataset, load_dataset, rankers, require_datasets, screened_in_order
from tracker.review import stopping

COMMAND = "python -m benchmarks --only stopping"
CONFIDENCE = 0.95


Stops = Callable[[stopping.StoppingEstimate, Sequence[bool], int], bool]


@dataclass(frozen=True)
class Rule:
    name: str
    targets: tuple[float, ...]  # the recalls its stops are judged against
    promises: bool  # whether the rule claims its target (with CONFIDENCE)
    stops: Stops


def rules() -> list[Rule]:
    def hypergeometric(target: float) -> Stops:
        def stops(estimate: stopping.StoppingEstimate, history: Sequence[bool], total: int) -> bool:
            if target == estimate.target_recall:
                return estimate.p_value < 1 - CONFIDENCE
            return stopping.hypergeometric_p_value(history, total, target) < 1 - CONFIDENCE
        return stops

    def knee(estimate: stopping.StoppingEstimate, history: Sequence[bool], total: int) -> bool:
        return stopping.knee_says_stop(history)

    return [Rule("hypergeometric test, target 95 %", (0.95,), True, hypergeometric(0.95)),
            Rule("hypergeometric test, target 90 %", (0.90,), True, hypergeometric(0.90)),
            Rule("knee method", (0.95, 0.90), False, knee)]


@dataclass
class RunFigures:
    """One run of one dataset: where each rule stopped, and the estimate's errors along the way."""

    records: int
    relevant: int
    stopped_at: dict[str, int] = field(default_factory=dict)  # rule name -> records screened at its first stop
    found_at: dict[str, int] = field(default_factory=dict)  # rule name -> relevant found by then
    errors: list[int] = field(default_factory=list)  # estimated_remaining - truly remaining, per decision
    left: list[int] = field(default_factory=list)  # truly remaining, per decision
    within_bound: list[bool] = field(default_factory=list)  # truly remaining <= remaining_upper, per decision


def evaluate_order(relevant_in_order: Sequence[bool], the_rules: Sequence[Rule]) -> RunFigures:
    """Every rule and the estimate after every decision of one screening order (a whole dataset's labels)."""
    labels = [bool(label) for label in relevant_in_order]
    records, relevant = len(labels), sum(labels)
    figures = RunFigures(records, relevant)
    found = 0
    for screened in range(1, records + 1):
        found += labels[screened - 1]
        history = labels[:screened]
        # Asked from the first decision, the rules show whether the estimate's minimum history ever held one back.
        estimate = stopping.estimate_stopping(history, records, target_recall=0.95, confidence=CONFIDENCE,
                                              min_decisions=1)
        assert isinstance(estimate, stopping.StoppingEstimate)
        if estimate.unscreened and screened >= stopping.MIN_DECISIONS:
            left = relevant - found
            figures.errors.append(estimate.estimated_remaining - left)
            figures.left.append(left)
            figures.within_bound.append(left <= estimate.remaining_upper)
        for rule in the_rules:
            if rule.name not in figures.stopped_at and rule.stops(estimate, history, records):
                figures.stopped_at[rule.name] = screened
                figures.found_at[rule.name] = found
    for rule in the_rules:
        figures.stopped_at.setdefault(rule.name, records)
        figures.found_at.setdefault(rule.name, relevant)
    return figures


def simulate(dataset: Dataset, seed: int) -> list[bool]:
    tracker = rankers()[0]
    return [bool(dataset.included[pick]) for pick in screened_in_order(dataset, tracker, seed)]


@dataclass(frozen=True)
class RuleSummary:
    recall_mean: float
    recall_min: float
    held: tuple[int, ...]  # per target: runs whose recall at the stop reached it
    runs: int
    saved_mean: float
    saved_min: float
    saved_max: float
    earliest: int  # the fewest records screened at a stop
    stopped: int  # runs that stopped with records unscreened


def summarise_rule(runs: Sequence[RunFigures], rule: Rule) -> RuleSummary:
    recalls = [run.found_at[rule.name] / run.relevant for run in runs]
    saved = [1 - run.stopped_at[rule.name] / run.records for run in runs]
    held = tuple(sum(recall >= target - 1e-12 for recall in recalls) for target in rule.targets)
    return RuleSummary(statistics.fmean(recalls), min(recalls), held, len(runs), statistics.fmean(saved), min(saved),
                       max(saved), min(run.stopped_at[rule.name] for run in runs),
                       sum(run.stopped_at[rule.name] < run.records for run in runs))


def rule_text(summary: RuleSummary) -> str:
    if not summary.stopped:
        return f"never said stop before every record was screened ({summary.runs} {plural(summary.runs, 'run')})"
    return (f"recall at stop {summary.recall_mean:.3f} mean, {summary.recall_min:.3f} lowest; work saved "
            f"{summary.saved_mean:.3f} mean ({summary.saved_min:.3f}-{summary.saved_max:.3f}); stopped early in "
            f"{summary.stopped}/{summary.runs} runs, the earliest after {summary.earliest:,} screened")


def plural(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


def percent(share: float) -> str:
    return f"{share * 100:.0f} %"


def estimate_text(runs: Sequence[RunFigures]) -> str:
    errors = [error for run in runs for error in run.errors]
    late = [error for run in runs for error, left in zip(run.errors, run.left, strict=True)
            if run.relevant - left >= 0.9 * run.relevant]
    within = [held for run in runs for held in run.within_bound]
    return (f"'about N left' off by {statistics.fmean(abs(e) for e in errors):.1f} relevant records on average "
            f"(mean signed error {statistics.fmean(errors):+.1f}) over {len(errors):,} decisions, by "
            f"{statistics.fmean(abs(e) for e in late):.1f} ({statistics.fmean(late):+.1f}) over the {len(late):,} "
            f"once 90 % were found; truly left <= 'at most M' after {statistics.fmean(within) * 100:.1f} % of them")


def run(sizes: Sizes, workdir: Path) -> Outcome:
    folder = require_datasets()
    names = DATASETS[:sizes.stopping_datasets]
    the_rules = rules()
    outcome = Outcome("stopping")
    every: list[RunFigures] = []
    for name in names:
        dataset = load_dataset(folder / f"{name}.csv")
        print(f"  stopping {dataset.name} ...", file=sys.stderr, flush=True)
        runs = [evaluate_order(simulate(dataset, seed), the_rules) for seed in range(sizes.stopping_runs)]
        every += runs
        outcome.rows += rule_rows(f"stopping {dataset.name}", dataset.size, runs, the_rules)
        outcome.rows.append(Row(f"stopping {dataset.name}: what is left", dataset.size, estimate_text(runs),
                                command=COMMAND))
    size = f"{len(names)} {plural(len(names), 'dataset')}, {sizes.stopping_runs} {plural(sizes.stopping_runs, 'run')} each"
    outcome.rows += rule_rows("stopping, all datasets", size, every, the_rules)
    outcome.rows.append(Row("stopping, all datasets: what is left", size, estimate_text(every), command=COMMAND))
    outcome.notes.append(NOTE.format(runs=sizes.stopping_runs, last=sizes.stopping_runs - 1,
                                     datasets=", ".join(names), minimum=stopping.MIN_DECISIONS))
    return outcome


def rule_rows(what: str, size: str, runs: Sequence[RunFigures], the_rules: Sequence[Rule]) -> list[Row]:
    rows = []
    for rule in the_rules:
        summary = summarise_rule(runs, rule)
        held = ", ".join(f"recall >= {percent(target)} in {count}/{summary.runs} runs"
                         for target, count in zip(rule.targets, summary.held, strict=True))
        if rule.promises:
            [target], [count] = rule.targets, summary.held
            rows.append(Row(f"{what}: {rule.name}", size, rule_text(summary), held,
                            f"recall >= {percent(target)} in >= {percent(CONFIDENCE)} of runs",
                            count >= CONFIDENCE * summary.runs, COMMAND))
        else:
            rows.append(Row(f"{what}: {rule.name}", size, rule_text(summary), held, command=COMMAND))
    return rows


NOTE = ("Stopping: the Cohen 2006 datasets ({datasets}) in ../shared/screening-datasets/cohen-2006/, read in place, "
        "label1 = I as relevant; {runs} runs a dataset (seeds 0-{last}), each screening the whole dataset in the "
        "ranking benchmark's simulated order (the tracker's model, retrained after every 10 decisions, its 10 best "
        "next). After every decision, from the first, each rule is asked whether to stop, and its first stop ends "
        "its run: recall reached there (mean, lowest over runs), the runs whose recall there reached the target, the "
        "work saved (1 - screened / records; a rule that never stops saves nothing) and the earliest stop. The "
        "hypergeometric test is Callaghan and Müller-Hansen's (2020) at 95 % confidence, which claims recall >= its "
        "target in at least 95 % of runs; the knee method is Cormack and Grossman's (2016), which claims no recall "
        "and is judged beside both targets. 'What is left': the estimate's 'about N left' (the most relevant records "
        "left that the test does not reject at one half) against the relevant records truly unscreened, after every "
        "decision from the {minimum}th while records remain (and over those once 90 % were found), and how often the "
        "truth was within 'at most M' (95 % confidence).")
