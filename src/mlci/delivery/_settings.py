"""Delivery's part of ``[tool.mlci]``: where the registry lives and when a batch has drifted."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from mlci._settings import dataclass_from_table, get
from mlci.errors import MlciError
from mlci.pipeline import Config

REGISTRY_ENV = "MLCI_REGISTRY"
DEFAULT_REGISTRY = "registry"


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


def drift_settings(config: Config) -> DriftConfig:
    """``[tool.mlci.drift]``, every key type-checked and every share between 0 and 1."""
    where = f"{config.pyproject}: [tool.mlci.drift]"
    settings = dataclass_from_table(DriftConfig, config.sections.get("drift", {}), where)
    for field in dataclasses.fields(DriftConfig):
        value = getattr(settings, field.name)
        if isinstance(value, float) and value < 0:
            raise MlciError(f"{where} {field.name}: must not be negative, got {value}")
        if isinstance(value, float) and field.name != "wasserstein" and value > 1:
            raise MlciError(f"{where} {field.name}: must be between 0 and 1, got {value}")
    return settings


def registry_location(config: Config) -> Path:
    """``MLCI_REGISTRY``, else ``[tool.mlci] registry``, else ``registry/`` in the project."""
    where = f"{config.pyproject}: [tool.mlci]"
    configured = get(config.sections, "registry", str, where, default=DEFAULT_REGISTRY)
    return config.root / (os.environ.get(REGISTRY_ENV) or configured)
