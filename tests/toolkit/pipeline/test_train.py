from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    SCALED_LOGISTIC,
    THREAD_VARIABLES,
    make_dataset_project,
    make_project,
    write_pyproject,
)

from mlci._io import sha256_file
from mlci.errors import MlciError
from mlci.pipeline import _train as train_module
from mlci.pipeline import baseline_reference, judge
from mlci.pipeline._config import Config, load_config
from mlci.pipeline._data import load_manifest
from mlci.pipeline._model import load_verified
from mlci.pipeline._stage import Artifacts
from mlci.pipeline._train import train


def test_train_writes_model_metrics_and_lineage(trained: train_module.TrainResult) -> None:
    artifacts = trained.artifacts
    metrics = json.loads(artifacts.metrics.read_text())
    lineage = json.loads(artifacts.lineage.read_text())
    assert set(metrics) >= {
        "accuracy",
        "macro_f1",
        "per_class",
        "confusion_matrix",
        "train_size",
        "test_size",
    }
    assert (metrics["train_size"], metrics["test_size"]) == (120, 30)
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 30
    assert lineage["status"] == "complete"
    assert lineage["outputs"]["model"] == sha256_file(artifacts.model)
    assert lineage["data"]["sha256"] == sha256_file(artifacts.folder.parent / "data" / "iris.csv")
    assert lineage["config"]["estimator"]["params"]["n_estimators"] == 10
    assert lineage["packages"]["scikit-learn"]
    assert lineage["started_at"] <= lineage["finished_at"]
    assert not any(p.name.startswith(".") for p in artifacts.folder.iterdir())


def test_two_trainings_give_the_same_model_bytes(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = train(load_config(project), force=True).lineage["outputs"]["model"]
    other = tmp_path_factory.mktemp("again")
    shutil.copytree(project, other, dirs_exist_ok=True)
    shutil.rmtree(other / "artifacts")
    second = train(load_config(other), force=True).lineage["outputs"]["model"]
    assert first == second


def test_permutation_importance_of_every_feature_is_recorded_and_reproducible(
    trained: train_module.TrainResult, config: Config
) -> None:
    importance = trained.metrics["feature_importance"]
    manifest = load_manifest(config.manifest)
    assert sorted(importance) == sorted(column.name for column in manifest.features)
    assert all(set(score) == {"mean", "std"} for score in importance.values())
    assert max(score["mean"] for score in importance.values()) > 0  # some feature matters
    again = train_module.train(config, force=True)
    assert again.metrics["feature_importance"] == importance  # the run's seed: same numbers


def test_an_importance_whose_shuffles_cancel_is_zero_not_minus_zero() -> None:
    """A fork's gate warned "area_error (-0.0000)": the mean of +x and -x came out as -1e-18."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    features, labels = load_breast_cancer(return_X_y=True)
    fit_x, held_x, fit_y, held_y = train_test_split(features, labels, test_size=0.2, random_state=0)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(fit_x, fit_y)
    names = [f"f{i}" for i in range(features.shape[1])]
    importance = train_module.importance(model, held_x, held_y, names, seed=0)
    zeros = [score["mean"] for score in importance.values() if score["mean"] == 0]
    assert any(score["std"] > 0 for score in importance.values() if score["mean"] == 0)
    assert [f"{mean:.4f}" for mean in zeros] == ["0.0000"] * len(zeros)
    assert '"mean": -0.0,' not in json.dumps(importance)  # metrics.json shows the same


def test_the_split_is_stratified(trained: train_module.TrainResult) -> None:
    support = {label: s["support"] for label, s in trained.metrics["per_class"].items()}
    assert support == {"setosa": 10, "versicolor": 10, "virginica": 10}


def test_refuses_invalid_data(project: Path) -> None:
    path = project / "data" / "iris.csv"
    path.write_text(
        path.read_text().replace("5.1,3.5,1.4,0.2,setosa", "5.1,oops,1.4,0.2,setosa", 1)
    )
    with pytest.raises(MlciError, match=r"iris.csv:2:2: sepal_width: not a number") as info:
        train(load_config(project))
    assert "refusing to train" in str(info.value)
    assert not (project / "artifacts" / "model.joblib").exists()


def test_a_failure_mid_write_keeps_the_previous_artifacts(
    trained: train_module.TrainResult, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {p.name: p.read_bytes() for p in trained.artifacts.folder.iterdir()}
    write_pyproject(project, trees=11)

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(train_module, "save_model", fail)
    with pytest.raises(OSError, match="disk full"):
        train(load_config(project))
    after = {p.name: p.read_bytes() for p in trained.artifacts.folder.iterdir()}
    assert after == before


def test_a_bad_param_value_is_a_config_error(project: Path) -> None:
    text = (
        (project / "pyproject.toml").read_text().replace("n_estimators = 10", "n_estimators = -3")
    )
    (project / "pyproject.toml").write_text(text)
    with pytest.raises(
        MlciError, match=r"\[tool.mlci.estimator\]: training .* failed: .*n_estimators"
    ):
        train(load_config(project))


def test_a_target_mismatch_between_config_and_manifest(project: Path) -> None:
    text = (project / "pyproject.toml").read_text().replace('target = "species"', 'target = "kind"')
    (project / "pyproject.toml").write_text(text)
    with pytest.raises(MlciError, match="target 'species' differs from"):
        train(load_config(project))


@pytest.fixture(scope="module")
def default_model(tmp_path_factory: pytest.TempPathFactory) -> train_module.Fitted:
    """A fixture project's Iris forest (100 trees), trained in memory: never the repo's config."""
    root = make_project(tmp_path_factory.mktemp("iris"))
    write_pyproject(root, trees=100)
    config = load_config(root)
    return train_module.fit(config, *train_module.load_data(config))


def test_held_out_accuracy_is_at_least_0_9(default_model: train_module.Fitted) -> None:
    assert default_model.metrics["accuracy"] >= 0.9


@pytest.mark.parametrize(
    ("sample", "label"),
    [
        ([5.0, 3.4, 1.5, 0.2], "setosa"),
        ([5.9, 2.8, 4.3, 1.3], "versicolor"),
        ([6.9, 3.1, 5.8, 2.2], "virginica"),
    ],
)
def test_small_perturbations_keep_a_clear_samples_class(
    default_model: train_module.Fitted, sample: list[float], label: str
) -> None:
    rng = np.random.default_rng(0)
    noisy = np.asarray(sample) + rng.normal(scale=0.05, size=(50, 4))
    assert set(default_model.estimator.predict(noisy)) == {label}


def test_a_tampered_model_is_refused(trained: train_module.TrainResult) -> None:
    model = trained.artifacts.model
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(MlciError, match="does not match the recorded"):
        load_verified(model, trained.lineage["outputs"]["model"])


def test_artifacts_paths() -> None:
    artifacts = Artifacts(Path("a"))
    assert (artifacts.model.name, artifacts.metrics.name, artifacts.lineage.name) == (
        "model.joblib",
        "metrics.json",
        "lineage.json",
    )


def test_binary_integer_labels_and_a_pipeline(tmp_path: Path) -> None:
    """Another data set, estimator and label type than Iris: binary metrics join the gate's."""
    root = make_dataset_project(
        tmp_path, "breast_cancer", SCALED_LOGISTIC, extra="[tool.mlci.gate]\nmin_roc_auc = 0.9"
    )
    config = load_config(root)
    result = train(config)
    metrics = result.metrics
    assert set(metrics["per_class"]) == {"0", "1"}
    assert metrics["positive_label"] == "1"
    assert 0.9 <= metrics["roc_auc"] <= 1.0
    assert 0.9 <= metrics["average_precision"] <= 1.0
    assert result.lineage["config"]["estimator"]["steps"][0]["class"].endswith("StandardScaler")
    verdict = judge(config, metrics, baseline_reference(config, "3.x", result.lineage["data"]))
    assert [c.metric for c in verdict.checks if not c.versus] == ["roc_auc"]
    against = {(c.versus, c.metric) for c in verdict.checks if c.versus}
    assert ("DummyClassifier", "roc_auc") in against
    assert ("StandardScaler → LogisticRegression", "accuracy") in against
    assert verdict.passed


def test_multiclass_string_labels_with_a_plain_estimator(tmp_path: Path) -> None:
    root = make_dataset_project(
        tmp_path,
        "wine",
        'class = "sklearn.ensemble.HistGradientBoostingClassifier"\n'
        "params = { max_iter = 20, random_state = 0 }",
        string_labels=True,
    )
    result = train(load_config(root))
    assert set(result.metrics["per_class"]) == {"class_0", "class_1", "class_2"}
    assert "roc_auc" not in result.metrics  # multi-class: no binary metrics
    assert result.metrics["accuracy"] > 0.8


def test_a_regressor_on_class_labels_is_refused_before_the_data_is_split(tmp_path: Path) -> None:
    root = make_dataset_project(tmp_path, "wine", 'class = "sklearn.linear_model.Ridge"')
    with pytest.raises(
        MlciError,
        match=r"\[tool.mlci.estimator\] class: Ridge is a regressor, but the target 'label' is "
        r"categorical \(class labels",
    ):
        train(load_config(root))


@pytest.mark.integration
def test_the_same_model_whatever_the_machines_thread_settings(tmp_path: Path) -> None:
    """HistGradientBoosting fits another model with another OpenMP thread count: mlci sets it
    (the default; `threads = 2` is the same code with another number)."""
    root = make_dataset_project(
        tmp_path,
        "wine",
        'class = "sklearn.ensemble.HistGradientBoostingClassifier"\n'
        "params = { max_iter = 50, random_state = 0 }\n",
    )
    shas = set()
    for setting in (None, "1", "2"):
        env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
        if setting is not None:
            env.update(dict.fromkeys(THREAD_VARIABLES, setting))
        subprocess.run(
            [sys.executable, "-m", "mlci", "-C", str(root), "train", "--force"],
            env=env,
            check=True,
            capture_output=True,
        )
        lineage = json.loads((root / "artifacts" / "lineage.json").read_text())
        shas.add(lineage["outputs"]["model"])
    assert len(shas) == 1
    assert lineage["config"]["threads"] == 1  # in the stage's key


def test_the_commit_is_read_from_git_s_files_without_a_process(tmp_path: Path) -> None:
    """Loose and packed refs, a detached HEAD, a linked worktree, an unborn branch."""
    from mlci.pipeline._train import git_commit

    first, second = "1" * 40, "2" * 40
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    assert git_commit(tmp_path / "repo") is None  # unborn: no commit yet
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{first} refs/heads/main\n")
    assert git_commit(tmp_path / "repo") == first
    (git / "refs" / "heads" / "main").write_text(second + "\n")  # a loose ref wins
    assert git_commit(tmp_path / "repo" / "sub" / "dir") == second  # from below the root too
    (git / "HEAD").write_text(first + "\n")
    assert git_commit(tmp_path / "repo") == first  # detached
    worktree = git / "worktrees" / "other"
    worktree.mkdir(parents=True)
    (worktree / "HEAD").write_text("ref: refs/heads/main\n")
    (worktree / "commondir").write_text("../..\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / ".git").write_text(f"gitdir: {worktree}\n")
    assert git_commit(tmp_path / "other") == second
