"""Writing files in one step: a reader (or a crash) never sees half a report, export or message."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO


def replaced_mode(path: Path, default: int) -> int:
    """Keep the mode of the file being replaced; a new file gets `default`."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return default


@contextmanager
def atomic_output(path: str | os.PathLike, *, mode: int | None = None, make_parents: bool = False) -> Iterator[BinaryIO]:
    """A binary file that appears at `path` only once the block finishes; a failure leaves `path` untouched.

    `mode` defaults to the replaced file's mode, else 0666 minus the umask. OSError propagates, so each
    caller can say what to do about an unwritable place.
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = replaced_mode(path, 0o666 & ~umask)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


def write_atomically(path: str | os.PathLike, data: bytes | str, *, mode: int | None = None,
                     make_parents: bool = False) -> Path:
    with atomic_output(path, mode=mode, make_parents=make_parents) as file:
        file.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)
