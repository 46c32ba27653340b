"""Delivery: the model registry (versions, aliases, history), the release steps and drift.

Built on the pipeline's public API; serving and the command line reach it only through the names
below (an import-linter contract).
"""

from __future__ import annotations

from mlci.delivery._drift import HEADER as DRIFT_HEADER
from mlci.delivery._drift import RESULTS as DRIFT_RESULTS
from mlci.delivery._drift import DriftReport, incoming
from mlci.delivery._drift import check as check_drift
from mlci.delivery._drift import rows as drift_rows
from mlci.delivery._drift import section as drift_section
from mlci.delivery._index import (
    SNAPSHOT as REGISTRY_SNAPSHOT,
)
from mlci.delivery._index import (
    Index,
    Move,
    Registered,
    Version,
    age_days,
    headline_metric,
    history_chart,
    snapshot,
)
from mlci.delivery._reference import champion_reference, gate_reference
from mlci.delivery._registry import (
    DATA,
    MANIFEST,
    PRODUCTION,
    STAGING_ALIAS,
    Registry,
)
from mlci.delivery._release import Release, Step, release
from mlci.delivery._release import rows as release_rows
from mlci.delivery._release import section as release_section
from mlci.delivery._settings import (
    REGISTRY_ENV,
    DeliveryConfig,
    DriftConfig,
    delivery_settings,
    drift_settings,
    registry_location,
)

__all__ = [
    "DATA",
    "DRIFT_HEADER",
    "DRIFT_RESULTS",
    "MANIFEST",
    "PRODUCTION",
    "REGISTRY_ENV",
    "REGISTRY_SNAPSHOT",
    "STAGING_ALIAS",
    "DeliveryConfig",
    "DriftConfig",
    "DriftReport",
    "Index",
    "Move",
    "Registered",
    "Registry",
    "Release",
    "Step",
    "Version",
    "age_days",
    "champion_reference",
    "check_drift",
    "delivery_settings",
    "drift_rows",
    "drift_section",
    "drift_settings",
    "gate_reference",
    "headline_metric",
    "history_chart",
    "incoming",
    "registry_location",
    "release",
    "release_rows",
    "release_section",
    "snapshot",
]
