"""A bounded, rotating sample of the rows the server scored: what serving sees, for skew checks.

``[tool.mlci.serve] sample_log`` names a CSV file; ``mlci drift --serving-log FILE`` compares it
with production's training data, with the statistics of batch drift. The newest rows are in
FILE and the previous ones in ``FILE.1``; each holds at most half of ``sample_log_bytes``, so
the two never take more than that on disk. Each file starts with a header of the served
version's features, and a version with other features starts a new file.
"""

from __future__ import annotations

import csv
import io
import random
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlci.pipeline import Dialect

ROTATED = ".1"
_PLAIN = Dialect()


class SampleLog:
    """Appends a random share of each request's rows; never more than ``max_bytes`` in all."""

    def __init__(self, path: Path, max_bytes: int, rate: float = 1.0, seed: int = 0) -> None:
        self.path = path
        self.limit = max(1, max_bytes // 2)  # per file: the current one and the rotated one
        self.rate = rate
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.features: tuple[str, ...] | None = None

    def write(
        self, features: Sequence[str], rows: Sequence[Sequence[Any]], dialect: Dialect = _PLAIN
    ) -> int:
        """Log a sample of ``rows``; how many rows were written.

        Written in the data's dialect, so that `mlci drift --serving-log` reads the log as it
        reads the data: categories as text, a missing value as an empty cell.
        """
        with self.lock:
            chosen = [row for row in rows if self.rate >= 1 or self.random.random() < self.rate]
            if not chosen:
                return 0
            index = dialect.index_column  # the data has an unnamed index column first
            header = _line([""] * index + list(features), dialect)
            lines = [
                _line(["0"] * index + [_cell(value) for value in row], dialect) for row in chosen
            ]
            if tuple(features) != self.features or not self.path.exists():
                self._start(header)
                self.features = tuple(features)
            size = self.path.stat().st_size
            text = "".join(lines)
            if size + len(text) > self.limit:
                self._start(header)  # the current file becomes FILE.1, the older one goes
                size = len(header)
                room = self.limit - size
                kept = []
                for line in lines:  # a batch bigger than a whole file keeps what fits
                    if len(line) > room:
                        break
                    kept.append(line)
                    room -= len(line)
                lines, text = kept, "".join(kept)
            with self.path.open("a", encoding="utf-8") as stream:
                stream.write(text)
            return len(lines)

    def _start(self, header: str) -> None:
        """A new current file with ``header``; the current one, if any, is kept as FILE.1."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.replace(self.path.with_name(self.path.name + ROTATED))
        self.path.write_text(header, encoding="utf-8")


def _cell(value: Any) -> str:
    """A logged value: a number as Python writes it exactly, a category as is, missing empty."""
    if value is None:
        return ""
    return repr(float(value)) if isinstance(value, (int, float)) else str(value)


def _line(cells: Sequence[str], dialect: Dialect) -> str:
    """One CSV line in ``dialect`` (quoted where a cell holds the separator)."""
    out = io.StringIO()
    csv.writer(out, delimiter=dialect.delimiter, quotechar=dialect.quotechar).writerow(cells)
    return out.getvalue().replace("\r\n", "\n")


def serving_batch(path: Path, work: Path) -> Path:
    """The log's rows as one CSV (``FILE.1`` then FILE, when their columns agree)."""
    rotated = path.with_name(path.name + ROTATED)
    if not rotated.exists():
        return path
    older = rotated.read_text(encoding="utf-8").splitlines(keepends=True)
    newer = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if not older or not newer or older[0] != newer[0]:
        return path  # another version's columns: the newest file alone
    combined = work / path.name
    combined.write_text("".join([*older, *newer[1:]]), encoding="utf-8")
    return combined
