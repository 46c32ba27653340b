"""Tracking's part of ``[tool.mlci]``: ``[tool.mlci.mlflow]``, with MLflow's own variable."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from mlci._settings import section_settings
from mlci.pipeline import Config

TRACKING_ENV = "MLFLOW_TRACKING_URI"


@dataclasses.dataclass(frozen=True)
class TrackingConfig:
    """Where training runs are logged; off while ``tracking_uri`` is empty."""

    tracking_uri: str = ""  # MLFLOW_TRACKING_URI wins, as in MLflow itself
    experiment: str = "mlci"
    strict: bool = False  # a tracking failure fails the command (default: a warning)

    @property
    def enabled(self) -> bool:
        """Whether runs are logged at all."""
        return bool(self.tracking_uri)


def tracking_settings(config: Config) -> TrackingConfig:
    """``[tool.mlci.mlflow]``, then ``MLFLOW_TRACKING_URI`` over its ``tracking_uri``."""

    def rule(name: str, value: Any) -> str:
        return "must not be empty" if name == "experiment" and not value else ""

    settings = section_settings(TrackingConfig, config.sections, "mlflow", config.pyproject, rule)
    uri = os.environ.get(TRACKING_ENV)
    return dataclasses.replace(settings, tracking_uri=uri) if uri else settings
