"""What a column holds and how its cells are read: kinds, missing values, the CSV dialect.

One reader for every way a value arrives (a CSV cell, a JSON value in a scoring request, a Parquet
cell), so that training, ``mlci predict``, ``mlci serve`` and the release smoke test accept and
refuse the same values, and turn them into the same model input.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from mlci._io import finite_float

NUMERIC = "numeric"
INTEGER = "integer"
BOOLEAN = "boolean"
CATEGORICAL = "categorical"
TEXT = "text"
DATE = "date"
KINDS = (NUMERIC, INTEGER, BOOLEAN, CATEGORICAL, TEXT, DATE)
NUMBERS = (NUMERIC, INTEGER, BOOLEAN)  # given to the model as floats
FEATURE_KINDS = (*NUMBERS, CATEGORICAL)  # text and dates are never features
UNKNOWN_POLICIES = ("refuse", "missing")  # a category outside `values`: an error, or missing
TRUE = ("true", "yes", "t", "y")
FALSE = ("false", "no", "f", "n")
# Version 1 manifests: `dtype` float, int or category (the target's labels).
V1_KINDS = {"float": NUMERIC, "int": INTEGER, "category": CATEGORICAL}


@dataclasses.dataclass(frozen=True)
class Column:
    """One column: its kind, its range or known values, if it may be missing, if it is a feature."""

    name: str
    kind: str
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] = ()  # a categorical column's known values (the target's labels)
    missing: bool = False  # may a cell be missing (a missing token of the dialect)
    feature: bool = True
    why: str = ""  # why a column is not a feature (identifier, date, leaks the target)
    note: str = ""  # what `data init` could not decide for sure, for the reviewer
    unknown: str = "refuse"  # a categorical value outside `values`

    @property
    def labels(self) -> tuple[str, ...]:
        """The target's class labels (a categorical column's values)."""
        return self.values

    @property
    def numeric(self) -> bool:
        """True when the model gets the column as numbers."""
        return self.kind in NUMBERS

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for a version 2 manifest; defaults left out, so the file reads short."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind in (NUMERIC, INTEGER):
            out.update(min=self.min, max=self.max)
        if self.kind == CATEGORICAL:
            out["values"] = list(self.values)
            if self.unknown != "refuse":
                out["unknown"] = self.unknown
        if self.missing:
            out["missing"] = True
        if not self.feature:
            out["feature"] = False
            out["why"] = self.why
        if self.note:
            out["note"] = self.note
        return out


@dataclasses.dataclass(frozen=True)
class Dialect:
    """How the data file is written: CSV separator, spaces, quoting, missing tokens, an index."""

    delimiter: str = ","
    skipinitialspace: bool = False
    quotechar: str = '"'
    missing: tuple[str, ...] = ()  # cell texts meaning "missing", besides an empty cell
    index_column: bool = False  # a first column without a name (pandas' index): not data

    def reader_options(self) -> dict[str, Any]:
        """Keyword arguments of ``csv.reader``."""
        return {
            "delimiter": self.delimiter,
            "skipinitialspace": self.skipinitialspace,
            "quotechar": self.quotechar,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for the manifest."""
        return {
            "delimiter": self.delimiter,
            "skipinitialspace": self.skipinitialspace,
            "quotechar": self.quotechar,
            "missing": list(self.missing),
            "index_column": self.index_column,
        }


def is_missing(text: str, dialect: Dialect) -> bool:
    """An empty cell, or one of the dialect's missing tokens."""
    return not text or text in dialect.missing


def read_cell(
    text: str, column: Column, dialect: Dialect, *, target: bool = False
) -> tuple[Any, str | None]:
    """A CSV cell's value (float, str or None for missing), or None and what is wrong.

    What is wrong does not name the column: each caller places it (line and column, a field).
    """
    text = text.strip()
    if is_missing(text, dialect):
        return _missing(column, text)
    return read_value(text, column, target=target)


def cell_reader(
    column: Column, dialect: Dialect, *, target: bool = False
) -> Callable[[str], tuple[Any, str | None]]:
    """``read_cell`` for one column, made once per file: a number's cell takes a few steps.

    Validation reads every cell of the data; this keeps mlci's reader near the speed of
    ``float()`` for numeric columns, the most common ones.
    """
    if column.kind not in (NUMERIC, INTEGER) or column.min is None or column.max is None:
        return lambda text: read_cell(text, column, dialect, target=target)
    low, high, integer, missing = column.min, column.max, column.kind == INTEGER, dialect.missing

    def read(text: str) -> tuple[Any, str | None]:
        if missing and text.strip() in missing:
            return read_cell(text, column, dialect, target=target)
        try:
            number = float(text)
        except ValueError:
            return read_cell(text, column, dialect, target=target)  # words what is wrong
        if (
            number - number == 0.0
            and low <= number <= high
            and (not integer or number.is_integer())
        ):
            return number, None
        return read_cell(text, column, dialect, target=target)

    return read


def read_value(value: Any, column: Column, *, target: bool = False) -> tuple[Any, str | None]:
    """A value from text, JSON or Parquet, checked against its column; None means missing.

    ``target``: the column holds the labels (its unknown values are always refused).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _missing(column, "null")
    if column.kind in (TEXT, DATE):
        return str(value), None
    if column.kind == CATEGORICAL:
        return _category(value, column, "label" if target else "category")
    if column.kind == BOOLEAN:
        return _boolean(value, column)
    return _number(value, column)


def _missing(column: Column, shown: str) -> tuple[Any, str | None]:
    if column.missing:
        return None, None
    if shown == "null":
        return None, "null is not allowed: the manifest says this column is never missing"
    what = f"missing value ('{shown}')" if shown else "empty value"
    return None, f"{what}; the manifest says this column is never missing"


def _category(value: Any, column: Column, word: str) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None, f"expected one of its categories, got {_shown(value)}"
    text = value if isinstance(value, str) else _number_text(value)
    if text in column.values:
        return text, None
    if column.unknown == "missing" and word == "category":
        return None, None
    return None, f"unknown {word} '{text[:40]}'; allowed: {_allowed(column.values)}"


def _boolean(value: Any, column: Column) -> tuple[Any, str | None]:
    """true/false, yes/no, or the numbers 1 and 0 (also as text: a logged 1.0 reads back)."""
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in TRUE:
            return 1.0, None
        if lowered in FALSE:
            return 0.0, None
    number = finite_float(value)
    if number in (0.0, 1.0):
        return number, None
    return None, f"expected true or false, got {_shown(value)}"


def _number(value: Any, column: Column) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return None, f"expected a number, got {_shown(value)}"
    number = finite_float(value)
    if number is None:
        if not (isinstance(value, (int, float)) or _is_float_text(value)):
            return None, f"not a number: {_shown(value)}"
        return None, f"{_shown(value)} is not a finite number"
    if column.kind == INTEGER and not number.is_integer():
        return None, f"expected an integer, got {_shown(value)}"
    low, high = column.min, column.max
    if low is not None and high is not None and not low <= number <= high:
        return None, (f"{str(value)[:40]} is outside the allowed range [{low:g}, {high:g}]")
    return number, None


def _is_float_text(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _number_text(value: int | float) -> str:
    """An integer category sent as a JSON number (3 or 3.0) reads as its text '3'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _shown(value: Any) -> str:
    """A value in a message, cut short: a message never echoes a whole hostile body."""
    if isinstance(value, str):
        return f"'{value[:40]}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:40]


def _allowed(values: Sequence[str], shown: int = 12) -> str:
    text = ", ".join(values[:shown])
    return text + (f" and {len(values) - shown} more" if len(values) > shown else "")
