"""The data manifest (hash, rows, schema) and a streaming validator that reports every problem."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from mlci._io import atomic_write_json, finite_float, read_json, sha256_file
from mlci.errors import MlciError
from mlci.pipeline._columns import (
    CATEGORICAL,
    DATE,
    FEATURE_KINDS,
    INTEGER,
    KINDS,
    NUMERIC,
    TEXT,
    UNKNOWN_POLICIES,
    V1_KINDS,
    Column,
    Dialect,
    cell_reader,
)
from mlci.pipeline._task import task_of_target

MANIFEST_VERSION = 2
PARQUET_SUFFIXES = (".parquet", ".pq")  # a data file by these names is Parquet, else CSV
MAX_LABELS = 1000  # more distinct target values than this is regression, not classification
TARGET_KINDS = (CATEGORICAL, NUMERIC, INTEGER)  # class labels, or a quantity


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What the data file must look like, and the hash and row count it was recorded with."""

    path: Path
    file: str
    sha256: str
    rows: int
    target: str
    columns: tuple[Column, ...]
    dialect: Dialect = dataclasses.field(default_factory=Dialect)

    @property
    def parquet(self) -> bool:
        """True when the data file is Parquet (its types come from the file, not a dialect)."""
        return is_parquet(Path(self.file))

    @property
    def data_path(self) -> Path:
        """The data file the manifest describes, relative to the manifest's folder."""
        return self.path.parent / self.file

    @property
    def features(self) -> tuple[Column, ...]:
        """The model's inputs: every column but the target and those marked not a feature."""
        return tuple(
            column for column in self.columns if column.name != self.target and column.feature
        )

    @property
    def ignored(self) -> tuple[str, ...]:
        """Columns of the data that are not features (identifiers, dates): read, never used."""
        return tuple(
            column.name
            for column in self.columns
            if column.name != self.target and not column.feature
        )

    @property
    def target_column(self) -> Column:
        """The label column."""
        return next(column for column in self.columns if column.name == self.target)

    @property
    def task(self) -> str:
        """What the target asks for: classification (labels) or regression (a number)."""
        return task_of_target(self.target_column)

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
            "dialect": self.dialect.to_dict(),
            "columns": [column.to_dict() for column in self.columns],
        }

    def save(self) -> None:
        """Write the manifest atomically."""
        atomic_write_json(self.path, self.to_dict(), sort_keys=False)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One finding, located as precisely as possible: file, line and column (or Parquet row)."""

    file: str
    message: str
    line: int | None = None
    column: int | None = None
    row: int | None = None  # a Parquet file's data row (1 is the first), instead of a line

    def __str__(self) -> str:
        if self.row is not None:
            return f"{self.file}: row {self.row}, column {self.column}: {self.message}"
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

    def add_cell(self, message: str, row: int, column: int) -> None:
        """Record a problem in one cell of a Parquet file."""
        self.problems.append(Problem(self.file, message, column=column, row=row))


@dataclasses.dataclass
class Table:
    """Rows read into memory for training, prediction or drift: features by column, labels."""

    feature_names: tuple[str, ...]
    features: list[list[Any]]  # floats, strings (categories) and None (missing)
    labels: list[Any] | None  # class labels (str), or a regressor's targets (float)
    columns: tuple[Column, ...] = ()  # the feature columns, as the manifest describes them


def load_manifest(path: Path) -> Manifest:
    """Read and check a manifest; every malformed field is named."""
    return parse_manifest(read_json(path, "data manifest"), str(path), path)


def parse_manifest(raw: Any, where: str, path: Path | None = None) -> Manifest:
    """Check a manifest read from ``where`` (a file, or a registry object's URL).

    Version 1 (numeric features, ``dtype``) is still read: registries hold models made with it.
    """
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
    version = raw.get("version", 1)
    if version not in (1, MANIFEST_VERSION):
        raise MlciError(
            f"{where}: version {version!r} is not one this mlci reads (1 or {MANIFEST_VERSION}); "
            "update mlci"
        )
    columns = tuple(
        _column(item, f"{where}: columns[{index}]", version)
        for index, item in enumerate(raw["columns"])
    )
    names = [column.name for column in columns]
    if len(set(names)) != len(names):
        raise MlciError(f"{where}: columns: duplicated column name")
    if raw["target"] not in names:
        raise MlciError(f"{where}: target '{raw['target']}' is not one of the columns {names}")
    for index, column in enumerate(columns):
        if version == 1 and column.kind == CATEGORICAL and column.name != raw["target"]:
            raise MlciError(
                f"{where}: columns[{index}] ({column.name}): only the target may be a category "
                "in a version 1 manifest; run 'mlci data init' again to describe categories"
            )
        if column.name == raw["target"] and (column.kind not in TARGET_KINDS or column.missing):
            raise MlciError(
                f"{where}: columns[{index}] ({column.name}): the target must be categorical "
                "with its labels listed (classification) or numeric with its range "
                "(regression), and never missing"
            )
    if not any(c.feature and c.kind in FEATURE_KINDS for c in columns if c.name != raw["target"]):
        raise MlciError(f"{where}: columns: no feature column besides the target")
    dialect = _dialect(raw.get("dialect", {}), f"{where}: dialect")
    path = Path(where) if path is None else path
    return Manifest(path, raw["file"], raw["sha256"], raw["rows"], raw["target"], columns, dialect)


_COLUMN_KEYS = {"name", "kind", "min", "max", "values", "missing", "feature", "why", "note"}


def _column(item: Any, where: str, version: int) -> Column:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise MlciError(f"{where}: must be an object with a string 'name'")
    where = f"{where} ({item['name']})"
    if version == 1:
        dtype = item.get("dtype")
        if dtype not in V1_KINDS:
            raise MlciError(f"{where}: dtype must be one of {', '.join(V1_KINDS)}, got {dtype!r}")
        item = {k: v for k, v in item.items() if k != "dtype"}
        item["kind"] = V1_KINDS[dtype]
        if "labels" in item:
            item["values"] = item.pop("labels")
    unknown = sorted(set(item) - _COLUMN_KEYS - {"unknown"})
    if unknown:
        raise MlciError(f"{where}: unknown key(s) {', '.join(unknown)}")
    kind = item.get("kind")
    if kind not in KINDS:
        raise MlciError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    flags = {}
    for key in ("missing", "feature"):
        if key in item and not isinstance(item[key], bool):
            raise MlciError(f"{where}: '{key}' must be true or false")
        flags[key] = item.get(key, key == "feature")
    texts = {}
    for key in ("why", "note"):
        if not isinstance(item.get(key, ""), str):
            raise MlciError(f"{where}: '{key}' must be a string")
        texts[key] = item.get(key, "")
    if kind in (TEXT, DATE) and flags["feature"]:
        raise MlciError(
            f'{where}: a {kind} column cannot be a feature: set "feature": false and say why'
        )
    policy = item.get("unknown", "refuse")
    if policy not in UNKNOWN_POLICIES:
        raise MlciError(f"{where}: unknown must be one of {', '.join(UNKNOWN_POLICIES)}")
    common: dict[str, Any] = {"name": item["name"], "kind": kind, **flags, **texts}
    if kind == CATEGORICAL:
        values = item.get("values")
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(x, str) for x in values)
        ):
            field = "labels" if version == 1 else "values"
            raise MlciError(f"{where}: '{field}' must be a non-empty list of strings")
        return Column(**common, values=tuple(values), unknown=policy)
    if kind not in (NUMERIC, INTEGER):
        return Column(**common)
    low, high = finite_float(item.get("min")), finite_float(item.get("max"))
    if low is None or high is None:
        raise MlciError(f"{where}: numeric columns need numbers 'min' and 'max'")
    if low > high:
        raise MlciError(f"{where}: min {low:g} is greater than max {high:g}")
    return Column(**common, min=low, max=high)


def _dialect(raw: Any, where: str) -> Dialect:
    if not isinstance(raw, dict):
        raise MlciError(f"{where}: must be an object")
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(Dialect)})
    if unknown:
        raise MlciError(f"{where}: unknown key(s) {', '.join(unknown)}")
    default = Dialect()
    for key in ("delimiter", "quotechar"):
        value = raw.get(key, getattr(default, key))
        if not isinstance(value, str) or len(value) != 1:
            raise MlciError(f"{where} {key}: must be one character, got {value!r}")
    for key in ("skipinitialspace", "index_column"):
        if not isinstance(raw.get(key, False), bool):
            raise MlciError(f"{where} {key}: must be true or false")
    missing = raw.get("missing", [])
    if not isinstance(missing, list) or not all(isinstance(x, str) for x in missing):
        raise MlciError(f"{where} missing: must be a list of strings (cell texts)")
    return Dialect(
        raw.get("delimiter", ","),
        raw.get("skipinitialspace", False),
        raw.get("quotechar", '"'),
        tuple(missing),
        raw.get("index_column", False),
    )


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


def check_header(
    header: list[str] | None,
    report: Report,
    expected: list[str],
    optional: set[str],
    skip: int = 0,
) -> tuple[dict[str, int], int] | None:
    """Check the header line; return each column's index and the field count, or None if empty.

    ``skip``: leading fields that are not data (an unnamed index column).
    """
    if header is None or not any(cell.strip() for cell in header):
        report.add("file is empty: expected a header line with columns " + ", ".join(expected), 1)
        return None
    header = [name.strip() for name in header]
    index: dict[str, int] = {}
    for position, name in enumerate(header[skip:], start=skip + 1):
        if name in index:
            report.add(f"duplicated column '{name}' (also column {index[name] + 1})", 1, position)
        else:
            index[name] = position - 1
    missing = [name for name in expected if name not in index and name not in optional]
    for position, name in enumerate(header[skip:], start=skip + 1):
        if name in expected:
            continue
        slot = expected[position - 1 - skip] if position - skip <= len(expected) else None
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


def scan(
    stream: Iterable[str], report: Report, manifest: Manifest, *, require_target: bool = True
) -> Iterator[tuple[list[Any], Any]]:
    """Stream rows out of CSV text, checking each against the manifest and its dialect.

    Yields ``(features, label)`` for every valid row, each feature a float, a string or None
    (missing); every problem goes to ``report``. Nothing but the current row is in memory.
    """
    dialect = manifest.dialect
    reader = csv.reader(stream, **dialect.reader_options())
    expected = [column.name for column in manifest.columns]
    optional = set() if require_target else {manifest.target, *manifest.ignored}
    header = None
    try:
        header = check_header(
            next(reader, None), report, expected, optional, int(dialect.index_column)
        )
        if header is None:
            return
        index, width = header
        header_ok = report.ok
        columns = [
            (
                column,
                index.get(column.name),
                cell_reader(column, dialect, target=column.name == manifest.target),
            )
            for column in manifest.columns
        ]
        features = [column.name for column in manifest.features]
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
            for column, position, read in columns:
                if position is not None and position < len(row):
                    value, problem = read(row[position])
                    if problem:
                        report.add(f"{column.name}: {problem}", line, position + 1)
                    values[column.name] = value
            if header_ok and len(report.problems) == before:
                yield [values[name] for name in features], values.get(manifest.target)
    except UnicodeDecodeError as exc:
        report.add(f"not UTF-8 text: {exc.reason} at byte {exc.start}")
    except csv.Error as exc:
        report.add(f"malformed CSV: {exc}", reader.line_num)
    if header is not None and report.rows == 0:
        report.add("no data rows: the file has a header only", 1)


def rows_of(
    path: Path, report: Report, manifest: Manifest, *, require_target: bool = True
) -> Iterator[tuple[list[Any], Any]]:
    """``scan`` over a data file: CSV with the manifest's dialect, or Parquet by its suffix."""
    if is_parquet(path):
        from mlci.pipeline._parquet import scan_parquet

        yield from scan_parquet(path, report, manifest, require_target=require_target)
        return
    with open_csv(path) as stream:
        yield from scan(stream, report, manifest, require_target=require_target)


def is_parquet(path: Path) -> bool:
    """A Parquet file, told by its suffix."""
    return path.suffix.lower() in PARQUET_SUFFIXES


def validate(
    path: Path, manifest: Manifest, *, check_hash: bool = True, display: str | None = None
) -> Report:
    """Check a CSV file against the manifest's schema and, unless told not to, its recorded hash."""
    report = Report(display or str(path))
    for _ in rows_of(path, report, manifest):
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


def _collect(rows: Iterable[tuple[list[Any], Any]], manifest: Manifest) -> Table:
    """Gather scanned rows into a Table; labels only when every row has one."""
    features: list[list[Any]] = []
    labels: list[Any] = []
    for row, label in rows:
        features.append(row)
        if label is not None:
            labels.append(label)
    has_labels = bool(labels) and len(labels) == len(features)
    return Table(
        tuple(c.name for c in manifest.features),
        features,
        labels if has_labels else None,
        manifest.features,
    )


def read_table(
    stream: Iterable[str], source: str, manifest: Manifest, *, require_target: bool = True
) -> Table:
    """Read rows into memory, refusing the whole input if any row is invalid."""
    report = Report(source)
    table = _collect(scan(stream, report, manifest, require_target=require_target), manifest)
    if not report.ok:
        raise MlciError(format_problems(report))
    return table


def read_file(
    source: Path | bytes,
    manifest: Manifest,
    *,
    require_target: bool = True,
    display: str | None = None,
) -> Table:
    """A data file's rows in memory, refusing the whole file if any row is invalid.

    ``source``: a CSV or Parquet file, or its bytes (a registry object): the manifest's data
    file says which format, so the format travels with the manifest.
    """
    report = Report(display or str(source if isinstance(source, Path) else "data"))
    if isinstance(source, Path):
        rows = rows_of(source, report, manifest, require_target=require_target)
    elif manifest.parquet:
        from mlci.pipeline._parquet import scan_parquet

        rows = scan_parquet(source, report, manifest, require_target=require_target)
    else:
        stream = text_stream(source, report.file)
        rows = scan(stream, report, manifest, require_target=require_target)
    table = _collect(rows, manifest)
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
    table = _collect(rows_of(path, report, manifest), manifest)
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
    file = relative_to(path, manifest.path.parent)
    updated = dataclasses.replace(manifest, file=file, sha256=report.sha256, rows=report.rows)
    updated.save()
    return updated


def relative_to(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())
