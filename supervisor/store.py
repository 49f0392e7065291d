"""The shell records of one state directory, read through the typed models.

Reads are side-effect free. A damaged record (a missing, corrupt or out-of-range spec.json or
state.json, a shell directory that is a link or that others can write) never breaks a listing:
it reads as damaged with a message that says what is wrong. A home that others can write to is
refused as a whole (StateDirError), before anything in it is read or run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from . import admission
from . import layout as lay
from .errors import ShellNotFound, StateDirError
from .host import Host
from .models import Spec, State
from .records import RecordError


class StateMissing(ValueError):
    """The shell has no state.json: being admitted right now, or damaged when that lasts."""


def unsafe_home_error(layout: lay.Layout, problem: str) -> StateDirError:
    return StateDirError(f"refusing the state directory {layout.home}: {problem}; others could plant shells "
                         f"that would run as you. Make it yours and owner-only (chmod 700), or choose another "
                         "with --home or $MGSUP_HOME")


class Store:
    def __init__(self, layout: lay.Layout, host: Host) -> None:
        self.layout = layout
        self.host = host
        self._ready = False

    def check(self) -> None:
        """StateDirError when the home, or a directory in it, is not one that only this user controls."""
        problem = self.layout.unsafe()
        if problem:
            raise unsafe_home_error(self.layout, problem)

    def _missing(self) -> None:
        """A home that does not exist reads as empty, if it could be created; StateDirError if not."""
        if os.path.lexists(self.layout.home):
            return
        why = _cannot_create(self.layout.home)
        if why:
            raise StateDirError(f"the state directory {self.layout.home} does not exist and cannot be created: "
                                f"{why}; choose another with --home or $MGSUP_HOME")

    def ensure(self) -> None:
        """Create the state directory on first write; a clear error when it cannot be used."""
        self.check()
        if self._ready:
            return
        try:
            self.layout.ensure()
        except OSError as exc:
            raise StateDirError(f"cannot create the state directory {self.layout.home}: {exc.strerror}; "
                                "choose another with --home or $MGSUP_HOME") from exc
        if not os.access(self.layout.shells, os.W_OK | os.X_OK):
            raise StateDirError(f"the state directory {self.layout.home} is not writable; "
                                "choose another with --home or $MGSUP_HOME")
        self._ready = True

    def create(self, spec: Spec) -> None:
        """Create the shell's directory with its spec.json in one step: readers never see it half made.

        The directory also holds the space its monitor needs to record the job's start and end,
        so that a full disk fails here, before anything runs, rather than losing an outcome.
        """
        self.ensure()
        draft = os.path.join(self.layout.shells, f".{spec.shell_id}.new")
        try:
            os.mkdir(draft, mode=0o700)
            os.chmod(draft, 0o700)
            # Not fsynced: it is read back only by this machine's readers, and a crash ends the job anyway.
            lay.write_json(os.path.join(draft, lay.SPEC), spec.model_dump(mode="python"), durable=False)
            for reserve in (lay.RESERVE_RUNNING, lay.RESERVE_END):
                lay.make_reserve(os.path.join(draft, reserve))
            os.rename(draft, self.layout.shell_dir(spec.shell_id))
        except OSError as exc:
            shutil.rmtree(draft, ignore_errors=True)
            raise StateDirError(f"cannot write to the state directory {self.layout.home}: {exc.strerror}; "
                                "choose another with --home or $MGSUP_HOME") from exc

    def remove(self, shell_id: str) -> None:
        """Remove the shell's directory in one step (then its files), so readers never see it half gone.

        A shell "directory" that is a symbolic link is removed as a link: what it points to is not ours.
        """
        doomed = os.path.join(self.layout.shells, f".{shell_id}.{os.getpid()}.removed")
        try:
            os.rename(self.layout.shell_dir(shell_id), doomed)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateDirError(f"cannot remove {shell_id} from {self.layout.home}: {exc.strerror}; the state "
                                "directory must be writable") from exc
        if os.path.islink(doomed) or not os.path.isdir(doomed):
            os.unlink(doomed)
        else:
            shutil.rmtree(doomed, ignore_errors=True)

    def exists(self, shell_id: str) -> bool:
        return lay.is_shell_id(shell_id) and os.path.lexists(self.layout.shell_dir(shell_id))

    def ids(self) -> Iterator[str]:
        try:
            names = os.listdir(self.layout.shells)
        except FileNotFoundError:
            self._missing()
            return
        except OSError as exc:
            raise StateDirError(f"cannot read the state directory {self.layout.home}: {exc.strerror}") from exc
        yield from (name for name in names if lay.is_shell_id(name))

    def require(self, shell_id: str) -> None:
        """ShellNotFound unless `shell_id` names a shell on record (a clear error when the home is unreadable)."""
        if self.exists(shell_id):
            return
        try:
            os.listdir(self.layout.home)
        except FileNotFoundError:
            self._missing()
        except OSError as exc:
            raise StateDirError(f"cannot read the state directory {self.layout.home}: {exc.strerror}") from exc
        raise ShellNotFound(f"no shell {shell_id!r} in {self.layout.home}; 'mgsup list' shows the shells on record")

    def spec(self, shell_id: str) -> Spec:
        """The spec of `shell_id`; ShellNotFound when there is no such shell, ValueError when damaged."""
        self.require(shell_id)
        self._check_dir(shell_id)
        try:
            return Spec.model_validate(lay.read_json(self.layout.file(shell_id, lay.SPEC)))
        except FileNotFoundError:
            raise ValueError("spec.json is missing") from None
        except OSError as exc:
            raise ValueError(f"spec.json cannot be read: {exc.strerror}") from None
        except RecordError as exc:
            raise ValueError(f"spec.json is damaged ({exc.error_count()} problems)") from None
        except ValueError:
            raise ValueError("spec.json is damaged") from None

    def raw_state(self, shell_id: str) -> dict[str, object]:
        """The state.json of `shell_id` as stored; StateMissing or ValueError when it cannot be used."""
        return self._read_state(shell_id)[0]

    def state(self, shell_id: str) -> State:
        """The state as it reads now: `lost` for a shell whose supervising process vanished.

        Nothing is written or signalled; `admission.settle` records and acts on what this reports.
        """
        raw, state = self._read_state(shell_id)
        current = admission.view(self.layout, shell_id, raw, self.host)
        if current is raw:
            return state
        try:
            return State.model_validate(current)
        except RecordError:
            raise ValueError("state.json is damaged") from None

    def _read_state(self, shell_id: str) -> tuple[dict[str, object], State]:
        self._check_dir(shell_id)
        try:
            raw = lay.read_json(self.layout.file(shell_id, lay.STATE))
            return raw, State.model_validate(raw)
        except FileNotFoundError:
            raise StateMissing("state.json is missing") from None
        except OSError as exc:
            raise ValueError(f"state.json cannot be read: {exc.strerror}") from None
        except ValueError:
            raise ValueError("state.json is damaged") from None

    def path(self, shell_id: str, name: str) -> Path:
        return Path(self.layout.file(shell_id, name))

    def _check_dir(self, shell_id: str) -> None:
        problem = lay.safe_dir(self.layout.shell_dir(shell_id))
        if problem:
            raise ValueError(f"refused: {problem}")


def _cannot_create(path: str) -> str | None:
    """Why a directory could not be made at the missing `path`, as far as can be told without making it."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{parent} is not a directory"
    try:
        info = os.statvfs(parent)
    except OSError as exc:
        return f"{parent} cannot be examined ({exc.strerror})"
    if info.f_flag & os.ST_RDONLY:
        return f"{parent} is on a read-only file system"
    # Kernel file systems (/proc, /sys) have no blocks to store files in.
    if info.f_blocks == 0:
        return f"{parent} is on a file system that holds no files of its own (such as /proc or /sys)"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable"
    return None
