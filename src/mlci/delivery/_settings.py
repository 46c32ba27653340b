"""Delivery's part of ``[tool.mlci]``: where the registry lives and when a batch has drifted."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from mlci._settings import get, reject_unknown, section_settings
from mlci.delivery._store import check_location, is_url
from mlci.errors import MlciError
from mlci.pipeline import Config

REGISTRY_ENV = "MLCI_REGISTRY"
DEFAULT_REGISTRY = "registry"
MLFLOW_SCHEME = "mlflow:"  # registry = "mlflow:<registered model name>"


@dataclasses.dataclass(frozen=True)
class DriftConfig:
    """Drift thresholds (Evidently's defaults) and where new batches arrive."""

    incoming: str = "data/incoming"
    ks_max_rows: int = 1000  # KS up to this many reference rows, normalized Wasserstein above
    ks_p_value: float = 0.05  # a numeric column drifts when KS p <= this
    wasserstein: float = 0.1  # ... or when Wasserstein / std(reference) >= this
    chi2_p_value: float = 0.05  # the label drifts when chi-squared p <= this
    psi: float = 0.1  # PSI is reported; at or above this it is marked, never decisive
    share: float = 0.5  # the dataset drifts when this share of columns drift


@dataclasses.dataclass(frozen=True)
class DeliveryConfig:
    """How old production may get before `release --if-needed` fails (unset: no limit)."""

    max_age_days: float | None = None


def delivery_settings(config: Config) -> DeliveryConfig:
    """``[tool.mlci.delivery]``: ``max_age_days`` a positive number of days, or absent."""
    where = f"{config.pyproject}: [tool.mlci.delivery]"
    table = config.sections.get("delivery", {})
    if not isinstance(table, dict):
        raise MlciError(f"{where}: must be a table")
    reject_unknown(table, {"max_age_days"}, where)
    value = table.get("max_age_days")
    if value is None:
        return DeliveryConfig()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise MlciError(f"{where} max_age_days: must be a positive number of days, not {value!r}")
    return DeliveryConfig(float(value))


def drift_settings(config: Config) -> DriftConfig:
    """``[tool.mlci.drift]``, every key type-checked and every share between 0 and 1."""

    def rule(name: str, value: Any) -> str:
        if isinstance(value, float) and value < 0:
            return "must not be negative"
        if isinstance(value, float) and name != "wasserstein" and value > 1:
            return "must be between 0 and 1"
        return ""

    return section_settings(DriftConfig, config.sections, "drift", config.pyproject, rule)


def registry_location(config: Config) -> Path | str:
    """``MLCI_REGISTRY``, else ``[tool.mlci] registry``, else ``registry/`` in the project.

    A URL (``s3://bucket/prefix``, ``gs://…``) or an MLflow registered model (``mlflow:<name>``)
    is returned as it is; a path is made absolute against the project.
    """
    where = f"{config.pyproject}: [tool.mlci]"
    configured = get(config.sections, "registry", str, where, default=DEFAULT_REGISTRY)
    location = os.environ.get(REGISTRY_ENV) or configured
    if not location.strip():
        raise MlciError(f"{where} registry: empty; give a folder or a URL (s3://bucket/prefix)")
    if location.startswith(MLFLOW_SCHEME):
        return location
    shown = REGISTRY_ENV if os.environ.get(REGISTRY_ENV) else f"{where} registry"
    check_location(location, shown)
    if is_url(location):
        return location
    return config.root / location.removeprefix("file://")
