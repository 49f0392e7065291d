"""The results folder of a batch: created if needed, checked usable, and held by one batch at a time.

Two batches writing one table would start every experiment twice and overwrite each other's rows,
so a batch holds an exclusive lock on `<folder>/.batch.lock` (flock) for as long as it runs; a
second one is refused at once with the holder's pid and command line. The kernel drops the lock
when its holder dies, however it dies, so a crashed batch never leaves the folder locked.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
from pathlib import Path
from types import TracebackType

from ..errors import InvalidRequest

LOCK_FILE = ".batch.lock"


class BatchFolder:
    """A results folder held by this batch: `with BatchFolder("results/ab") as folder: ...`.

    Entering creates the folder, checks that it can be written and takes its lock; each failure
    is an `InvalidRequest` that says what to do, raised before anything else is written.

    >>> with BatchFolder("results/ab") as folder:
    ...     rows = run_experiments(plan, folder)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.given = str(path)
        self.path = Path(path).expanduser().absolute()
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """This object holds the folder's lock (between entering and leaving `with`)."""
        return self._fd is not None

    def __enter__(self) -> BatchFolder:
        if self._fd is not None:
            raise RuntimeError(f"{self.given} is already held by this BatchFolder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise InvalidRequest(f"results folder {self.given!r} is a file, not a folder: "
                                 "give --out a folder (new or from an earlier run)") from None
        except OSError as exc:
            raise self._unusable("cannot create", exc) from None
        try:
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise self._unusable("cannot write in", exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise InvalidRequest(f"results folder {self.given!r} is in use by another batch ({holder}): wait "
                                 "for it to end (then run again to resume), or use another --out") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv)}\n".encode(errors="replace"), 0)
        except OSError as exc:
            os.close(fd)
            raise self._unusable("cannot write in", exc) from None
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._fd is not None:
            # Closing the descriptor releases the lock; the file stays (removing it would race a waiter).
            os.close(self._fd)
            self._fd = None

    def _unusable(self, what: str, exc: OSError) -> InvalidRequest:
        why = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        return InvalidRequest(f"{what} results folder {self.given!r}: {why}; give --out a folder you can write to")


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text.splitlines()[0] if text else "its pid is unknown"
