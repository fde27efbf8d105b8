"""python -m benchmarks.ranking_design [--runs N]: the measurements behind tracker/review/ranking's design choices.

Not part of the benchmark table; each section prints the figures a choice in tracker/review/ranking was made on,
on the Cohen 2006 datasets (../shared/screening-datasets/cohen-2006/, read in place):

1. Cold start, how good a first model is: for each (inclusions, exclusions) pair, 60 training sets drawn from
   the first half of a dataset (PMID order) and the AUC of the tracker's model on the second half: mean, 10th
   percentile and the share of draws worse than random (AUC < 0.5).
2. Cold start, what waiting costs: the screening simulation of benchmarks/ranking.py with the tracker's model
   starting only at MIN_INCLUDED = MIN_EXCLUDED = 1, 2, 3, 5 (random order until then).
3. Maybe: in the weekly protocol, a quarter of the training exclusions nearest the boundary (highest
   out-of-fold score, 5-fold) relabelled maybe, or a quarter of the training inclusions nearest it (lowest
   score); the maybes left out, kept as exclusions or as inclusions with a sample weight of 0.1, 0.3 or 1.
   Evaluated against the true decisions of the ranked batches.
4. The screening queue's exploration share: the simulation with EXPLORE = 0, 0.05 and 0.1.
5. Study facts as features (tracker/facts): the tracker's model with each record's facts read from its title and
   abstract (no publication types: the Cohen files have none) added to the terms block as whole tokens ("study
   design rct", "study population pediatric", "study comparator placebo", "study states a dose"), all of them or
   some, against the model without them; benchmark 9's protocols (a) and (b), summed over the datasets. They were
   not kept: BENCHMARKS.md, benchmark 9, has the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from benchmarks import ranking as benchmark
from tracker.review import ranking
from tracker.review.ranking.classifier import C, balanced_weights
from tracker.review.ranking.features import FeatureSpace

COLD_PAIRS = ((1, 1), (1, 5), (2, 2), (2, 10), (3, 3), (3, 10), (5, 5), (5, 20), (10, 40))
COLD_DRAWS = 60
MINIMA = (1, 2, 3, 5)
MAYBE_SHARE = 0.25
MAYBE_TREATMENTS = (("left out", None, 0.0), ("exclusion, weight 0.1", 0, 0.1), ("exclusion, weight 0.3", 0, 0.3),
                    ("exclusion, weight 1", 0, 1.0), ("inclusion, weight 0.1", 1, 0.1),
                    ("inclusion, weight 0.3", 1, 0.3))
EXPLORE_SHARES = (0.0, 0.05, 0.1)


def cold_start(datasets: list[benchmark.Dataset]) -> None:
    print("\n## 1. Cold start: AUC on the second half of a model trained on k inclusions and m exclusions\n")
    print("| dataset | k | m | mean AUC | 10th percentile | share < 0.5 |\n|---|---|---|---|---|---|")
    for dataset in datasets:
        half = len(dataset.records) // 2
        first, second = np.arange(half), np.arange(half, len(dataset.records))
        included = first[dataset.included[first] == 1]
        excluded = first[dataset.included[first] == 0]
        for k, m in COLD_PAIRS:
            draw = np.random.default_rng(0)
            aucs = []
            for _ in range(COLD_DRAWS):
                train = np.concatenate([draw.choice(included, min(k, len(included)), replace=False),
                                        draw.choice(excluded, m, replace=False)])
                scores = benchmark.tracker_scores(dataset, train, dataset.included[train], second, second, 0)
                aucs.append(roc_auc_score(dataset.included[second], scores))
            values = np.array(aucs)
            print(f"| {dataset.name} | {k} | {m} | {values.mean():.3f} | {np.percentile(values, 10):.3f} | "
                  f"{np.mean(values < 0.5):.0%} |", flush=True)


def waiting(datasets: list[benchmark.Dataset], runs: int) -> None:
    print(f"\n## 2. Cold start: the screening simulation when ranking starts later ({runs} runs)\n")
    print("| dataset | minimum (each class) | WSS@95 | recall@10% | recall@25% |\n|---|---|---|---|---|")
    for dataset in datasets:
        for minimum in MINIMA:
            ranker = dataclasses.replace(benchmark.rankers()[0], min_included=minimum, min_excluded=minimum)
            runs_ = [benchmark.screening_simulation(dataset, ranker, seed) for seed in range(runs)]
            print(f"| {dataset.name} | {minimum} | {statistics.fmean(r.wss95 for r in runs_):.3f} | "
                  f"{statistics.fmean(r.recall10 for r in runs_):.3f} | "
                  f"{statistics.fmean(r.recall25 for r in runs_):.3f} |", flush=True)


def _weighted_scores(dataset: benchmark.Dataset, train: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                     pool: np.ndarray) -> np.ndarray:
    """The tracker's features and classifier, with extra per-decision weights (what a weighted maybe needs)."""
    features = FeatureSpace()
    matrix = features.fit_transform(dataset.counts.take(train))
    classifier = LinearSVC(C=C, random_state=0)
    classifier.fit(matrix, labels, sample_weight=balanced_weights(labels) * weights)
    return classifier.decision_function(features.transform(dataset.counts.take(pool)))


def maybe(datasets: list[benchmark.Dataset]) -> None:
    print("\n## 3. Maybe: recall@top20% / mean AUC in the weekly protocol, a quarter of one class relabelled maybe\n")
    for scenario, relabelled in (("boundary exclusions", 0), ("boundary inclusions", 1)):
        print(f"\n{scenario} relabelled maybe\n")
        print("| treatment | " + " | ".join(d.name for d in datasets) + " | sum |\n|---|" + "---|" * (len(datasets) + 1))
        results: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in MAYBE_TREATMENTS}
        for dataset in datasets:
            found = {name: [0, 0, []] for name in results}
            batches = np.array_split(np.arange(len(dataset.records)), benchmark.BATCHES)
            for number in range(benchmark.FIRST_RANKED_BATCH, benchmark.BATCHES):
                train, batch = np.concatenate(batches[:number]), batches[number]
                truth, labels = dataset.included[batch], dataset.included[train]
                out_of_fold = np.zeros(len(train))
                for fit_rows, held_rows in StratifiedKFold(5, shuffle=True, random_state=number).split(train, labels):
                    out_of_fold[held_rows] = _weighted_scores(dataset, train[fit_rows], labels[fit_rows],
                                                              np.ones(len(fit_rows)), train[held_rows])
                members = np.flatnonzero(labels == relabelled)
                by_boundary = members[np.argsort(-out_of_fold[members] if relabelled == 0 else out_of_fold[members])]
                is_maybe = np.zeros(len(train), dtype=bool)
                is_maybe[by_boundary[:round(MAYBE_SHARE * len(members))]] = True
                for name, as_label, weight in MAYBE_TREATMENTS:
                    if as_label is None:
                        rows, taught, weights = train[~is_maybe], labels[~is_maybe], np.ones(int((~is_maybe).sum()))
                    else:
                        rows, taught = train, np.where(is_maybe, as_label, labels)
                        weights = np.where(is_maybe, weight, 1.0)
                    scores = _weighted_scores(dataset, rows, taught, weights, batch)
                    top = benchmark.best_first(scores)[:math.ceil(benchmark.TOP_SHARE * len(batch))]
                    found[name][0] += int(truth[top].sum())
                    found[name][1] += int(truth.sum())
                    found[name][2].append(roc_auc_score(truth, scores))
            for name, (hits, total, aucs) in found.items():
                results[name].append((hits / total, statistics.fmean(aucs)))
        for name, figures in results.items():
            cells = " | ".join(f"{recall:.3f} / {auc:.3f}" for recall, auc in figures)
            print(f"| {name} | {cells} | {sum(r for r, _ in figures):.3f} / {sum(a for _, a in figures):.3f} |",
                  flush=True)


def exploration(datasets: list[benchmark.Dataset], runs: int) -> None:
    print(f"\n## 4. The screening queue's exploration share in the simulation ({runs} runs)\n")
    print("| dataset | explore | WSS@95 | recall@10% | recall@25% |\n|---|---|---|---|---|")
    tracker = benchmark.rankers()[0]
    for dataset in datasets:
        for share in EXPLORE_SHARES:
            def order(scores: np.ndarray, seed: int, share: float = share) -> list[int]:
                return ranking.screening_order(scores.tolist(), seed=seed, explore=share)

            runs_ = [benchmark.screening_simulation(dataset, tracker, seed, order) for seed in range(runs)]
            print(f"| {dataset.name} | {share:.2f} | {statistics.fmean(r.wss95 for r in runs_):.3f} | "
                  f"{statistics.fmean(r.recall10 for r in runs_):.3f} | "
                  f"{statistics.fmean(r.recall25 for r in runs_):.3f} |", flush=True)


FACT_PARTS = ("design", "population", "comparators", "dose")
FACT_VARIANTS = ((), FACT_PARTS, ("design",), ("population", "comparators", "dose"))


def facts_terms(record: ranking.Record, parts: tuple[str, ...]) -> tuple[str, ...]:
    """A record's study facts as whole-token terms (tracker/facts), those of `parts` only."""
    from tracker.facts import extract_facts

    facts = extract_facts(record.title, record.abstract, record.publication_types, record.mesh_headings)
    terms = []
    if "design" in parts and facts.design_source != "none":
        terms.append(f"study design {facts.design}")
    if "population" in parts:
        terms += [f"study population {value}" for value in facts.population_values]
    if "comparators" in parts:
        terms += [f"study comparator {value}" for value in facts.comparator_values]
    if "dose" in parts and facts.doses:
        terms.append("study states a dose")
    return tuple(terms)


def with_facts(dataset: benchmark.Dataset, parts: tuple[str, ...]) -> benchmark.Dataset:
    """The dataset with each record's facts among its terms (the terms block reads keywords as whole tokens)."""
    if not parts:
        return dataset
    records = tuple(dataclasses.replace(record, keywords=record.keywords + facts_terms(record, parts))
                    for record in dataset.records)
    return benchmark.Dataset(dataset.name, records, dataset.included)


def study_facts(datasets: list[benchmark.Dataset], runs: int) -> None:
    print(f"\n## 5. Study facts as features of the relevance model ({runs} runs)\n")
    print("| facts | " + " | ".join(benchmark.FIGURES) + " |\n|---|" + "---|" * len(benchmark.FIGURES))
    tracker = benchmark.rankers()[0]
    for parts in FACT_VARIANTS:
        totals = [0.0] * len(benchmark.FIGURES)
        for dataset in datasets:
            figures = benchmark.measure(with_facts(dataset, parts), tracker, runs)
            totals = [total + value for total, value in zip(totals, figures.values(), strict=True)]
        print(f"| {', '.join(parts) or 'none (the tracker as it is)'} | "
              + " | ".join(f"{value:.3f}" for value in totals) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ranking_design", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="screening simulations per setting (default 10)")
    parser.add_argument("--only", nargs="+", choices=("cold-start", "waiting", "maybe", "exploration", "facts"),
                        help="run only these sections")
    args = parser.parse_args(argv)
    folder = benchmark.require_datasets()
    datasets = [benchmark.load_dataset(folder / f"{name}.csv") for name in benchmark.DATASETS]
    sections = args.only or ("cold-start", "waiting", "maybe", "exploration", "facts")
    if "cold-start" in sections:
        cold_start(datasets)
    if "waiting" in sections:
        waiting(datasets, args.runs)
    if "maybe" in sections:
        maybe(datasets)
    if "exploration" in sections:
        exploration(datasets, args.runs)
    if "facts" in sections:
        study_facts(datasets, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
