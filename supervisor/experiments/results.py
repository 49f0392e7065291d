"""The results table: one `Result` row per experiment, kept as `results.json` and `results.csv`.

`results.json` also names the batch that owns the folder (`batch`: the prefix of its shells'
names). `results.png`, when a report drew one, is derived from the table: saving a changed table
removes it, so a plot in the folder always shows the table beside it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from pydantic import BaseModel, model_validator

from .. import lifecycle
from ..errors import InvalidRequest
from ..layout import atomic_write_text

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
RESULTS_PLOT = "results.png"
# A failure reason is one line of at most this many characters (agents' errors can be huge).
REASON_CHARS = 300


class Result(BaseModel):
    """One row of the results table.

    `reason` says why a run did not succeed (mgcoord's `ERROR:` line, a kill, a timeout, an exit
    code); `timed_out` / `stalled` mark runs the batch itself ended (`--timeout`, `--kill-on-stall`);
    `outcome` is `budget_exceeded` for a run stopped, or never started, because the batch's budget
    (or its own) was spent; `attempt` counts the starts of this experiment (a retry or a rerun of a
    killed run adds one). `cost_usd` is this attempt's cost; `earlier_tokens` / `earlier_cost_usd`
    what the experiment's earlier attempts used, so a batch's spending survives reruns.
    """

    experiment_id: str
    label: str
    config: str
    question: str
    params: dict[str, Any] = {}
    attempt: int = 0
    shell_id: str | None = None
    status: str = "pending"
    exit_code: int | None = None
    outcome: str | None = None
    timed_out: bool = False
    stalled: bool = False
    reason: str | None = None
    winner: str | None = None
    duration_seconds: float | None = None
    votes: dict[str, int] = {}
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    earlier_tokens: int = 0
    earlier_cost_usd: float = 0.0
    log_dir: str | None = None
    answer_file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_older_tables(cls, data: Any) -> Any:
        # Tables written by mgsup 0.1 had the shell's `message` where `reason` is now.
        if isinstance(data, dict) and "reason" not in data and data.get("message"):
            return {**data, "reason": data["message"]}
        return data

    @property
    def finished(self) -> bool:
        """The run has ended (whatever the outcome)."""
        return lifecycle.is_ended({"status": self.status})

    @property
    def succeeded(self) -> bool:
        """Exit code 0 and a final answer: a runner that exits 0 without one (MassGen does) has failed."""
        return self.status == "stopped" and self.exit_code == 0 and self.outcome in (None, "answered")

    @property
    def spent_tokens(self) -> int:
        """The tokens of every attempt of this experiment (an unknown count is 0)."""
        return self.earlier_tokens + (self.total_tokens or 0)

    @property
    def spent_usd(self) -> float:
        """The cost of every attempt of this experiment (an unknown cost is 0)."""
        return self.earlier_cost_usd + (self.cost_usd or 0.0)

    @property
    def over_budget(self) -> bool:
        """Stopped, or never started, because a budget was spent: a resumed batch runs it again if it can."""
        return self.outcome == "budget_exceeded"

    @property
    def interrupted(self) -> bool:
        """Ended by someone else's kill, a queue removal or a lost monitor: a resumed batch runs it again."""
        return self.status in ("killed", "lost") and not (self.timed_out or self.stalled)

    @property
    def failed(self) -> bool:
        """Ended without success on its own (or by the batch's timeout or stall kill): kept unless retried."""
        return self.finished and not self.succeeded and not self.interrupted


COLUMNS = list(Result.model_fields)
_JSON_COLUMNS = ("params", "votes")
_BATCH_NAME = re.compile(r"batch-[0-9a-f]{8}")


class ResultsTable:
    """`results.json` and `results.csv` in a folder, both rewritten atomically from the rows."""

    def __init__(self, folder: Path, rows: dict[str, Result], batch: str | None = None) -> None:
        self.folder = folder
        self.rows = rows
        self.batch = batch or new_batch_name()

    @classmethod
    def load(cls, folder: Path) -> ResultsTable:
        """The table in `folder`, or an empty one of a new batch."""
        batch, rows = _read(folder)
        return cls(folder, {row.experiment_id: row for row in rows}, batch)

    def save(self) -> None:
        records = [row.model_dump(mode="json") for row in self.rows.values()]
        atomic_write_text(self.folder / RESULTS_JSON,
                          json.dumps({"batch": self.batch, "results": records}, indent=2) + "\n")
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        writer.writeheader()
        for record in records:
            writer.writerow({**record, **{k: json.dumps(record[k], sort_keys=True) for k in _JSON_COLUMNS}})
        atomic_write_text(self.folder / RESULTS_CSV, text.getvalue())
        (self.folder / RESULTS_PLOT).unlink(missing_ok=True)


def new_batch_name() -> str:
    """`batch-` and 8 hex characters: the prefix of the names of a batch's shells."""
    return f"batch-{secrets.token_hex(4)}"


def load_results(folder: str | os.PathLike[str]) -> list[Result]:
    """The rows of the results table in `folder` (none when there is no table yet)."""
    return _read(Path(folder))[1]


def _read(folder: Path) -> tuple[str | None, list[Result]]:
    path = folder / RESULTS_JSON
    try:
        data = json.loads(path.read_text())
        batch = data.get("batch")
        rows = [Result.model_validate(r) for r in data["results"]]
        return (batch if isinstance(batch, str) and _BATCH_NAME.fullmatch(batch) else None), rows
    except FileNotFoundError:
        return None, []
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidRequest(f"{path} is not a results table ({one_line(str(exc))}): move it away or use "
                             "another folder") from None


def one_line(text: str, limit: int = REASON_CHARS) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

