"""Release: validate, train, gate against production, register, stage, smoke-test, promote.

Each step must pass before the next runs; production moves only in the last one, so a failure
anywhere leaves it where it was.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlci._io import sha256_file
from mlci._report import Section
from mlci.delivery import _drift as drift
from mlci.delivery._index import Version, age_days, rolled_back
from mlci.delivery._reference import gate_reference
from mlci.delivery._registry import DATA, PRODUCTION, STAGING_ALIAS, Registry
from mlci.delivery._settings import delivery_settings
from mlci.errors import MlciError
from mlci.pipeline import (
    REGRESSION,
    Artifacts,
    Config,
    TrainResult,
    headline_text,
    held_out_features,
    judge,
    load_manifest,
    minor_of,
    model_input,
    model_threads,
    outputs,
    read_file,
    train,
    validate,
)


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of a release and what it found."""

    name: str
    passed: bool
    detail: str


@dataclasses.dataclass
class Release:
    """The steps run so far, and the version they concern."""

    steps: list[Step] = dataclasses.field(default_factory=list)
    version: int | None = None
    unchanged: bool = False
    skipped: str = ""
    stale: str = ""  # why production is older than [tool.mlci.delivery] max_age_days allows
    production_before: int | None = None
    trained: TrainResult | None = None  # the train step's result, for the gate
    after_training: Callable[[TrainResult], None] | None = None

    @property
    def passed(self) -> bool:
        """True when every step that ran passed, and production is not too old."""
        return all(step.passed for step in self.steps) and not self.stale

    def add(self, name: str, passed: bool, detail: str) -> bool:
        """Record a step; return whether the release goes on."""
        self.steps.append(Step(name, passed, detail))
        return passed


def needed(config: Config, registry: Registry) -> str:
    """Why a release is due (drift or new data), or "" when there is no reason for one."""
    production = registry.alias(PRODUCTION)
    if production is None:
        return "no production model yet"
    current = sha256_file(config.data) if config.data.is_file() else None
    if current != production.data_sha256:
        return f"the training data changed since production (version {production.number})"
    batches = drift.incoming(config)
    reports = drift.check(config, batches, registry) if batches else []
    drifted = [report.batch for report in reports if report.drifted]
    if drifted:
        return f"drift in {', '.join(drifted)}"
    return ""


def stale(config: Config, registry: Registry) -> str:
    """Why production is older than ``max_age_days`` allows ("" when it is not, or no limit)."""
    limit = delivery_settings(config).max_age_days
    production = registry.alias(PRODUCTION)
    if limit is None or production is None:
        return ""
    trained = registry.trained_at(production)
    age = age_days(trained)
    if age is None or age <= limit:
        return ""
    return (
        f"production (version {production.number}) was trained {age:.1f} days ago "
        f"({trained}), more than [tool.mlci.delivery] max_age_days = {limit:g}: retrain it "
        "on newer data, or raise the limit"
    )


def release(
    config: Config,
    *,
    if_needed: bool = False,
    after_training: Callable[[TrainResult], None] | None = None,
    registry: Registry | None = None,
) -> Release:
    """Run the release steps in order, stopping at the first that fails.

    ``after_training`` sees the training run before it is registered, so that what it records
    in the run's lineage (where the run was tracked) goes into the registry with it.
    ``registry`` is the configured one when the caller has opened it already (each opening may
    probe an MLflow server or start an S3 session).
    """
    registry = Registry.of(config) if registry is None else registry
    result = Release(after_training=after_training)
    production = registry.alias(PRODUCTION)
    result.production_before = production.number if production else None
    if if_needed:
        reason = needed(config, registry)
        if not reason:
            result.skipped = "no drift and no new data since production"
            result.stale = stale(config, registry)
            return result
        result.add("trigger", True, reason)
    steps: list[Callable[[Config, Registry, Release], bool]] = [
        _validate,
        _train,
        _gate,
        _register,
        _stage,
        _smoke,
        _promote,
    ]
    for step in steps:
        if not step(config, registry, result) or result.unchanged:
            break
    return result


def _validate(config: Config, registry: Registry, result: Release) -> bool:
    from mlci.pipeline._data import format_problems

    report = validate(
        config.data, load_manifest(config.manifest), display=config.relative(config.data)
    )
    detail = f"{report.rows} rows" if report.ok else format_problems(report)
    return result.add("validate", report.ok, detail)


def _train(config: Config, registry: Registry, result: Release) -> bool:
    trained = result.trained = train(config)
    if result.after_training is not None:
        result.after_training(trained)
    detail = "up to date (cached)" if trained.up_to_date else "trained"
    return result.add("train", True, f"{detail}, {headline_text(trained.metrics, ', ')}")


def _gate(config: Config, registry: Registry, result: Release) -> bool:
    trained = result.trained
    assert trained is not None, "the train step runs before the gate"
    python = minor_of(trained.lineage.get("python", ""))
    reference = gate_reference(config, python, trained.lineage["data"], registry)
    verdict = judge(config, trained.metrics, reference)
    failures = "; ".join(check.describe() for check in verdict.failures)
    detail = f"against {verdict.reference or 'the floors only'}" + (
        f": {failures}" if failures else ""
    )
    return result.add("gate", verdict.passed, detail)


def _register(config: Config, registry: Registry, result: Release) -> bool:
    registered = registry.register(config)
    version = registered.version
    result.version = version.number
    if not registered.created:
        if result.production_before == version.number:
            result.unchanged = True
            return result.add(
                "register", True, f"unchanged: version {version.number} is already production"
            )
        undone = rolled_back(registry.history(PRODUCTION), PRODUCTION, version.number)
        if undone is not None:
            return result.add(
                "register",
                False,
                f"version {version.number} was rolled back from production at {undone.time} "
                f"({undone.reason or 'no reason given'}); not releasing it again: change the "
                f"inputs, or promote it by hand with 'mlci registry promote {version.number} "
                "--to production'",
            )
    verb = "registered" if registered.created else "already registered as"
    return result.add("register", True, f"{verb} version {version.number}")


def _stage(config: Config, registry: Registry, result: Release) -> bool:
    assert result.version is not None
    registry.promote(result.version, STAGING_ALIAS, "release: gate passed")
    return result.add("stage", True, f"staging -> version {result.version}")


def _smoke(config: Config, registry: Registry, result: Release) -> bool:
    # This release's version, not whatever staging holds now: a concurrent release may have
    # staged its own since.
    assert result.version is not None
    version = registry.get(result.version)
    try:
        mismatches = smoke_test(config, registry, version)
    except MlciError as error:
        return result.add("smoke test", False, str(error))
    if mismatches:
        return result.add("smoke test", False, "; ".join(mismatches))
    return result.add("smoke test", True, "loaded, verified, reproduced its held-out predictions")


def _promote(config: Config, registry: Registry, result: Release) -> bool:
    assert result.version is not None
    before = result.production_before
    try:  # only while production is the version the gate compared against
        registry.promote(
            result.version, PRODUCTION, "release: gate and smoke test passed", expect=before
        )
    except MlciError as error:
        return result.add("promote", False, str(error))
    detail = f"production -> version {result.version}" + (
        f" (was {before})" if before is not None else ""
    )
    return result.add("promote", True, detail)


def smoke_test(config: Config, registry: Registry, version: Version) -> list[str]:
    """Load and verify a version, predict its held-out rows, compare with what it recorded."""
    model = registry.load_model(version, config.skops_trusted, model_format=config.model_format)
    predictions = Artifacts(Path()).predictions.name
    recorded: dict[str, Any] = json.loads(registry.read_file(version, predictions))
    manifest = registry.manifest(version)
    table = read_file(
        registry.read_file(version, DATA), manifest, display=registry.describe(version, DATA)
    )
    rows = model_input(held_out_features(recorded, table), manifest.features)
    with model_threads(config):
        predicted = outputs(model.predict(rows), manifest.task)
        problems = not_finite(predicted, recorded["lines"]) if manifest.task == REGRESSION else []
        problems += [
            f"line {line}: predicted {new}, recorded {old}"
            for line, old, new in zip(recorded["lines"], recorded["predicted"], predicted)
            if old != new and not (isinstance(new, float) and not math.isfinite(new))
        ]
        problems = _shortened(problems)
        return problems + unstable(model, rows, recorded["lines"])


SHOWN_PROBLEMS = 5


def _shortened(problems: list[str]) -> list[str]:
    """The first few problems and a count of the rest: a release report stays readable."""
    if len(problems) <= SHOWN_PROBLEMS:
        return problems
    return [*problems[:SHOWN_PROBLEMS], f"and {len(problems) - SHOWN_PROBLEMS} more rows"]


def not_finite(predicted: list[float], lines: list[int]) -> list[str]:
    """Rows a regressor predicts NaN or infinity for: a model no one should serve."""
    return [
        f"line {line}: predicted {value}, not a finite number"
        for line, value in zip(lines, predicted)
        if not math.isfinite(value)
    ]


def unstable(model: Any, rows: Any, lines: list[int]) -> list[str]:
    """Rows whose class probabilities are NaN or infinite: a model no one should serve."""
    import numpy as np

    if not hasattr(model, "predict_proba"):
        return []
    with np.errstate(all="ignore"):
        probabilities = np.asarray(model.predict_proba(rows), dtype=np.float64)
    bad = ~np.isfinite(probabilities).all(axis=1)
    return [
        f"line {line}: probabilities not finite ({', '.join(f'{p:g}' for p in row)})"
        for line, row in zip(np.asarray(lines)[bad], probabilities[bad])
    ]


def section(result: Release) -> Section:
    """The release's report section: the headline, then each step that ran."""
    before = result.production_before
    production = "none" if before is None else f"version {before}"
    if result.stale:
        headline = f"production is too old: {result.stale}"
    elif result.skipped:
        headline = f"nothing to release: {result.skipped} (production: {production})"
    elif result.unchanged:
        headline = f"unchanged: version {result.version} is already production"
    elif result.passed:
        headline = f"released version {result.version} to production (was {production})"
    else:
        failed = next(step for step in result.steps if not step.passed)
        headline = f"release stopped at '{failed.name}': production stays at {production}"
    return Section(
        f"Release: {headline}",
        header=("step", "result", "detail"),
        rows=tuple(map(tuple, rows(result))),
        headline=headline,
    )


def rows(result: Release) -> list[list[str]]:
    """One row per step, for the terminal and the CI summary."""
    return [[step.name, "pass" if step.passed else "FAIL", step.detail] for step in result.steps]
