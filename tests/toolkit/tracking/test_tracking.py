"""Training runs on an MLflow tracking server: a real `mlflow server` (the `mlflow` session).

The tests that need the server are marked `mlflow`; those about a missing or unreachable server
need no server and run in every test session.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import diabetes_project, free_port, write_pyproject

from mlci import tracking
from mlci.cli import main
from mlci.pipeline import TrainResult, load_config


def tracked(project: Path, uri: str, *, trees: int = 10, extra: str = "") -> None:
    """Point the project's [tool.mlci.mlflow] at ``uri``."""
    table = f'[tool.mlci.mlflow]\ntracking_uri = "{uri}"\nexperiment = "mlci-tests"\n{extra}'
    write_pyproject(project, trees=trees, extra="")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n" + table, encoding="utf-8")


def client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(uri)


def runs(uri: str) -> list[Any]:
    mlflow_client = client(uri)
    experiment = mlflow_client.get_experiment_by_name("mlci-tests")
    if experiment is None:
        return []
    return list(mlflow_client.search_runs([experiment.experiment_id]))


def test_tracking_is_off_unless_configured(project: Path) -> None:
    settings = tracking.tracking_settings(load_config(project))
    assert not settings.enabled
    assert (settings.experiment, settings.strict) == ("mlci", False)


def test_mlflow_tracking_uri_from_the_environment_wins(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracked(project, "http://127.0.0.1:1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:2")
    assert tracking.tracking_settings(load_config(project)).tracking_uri == "http://127.0.0.1:2"


def test_a_bad_setting_names_the_table_and_key(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracked(project, "http://127.0.0.1:1", extra="strict = 1\n")
    assert main(["-C", str(project), "train"]) == 2
    assert "[tool.mlci.mlflow]" in capsys.readouterr().err


@pytest.mark.integration
def test_an_unreachable_server_is_a_warning_and_training_succeeds(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracked(project, f"http://user:s3cret@127.0.0.1:{free_port()}")
    assert main(["-C", str(project), "train"]) == 0
    err = capsys.readouterr().err
    assert "mlci: warning:" in err
    assert "the run is recorded locally only" in err
    assert "s3cret" not in err
    lineage = json.loads((project / "artifacts" / "lineage.json").read_text())
    assert lineage["status"] == "complete"
    assert "tracking" not in lineage


@pytest.mark.skipif(sys.version_info < (3, 10), reason="MLflow's client needs Python 3.10")
@pytest.mark.integration
def test_with_strict_an_unreachable_server_fails_the_command(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracked(project, f"http://127.0.0.1:{free_port()}", extra="strict = true\n")
    assert main(["-C", str(project), "train"]) == 2
    err = capsys.readouterr().err
    assert "mlci: error:" in err
    assert "cannot reach the MLflow server" in err
    assert "Traceback" not in err


def test_without_the_client_the_extra_or_the_python_is_named(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlci.tracking import _mlflow

    tracked(project, "http://127.0.0.1:1")
    monkeypatch.setattr(_mlflow, "MIN_PYTHON", (99, 0))
    assert main(["-C", str(project), "train"]) == 0
    assert "MLflow tracking needs Python 99.0 or later" in capsys.readouterr().err
    monkeypatch.setattr(_mlflow, "MIN_PYTHON", (3, 0))
    monkeypatch.setitem(sys.modules, "mlflow", None)
    tracked(project, "http://127.0.0.1:1", trees=11)  # new inputs: it trains, and would log
    assert main(["-C", str(project), "train"]) == 0
    assert "install mlci[mlflow]" in capsys.readouterr().err


def test_params_flatten_the_resolved_config(project: Path) -> None:
    params = tracking.params_of(load_config(project))
    assert params["estimator.class"] == "sklearn.ensemble.RandomForestClassifier"
    assert params["estimator.params.n_estimators"] == "10"
    assert params["seed"] == "42"


@pytest.mark.mlflow
def test_a_training_run_is_logged_with_everything_it_made(
    project: Path, mlflow_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tracked(project, mlflow_server)
    assert main(["-C", str(project), "train"]) == 0
    out = capsys.readouterr().out
    lineage = json.loads((project / "artifacts" / "lineage.json").read_text())
    run_id = lineage["tracking"]["run_id"]
    assert f"mlflow   run {run_id}" in out
    run = client(mlflow_server).get_run(run_id)
    metrics = json.loads((project / "artifacts" / "metrics.json").read_text())
    assert run.data.metrics["accuracy"] == pytest.approx(metrics["accuracy"])
    assert run.data.params["estimator.params.n_estimators"] == "10"
    assert run.data.tags["mlci.stage_key"] == lineage["stage"]["key"]
    assert run.data.tags["mlci.data_sha256"] == lineage["data"]["sha256"]
    assert run.data.tags["mlci.model_sha256"] == lineage["outputs"]["model"]
    names = {item.path for item in client(mlflow_server).list_artifacts(run_id)}
    assert {"metrics.json", "lineage.json", "predictions.json"} <= names
    import mlflow

    model = mlflow.sklearn.load_model(lineage["tracking"]["model_uri"])
    assert model.get_params()["n_estimators"] == 10
    pyfunc = mlflow.pyfunc.load_model(lineage["tracking"]["model_uri"])
    inputs = pyfunc.metadata.get_input_schema().input_names()
    assert inputs == ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.mark.mlflow
def test_a_cache_hit_logs_nothing_and_the_gate_is_added_to_the_run(
    project: Path, mlflow_server: str
) -> None:
    tracked(project, mlflow_server, trees=12)
    before = len(runs(mlflow_server))
    assert main(["-C", str(project), "train"]) == 0
    assert len(runs(mlflow_server)) == before + 1
    assert main(["-C", str(project), "train"]) == 0  # up to date: no new run
    assert len(runs(mlflow_server)) == before + 1
    main(["-C", str(project), "gate"])
    run_id = json.loads((project / "artifacts" / "lineage.json").read_text())["tracking"]["run_id"]
    run = client(mlflow_server).get_run(run_id)
    assert run.data.tags["mlci.gate"] in ("passed", "failed")
    assert "mlci/gate.md" in {
        item.path for item in client(mlflow_server).list_artifacts(run_id, "mlci")
    }


@pytest.mark.mlflow
def test_a_release_logs_its_training_run_and_its_steps(project: Path, mlflow_server: str) -> None:
    tracked(project, mlflow_server, trees=13)
    assert main(["-C", str(project), "release"]) == 0
    lineage = json.loads((project / "artifacts" / "lineage.json").read_text())
    run = client(mlflow_server).get_run(lineage["tracking"]["run_id"])
    assert run.data.tags["mlci.release"] == "passed"
    assert run.data.tags["mlci.registry_version"] == "1"
    # The registered version's lineage names the run too: drift reports go there.
    batch = project / "batch.csv"
    batch.write_text((project / "data" / "iris.csv").read_text())
    assert main(["-C", str(project), "drift", str(batch)]) == 0
    run = client(mlflow_server).get_run(lineage["tracking"]["run_id"])
    assert run.data.tags["mlci.drift"] == "none"


@pytest.mark.mlflow
def test_an_exported_version_is_served_by_mlflow_with_mlcis_predictions(
    project: Path, trained: TrainResult, tmp_path: Path
) -> None:
    """`mlflow models serve` on the export answers the held-out rows as mlci predicted them."""
    pytest.importorskip("mlflow.server", reason="needs the full mlflow package: nox -s mlflow")
    import os
    import subprocess
    import time
    import urllib.request

    assert main(["-C", str(project), "registry", "register"]) == 0
    exported = tmp_path / "exported"
    assert main(["-C", str(project), "export", "mlflow", "1", str(exported)]) == 0
    assert (exported / "MLmodel").is_file()
    assert main(["-C", str(project), "export", "mlflow", "1", str(exported)]) == 2  # exists
    requirements = (exported / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements
    predictions = json.loads((project / "artifacts" / "predictions.json").read_text())
    rows = [
        line.split(",")[:4] for line in (project / "data" / "iris.csv").read_text().splitlines()
    ]
    held_out = [[float(v) for v in rows[line - 1]] for line in predictions["lines"]]
    port = free_port()
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(exported)]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        body = json.dumps({"dataframe_split": {"columns": rows[0], "data": held_out}}).encode()
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, "mlflow models serve exited"
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    served = json.loads(response.read())["predictions"]
                    break
            except OSError:
                assert time.monotonic() < deadline, "mlflow models serve did not answer"
                time.sleep(0.5)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    assert [str(label) for label in served] == predictions["predicted"]


@pytest.mark.mlflow
def test_a_regressors_run_logs_the_regression_metrics(
    tmp_path: Path, mlflow_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = diabetes_project(tmp_path)
    pyproject = root / "pyproject.toml"
    table = f'[tool.mlci.mlflow]\ntracking_uri = "{mlflow_server}"\nexperiment = "mlci-tests"\n'
    pyproject.write_text(pyproject.read_text() + "\n" + table, encoding="utf-8")
    assert main(["-C", str(root), "train"]) == 0
    capsys.readouterr()
    lineage = json.loads((root / "artifacts" / "lineage.json").read_text())
    run = client(mlflow_server).get_run(lineage["tracking"]["run_id"])
    metrics = json.loads((root / "artifacts" / "metrics.json").read_text())
    for name in ("r2", "rmse", "mae", "max_error", "mape"):
        assert run.data.metrics[name] == pytest.approx(metrics[name])
    assert "accuracy" not in run.data.metrics
    assert run.data.params["task"] == "regression"
    import mlflow

    model = mlflow.pyfunc.load_model(lineage["tracking"]["model_uri"])
    [output] = model.metadata.get_output_schema().inputs
    assert output.type.name == "double"


def test_a_model_holding_mlcis_classes_requires_mlci_where_mlflow_loads_it() -> None:
    """An XGBoost classifier is pickled inside mlci's label-code wrapper: loading imports mlci."""
    from sklearn.linear_model import LogisticRegression

    from mlci import __version__
    from mlci.pipeline._labels import EncodedLabels
    from mlci.tracking._mlflow import _requirements

    lineage = {"packages": {"scikit-learn": "1.9.1", "numpy": None}}
    assert _requirements(lineage, LogisticRegression()) == ["scikit-learn==1.9.1"]
    wrapped = EncodedLabels(LogisticRegression())
    assert _requirements(lineage, wrapped) == ["scikit-learn==1.9.1", f"mlci=={__version__}"]
