"""The README's "Real tables" steps, replayed in-process on three tables and a Parquet twin.

Each table goes from `mlci init --data` to a gate against its own baseline with no code or test
edit, with the default preparation and with the README's configured one; its model then scores
raw rows with categories and missing values through `mlci predict`. The served side (`mlci
serve`, MLflow's scoring client) is in tests/toolkit/serving/test_serve_tables.py.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO, block
from tables import TABLES, Made, parquet_twin

from mlci.cli import main
from mlci.pipeline import load_config, load_manifest


def real_tables_section() -> str:
    """The README's "Real tables" part of "Adapt it to your model"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"### Real tables[^\n]*\n(?P<body>.*?)\n## ", text, re.DOTALL)
    assert match, "README has no 'Real tables' section"
    return match["body"]


def make(name: str, folder: Path) -> Made:
    """One of the three tables, or ``passengers.parquet``: the Parquet twin of the first."""
    if name == "passengers.parquet":
        return parquet_twin(TABLES["passengers"](folder), folder)
    return TABLES[name](folder)


def adapt(root: Path, name: str, configured: bool, monkeypatch: pytest.MonkeyPatch) -> Made:
    """The README's steps 1 and 2 in a new project folder: init, then the configured table."""
    text = real_tables_section()
    (root / "data").mkdir(parents=True)
    made = make(name, root / "data")
    monkeypatch.chdir(root)
    command = re.search(r"^\s*mlci init --data (\S+) --target (\S+)$", text, re.MULTILINE)
    assert command, "no `mlci init --data … --target …` line in the section"
    # The README's command, for the README's table; the same command for the others.
    args = ["init", "--data", f"data/{made.path.name}", "--target", made.target, "--no-lock"]
    if name == "passengers":
        assert args[1:5] == ["--data", command[1], "--target", command[2]]
    assert main(args) == 0
    Path("requirements").mkdir()
    Path("requirements/main.txt").write_text("scikit-learn==0\n")  # what the stage key reads
    pyproject = Path("pyproject.toml")
    old = pyproject.read_text()
    if configured:
        toml = block(text, "```toml", "```")
        start, end = old.index("[tool.mlci.estimator]"), old.index("[tool.mlci.gate]")
        old = old[:start] + toml + "\n" + old[end:]
    pyproject.write_text(old + "\n[tool.mlci.report]\npictures = false\n")
    return made


CASES = [
    pytest.param(name, configured, id=f"{name}-{'configured' if configured else 'default'}")
    for name in ("passengers", "census", "sales", "passengers.parquet")
    for configured in (False, True)
]


@pytest.mark.parametrize(("name", "configured"), CASES)
def test_a_real_table_goes_through_the_readme_steps(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    configured: bool,
) -> None:
    made = adapt(tmp_path, name, configured, monkeypatch)
    out = capsys.readouterr().out
    manifest = load_manifest(load_config(Path()).manifest)
    kinds = {column.name: column for column in manifest.columns}
    assert any(column.kind == "categorical" for column in manifest.features), kinds
    if name.startswith("passengers"):
        # the identifier and the free text are left out, by name, saying why; age may be missing
        assert not kinds["passenger_id"].feature
        assert "identifier" in kinds["passenger_id"].why
        assert not kinds["name"].feature
        assert kinds["age"].missing
        assert kinds["embarked"].missing
        assert "passenger_id: not a feature" in out
    if name == "census":
        assert (manifest.dialect.skipinitialspace, manifest.dialect.missing) == (True, ("?",))
        assert "Self-emp, not inc" in kinds["workclass"].values
    if name == "sales":
        assert (manifest.dialect.delimiter, manifest.dialect.index_column) == (";", True)
        assert (kinds["date"].kind, kinds["promo"].kind) == ("date", "boolean")
    # Step 2: train, check, gate, baseline, gate again: what `make ci` asks of the model.
    assert main(["train"]) == 0
    trained = capsys.readouterr().out
    expected = "HistGradientBoostingClassifier" if configured else "RandomForestClassifier"
    assert f"trained {expected} on 400 rows" in trained
    assert main(["check"]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out.startswith("model checks passed")
    assert main(["gate"]) == 0, capsys.readouterr().out
    assert "vs StandardScaler → LogisticRegression" in capsys.readouterr().out
    assert main(["baseline", "update"]) == 0
    assert main(["gate"]) == 0
    assert "reference: baseline for Python" in capsys.readouterr().out
    if configured:  # the README's grid fits its estimator (1: a point beats the configured one)
        assert main(["tune"]) in (0, 1)
        capsys.readouterr()
    # The model takes raw rows: categories as text, missing values, in the file's own dialect.
    rows = Path("raw.csv")
    features = [column.name for column in manifest.features]
    with rows.open("w", newline="") as stream:
        writer = csv.writer(stream, delimiter=manifest.dialect.delimiter)
        index = [""] if manifest.dialect.index_column else []  # pandas' unnamed index
        writer.writerow([*index, *features])
        for number, raw in enumerate(made.raw):
            cells = ["" if raw[f] is None else _text(raw[f]) for f in features]
            writer.writerow([str(number)] * len(index) + cells)
    assert main(["predict", str(rows), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["predictions"]
    assert len(predicted) == len(made.raw)
    assert set(predicted) <= set(manifest.target_column.labels)
    # The data file itself, CSV or Parquet: its target and identifier columns are read past.
    assert main(["predict", str(made.path), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"]) == manifest.rows
    # A release: registered with its data, smoke-tested from the registry's copy, promoted.
    assert main(["release"]) == 0, capsys.readouterr().out
    assert "loaded, verified, reproduced its held-out predictions" in capsys.readouterr().out
    # A new batch in the file's own format: the same rows do not drift, column by kind.
    Path("data/incoming").mkdir()
    shutil.copy(made.path, Path("data/incoming") / f"batch{made.path.suffix}")
    assert main(["drift"]) == 0, capsys.readouterr().out
    report = json.loads(Path("artifacts/drift.json").read_text())
    tests = {c["column"]: c["test"] for c in report["batches"][0]["columns"]}
    chi2 = {tests[c.name] for c in manifest.features if c.kind in ("categorical", "boolean")}
    assert chi2 == {"chi2"}


def test_predict_refuses_an_unknown_category_naming_its_line_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    adapt(tmp_path, "passengers", False, monkeypatch)
    assert main(["train"]) == 0
    Path("raw.csv").write_text("sex,embarked,pclass,age,fare\nfemale,,1,,50\nother,S,3,30,8\n")
    capsys.readouterr()
    assert main(["predict", "raw.csv"]) == 2
    err = capsys.readouterr().err
    assert "raw.csv:3:1: sex: unknown category 'other'; allowed: female, male" in err
    assert "Traceback" not in err


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


CHECKS = """
[[examples]]
name = "a young woman in first class, embarked unknown"
label = "yes"
row = { sex = "female", pclass = 1, fare = 60.0, age = 25.0 }

[[slices]]
where = "sex == 'female'"
metric = "accuracy"
min = 0.5

[[slices]]
where = "embarked != 'Q'"
metric = "accuracy"
min = 0.5
"""


def test_checks_take_categories_and_missing_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    adapt(tmp_path, "passengers", False, monkeypatch)
    Path("data/passengers.checks.toml").write_text(CHECKS)
    assert main(["train"]) == 0
    capsys.readouterr()
    assert main(["check"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "a young woman in first class, embarked unknown" in out
    assert "sex == 'female'" in out
    assert "embarked != 'Q'" in out


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        (
            '[[invariance]]\ncolumn = "sex"\ndelta = 1.0\n',
            "column: 'sex' is categorical; invariance and directional checks move numeric",
        ),
        (
            '[[slices]]\nwhere = "sex == \'other\'"\nmetric = "accuracy"\nmin = 0.5\n',
            "'other' is not a category of sex",
        ),
        (
            '[[slices]]\nwhere = "sex > \'a\'"\nmetric = "accuracy"\nmin = 0.5\n',
            "sex is categorical: use == or != with a category",
        ),
        (  # age may be missing and can be left out; fare cannot
            '[[examples]]\nlabel = "yes"\nrow = { sex = "female", pclass = 1, age = 3.0 }\n',
            r"missing \['fare'\]",
        ),
        (
            '[[examples]]\nlabel = "yes"\nrow = { sex = "f", pclass = 1, fare = 1.0 }\n',
            "row: sex: unknown category 'f'",
        ),
    ],
)
def test_checks_on_categories_say_what_is_wrong(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    checks: str,
    message: str,
) -> None:
    adapt(tmp_path, "passengers", False, monkeypatch)
    Path("data/passengers.checks.toml").write_text(checks)
    assert main(["train"]) == 0
    capsys.readouterr()
    assert main(["check"]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_an_unknown_category_read_as_missing_when_the_manifest_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    adapt(tmp_path, "passengers", False, monkeypatch)
    path = Path("data/passengers.manifest.json")
    raw = json.loads(path.read_text())
    sex = next(column for column in raw["columns"] if column["name"] == "sex")
    sex["unknown"] = "missing"
    path.write_text(json.dumps(raw))
    assert main(["train"]) == 0
    Path("raw.csv").write_text("sex,embarked,pclass,age,fare\nother,S,3,30,8\n,S,3,30,8\n")
    capsys.readouterr()
    assert main(["predict", "raw.csv"]) == 2  # an empty cell is still missing, never allowed
    assert "raw.csv:3:1: sex: empty value" in capsys.readouterr().err
    Path("raw.csv").write_text("sex,embarked,pclass,age,fare\nother,S,3,30,8\n")
    assert main(["predict", "raw.csv"]) == 0
    assert capsys.readouterr().out.strip() in ("yes", "no")
