"""Study facts read on a process of their own, for the long fetches (a backfill, a refetch of many batches).

Reading a paper's facts is pure Python (0.27 ms a paper) and holds the interpreter lock, which a backfill's parsing
and saving threads wait for: 2.7 s of 10,000 records (BENCHMARKS.md, versus-lean). `FactsProcess` hands a batch's
texts to one child process (tracker/facts/child.py: the interpreter, pickle and tracker.facts) through a pipe
and waits for its facts without the lock. The child is started with the first batch and ends when
the parent closes its pipe, exits or is killed (it reads end-of-file); it ignores Ctrl-C, which the parent handles.

Nothing depends on the child: if it cannot be started or stops answering, `read` says so once in the log and reads
every later batch in the calling process, with the same rules and the same results.
"""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from tracker.facts.child import FactsRead, FactsText, read_all

log = logging.getLogger("tracker.facts")

SLICE = 100  # texts a request


class FactsAnswerError(Exception):
    """The child answered something other than one `FactsRead` for each text."""


class FactsProcess:
    """One child process that reads study facts for the threads that call `read`, one batch at a time."""

    def __init__(self, command: Sequence[str] | None = None) -> None:
        self._command = list(command) if command is not None else child_command()
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
                # In slices: a whole batch's texts and facts at once held 3 MB more in the child.
                return [read for start in range(0, len(texts), SLICE)
                        for read in self._ask(list(texts[start:start + SLICE]))]
            except Exception as error:  # noqa: BLE001  (whatever the child did, the facts are read here)
                ended = self._stop()
                if self._closed:  # closed under a batch that was abandoned: its result is not used
                    return read_all(texts)
                self._failed = True
                why = ended if ended else (str(error) or type(error).__name__)
                log.warning("the process reading study facts stopped (%s); they are read in this one from now on", why)
                return read_all(texts)

    def _ask(self, texts: list[FactsText]) -> list[FactsRead]:
        child = self._child
        if child is None:
            child = self._child = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                   stderr=subprocess.PIPE)
        assert child.stdin is not None and child.stdout is not None
        pickle.dump(texts, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        child.stdin.flush()
        answer = pickle.load(child.stdout)
        if not isinstance(answer, list) or len(answer) != len(texts) or not all(
                isinstance(read, FactsRead) for read in answer):
            raise FactsAnswerError(f"it answered {len(texts)} texts with {type(answer).__name__}")
        return answer

    def close(self, timeout: float = 10.0) -> None:
        """End the child: it finishes the texts it reads, sees its pipe closed and exits; one that has not answered
        within `timeout` is killed (the thread that waits for it reads them itself, and its batch is not used)."""
        self._closed = True
        if not self._lock.acquire(timeout=timeout):
            child = self._child
            if child is not None:
                child.kill()
            self._lock.acquire()
        try:
            self._stop()
        finally:
            self._lock.release()

    def _stop(self) -> str | None:
        """End the child, if any; how it ended when that was not of its own accord and cleanly: its exit code (negative:
        the signal that ended it) and the last line it wrote to its standard error (the error, when it failed)."""
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
            code = child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            code = child.wait()
        assert child.stderr is not None
        with child.stderr:
            said = child.stderr.read().decode(errors="replace").strip().splitlines()
        if not code:
            return None
        return f"exit code {code}: {said[-1]}" if said else f"exit code {code}"

    def __enter__(self) -> FactsProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def child_command() -> list[str]:
    """The child, as this interpreter: without site's start-up (-S: 2.5 MB less in a virtual environment) or the
    working directory on its path (-P), given this process's import path with the tracker it runs first, so that it
    runs the same code whatever is installed or lies in the working directory."""
    import tracker

    path = [str(Path(tracker.__file__).resolve().parents[1]), *(entry for entry in sys.path if entry)]
    code = "import json, sys\nsys.path[:0] = json.loads(sys.argv[1])\nfrom tracker.facts.child import main\nmain()"
    return [sys.executable, "-S", "-P", "-c", code, json.dumps(path)]


__all__ = ["FactsProcess", "FactsRead", "FactsText", "child_command"]
