"""The child side of tracker/facts/process.py: texts in, study facts out, through its standard input and output.

Kept to what reading facts needs (the standard library's pickle and tracker.facts): the child is started with
`python -S`, given the parent's import path, so its memory is the interpreter's and the rules' (BENCHMARKS.md,
backfill).
"""

from __future__ import annotations

import pickle
import signal
import sys
from collections.abc import Sequence
from typing import IO, NamedTuple

from tracker.facts.extract import extract_facts
from tracker.facts.model import StudyFacts


class FactsText(NamedTuple):
    """What a paper's facts are read from."""

    pmid: int
    title: str
    abstract: str
    publication_types: tuple[str, ...]
    mesh_terms: tuple[str, ...]


class FactsRead(NamedTuple):
    """A paper's facts, or why they could not be read (a fault in a rule: the paper is stored without them)."""

    facts: StudyFacts
    fault: str | None = None


def read_one(text: FactsText) -> FactsRead:
    try:
        return FactsRead(extract_facts(text.title, text.abstract, text.publication_types, text.mesh_terms))
    except Exception:  # noqa: BLE001  (a fault in a rule must not keep a paper out of the store)
        import traceback

        return FactsRead(StudyFacts(), traceback.format_exc())


def read_all(texts: Sequence[FactsText]) -> list[FactsRead]:
    return [read_one(text) for text in texts]


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The child's loop: a pickled list of `FactsText` in, the list of their `FactsRead` out, until end-of-file."""
    while True:
        try:
            texts = pickle.load(requests)
        except EOFError:
            return
        pickle.dump(read_all(texts), answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; the child ends with its pipe
    serve(sys.stdin.buffer, sys.stdout.buffer)
