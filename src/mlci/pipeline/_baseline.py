"""The committed baseline: per Python, the metrics, predictions and model hash CI must reproduce."""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlci._io import atomic_write_json, read_json
from mlci.errors import MlciError
from mlci.pipeline._config import Config
from mlci.pipeline._evaluate import scalar_metrics

TOLERANCE = 1e-9
# A model file's bytes are expected to match only when these do (a boosting library's version
# is recorded when it is installed).
VERSIONED = ("scikit-learn", "numpy")
BOOSTING = ("xgboost-cpu", "xgboost", "lightgbm")
# Estimators whose pickle differs between two identical fits, by import path: their model file's
# hash is not compared, their predictions and metrics are. Measured: scikit-learn's, XGBoost's
# and LightGBM's files are byte-identical across identical fits; CatBoost stores a GUID and
# the time its training finished.
PICKLE_VARIES = ("catboost.",)
SHOWN_ROWS = 5


def python_minor() -> str:
    """The baseline key for the running interpreter, e.g. ``3.11``."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def minor_of(python_id: str) -> str:
    """``cpython-3.11.7`` -> ``3.11``: the baseline key for a recorded interpreter."""
    version = python_id.rpartition("-")[2]
    return ".".join(version.split(".")[:2])


def check(config: Config) -> list[str]:
    """Retrain from scratch on this Python and list what differs from its committed entry."""
    python = python_minor()
    expected = entry(config, python)
    if expected is None:
        raise MlciError(
            f"{config.relative(config.baseline)}: no entry for Python {python}; "
            "run 'nox -s baseline' and commit the file"
        )
    with tempfile.TemporaryDirectory(prefix="mlci-baseline-") as tmp:
        fresh = train_fresh(config, Path(tmp))
    by_hash = not config.estimator.class_path.startswith(PICKLE_VARIES)
    return compare(expected, fresh, by_hash=by_hash)


def load(config: Config) -> dict[str, Any]:
    """The whole baseline file, keyed by Python version; empty when there is none yet."""
    if not config.baseline.exists():
        return {}
    baseline = read_json(config.baseline, "baseline")
    if not isinstance(baseline, dict):
        raise MlciError(
            f"{config.baseline}: the baseline must be a JSON object keyed by Python version"
        )
    return baseline


def entry(config: Config, python: str) -> dict[str, Any] | None:
    """One Python's baseline entry, or None."""
    return load(config).get(python)


def record(result: Any, predictions: dict[str, Any]) -> dict[str, Any]:
    """A baseline entry for one training run."""
    lineage = result.lineage
    return {
        "metrics": scalar_metrics(result.metrics),
        "predictions": predictions,
        "model_sha256": lineage["outputs"]["model"],
        "versions": versions_of(lineage),
        "params": lineage["config"],
        "data": {"sha256": lineage["data"]["sha256"], "schema": lineage["data"]["schema"]},
    }


def versions_of(lineage: dict[str, Any]) -> dict[str, str | None]:
    """The versions the model file's bytes depend on: scikit-learn, numpy, and the boosting
    library its estimator comes from (XGBoost, LightGBM), when it comes from one."""
    packages = lineage["packages"]
    versions = {name: packages.get(name) for name in VERSIONED}
    estimator = json.dumps(lineage["config"]["estimator"])
    for name in BOOSTING:
        module = name.split("-")[0]  # xgboost-cpu installs the module xgboost
        if f'"{module}.' in estimator and name in packages:
            versions[name] = packages[name]
    return versions


def train_fresh(config: Config, folder: Path) -> dict[str, Any]:
    """Retrain from scratch into ``folder`` and return what a baseline entry records."""
    from mlci.pipeline._train import train

    result = train(dataclasses.replace(config, artifacts=folder), force=True)
    return record(result, read_json(result.artifacts.predictions, "predictions"))


def update(config: Config) -> dict[str, Any]:
    """Retrain in a temp dir on this Python and write its entry into the baseline file."""
    with tempfile.TemporaryDirectory(prefix="mlci-baseline-") as tmp:
        fresh = train_fresh(config, Path(tmp))
    baseline = load(config)
    baseline[python_minor()] = fresh
    ordered = sorted(baseline.items(), key=lambda item: _version_key(item[0]))
    atomic_write_json(config.baseline, dict(ordered), sort_keys=False)
    return fresh


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def compare(expected: dict[str, Any], actual: dict[str, Any], *, by_hash: bool = True) -> list[str]:
    """Every way ``actual`` fails to reproduce ``expected``: metric deltas, changed rows, hashes.

    ``by_hash=False``: an estimator whose pickle differs between identical fits
    (``PICKLE_VARIES``) is judged by its predictions and metrics alone.
    """
    problems = []
    for name, old in sorted(expected["metrics"].items()):
        new = actual["metrics"].get(name)
        if new is None:
            problems.append(f"metric {name}: missing (baseline {old:.6f})")
        elif abs(new - old) > TOLERANCE:
            problems.append(
                f"metric {name}: {new:.6f} vs baseline {old:.6f} (delta {new - old:+.2e})"
            )
    old_pred, new_pred = expected["predictions"], actual["predictions"]
    if old_pred["sha256"] != new_pred["sha256"]:
        changed = [
            f"line {line}: baseline {old}, now {new}"
            for line, old, new in zip(
                old_pred["lines"], old_pred["predicted"], new_pred["predicted"]
            )
            if old != new
        ]
        problems.append(
            f"predictions fingerprint {new_pred['sha256'][:12]}… "
            f"vs baseline {old_pred['sha256'][:12]}…; "
            f"{len(changed)} held-out rows changed"
            + ("".join(f"\n    {row}" for row in changed[:SHOWN_ROWS]) if changed else "")
        )
    if (
        by_hash
        and expected["versions"] == actual["versions"]
        and expected["model_sha256"] != actual["model_sha256"]
    ):
        problems.append(
            f"model SHA-256 {actual['model_sha256'][:12]}… "
            f"vs baseline {expected['model_sha256'][:12]}… "
            f"with the same versions {actual['versions']}"
        )
    return problems
