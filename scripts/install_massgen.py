"""Install the real MassGen CLI (pinned) into its own virtual environment, once per machine.

    python scripts/install_massgen.py            # builds it if missing; prints the massgen program's path

MassGen cannot share mgsup's environment: it needs `mcp<2`, mgsup needs `mcp>=2`. It is built
under `$XDG_CACHE_HOME/mgsup/massgen-<version>/` (default `~/.cache/mgsup/...`) and reused by every
later call. The build holds a lock, so concurrent calls build it once, and it counts only once
complete, so an interrupted build is redone.
`$MGSUP_MASSGEN` (a path to a `massgen` program) overrides the location; the test suite looks
there too.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

VERSION = "0.1.97"
REQUIREMENTS = (f"massgen=={VERSION}", "mcp<2")
PROGRAM_VAR = "MGSUP_MASSGEN"
COMPLETE = ".complete"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mgsup"


def venv_dir() -> Path:
    return cache_dir() / f"massgen-{VERSION}"


def program() -> Path:
    """Where the massgen program is (or will be once installed)."""
    override = os.environ.get(PROGRAM_VAR)
    return Path(override) if override else venv_dir() / "bin" / "massgen"


def installed() -> bool:
    if os.environ.get(PROGRAM_VAR):
        return os.access(program(), os.X_OK)
    return (venv_dir() / COMPLETE).is_file() and os.access(program(), os.X_OK)


def install(log: bool = True) -> Path:
    """Build the environment unless it exists; the path of its massgen program."""
    if installed():
        return program()
    if os.environ.get(PROGRAM_VAR):
        raise FileNotFoundError(f"${PROGRAM_VAR} names {program()}, which is not an executable program")
    target = venv_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"massgen-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():  # built by another process while this one waited for the lock
            return program()
        # Built in place: a venv's console scripts name their interpreter by absolute path, so it
        # cannot be moved once made. Only the `.complete` marker, written last, makes it count.
        shutil.rmtree(target, ignore_errors=True)
        started = time.monotonic()
        if log:
            print(f"installing {' '.join(REQUIREMENTS)} into {target} (a few minutes, once)", file=sys.stderr)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
            python = str(target / "bin" / "python")
            subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS],
                           check=True)
            subprocess.run([python, "-W", "ignore", "-c", "import massgen.cli"], check=True, stdout=subprocess.DEVNULL)
            (target / COMPLETE).write_text(f"{' '.join(REQUIREMENTS)}\n")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        if log:
            print(f"installed in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return program()


def main() -> int:
    try:
        print(install())
    except FileNotFoundError as exc:
        print(f"install_massgen: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"install_massgen: {' '.join(map(str, exc.cmd))} failed with exit code {exc.returncode}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
