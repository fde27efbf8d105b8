"""A topic's relevance scores, kept current from the topic's own screening decisions.

When
    After every topic run (tracker/runs/sync.py: the week's new papers are scored before the digest and the e-mail),
    after `tracker screen set` and `tracker screen import` (once per command, however many papers it decided),
    and in the web app a few seconds after a reviewer's last decision (`RelevanceRefresher`: one background
    thread, so a page never waits for training and a screening session retrains once per pause, not per
    click; the web app's trains in a process of its own at a lower priority, so that training never holds the
    request threads' interpreter lock nor their CPU). A refresh retrains from scratch on the topic's current
    states and rewrites all its scores; it is skipped when nothing changed since the last one (no newer
    decision, no unscored paper).

What
    The model (tracker/review/ranking) learns include against exclude from the topic's settled states (a paper in
    `conflict` or `awaiting` teaches nothing yet; `maybe` is left out, as measured there). Below
    tracker.review.ranking's minimum of inclusions and exclusions there are no scores and the faces say "ranking
    starts after N more decisions". Only scores are stored (table `relevance_score`), never a model.

Suggestions
    The topic's pending suggestions beyond the query (tracker/runs/suggest.py) are scored by the same model in the
    same refresh, and a refresh is due when one has no score yet. Their scores are kept on the suggestion, not in
    `relevance_score`: a suggestion is not the topic's paper until the reader adds it, so the topic's listings, its
    "likely relevant" fifth and its counts hold only its papers. An added paper is scored with the rest at the
    next refresh, which its missing score triggers.

Scores order papers; they never decide which papers a list, a digest or an export holds.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from tracker.memory import tune_allocators
from tracker.review import ranking
from tracker.review.screening import rule_for
from tracker.store import Store
from tracker.store.decisions import latest_decision_id
from tracker.store.models import RankingState
from tracker.store.relevance import (
    PaperText,
    clear_scores,
    ranking_state,
    save_scores,
    topic_states,
    topic_texts,
    unscored_count,
)
from tracker.store.suggestions import clear_suggestion_scores, pending_texts, save_suggestion_scores, unscored_suggestions
from tracker.text import utcnow
from tracker.topics import Topic

log = logging.getLogger(__name__)

# Papers in the top fifth of their topic's undecided papers' scores are marked "likely relevant" (with
# `likely_from` kept from the last refresh, a paper decided since keeps its mark): the share in which the ranking
# benchmark measures recall (BENCHMARKS.md, ranking). A fixed score would not do: the scores are a squashed SVM
# margin whose boundary the class weights move on purpose (tracker/review/ranking/classifier.py).
LIKELY_SHARE = 0.2
LABELS = {"included": ranking.INCLUDE, "excluded": ranking.EXCLUDE, "maybe": ranking.MAYBE}


@dataclass(frozen=True)
class RankingStatus:
    """Whether a topic's papers are ordered by relevance, and from how many decisions."""

    topic: str
    ranked: bool  # the topic has scores
    decisions: int  # the inclusions and exclusions its scores learned from (ranked), or it holds so far
    needed: int  # decisions still missing before ranking starts (0 when it can rank)
    likely_from: float | None = None  # the lowest score marked "likely relevant" (ranked topics)

    @property
    def sentence(self) -> str:
        """"ordered by 48 earlier decisions in this topic" or "ranking starts after 2 more decisions"."""
        if self.ranked:
            return f"ordered by {self.decisions} earlier decision{'' if self.decisions == 1 else 's'} in this topic"
        if not self.needed:  # enough decisions, and the first scores are on their way
            return f"the scores are being updated from {self.decisions} decisions"
        return f"ranking starts after {self.needed} more decision{'' if self.needed == 1 else 's'}"


def _counts(states: dict[int, str]) -> tuple[int, int]:
    values = list(states.values())
    return values.count("included"), values.count("excluded")


def ranking_status(store: Store, topic: Topic) -> RankingStatus:
    """The topic's status as stored (reads only; nothing is trained)."""
    state = ranking_state(store, topic.slug)
    if state is not None:
        return RankingStatus(topic.slug, True, state.included + state.excluded, 0, state.likely_from)
    included, excluded = _counts(topic_states(store, topic.slug, rule_for(store, topic)))
    return RankingStatus(topic.slug, False, included + excluded, ranking.decisions_needed(included, excluded))


def scores_stale(store: Store, topic: Topic, state: RankingState | None = None, mark: int | None = None) -> bool:
    """Whether a refresh would change anything: no scores yet, a decision newer than the scores (`mark`: the
    topic's newest decision id, read by the caller), or a paper without a score."""
    state = state if state is not None else ranking_state(store, topic.slug)
    if state is None:
        return True
    mark = mark if mark is not None else latest_decision_id(store, topic.slug)
    return mark > state.decision_mark or unscored_count(store, topic.slug) > 0 or unscored_suggestions(store, topic.slug) > 0


def refresh_relevance(store: Store, topic: Topic, *, force: bool = False) -> RankingStatus:
    """Retrain the topic's model from its decisions and rescore all its papers (when anything changed, or `force`)."""
    started = time.perf_counter()
    # The mark is read before the states: a decision saved in between makes the scores stale, never lost.
    mark = latest_decision_id(store, topic.slug)
    stored = ranking_state(store, topic.slug)
    if not force and stored is not None and not scores_stale(store, topic, stored, mark):
        return RankingStatus(topic.slug, True, stored.included + stored.excluded, 0, stored.likely_from)
    states = topic_states(store, topic.slug, rule_for(store, topic))
    included, excluded = _counts(states)
    needed = ranking.decisions_needed(included, excluded)
    if needed:
        if stored is not None:
            clear_scores(store, topic.slug)  # decisions were taken back below the minimum: no stale order stays
            clear_suggestion_scores(store, topic.slug)
        return RankingStatus(topic.slug, False, included + excluded, needed)
    texts = list(topic_texts(store, topic.slug))
    counted = ranking.count_tokens([_record(text) for text in texts])
    decided = [row for row, text in enumerate(texts) if states.get(text.pmid) in LABELS]
    # The vocabulary of every paper of the topic, decided or not (ASReview fits its TF-IDF so too): on the Cohen
    # 2006 simulation it raised summed WSS@95 by 0.03 and recall at 10 % by 0.02 over the decided papers' alone.
    model = ranking.fit(counted.take(decided), [LABELS[states[texts[row].pmid]] for row in decided],
                        vocabulary=counted)
    scores = ranking.score(model, counted)
    undecided = sorted((value for text, value in zip(texts, scores, strict=True) if states.get(text.pmid) not in LABELS),
                       reverse=True)
    likely_from = undecided[max(0, math.ceil(len(undecided) * LIKELY_SHARE) - 1)] if undecided else 1.0
    seconds = time.perf_counter() - started
    save_scores(store, RankingState(topic=topic.slug, included=model.included, excluded=model.excluded,
                                    decision_mark=mark, papers=len(texts), likely_from=likely_from,
                                    trained_at=utcnow(), seconds=round(seconds, 3)),
                {text.pmid: value for text, value in zip(texts, scores, strict=True)})
    suggested = pending_texts(store, topic.slug)
    if suggested:
        save_suggestion_scores(store, topic.slug, dict(zip([text.pmid for text in suggested], ranking.score(
            model, [_record(text) for text in suggested]), strict=True)))
    log.info("relevance of topic '%s': trained on %d decisions, scored %d papers and %d suggestions in %.1f s",
             topic.slug, model.included + model.excluded, len(texts), len(suggested), time.perf_counter() - started)
    return RankingStatus(topic.slug, True, model.included + model.excluded, 0, likely_from)


def _record(text: PaperText) -> ranking.Record:
    return ranking.Record(pmid=text.pmid, title=text.title, abstract=text.abstract, mesh_headings=text.mesh_headings,
                          keywords=text.keywords, publication_types=text.publication_types, journal=text.journal)


def refresh_quietly(store: Store, topic: Topic) -> RankingStatus | None:
    """`refresh_relevance` for the steps after a run or a decision: a failure is logged, never raised, because
    the run or the decision it follows has succeeded and is kept whatever the ranking does."""
    try:
        return refresh_relevance(store, topic)
    except Exception:
        log.exception("relevance of topic '%s' not refreshed; the papers keep their previous order", topic.slug)
        return None


CHILD_NICENESS = 10  # the separate refresh process yields the CPU to the requests'


def _lower_priority() -> None:
    tune_allocators()
    os.nice(CHILD_NICENESS)


def _refresh_in_child(url: str, topic: Topic) -> None:
    """`refresh_quietly` in the refresher's own process, on a store of its own (one per database, kept)."""
    store = _child_stores.get(url)
    if store is None:
        store = _child_stores[url] = Store(url)
    refresh_quietly(store, topic)


_child_stores: dict[str, Store] = {}


class RelevanceRefresher:
    """Refreshes topics in one background thread, `delay` seconds after the last request for them.

    Requests made while a refresh runs are served by one more refresh after it, so a reviewer's session
    retrains once per pause; `longest` bounds the wait while decisions keep coming (a long session still sees
    its queue reordered). With `separate_process` the training runs in one kept process of its own, niced
    (the web app: training is a few seconds of Python that would otherwise hold the interpreter lock against
    every request). Closing finishes the refresh under way and drops the rest.
    """

    def __init__(self, store: Store, topic_for: Callable[[str], Topic | None], *, delay: float = 2.0,
                 longest: float = 20.0, separate_process: bool = False) -> None:
        self._store = store
        self._topic_for = topic_for
        self._delay = delay
        self._longest = longest
        self._separate = separate_process
        self._process: ProcessPoolExecutor | None = None  # started with the first refresh
        self._pending: dict[str, tuple[float, float]] = {}  # slug: (first request, last request)
        self._condition = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None  # started by the first request

    def request(self, slug: str) -> None:
        now = time.monotonic()
        with self._condition:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="relevance", daemon=True)
                self._thread.start()
            first, _ = self._pending.get(slug, (now, now))
            self._pending[slug] = (first, now)
            self._condition.notify()

    @property
    def closed(self) -> bool:
        """Whether `close` was called (and its thread, if any, has finished or was given up on)."""
        return self._closed

    def close(self, timeout: float = 30.0) -> None:
        with self._condition:
            self._closed = True
            self._pending.clear()
            self._condition.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if self._process is not None:
            self._process.shutdown(wait=True, cancel_futures=True)

    def _due(self, now: float) -> tuple[list[str], float | None]:
        due, wait = [], None
        for slug, (first, last) in self._pending.items():
            at = min(last + self._delay, first + self._longest)
            if at <= now:
                due.append(slug)
            else:
                wait = at - now if wait is None else min(wait, at - now)
        return due, wait

    def _work(self) -> None:
        while True:
            with self._condition:
                while True:
                    if self._closed:
                        return
                    due, wait = self._due(time.monotonic())
                    if due:
                        for slug in due:
                            del self._pending[slug]
                        break
                    self._condition.wait(wait)
            for slug in due:
                topic = self._topic_for(slug)
                if topic is not None:
                    self._refresh(topic)

    def _refresh(self, topic: Topic) -> None:
        if not self._separate:
            refresh_quietly(self._store, topic)
            return
        if self._process is None:
            self._process = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_lower_priority)
        try:
            self._process.submit(_refresh_in_child, self._store.url, topic).result()
        except Exception:  # the process itself failed (refresh_quietly logs the refresh's own failures)
            log.exception("relevance of topic '%s' not refreshed; the papers keep their previous order", topic.slug)
            self._process.shutdown(wait=False, cancel_futures=True)
            self._process = None


__all__ = [
    "LIKELY_SHARE", "RankingStatus", "ranking_status", "scores_stale", "refresh_relevance", "refresh_quietly",
    "RelevanceRefresher",
]
