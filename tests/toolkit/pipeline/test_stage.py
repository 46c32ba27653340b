from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import write_pyproject

from mlci.pipeline import Config
from mlci.pipeline import _stage as stage
from mlci.pipeline import _train as train_module
from mlci.pipeline._config import load_config
from mlci.pipeline._train import train


def retrained(project: Path) -> bool:
    """Run ``mlci train`` and say whether it actually trained."""
    return not train(load_config(project)).up_to_date


def test_cache_hits_when_nothing_changed(trained: train_module.TrainResult, project: Path) -> None:
    result = train(load_config(project))
    assert result.up_to_date
    assert result.metrics == trained.metrics
    assert stage.check(load_config(project)).up_to_date


def test_cache_hit_does_not_import_training_code(
    trained: train_module.TrainResult, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_training(*args: object) -> None:
        raise AssertionError("fit was called on a cache hit")

    monkeypatch.setattr(train_module, "fit", no_training)
    assert train(load_config(project)).up_to_date


def test_a_changed_data_byte_misses(trained: train_module.TrainResult, project: Path) -> None:
    from mlci.pipeline._data import accept, load_manifest

    path = project / "data" / "iris.csv"
    path.write_text(path.read_text().replace("5.1,3.5,1.4,0.2", "5.1,3.5,1.4,0.3", 1))
    accept(load_manifest(project / "data" / "iris.manifest.json"))
    # accept records the new hash in the manifest, which is an input of its own
    assert stage.check(load_config(project)).reasons == ["data changed", "manifest changed"]
    assert retrained(project)
    assert not retrained(project)


def test_a_changed_config_value_misses(trained: train_module.TrainResult, project: Path) -> None:
    write_pyproject(project, trees=12)
    assert stage.check(load_config(project)).reasons == ["config changed"]
    assert retrained(project)


def test_a_changed_gate_threshold_does_not_retrain(
    trained: train_module.TrainResult, project: Path
) -> None:
    write_pyproject(project, extra="")
    text = (
        (project / "pyproject.toml").read_text().replace("min_accuracy = 0.8", "min_accuracy = 0.7")
    )
    (project / "pyproject.toml").write_text(text)
    assert not retrained(project)


@pytest.mark.parametrize(
    ("function", "value", "reason"),
    [("code_hash", "edited", "code changed"), ("python_id", "cpython-3.99.0", "python changed")],
)
def test_changed_training_code_or_python_misses(
    trained: train_module.TrainResult,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    function: str,
    value: str,
    reason: str,
) -> None:
    monkeypatch.setattr(stage, function, lambda: value)
    assert stage.check(load_config(project)).reasons == [reason]
    assert retrained(project)


def test_the_code_hash_covers_the_pipeline_and_what_it_imports() -> None:
    names = {path.relative_to(stage.PACKAGE).as_posix() for path in stage.training_sources()}
    assert {"pipeline/_train.py", "pipeline/_data.py", "pipeline/_config.py"} <= names
    assert {"_io.py", "errors.py"} <= names
    assert all(path.is_file() for path in stage.training_sources())
    # Delivery, serving and CI code never reaches the training key.
    assert not any(name.startswith(("delivery/", "serving/", "ci/", "cli/")) for name in names)


def test_a_changed_lock_misses(trained: train_module.TrainResult, project: Path) -> None:
    (project / "requirements" / "main.txt").write_text("scikit-learn==1\n")
    assert stage.check(load_config(project)).reasons == ["lock changed"]
    assert retrained(project)


def test_force_retrains(trained: train_module.TrainResult, project: Path) -> None:
    assert not train(load_config(project), force=True).up_to_date


def test_a_modified_output_is_stale(trained: train_module.TrainResult, project: Path) -> None:
    trained.artifacts.metrics.write_text("{}")
    reasons = stage.check(load_config(project)).reasons
    assert reasons == ["metrics output is missing or modified (artifacts/metrics.json)"]
    trained.artifacts.model.unlink()
    assert len(stage.check(load_config(project)).reasons) == 2
    assert retrained(project)


def test_no_artifacts_is_stale(config: Config) -> None:
    assert stage.check(config).reasons == ["no complete training run in artifacts/"]


def test_a_run_killed_between_renames_is_not_taken_for_complete(
    trained: train_module.TrainResult, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(project, trees=13)
    real_replace = os.replace
    calls = []

    def killed_after_the_model(src: Path, dst: Path) -> None:
        real_replace(src, dst)
        if Path(dst) == project / "artifacts" / "model.joblib":
            calls.append(dst)
            raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", killed_after_the_model)
    with pytest.raises(KeyboardInterrupt):
        train(load_config(project))
    monkeypatch.setattr("os.replace", real_replace)
    assert calls, "the commit step was not reached"
    status = stage.check(load_config(project))
    assert not status.up_to_date
    assert "model output is missing or modified (artifacts/model.joblib)" in status.reasons
    assert retrained(project)
    assert stage.check(load_config(project)).up_to_date


def test_a_run_killed_during_training_leaves_a_running_lineage_only_in_staging(
    trained: train_module.TrainResult, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(project, trees=14)
    seen: dict[str, Any] = {}

    def killed(*args: object) -> None:
        staging = next(project.joinpath("artifacts").glob(".run-*"))
        seen.update(json.loads((staging / "lineage.json").read_text()))
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "fit", killed)
    with pytest.raises(KeyboardInterrupt):
        train(load_config(project))
    assert seen["status"] == "running"
    assert seen["stage"]["key"] == stage.check(load_config(project)).key
    assert stage.check(load_config(project)).reasons == ["config changed"]


def test_an_unfinished_lineage_is_stale(trained: train_module.TrainResult, project: Path) -> None:
    lineage = json.loads(trained.artifacts.lineage.read_text())
    lineage["status"] = "running"
    trained.artifacts.lineage.write_text(json.dumps(lineage))
    assert stage.check(load_config(project)).reasons == ["the last training run did not finish"]


@pytest.mark.integration
def test_a_cache_hit_imports_no_scikit_learn(
    trained: train_module.TrainResult, project: Path
) -> None:
    """The up-to-date path must stay cheap: no sklearn, numpy or joblib import at all, nor the
    HTTP client only the pull-request comment needs (30 ms on every command's start)."""
    import subprocess
    import sys

    heavy = ("sklearn", "numpy", "joblib", "urllib.request")
    code = (
        "import sys; from mlci.cli import main; rc = main(['-C', sys.argv[1], 'train']); "
        f"print(rc, sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(project)], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[0].startswith("up to date")
    assert result.stdout.splitlines()[-1] == "0 []"
