"""The registry in an MLflow Model Registry (``registry = "mlflow:<name>"``).

What every backend shares runs in test_registry and test_shared_registry with an `mlflow`
variant; here is what is MLflow's own: versions and aliases MLflow's tools see, the log of moves
in the companion registered model, and the errors of a missing or unreachable server. The
tests marked `mlflow` use the real `mlflow server` of the `mlflow` session.
"""

from __future__ import annotations

import json
import sys
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, retrain_with, write_pyproject

from mlci.cli import main
from mlci.delivery import PRODUCTION, Registry
from mlci.errors import MlciError
from mlci.pipeline import Config, TrainResult, load_config


def on_mlflow(project: Path, name: str, *, trees: int = 10) -> Config:
    """Point the project's registry at ``mlflow:<name>`` (the server comes from the env)."""
    write_pyproject(project, trees=trees, extra=f'registry = "mlflow:{name}"\n')
    return load_config(project)


@pytest.fixture
def model_name(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new registered model name on the test server, which MLFLOW_TRACKING_URI names."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    return f"iris-{uuid.uuid4().hex[:8]}"


def client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


@pytest.mark.integration
def test_without_a_server_the_setting_to_give_is_named(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    on_mlflow(project, "iris")
    assert main(["-C", str(project), "registry", "list"]) == 2
    err = capsys.readouterr().err
    if sys.version_info >= (3, 10):
        assert "needs an MLflow server: set [tool.mlci.mlflow] tracking_uri" in err
    else:
        assert "registry = 'mlflow:…' needs Python 3.10 or later" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["a/b", "a:b", "it's", " "])
def test_a_name_mlflow_cannot_take_is_refused(
    project: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    on_mlflow(project, name)
    assert main(["-C", str(project), "registry", "list"]) == 2
    assert "give a registered model name without '/', ':' or quotes" in capsys.readouterr().err


@pytest.mark.skipif(sys.version_info < (3, 10), reason="MLflow's client needs Python 3.10")
@pytest.mark.integration
def test_a_server_that_is_down_is_one_clear_error(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow", reason="needs the mlflow extra")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ci:s3cret@127.0.0.1:{free_port()}")
    on_mlflow(project, "iris")
    assert main(["-C", str(project), "registry", "history"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the MLflow server http://127.0.0.1:" in err
    assert "s3cret" not in err
    assert "Traceback" not in err


@pytest.mark.mlflow
def test_versions_and_aliases_are_mlflows_own(
    project: Path, model_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow's tools see what mlci released: the version, its tags, the alias, the model."""
    on_mlflow(project, model_name)
    assert main(["-C", str(project), "release"]) == 0
    capsys.readouterr()
    mlflow_client = client()
    [version] = mlflow_client.search_model_versions(f"name='{model_name}'")
    lineage = json.loads((project / "artifacts" / "lineage.json").read_text())
    assert version.tags["mlci.model_sha256"] == lineage["outputs"]["model"]
    assert version.tags["mlci.stage_key"] == lineage["stage"]["key"]
    assert version.run_id == lineage["tracking"]["run_id"]  # the training run's version
    assert mlflow_client.get_registered_model(model_name).aliases == {
        PRODUCTION: "1",
        "staging": "1",
    }
    entries = mlflow_client.search_model_versions(f"name='{model_name}.mlci-history'")
    moves = sorted(json.loads(entry.tags["mlci.event"])["move"]["alias"] for entry in entries)
    assert moves == [PRODUCTION, "staging"]  # the release's two moves, and nothing else
    # `models:/<name>@production` predicts, through MLflow's own loader, what mlci predicts.
    import mlflow.pyfunc
    import pandas as pd

    rows = project / "rows.csv"
    iris = (project / "data" / "iris.csv").read_text().splitlines()
    rows.write_text("\n".join(line.rsplit(",", 1)[0] for line in iris[:40]) + "\n")
    assert main(["-C", str(project), "predict", str(rows), "--model", PRODUCTION]) == 0
    predicted = capsys.readouterr().out.split()
    served = mlflow.pyfunc.load_model(f"models:/{model_name}@{PRODUCTION}")
    with warnings.catch_warnings():  # scikit-learn's note: fitted on arrays, given a frame
        warnings.simplefilter("ignore", UserWarning)
        labels = served.predict(pd.read_csv(rows))
    assert [str(label) for label in labels] == predicted


@pytest.mark.mlflow
def test_a_version_made_by_hand_in_mlflow_is_not_mlcis(
    config: Config, trained: TrainResult, model_name: str
) -> None:
    config = on_mlflow(config.root, model_name)
    registry = Registry.of(config)
    first = registry.register(config).version
    run_id = first.folder.removeprefix("runs:/").split("/")[0]
    by_hand = client().create_model_version(model_name, f"runs:/{run_id}/model", run_id=run_id)
    assert by_hand.version == "2"
    assert [v.number for v in registry.versions()] == [1]
    with pytest.raises(MlciError, match="no version 2 in the registry"):
        registry.promote(2, PRODUCTION)


@pytest.mark.mlflow
def test_a_lost_claim_is_not_history_and_a_lagging_alias_is_set_by_the_next_move(
    project: Path, model_name: str
) -> None:
    registry = Registry.of(
        retrain_with(project, trees=10, extra=f'registry = "mlflow:{model_name}"\n')
    )
    registry.register(load_config(project))
    registry.register(retrain_with(project, trees=11, extra=f'registry = "mlflow:{model_name}"\n'))
    registry.promote(1, PRODUCTION, "first")
    mlflow_client = client()
    history = f"{model_name}.mlci-history"
    [entry] = mlflow_client.search_model_versions(f"name='{history}'")
    # A second writer's claim to the same place in the log, which landed after the first.
    stale = json.loads(entry.tags["mlci.event"])
    stale["move"].update(to_version=2, reason="lost the race")
    mlflow_client.create_model_version(
        history,
        entry.source,
        run_id=entry.run_id,
        tags={"mlci.event": json.dumps(stale)},
    )
    assert [m.reason for m in registry.history()] == ["first"]
    assert registry.get(PRODUCTION).number == 1
    # A writer killed after recording its move leaves MLflow's alias behind: the next sets it.
    mlflow_client.set_registered_model_alias(model_name, PRODUCTION, "2")
    assert registry.get(PRODUCTION).number == 1  # mlci reads its history, not the alias
    registry.promote(1, "staging", "second")
    assert mlflow_client.get_registered_model(model_name).aliases[PRODUCTION] == "1"
    assert [m.reason for m in registry.history()] == ["first", "second"]


@pytest.mark.mlflow
@pytest.mark.parametrize(
    ("model", "tag", "value", "message"),
    [
        ("", "mlci.version", "{", "version 1: corrupt registry record .*mlci.version"),
        ("", "mlci.model_sha256", "0" * 64, "version 1: corrupt .*not the model file's SHA-256"),
        (".mlci-history", "mlci.event", "[", "history' version 1: corrupt .*mlci.event"),
    ],
)
def test_a_damaged_record_is_reported_not_repaired(
    config: Config,
    trained: TrainResult,
    model_name: str,
    model: str,
    tag: str,
    value: str,
    message: str,
) -> None:
    registry = Registry.of(on_mlflow(config.root, model_name))
    registry.register(load_config(config.root))
    registry.promote(1, PRODUCTION)
    client().set_model_version_tag(model_name + model, "1", tag, value)
    with pytest.raises(MlciError, match=message + ".*restore it from a backup"):
        registry.read()


@pytest.mark.mlflow
def test_a_tampered_model_file_is_refused(
    project: Path, model_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    on_mlflow(project, model_name)
    assert main(["-C", str(project), "release"]) == 0
    registry = Registry.of(load_config(project))
    version = registry.get(PRODUCTION)
    run_id = version.folder.removeprefix("runs:/").split("/")[0]
    forged = project / "forged" / version.model_file
    forged.parent.mkdir()
    forged.write_bytes(b"not the model that was registered")
    client().log_artifact(run_id, str(forged), "mlci")
    capsys.readouterr()
    rows = project / "rows.csv"
    rows.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    assert main(["-C", str(project), "predict", str(rows), "--model", PRODUCTION]) == 2
    err = capsys.readouterr().err
    assert "version 1 failed verification, refusing to load it" in err
    assert f"runs:/{run_id}/mlci/{version.model_file}: SHA-256" in err


@pytest.mark.mlflow
def test_a_version_deleted_in_mlflow_is_history_not_corruption(
    project: Path, model_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleting an old version is routine clean-up: reads work, rollback passes over it."""
    extra = f'registry = "mlflow:{model_name}"\n'
    for trees in (10, 11, 12):
        config = retrain_with(project, trees=trees, extra=extra)
        number = Registry.of(config).register(config).version.number
        assert (
            main(["-C", str(project), "registry", "promote", str(number), "--to", PRODUCTION]) == 0
        )
    client().delete_model_version(model_name, "2")
    capsys.readouterr()
    registry = Registry.of(config)
    assert [v.number for v in registry.versions()] == [1, 3]
    assert main(["-C", str(project), "registry", "history", PRODUCTION]) == 0
    out = capsys.readouterr().out
    assert "2 (deleted)" in out
    assert main(["-C", str(project), "registry", "rollback", PRODUCTION]) == 0
    out = capsys.readouterr().out
    assert "production: version 3 -> version 1 (rollback)" in out
    assert "skipped deleted version(s) 2" in out
    assert registry.get(PRODUCTION).number == 1
    assert client().get_registered_model(model_name).aliases[PRODUCTION] == "1"
    with pytest.raises(MlciError, match="version 2 was deleted"):
        registry.promote(2, PRODUCTION)
