"""Finding a shell's processes from a test: those that carry its tag in their environment."""

from __future__ import annotations

import psutil

from supervisor.proc import SHELL_ID_VAR


def tagged(shell_id: str) -> list[psutil.Process]:
    """The live (not zombie) processes whose environment names `shell_id`: its job and what the job started."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(SHELL_ID_VAR) == shell_id and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            continue
    return found
