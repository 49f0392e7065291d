"""The final answer of a coordination run, as text for the shell page."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

ANSWER_BYTES = 256 * 1024


def final_answer(status: Mapping[str, Any], limit: int = ANSWER_BYTES) -> str | None:
    """The text of the run's final answer file, or None when there is none (yet).

    The path comes from what the job printed, so it is read only when it lies inside the run's own
    log directory: a job cannot make the dashboard show another file.
    """
    summary = status.get("coordination") or {}
    answer_file, log_dir = summary.get("answer_file"), status.get("log_dir")
    if not answer_file or not log_dir:
        return None
    path, root = os.path.realpath(answer_file), os.path.realpath(log_dir)
    if os.path.commonpath([path, root]) != root:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return None
    text = data[:limit].decode("utf-8", errors="replace")
    return text + "\n[…]" if len(data) > limit else text
