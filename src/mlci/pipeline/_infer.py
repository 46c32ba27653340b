"""``mlci data init``: draft a manifest from a data file, for a person to review.

It detects the CSV dialect (separator, spaces after it, an unnamed index column, the tokens that
mean missing) and each column's kind. It never guesses silently: a column left out of the
features says why, and one it could read two ways carries a note.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlci._io import finite_float, sha256_file
from mlci.errors import MlciError
from mlci.pipeline._columns import (
    BOOLEAN,
    CATEGORICAL,
    DATE,
    FALSE,
    INTEGER,
    NUMERIC,
    TEXT,
    TRUE,
    Column,
    Dialect,
)
from mlci.pipeline._data import MAX_LABELS, Manifest, is_parquet, open_csv, relative_to

DELIMITERS = (",", ";", "\t", "|")
# Cell texts read as missing when the file has them (an empty cell always is).
MISSING_TOKENS = ("NA", "N/A", "n/a", "na", "NaN", "nan", "null", "NULL", "None", "?")
INDEX_NAMES = ("", "Unnamed: 0")  # what pandas' to_csv writes over its index
MAX_CATEGORIES = 50  # more distinct strings than this is text, not a category
FEW_INTEGERS = 10  # integers with this many distinct values or fewer may be codes
_TRACKED = 10_000  # distinct values kept per column; beyond it the column is text or numbers
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_WORDS = frozenset(TRUE + FALSE)  # what a boolean column's text cells say
_ID_NAME = re.compile(r"(^|[_\s])(id|key|uuid|index)$|^id[_\s]", re.IGNORECASE)


@dataclasses.dataclass
class _Stats:
    """What one pass saw of a column."""

    name: str
    count: int = 0
    missing: int = 0
    numbers: int = 0
    integers: int = 0
    booleans: int = 0
    dates: int = 0
    low: float = float("inf")
    high: float = float("-inf")
    distinct: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # value: labels
    overflow: bool = False  # more distinct values than tracked

    def add(self, value: Any, label: str) -> None:
        self.count += 1
        if value is None:
            self.missing += 1
            return
        if isinstance(value, bool) or (isinstance(value, str) and value.lower() in _WORDS):
            self.booleans += 1
        number = finite_float(value) if not isinstance(value, bool) else None
        if number is not None:
            self.numbers += 1
            self.integers += number.is_integer()
            self.low, self.high = min(self.low, number), max(self.high, number)
        elif isinstance(value, str) and _DATE.match(value):  # Parquet's dates arrive as ISO text
            self.dates += 1
        key = _text(value)
        if key in self.distinct:
            self.distinct[key].add(label)
        elif len(self.distinct) < _TRACKED:
            self.distinct[key] = {label}
        else:
            self.overflow = True

    @property
    def present(self) -> int:
        return self.count - self.missing


def infer_manifest(path: Path, target: str, manifest_path: Path) -> Manifest:
    """Draft a manifest for ``path`` (CSV or Parquet): dialect, kinds, ranges, labels, notes."""
    found: list[str] = []
    if is_parquet(path):
        from mlci.pipeline._parquet import parquet_rows

        header, rows = parquet_rows(path)
        dialect = Dialect()
    else:
        dialect = sniff(path)
        header, rows = _csv_rows(path, dialect, found)
    if len(set(header)) != len(header):
        raise MlciError(f"{path}:1: duplicated column names in the header")
    if target not in header:
        raise MlciError(f"{path}:1: target column '{target}' is not in the header {header}")
    stats = {name: _Stats(name) for name in header}
    labels: set[str] = set()
    many = False  # more distinct target values than any classifier's labels: a quantity
    numbers = 0  # target values that are finite numbers
    count = 0
    position = header.index(target) + 1 + int(dialect.index_column)
    for number, row in rows:
        count += 1
        label = row[position - 1 - int(dialect.index_column)]
        place = (
            f"{path}: row {number}, column {position}"
            if is_parquet(path)
            else f"{path}:{number}:{position}"
        )
        if label is None:
            raise MlciError(
                f"{place}: target '{target}' is missing: every row needs a target value "
                "(drop or fill the row, then run init again)"
            )
        numbers += finite_float(label) is not None and not isinstance(label, bool)
        label = _text(label)
        if not many:
            labels.add(label)
            many = len(labels) > MAX_LABELS
        if many and numbers < count:
            raise MlciError(
                f"{place}: target '{target}' has more than {MAX_LABELS} distinct values, and "
                f"not all are numbers: neither class labels nor a quantity to predict"
            )
        for name, value in zip(header, row):
            stats[name].add(value, "" if many else label)
    if count == 0:
        raise MlciError(f"{path}: no data rows: the file has a header only")
    regression = numbers == count and (many or looks_continuous(labels, count))
    columns = [
        _target(stats[name], count, labels, many, regression)
        if name == target
        else describe(stats[name], count, 0 if regression else len(labels))
        for name in header
    ]
    dialect = dataclasses.replace(dialect, missing=tuple(sorted(found)))
    file = relative_to(path, manifest_path.parent)
    return Manifest(manifest_path, file, sha256_file(path), count, target, tuple(columns), dialect)


def _target(stats: _Stats, rows: int, labels: set[str], many: bool, regression: bool) -> Column:
    """The target: class labels, or (many distinct numbers) a quantity with its range."""
    if not regression:
        return Column(stats.name, CATEGORICAL, values=tuple(sorted(labels)))
    kind = INTEGER if stats.integers == rows else NUMERIC
    low, high = _widened(stats.low, stats.high, kind)
    distinct = f"more than {MAX_LABELS}" if many else str(len(labels))
    note = (
        f"a quantity to predict (regression): {distinct} distinct numbers in {rows} rows; if "
        "they are class codes, make the target categorical with its values"
    )
    return Column(stats.name, kind, min=low, max=high, note=note)


FEW_LABELS = 20  # a numeric target with more distinct values, over 5 % of the rows, is a quantity


def looks_continuous(labels: set[str], rows: int) -> bool:
    """Numbers with many distinct values (scikit-learn's diabetes target: 214 in 442 rows)."""
    if len(labels) <= FEW_LABELS or len(labels) * 20 <= rows:
        return False
    return all(finite_float(label) is not None for label in labels)


def sniff(path: Path, sample_bytes: int = 65536) -> Dialect:
    """The CSV dialect: the separator that splits the first lines evenly, spaces, an index."""
    with open_csv(path) as stream:
        sample = stream.read(sample_bytes)
    lines = sample.splitlines()[:50]
    if len(sample) == sample_bytes and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    if not lines or not lines[0].strip():
        raise MlciError(f"{path}:1: file is empty: expected a header line")
    best, widths = ",", 0
    for delimiter in DELIMITERS:
        for spaces in (False, True):  # a quoted field after a space is one field with spaces
            reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=spaces)
            counts = {len(row) for row in reader if row}
            if len(counts) == 1 and (width := counts.pop()) > max(widths, 1):
                best, widths = delimiter, width
    rows = [row for row in csv.reader(lines, delimiter=best) if row]
    later = [cell for row in rows for cell in row[1:]]
    spaced = sum(1 for cell in later if cell.startswith(" "))
    header = next(csv.reader(lines[:1], delimiter=best, skipinitialspace=True))
    return Dialect(
        delimiter=best,
        skipinitialspace=bool(later) and spaced * 2 > len(later),
        index_column=header[0].strip() in INDEX_NAMES,
    )


def _csv_rows(
    path: Path, dialect: Dialect, found: list[str]
) -> tuple[list[str], Iterator[tuple[Any, list[Any]]]]:
    """The header, and the rows' cells with missing tokens as None (each one seen in ``found``)."""
    skip = int(dialect.index_column)
    with open_csv(path) as stream:
        header = next(csv.reader(stream, **dialect.reader_options()), None)
    if not header or not any(cell.strip() for cell in header):
        raise MlciError(f"{path}:1: file is empty: expected a header line")

    def cells() -> Iterator[tuple[Any, list[Any]]]:
        with open_csv(path) as stream:
            reader = csv.reader(stream, **dialect.reader_options())
            next(reader)
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise MlciError(
                        f"{path}:{reader.line_num}: expected {len(header)} fields, found {len(row)}"
                    )
                values: list[Any] = []
                for cell in row[skip:]:
                    text = cell.strip()
                    if text in MISSING_TOKENS and text not in found:
                        found.append(text)
                    values.append(None if not text or text in MISSING_TOKENS else text)
                yield reader.line_num, values

    return [name.strip() for name in header[skip:]], cells()


def describe(stats: _Stats, rows: int, labels: int) -> Column:
    """One column's draft: its kind, range or values, and why it is not a feature if it is not."""
    name, present = stats.name, stats.present
    missing = stats.missing > 0
    if present == 0:
        return Column(name, TEXT, missing=True, feature=False, why="every value is missing")
    distinct = len(stats.distinct) + (1 if stats.overflow else 0)
    unique = not stats.overflow and distinct == present
    if stats.numbers == present:
        kind = INTEGER if stats.integers == present else NUMERIC
        low, high = _widened(stats.low, stats.high, kind)
        column = Column(name, kind, min=low, max=high, missing=missing)
        if kind == INTEGER and unique and present > FEW_INTEGERS and _ID_NAME.search(name):
            why = "identifier: a distinct integer in every row, and named like one"
            return dataclasses.replace(column, feature=False, why=why)
        if kind == INTEGER and distinct <= FEW_INTEGERS:
            note = (
                f"{distinct} distinct integers: read as numbers; if they are codes for "
                "categories, make the column categorical with its values"
            )
            column = dataclasses.replace(column, note=note)
        return _unless_leaking(column, stats, labels)
    if stats.booleans == present and distinct <= 2:
        return _unless_leaking(Column(name, BOOLEAN, missing=missing), stats, labels)
    if stats.dates == present:
        why = "a date: derive features from it (month, weekday) if they help"
        return Column(name, DATE, missing=missing, feature=False, why=why)
    if unique and present > MAX_CATEGORIES:
        why = "identifier or free text: a distinct value in every row"
        return Column(name, TEXT, missing=missing, feature=False, why=why)
    if distinct > MAX_CATEGORIES:
        why = f"text: more than {MAX_CATEGORIES} distinct values in {rows} rows"
        return Column(name, TEXT, missing=missing, feature=False, why=why)
    values = tuple(sorted(stats.distinct))
    column = Column(name, CATEGORICAL, values=values, missing=missing)
    if stats.numbers:
        note = f"{stats.numbers} of {present} values are numbers: read as categories"
        column = dataclasses.replace(column, note=note)
    return _unless_leaking(column, stats, labels)


def _unless_leaking(column: Column, stats: _Stats, labels: int) -> Column:
    """A column whose value alone gives the label in every row leaks the target: not a feature."""
    distinct = len(stats.distinct)
    if stats.overflow or distinct < 2 or distinct > 2 * labels or stats.missing:
        return column
    if all(len(seen) == 1 for seen in stats.distinct.values()) and stats.present > 2 * distinct:
        why = "leaks the target: its value alone gives the label in every row"
        return dataclasses.replace(column, feature=False, why=why)
    return column


def _widened(low: float, high: float, kind: str) -> tuple[float, float]:
    """The observed range widened by its span on each side, never below 0 for positive data."""
    span = (high - low) or abs(high) or 1.0
    floor = 0.0 if low >= 0 else low - span
    bounds = max(floor, round(low - span, 6)), round(high + span, 6)
    if kind == INTEGER:
        return float(math.floor(bounds[0])), float(math.ceil(bounds[1]))
    return bounds


def _text(value: Any) -> str:
    """A value as the text a manifest lists it by (an integral float as an integer)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def review_notes(manifest: Manifest) -> list[str]:
    """What a reviewer of a drafted manifest should check: the dialect, left-out columns, notes."""
    dialect, notes = manifest.dialect, []
    read = []
    if dialect.delimiter != ",":
        read.append(f"separator {dialect.delimiter!r}")
    if dialect.skipinitialspace:
        read.append("spaces after separators")
    if dialect.missing:
        read.append("missing values written as " + ", ".join(f"'{t}'" for t in dialect.missing))
    if dialect.index_column:
        read.append("an unnamed index column (skipped)")
    if read:
        notes.append("read with " + "; ".join(read))
    for column in manifest.columns:
        if not column.feature:
            notes.append(f"{column.name}: not a feature: {column.why}")
        if column.note:
            notes.append(f"{column.name}: {column.note}")
    return notes
