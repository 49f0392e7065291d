"""Where things live in the state directory, and crash-safe JSON files.

Imported by the monitor before it starts the job, so it stays lean: no pathlib, and JSON through
the C accelerator module `_json` directly, because importing `json` (with `re` and `enum`) would add
several milliseconds to every shell start. Paths are plain strings.
"""

from __future__ import annotations

import _json
import _thread
import os

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
        """Create the state directory (owner-only) and its subdirectories."""
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        for sub in (self.shells, self.running, self.queue):
            os.makedirs(sub, mode=0o700, exist_ok=True)


class _DecoderSettings:
    """What `_json.make_scanner` reads from a decoder: plain JSON, no hooks."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = None
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
    except (StopIteration, SystemError) as exc:
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


def write_json(path: str, data: Any, *, mode: int = 0o600, durable: bool = True) -> None:
    """Replace `path` atomically with `data` as compact JSON (owner-only by default: it is state)."""
    atomic_write_text(path, dumps(data), mode=mode, durable=durable)


def read_json(path: str) -> Any:
    """The parsed content of `path`; raises OSError or ValueError when missing or corrupt."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8") from exc
