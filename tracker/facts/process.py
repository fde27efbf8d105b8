"""Study facts read on a process of their own, for the long fetches (a backfill, a refetch of many batches).

Reading a paper's facts is pure Python (0.27 ms a paper) and holds the interpreter lock, which a backfill's parsing
and saving threads wait for: 2.7 s of 10,000 records (BENCHMARKS.md, versus-lean). `FactsProcess` hands a batch's
texts to one child process (`python -m tracker.facts.process`: the standard library and tracker.facts only, 15 MB)
through a pipe and waits for its facts without the lock. The child is started with the first batch and ends when
the parent closes its pipe, exits or is killed (it reads end-of-file); it ignores Ctrl-C, which the parent handles.

Nothing depends on the child: if it cannot be started or stops answering, `read` says so once in the log and reads
every later batch in the calling process, with the same rules and the same results.
"""

from __future__ import annotations

import logging
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import IO, NamedTuple

from tracker.facts.extract import extract_facts
from tracker.facts.model import StudyFacts

log = logging.getLogger("tracker.facts")


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
        return FactsRead(StudyFacts(), traceback.format_exc())


def read_all(texts: Sequence[FactsText]) -> list[FactsRead]:
    return [read_one(text) for text in texts]


class FactsAnswerError(Exception):
    """The child answered something other than one `FactsRead` for each text."""


class FactsProcess:
    """One child process that reads study facts for the threads that call `read`, one batch at a time."""

    def __init__(self, command: Sequence[str] | None = None) -> None:
        # -P: the tracker the parent runs, never a folder named tracker in the working directory
        self._command = list(command) if command is not None else [sys.executable, "-P", "-m", "tracker.facts.process"]
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._failed = False  # the child could not be started or stopped answering: read here from now on
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        child = self._child
        return child.pid if child is not None else None

    def read(self, texts: Sequence[FactsText]) -> list[FactsRead]:
        """The facts of `texts`, in order: read by the child, or here when it is not there."""
        with self._lock:
            if self._failed or self._closed:
                return read_all(texts)
            try:
                return self._ask(list(texts))
            except Exception as error:  # noqa: BLE001  (whatever the child did, the facts are read here)
                code = self._stop()
                if self._closed:  # closed under a batch that was abandoned: its result is not used
                    return read_all(texts)
                self._failed = True
                why = f"exit code {code}" if code else (str(error) or type(error).__name__)
                log.warning("the process reading study facts stopped (%s); they are read in this one from now on", why)
                return read_all(texts)

    def _ask(self, texts: list[FactsText]) -> list[FactsRead]:
        child = self._child
        if child is None:
            child = self._child = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                   stderr=subprocess.DEVNULL)
        assert child.stdin is not None and child.stdout is not None
        pickle.dump(texts, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        child.stdin.flush()
        answer = pickle.load(child.stdout)
        if not isinstance(answer, list) or len(answer) != len(texts) or not all(
                isinstance(read, FactsRead) for read in answer):
            raise FactsAnswerError(f"it answered {len(texts)} texts with {type(answer).__name__}")
        return answer

    def close(self) -> None:
        """End the child: it finishes the batch it reads, sees its pipe closed and exits."""
        self._closed = True
        with self._lock:
            self._stop()

    def _stop(self) -> int | None:
        """End the child, if any; its exit code (negative: the signal that ended it)."""
        child, self._child = self._child, None
        if child is None:
            return None
        for stream in (child.stdin, child.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            return child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()

    def __enter__(self) -> FactsProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The child's loop: a pickled list of `FactsText` in, the list of their `FactsRead` out, until end-of-file."""
    while True:
        try:
            texts = pickle.load(requests)
        except EOFError:
            return
        pickle.dump(read_all(texts), answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


if __name__ == "__main__":
    from tracker.facts import process  # the answers' classes by their module's name, as the parent knows them

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; the child ends with its pipe
    process.serve(sys.stdin.buffer, sys.stdout.buffer)
