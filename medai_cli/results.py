"""``medai infer``'s CSV: one row per file, appended as each answer arrives, so that an
interrupted run keeps what it had and a rerun skips it."""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

CSV_NAME = "results.csv"


@dataclass(frozen=True)
class Row:
    file: str
    format: str = ""
    model: str = ""
    version: str = ""
    prediction: str = ""
    """The label the model's decision rule chose (or ``indeterminate``)."""
    confidence: str = ""
    threshold: str = ""
    inference_id: str = ""
    latency_ms: str = ""
    """The model's own time, as the server measured it."""
    round_trip_ms: str = ""
    """Sending the file until its answer arrived, as this client measured it."""
    status: str = ""
    """The HTTP status, or empty when nothing was sent."""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @classmethod
    def answered(cls, file: str, fmt: str, body: dict[str, Any], round_trip_ms: float) -> Row:
        return cls(
            file=file,
            format=fmt,
            model=str(body.get("model_name", "")),
            version=str(body.get("model_version", "")),
            prediction=str(body.get("prediction", "")),
            confidence=f"{float(body.get('confidence_score', 0.0)):.6f}",
            threshold=str(body.get("threshold", "")),
            inference_id=str(body.get("inference_id", "")),
            latency_ms=f"{float(body.get('latency_ms', 0.0)):.3f}",
            round_trip_ms=f"{round_trip_ms:.3f}",
            status="200",
        )


COLUMNS = [f.name for f in fields(Row)]


def read_rows(path: Path) -> list[Row]:
    """The rows of a previous run's CSV (none if there is none)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as file:
        return [
            Row(**{k: v or "" for k, v in found.items() if k in COLUMNS})
            for found in csv.DictReader(file)
            if found.get("file")
        ]


def write_rows(path: Path, rows: list[Row]) -> None:
    """Replace the CSV with ``rows`` (written aside, then moved over it)."""
    aside = path.with_name(path.name + ".tmp")
    with aside.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    os.replace(aside, path)


class RowWriter:
    """Appends rows to the CSV, each flushed as it is written."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, COLUMNS)
        if path.stat().st_size == 0:
            self.writer.writeheader()

    def write(self, row: Row) -> None:
        self.writer.writerow(asdict(row))
        self.file.flush()

    def close(self) -> None:
        self.file.close()
