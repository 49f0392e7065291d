"""The fault-injection layer: fixtures that put the supervisor where ordinary users and machines put it.

- `tiny_home(size)`: a state directory on its own tmpfs (a full disk on demand). Mounting needs
  root or CAP_SYS_ADMIN; without it the test is skipped and the reason says so.
- `special_files`: FIFOs, devices, sockets, huge sparse files and directories where files belong.
- `hostile`: jobs that detach at once, clear their environment, fork in bursts or claim to be monitors.
  Each carries a unique token in its command line, so a survivor is found even without the tag.
- `damaged_home()`: a home with one shell per kind of damage (DAMAGE), plus stray files where
  admission looks, and one healthy shell.
- `nobody`: runs a command as the unprivileged user `nobody`, for ownership tests (needs root).

Tests that use them are marked `faults` (`pytest -m faults` runs them alone).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from supervisor import Supervisor

NOBODY = 65534
# The kinds of damage `damaged_home` plants, one shell each, and what a listing must say of it.
DAMAGE = {
    "nan_in_state": "state.json is damaged",
    "state_is_a_directory": "state.json is damaged",
    "created_1e300": "spec.json is damaged",
    "state_is_a_fifo": "state.json is damaged",
    "state_links_to_dev_zero": "state.json cannot be read",
    "state_is_huge": "state.json is damaged",
    "state_nested_too_deep": "state.json is damaged",
    "state_has_wrong_types": "state.json is damaged",
    "spec_not_utf8": "spec.json is damaged",
    "spec_missing": "spec.json is missing",
    "shell_dir_is_a_link": "is a symbolic link",
    "shell_dir_writable_by_all": "can be written by others",
}


def _spec(shell_id: str, created: float) -> dict[str, object]:
    return {"shell_id": shell_id, "command": "true", "argv": ["/bin/sh", "-c", "true"], "cwd": "/",
            "created": created}


ENDED = {"status": "stopped", "created": 1795643000.0, "start_time": 1795643000.5, "end_time": 1795643001.0,
         "exit_code": 0}


@dataclass
class DamagedHome:
    sup: Supervisor
    shells: dict[str, str]  # kind of damage -> shell id
    healthy: str
    elsewhere: Path  # where the linked shell directory really lives


def make_damaged_home(root: Path) -> DamagedHome:
    """A home holding one shell per kind in DAMAGE, stray files in queue/ and running/, and one healthy shell."""
    home = root / "damaged-home"
    for sub in ("shells", "running", "queue"):
        (home / sub).mkdir(parents=True)
    home.chmod(0o700)
    shells: dict[str, str] = {}
    for n, kind in enumerate(DAMAGE):
        sid = f"shell_d{n:07x}"
        shells[kind] = sid
        folder = home / "shells" / sid
        if kind == "shell_dir_is_a_link":
            folder = root / "elsewhere" / sid
        folder.mkdir(parents=True)
        (folder / "spec.json").write_text(json.dumps(_spec(sid, 1795643000.0 + n)))
        (folder / "state.json").write_text(json.dumps(ENDED))
        state, spec = folder / "state.json", folder / "spec.json"
        if kind == "nan_in_state":
            state.write_text('{"status": "stopped", "exit_code": NaN, "end_time": 1795643001.0}')
        elif kind == "state_is_a_directory":
            state.unlink()
            state.mkdir()
        elif kind == "created_1e300":
            spec.write_text(json.dumps(_spec(sid, 1e300)))
        elif kind == "state_is_a_fifo":
            state.unlink()
            os.mkfifo(state)
        elif kind == "state_links_to_dev_zero":
            state.unlink()
            state.symlink_to("/dev/zero")
        elif kind == "state_is_huge":
            with state.open("r+b") as f:
                f.truncate(64 * 1024 * 1024)  # sparse: costs nothing on disk
        elif kind == "state_nested_too_deep":
            state.write_text("[" * 100_000)
        elif kind == "state_has_wrong_types":
            state.write_text(json.dumps({**ENDED, "status": "running", "monitor_pid": "self", "pid": -1}))
        elif kind == "spec_not_utf8":
            spec.write_bytes(b'{"shell_id": "\xff\xfe"}')
        elif kind == "spec_missing":
            spec.unlink()
        elif kind == "shell_dir_is_a_link":
            (home / "shells" / sid).symlink_to(folder)
        elif kind == "shell_dir_writable_by_all":
            folder.chmod(0o777)
    healthy = "shell_0000aaaa"
    (home / "shells" / healthy).mkdir()
    (home / "shells" / healthy / "spec.json").write_text(json.dumps(_spec(healthy, 1795643100.0)))
    (home / "shells" / healthy / "state.json").write_text(json.dumps(ENDED))
    (home / "queue" / ".DS_Store").touch()
    (home / "queue" / "notes").mkdir()
    (home / "running" / ".DS_Store").touch()
    (home / "running" / "shell_00000bad").mkdir()
    (home / "running" / "README").write_text("not a slot\n")
    return DamagedHome(Supervisor(home, max_concurrent=2), shells, healthy, root / "elsewhere")


@pytest.fixture
def damaged_home(tmp_path: Path) -> Callable[[], DamagedHome]:
    """`damaged_home()` builds a home with every kind of damage in DAMAGE (see `make_damaged_home`)."""
    return lambda: make_damaged_home(tmp_path)


@pytest.fixture
def tiny_home(tmp_path: Path, reaper: object) -> Iterator[Callable[..., Supervisor]]:
    """`tiny_home(size="2m", max_concurrent=...)`: a Supervisor whose home is a fresh tmpfs of that size."""
    mounts: list[Path] = []

    def make(size: str = "2m", **options: object) -> Supervisor:
        point = tmp_path / f"tmpfs-{len(mounts)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
        mounts.append(point)
        reaper.track(point / "home")  # type: ignore[attr-defined]
        return Supervisor(point / "home", **options)  # type: ignore[arg-type]

    yield make
    # The reaper's checks need the shells' records: stop everything before the file system goes.
    problems = reaper.kill_running()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while reaper.leftovers() and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    left = reaper.leftovers()  # type: ignore[attr-defined]
    for p in left:
        p.kill()
    for point in mounts:
        subprocess.run(["umount", "--lazy", str(point)], check=True, capture_output=True)
    assert not problems, problems
    assert not left, f"processes left behind on a tmpfs home: {left}"


@dataclass
class SpecialFiles:
    folder: Path

    def fifo(self, name: str = "fifo") -> Path:
        path = self.folder / name
        os.mkfifo(path)
        return path

    def huge(self, name: str = "huge", size: int = 1 << 30) -> Path:
        """A sparse file of `size` bytes: reading it whole is what must not happen."""
        path = self.folder / name
        with path.open("wb") as f:
            f.truncate(size)
        return path

    def socket(self, name: str = "sock") -> Path:
        path = self.folder / name
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        sock.close()
        return path

    def directory(self, name: str = "dir") -> Path:
        path = self.folder / name
        path.mkdir()
        return path

    @staticmethod
    def is_special(path: Path) -> bool:
        return not stat.S_ISREG(path.lstat().st_mode)


@pytest.fixture
def special_files(tmp_path: Path) -> SpecialFiles:
    folder = tmp_path / "special"
    folder.mkdir()
    return SpecialFiles(folder)


@dataclass
class Hostile:
    """Jobs that make supervision hard. Every command carries `token` in its command line."""

    token: str = field(default_factory=lambda: f"{secrets.randbelow(10**6) + 400}.{secrets.randbelow(10**4):04d}")

    def early_daemon(self) -> str:
        """Detaches at once into its own session, with an empty environment (no tag), then exits."""
        return f"setsid -f env -i sleep {self.token}"

    def scrubbed(self) -> str:
        """Replaces itself with a process that has an empty environment (no tag)."""
        return f"exec env -i sleep {self.token}"

    def fake_monitor(self) -> str:
        """Claims, by the variable alone, to be a monitor of some shell."""
        return f"setsid env MGSUP_MONITOR_OF=x sleep {self.token}"

    def fork_burst(self, count: int = 200) -> list[str]:
        """Forks `count` children as fast as it can (each scrubbed of the tag), then waits."""
        code = (f"import os, time\nfor _ in range({count}):\n    if os.fork() == 0:\n"
                f"        os.execve('/bin/sleep', ['sleep', '{self.token}'], {{}})\n"
                "print('forked', flush=True)\ntime.sleep(600)\n")
        return [sys.executable, "-c", code]

    def survivors(self) -> list[psutil.Process]:
        """Live processes whose command line carries this job's token."""
        found = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if self.token in (p.info["cmdline"] or []) and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except psutil.Error:
                continue
        return found


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    """Hostile job commands; at teardown anything carrying their token is killed (and the test failed)."""
    jobs = Hostile()
    yield jobs
    left = jobs.survivors()
    for p in left:
        p.kill()
    assert not left, f"hostile job processes survived: {[p.info['cmdline'] for p in left]}"


@dataclass
class Nobody:
    uid: int = NOBODY

    def argv(self, *argv: str) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", "--", *argv]

    def run(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*argv), capture_output=True, text=True, timeout=60, env=env, cwd="/")


@pytest.fixture
def nobody() -> Nobody:
    """Run commands as the unprivileged user `nobody` (needs root and setpriv)."""
    if os.geteuid() != 0:
        pytest.skip("running a command as another user needs root")
    if subprocess.run(["setpriv", "--version"], capture_output=True).returncode != 0:
        pytest.skip("setpriv (util-linux) is not installed")
    return Nobody()
