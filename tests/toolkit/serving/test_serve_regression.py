"""`mlci serve` for a regressor: numbers in MLflow's response shape, NaN refused, a histogram.

The diabetes project is trained, registered and promoted as a user would, then served on
loopback; MLflow's own scoring client and an `mlci export mlflow` (the `mlflow` session) must
agree with the model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from conftest import diabetes_project
from test_serve import SETTINGS, Server

from mlci.cli import main
from mlci.delivery._registry import PRODUCTION, Registry
from mlci.pipeline import Manifest, load_config, load_data, load_manifest, model_input
from mlci.serving._server import ModelSlot, create_app

pytestmark = pytest.mark.integration


@dataclasses.dataclass
class Served:
    root: Path
    manifest: Manifest
    model: Any
    rows: list[list[Any]]
    slot: ModelSlot
    server: Server

    @property
    def features(self) -> list[str]:
        return [column.name for column in self.manifest.features]

    def expected(self) -> list[float]:
        return [
            float(v) for v in self.model.predict(model_input(self.rows, self.manifest.features))
        ]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = diabetes_project(tmp_path_factory.mktemp("diabetes"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert main(["train"]) == 0
        config = load_config(root)
        registry = Registry.of(config)
        registry.register(config)
        registry.promote(1, PRODUCTION)
    manifest = load_manifest(config.manifest)
    model = registry.load_model(registry.get(1))
    rows = load_data(config)[1].features[:25]
    slot = ModelSlot(registry, PRODUCTION)
    server = Server(create_app(slot, SETTINGS))
    yield Served(root, manifest, model, rows, slot, server)
    server.stop()


def test_a_regressor_answers_numbers_in_mlflows_shape(served: Served) -> None:
    records = [dict(zip(served.features, row)) for row in served.rows]
    status, reply, headers = served.server.post({"dataframe_records": records})
    assert status == 200, reply
    assert reply == {"predictions": served.expected()}
    assert all(isinstance(value, float) for value in reply["predictions"])
    assert headers["x-model-version"] == "1"
    status, reply, _ = served.server.post({"instances": served.rows, "params": {"proba": True}})
    assert status == 400
    assert "has no class probabilities" in reply["message"]


def test_metrics_has_a_histogram_of_predicted_values(served: Served) -> None:
    assert served.server.post({"instances": served.rows})[0] == 200
    status, text, _ = served.server.text("/metrics")
    assert status == 200
    low, high = served.manifest.target_column.min, served.manifest.target_column.max
    assert low is not None
    assert high is not None
    count = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("mlci_predicted_value_count")
    )
    assert count >= len(served.rows)
    bounds = [
        line.split('le="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("mlci_predicted_value_bucket")
    ]
    # ten equal buckets over the manifest's range of the target, then +Inf
    assert [float(b) for b in bounds[:-1]] == pytest.approx(
        [low + (high - low) * i / 10 for i in range(1, 11)]
    )
    assert bounds[-1] == "+Inf"
    # no class counts for a regressor
    assert not any(line.startswith("mlci_predictions_total{") for line in text.splitlines())


class NaNModel:
    """A regressor that answers NaN for the first row."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __sklearn_tags__(self) -> Any:  # a regressor's tags, as scikit-learn reads them
        return self.inner.__sklearn_tags__()

    def predict(self, x: Any) -> Any:
        values = self.inner.predict(x).copy()
        values[0] = math.nan
        return values


def test_a_nan_prediction_is_a_500_counted_in_metrics(served: Served) -> None:
    current = served.slot.current
    assert current is not None
    slot = ModelSlot(Registry.of(load_config(served.root)), PRODUCTION)
    slot.current = dataclasses.replace(current, model=NaNModel(current.model))
    server = Server(create_app(slot, SETTINGS))
    try:
        status, reply, _ = server.post({"instances": served.rows[:3]})
        _, text, _ = server.text("/metrics")
    finally:
        server.stop()
    assert status == 500
    assert "NaN or infinite predictions for 1 row(s)" in reply["message"]
    assert "mlci_nonfinite_predictions_total 1.0" in text


@pytest.mark.mlflow
def test_mlflows_scoring_client_gets_numbers(served: Served) -> None:
    client_module = pytest.importorskip(
        "mlflow.pyfunc.scoring_server.client", reason="needs MLflow: nox -s mlflow"
    )
    import pandas as pd

    client = client_module.ScoringServerClient("127.0.0.1", served.server.port)
    client.wait_server_ready(timeout=10)
    frame = pd.DataFrame(served.rows, columns=served.features)
    predictions = client.invoke(frame).get_predictions()
    assert [float(p) for p in predictions.iloc[:, 0]] == served.expected()


@pytest.mark.mlflow
@pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")
def test_an_exported_regressor_predicts_doubles_in_mlflow(served: Served, tmp_path: Path) -> None:
    pyfunc = pytest.importorskip("mlflow.pyfunc", reason="needs MLflow: nox -s mlflow")
    import pandas as pd

    exported = tmp_path / "exported"
    assert main(["-C", str(served.root), "export", "mlflow", "1", str(exported)]) == 0
    model = pyfunc.load_model(str(exported))
    [output] = model.metadata.get_output_schema().inputs
    assert output.type.name == "double"
    frame = pd.DataFrame(served.rows, columns=served.features)
    # MLflow hands the model a column-major frame: a dot product summed in another order can
    # differ in the last bit; `mlci serve` and `mlci predict` give the model's exact numbers.
    assert [float(p) for p in model.predict(frame)] == pytest.approx(served.expected(), rel=1e-12)
