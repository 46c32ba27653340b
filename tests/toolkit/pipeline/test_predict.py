from __future__ import annotations

import io
from pathlib import Path

import pytest

from mlci.errors import MlciError
from mlci.pipeline import Config, load_manifest
from mlci.pipeline import _train as train_module
from mlci.pipeline._config import load_config
from mlci.pipeline._predict import load_trained, predict_rows

FEATURES = "sepal_length,sepal_width,petal_length,petal_width\n"


def test_predicts_one_label_per_row(trained: train_module.TrainResult, project: Path) -> None:
    config = load_config(project)
    labels = predict_rows(
        load_manifest(config.manifest),
        load_trained(config),
        io.StringIO(FEATURES + "5.0,3.4,1.5,0.2\n6.9,3.1,5.8,2.2\n"),
        "x",
    )
    assert labels == ["setosa", "virginica"]


def test_refuses_invalid_rows(trained: train_module.TrainResult, project: Path) -> None:
    config = load_config(project)
    with pytest.raises(MlciError, match="x:2:3: petal_length: not a number"):
        predict_rows(
            load_manifest(config.manifest),
            load_trained(config),
            io.StringIO(FEATURES + "5.0,3.4,big,0.2\n"),
            "x",
        )
    with pytest.raises(MlciError, match=r"x:1: no data rows: the file has a header only"):
        predict_rows(
            load_manifest(config.manifest), load_trained(config), io.StringIO(FEATURES), "x"
        )


def test_refuses_a_tampered_model(trained: train_module.TrainResult, project: Path) -> None:
    with trained.artifacts.model.open("ab") as stream:
        stream.write(b"\0")
    with pytest.raises(MlciError, match="refusing to load it"):
        load_trained(load_config(project))


def test_needs_a_complete_training_run(config: Config) -> None:
    with pytest.raises(MlciError, match="no complete training run"):
        load_trained(config)
