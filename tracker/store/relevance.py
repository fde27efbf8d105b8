"""Reading what the relevance model learns from, and keeping its scores (tracker/review/relevance.py decides when).

Scores are written in short transactions of WRITE_BATCH rows with a pause between them, so that a reviewer's
decision (or any other writer) waits for one batch, never for a whole topic's rescoring; the ranking state, which
says which decisions the scores learned from, is written last, so a refresh cut short leaves the previous state
standing and the next refresh does it again (tracker/review/relevance.py `scores_stale`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, insert, select

from tracker.store.database import Store
from tracker.store.decisions import StateRule
from tracker.store.models import Decision, PaperRow, RankingState, RelevanceScore, Screening, TopicPaper
from tracker.store.rows import chunked

_paper = PaperRow.__table__
_membership = TopicPaper.__table__
_score = RelevanceScore.__table__
_state = RankingState.__table__
_decision = Decision.__table__
_screening = Screening.__table__
READ_BATCH = 2000
WRITE_BATCH = 2000  # rows per transaction: about 10 ms of SQLite's write lock (BENCHMARKS.md, load)
BATCH_PAUSE = 0.005  # seconds between two batches, in which a writer waiting for the lock gets it


@dataclass(frozen=True)
class PaperText:
    """What the model reads about a stored paper, from the plain text columns (no JSON decoded)."""

    pmid: int
    title: str
    abstract: str
    mesh_headings: tuple[str, ...]
    keywords: tuple[str, ...]
    publication_types: tuple[str, ...]
    journal: str | None


def _listed(text: str | None, *, marks: bool = False) -> tuple[str, ...]:
    items = [item.strip() for item in (text or "").split("; ")]
    return tuple(item.rstrip("*") if marks else item for item in items if item)


def topic_texts(store: Store, topic: str) -> Iterator[PaperText]:
    """Every paper of `topic`, in PMID order."""
    members = select(_membership.c.pmid).where(_membership.c.topic == topic)
    statement = (select(_paper.c.pmid, _paper.c.title, _paper.c.abstract, _paper.c.mesh_terms, _paper.c.keywords_text,
                        _paper.c.publication_types_text, _paper.c.journal)
                 .where(_paper.c.pmid.in_(members)).order_by(_paper.c.pmid))
    with store.connect() as connection:
        for row in connection.execution_options(yield_per=READ_BATCH).execute(statement):
            yield PaperText(row.pmid, row.title or "", row.abstract or "", _listed(row.mesh_terms, marks=True),
                            _listed(row.keywords_text), _listed(row.publication_types_text), row.journal)


def topic_states(store: Store, topic: str, rule: StateRule) -> dict[int, str]:
    """The screening state of every paper of `topic` that has a decision (the states of tracker/review/screening.py)."""
    statement = select(_screening.c.pmid, rule.state_sql(_screening)).where(_screening.c.topic == topic,
                                                                            _screening.c.stage == rule.stage)
    with store.connect() as connection:
        return {pmid: state for pmid, state in connection.execute(statement)}


def unscored_count(store: Store, topic: str) -> int:
    """Papers of `topic` without a score (new since the last refresh)."""
    scored = select(_score.c.pmid).where(_score.c.topic == topic)
    with store.connect() as connection:
        return connection.execute(select(func.count()).select_from(_membership).where(
            _membership.c.topic == topic, _membership.c.pmid.not_in(scored))).scalar_one()


def ranking_state(store: Store, topic: str) -> RankingState | None:
    with store.connect() as connection:
        row = connection.execute(_RANKING_STATE, {"topic": topic}).mappings().first()
    return RankingState(**row) if row else None


_RANKING_STATE = select(_state).where(_state.c.topic == bindparam("topic"))  # read by every screening page


def save_scores(store: Store, state: RankingState, scores: Mapping[int, float]) -> None:
    """Replace the topic's scores (`scores`: one for each of its papers) batch by batch, drop those of papers no
    longer in it, then write its ranking state."""
    values = [{"topic": state.topic, "pmid": pmid, "score": score} for pmid, score in sorted(scores.items())]
    for index, batch in enumerate(chunked(values, WRITE_BATCH)):
        if index:
            time.sleep(BATCH_PAUSE)
        with store.engine.begin() as connection:
            store.upsert(connection, _score, batch, ["topic", "pmid"])
    members = select(_membership.c.pmid).where(_membership.c.topic == state.topic)
    with store.engine.begin() as connection:
        connection.execute(delete(_score).where(_score.c.topic == state.topic, _score.c.pmid.not_in(members)))
        connection.execute(delete(_state).where(_state.c.topic == state.topic))
        connection.execute(insert(_state).values(topic=state.topic, included=state.included, excluded=state.excluded,
                                                 decision_mark=state.decision_mark, papers=state.papers,
                                                 likely_from=state.likely_from, trained_at=state.trained_at,
                                                 seconds=state.seconds))


def clear_scores(store: Store, topic: str) -> None:
    """The topic's ranking state, then its scores WRITE_BATCH at a time."""
    with store.engine.begin() as connection:
        connection.execute(delete(_state).where(_state.c.topic == topic))
    while True:
        batch = select(_score.c.pmid).where(_score.c.topic == topic).limit(WRITE_BATCH)
        with store.engine.begin() as connection:
            gone = connection.execute(delete(_score).where(_score.c.topic == topic, _score.c.pmid.in_(batch))).rowcount
        if gone < WRITE_BATCH:
            return
        time.sleep(BATCH_PAUSE)


def scores_of(store: Store, topics: Sequence[str], pmids: Sequence[int]) -> dict[int, float]:
    """Each paper's highest score among `topics` (papers no topic scored are absent)."""
    found: dict[int, float] = {}
    with store.connect() as connection:
        for chunk in chunked(list(dict.fromkeys(pmids)), 500):
            found.update({pmid: score for pmid, score in connection.execute(
                _BEST_SCORES, {"topics": list(topics), "pmids": chunk})})
    return found


_BEST_SCORES = (select(_score.c.pmid, func.max(_score.c.score))
                .where(_score.c.topic.in_(bindparam("topics", expanding=True)),
                       _score.c.pmid.in_(bindparam("pmids", expanding=True))).group_by(_score.c.pmid))


def score_column(topics: Sequence[str], pmid_column):
    """The paper's highest score among `topics` as a scalar subquery (NULL when none scored it)."""
    return (select(func.max(_score.c.score)).where(_score.c.topic.in_(list(topics)), _score.c.pmid == pmid_column)
            .scalar_subquery())


__all__ = [
    "PaperText", "topic_texts", "topic_states", "unscored_count", "ranking_state",
    "save_scores", "clear_scores", "scores_of", "score_column"
]
