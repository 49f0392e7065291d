"""The shell records of one state directory, read through the typed models.

A damaged record (a corrupt or missing spec.json / state.json) never breaks a listing: it reads as
`lost` with a message that says what is wrong.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from . import admission
from . import layout as lay
from .errors import ShellNotFound, StateDirError
from .models import Spec, State

ID_PATTERN = re.compile(r"shell_[0-9a-f]{8}")


class StateMissing(ValueError):
    """The shell has no state.json: being admitted right now, or damaged when that lasts."""


class Store:
    def __init__(self, layout: lay.Layout) -> None:
        self.layout = layout
        self._ready = False

    def ensure(self) -> None:
        """Create the state directory on first write; a clear error when it cannot be used."""
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
        """Create the shell's directory with its spec.json in one step: readers never see it half made."""
        self.ensure()
        draft = os.path.join(self.layout.shells, f".{spec.shell_id}.new")
        try:
            os.mkdir(draft, mode=0o700)
            lay.write_json(os.path.join(draft, lay.SPEC), spec.model_dump(mode="json"))
            os.rename(draft, self.layout.shell_dir(spec.shell_id))
        except OSError as exc:
            shutil.rmtree(draft, ignore_errors=True)
            raise StateDirError(f"cannot write to the state directory {self.layout.home}: {exc.strerror}; "
                                "choose another with --home or $MGSUP_HOME") from exc

    def remove(self, shell_id: str) -> None:
        """Remove the shell's directory in one step (then its files), so readers never see it half gone."""
        doomed = os.path.join(self.layout.shells, f".{shell_id}.{os.getpid()}.removed")
        try:
            os.rename(self.layout.shell_dir(shell_id), doomed)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateDirError(f"cannot remove {shell_id} from {self.layout.home}: {exc.strerror}; the state "
                                "directory must be writable") from exc
        shutil.rmtree(doomed, ignore_errors=True)

    def exists(self, shell_id: str) -> bool:
        return os.path.isdir(self.layout.shell_dir(shell_id))

    def ids(self) -> Iterator[str]:
        try:
            names = os.listdir(self.layout.shells)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateDirError(f"cannot read the state directory {self.layout.home}: {exc.strerror}") from exc
        yield from (name for name in names if not name.startswith("."))

    def _check_readable(self) -> None:
        """A clear error when the home is not a directory we can read (rather than 'no such shell')."""
        try:
            os.listdir(self.layout.home)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateDirError(f"cannot read the state directory {self.layout.home}: {exc.strerror}") from exc

    def spec(self, shell_id: str) -> Spec:
        """The spec of `shell_id`; ShellNotFound when there is no such shell, ValueError when damaged."""
        if not (ID_PATTERN.fullmatch(shell_id) and self.exists(shell_id)):
            self._check_readable()
            raise ShellNotFound(f"no shell {shell_id!r} in {self.layout.home}; "
                                "'mgsup list' shows the shells on record")
        try:
            with open(self.layout.file(shell_id, lay.SPEC), "rb") as f:
                return Spec.model_validate_json(f.read())
        except FileNotFoundError:
            raise ValueError("spec.json is missing") from None
        except ValidationError as exc:
            raise ValueError(f"spec.json is damaged ({exc.error_count()} problems)") from None

    def state(self, shell_id: str) -> State:
        """The current state, with `lost` recorded for a shell whose supervising process vanished."""
        path = self.layout.file(shell_id, lay.STATE)
        try:
            raw = lay.read_json(path)
            state = State.model_validate(raw)
        except FileNotFoundError:
            raise StateMissing("state.json is missing") from None
        except (ValueError, ValidationError):
            raise ValueError("state.json is damaged") from None
        current = admission.reconcile(self.layout, shell_id, raw)
        return state if current is raw else State.model_validate(current)

    def path(self, shell_id: str, name: str) -> Path:
        return Path(self.layout.file(shell_id, name))
