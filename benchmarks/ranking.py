"""Benchmark 6: the relevance ranking (tracker/review/ranking) against ASReview's default model and random order.

Data: the Cohen 2006 drug-review datasets in ../shared/screening-datasets/cohen-2006/ (read in place), each
record with its title/abstract decision (label1: I included, anything else excluded), in PMID order.

Three rankers, side by side on the same records and seeds:

- tracker: `tracker.review.ranking.fit` on the decided records, `tracker.review.ranking.score` on the rest, exactly as the
  store calls them (a fresh model each time, its features' vocabulary and document frequencies from every
  record the project holds at that moment, as ASReview's TF-IDF).
- ASReview's default (ASReview 2, `elas_u4` in asreview/models/models.py), reimplemented with scikit-learn:
  TF-IDF of title + abstract (asreview/models/feature_extractors.py, `Tfidf`: the columns joined with " ",
  word 1-2 grams, sublinear tf, min_df 1, max_df 0.95), a linear SVM (asreview/models/classifiers.py, `SVM`
  = sklearn's LinearSVC, squared hinge, C = 0.11) trained with balanced sample weights (asreview/models/
  balancers.py, `Balanced`, ratio 9.8: an inclusion weighs 1, an exclusion included / (9.8 * excluded), all
  rescaled to average 1), ranked by its decision function, highest first (asreview/models/queriers.py, `Max`;
  asreview/learner.py falls back to decision_function when the classifier has no predict_proba). As in
  asreview/simulation/simulate.py, the TF-IDF is fitted on every record of the project, labelled or not:
  in the screening simulation that is the whole dataset, in the weekly protocol the records seen so far
  (earlier batches and the batch being ranked). LinearSVC gets random_state=0 (ASReview leaves it unset)
  so that a run is reproducible; ASReview starts a simulation once it holds one inclusion and one exclusion
  (`IsFittable` in asreview/models/stoppers.py), as here.
- random: every record scored by a seeded uniform draw.

(a) Weekly batches: the records, in PMID order, are cut into 10 batches; from the 3rd on, each batch is
ranked by a model trained on every earlier batch's decisions. Recall at the top 20 %: the included papers
found in the top ceil(20 %) of their batch, summed over batches 3-10, over the included papers of those
batches (random order: 20 %); AUC: the mean of the batches' ROC AUC.

(b) Screening simulation: one dataset screened record by record. Until a ranker's cold-start minimum is met
(the tracker's MIN_INCLUDED and MIN_EXCLUDED; ASReview's 1 and 1) records come in a seeded random order (the
same order for all three rankers of a run); then the ranker is retrained after every 10 decisions and the
next 10 records are its 10 best-scored unscreened ones. WSS@95 = (N - screened when 95 % of the inclusions
are found) / N - 0.05; recall@10 % and @25 % = the share of inclusions found after 10 % and 25 % of N
screened. Means over the runs (seeds 0, 1, ...). The tracker's screening queue, which mixes in lower-scored
papers (tracker/review/ranking/queue.py), is simulated too and reported in its own row.

Target: the tracker at least matches the ASReview reimplementation on each dataset's five figures and beats
it on their totals. Timing: `fit` on 10,000 decided records (the Cohen records, replicated with the words of
each replica's abstract shuffled, so that its bigrams are new) and `score` of 10,000 more.
"""

from __future__ import annotations

import csv
import math
import random
import statistics
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import roc_auc_score
from sklearn.svm import LinearSVC

from benchmarks import REPO, Outcome, Row, Sizes, median_seconds
from tracker.review import ranking
from tracker.review.ranking import Record
from tracker.review.ranking.classifier import balanced_weights

COMMAND = "python -m benchmarks --only ranking"
DATASETS = ("ADHD", "Antihistamines", "NSAIDS", "UrinaryIncontinence")
BATCHES = 10
FIRST_RANKED_BATCH = 2  # the 3rd batch, counting from 0
TOP_SHARE = 0.2
RETRAIN_EVERY = 10
RECALL_TARGET = 0.95
RANKERS = ("tracker", "ASReview default", "random")
FIGURES = ("recall@top20%", "AUC", "WSS@95", "recall@10%", "recall@25%")
TIMING_RECORDS = 10_000
FIT_TARGET = 10.0  # seconds: "training for a topic of 10,000 decided papers takes seconds, not minutes"


def datasets_dir(repo: Path = REPO) -> Path:
    return Path(repo).parent / "shared" / "screening-datasets" / "cohen-2006"


def require_datasets(repo: Path = REPO) -> Path:
    folder = datasets_dir(repo)
    if not folder.is_dir():
        sys.exit(f"benchmarks: the screening datasets are not at {folder}; the ranking benchmark reads the "
                 "Cohen 2006 CSV files there in place: put the shared screening-datasets folder there and run again")
    return folder


@dataclass(frozen=True)
class Dataset:
    name: str
    records: tuple[Record, ...]
    included: np.ndarray  # 1 where label1 is "I"
    counted: dict[str, ranking.TokenCounts] = field(default_factory=dict, compare=False, repr=False)

    @property
    def size(self) -> str:
        return f"{len(self.records):,} records, {int(self.included.sum())} included"

    @property
    def counts(self) -> ranking.TokenCounts:
        """The tracker's token counts of every record, counted once: each fit and score takes its rows."""
        if "all" not in self.counted:
            self.counted["all"] = ranking.count_tokens(self.records)
        return self.counted["all"]


def load_dataset(path: Path) -> Dataset:
    """One Cohen 2006 CSV as records in PMID order, with the title/abstract decisions."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: int(row["pubmedID"]))
    records = tuple(Record(pmid=int(row["pubmedID"]), title=row["title"], abstract=row["abstracts"],
                           mesh_headings=tuple(term.strip() for term in row["keywords"].split(";") if term.strip()))
                    for row in rows)
    return Dataset(path.stem, records, np.array([1 if row["label1"] == "I" else 0 for row in rows]))


# A ranker scores the records at `pool` after learning from those at `train` (0/1 labels), all indices into
# the dataset; `project` is every record the project holds at that moment (ASReview fits its TF-IDF on them);
# `seed` varies the random ranker.
Scorer = Callable[[Dataset, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class Ranker:
    name: str
    scores: Scorer
    min_included: int = 0
    min_excluded: int = 0


def tracker_scores(dataset: Dataset, train: np.ndarray, labels: np.ndarray, pool: np.ndarray,
                   project: np.ndarray, seed: int) -> np.ndarray:
    decisions = [ranking.INCLUDE if label else ranking.EXCLUDE for label in labels]
    # As tracker/review/relevance.py calls it: the features know every paper of the topic, decided or not.
    model = ranking.fit(dataset.counts.take(train), decisions, vocabulary=dataset.counts.take(project))
    return np.array(ranking.score(model, dataset.counts.take(pool)))


class AsreviewDefault:
    """ASReview's default model, reimplemented (see the module docstring for where each part comes from)."""

    def __init__(self) -> None:
        self._cache: tuple[tuple[str, bytes], dict[int, int], object] | None = None

    def _matrix(self, dataset: Dataset, project: np.ndarray):
        key = (dataset.name, np.asarray(project).tobytes())
        if self._cache is None or self._cache[0] != key:
            vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_df=0.95)
            texts = [f"{dataset.records[i].title} {dataset.records[i].abstract}" for i in project]
            self._cache = (key, {int(index): row for row, index in enumerate(project)}, vectorizer.fit_transform(texts))
        return self._cache[1], self._cache[2]

    def __call__(self, dataset: Dataset, train: np.ndarray, labels: np.ndarray, pool: np.ndarray,
                 project: np.ndarray, seed: int) -> np.ndarray:
        rows, matrix = self._matrix(dataset, project)
        classifier = LinearSVC(C=0.11, random_state=0)
        classifier.fit(matrix[[rows[int(i)] for i in train]], labels, sample_weight=balanced_weights(labels, 9.8))
        return classifier.decision_function(matrix[[rows[int(i)] for i in pool]])


def random_scores(dataset: Dataset, train: np.ndarray, labels: np.ndarray, pool: np.ndarray,
                  project: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(len(pool))


def rankers() -> list[Ranker]:
    return [Ranker("tracker", tracker_scores, ranking.MIN_INCLUDED, ranking.MIN_EXCLUDED),
            Ranker("ASReview default", AsreviewDefault(), 1, 1),
            Ranker("random", random_scores)]


def best_first(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, kind="stable")


@dataclass
class Weekly:
    found: int = 0  # inclusions in the top 20 % of their batch, summed over batches
    included: int = 0
    per_batch: list[float] = field(default_factory=list)  # each batch's recall at the top 20 %
    aucs: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.included if self.included else float("nan")

    @property
    def auc(self) -> float:
        return statistics.fmean(self.aucs) if self.aucs else float("nan")


def weekly_batches(dataset: Dataset, ranker: Ranker, seed: int = 0) -> Weekly:
    """Protocol (a): each batch from the 3rd ranked by a model trained on all earlier batches."""
    batches = np.array_split(np.arange(len(dataset.records)), BATCHES)
    outcome = Weekly()
    for number_, batch in enumerate(batches[FIRST_RANKED_BATCH:], start=FIRST_RANKED_BATCH):
        train = np.concatenate(batches[:number_])
        scores = ranker.scores(dataset, train, dataset.included[train], batch, np.concatenate([train, batch]),
                               seed * 1000 + number_)
        truth = dataset.included[batch]
        top = best_first(scores)[:math.ceil(TOP_SHARE * len(batch))]
        outcome.found += int(truth[top].sum())
        outcome.included += int(truth.sum())
        if truth.sum():
            outcome.per_batch.append(float(truth[top].sum() / truth.sum()))
        if 0 < truth.sum() < len(truth):
            outcome.aucs.append(float(roc_auc_score(truth, scores)))
    return outcome


@dataclass(frozen=True)
class Screening:
    wss95: float
    recall10: float
    recall25: float


Order = Callable[[np.ndarray, int], Sequence[int]]


def screened_in_order(dataset: Dataset, ranker: Ranker, seed: int, order: Order | None = None) -> Iterator[int]:
    """Protocol (b)'s order: every record of the dataset once, as the screening simulation screens them (a seeded
    random order until the ranker's cold start is met, then the ranker's 10 best unscreened records after each
    retraining). The caller stops reading when it has seen enough; records not read are never scored."""
    truth = dataset.included
    total = len(truth)
    start = np.random.default_rng(seed).permutation(total)
    seen = np.zeros(total, dtype=bool)
    screened: list[int] = []
    while len(screened) < total:
        labels = truth[screened]
        included = int(labels.sum())
        if included < ranker.min_included or len(screened) - included < ranker.min_excluded:
            picks = [next(int(i) for i in start if not seen[i])]
        else:
            pool = np.flatnonzero(~seen)
            scores = ranker.scores(dataset, np.array(screened), labels, pool, np.arange(total),
                                   seed * 100_003 + len(screened))
            ranked = order(scores, seed * 100_003 + len(screened)) if order else best_first(scores)
            picks = [int(pool[i]) for i in ranked[:RETRAIN_EVERY]]
        for pick in picks:
            seen[pick] = True
            screened.append(pick)
            yield pick


def screening_simulation(dataset: Dataset, ranker: Ranker, seed: int, order: Order | None = None) -> Screening:
    """Protocol (b): screen in the ranker's order, retraining every 10 decisions, until 95 % recall and 25 % seen."""
    truth = dataset.included
    total = len(truth)
    needed = math.ceil(RECALL_TARGET * truth.sum())
    quarter = math.ceil(0.25 * total)
    screened: list[int] = []
    found = 0
    for pick in screened_in_order(dataset, ranker, seed, order):
        screened.append(pick)
        found += int(truth[pick])
        if found >= needed and len(screened) >= quarter:
            break
    cumulative = np.cumsum(truth[screened])
    at_95 = int(np.argmax(cumulative >= needed)) + 1
    return Screening(wss95=(total - at_95) / total - (1 - RECALL_TARGET),
                     recall10=float(cumulative[math.ceil(0.1 * total) - 1] / truth.sum()),
                     recall25=float(cumulative[quarter - 1] / truth.sum()))


def queue_order(scores: np.ndarray, seed: int) -> list[int]:
    return ranking.screening_order(scores.tolist(), seed=seed)


@dataclass(frozen=True)
class Figures:
    recall20: float
    auc: float
    wss95: float
    recall10: float
    recall25: float
    per_batch: tuple[float, ...] = ()
    found: str = ""

    def values(self) -> tuple[float, ...]:
        return (self.recall20, self.auc, self.wss95, self.recall10, self.recall25)


def measure(dataset: Dataset, ranker: Ranker, runs: int, order: Order | None = None) -> Figures:
    weekly_runs = [weekly_batches(dataset, ranker, seed) for seed in range(runs if ranker.name == "random" else 1)]
    screenings = [screening_simulation(dataset, ranker, seed, order) for seed in range(runs)]
    first = weekly_runs[0]
    return Figures(recall20=statistics.fmean(w.recall for w in weekly_runs),
                   auc=statistics.fmean(w.auc for w in weekly_runs),
                   wss95=statistics.fmean(s.wss95 for s in screenings),
                   recall10=statistics.fmean(s.recall10 for s in screenings),
                   recall25=statistics.fmean(s.recall25 for s in screenings),
                   per_batch=tuple(first.per_batch), found=f"{first.found}/{first.included}")


def figures_text(figures: Figures, runs: int, *, deterministic: bool) -> str:
    weekly = "" if not deterministic else f" ({figures.found}; batches {min(figures.per_batch):.0%}-{max(figures.per_batch):.0%})"
    weekly_runs = "" if deterministic else f" (mean of {runs})"
    return (f"(a) recall@top20% {figures.recall20:.3f}{weekly}{weekly_runs}, AUC {figures.auc:.3f}; "
            f"(b) WSS@95 {figures.wss95:.3f}, recall@10% {figures.recall10:.3f}, recall@25% {figures.recall25:.3f} "
            f"(mean of {runs} runs)")


def comparison(tracker: Figures, asreview: Figures) -> tuple[str, bool]:
    behind = [name for name, ours, theirs in zip(FIGURES, tracker.values(), asreview.values(), strict=True)
              if ours < theirs - 1e-12]
    ratio = f"{sum(o >= t - 1e-12 for o, t in zip(tracker.values(), asreview.values(), strict=True))}/5 >= ASReview"
    return ratio + (f"; behind on {', '.join(behind)}" if behind else ""), not behind


def timing_records(datasets: Sequence[Dataset], count: int) -> list[Record]:
    """`count` records: the Cohen records, then replicas whose abstract words are shuffled (new bigrams)."""
    base = [record for dataset in datasets for record in dataset.records]
    shuffle = random.Random(0)
    records = []
    for index in range(count):
        record = base[index % len(base)]
        if index >= len(base):
            words = record.abstract.split()
            shuffle.shuffle(words)
            record = replace(record, pmid=900_000_000 + index, abstract=" ".join(words))
        records.append(record)
    return records


def timing_rows(datasets: Sequence[Dataset], repeats: int) -> list[Row]:
    records = timing_records(datasets, 2 * TIMING_RECORDS)
    decided, unscreened = records[:TIMING_RECORDS], records[TIMING_RECORDS:]
    included = np.concatenate([dataset.included for dataset in datasets])
    decisions = [ranking.INCLUDE if included[i % len(included)] else ranking.EXCLUDE for i in range(TIMING_RECORDS)]
    warmups = 1 if repeats > 1 else 0
    fit_time, _ = median_seconds(lambda: ranking.fit(decided, decisions), repeats, warmups=warmups)
    count_time, _ = median_seconds(lambda: ranking.count_tokens(decided), repeats, warmups=warmups)
    counts = ranking.count_tokens(decided)
    refit_time, _ = median_seconds(lambda: ranking.fit(counts, decisions), repeats, warmups=warmups)
    model = ranking.fit(counts, decisions)
    score_time, _ = median_seconds(lambda: ranking.score(model, unscreened), repeats, warmups=warmups)
    scores = ranking.score(model, unscreened)
    order_time, _ = median_seconds(lambda: ranking.screening_order(scores, seed=0), repeats, warmups=warmups)
    size = f"{TIMING_RECORDS:,} decided ({decisions.count(ranking.INCLUDE):,} included), {TIMING_RECORDS:,} scored"
    runs = f"median of {repeats}"
    return [Row("ranking: fit from records (tracker.review.ranking.fit: count tokens, TF-IDF, SVM)", size,
                f"{fit_time:.1f} s {runs}; of which count_tokens {count_time:.1f} s, fit from counts "
                f"{refit_time:.1f} s", f"{fit_time / FIT_TARGET:.2f} of target", f"< {FIT_TARGET:.0f} s",
                fit_time < FIT_TARGET, COMMAND),
            Row("ranking: score from records, then screening_order", size,
                f"score {score_time:.1f} s, screening_order {order_time * 1000:,.0f} ms ({runs})", command=COMMAND)]


def run(sizes: Sizes, workdir: Path) -> Outcome:
    folder = require_datasets()
    names = DATASETS[:sizes.ranking_datasets]
    datasets = [load_dataset(folder / f"{name}.csv") for name in names]
    runs = sizes.ranking_runs
    outcome = Outcome("ranking")
    totals: dict[str, list[float]] = {name: [0.0] * 5 for name in (*RANKERS, "tracker queue")}
    for dataset in datasets:
        print(f"  ranking {dataset.name} ...", file=sys.stderr, flush=True)
        tracker, asreview, random_ = (measure(dataset, ranker, runs) for ranker in rankers())
        queue = measure(dataset, rankers()[0], runs, order=queue_order)
        for name, figures in zip((*RANKERS, "tracker queue"), (tracker, asreview, random_, queue), strict=True):
            totals[name] = [a + b for a, b in zip(totals[name], figures.values(), strict=True)]
        ratio, met = comparison(tracker, asreview)
        outcome.rows += [
            Row(f"ranking {dataset.name}: tracker", dataset.size, figures_text(tracker, runs, deterministic=True),
                ratio, "each figure >= ASReview default's " + " / ".join(f"{value:.3f}" for value in asreview.values()),
                met, COMMAND),
            Row(f"ranking {dataset.name}: ASReview default (reimplemented)", dataset.size,
                figures_text(asreview, runs, deterministic=True), command=COMMAND),
            Row(f"ranking {dataset.name}: random order", dataset.size, figures_text(random_, runs, deterministic=False),
                command=COMMAND),
        ]
    size = f"{len(datasets)} datasets, {sum(len(d.records) for d in datasets):,} records"
    total = {name: Figures(*values) for name, values in totals.items()}
    ratio, _ = comparison(total["tracker"], total["ASReview default"])
    beats = all(o > t for o, t in zip(total["tracker"].values(), total["ASReview default"].values(), strict=True))
    outcome.rows += [
        Row("ranking total: tracker", size, totals_text(total["tracker"]), ratio.split(";")[0],
            "each summed figure > ASReview default's "
            + " / ".join(f"{value:.3f}" for value in total["ASReview default"].values()), beats, COMMAND),
        Row("ranking total: ASReview default (reimplemented)", size, totals_text(total["ASReview default"]),
            command=COMMAND),
        Row("ranking total: random order", size, totals_text(total["random"]), command=COMMAND),
        Row(f"ranking total: tracker screening queue ({ranking.EXPLORE:.0%} lower-scored mixed in)", size,
            totals_text(total["tracker queue"]), command=COMMAND),
    ]
    outcome.rows += timing_rows(datasets, sizes.ranking_repeats)
    outcome.notes.append(NOTE.format(runs=runs, last=runs - 1, datasets=", ".join(names)))
    return outcome


def totals_text(figures: Figures) -> str:
    return (f"sums over datasets: (a) recall@top20% {figures.recall20:.3f}, AUC {figures.auc:.3f}; "
            f"(b) WSS@95 {figures.wss95:.3f}, recall@10% {figures.recall10:.3f}, recall@25% {figures.recall25:.3f}")


NOTE = ("Ranking: the Cohen 2006 datasets ({datasets}) in ../shared/screening-datasets/cohen-2006/, read in place, "
        "records in PMID order, label1 = I as included. (a) 10 batches in PMID order; from the 3rd, each batch "
        "ranked by a model trained on all earlier batches: recall at the top 20 % summed over batches 3-10 (in "
        "brackets: found/included and the range over batches), and the mean of the batches' AUC. (b) screening "
        "simulation, {runs} runs (seeds 0-{last}): a seeded random order until the ranker's cold start is met, "
        "then the ranker's 10 best unscreened records after each retraining; WSS@95, recall after 10 % and 25 % "
        "screened, means over the runs. The tracker and ASReview are deterministic in (a); random order is the "
        "mean of the same number of seeded runs. ASReview's default is reimplemented with scikit-learn from "
        "asreview/models/ (see benchmarks/ranking.py for the files); the tracker's own design measurements "
        "(cold start, maybe, exploration) are in `python -m benchmarks.ranking_design`.")
