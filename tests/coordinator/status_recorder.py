"""``python status_recorder.py ARGS``: mgcoord, also appending every status.json version it writes to
the file named by ``$STATUS_HISTORY`` (one JSON line: the text, and whether the final answer file
existed at that moment).

Agent statuses such as ``restarting`` last from one write to the next, a few milliseconds; a test
that samples the file can miss them on a loaded machine. The record holds every write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from coordinator import status
from coordinator.cli import main

_write = status.atomic_write_text


def _recording_write(path: Path, text: str, **options: Any) -> None:
    _write(path, text, **options)
    winner = json.loads(text)["results"]["winner"]
    answer_exists = bool(winner) and (path.parent / "final" / winner / "answer.txt").is_file()
    with open(os.environ["STATUS_HISTORY"], "a", encoding="utf-8") as history:
        history.write(json.dumps({"text": text, "answer_exists": answer_exists}) + "\n")


status.atomic_write_text = _recording_write

if __name__ == "__main__":
    main()
