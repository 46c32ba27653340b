"""Tracking: training runs, and what CI decided about them, on an MLflow tracking server.

Off unless ``[tool.mlci.mlflow] tracking_uri`` (or ``MLFLOW_TRACKING_URI``) is set. Built on the
pipeline's public API; the command line reaches it only through the names below. MLflow itself
is imported only when a run is logged (the ``mlflow`` extra, Python 3.10 or later).
"""

from __future__ import annotations

import sys
from typing import Any

from mlci.pipeline import Config, TrainResult, annotate_lineage, read_run
from mlci.tracking._mlflow import (
    Logged,
    TrackingError,
    available,
    export,
    params_of,
    registry_client,
    tags_of,
)
from mlci.tracking._settings import TRACKING_ENV, TrackingConfig, tracking_settings

LINEAGE_KEY = "tracking"  # where the lineage records its MLflow run

__all__ = [
    "LINEAGE_KEY",
    "TRACKING_ENV",
    "Logged",
    "TrackingConfig",
    "TrackingError",
    "available",
    "export",
    "params_of",
    "record_result",
    "record_training",
    "registry_client",
    "tags_of",
    "tracking_settings",
]


def record_training(config: Config, result: TrainResult) -> Logged | None:
    """Log a run that trained (never a cache hit) and note where in its lineage."""
    settings = tracking_settings(config)
    if not settings.enabled or result.up_to_date:
        return None
    from mlci.tracking._mlflow import log_training

    try:
        logged = log_training(config, result, settings)
    except TrackingError as error:
        _fail(settings, error)
        return None
    annotate_lineage(config, LINEAGE_KEY, logged.to_dict())
    return logged


def record_result(
    config: Config,
    name: str,
    markdown: str,
    *,
    tags: dict[str, str],
    metrics: dict[str, float] | None = None,
    lineage: dict[str, Any] | None = None,
) -> bool:
    """Add a gate, release or drift result to the training run its lineage names, if tracked."""
    settings = tracking_settings(config)
    if not settings.enabled:
        return False
    run = (lineage if lineage is not None else read_run(config) or {}).get(LINEAGE_KEY)
    if not isinstance(run, dict) or "run_id" not in run:
        return False
    from mlci.tracking._mlflow import log_result

    try:
        log_result(settings, str(run["run_id"]), name, markdown, tags=tags, metrics=metrics)
    except TrackingError as error:
        _fail(settings, error)
        return False
    return True


def _fail(settings: TrackingConfig, error: TrackingError) -> None:
    """A tracking failure: an error when ``strict``, else a warning (the local run stands)."""
    if settings.strict:
        raise error
    print(
        f"mlci: warning: {error}; the run is recorded locally only "
        "([tool.mlci.mlflow] strict = true makes this an error)",
        file=sys.stderr,
    )
