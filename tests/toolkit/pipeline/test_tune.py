"""`mlci tune`: the configured params against a cross-validated grid, on the training rows only."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import make_dataset_project
from sklearn.tree import DecisionTreeClassifier

from mlci.cli import main
from mlci.errors import MlciError
from mlci.pipeline import load_config, load_data, load_trained, tune

TREE = (
    'class = "sklearn.tree.DecisionTreeClassifier"\n'
    "params = {{ max_depth = {depth}, random_state = 0 }}"
)
GRID = "[tool.mlci.tune]\ngrid = { max_depth = [1, 3] }\nfolds = 4\n"


def tree_project(root: Path, depth: int, extra: str = GRID) -> Path:
    return make_dataset_project(
        root, "iris", TREE.format(depth=depth), string_labels=True, extra=extra
    )


def test_params_that_trail_the_grid_fail_and_say_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ML Test Score, model: all hyperparameters have been tuned."""
    root = tree_project(tmp_path, depth=1)
    assert main(["-C", str(root), "tune"]) == 1
    out = capsys.readouterr().out
    assert "tuning FAILED" in out
    assert "set max_depth = 3 in [tool.mlci.estimator] params" in out
    result = json.loads((root / "artifacts" / "tune.json").read_text())
    assert result["passed"] is False
    assert result["configured"]["params"] == {"max_depth": 1}
    assert result["best"]["params"] == {"max_depth": 3}
    assert [p["params"]["max_depth"] for p in result["points"]] == [1, 3]
    assert result["configured"]["mean"] == result["points"][0]["mean"]  # the same folds
    assert result["best"]["mean"] - result["configured"]["mean"] > 0.2
    report = (root / "artifacts" / "report.md").read_text()
    assert "## Tuning: FAILED" in report
    assert "| 1 | " in report
    assert "**configured**" in report

    tree_project(tmp_path / "tuned", depth=3)
    assert main(["-C", str(tmp_path / "tuned"), "tune"]) == 0
    assert "tuning passed" in capsys.readouterr().out


def test_the_held_out_rows_never_reach_tuning(tmp_path: Path) -> None:
    """Changing the features of the gate's held-out rows leaves every score as it was.

    (Their labels stay: the stratified split depends on them.)
    """
    from mlci.pipeline._train import split

    config = load_config(tree_project(tmp_path, depth=1))
    assert config.tune is not None
    _, table = load_data(config)
    assert table.labels is not None
    first = tune(config, config.tune, table)
    _, held_out = split(config, table.labels)
    features = list(table.features)
    for row in held_out:
        features[row] = [1000.0] * len(features[row])
    second = tune(config, config.tune, dataclasses.replace(table, features=features))
    assert second == first
    assert tune(config, config.tune, table) == first  # and the same run gives the same scores


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[tool.mlci.tune]\nfolds = 3\n", r"\[tool.mlci.tune\]: missing required key 'grid'"),
        ("[tool.mlci.tune]\ngrid = {}\n", r"\[tool.mlci.tune\] grid: name at least one param"),
        (
            "[tool.mlci.tune]\ngrid = { max_depth = 3 }\n",
            r"\[tool.mlci.tune\] grid.max_depth: must be a non-empty list",
        ),
        (
            "[tool.mlci.tune]\ngrid = { max_depth = [3] }\nfolds = 1\n",
            r"\[tool.mlci.tune\] folds: must be at least 2, got 1",
        ),
        (
            "[tool.mlci.tune]\ngrid = { max_depth = [3] }\nmetric = 'auc'\n",
            r"\[tool.mlci.tune\] metric: 'auc' is not one of accuracy, macro_f1",
        ),
    ],
)
def test_tune_settings_errors_name_the_field(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(MlciError, match=message):
        load_config(tree_project(tmp_path, depth=1, extra=extra))


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        # a name the classifier lacks: refused before any fitting
        (
            "{ max_dept = [2, 3] }",
            "[tool.mlci.tune] grid.max_dept params: max_dept not a parameter",
        ),
        # a value it refuses only when fitting: named, not a traceback
        (
            "{ max_depth = [3, -1] }",
            "[tool.mlci.tune] grid: fitting DecisionTreeClassifier with max_depth = -1 failed",
        ),
    ],
)
def test_a_grid_the_classifier_refuses_is_named_by_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], grid: str, message: str
) -> None:
    root = tree_project(tmp_path, 1, f"[tool.mlci.tune]\ngrid = {grid}\n")
    assert main(["-C", str(root), "tune"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (root / "artifacts" / "tune.json").exists()


def test_without_a_tune_table_the_command_says_what_to_add(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tree_project(tmp_path, depth=1, extra="")
    assert main(["-C", str(root), "tune"]) == 2
    assert "no [tool.mlci.tune] table; add one" in capsys.readouterr().err


class ThreadRecorder(DecisionTreeClassifier):  # type: ignore[misc]  # sklearn has no types
    """A tree that records the OpenMP and BLAS thread limits it is fitted under."""

    seen: ClassVar[list[int]] = []  # the class is the record: scikit-learn clones instances

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        self.record()
        return super().fit(*args, **kwargs)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        self.record()
        return super().predict(*args, **kwargs)

    @staticmethod
    def record() -> None:
        from threadpoolctl import threadpool_info

        ThreadRecorder.seen.extend(pool["num_threads"] for pool in threadpool_info())


def test_tuning_fits_with_the_configured_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tuning a HistGradientBoosting grid ran on every core: other scores, and two sessions
    side by side thrashed for minutes. It fits with `[tool.mlci] threads`, as training does."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    estimator = 'class = "test_tune.ThreadRecorder"\nparams = { max_depth = 1 }'
    grid = "[tool.mlci.tune]\ngrid = { max_depth = [1, 2] }\nfolds = 2\n"
    root = make_dataset_project(tmp_path, "iris", estimator, string_labels=True, extra=grid)
    config = load_config(root)
    _, table = load_data(config)
    ThreadRecorder.seen.clear()
    assert config.tune is not None
    tune(config, config.tune, table)
    assert ThreadRecorder.seen
    assert set(ThreadRecorder.seen) == {1}


def test_checks_and_champion_scoring_run_the_model_with_the_configured_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Predictions do not depend on threads, but two sessions side by side each spinning OpenMP
    on every core made a HistGradientBoosting check six times slower."""
    from mlci.pipeline import load_checks, run_checks, score_held_out, train

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    estimator = 'class = "test_tune.ThreadRecorder"\nparams = { max_depth = 2 }'
    config = load_config(make_dataset_project(tmp_path, "iris", estimator, string_labels=True))
    train(config)
    model = load_trained(config)
    ThreadRecorder.seen.clear()
    run_checks(config, model, load_checks(tmp_path / "none.toml", load_data(config)[0]))
    score_held_out(config, model)
    assert ThreadRecorder.seen
    assert set(ThreadRecorder.seen) == {1}
