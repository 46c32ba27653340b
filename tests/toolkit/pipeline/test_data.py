from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlci.errors import MlciError
from mlci.pipeline import _data as data
from mlci.pipeline import _infer as infer
from mlci.pipeline._columns import Dialect

HEADER = "sepal_length,sepal_width,petal_length,petal_width,species"
ROW = "5.1,3.5,1.4,0.2,setosa"


@pytest.fixture
def manifest(project: Path) -> data.Manifest:
    return data.load_manifest(project / "data" / "iris.manifest.json")


def check(
    tmp_path: Path, manifest: data.Manifest, text: str, *, raw: bytes | None = None
) -> data.Report:
    path = tmp_path / "batch.csv"
    path.write_bytes(raw if raw is not None else text.encode())
    return data.validate(path, manifest, check_hash=False, display="batch.csv")


def messages(report: data.Report) -> list[str]:
    return [str(problem) for problem in report.problems]


def test_the_committed_data_matches_its_manifest(project: Path, manifest: data.Manifest) -> None:
    report = data.validate(project / "data" / "iris.csv", manifest)
    assert report.ok, messages(report)
    assert report.rows == manifest.rows == 150


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sepal_length,sepal_width,petal_length,species\n5.1,3.5,1.4,setosa\n",
            "batch.csv:1: missing column 'petal_width'",
        ),
        (f"{HEADER},extra\n{ROW},1\n", "batch.csv:1:6: unexpected column 'extra'"),
        (
            f"sepal_length,sepal_width,petal_len,petal_width,species\n{ROW}\n",
            "batch.csv:1:3: column 'petal_len' is not in the manifest: "
            "renamed from 'petal_length'?",
        ),
        (
            f"{HEADER},species\n{ROW},setosa\n",
            "batch.csv:1:6: duplicated column 'species' (also column 5)",
        ),
        (f"{HEADER}\n5.1,abc,1.4,0.2,setosa\n", "batch.csv:2:2: sepal_width: not a number: 'abc'"),
        (f"{HEADER}\n5.1,,1.4,0.2,setosa\n", "batch.csv:2:2: sepal_width: empty value"),
        (
            f"{HEADER}\n5.1,3.5,NaN,0.2,setosa\n",
            "batch.csv:2:3: petal_length: 'NaN' is not a finite number",
        ),
        (
            f"{HEADER}\n5.1,3.5,1.4,inf,setosa\n",
            "batch.csv:2:4: petal_width: 'inf' is not a finite number",
        ),
        (
            f"{HEADER}\n99,3.5,1.4,0.2,setosa\n",
            "batch.csv:2:1: sepal_length: 99 is outside the allowed range",
        ),
        (
            f"{HEADER}\n-1,3.5,1.4,0.2,setosa\n",
            "batch.csv:2:1: sepal_length: -1 is outside the allowed range",
        ),
        (
            f"{HEADER}\n{ROW.replace('setosa', 'rose')}\n",
            "batch.csv:2:5: species: unknown label 'rose'",
        ),
        (f"{HEADER}\n5.1,3.5,1.4,setosa\n", "batch.csv:2: expected 5 fields, found 4"),
        ("", "batch.csv:1: file is empty"),
        (f"{HEADER}\n", "batch.csv:1: no data rows: the file has a header only"),
        (f"{HEADER}\n{ROW}\n\n{ROW}\n", "batch.csv:3: blank line"),
    ],
)
def test_each_bad_case_names_its_line_and_column(
    tmp_path: Path, manifest: data.Manifest, text: str, expected: str
) -> None:
    report = check(tmp_path, manifest, text)
    assert not report.ok
    assert any(m.startswith(expected) for m in messages(report)), messages(report)


def test_every_problem_is_reported_not_just_the_first(
    tmp_path: Path, manifest: data.Manifest
) -> None:
    text = f"{HEADER}\n{ROW}\nx,3.5,1.4,0.2,setosa\n5.1,3.5,1.4,0.2,tulip\n5.1,3.5,1.4,,setosa\n"
    report = check(tmp_path, manifest, text)
    assert [(p.line, p.column) for p in report.problems] == [(3, 1), (4, 5), (5, 4)]
    assert report.rows == 4


def test_windows_line_endings_and_bom_are_accepted(tmp_path: Path, manifest: data.Manifest) -> None:
    raw = b"\xef\xbb\xbf" + f"{HEADER}\r\n{ROW}\r\n{ROW}\r\n".encode()
    report = check(tmp_path, manifest, "", raw=raw)
    assert report.ok, messages(report)
    assert report.rows == 2


def test_non_utf8_is_reported(tmp_path: Path, manifest: data.Manifest) -> None:
    report = check(tmp_path, manifest, "", raw=f"{HEADER}\n".encode() + b"5.1,3.5,1.4,0.2,\xff\n")
    assert any("not UTF-8" in m for m in messages(report))


def test_a_changed_file_fails_the_hash_check(project: Path, manifest: data.Manifest) -> None:
    path = project / "data" / "iris.csv"
    path.write_text(path.read_text().replace("5.1,3.5,1.4,0.2", "5.2,3.5,1.4,0.2", 1))
    report = data.validate(path, manifest)
    assert len(report.problems) == 1
    assert "differs from the manifest" in report.problems[0].message
    assert "mlci data accept" in report.problems[0].message
    assert data.validate(path, manifest, check_hash=False).ok


def test_accept_records_the_new_hash_and_rows(project: Path, manifest: data.Manifest) -> None:
    path = project / "data" / "iris.csv"
    path.write_text(path.read_text() + "5.0,3.0,1.5,0.2,setosa\n")
    updated = data.accept(manifest)
    assert updated.rows == 151
    reloaded = data.load_manifest(manifest.path)
    assert reloaded.sha256 == updated.sha256 != manifest.sha256
    assert data.validate(path, reloaded).ok


def test_accept_refuses_invalid_data_and_writes_nothing(
    project: Path, manifest: data.Manifest
) -> None:
    before = manifest.path.read_bytes()
    path = project / "data" / "iris.csv"
    path.write_text(path.read_text() + "5.0,3.0,1.5,0.2,rose\n")
    with pytest.raises(MlciError, match=r"iris.csv:152:5: species: unknown label 'rose'"):
        data.accept(manifest)
    assert manifest.path.read_bytes() == before


def test_read_table_without_the_target(manifest: data.Manifest) -> None:
    lines = ["sepal_length,sepal_width,petal_length,petal_width", "5.1,3.5,1.4,0.2"]
    table = data.read_table(lines, "<stdin>", manifest, require_target=False)
    assert table.features == [[5.1, 3.5, 1.4, 0.2]]
    assert table.labels is None
    with pytest.raises(MlciError, match="missing column 'species'"):
        data.read_table(lines, "<stdin>", manifest)


def test_infer_manifest_drafts_ranges_and_labels(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n1,-2,x\n3,4,y\n")
    manifest = infer.infer_manifest(csv, "label", tmp_path / "t.manifest.json")
    manifest.save()
    loaded = data.load_manifest(tmp_path / "t.manifest.json")
    assert loaded.rows == 2
    assert loaded.file == "t.csv"
    a, b, label = loaded.columns
    assert (a.kind, a.min, a.max) == ("integer", 0.0, 5.0)
    assert (b.min, b.max) == (-8.0, 10.0)
    assert label.labels == ("x", "y")
    assert data.validate(csv, loaded).ok


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("a,a,label\n1,2,x\n", "duplicated column"),
        ("a,b\n1,2\n", "target column"),
        ("a,label\n", "header only"),
        ("a,label\n1\n", "t.csv:2: expected 2 fields"),
        ("a,label\n1,x\n2,y\n3,z\n", "t.csv:4:2: target 'label' has more than 2 distinct"),
        ("a,label\n1,x\n2,NA\n", r"t.csv:3:2: target 'label' is missing"),
    ],
)
def test_infer_manifest_errors(
    tmp_path: Path, text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(infer, "MAX_LABELS", 2)
    csv = tmp_path / "t.csv"
    csv.write_text(text)
    with pytest.raises(MlciError, match=message):
        infer.infer_manifest(csv, "label", tmp_path / "m.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("sha256"), "field 'sha256' is missing"),
        (lambda m: m.update(target="nope"), "target 'nope' is not one of the columns"),
        (
            lambda m: m["columns"][0].update(kind="float"),
            r"columns\[0\] \(sepal_length\): kind must be",
        ),
        (lambda m: m["columns"][0].update(dtype="float"), r"unknown key\(s\) dtype"),
        (lambda m: m.update(version=3), "version 3 is not one this mlci reads"),
        (lambda m: m["dialect"].update(delimiter=";;"), "dialect delimiter: must be one character"),
        (lambda m: m["columns"][0].update(missing="yes"), "'missing' must be true or false"),
        (
            lambda m: m["columns"][0].update(kind="text"),
            r"\(sepal_length\): a text column cannot be a feature",
        ),
        (
            lambda m: m["columns"][1].update(kind="categorical", values=["a"], unknown="x"),
            "unknown must be one of refuse, missing",
        ),
        (lambda m: m["columns"][0].update(min=9, max=1), "min 9 is greater than max 1"),
        (lambda m: m["columns"][0].pop("max"), "need numbers 'min' and 'max'"),
        (lambda m: m["columns"][4].update(values=[]), "'values' must be a non-empty list"),
        (lambda m: m["columns"].append(m["columns"][0]), "duplicated column name"),
        (
            lambda m: m["columns"][4].update(kind="boolean"),
            r"columns\[4\] \(species\): the target must be categorical .*or numeric",
        ),
    ],
)
def test_manifest_errors_name_the_field(
    project: Path, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    path = project / "data" / "iris.manifest.json"
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(MlciError, match=message):
        data.load_manifest(path)


def test_missing_data_file(tmp_path: Path, manifest: data.Manifest) -> None:
    with pytest.raises(MlciError, match="data file not found"):
        data.validate(tmp_path / "nope.csv", manifest)


def test_init_refuses_a_blank_target_cell(tmp_path: Path) -> None:
    """Its manifest would list '' as a label, and its own CSV would then fail validation."""
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("a,label\n1,x\n2,\n3,y\n")
    with pytest.raises(MlciError, match=r"d\.csv:3:2: target 'label' is missing"):
        infer.infer_manifest(csv_path, "label", tmp_path / "d.manifest.json")
    assert not (tmp_path / "d.manifest.json").exists()


V1 = {
    "file": "d.csv",
    "sha256": "0" * 64,
    "rows": 2,
    "target": "label",
    "columns": [
        {"name": "a", "dtype": "int", "min": 0, "max": 9},
        {"name": "b", "dtype": "float", "min": -1, "max": 1},
        {"name": "label", "dtype": "category", "labels": ["x", "y"]},
    ],
}


def test_a_version_1_manifest_still_reads(tmp_path: Path) -> None:
    """Registries hold models made with version 1 manifests: mlci must keep reading them."""
    path = tmp_path / "d.manifest.json"
    path.write_text(json.dumps(V1))
    manifest = data.load_manifest(path)
    assert [c.kind for c in manifest.columns] == ["integer", "numeric", "categorical"]
    assert manifest.target_column.labels == ("x", "y")
    assert manifest.dialect == Dialect()
    (tmp_path / "d.csv").write_text("a,b,label\n1,0.5,x\n2,,y\n")
    report = data.validate(tmp_path / "d.csv", manifest, check_hash=False)
    assert [str(p) for p in report.problems] == [
        f"{tmp_path / 'd.csv'}:3:2: b: empty value; the manifest says this column is never missing"
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["columns"][0].update(dtype="text"), r"columns\[0\] \(a\): dtype must be"),
        (lambda m: m["columns"][2].update(labels=[]), "'labels' must be a non-empty list"),
        (
            lambda m: m["columns"][1].update(dtype="category", labels=["a"]),
            r"columns\[1\] \(b\): only the target may be a category",
        ),
    ],
)
def test_version_1_errors_name_the_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    raw = json.loads(json.dumps(V1))
    change(raw)
    path = tmp_path / "d.manifest.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(MlciError, match=message):
        data.load_manifest(path)
