"""Writing output files in one step: a reader (or a crash) never sees half a report, export or message.

Every file the tracker writes for a reader (digests, exports, dry-run messages) goes through `atomic_output`
or `write_output`: written to a temporary file beside the target, then renamed over it. Only a regular file or
a new path is ever replaced: a symbolic link, a named pipe, a device, a socket or a folder at the path is refused
and left as it was (a rename would replace the link or the device node itself, and as root `-o /dev/full`
did). A place that cannot be written raises OutputError (exit code 2) naming the file, the system's reason
and `advice`: what the user of that command can do about it (`-o` for `tracker export`, `--home` for
`tracker run`, which has no `-o`).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from tracker.errors import OutputError


def replaced_mode(path: Path, default: int) -> int:
    """Keep the mode of the file being replaced; a new file gets `default`."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return default


@contextmanager
def atomic_output(path: str | os.PathLike, *, advice: str, mode: int | None = None,
                  make_parents: bool = False) -> Iterator[BinaryIO]:
    """A binary file that appears at `path` only once the block finishes; a failure leaves `path` untouched.

    `mode` defaults to the replaced file's mode, else 0666 minus the umask.
    """
    path = Path(path)
    refuse_special(path, advice)
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as error:
        raise unwritable(path, error, advice) from None
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = replaced_mode(path, 0o666 & ~umask)
        os.chmod(temporary, mode)
        refuse_special(path, advice)  # again: something may have been put there while the file was written
        os.replace(temporary, path)
    except OSError as error:
        with suppress(OSError):
            os.unlink(temporary)
        raise unwritable(path, error, advice) from None
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


SPECIAL_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"),
                 (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def refuse_special(path: Path, advice: str) -> None:
    """OutputError unless `path` is a regular file (not a link to one) or nothing yet."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise unwritable(path, error, advice) from None
    kind = next((name for test, name in SPECIAL_KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a file")
    if kind is not None:
        raise OutputError(f"cannot write {path} (it is {kind}, not a regular file, and is left as it is): {advice}")


def write_output(path: str | os.PathLike, data: bytes | str, *, advice: str, mode: int | None = None,
                 make_parents: bool = False) -> Path:
    """`data` (text is written as UTF-8) at `path` in one step; see `atomic_output`."""
    with atomic_output(path, advice=advice, mode=mode, make_parents=make_parents) as file:
        file.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def unwritable(path: Path, error: OSError, advice: str) -> OutputError:
    return OutputError(f"cannot write {path} ({error.strerror or error}): {advice}")


def home_advice(folder: Path) -> str:
    """What to do about an unwritable folder of the tracker home (reports/, reports/outbox/)."""
    return f"make {folder} writable or choose another home with --home"


OUTPUT_FILE_ADVICE = "choose a writable file for -o, or '-' for stdout"
