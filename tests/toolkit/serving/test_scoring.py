from __future__ import annotations

import json

import pytest

from mlci.serving._scoring import BadRequest, Limits, parse

FEATURES = ["a", "b"]
LIMITS = Limits(max_rows=3, max_body_bytes=1000)
JSON = "application/json"


def rows(body: object, content_type: str = JSON) -> list[list[float]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse(data, content_type, FEATURES, LIMITS).rows


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["b", "a"], "data": [[2, 1], [4, 3]]}},
        {"dataframe_split": {"index": [0, 1], "columns": ["a", "b"], "data": [[1, 2], [3, 4]]}},
        {"dataframe_records": [{"a": 1, "b": 2}, {"b": 4, "a": 3}]},
        {"instances": [[1, 2], [3, 4]]},
        {"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4.0}]},
        {"inputs": [[1, 2], [3, 4]]},
        {"inputs": {"a": [1, 3], "b": [2, 4]}},
    ],
)
def test_every_json_format_gives_rows_in_manifest_order(body: object) -> None:
    assert rows(body) == [[1.0, 2.0], [3.0, 4.0]]


def test_csv_with_a_header_in_any_order() -> None:
    assert rows(b"b,a\r\n2,1\r\n\r\n4,3\r\n", "text/csv; charset=utf-8") == [[1, 2], [3, 4]]
    assert rows("\ufeffa,b\n1,2\n".encode(), "text/csv") == [[1, 2]]


def test_params_are_checked() -> None:
    body = {"instances": [[1, 2]], "params": {"proba": True}}
    assert parse(json.dumps(body).encode(), JSON, FEATURES, LIMITS).params == {"proba": True}
    with pytest.raises(BadRequest, match="unknown param 'temperature'; known params: proba"):
        rows({"instances": [[1, 2]], "params": {"temperature": 1}})
    with pytest.raises(BadRequest, match="param 'proba' must be true or false"):
        rows({"instances": [[1, 2]], "params": {"proba": "yes"}})
    with pytest.raises(BadRequest, match="params must be an object"):
        rows({"instances": [[1, 2]], "params": [1]})


BAD = [
    # wrong or missing columns, wrong number of features
    ({"dataframe_split": {"columns": ["a"], "data": [[1]]}}, "missing column.s. b"),
    ({"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}}, "unknown column.s. c"),
    (
        {"dataframe_split": {"columns": ["a", "a", "b"], "data": [[1, 1, 2]]}},
        "repeated column.s. a",
    ),
    (
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}},
        r"data\[0\]: expected a list of 2",
    ),
    ({"dataframe_split": {"columns": ["a", "b"]}}, "data must be a list of rows"),
    ({"dataframe_split": {"columns": ["a", "b"], "data": [], "x": 1}}, "unknown key.s. x"),
    ({"dataframe_split": [1, 2]}, "dataframe_split must be"),
    ({"dataframe_records": [{"a": 1}]}, r"dataframe_records\[0\]: missing column.s. b"),
    ({"dataframe_records": [[1, 2]]}, "expected an object with the columns a, b"),
    ({"dataframe_records": {"a": 1}}, "dataframe_records must be a list of objects"),
    ({"instances": [[1, 2, 3]]}, r"instances\[0\]: expected 2 features \(a, b\), got 3"),
    ({"instances": [1, 2]}, r"instances\[0\]: expected a list of 2 values or an object"),
    ({"instances": "rows"}, "instances must be a list of rows"),
    ({"inputs": {"a": [1], "b": [1, 2]}}, "the columns differ in length"),
    ({"inputs": {"a": 1, "b": 2}}, "each column must be a list"),
    ({"inputs": {"a": [1]}}, "inputs: missing column.s. b"),
    ({"dataframe_split": {"columns": [1, "b"], "data": [[1, 2]]}}, "column names must be strings"),
    # non-numeric values, NaN, infinity, null
    ({"instances": [["1", 2]]}, r"instances\[0\]\[0\]: \"1\" is not a number"),
    ({"instances": [[True, 2]]}, "true is not a number"),
    ({"instances": [[None, 2]]}, "null is not allowed"),
    (b'{"instances": [[1e400, 2]]}', "not a finite number"),
    ({"instances": [[10**400, 2]]}, "not a finite number"),
    (b'{"instances": [[NaN, 2]]}', "null is not allowed"),  # pandas' missing value
    (b'{"instances": [[Infinity, 2]]}', "Infinity is not a valid value"),
    (b'{"instances": [[-Infinity, 2]]}', "-Infinity is not a valid value"),
    # an empty batch, or more rows than the limit
    ({"instances": []}, "the batch is empty"),
    ({"inputs": {"a": [], "b": []}}, "the batch is empty"),
    ({"instances": [[1, 2]] * 4}, "4 rows is more than the limit of 3"),
    # malformed JSON, two format keys, no format key, unknown keys
    (b'{"instances": [[1, 2]]', "malformed JSON at line 1 column"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|must be an object"),
    (b"\xff\xfe", "not valid utf-8"),
    ({"instances": [[1, 2]], "inputs": [[1, 2]]}, "exactly one of .*found instances, inputs"),
    ({"params": {}}, "exactly one of .*found none"),
    ({"instance": [[1, 2]]}, r"unknown key\(s\) instance"),
    ([[1, 2]], "must be an object with one of"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_json_requests_say_what_is_wrong(body: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message) as info:
        rows(body)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the CSV body is empty"),
        (b"a\n1\n", "missing column.s. b"),
        (b"a,b\n1\n", "CSV line 2: expected 2 fields, found 1"),
        (b"a,b\n1,x\n", r"CSV line 2 \(b\): not a number: 'x'"),
        (b"a,b\n1,\n", r"CSV line 2 \(b\): empty value"),
        (b"a,b\n1,nan\n", "'nan' is not a finite number"),
        (b"a,b\n1,inf\n", "'inf' is not a finite number"),
        (b"a,b\n", "the batch is empty"),
        (b'a,b\n"1,2\n', "expected 2 fields, found 1"),
    ],
)
def test_bad_csv_requests_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        rows(body, "text/csv")


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "missing Content-Type"),
        ("", "missing Content-Type"),
        ("text/plain", "unsupported Content-Type 'text/plain'"),
        ("application/json; charset=latin-1", "unsupported charset 'latin-1'"),
        ("text/csv; charset=utf-16", "unsupported charset 'utf-16'"),
    ],
)
def test_wrong_content_types_are_415(content_type: str | None, message: str) -> None:
    with pytest.raises(BadRequest, match=message) as info:
        parse(b'{"instances": [[1, 2]]}', content_type, FEATURES, LIMITS)
    assert info.value.status == 415


def test_content_type_parameters_are_read() -> None:
    body = b'{"instances": [[1, 2]]}'
    assert parse(body, 'Application/JSON; charset="UTF-8"', FEATURES, LIMITS).rows == [[1, 2]]
