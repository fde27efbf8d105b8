"""The classifier and its class balance: ASReview's default (a linear SVM, C = 0.11, balanced sample weights).

Balance (asreview/models/balancers.py, `Balanced`, ratio 9.8 in ASReview's default `elas_u4`): every
inclusion weighs 1 and every exclusion included / (9.8 * excluded), so that all the exclusions together weigh
1/9.8 of all the inclusions together; the weights are then rescaled to average 1. With 10 inclusions and 990
exclusions an exclusion weighs 10 / 9,702 before rescaling.

Scores are the SVM's margin put through the logistic function: a monotone squash, not a calibrated
probability. 0.5 is the balanced SVM's boundary (above it the model would call the paper an inclusion); the
weighting shifts that boundary on purpose, so a score says "more or less likely than another paper", not
"included 7 times in 10". Calibrating (Platt scaling by cross-validation) would cost three more fits and be
unstable with the few inclusions a young topic has, and the order, which is all a ranking uses, would not change.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.svm import LinearSVC

C = 0.11
BALANCE_RATIO = 9.8


def balanced_weights(included: np.ndarray, ratio: float = BALANCE_RATIO) -> np.ndarray:
    """ASReview's balanced sample weights for 0/1 labels (both classes present), averaging 1."""
    positives = included.sum()
    negatives = len(included) - positives
    weights = np.where(included == 1, 1.0, positives / (ratio * negatives))
    return weights * (len(included) / weights.sum())


def train_classifier(features: sparse.csr_matrix, included: np.ndarray) -> LinearSVC:
    # random_state fixes liblinear's shuffling in the dual solver: the same decisions give the same scores.
    classifier = LinearSVC(C=C, random_state=0)
    return classifier.fit(features, included, sample_weight=balanced_weights(included))


def squash(margins: np.ndarray) -> np.ndarray:
    """The margins into (0, 1), order kept."""
    return 1.0 / (1.0 + np.exp(-margins))
