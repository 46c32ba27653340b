"""A model that predicts a number: task, metrics, gate, checks, tuning, release, drift, report.

In-process, on scikit-learn's diabetes data with a scaled ridge regression (quick to fit); the
README's own steps on two data sets and two estimators are replayed in test_readme_regression.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from conftest import diabetes_project

from mlci.cli import main
from mlci.errors import MlciError
from mlci.pipeline import _gate as gate
from mlci.pipeline import load_config, load_manifest
from mlci.pipeline._checks import checks_path, load_checks, run_checks
from mlci.pipeline._config import GateConfig, SimplerConfig
from mlci.pipeline._regression import regression_metrics, summary_rows
from mlci.pipeline._train import split, train


@pytest.fixture
def diabetes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = diabetes_project(tmp_path)
    monkeypatch.chdir(root)
    return root


# Metrics -------------------------------------------------------------------------------------


def test_the_metrics_are_scikit_learns_with_zero_targets_left_out_of_mape() -> None:
    from sklearn import metrics as sk

    truth, predicted = [0.0, 2.0, 4.0, 0.0, 10.0], [1.0, 1.5, 5.0, -0.5, 7.0]
    found = regression_metrics(truth, predicted, train_size=20)
    assert found["task"] == "regression"
    assert found["mae"] == pytest.approx(sk.mean_absolute_error(truth, predicted))
    assert found["rmse"] == pytest.approx(math.sqrt(sk.mean_squared_error(truth, predicted)))
    assert found["r2"] == pytest.approx(sk.r2_score(truth, predicted))
    assert found["max_error"] == pytest.approx(sk.max_error(truth, predicted))
    kept = [(t, p) for t, p in zip(truth, predicted) if t != 0]
    assert found["mape"] == pytest.approx(sum(abs(p - t) / abs(t) for t, p in kept) / len(kept))
    assert found["mape_excluded_rows"] == 2
    assert (found["train_size"], found["test_size"]) == (20, 5)
    shown = {row[0]: row for row in summary_rows(found)}
    assert "2 rows with a true value of 0 left out" in shown["mape"][2]


def test_mape_is_undefined_when_every_true_value_is_zero() -> None:
    found = regression_metrics([0.0, 0.0], [1.0, 2.0], train_size=2)
    assert "mape" not in found
    assert "r2" not in found  # a constant truth has no variance to explain
    shown = {row[0]: row for row in summary_rows(found)}
    assert shown["mape"][1:] == ["-", "every held-out true value is 0: undefined"]


# The task ------------------------------------------------------------------------------------


def test_a_classifier_on_a_quantity_is_refused_naming_the_field(tmp_path: Path) -> None:
    root = diabetes_project(tmp_path, 'class = "sklearn.ensemble.RandomForestClassifier"')
    with pytest.raises(
        MlciError,
        match=r"\[tool.mlci.estimator\] class: RandomForestClassifier is a classifier, but the "
        r"target 'progression' is integer \(numbers in \[0, \d+\]\): use a regressor",
    ):
        train(load_config(root))


def test_the_projects_task_must_agree_with_the_target(tmp_path: Path) -> None:
    root = diabetes_project(tmp_path, extra='task = "classification"')
    with pytest.raises(MlciError, match=r"\[tool.mlci\] task: 'classification', but the target"):
        train(load_config(root))


def test_an_unknown_task_is_refused(tmp_path: Path) -> None:
    root = diabetes_project(tmp_path, extra='task = "ranking"')
    with pytest.raises(MlciError, match=r"task: 'ranking' is not one of auto, classification"):
        load_config(root)


def test_the_split_is_a_plain_shuffle(diabetes: Path) -> None:
    """Stratifying 214 distinct values would fail; the split is scikit-learn's unstratified."""
    from sklearn.model_selection import train_test_split

    config = load_config(diabetes)
    labels = [float(i) for i in range(100)]
    train_rows, test_rows = split(config, labels, "regression")
    expected = train_test_split(list(range(100)), test_size=0.2, random_state=42)
    assert [[int(i) for i in train_rows], [int(i) for i in test_rows]] == expected


# The gate ------------------------------------------------------------------------------------


def test_floors_and_ceilings_each_in_its_direction() -> None:
    rules = GateConfig(floors={"r2": 0.4}, ceilings={"rmse": 55.0}, max_drop=0, max_relative_drop=0)
    assert gate.evaluate({"r2": 0.45, "rmse": 54.0}, None, rules, task="regression").passed
    failed = gate.evaluate({"r2": 0.45, "rmse": 56.0}, None, rules, task="regression")
    assert [c.describe() for c in failed.failures] == ["rmse 56.0000 breaks '<= 55'"]


def test_worse_means_a_lower_r2_and_a_higher_error() -> None:
    rules = GateConfig(floors={}, max_drop=0.0, max_relative_drop=0.02)
    reference = {"r2": 0.5, "rmse": 50.0, "mae": 40.0}
    ok = gate.evaluate(
        {"r2": 0.495, "rmse": 50.9, "mae": 39.0}, reference, rules, task="regression"
    )
    assert ok.passed
    assert ok.improved == ["mae"]
    bad = gate.evaluate({"r2": 0.5, "rmse": 51.1, "mae": 40.0}, reference, rules, task="regression")
    assert [(c.metric, c.rule) for c in bad.failures] == [("rmse", "rise <= 2.0%")]
    absolute = GateConfig(floors={}, max_drop=0.01, max_relative_drop=0.0)
    dropped = gate.evaluate(
        {"r2": 0.48, "rmse": 50.0, "mae": 40.0}, reference, absolute, task="regression"
    )
    assert [(c.metric, c.rule) for c in dropped.failures] == [("r2", "drop <= 0.01")]


def test_ceilings_are_read_from_pyproject_and_max_error_has_one(diabetes: Path) -> None:
    with (diabetes / "pyproject.toml").open("a") as stream:
        stream.write("[tool.mlci.gate]\nmin_r2 = 0.3\nmax_rmse = 60\nmax_max_error = 200\n")
    config = load_config(diabetes)
    assert config.gate.floors == {"r2": 0.3}
    assert config.gate.ceilings == {"rmse": 60.0, "max_error": 200.0}


def test_the_candidate_must_beat_each_simpler_model_on_what_it_is_best_at() -> None:
    metrics: dict[str, Any] = {
        "task": "regression",
        "r2": 0.45,
        "rmse": 53.8,
        "mae": 43.5,
        "simpler_models": {
            "DummyRegressor (mean)": {"metrics": {"r2": -0.01, "rmse": 73.2, "mae": 64.0}},
            "DummyRegressor (median)": {"metrics": {"r2": -0.05, "rmse": 74.0, "mae": 62.7}},
            "StandardScaler → Ridge": {"metrics": {"r2": 0.454, "rmse": 53.78, "mae": 42.8}},
        },
    }
    rules = GateConfig(floors={}, max_drop=0, max_relative_drop=0, simpler=SimplerConfig())
    verdict = gate.simpler(gate.Verdict([], None, []), metrics, rules)
    compared = [(c.metric, c.versus) for c in verdict.checks]
    assert compared == [
        ("r2", "DummyRegressor (mean)"),
        ("rmse", "DummyRegressor (mean)"),
        ("mae", "DummyRegressor (median)"),
        ("r2", "StandardScaler → Ridge"),
        ("rmse", "StandardScaler → Ridge"),
        ("mae", "StandardScaler → Ridge"),
    ]
    lost = [c.describe() for c in verdict.failures]
    assert lost == [
        "r2 0.4500 does not beat the simpler model StandardScaler → Ridge (0.4540) as "
        "'>= simpler + 0' asks",
        "rmse 53.8000 does not beat the simpler model StandardScaler → Ridge (53.7800) as "
        "'<= simpler - 0%' asks",
        "mae 43.5000 does not beat the simpler model StandardScaler → Ridge (42.8000) as "
        "'<= simpler - 0%' asks",
    ]
    margin = GateConfig(
        floors={}, max_drop=0, max_relative_drop=0, simpler=SimplerConfig(margin=0.5)
    )
    halved = gate.simpler(gate.Verdict([], None, []), metrics, margin)
    mean = next(c for c in halved.checks if c.metric == "rmse")
    assert (mean.rule, mean.passed) == ("<= simpler - 50%", False)  # 53.8 > 73.2 / 2


def test_a_trained_regressor_records_its_simpler_models_and_passes_the_gate(diabetes: Path) -> None:
    config = load_config(diabetes)
    result = train(config)
    simpler = result.metrics["simpler_models"]
    assert set(simpler) == {
        "DummyRegressor (mean)",
        "DummyRegressor (median)",
        "StandardScaler → Ridge",
    }
    assert simpler["DummyRegressor (mean)"]["metrics"]["r2"] < 0.05
    # The candidate is the simpler ridge itself: it ties, and a tie passes.
    assert main(["gate"]) == 0
    lineage = json.loads(Path("artifacts/lineage.json").read_text())
    assert lineage["config"]["task"] == "regression"
    assert (
        lineage["config"]["simpler"]["model"]["steps"][1]["class"] == "sklearn.linear_model.Ridge"
    )
    assert result.metrics["feature_importance"]["bmi"]["mean"] > 0.05  # R² lost


# Checks --------------------------------------------------------------------------------------


def write_checks(root: Path, text: str) -> None:
    (root / "data" / "diabetes.checks.toml").write_text(text, encoding="utf-8")


ROW = "age = 50.0, sex = 1.0, bmi = 25.0, bp = 90.0, s1 = 190.0, s2 = 115.0, s3 = 50.0, "
ROW += "s4 = 4.0, s5 = 4.6, s6 = 90.0"


def outcomes_of(root: Path, text: str) -> dict[str, Any]:
    write_checks(root, text)
    config = load_config(root)
    train(config)
    from mlci.pipeline import load_trained

    manifest = load_manifest(config.manifest)
    found = run_checks(config, load_trained(config), load_checks(checks_path(config), manifest))
    return {o.name: o for o in found}


def test_regression_checks_hold_or_fail_with_expected_and_got(diabetes: Path) -> None:
    found = outcomes_of(
        diabetes,
        f"""
[[examples]]
name = "in range"
row = {{ {ROW} }}
min = 50
max = 250
[[examples]]
name = "out of range"
row = {{ {ROW} }}
min = 400
[[invariance]]
column = "age"
delta = 1.0
abs_tol = 1.0
[[invariance]]
column = "bmi"
delta = 5.0
rel_tol = 0.01
min_share = 0.9
[[directional]]
column = "bmi"
increase = 2.0
direction = "up"
min_delta = 1.0
[[directional]]
column = "bmi"
increase = 2.0
direction = "down"
[[slices]]
name = "high bmi"
where = "bmi >= 30"
metric = "mae"
max = 80
[[slices]]
name = "every row"
metric = "r2"
min = 0.99
""",
    )
    assert [o.kind for o in found.values()][:2] == ["always", "always"]
    assert found["finite predictions"].passed
    assert found["same seed, same predictions"].passed
    assert found["in range"].passed
    assert found["in range"].expected == "in [50, 250]"
    assert not found["out of range"].passed
    assert found["out of range"].expected == ">= 400"
    assert found["age ±1"].passed  # age barely matters to a ridge: well within 1.0
    assert not found["bmi ±5"].passed  # 5 bmi points move the prediction by far more than 1 %
    assert "lines" in found["bmi ±5"].got
    assert found["bmi +2 moves the prediction up"].passed  # the ridge's bmi coefficient is > 0
    assert not found["bmi +2 moves the prediction down"].passed
    assert found["high bmi"].passed
    assert "rows" in found["high bmi"].got
    assert not found["every row"].passed
    assert found["every row"].expected == "r2 ≥ 0.99"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f'[[examples]]\nlabel = "x"\nrow = {{ {ROW} }}', "the target is a number: give the range"),
        (f"[[examples]]\nrow = {{ {ROW} }}", "give 'min', 'max' or both"),
        ('[[invariance]]\ncolumn = "age"\ndelta = 1.0', "give 'abs_tol' and/or 'rel_tol'"),
        ('[[directional]]\ncolumn = "age"\nincrease = 1.0\ndirection = "left"', "'up' or 'down'"),
        ('[[slices]]\nmetric = "accuracy"\nmin = 0.5', "must be one of r2, rmse, mae"),
        ('[[slices]]\nmetric = "mae"\nmin = 5\nmax = 1', "min 5 is above max 1"),
    ],
)
def test_a_regressors_check_file_errors_name_the_entry(
    diabetes: Path, text: str, message: str
) -> None:
    write_checks(diabetes, text)
    with pytest.raises(MlciError, match=message):
        load_checks(
            checks_path(load_config(diabetes)), load_manifest(load_config(diabetes).manifest)
        )


# Tuning --------------------------------------------------------------------------------------


def test_tuning_by_an_error_keeps_it_positive_and_takes_the_lowest(diabetes: Path) -> None:
    from mlci.pipeline import load_data
    from mlci.pipeline._tune import tune

    with (diabetes / "pyproject.toml").open("a") as stream:
        stream.write('[tool.mlci.tune]\ngrid = { alpha = [0.01, 1.0, 1000.0] }\nmetric = "rmse"\n')
    config = load_config(diabetes)
    assert config.tune is not None
    tuning = tune(config, config.tune, load_data(config)[1])
    assert tuning.metric == "rmse"
    assert all(point.mean > 0 for point in tuning.points)
    assert tuning.best.mean == min(point.mean for point in tuning.points)
    assert tuning.best.params != {"alpha": 1000.0}  # shrunk to the mean: the worst error
    assert tuning.passed  # alpha 1.0 is within 1 % of the best


def test_a_classifiers_metric_does_not_tune_a_regressor(diabetes: Path) -> None:
    from mlci.pipeline import load_data
    from mlci.pipeline._tune import tune

    with (diabetes / "pyproject.toml").open("a") as stream:
        stream.write('[tool.mlci.tune]\ngrid = { alpha = [1.0] }\nmetric = "accuracy"\n')
    config = load_config(diabetes)
    assert config.tune is not None
    with pytest.raises(MlciError, match="'accuracy' does not judge a regression model"):
        tune(config, config.tune, load_data(config)[1])


# Release, drift and the report ---------------------------------------------------------------


class NaNModel:
    """A regressor that answers NaN for every other row."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict(self, x: Any) -> Any:
        values = self.inner.predict(x).copy()
        values[::2] = math.nan
        return values


def test_the_release_smoke_test_refuses_nan_predictions(
    diabetes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlci.delivery import Registry
    from mlci.delivery._release import smoke_test

    config = load_config(diabetes)
    train(config)
    registry = Registry.of(config)
    version = registry.register(config).version
    assert smoke_test(config, registry, version) == []
    real = registry.load_model
    monkeypatch.setattr(registry, "load_model", lambda *a, **k: NaNModel(real(*a, **k)))
    problems = smoke_test(config, registry, version)
    assert len(problems) == 6
    assert all(problem.endswith("predicted nan, not a finite number") for problem in problems[:5])
    assert problems[-1] == "and 40 more rows"  # 45 of the 89 held-out rows


def test_drift_tests_the_target_and_the_predictions_as_numbers(diabetes: Path) -> None:
    config = load_config(diabetes)
    train(config)
    lines = (diabetes / "data" / "diabetes.csv").read_text().splitlines()
    same, fatter = diabetes / "data" / "same.csv", diabetes / "data" / "fatter.csv"
    same.write_text("\n".join([lines[0], *lines[1::2]]) + "\n")
    bmi = lines[0].split(",").index("bmi")
    shifted = []
    for line in lines[1:]:
        cells = line.split(",")
        cells[bmi] = repr(float(cells[bmi]) + 6.0)  # within the manifest's widened range
        shifted.append(",".join(cells))
    fatter.write_text("\n".join([lines[0], *shifted]) + "\n")
    assert main(["drift", str(same), str(fatter)]) == 0
    report = json.loads(Path("artifacts/drift.json").read_text())
    first, second = ({c["column"]: c for c in b["columns"]} for b in report["batches"])
    assert (first["target"]["test"], first["prediction"]["test"]) == ("ks", "ks")
    assert first["prediction"]["counted"] is False
    assert not first["prediction"]["drifted"]
    assert second["bmi"]["drifted"]
    assert second["prediction"]["drifted"]  # a ridge with a positive bmi weight predicts more
    assert not second["target"]["drifted"]  # the same targets


def test_the_report_shows_predicted_against_actual_and_the_residuals(diabetes: Path) -> None:
    from mlci.reporting import write_html

    config = load_config(diabetes)
    train(config)
    page = write_html(config.artifacts, draw=False).read_text()
    assert "Predicted against actual" in page
    assert "Residuals against predicted" in page
    assert "R² lost when shuffled" in page
