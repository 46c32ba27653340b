from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import SCALED_LOGISTIC, make_dataset_project, write_pyproject

from mlci.cli import main
from mlci.errors import MlciError
from mlci.pipeline import (
    Config,
    TrainResult,
    checks_path,
    load_checks,
    load_config,
    load_manifest,
    load_trained,
    run_checks,
    train,
)

GOOD = """
[[examples]]
name = "small flower"
label = "setosa"
row = { sepal_length = 5.0, sepal_width = 3.4, petal_length = 1.5, petal_width = 0.2 }

[[invariance]]
column = "sepal_width"
delta = 0.01

[[invariance]]
column = "petal_length"
relative = 0.001
min_share = 0.9

[[directional]]
column = "petal_width"
increase = 0.5
label = "virginica"
tolerance = 0.05
min_share = 0.9

[[slices]]
label = "setosa"
metric = "recall"
min = 1.0

[[slices]]
name = "long petals"
where = "petal_length >= 4.5"
metric = "accuracy"
min = 0.5
"""


def write_checks(config: Config, text: str) -> Path:
    path = checks_path(config)
    path.write_text(text, encoding="utf-8")
    return path


def outcomes(config: Config, **kwargs: Any) -> dict[str, Any]:
    checks = load_checks(checks_path(config), load_manifest(config.manifest))
    found = run_checks(config, load_trained(config), checks, **kwargs)
    return {f"{o.kind}:{o.name}": o for o in found}


def test_every_kind_of_check_passes_on_a_good_model(trained: TrainResult, config: Config) -> None:
    write_checks(config, GOOD)
    found = outcomes(config)
    assert list(found) == [
        "always:known labels",
        "always:finite probabilities",
        "always:same seed, same predictions",
        "example:small flower",
        "invariance:sepal_width ±0.01",
        "invariance:petal_length ±0%",
        "directional:petal_width +0.5 raises P(virginica)",
        "slice:setosa",
        "slice:long petals",
    ]
    assert all(o.passed for o in found.values()), [o.describe() for o in found.values()]
    assert found["slice:long petals"].got.endswith("rows")


def test_failures_name_the_check_and_say_expected_and_got(
    trained: TrainResult, config: Config
) -> None:
    write_checks(
        config,
        GOOD.replace('label = "setosa"\nrow', 'label = "virginica"\nrow')
        .replace("delta = 0.01", "delta = 3.0")
        .replace('label = "virginica"\ntolerance', 'label = "setosa"\ntolerance')
        .replace("tolerance = 0.05\nmin_share = 0.9", "tolerance = 0.05\nmin_share = 1.0")
        .replace("min = 0.5", "min = 1.0"),
    )
    found = outcomes(config, retrain=False)
    example = found["example:small flower"]
    assert not example.passed
    assert example.describe() == "example 'small flower': expected virginica, got setosa"
    invariance = found["invariance:sepal_width ±3"]
    assert not invariance.passed
    # The rows are named by their line in the data file, all of them held-out rows.
    named = re.search(r"rows changed; lines? ([\d, ]+)", invariance.got)
    assert named, invariance.got
    held_out = json.loads((config.artifacts / "predictions.json").read_text())["lines"]
    assert {int(n) for n in named[1].split(", ")} <= set(held_out)
    assert re.search(
        r"rows dropped, worst -[\d.]+; lines? \d+",
        found["directional:petal_width +0.5 raises P(setosa)"].got,
    )
    assert not found["directional:petal_width +0.5 raises P(setosa)"].passed
    assert not found["slice:long petals"].passed
    assert "always:same seed, same predictions" not in found


def test_no_file_still_runs_the_always_on_checks(trained: TrainResult, config: Config) -> None:
    found = outcomes(config)
    assert [o.kind for o in found.values()] == ["always"] * 3
    assert all(o.passed for o in found.values())


def test_nan_probabilities_and_unknown_labels_fail(
    trained: TrainResult, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    model = load_trained(config)
    monkeypatch.setattr(model, "predict_proba", lambda x: np.full((len(x), 3), np.nan))
    monkeypatch.setattr(model, "predict", lambda x: np.array(["rose"] * len(x)))
    checks = load_checks(checks_path(config), load_manifest(config.manifest))
    found = {o.name: o for o in run_checks(config, model, checks, retrain=False)}
    assert not found["known labels"].passed
    assert found["known labels"].got == "rose"
    assert not found["finite probabilities"].passed
    assert found["finite probabilities"].got == "30 rows"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[invariance]]\ncolumn = 'petal'\ndelta = 1",
            r"\[\[invariance\]\] 1 column: 'petal' is not",
        ),
        ("[[invariance]]\ncolumn = 'sepal_width'", "either 'delta' .* or 'relative'"),
        (
            "[[examples]]\nlabel = 'rose'\nrow = {}",
            r"\[\[examples\]\] 1 label: 'rose' is not a label \(setosa, versicolor, virginica\)",
        ),
        (
            "[[examples]]\nlabel = 'setosa'\nrow = { sepal_length = 1 }",
            r"row: needs exactly the features; missing \['sepal_width'",
        ),
        (
            "[[slices]]\nwhere = 'petal_length ~ 3'\nmetric = 'accuracy'\nmin = 1",
            "is not '<column> <op> <number>'",
        ),
        ("[[slices]]\nlabel = 'setosa'\nmetric = 'auc'\nmin = 1", "metric: must be one of"),
        ("[[slices]]\nmetric = 'recall'\nmin = 1", "either 'label' .* or 'where'"),
        ("[[directional]]\ncolumn = 'sepal_width'\nincrease = 1\nlabel = 'x'", "label: 'x'"),
        ("[[invariance]]\ncolumn = 'sepal_width'\ndelta = 1\nmin_share = 2", "min_share"),
        ("[[examples]]\nlabel = 'setosa'\nrow = {}\ncolour = 1", r"unknown key\(s\) colour"),
        ("[invariance]\ncolumn = 1", "invariance: must be a list"),
    ],
)
def test_check_file_errors_name_the_entry_and_field(
    config: Config, text: str, message: str
) -> None:
    path = write_checks(config, text)
    with pytest.raises(MlciError, match=message) as info:
        load_checks(path, load_manifest(config.manifest))
    assert str(path) in str(info.value)


def test_cli_check_reports_and_exits_1_on_a_failure(
    trained: TrainResult, project: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    write_checks(config, GOOD)
    assert main(["-C", str(project), "check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model checks passed: 9 checks (data/iris.checks.toml)")
    write_checks(config, GOOD.replace("min = 0.5", "min = 1.0"))
    assert main(["-C", str(project), "check", "--no-retrain"]) == 1
    out = capsys.readouterr().out
    assert "model checks 1 FAILED" in out
    assert "FAILED: slice 'long petals': expected accuracy ≥ 1, got 0." in out
    report = (project / "artifacts" / "report.md").read_text()
    assert "## Model checks: 1 FAILED" in report
    saved = json.loads((project / "artifacts" / "checks.json").read_text())
    assert [c["passed"] for c in saved["checks"]].count(False) == 1


def test_cli_check_needs_up_to_date_artifacts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "check"]) == 2
    assert "run 'mlci train'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("dataset", "estimator", "string_labels"),
    [
        ("breast_cancer", SCALED_LOGISTIC, False),
        ("wine", 'class = "sklearn.ensemble.RandomForestClassifier"', True),
    ],
)
def test_the_starter_file_of_data_init_passes_on_its_own_data(
    tmp_path: Path, dataset: str, estimator: str, string_labels: bool
) -> None:
    """A new fork gets real checks from its first commit, and they hold for a sound model."""
    root = make_dataset_project(tmp_path, dataset, estimator, string_labels=string_labels)
    csv_path = root / "data" / f"{dataset}.csv"
    assert (
        main(["-C", str(root), "data", "init", str(csv_path), "--target", "label", "--force"]) == 0
    )
    text = (root / "data" / f"{dataset}.checks.toml").read_text()
    assert text.count("[[examples]]") == (3 if dataset == "wine" else 2)
    config = load_config(root)
    train(config)
    found = outcomes(config, retrain=False)
    assert all(o.passed for o in found.values()), [o.describe() for o in found.values()]


def test_data_init_keeps_a_reviewed_checks_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reviewed = project / "data" / "iris.checks.toml"
    reviewed.write_text("# mine\n")
    csv_path = project / "data" / "iris.csv"
    other = project / "other.manifest.json"
    assert (
        main(["data", "init", str(csv_path), "--target", "species", "--manifest", str(other)]) == 0
    )
    assert reviewed.read_text() == "# mine\n"
    assert "kept (pass --force" in capsys.readouterr().out


def test_a_configured_checks_file_must_exist(
    trained: TrainResult, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_pyproject(project, extra='checks = "data/mine.checks.toml"\n')
    assert main(["-C", str(project), "check"]) == 2
    assert "[tool.mlci] checks: data/mine.checks.toml not found" in capsys.readouterr().err
    (project / "data" / "mine.checks.toml").write_text(GOOD)
    assert main(["-C", str(project), "check", "--no-retrain"]) == 0
    assert "(data/mine.checks.toml)" in capsys.readouterr().out
