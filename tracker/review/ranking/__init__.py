"""Relevance ranking: a model per topic, learned from that topic's own screening decisions.

The parts, each small and swappable (as ASReview's are):

    records.py     Record: what the model reads about a paper, from plain values
    features.py    count_tokens(records) -> TokenCounts; FeatureSpace: TF-IDF blocks for title + abstract,
                   title, and terms (MeSH, keywords, publication types, journal)
    classifier.py  the linear SVM, ASReview's balanced sample weights, the squash of margins into (0, 1)
    coldstart.py   the decisions and the cold-start rule (no scikit-learn: faces import it cheaply)
    model.py       fit(records, decisions) -> RelevanceModel; score(model, records) -> scores
    queue.py       ScreeningQueue: most relevant first, a few lower-scored mixed in; the web app's screening
                   page and the benchmark's simulation both take their next paper from it

Use: when `decisions_needed(included, excluded)` is 0, `fit` the topic's decided records and `score` the rest
(or all of them); otherwise "ranking starts after N more decisions". Both take records or, to tokenise a
topic's papers once and retrain often, their `count_tokens(records)` (rows picked with `.take(rows)`). A
model is retrained from scratch each time and held only in memory: store the scores, never the model.
Scores order papers; they never decide which papers a list holds.

Measured on the Cohen 2006 drug-review datasets against a reimplementation of ASReview's default model
(`python -m benchmarks --only ranking`; figures in BENCHMARKS.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracker.review.ranking.coldstart import DECISIONS, EXCLUDE, INCLUDE, MAYBE, MIN_EXCLUDED, MIN_INCLUDED, decisions_needed
from tracker.review.ranking.queue import EXPLORE, ScreeningQueue, screening_order
from tracker.review.ranking.records import Record

if TYPE_CHECKING:
    from tracker.review.ranking.features import TokenCounts, count_tokens
    from tracker.review.ranking.model import RelevanceModel, fit, score

# Importing scikit-learn took 2.4 s of a cold `tracker digest` start here: the names that need it load on first
# use, so the digest, the e-mail and the pages (which only ask how many decisions are missing) never pay for it.
_LAZY = {"TokenCounts": "features", "count_tokens": "features", "RelevanceModel": "model", "fit": "model",
         "score": "model"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tracker.review.ranking' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"tracker.review.ranking.{_LAZY[name]}"), name)


__all__ = [
    "DECISIONS",
    "EXCLUDE",
    "EXPLORE",
    "INCLUDE",
    "MAYBE",
    "MIN_EXCLUDED",
    "MIN_INCLUDED",
    "Record",
    "ScreeningQueue",
    "RelevanceModel",
    "TokenCounts",
    "count_tokens",
    "decisions_needed",
    "fit",
    "score",
    "screening_order",
]
