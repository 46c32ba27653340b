"""Parquet data files, read with pyarrow (the ``parquet`` extra): the file's own types, no dialect.

Rows are read a batch at a time; a bad cell is reported by its row (1 is the first data row) and
column, as a CSV cell is by line and column.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlci.errors import MlciError
from mlci.pipeline._columns import read_value
from mlci.pipeline._data import Manifest, Report, check_header

BATCH_ROWS = 65_536


def _file(source: Path | bytes) -> Any:
    """pyarrow's ParquetFile, or a clear error: the extra missing, the file absent or corrupt."""
    where = source if isinstance(source, Path) else "data"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MlciError(
            f"{where}: reading Parquet needs pyarrow: install mlci[parquet] "
            "(in a project made by mlci init, see the README's 'Parquet')"
        ) from None
    if isinstance(source, Path) and not source.is_file():
        raise MlciError(f"{source}: data file not found")
    try:
        return pq.ParquetFile(source if isinstance(source, Path) else pa.BufferReader(source))
    except Exception as exc:  # pyarrow raises its own ArrowInvalid, OSError, ...
        raise MlciError(f"{where}: not a readable Parquet file: {exc}") from None


def _plain(value: Any) -> Any:
    """A cell as the value the manifest's reader takes: NaN as missing, decimals as floats."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return value


def _batches(parquet: Any, where: Path | str) -> Iterator[dict[str, list[Any]]]:
    """The file's rows a batch at a time, as lists per column name."""
    names = list(parquet.schema_arrow.names)
    try:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            yield {name: batch.column(i).to_pylist() for i, name in enumerate(names)}
    except Exception as exc:
        raise MlciError(f"{where}: cannot read the Parquet data: {exc}") from None


def parquet_rows(path: Path) -> tuple[list[str], Iterator[tuple[Any, list[Any]]]]:
    """The column names, and each row's values (None for missing), for ``mlci data init``."""
    parquet = _file(path)
    names = list(parquet.schema_arrow.names)

    def rows() -> Iterator[tuple[Any, list[Any]]]:
        number = 0
        for columns in _batches(parquet, path):
            count = len(next(iter(columns.values()), []))
            for i in range(count):
                number += 1
                yield number, [_plain(columns[name][i]) for name in names]

    return names, rows()


def scan_parquet(
    path: Path | bytes, report: Report, manifest: Manifest, *, require_target: bool = True
) -> Iterator[tuple[list[Any], Any]]:
    """Rows of a Parquet file checked against the manifest, as ``scan`` yields them from CSV."""
    parquet = _file(path)
    names = list(parquet.schema_arrow.names)
    expected = [column.name for column in manifest.columns]
    optional = set() if require_target else {manifest.target, *manifest.ignored}
    if check_header(names, report, expected, optional) is None:
        return
    header_ok = report.ok
    position = {name: names.index(name) + 1 for name in names}
    columns = [column for column in manifest.columns if column.name in position]
    features = [column.name for column in manifest.features]
    number = 0
    for batch in _batches(parquet, path if isinstance(path, Path) else "data"):
        count = len(next(iter(batch.values()), []))
        for i in range(count):
            number += 1
            report.rows += 1
            before = len(report.problems)
            values: dict[str, Any] = {}
            for column in columns:
                value, problem = read_value(
                    _plain(batch[column.name][i]), column, target=column.name == manifest.target
                )
                if problem:
                    report.add_cell(f"{column.name}: {problem}", number, position[column.name])
                values[column.name] = value
            if header_ok and len(report.problems) == before:
                yield [values[name] for name in features], values.get(manifest.target)
    if report.rows == 0:
        report.add("no data rows: the file has none")
