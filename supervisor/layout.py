"""Where things live in the state directory, and crash-safe JSON files.

Imported by the monitor before it starts the job, so it stays lean: no pathlib, and JSON through
the C accelerator module `_json` directly, because importing `json` (with `re` and `enum`) would add
several milliseconds to every shell start. Paths are plain strings.
"""

from __future__ import annotations

import _json
import _thread
import os
import stat

# Annotations only: importing `typing` at run time would slow the monitor's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATE = "state.json"
SPEC = "spec.json"
STDOUT = "stdout.log"
STDERR = "stderr.log"
ENV = "env.json"
KILL_REQUEST = "kill.json"
MONITOR_LOG = "monitor.log"
# What an ended job printed of the automation output contract, recorded by its first reader.
PRINTED = "printed.json"
# Space set aside when a shell is created, so that its monitor can record the job's start and its
# outcome on a full disk: one for each record, filled in place and renamed over state.json.
RESERVE_RUNNING = ".reserve-running"
RESERVE_END = ".reserve-end"
RESERVE_BYTES = 4096
# Records are small; a larger file is damage (or hostile), not something to read into memory.
MAX_RECORD_BYTES = 16 * 1024 * 1024
SHELL_ID_LENGTH = len("shell_") + 8


def is_shell_id(name: object) -> bool:
    """True for a well-formed shell id: `shell_` and 8 lowercase hex digits."""
    return (isinstance(name, str) and len(name) == SHELL_ID_LENGTH and name.startswith("shell_")
            and all(c in "0123456789abcdef" for c in name[6:]))


class UnsafeHome(PermissionError):
    """The home, or a directory in it, is not one that only this user controls."""


def default_home() -> str:
    """The state directory chosen by the environment: $MGSUP_HOME, $XDG_STATE_HOME/mgsup, ~/.local/state/mgsup."""
    if os.environ.get("MGSUP_HOME"):
        return os.path.expanduser(os.environ["MGSUP_HOME"])
    if os.environ.get("XDG_STATE_HOME"):
        return os.path.join(os.path.expanduser(os.environ["XDG_STATE_HOME"]), "mgsup")
    return os.path.expanduser("~/.local/state/mgsup")


class Layout:
    """Paths of one state directory."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = os.path.abspath(os.fspath(home))
        self.shells = os.path.join(self.home, "shells")
        self.running = os.path.join(self.home, "running")
        self.queue = os.path.join(self.home, "queue")
        self.lock = os.path.join(self.home, "admission.lock")

    def shell_dir(self, shell_id: str) -> str:
        return os.path.join(self.shells, shell_id)

    def file(self, shell_id: str, name: str) -> str:
        return os.path.join(self.shells, shell_id, name)

    def ensure(self) -> None:
        """Create the state directory (owner-only, whatever the umask) and its subdirectories."""
        if not os.path.isdir(self.home):
            os.makedirs(self.home, mode=0o700, exist_ok=True)
            os.chmod(self.home, 0o700)
        for sub in (self.shells, self.running, self.queue):
            try:
                os.mkdir(sub, 0o700)
            except FileExistsError:
                continue
            os.chmod(sub, 0o700)

    def unsafe(self) -> str | None:
        """Why this home must not be used, or None: what `safe_dir` says of it or of a directory in it.

        A home that others can write to lets them plant shells that this user would then run, so it
        is refused the way ssh refuses a ~/.ssh that others can write.
        """
        for path in (self.home, self.shells, self.running, self.queue):
            problem = safe_dir(path, follow=path == self.home)
            if problem:
                return problem
        return None


def safe_dir(path: str, *, follow: bool = False) -> str | None:
    """Why `path` is not a directory only this user controls, or None.

    None too when it cannot be examined (missing, under a file, unreadable): whatever then uses it
    says why it cannot. `follow=False` refuses a symbolic link: inside a home, every directory is
    one mgsup made.
    """
    try:
        info = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
    if info.st_uid != os.geteuid():
        return f"{path} belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})"
    if info.st_mode & 0o022:
        return f"{path} can be written by others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


class _DecoderSettings:
    """What `_json.make_scanner` reads from a decoder: plain JSON, no hooks, no NaN or Infinity."""

    strict = True
    parse_constant = staticmethod(_no_constants)
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict[str, str] = {}  # noqa: RUF012 - read by the C scanner, never mutated here


def _unsupported(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_scan = _json.make_scanner(_DecoderSettings())  # type: ignore[arg-type]  # duck-typed decoder settings
_encode = _json.make_encoder(None, _unsupported, _json.encode_basestring_ascii, None, ":", ",", False, False, False)


def dumps(data: Any) -> str:
    """Compact JSON text of `data` (dicts, lists, strings, numbers, booleans, None)."""
    return "".join(_encode(data, 0))


def loads(text: str) -> Any:
    """The value of the JSON document `text`; ValueError when it is not one."""
    text = text.strip()
    try:
        value, end = _scan(text, 0)
    except (StopIteration, SystemError, RecursionError) as exc:
        raise ValueError("not a JSON document") from exc
    if end != len(text):
        raise ValueError("extra data after the JSON document")
    return value


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `text` atomically: readers see the old or the new content, never a mix.

    The temporary file sits in the same directory, since a rename is only atomic within one file
    system. `durable=False` skips the fsync, for records that are replaced moments later or rebuilt
    from others (slot markers, the transient `starting` and `running` states, progress files): the
    rename still keeps them whole, and each fsync costs time on a busy disk.
    """
    path = os.fspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.{_thread.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        payload = memoryview(text.encode())
        while payload:
            payload = payload[os.write(fd, payload):]
        if durable:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json(path: str, data: Any, *, mode: int = 0o600, durable: bool = True, reserve: str | None = None) -> None:
    """Replace `path` atomically with `data` as compact JSON (owner-only by default: it is state).

    With `reserve` (a file `make_reserve` made beside `path`), the record is written into the
    space that file already holds and renamed over `path`, so that it needs no new space: an
    outcome is still recorded on a full disk. Without the reserve (used, or too small), a plain
    atomic write.
    """
    text = dumps(data)
    if reserve is not None:
        payload = text.encode()
        try:
            fd = os.open(reserve, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                if os.fstat(fd).st_size >= len(payload):
                    os.pwrite(fd, payload, 0)
                    os.ftruncate(fd, len(payload))
                    if durable:
                        os.fsync(fd)
                    os.close(fd)
                    fd = -1
                    os.replace(reserve, path)
                    return
            finally:
                if fd >= 0:
                    os.close(fd)
    atomic_write_text(path, text, mode=mode, durable=durable)


def make_reserve(path: str) -> None:
    """Set aside RESERVE_BYTES at `path` (written, not sparse, so the space is really taken)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        payload = memoryview(b" " * RESERVE_BYTES)
        while payload:
            payload = payload[os.write(fd, payload):]
    finally:
        os.close(fd)


def open_regular(path: str | os.PathLike[str], *, follow: bool = False) -> int:
    """A read-only descriptor of `path` when it is a regular file; OSError, or ValueError for any other kind.

    Never blocks (a FIFO put in a file's place) and, unless `follow`, never follows a symbolic link.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{os.fspath(path)} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bounded(path: str | os.PathLike[str], limit: int, *, follow: bool = False) -> tuple[bytes, float]:
    """The content and modification time of the regular file `path`; ValueError when over `limit` bytes.

    Both come from one descriptor, so a rename in between cannot pair new content with an old time;
    a file that grows while it is read is never read past the limit.
    """
    fd = open_regular(path, follow=follow)
    try:
        info = os.fstat(fd)
        if info.st_size > limit:
            raise ValueError(f"{os.fspath(path)} is larger than {limit} bytes")
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    if left <= 0:
        raise ValueError(f"{os.fspath(path)} is larger than {limit} bytes")
    return b"".join(chunks), info.st_mtime


def read_json(path: str) -> Any:
    """The parsed content of the record `path`; raises OSError or ValueError when missing or corrupt.

    Only a regular file of at most MAX_RECORD_BYTES is read, without following a symbolic link
    and without blocking: a FIFO, a device or a huge file in its place is damage.
    """
    data, _ = read_bounded(path, MAX_RECORD_BYTES)
    try:
        return loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8") from exc
