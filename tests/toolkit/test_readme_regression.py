"""The README's "Regression" steps, replayed in-process on two data sets with both estimators.

The diabetes data is written by the README's own snippet; the `make_regression` table by
`write_curve` here. Each goes from `mlci init --data` through what `make ci` asks of the model
(train, check, gate, baseline, gate), then tuning, `mlci predict`, a release and drift. The
`project` session runs a real `make ci` on the diabetes data with the first estimator.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from pathlib import Path

import pytest
from conftest import REPO, block

from mlci.cli import main
from mlci.pipeline import load_config, load_manifest


def regression_section() -> str:
    """The README's "Regression" part of "Adapt it to your model"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"### Regression[^\n]*\n(?P<body>.*?)\n##+ ", text, re.DOTALL)
    assert match, "README has no 'Regression' section"
    return match["body"]


def estimator_blocks() -> list[str]:
    """The two `[tool.mlci.estimator]` blocks of step 2."""
    body = regression_section()
    blocks = re.findall(r"```toml\n(.*?)```", body, re.DOTALL)
    found = [
        re.sub(r"^ {3}", "", b, flags=re.MULTILINE) for b in blocks if "[tool.mlci.estimator]" in b
    ]
    assert len(found) == 2, found
    return found


def write_diabetes(folder: Path) -> tuple[Path, str]:
    """The README's snippet, run here: scikit-learn's diabetes data as data/diabetes.csv."""
    body = regression_section()
    snippet = block(body, "python - <<'PY'", "PY")
    command = re.search(r"^\s*mlci init --data (\S+) --target (\S+)$", body, re.MULTILINE)
    assert command, "no `mlci init --data … --target …` line in the section"
    exec(compile(snippet, "README.md", "exec"), {})  # writes data/diabetes.csv, relative
    path = Path(command[1])
    assert path.is_file()
    assert path.parent == folder.relative_to(Path.cwd())
    return path, command[2]


def write_curve(folder: Path) -> tuple[Path, str]:
    """A `make_regression` table with a curve in one column's effect, as the README says."""
    import numpy as np
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=1000, n_features=6, n_informative=4, noise=5.0, random_state=0)
    y = y + 40 * np.sin(2 * x[:, 0])
    path = folder / "curve.csv"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([*(f"x{i}" for i in range(x.shape[1])), "y"])
        writer.writerows([*map(float, row), float(value)] for row, value in zip(x, y))
    return path.relative_to(Path.cwd()), "y"


DATA = {"diabetes": write_diabetes, "curve": write_curve}
CASES = [
    pytest.param(data, estimator, id=f"{data}-{('boosting', 'pipeline')[estimator]}")
    for data in DATA
    for estimator in (0, 1)
]


@pytest.mark.parametrize(("data", "estimator"), CASES)
def test_a_regression_goes_through_the_readme_steps(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data: str,
    estimator: int,
) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    path, target = DATA[data](tmp_path / "data")
    # Step 1: init reads a quantity, writes its range and a regressor's project.
    assert main(["init", "--data", str(path), "--target", target, "--no-lock"]) == 0
    out = capsys.readouterr().out
    assert "a quantity to predict (regression)" in out
    Path("requirements").mkdir()
    Path("requirements/main.txt").write_text("scikit-learn==0\n")  # what the stage key reads
    config = load_config(Path())
    manifest = load_manifest(config.manifest)
    assert manifest.task == "regression"
    column = manifest.target_column
    assert column.kind in ("numeric", "integer")
    assert column.min is not None
    assert "RandomForestRegressor" in Path("pyproject.toml").read_text()
    # Step 2: the README's estimator, in place of the generated one.
    pyproject = Path("pyproject.toml")
    old = pyproject.read_text()
    start, end = old.index("[tool.mlci.estimator]"), old.index("[tool.mlci.gate]")
    chosen = estimator_blocks()[estimator]
    pyproject.write_text(
        old[:start] + chosen + "\n" + old[end:] + "\n[tool.mlci.report]\npictures = false\n"
    )
    assert main(["train"]) == 0
    trained = capsys.readouterr().out
    assert re.search(r"r2 0\.\d{4}   rmse \d+\.\d{4}", trained), trained
    assert main(["check"]) == 0, capsys.readouterr().out
    checked = capsys.readouterr().out
    assert checked.startswith("model checks passed")
    assert "finite predictions" in checked
    assert "a row near the 50th percentile" in checked
    assert main(["gate"]) == 0, capsys.readouterr().out
    gated = capsys.readouterr().out
    for rival in ("DummyRegressor (mean)", "DummyRegressor (median)", "StandardScaler → Ridge"):
        assert f"vs {rival}" in gated
    assert main(["baseline", "update"]) == 0
    assert main(["baseline", "check"]) == 0
    assert main(["gate"]) == 0
    gated = capsys.readouterr().out
    assert "reference: baseline for Python" in gated
    assert "rise <= 2.0%" in gated
    # Tuning by R²: the README's params were chosen on the diabetes data; on another table the
    # grid may find better ones, and then says which.
    tuned = main(["tune"])
    advice = capsys.readouterr().out
    assert tuned == 0 if data == "diabetes" else tuned in (0, 1), advice
    assert tuned == 0 or "in [tool.mlci.estimator] params" in advice
    # Numbers out: `mlci predict` on the data file (its target column is read past).
    assert main(["predict", str(path), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["predictions"]
    assert len(predicted) == manifest.rows
    assert all(isinstance(value, float) and math.isfinite(value) for value in predicted)
    metrics = json.loads(Path("artifacts/metrics.json").read_text())
    assert metrics["task"] == "regression"
    assert {"r2", "rmse", "mae", "max_error", "mape"} <= set(metrics)
    # A release, smoke-tested from the registry's copy; then drift with the model's predictions.
    assert main(["release"]) == 0, capsys.readouterr().out
    assert "reproduced its held-out predictions" in capsys.readouterr().out
    Path("data/incoming").mkdir()
    shutil.copy(path, Path("data/incoming") / "batch.csv")
    assert main(["drift"]) == 0, capsys.readouterr().out
    report = json.loads(Path("artifacts/drift.json").read_text())
    tests = {c["column"]: c for c in report["batches"][0]["columns"]}
    assert tests["prediction"]["counted"] is False
    assert not tests["prediction"]["drifted"]
    assert tests["target"]["test"] in ("ks", "wasserstein")
