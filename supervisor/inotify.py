"""Waiting for changes in a few directories, with the kernel choosing which events wake the waiter.

watchfiles subscribes to every event of a directory, so a waiter on a shell whose job writes a
million lines into its log woke for each write and burned as much CPU as the job (on two cores,
the job took twice as long). Here each directory is watched with its own inotify mask: a shell's
directory for records replaced by rename, and for writes only while they can still matter.
"""

from __future__ import annotations

import ctypes
import os
import select
import time

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_ONLYDIR = 0x01000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
# Files created, replaced (a rename over them), written and closed, or removed; the directory itself removed.
RECORDS = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF

_libc = ctypes.CDLL(None, use_errno=True)
_libc.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)


class Watcher:
    """Directories watched with an inotify mask each; `wait` returns once events came (grouped) or time ran out.

    >>> with Watcher() as watcher:
    ...     watcher.watch({"/tmp/shells/shell_0a1b2c3d": RECORDS})
    ...     changed = watcher.wait(1.0)
    """

    def __init__(self, *, step: float = 0.005, debounce: float = 0.2) -> None:
        self.step = step
        self.debounce = debounce
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise _error("inotify_init1")
        self.fd: int = fd
        self.watches: dict[str, tuple[int, int]] = {}

    def watch(self, wanted: dict[str, int]) -> None:
        """Watch exactly the directories of `wanted` with their masks; one that cannot be watched is left out."""
        for path in [p for p in self.watches if p not in wanted]:
            _libc.inotify_rm_watch(self.fd, self.watches.pop(path)[0])
        for path, mask in wanted.items():
            if self.watches.get(path, (0, -1))[1] == mask:
                continue
            wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask | IN_ONLYDIR)
            if wd >= 0:
                self.watches[path] = (wd, mask)

    def wait(self, timeout: float) -> bool:
        """Whether events came within `timeout` seconds; a burst is grouped (until `step` passes without one).

        The burst is looked at every `step` rather than event by event: a writer that never pauses
        costs the waiter at most debounce / step reads.
        """
        if not select.select([self.fd], [], [], max(0.0, timeout))[0]:
            return False
        until = time.monotonic() + self.debounce
        while self._drain():
            left = min(self.step, until - time.monotonic())
            if left <= 0:
                break
            time.sleep(left)
        return True

    def _drain(self) -> bool:
        got = False
        while True:
            try:
                if not os.read(self.fd, 65536):
                    return got
            except BlockingIOError:
                return got
            got = True

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(call: str) -> OSError:
    errno = ctypes.get_errno()
    return OSError(errno, f"{call}: {os.strerror(errno)}")
