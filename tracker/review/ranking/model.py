"""fit and score: a topic's relevance model, retrained from scratch from its decisions each time.

Decisions are "include", "exclude" and "maybe". A maybe is left out of training: on the Cohen 2006 data,
with a quarter of the training exclusions nearest the boundary relabelled maybe, treating them as weighted
exclusions (0.1, 0.3) or weighted inclusions helps only when the guess matches the truth, and costs up to
0.09 summed AUC when it does not; leaving them out never pushes the model the wrong way (benchmarks/ranking.py).

Cold start: tracker/review/ranking/coldstart.py.

Nothing is stored but scores: the model lives in memory between fit and score, and nothing here pickles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.svm import LinearSVC

from tracker.review.ranking.classifier import squash, train_classifier
from tracker.review.ranking.coldstart import DECISIONS, INCLUDE, MAYBE, MIN_EXCLUDED, MIN_INCLUDED, decisions_needed
from tracker.review.ranking.features import FeatureSpace, TokenCounts, count_tokens
from tracker.review.ranking.records import Record

Papers = Sequence[Record] | TokenCounts  # records, or their counts from count_tokens (counted once, fitted often)

@dataclass(frozen=True)
class RelevanceModel:
    """A fitted model: the feature space learned from the training records and the classifier over it."""

    features: FeatureSpace
    classifier: LinearSVC
    included: int  # how many inclusions and exclusions it was trained on
    excluded: int


def fit(papers: Papers, decisions: Sequence[str], *, vocabulary: Papers | None = None) -> RelevanceModel:
    """Train on the papers' decisions (maybe left out); needs MIN_INCLUDED inclusions and MIN_EXCLUDED exclusions.
    `vocabulary`: the papers whose words the features know and whose document frequencies weigh them (default:
    the decided papers), such as every paper of the topic, decided or not."""
    if len(papers) != len(decisions):
        raise ValueError(f"fit got {len(papers)} papers and {len(decisions)} decisions: pass one decision per paper")
    unknown = sorted({decision for decision in decisions if decision not in DECISIONS})
    if unknown:
        raise ValueError(f"unknown decision {unknown[0]!r}: a decision is one of {', '.join(DECISIONS)}")
    kept = [row for row, decision in enumerate(decisions) if decision != MAYBE]
    labels = np.array([1 if decisions[row] == INCLUDE else 0 for row in kept], dtype=np.int64)
    included = int(labels.sum())
    excluded = len(kept) - included
    if decisions_needed(included, excluded):
        raise ValueError(f"ranking needs at least {MIN_INCLUDED} included and {MIN_EXCLUDED} excluded paper "
                         f"(these decisions have {included} and {excluded}): check decisions_needed() before fit")
    features = FeatureSpace()
    matrix = features.fit_transform(_counted(papers).take(kept),
                                    _counted(vocabulary) if vocabulary is not None else None)
    return RelevanceModel(features, train_classifier(matrix, labels), included, excluded)


def score(model: RelevanceModel, papers: Papers) -> list[float]:
    """Each paper's relevance in (0, 1), higher is more likely included (a monotone squash of the margin)."""
    if not len(papers):
        return []
    counted = _counted(papers)
    margins = np.concatenate([model.classifier.decision_function(model.features.transform(part))
                              for part in counted.in_slices()])
    return [float(value) for value in squash(margins)]


def _counted(papers: Papers) -> TokenCounts:
    return papers if isinstance(papers, TokenCounts) else count_tokens(papers)
