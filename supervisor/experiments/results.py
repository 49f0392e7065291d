"""The results table: one `Result` row per experiment, kept as `results.json` and `results.csv`."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from pydantic import BaseModel

from .. import lifecycle
from ..errors import InvalidRequest
from ..layout import atomic_write_text

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"


class Result(BaseModel):
    """One row of the results table."""

    experiment_id: str
    label: str
    config: str
    question: str
    shell_id: str | None = None
    status: str = "pending"
    exit_code: int | None = None
    outcome: str | None = None
    winner: str | None = None
    duration_seconds: float | None = None
    votes: dict[str, int] = {}
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    log_dir: str | None = None
    answer_file: str | None = None
    message: str | None = None

    @property
    def finished(self) -> bool:
        return lifecycle.is_ended({"status": self.status})

    @property
    def succeeded(self) -> bool:
        """Exit code 0 and a final answer: a runner that exits 0 without one (MassGen does) has failed."""
        return self.status == "stopped" and self.exit_code == 0 and self.outcome in (None, "answered")


COLUMNS = list(Result.model_fields)


class ResultsTable:
    """`results.json` and `results.csv` in a folder, both rewritten atomically from the rows."""

    def __init__(self, folder: Path, rows: dict[str, Result]) -> None:
        self.folder = folder
        self.rows = rows

    def save(self) -> None:
        records = [row.model_dump(mode="json") for row in self.rows.values()]
        atomic_write_text(self.folder / RESULTS_JSON, json.dumps({"results": records}, indent=2) + "\n")
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        writer.writeheader()
        for record in records:
            writer.writerow({**record, "votes": json.dumps(record["votes"], sort_keys=True)})
        atomic_write_text(self.folder / RESULTS_CSV, text.getvalue())


def load_results(folder: str | os.PathLike[str]) -> list[Result]:
    """The rows of the results table in `folder` (none when there is no table yet)."""
    path = Path(folder) / RESULTS_JSON
    try:
        data = json.loads(path.read_text())
        return [Result.model_validate(record) for record in data["results"]]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest(f"{path} is not a results table ({exc}): move it away or use another folder") from None
