"""MLflow's scoring protocol, parsed without a web framework: request bytes in, feature rows out.

``POST /invocations`` takes JSON with exactly one of ``dataframe_split``, ``dataframe_records``,
``instances`` or ``inputs`` (plus optional ``params``), or ``text/csv`` with a header. Every way
a request can be wrong raises ``BadRequest`` with a message that says what to send instead.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
from collections.abc import Callable, Sequence
from typing import Any

from mlci.pipeline import INTEGER, NUMERIC, Column, Dialect, read_cell, read_value

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS = {"proba": bool}  # params: {"proba": true} adds class probabilities to the reply
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
CSV_DIALECT = Dialect()  # a scoring request's CSV: commas, and an empty cell is missing


class BadRequest(Exception):
    """A request the server refuses: HTTP status and a message for the client."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Limits:
    """How much one request may carry."""

    max_rows: int = 10_000
    max_body_bytes: int = 5 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Scoring:
    """A parsed request: feature rows in manifest order, and the params."""

    rows: list[list[Any]]  # floats, categories (strings) and None (missing)
    params: dict[str, Any]


def parse(
    body: bytes,
    content_type: str | None,
    features: Sequence[Column | str],
    limits: Limits,
    ignored: Sequence[str] = (),
) -> Scoring:
    """Turn a request body into rows of the ``features`` columns, or raise ``BadRequest``.

    Each value is checked against its column of the served version's manifest, as training read
    the data; a bare name is a numeric column. Columns in ``ignored`` (the data's identifiers,
    dates) may be sent and are dropped.
    """
    columns = [Column(c, NUMERIC) if isinstance(c, str) else c for c in features]
    spec = _Spec(columns, [c.name for c in columns], frozenset(ignored))
    media, charset = _content_type(content_type)
    try:
        text = body.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise BadRequest(f"the body is not valid {charset} text") from None
    if media == CSV_TYPE:
        rows, params = _csv(text, spec), dict[str, Any]()
    else:
        rows, params = _json(text, spec)
    if not rows:
        raise BadRequest("the batch is empty: send at least one row")
    if len(rows) > limits.max_rows:
        raise BadRequest(
            f"{len(rows)} rows is more than the limit of {limits.max_rows} per request"
        )
    return Scoring(rows, params)


@dataclasses.dataclass(frozen=True)
class _Spec:
    """The columns a request must carry, their names in order, and those it may add."""

    columns: list[Column]
    names: list[str]
    ignored: frozenset[str]


def _content_type(header: str | None) -> tuple[str, str]:
    if not header:
        raise BadRequest(f"missing Content-Type: send {JSON_TYPE} or {CSV_TYPE}", 415)
    media, *options = (part.strip() for part in header.split(";"))
    media = media.lower()
    if media not in (JSON_TYPE, CSV_TYPE):
        raise BadRequest(f"unsupported Content-Type '{media}': send {JSON_TYPE} or {CSV_TYPE}", 415)
    charset = "utf-8"
    for option in options:
        key, _, value = option.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if charset not in ("utf-8", "utf8"):
        raise BadRequest(f"unsupported charset '{charset}': send utf-8", 415)
    return media, "utf-8"


def _json(text: str, spec: _Spec) -> tuple[list[list[Any]], dict[str, Any]]:
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply") from None
    if not isinstance(document, dict):
        raise BadRequest(f"the JSON body must be an object with one of {', '.join(FORMATS)}")
    present = [key for key in FORMATS if key in document]
    unknown = sorted(set(document) - {*FORMATS, "params"})
    if unknown:
        raise BadRequest(
            f"unknown key(s) {', '.join(unknown)}; expected one of {', '.join(FORMATS)}"
        )
    if len(present) != 1:
        found = f"found {', '.join(present)}" if present else "found none"
        raise BadRequest(f"send exactly one of {', '.join(FORMATS)} ({found})")
    key = present[0]
    params = _params(document.get("params"))
    value = document[key]
    if key == "dataframe_split":
        return _split(value, spec), params
    if key == "dataframe_records":
        return _records(value, spec, key), params
    if key == "inputs" and isinstance(value, dict):
        return _columns(value, spec), params
    return _instances(value, spec, key), params


def _reject_constant(name: str) -> None:
    """NaN is how pandas (and so MLflow's scoring client) writes a missing value: read as null."""
    if name != "NaN":
        raise BadRequest(f"{name} is not a valid value: send finite numbers")


def _params(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest('params must be an object, e.g. {"proba": true}')
    for key, item in value.items():
        if key not in PARAMS:
            raise BadRequest(f"unknown param '{key}'; known params: {', '.join(PARAMS)}")
        if not isinstance(item, PARAMS[key]):
            raise BadRequest(f"param '{key}' must be true or false")
    return dict(value)


def _split(value: Any, spec: _Spec) -> list[list[Any]]:
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
        raise BadRequest('dataframe_split must be {"columns": [...], "data": [[...], ...]}')
    extra = sorted(set(value) - {"columns", "data", "index"})
    if extra:
        raise BadRequest(f"dataframe_split: unknown key(s) {', '.join(extra)}")
    columns = value["columns"]
    order = _order(columns, spec, "dataframe_split.columns")
    data = value.get("data")
    if not isinstance(data, list):
        raise BadRequest("dataframe_split.data must be a list of rows")
    rows = []
    positions = [order[name] for name in spec.names]
    for number, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            where = f"dataframe_split.data[{number}]"
            raise BadRequest(f"{where}: expected a list of {len(columns)} values")
        rows.append(
            _row(
                [row[p] for p in positions],
                spec,
                functools.partial(_named, f"dataframe_split.data[{number}] (", spec.names, ")"),
            )
        )
    return rows


def _records(value: Any, spec: _Spec, key: str) -> list[list[Any]]:
    if not isinstance(value, list):
        raise BadRequest(f"{key} must be a list of objects")
    return [_record(record, spec, f"{key}[{number}]") for number, record in enumerate(value)]


def _record(record: Any, spec: _Spec, where: str) -> list[Any]:
    if not isinstance(record, dict):
        raise BadRequest(f"{where}: expected an object with the columns {', '.join(spec.names)}")
    if not all(name in record for name in spec.names) or any(
        name not in spec.ignored for name in record.keys() - set(spec.names)
    ):
        _order(list(record), spec, where)  # says what is wrong
    return _row(
        [record[name] for name in spec.names],
        spec,
        functools.partial(_named, f"{where}.", spec.names, ""),
    )


def _instances(value: Any, spec: _Spec, key: str) -> list[list[Any]]:
    if not isinstance(value, list):
        raise BadRequest(f"{key} must be a list of rows (lists or objects)")
    rows = []
    count = len(spec.names)
    for number, row in enumerate(value):
        where = f"{key}[{number}]"
        if isinstance(row, dict):
            rows.append(_record(row, spec, where))
        elif isinstance(row, list):
            if len(row) != count:
                raise BadRequest(
                    f"{where}: expected {count} features ({', '.join(spec.names)}), got {len(row)}"
                )
            rows.append(_row(row, spec, functools.partial(_indexed, where)))
        else:
            raise BadRequest(f"{where}: expected a list of {count} values or an object")
    return rows


def _columns(value: dict[str, Any], spec: _Spec) -> list[list[Any]]:
    _order(list(value), spec, "inputs")
    names = spec.names
    lengths = {name: len(value[name]) if isinstance(value[name], list) else -1 for name in names}
    if any(length < 0 for length in lengths.values()):
        raise BadRequest("inputs: each column must be a list of values")
    if len(set(lengths.values())) > 1:
        raise BadRequest(f"inputs: the columns differ in length: {lengths}")
    count = next(iter(lengths.values()), 0)
    return [
        [
            _value(value[column.name][row], column, f"inputs.{column.name}[{row}]")
            for column in spec.columns
        ]
        for row in range(count)
    ]


def _order(columns: list[Any], spec: _Spec, where: str) -> dict[str, int]:
    """Each feature's position in ``columns``; missing, unknown or repeated names are refused.

    Linear in the number of columns: one body of 5 MB holds about 600,000 names, and far more
    columns than the model has are refused before their names are read.
    """
    features = spec.names
    allowed = len(features) + len(spec.ignored)
    if len(columns) > 10 * allowed + 100:  # hostile: say so without reading the names
        raise BadRequest(
            f"{where}: {len(columns)} columns, more than the model's {len(features)} "
            f"features; expected {', '.join(features)}"
        )
    if not all(isinstance(name, str) for name in columns):
        raise BadRequest(f"{where}: column names must be strings")
    known = set(features) | spec.ignored
    positions: dict[str, int] = {}
    repeated: set[str] = set()
    for position, name in enumerate(columns):
        if name in positions:
            repeated.add(name)
        else:
            positions[name] = position
    missing = [name for name in features if name not in positions]
    unknown = [name for name in positions if name not in known]
    problems = []
    if len(columns) > allowed:
        problems.append(f"{len(columns)} columns, more than the model's {len(features)} features")
    if missing:
        problems.append(f"missing column(s) {_names(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {_names(unknown)}")
    if repeated:
        problems.append(f"repeated column(s) {_names(sorted(repeated))}")
    if problems:
        raise BadRequest(f"{where}: {'; '.join(problems)}; expected {', '.join(features)}")
    return {name: positions[name] for name in features}


def _names(names: Sequence[str], shown: int = 10) -> str:
    """At most ``shown`` names, each cut short: a message never echoes a whole hostile body."""
    text = ", ".join(name[:40] for name in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _row(values: list[Any], spec: _Spec, where: Callable[[int], str]) -> list[Any]:
    """A row's values checked against their columns; a bad one's place is worded only then.

    Finite JSON floats within a numeric column's range, by far the most common values, take one
    check: parsing runs beside the event loop, and every bytecode it saves is time the loop can
    have the GIL.
    """
    row = []
    for index, (value, column) in enumerate(zip(values, spec.columns)):
        if (
            type(value) is float
            and value - value == 0.0  # NaN and infinity give NaN
            and column.kind == NUMERIC
            and (column.min is None or column.min <= value <= column.max)  # type: ignore[operator]
        ):
            row.append(value)
        else:
            row.append(_value(value, column, where(index)))
    return row


def _named(prefix: str, names: Sequence[str], suffix: str, index: int) -> str:
    return f"{prefix}{names[index]}{suffix}"


def _indexed(prefix: str, index: int) -> str:
    return f"{prefix}[{index}]"


def _value(value: Any, column: Column, where: str) -> Any:
    """A JSON value for one column: numbers must be JSON numbers, categories strings or numbers."""
    if (
        column.kind in (NUMERIC, INTEGER)
        and value is not None
        and (isinstance(value, bool) or not isinstance(value, (int, float)))
    ):
        raise BadRequest(f"{where}: {json.dumps(value)[:40]} is not a number")
    if isinstance(value, (dict, list)):
        raise BadRequest(f"{where}: expected a single value, got {json.dumps(value)[:40]}")
    parsed, problem = read_value(value, column)
    if problem:
        raise BadRequest(f"{where}: {problem}")
    return parsed


def _csv(text: str, spec: _Spec) -> list[list[Any]]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader, None)
        if header is None:
            raise BadRequest("the CSV body is empty: send a header line and rows")
        order = _order([name.strip() for name in header], spec, "CSV header")
        rows = []
        for row in reader:
            if not row:
                continue
            where = f"CSV line {reader.line_num}"
            if len(row) != len(header):
                raise BadRequest(f"{where}: expected {len(header)} fields, found {len(row)}")
            rows.append([_cell(row[order[c.name]], c, f"{where} ({c.name})") for c in spec.columns])
    except csv.Error as exc:
        raise BadRequest(f"malformed CSV: {exc}") from None
    return rows


def _cell(text: str, column: Column, where: str) -> Any:
    """A CSV cell: an empty one is missing, anything else is read as training read its data."""
    parsed, problem = read_cell(text, column, CSV_DIALECT)
    if problem:
        raise BadRequest(f"{where}: {problem}")
    return parsed
