"""XGBoost and LightGBM through the adapt path, as regressor and classifier, with 1 and 2 threads.

The README's two estimator blocks (a regressor each) are taken as written and, for the
classifier, with the classifier's class; each project trains, passes its gate, records and
reproduces its baseline (the retrained model file's SHA-256 included: XGBoost's and LightGBM's
files are byte-identical across identical fits) and passes its checks. Its predictions and
metrics are the same with `n_jobs` 1 and 2.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, diabetes_project, make_dataset_project

from mlci.cli import main
from mlci.pipeline import _baseline as baseline
from mlci.pipeline import load_config

pytest.importorskip("xgboost", reason="the xgboost extra is not installed")
pytest.importorskip("lightgbm", reason="the lightgbm extra is not installed")


def readme_blocks() -> dict[str, str]:
    """The README's boosting blocks by library: the `[tool.mlci.estimator]` body."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"### Gradient boosting[^\n]*\n(?P<body>.*?)\n## ", text, re.DOTALL)
    assert match, "README has no 'Gradient boosting' section"
    blocks = re.findall(r"```toml\n\[tool\.mlci\.estimator\]\n(.*?)```", match["body"], re.DOTALL)
    found = {("xgboost" if "xgboost." in b else "lightgbm"): b for b in blocks}
    assert set(found) == {"xgboost", "lightgbm"}, blocks
    return found


def estimator(library: str, task: str, threads: int) -> str:
    """The README's block for ``library``, as a classifier when ``task`` says so."""
    body = readme_blocks()[library].replace("n_jobs = 2", f"n_jobs = {threads}")
    assert f"n_jobs = {threads}" in body
    if task == "classification":
        body = body.replace("XGBRegressor", "XGBClassifier").replace(
            "LGBMRegressor", "LGBMClassifier"
        )
    return body


def project(root: Path, library: str, task: str, threads: int) -> Path:
    body = estimator(library, task, threads)
    if task == "regression":
        diabetes_project(root, body)
    else:  # wine, with string labels: XGBoost takes only codes, the model answers labels
        make_dataset_project(root, "wine", body, string_labels=True)
    (root / "requirements").mkdir()
    (root / "requirements" / "main.txt").write_text("scikit-learn==0\n", encoding="utf-8")
    return root


CASES = [
    pytest.param(library, task, id=f"{library}-{task}")
    for library in ("xgboost", "lightgbm")
    for task in ("classification", "regression")
]


@pytest.mark.parametrize(("library", "task"), CASES)
def test_boosting_goes_through_the_adapt_path_with_one_and_two_threads(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    library: str,
    task: str,
) -> None:
    made: dict[int, dict[str, Any]] = {}
    for threads in (1, 2):
        root = project(tmp_path / str(threads), library, task, threads)
        monkeypatch.chdir(root)
        assert main(["train"]) == 0
        assert (
            "mlci: warning:" not in capsys.readouterr().err
        )  # the README's LightGBM block is deterministic
        assert main(["gate"]) == 0, capsys.readouterr().out
        assert main(["baseline", "update"]) == 0
        assert main(["baseline", "check"]) == 0, capsys.readouterr().out
        assert main(["check"]) == 0, capsys.readouterr().out
        capsys.readouterr()
        predictions = json.loads(Path("artifacts/predictions.json").read_text())
        lineage = json.loads(Path("artifacts/lineage.json").read_text())
        recorded = json.loads(Path("metrics/baseline.json").read_text())
        [entry] = recorded.values()
        made[threads] = {"predictions": predictions, "lineage": lineage, "baseline": entry}
    one, two = made[1], made[2]
    assert one["predictions"]["sha256"] == two["predictions"]["sha256"]
    assert one["baseline"]["metrics"] == two["baseline"]["metrics"]
    if task == "classification":  # the labels the data has, not XGBoost's codes
        assert set(one["predictions"]["predicted"]) <= {"class_0", "class_1", "class_2"}
    else:
        assert all(isinstance(value, float) for value in one["predictions"]["predicted"])
    versions = one["baseline"]["versions"]
    boosting = "xgboost-cpu" if library == "xgboost" else "lightgbm"
    assert versions[boosting] == one["lineage"]["packages"][boosting]


def test_a_lightgbm_config_without_determinism_is_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (
        'class = "lightgbm.LGBMRegressor"\n'
        "params = { n_estimators = 20, n_jobs = 1, verbose = -1 }\n"
    )
    root = diabetes_project(tmp_path, body)
    monkeypatch.chdir(root)
    assert main(["train"]) == 0
    err = capsys.readouterr().err
    assert "mlci: warning: [tool.mlci.estimator] params: LGBMRegressor makes the same model" in err
    assert "deterministic = true and force_row_wise = true" in err


def test_an_estimator_whose_file_varies_is_judged_by_its_predictions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CatBoost-like estimator: another model file from the same fit. Its predictions and
    metrics are compared; its file's hash is not. Any other estimator's hash still is."""
    root = diabetes_project(tmp_path)
    (root / "requirements").mkdir()
    (root / "requirements" / "main.txt").write_text("scikit-learn==0\n", encoding="utf-8")
    monkeypatch.chdir(root)
    assert main(["baseline", "update"]) == 0
    recorded = json.loads(Path("metrics/baseline.json").read_text())
    for entry in recorded.values():
        entry["model_sha256"] = "0" * 64  # as if the file held another GUID and time
    Path("metrics/baseline.json").write_text(json.dumps(recorded))
    capsys.readouterr()
    assert baseline.check(load_config(root))[0].startswith("model SHA-256")
    monkeypatch.setattr(baseline, "PICKLE_VARIES", ("sklearn.linear_model.",))
    assert baseline.check(load_config(root)) == []
    for entry in recorded.values():
        entry["predictions"]["predicted"][0] += 1.0
        entry["predictions"]["sha256"] = "f" * 64
    Path("metrics/baseline.json").write_text(json.dumps(recorded))
    problems = baseline.check(load_config(root))
    assert len(problems) == 1
    assert "1 held-out rows changed" in problems[0]
