"""Real columns: the dialect and kinds `data init` drafts, the reader, the model's preparation."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from mlci.errors import MlciError
from mlci.pipeline import _data as data
from mlci.pipeline import _infer as infer
from mlci.pipeline._columns import Column, Dialect, read_cell, read_value
from mlci.pipeline._config import load_config
from mlci.pipeline._prepare import PrepareConfig, choices, model_input, prepared


def draft(tmp_path: Path, text: str, target: str = "label") -> data.Manifest:
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    return infer.infer_manifest(path, target, tmp_path / "t.manifest.json")


def rows_of(*lines: str, n: int = 30) -> str:
    """A header and ``lines`` repeated to ``n`` rows, so that kinds are not guessed from a few."""
    header, *body = lines
    return header + "\n" + "\n".join(body[i % len(body)] for i in range(n)) + "\n"


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        ("a,b,label\n1,x,y\n", Dialect()),
        ("a; b; label\n1; x; y\n", Dialect(delimiter=";", skipinitialspace=True)),
        ("a\tb\tlabel\n1\tx\ty\n", Dialect(delimiter="\t")),
        ('a, b, label\n1, "x, z", y\n', Dialect(skipinitialspace=True)),
        (";a;b;label\r\n0;1;x;y\r\n", Dialect(delimiter=";", index_column=True)),
        ("Unnamed: 0,a,b,label\n0,1,x,y\n", Dialect(index_column=True)),
        ("a,b,label\n?,x,y\nNA,z,y\n", Dialect(missing=("?", "NA"))),
    ],
)
def test_the_dialect_is_detected(tmp_path: Path, text: str, dialect: Dialect) -> None:
    manifest = draft(tmp_path, text)
    assert manifest.dialect == dialect
    assert [c.name for c in manifest.columns] == ["a", "b", "label"]
    report = data.validate(tmp_path / "t.csv", manifest)
    assert report.ok, [str(p) for p in report.problems]


def test_each_kind_is_drafted_and_left_out_columns_say_why(tmp_path: Path) -> None:
    lines = ["id,when,flag,code,city,comment,leak,x,label"]
    for i in range(60):
        lines.append(
            f"{i},2026-01-{1 + i % 28:02d},{'yes' if i % 4 < 2 else 'no'},{i % 3},"
            f"{['Oslo', 'Rome', ''][i % 3]},free text {i},{'L' if i % 2 else 'M'},{i / 7:.3f},"
            f"{'b' if i % 2 else 'a'}"
        )
    manifest = draft(tmp_path, "\n".join(lines) + "\n")
    kinds = {c.name: c for c in manifest.columns}
    assert (kinds["id"].kind, kinds["id"].feature) == ("integer", False)
    assert "identifier" in kinds["id"].why
    assert (kinds["when"].kind, kinds["when"].feature) == ("date", False)
    assert kinds["flag"].kind == "boolean"
    assert kinds["code"].kind == "integer"
    assert "3 distinct integers" in kinds["code"].note
    assert (kinds["city"].kind, kinds["city"].values, kinds["city"].missing) == (
        "categorical",
        ("Oslo", "Rome"),
        True,
    )
    assert (kinds["comment"].kind, kinds["comment"].feature) == ("text", False)
    assert kinds["leak"].feature is False
    assert "leaks the target" in kinds["leak"].why
    assert kinds["x"].kind == "numeric"
    assert [c.name for c in manifest.features] == ["flag", "code", "city", "x"]
    notes = infer.review_notes(manifest)
    assert "id: not a feature: identifier: a distinct integer in every row, and named like one" in (
        notes
    )
    assert any(note.startswith("code: 3 distinct integers") for note in notes)
    manifest.save()  # what is written reads back the same
    assert data.load_manifest(manifest.path) == manifest
    assert data.validate(tmp_path / "t.csv", manifest).ok


def test_the_reader_refuses_by_kind_and_names_the_cell(tmp_path: Path) -> None:
    manifest = draft(tmp_path, rows_of("c,n,label", "red,1.5,x", "blue,,y"))
    (tmp_path / "b.csv").write_text("c,n,label\ngreen,2,x\nred,NA,y\n,1,x\n")
    report = data.validate(tmp_path / "b.csv", manifest, check_hash=False, display="b.csv")
    assert [str(p) for p in report.problems] == [
        "b.csv:2:1: c: unknown category 'green'; allowed: blue, red",
        "b.csv:3:2: n: not a number: 'NA'",  # NA is no missing token of this file
        "b.csv:4:1: c: empty value; the manifest says this column is never missing",
    ]


@pytest.mark.parametrize(
    ("value", "column", "expected"),
    [
        ("x", Column("c", "categorical", values=("x",)), ("x", None)),
        (3, Column("c", "categorical", values=("3",)), ("3", None)),
        ("z", Column("c", "categorical", values=("x",), unknown="missing"), (None, None)),
        (None, Column("c", "categorical", values=("x",), missing=True), (None, None)),
        (True, Column("b", "boolean"), (1.0, None)),
        ("no", Column("b", "boolean"), (0.0, None)),
        ("1.0", Column("b", "boolean"), (1.0, None)),
        (2, Column("b", "boolean"), (None, "expected true or false, got 2")),
        (2.0, Column("i", "integer", min=0, max=9), (2.0, None)),
    ],
)
def test_values_are_read_by_their_column(value: object, column: Column, expected: object) -> None:
    assert read_value(value, column) == expected


def test_missing_tokens_are_the_dialects() -> None:
    column = Column("n", "numeric", min=0, max=1, missing=True)
    assert read_cell(" ? ", column, Dialect(missing=("?",))) == (None, None)
    assert read_cell("?", column, Dialect())[1] == "not a number: '?'"
    never = Column("n", "numeric", min=0, max=1)
    assert "never missing" in str(read_cell("", never, Dialect())[1])


def test_a_parquet_file_is_drafted_with_its_types_and_bad_cells_named_by_row(
    tmp_path: Path,
) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    count = 40
    table = pa.table(
        {
            "n": pa.array([float(i) if i % 5 else None for i in range(count)]),
            "c": pa.array([["a", "b"][i % 2] for i in range(count)]).dictionary_encode(),
            "ok": pa.array([bool(i % 3) for i in range(count)]),
            "day": pa.array([datetime.date(2026, 1, 1 + i % 28) for i in range(count)]),
            "label": pa.array([["x", "y"][i % 2 == 0 or i % 7 == 0] for i in range(count)]),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    manifest = infer.infer_manifest(tmp_path / "t.parquet", "label", tmp_path / "m.json")
    kinds = {c.name: (c.kind, c.missing) for c in manifest.columns}
    assert kinds == {
        "n": ("integer", True),
        "c": ("categorical", False),
        "ok": ("boolean", False),
        "day": ("date", False),
        "label": ("categorical", False),
    }
    assert [c.name for c in manifest.features] == ["n", "c", "ok"]
    assert data.validate(tmp_path / "t.parquet", manifest).ok
    bad = table.set_column(1, "c", pa.array([["a", "z"][i == 3] for i in range(count)]))
    pq.write_table(bad, tmp_path / "b.parquet")
    report = data.validate(tmp_path / "b.parquet", manifest, check_hash=False, display="b")
    assert [str(p) for p in report.problems] == [
        "b: row 4, column 2: c: unknown category 'z'; allowed: a, b"
    ]
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(MlciError, match=r"broken\.parquet: not a readable Parquet file"):
        data.read_file(tmp_path / "broken.parquet", manifest)


COLUMNS = (
    Column("c", "categorical", values=("a", "b"), missing=True),
    Column("n", "numeric", min=0, max=100, missing=True),
)


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        ("sklearn.ensemble.HistGradientBoostingClassifier", ("native", "passthrough")),
        ("sklearn.ensemble.RandomForestClassifier", ("onehot", "median")),
    ],
)
def test_auto_preparation_fits_the_estimator(estimator: str, expected: tuple[str, str]) -> None:
    from mlci.pipeline._config import EstimatorSpec, build_estimator

    model = build_estimator(EstimatorSpec.single(estimator))
    assert choices(PrepareConfig(), model) == expected


def test_numbers_never_missing_need_no_preparation() -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression()
    assert prepared(model, (Column("n", "numeric", min=0, max=1),), PrepareConfig(), "x") is model


def test_native_categories_need_an_estimator_that_has_them() -> None:
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(MlciError, match="'native' needs an estimator with native categorical"):
        prepared(LogisticRegression(), COLUMNS, PrepareConfig(categorical="native"), "x")


@pytest.mark.parametrize("categorical", ["onehot", "ordinal", "native"])
def test_a_prepared_model_scores_none_and_nan_alike(categorical: str) -> None:
    """mlci's rows carry NaN for missing; a pandas frame from MLflow's server may carry None."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    rows: list[list[Any]] = [["a", 1.0], ["b", None], [None, 50.0], ["a", 80.0]] * 10
    labels = ["x", "y", "y", "x"] * 10
    model = prepared(
        HistGradientBoostingClassifier(max_iter=10),
        COLUMNS,
        PrepareConfig(categorical=categorical),
        "x",
    )
    model.fit(model_input(rows, COLUMNS), labels)
    with_nan = model_input([[None, None], ["z", 3.0]], COLUMNS)
    with_none = np.array([[None, np.nan], ["z", 3.0]], dtype=object)
    assert model.predict_proba(with_nan).tolist() == model.predict_proba(with_none).tolist()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('categorical = "dummy"', "categorical: 'dummy' is not one of auto, onehot"),
        ('numeric = "zero"', "numeric: 'zero' is not one of auto, median"),
        ("scale = true", "unknown key"),
    ],
)
def test_prepare_settings_are_checked(project: Path, table: str, message: str) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f"\n[tool.mlci.prepare]\n{table}\n")
    with pytest.raises(MlciError, match=message):
        load_config(project)


def test_a_configured_preparation_is_part_of_the_training_key(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    before = json.dumps(load_config(project).resolved())
    pyproject.write_text(pyproject.read_text() + '\n[tool.mlci.prepare]\nnumeric = "mean"\n')
    after = load_config(project).resolved()
    assert after["prepare"] == {"categorical": "auto", "numeric": "mean"}
    assert json.dumps(after) != before


@pytest.mark.parametrize(
    ("text", "missing", "expected"),
    [
        ("1.5", True, (1.5, None)),
        (" 2 ", True, (2.0, None)),
        ("-999", True, (None, None)),  # a number the dialect says means missing
        (
            "-999",
            False,
            (None, "missing value ('-999'); the manifest says this column is never missing"),
        ),
        ("1e9", True, (None, "1e9 is outside the allowed range [-1000, 10]")),
        ("nan", True, (None, "'nan' is not a finite number")),
        ("x", True, (None, "not a number: 'x'")),
        ("", True, (None, None)),
    ],
)
def test_the_fast_reader_of_numbers_reads_as_read_cell(
    text: str, missing: bool, expected: tuple[object, object]
) -> None:
    from mlci.pipeline._columns import cell_reader

    column = Column("n", "numeric", min=-1000, max=10, missing=missing)
    dialect = Dialect(missing=("-999",))
    assert cell_reader(column, dialect)(text) == expected == read_cell(text, column, dialect)


def test_model_input_by_kind() -> None:
    numbers = model_input([[1.0, None]], (Column("a", "numeric"), Column("b", "numeric")))
    assert numbers.dtype.kind == "f"
    assert numbers[0, 1] != numbers[0, 1]  # NaN
    assert model_input([[1.0, 2.0]], ()).dtype.kind == "f"  # rows without column descriptions
    mixed = model_input([["a", None]], COLUMNS)
    assert mixed.dtype == object
    assert mixed[0, 0] == "a"


def test_a_numeric_target_with_many_values_is_a_quantity_with_its_range(tmp_path: Path) -> None:
    """Written as 214 labels before (scikit-learn's diabetes data); training failed to split."""
    from sklearn.datasets import load_diabetes

    diabetes = load_diabetes()
    lines = ["a,b,y"] + [f"{x[0]},{x[1]},{y}" for x, y in zip(diabetes.data, diabetes.target)]
    manifest = draft(tmp_path, "\n".join(lines) + "\n", target="y")
    target = manifest.target_column
    assert (manifest.task, target.kind, target.values) == ("regression", "integer", ())
    assert target.min is not None
    assert target.max is not None
    assert target.min <= min(diabetes.target) <= max(diabetes.target) <= target.max
    assert "214 distinct numbers in 442 rows" in target.note
    assert manifest.features[0].why == ""  # no column "leaks" a quantity by being unique
    # few distinct numbers are class labels, as before
    manifest = draft(tmp_path, rows_of("a,y", "1.5,0", "2.5,1", "3.5,2"), target="y")
    assert manifest.target_column.labels == ("0", "1", "2")
