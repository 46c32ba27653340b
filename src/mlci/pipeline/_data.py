"""The data manifest (hash, rows, schema) and a streaming validator that reports every problem."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from mlci._io import atomic_write_json, finite_float, read_json, sha256_file
from mlci.errors import MlciError

NUMERIC = ("float", "int")
DTYPES = (*NUMERIC, "category")
MANIFEST_VERSION = 1
MAX_LABELS = 1000  # more distinct target values than this is regression, not classification


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of the schema: a numeric range or a set of labels."""

    name: str
    dtype: str
    min: float | None = None
    max: float | None = None
    labels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for the manifest."""
        if self.dtype == "category":
            return {"name": self.name, "dtype": self.dtype, "labels": list(self.labels)}
        return {"name": self.name, "dtype": self.dtype, "min": self.min, "max": self.max}


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What the data file must look like, and the hash and row count it was recorded with."""

    path: Path
    file: str
    sha256: str
    rows: int
    target: str
    columns: tuple[Column, ...]

    @property
    def data_path(self) -> Path:
        """The data file the manifest describes, relative to the manifest's folder."""
        return self.path.parent / self.file

    @property
    def features(self) -> tuple[Column, ...]:
        """Every column but the target, in manifest order."""
        return tuple(column for column in self.columns if column.name != self.target)

    @property
    def target_column(self) -> Column:
        """The label column."""
        return next(column for column in self.columns if column.name == self.target)

    def schema(self) -> dict[str, Any]:
        """What a model trained on this data expects and answers: features, target, labels."""
        return {
            "features": [column.name for column in self.features],
            "target": self.target,
            "labels": list(self.target_column.labels),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for the manifest file."""
        return {
            "version": MANIFEST_VERSION,
            "file": self.file,
            "sha256": self.sha256,
            "rows": self.rows,
            "target": self.target,
            "columns": [column.to_dict() for column in self.columns],
        }

    def save(self) -> None:
        """Write the manifest atomically."""
        atomic_write_json(self.path, self.to_dict(), sort_keys=False)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One finding, located as precisely as possible: file, line and column."""

    file: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        place = self.file
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        return f"{place}: {self.message}"


@dataclasses.dataclass
class Report:
    """The outcome of a validation: rows seen, the file's hash, and every problem found."""

    file: str
    rows: int = 0
    sha256: str | None = None
    problems: list[Problem] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def add(self, message: str, line: int | None = None, column: int | None = None) -> None:
        """Record a problem."""
        self.problems.append(Problem(self.file, message, line, column))


@dataclasses.dataclass
class Table:
    """Rows read into memory for training, prediction or drift: features by column, labels."""

    feature_names: tuple[str, ...]
    features: list[list[float]]
    labels: list[str] | None


def load_manifest(path: Path) -> Manifest:
    """Read and check a manifest; every malformed field is named."""
    return parse_manifest(read_json(path, "data manifest"), str(path), path)


def parse_manifest(raw: Any, where: str, path: Path | None = None) -> Manifest:
    """Check a manifest read from ``where`` (a file, or a registry object's URL)."""
    if not isinstance(raw, dict):
        raise MlciError(f"{where}: the manifest must be a JSON object")
    for key, kind in (
        ("file", str),
        ("sha256", str),
        ("rows", int),
        ("target", str),
        ("columns", list),
    ):
        if not isinstance(raw.get(key), kind):
            raise MlciError(f"{where}: field '{key}' is missing or not a {kind.__name__}")
    columns = tuple(
        _column(item, f"{where}: columns[{index}]") for index, item in enumerate(raw["columns"])
    )
    names = [column.name for column in columns]
    if len(set(names)) != len(names):
        raise MlciError(f"{where}: columns: duplicated column name")
    if raw["target"] not in names:
        raise MlciError(f"{where}: target '{raw['target']}' is not one of the columns {names}")
    for index, column in enumerate(columns):
        if column.dtype == "category" and column.name != raw["target"]:
            raise MlciError(
                f"{where}: columns[{index}] ({column.name}): only the target may be a category; "
                "mlci trains on numeric features (encode the column as numbers first)"
            )
        if column.name == raw["target"] and column.dtype != "category":
            raise MlciError(
                f"{where}: columns[{index}] ({column.name}): the target must be a category "
                "with its labels listed"
            )
    path = Path(where) if path is None else path
    return Manifest(path, raw["file"], raw["sha256"], raw["rows"], raw["target"], columns)


def _column(item: Any, where: str) -> Column:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise MlciError(f"{where}: must be an object with a string 'name'")
    dtype = item.get("dtype")
    if dtype not in DTYPES:
        raise MlciError(
            f"{where} ({item['name']}): dtype must be one of {', '.join(DTYPES)}, got {dtype!r}"
        )
    if dtype == "category":
        labels = item.get("labels")
        if (
            not isinstance(labels, list)
            or not labels
            or not all(isinstance(x, str) for x in labels)
        ):
            raise MlciError(
                f"{where} ({item['name']}): 'labels' must be a non-empty list of strings"
            )
        return Column(item["name"], dtype, labels=tuple(labels))
    low, high = finite_float(item.get("min")), finite_float(item.get("max"))
    if low is None or high is None:
        raise MlciError(f"{where} ({item['name']}): numeric columns need numbers 'min' and 'max'")
    if low > high:
        raise MlciError(f"{where} ({item['name']}): min {low:g} is greater than max {high:g}")
    return Column(item["name"], dtype, min=low, max=high)


def open_csv(path: Path) -> IO[str]:
    """Open CSV text: a UTF-8 BOM is dropped and Windows line endings are read as lines."""
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise MlciError(f"{path}: data file not found") from None
    except OSError as exc:
        raise MlciError(f"{path}: cannot read data file: {exc.strerror}") from None


def text_stream(data: bytes, where: str = "data") -> IO[str]:
    """CSV held in memory (a registry object), read the way ``open_csv`` reads a file."""
    try:
        return io.StringIO(data.decode("utf-8-sig"), newline="")
    except UnicodeDecodeError as exc:
        raise MlciError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _header(
    reader: Iterator[list[str]], report: Report, expected: list[str], optional: set[str]
) -> tuple[dict[str, int], int] | None:
    """Check the header line; return each column's index and the field count, or None if empty."""
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        report.add("file is empty: expected a header line with columns " + ", ".join(expected), 1)
        return None
    index: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in index:
            report.add(f"duplicated column '{name}' (also column {index[name] + 1})", 1, position)
        else:
            index[name] = position - 1
    missing = [name for name in expected if name not in index and name not in optional]
    for position, name in enumerate(header, start=1):
        if name in expected:
            continue
        slot = expected[position - 1] if position <= len(expected) else None
        if slot in missing:
            report.add(
                f"column '{name}' is not in the manifest: renamed from '{slot}'?", 1, position
            )
            missing.remove(slot)
        else:
            report.add(f"unexpected column '{name}' (not in the manifest)", 1, position)
    for name in missing:
        report.add(f"missing column '{name}'", 1)
    return index, len(header)


def _cell(value: str, column: Column, report: Report, line: int, position: int) -> Any:
    """Check one cell against its column; return the parsed value or None when it is bad."""
    name = column.name
    text = value.strip()
    if not text:
        report.add(f"{name}: empty value", line, position)
        return None
    if column.dtype == "category":
        if text not in column.labels:
            report.add(
                f"{name}: unknown label '{text}'; allowed: {', '.join(column.labels)}",
                line,
                position,
            )
            return None
        return text
    try:
        number = float(text)
    except ValueError:
        report.add(f"{name}: not a number: '{text}'", line, position)
        return None
    if math.isnan(number):
        report.add(f"{name}: NaN is not allowed", line, position)
        return None
    if math.isinf(number):
        report.add(f"{name}: infinite value '{text}' is not allowed", line, position)
        return None
    if column.dtype == "int" and not number.is_integer():
        report.add(f"{name}: expected an integer, got '{text}'", line, position)
        return None
    low, high = column.min, column.max
    assert low is not None
    assert high is not None
    if not low <= number <= high:
        report.add(
            f"{name}: {text} is outside the allowed range [{column.min:g}, {column.max:g}]",
            line,
            position,
        )
        return None
    return number


def scan(
    stream: Iterable[str], report: Report, manifest: Manifest, *, require_target: bool = True
) -> Iterator[tuple[list[float], str | None]]:
    """Stream rows out of CSV text, checking each against the manifest.

    Yields ``(features, label)`` for every valid row; every problem goes to ``report``. Nothing
    but the current row is held in memory.
    """
    reader = csv.reader(stream)
    expected = [column.name for column in manifest.columns]
    optional = set() if require_target else {manifest.target}
    header = None
    try:
        header = _header(reader, report, expected, optional)
        if header is None:
            return
        index, width = header
        header_ok = report.ok
        columns = [(column, index.get(column.name)) for column in manifest.columns]
        for row in reader:
            line = reader.line_num
            if not row:
                report.add("blank line", line)
                continue
            report.rows += 1
            before = len(report.problems)
            if len(row) != width:
                report.add(f"expected {width} fields, found {len(row)}", line)
            values: dict[str, Any] = {}
            for column, position in columns:
                if position is not None and position < len(row):
                    values[column.name] = _cell(row[position], column, report, line, position + 1)
            if header_ok and len(report.problems) == before:
                features = [values[column.name] for column in manifest.features]
                yield features, values.get(manifest.target)
    except UnicodeDecodeError as exc:
        report.add(f"not UTF-8 text: {exc.reason} at byte {exc.start}")
    except csv.Error as exc:
        report.add(f"malformed CSV: {exc}", reader.line_num)
    if header is not None and report.rows == 0:
        report.add("no data rows: the file has a header only", 1)


def validate(
    path: Path, manifest: Manifest, *, check_hash: bool = True, display: str | None = None
) -> Report:
    """Check a CSV file against the manifest's schema and, unless told not to, its recorded hash."""
    report = Report(display or str(path))
    with open_csv(path) as stream:
        for _ in scan(stream, report, manifest):
            pass
    report.sha256 = sha256_file(path)
    if check_hash:
        _check_hash(report, manifest)
    return report


def _check_hash(report: Report, manifest: Manifest) -> None:
    """Record a problem when the file's hash is not the one the manifest recorded."""
    assert report.sha256 is not None
    if report.sha256 != manifest.sha256:
        report.add(
            f"SHA-256 {report.sha256[:12]}… differs from the manifest's {manifest.sha256[:12]}… "
            f"({report.rows} rows now, {manifest.rows} recorded); if the change is deliberate, "
            "run 'mlci data accept'"
        )


def _collect(rows: Iterable[tuple[list[float], str | None]], manifest: Manifest) -> Table:
    """Gather scanned rows into a Table; labels only when every row has one."""
    features: list[list[float]] = []
    labels: list[str] = []
    for row, label in rows:
        features.append(row)
        if label is not None:
            labels.append(label)
    has_labels = bool(labels) and len(labels) == len(features)
    return Table(tuple(c.name for c in manifest.features), features, labels if has_labels else None)


def read_table(
    stream: Iterable[str], source: str, manifest: Manifest, *, require_target: bool = True
) -> Table:
    """Read rows into memory, refusing the whole input if any row is invalid."""
    report = Report(source)
    table = _collect(scan(stream, report, manifest, require_target=require_target), manifest)
    if not report.ok:
        raise MlciError(format_problems(report))
    return table


def read_training_data(
    path: Path, manifest: Manifest, *, sha256: str, display: str | None = None
) -> Table:
    """Read the training data in one pass: every row checked, and its hash against the manifest.

    ``sha256`` is the file's hash, already computed for the stage key.
    """
    report = Report(display or str(path))
    with open_csv(path) as stream:
        table = _collect(scan(stream, report, manifest), manifest)
    report.sha256 = sha256
    _check_hash(report, manifest)
    if not report.ok:
        raise MlciError(format_problems(report) + "\nrefusing to train on invalid data")
    return table


def format_problems(report: Report) -> str:
    """Every problem on its own line, then a count."""
    lines = [str(problem) for problem in report.problems]
    count = len(report.problems)
    lines.append(f"{report.file}: {count} problem{'s' if count != 1 else ''}")
    return "\n".join(lines)


def accept(manifest: Manifest, path: Path | None = None) -> Manifest:
    """Record a deliberately changed data file in the manifest, as ``dvc commit`` does.

    The schema still has to hold: only the hash and the row count are updated.
    """
    path = path or manifest.data_path
    report = validate(path, manifest, check_hash=False)
    if not report.ok:
        raise MlciError(format_problems(report) + "\nnothing was recorded: fix the data first")
    assert report.sha256 is not None
    file = _relative_to(path, manifest.path.parent)
    updated = dataclasses.replace(manifest, file=file, sha256=report.sha256, rows=report.rows)
    updated.save()
    return updated


def infer_manifest(path: Path, target: str, manifest_path: Path) -> Manifest:
    """Draft a manifest from a CSV: numeric ranges widened by their span, observed labels."""
    with open_csv(path) as stream:
        reader = csv.reader(stream)
        header = next(reader, None)
        if not header:
            raise MlciError(f"{path}:1: file is empty: expected a header line")
        if len(set(header)) != len(header):
            raise MlciError(f"{path}:1: duplicated column names in the header")
        if target not in header:
            raise MlciError(f"{path}:1: target column '{target}' is not in the header {header}")
        lows: dict[str, float] = {}
        highs: dict[str, float] = {}
        labels: set[str] = set()
        rows = 0
        for row in reader:
            if not row:
                continue
            rows += 1
            if len(row) != len(header):
                raise MlciError(
                    f"{path}:{reader.line_num}: expected {len(header)} fields, found {len(row)}"
                )
            for position, (name, cell) in enumerate(zip(header, row), start=1):
                cell = cell.strip()
                if name == target:
                    if not cell:
                        raise MlciError(
                            f"{path}:{reader.line_num}:{position}: target '{target}' is empty: "
                            "every row needs a label (drop or label the row, then run init again)"
                        )
                    labels.add(cell)
                    if len(labels) > MAX_LABELS:
                        raise MlciError(
                            f"{path}:{reader.line_num}:{position}: target '{target}' has more "
                            f"than {MAX_LABELS} distinct labels; mlci trains classifiers"
                        )
                    continue
                number = finite_float(cell)
                if number is None:
                    raise MlciError(
                        f"{path}:{reader.line_num}:{position}: {name}: '{cell}' is not a finite "
                        "number; mlci trains on numeric features (encode the column first)"
                    )
                lows[name] = min(lows.get(name, number), number)
                highs[name] = max(highs.get(name, number), number)
    if rows == 0:
        raise MlciError(f"{path}: no data rows: the file has a header only")
    columns = []
    for name in header:
        if name == target:
            columns.append(Column(name, "category", labels=tuple(sorted(labels))))
            continue
        low, high = lows[name], highs[name]
        span = (high - low) or abs(high) or 1.0
        floor = 0.0 if low >= 0 else low - span
        low_bound = max(floor, round(low - span, 6))
        columns.append(Column(name, "float", min=low_bound, max=round(high + span, 6)))
    file = _relative_to(path, manifest_path.parent)
    return Manifest(manifest_path, file, sha256_file(path), rows, target, tuple(columns))


def _relative_to(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())
