"""Training runs on an MLflow tracking server: params, metrics, tags, artifacts and the model.

This module needs the ``mlflow`` extra (mlflow-skinny and pandas, Python 3.10 or later); nothing
else in mlci imports MLflow. A tracking server that cannot be reached is a warning unless
``[tool.mlci.mlflow] strict`` makes it an error: the local run is complete either way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pickle
import shutil
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlci import __version__, pipeline
from mlci._secrets import redact, without_credentials
from mlci.errors import MlciError
from mlci.pipeline import Config, TrainResult
from mlci.tracking._settings import TrackingConfig

EXTRA = "mlflow"
MIN_PYTHON = (3, 10)
PROBE_SECONDS = 5.0
# MLflow retries a failing request 7 times with exponential back-off (minutes in all); a CI step
# that only records should learn about a dead server in seconds. A user's own setting wins.
# mlci prints the run's id and server itself, once.
CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
MAX_PARAM = 6000  # MLflow's limit on a param value's length


class TrackingError(MlciError):
    """The run could not be logged; the caller warns or fails as ``strict`` says."""


@dataclasses.dataclass(frozen=True)
class Logged:
    """Where a training run went: enough to find it again from any machine."""

    run_id: str
    experiment_id: str
    tracking_uri: str  # without credentials
    model_uri: str

    def to_dict(self) -> dict[str, str]:
        """Plain JSON, for the lineage."""
        return dataclasses.asdict(self)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """MLflow's notices about its own code, as warnings or log lines, are not shown.

    Type-hint inference, pandas deprecations, pickle's advice (mlci verifies every model's
    SHA-256 and offers skops), an unknown pip version: nothing a user can act on in a CI log,
    and nothing that may fail a run.
    """
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def available(what: str = "MLflow tracking") -> str:
    """Why ``what`` cannot run in this interpreter, or "" when it can."""
    if sys.version_info < MIN_PYTHON:
        return (
            f"{what} needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or later (mlflow-skinny); "
            f"this is {sys.version_info[0]}.{sys.version_info[1]}: run it on 3.10+, or leave "
            "[tool.mlci.mlflow] tracking_uri unset here"
        )
    try:
        import mlflow  # noqa: F401
        import pandas  # noqa: F401
    except ImportError:
        return f"{what} needs mlflow: install mlci[{EXTRA}] (the lock requirements/{EXTRA}.txt)"
    return ""


def _client(settings: TrackingConfig) -> Any:
    """The mlflow module, pointed at the configured server, once it answers."""
    why = available()
    if why:
        raise TrackingError(why)
    for name, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    _probe(settings.tracking_uri)
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    return mlflow


def registry_client(settings: TrackingConfig, what: str) -> Any:
    """An ``MlflowClient`` for the server's model registry, once the server answers."""
    why = available(what)
    if why:
        raise MlciError(why)
    if not settings.tracking_uri:
        raise MlciError(
            f"{what} needs an MLflow server: set [tool.mlci.mlflow] tracking_uri or "
            "MLFLOW_TRACKING_URI"
        )
    mlflow = _client(settings)
    return mlflow.MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)


def _probe(uri: str) -> None:
    """An HTTP server must answer /health within seconds, or tracking stops here."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error  # here: only a tracked run needs the HTTP client (30 ms to import)
    import urllib.request

    shown = without_credentials(uri)
    try:  # /health needs no credentials: none go into the probe, or into its errors
        with urllib.request.urlopen(f"{shown.rstrip('/')}/health", timeout=PROBE_SECONDS):
            pass
    except urllib.error.HTTPError as error:
        raise TrackingError(f"MLflow server {shown}: /health answered {error.code}") from None
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingError(f"cannot reach the MLflow server {shown} ({reason})") from None


def params_of(config: Config) -> dict[str, str]:
    """The resolved config, flattened to MLflow params (``estimator.params.n_estimators``...)."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for index, item in enumerate(value):
                walk(f"{prefix}.{index}", item)
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[prefix] = text[:MAX_PARAM]

    walk("", config.resolved())
    return flat


def log_training(config: Config, result: TrainResult, settings: TrackingConfig) -> Logged:
    """One MLflow run for a training run that actually trained: everything it produced."""
    mlflow = _client(settings)
    lineage = result.lineage
    artifacts = result.artifacts
    manifest = pipeline.load_manifest(config.manifest)
    features = [column.name for column in manifest.features]
    model = pipeline.load_trained(config)
    signature = signature_of(manifest, model)
    key = str(lineage["stage"]["key"])
    try:
        with quiet():
            mlflow.set_experiment(settings.experiment)
            with mlflow.start_run(run_name=f"train {key[:12]}") as run:
                mlflow.log_params(params_of(config))
                mlflow.log_metrics(pipeline.scalar_metrics(result.metrics))
                mlflow.set_tags({k: redact(v) for k, v in tags_of(lineage, key).items()})
                for path in (artifacts.metrics, artifacts.lineage, artifacts.predictions):
                    mlflow.log_artifact(str(path))
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    signature=signature,
                    input_example=_example(config, manifest, features),
                    pip_requirements=_requirements(lineage, model),
                    **_format(config.model_format, config.skops_trusted),
                )
    except MlciError:
        raise
    except Exception as error:  # MlflowException, RestException, requests' errors
        raise TrackingError(f"MLflow: {type(error).__name__}: {error}") from None
    return Logged(
        run.info.run_id,
        run.info.experiment_id,
        without_credentials(settings.tracking_uri),
        str(info.model_uri),
    )


def signature_of(manifest: pipeline.Manifest, model: Any) -> Any:
    """The model's MLflow signature: the manifest's features in, one label (or number) out.

    Numbers are doubles and categories strings; a column that may be missing is optional, so
    MLflow's server lets a null through to the model's own imputation. A regressor answers
    doubles.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    labels = getattr(model, "classes_", None)
    kind = "long" if labels is not None and labels.dtype.kind in "iu" else "string"
    if manifest.task == pipeline.REGRESSION:
        kind = "double"
    return ModelSignature(
        inputs=Schema(
            [
                ColSpec(
                    "double" if column.numeric else "string",
                    column.name,
                    required=not column.missing,
                )
                for column in manifest.features
            ]
        ),
        outputs=Schema([ColSpec(kind)]),
    )


def _format(model_format: str, trusted: tuple[str, ...]) -> dict[str, Any]:
    """MLflow's serialisation of the model: skops with mlci's allow-list, else pickle."""
    if model_format == "skops":
        return {"serialization_format": "skops", "skops_trusted_types": list(trusted) or None}
    return {"serialization_format": "pickle"}


def export(
    model: Any,
    manifest: pipeline.Manifest,
    lineage: dict[str, Any],
    directory: Path,
    *,
    model_format: str,
    trusted: tuple[str, ...] = (),
) -> None:
    """Write an MLflow model directory (MLmodel, environment files, signature) for ``model``.

    The directory appears whole or not at all: it is written next to its place, then renamed.
    """
    why = available("mlci export mlflow")
    if why:
        raise MlciError(why)
    if directory.exists():
        raise MlciError(f"{directory}: already exists; give a new folder")
    import mlflow.sklearn

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.with_name(f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with quiet():
            mlflow.sklearn.save_model(
                model,
                str(staging),
                signature=signature_of(manifest, model),
                pip_requirements=_requirements(lineage, model),
                **_format(model_format, trusted),
            )
        os.replace(staging, directory)
    except MlciError:
        raise
    except Exception as error:
        raise MlciError(f"{directory}: MLflow could not save the model: {error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def tags_of(lineage: dict[str, Any], key: str) -> dict[str, str]:
    """What identifies the run: its inputs, code and environment."""
    packages = lineage.get("packages", {})
    return {
        "mlci.stage_key": key,
        "mlci.data_sha256": str(lineage.get("data", {}).get("sha256")),
        "mlci.model_sha256": str(lineage.get("outputs", {}).get("model")),
        "mlci.git_commit": str(lineage.get("git_commit")),
        "mlci.python": str(lineage.get("python")),
        "mlci.scikit_learn": str(packages.get("scikit-learn")),
        "mlci.version": __version__,
    }


def _requirements(lineage: dict[str, Any], model: Any = None) -> list[str]:
    """The model's packages at the versions it was trained with (MLflow's inference is slow).

    mlci itself when the model holds one of its classes (an XGBoost classifier's label codes):
    loading the pickle imports it.
    """
    packages = lineage.get("packages", {})
    found = sorted(f"{name}=={version}" for name, version in packages.items() if version)
    if model is not None and b"mlci." in pickle.dumps(model):
        found.append(f"mlci=={__version__}")
    return found


def _example(config: Config, manifest: pipeline.Manifest, features: list[str]) -> Any:
    """The first held-out row, as a one-row frame with the manifest's column names."""
    import pandas as pd

    predictions = json.loads(pipeline.Artifacts.of(config).predictions.read_text())
    table = pipeline.read_file(config.data, manifest)
    rows = pipeline.held_out_features(predictions, table)[:1]
    return pd.DataFrame(rows, columns=features)


def log_result(
    settings: TrackingConfig,
    run_id: str,
    name: str,
    markdown: str,
    *,
    tags: dict[str, str],
    metrics: dict[str, float] | None = None,
) -> None:
    """Add what a later stage decided (gate, release, drift) to a training run."""
    mlflow = _client(settings)
    try:
        client = mlflow.MlflowClient(settings.tracking_uri)
        for key, value in tags.items():
            client.set_tag(run_id, key, redact(value))
        for metric, number in (metrics or {}).items():
            client.log_metric(run_id, metric, number)
        client.log_text(run_id, redact(markdown), f"mlci/{name}.md")
    except Exception as error:
        raise TrackingError(f"MLflow: {type(error).__name__}: {error}") from None
