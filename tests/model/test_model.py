"""The model's checks: about whatever model `[tool.mlci]` configures, on whatever data it names.

`mlci init` wrote them; they are the project's to extend. Nothing here names a data set, a
column, a label or an estimator: every expectation comes from the project's config, manifest and
baseline, so they hold for your model as they do for the sample. mlci's own tests run where mlci
is made, never in a project.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mlci.pipeline import (
    REGRESSION,
    Config,
    Fitted,
    check_baseline,
    fit,
    load_config,
    load_data,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config() -> Config:
    """This repository's `[tool.mlci]`."""
    return load_config(ROOT)


@pytest.fixture(scope="module")
def fitted(config: Config) -> Fitted:
    """The configured estimator, fitted on the configured data's training split, in memory."""
    return fit(config, *load_data(config))


def test_this_python_reproduces_the_committed_baseline(config: Config) -> None:
    """The proof that CI on another machine gets what the developer got, per Python."""
    problems = check_baseline(config)
    assert not problems, "\n".join(problems)


def test_held_out_metrics_meet_every_gate_floor_and_ceiling(config: Config, fitted: Fitted) -> None:
    for metric, floor in sorted(config.gate.floors.items()):
        assert metric in fitted.metrics, f"the gate names '{metric}', which training never computes"
        assert fitted.metrics[metric] >= floor, f"{metric} {fitted.metrics[metric]:.4f} < {floor}"
    for metric, ceiling in sorted(config.gate.ceilings.items()):
        assert metric in fitted.metrics, f"the gate names '{metric}', which training never computes"
        value = fitted.metrics[metric]
        assert value <= ceiling, f"{metric} {value:.4f} > {ceiling}"


def test_predictions_are_known_labels_or_finite_numbers(config: Config, fitted: Fitted) -> None:
    manifest, _ = load_data(config)
    predicted = fitted.predictions["predicted"]
    if manifest.task == REGRESSION:
        assert all(math.isfinite(float(value)) for value in predicted)
    else:
        assert set(predicted) <= set(manifest.target_column.labels)


def test_probabilities_are_finite_and_sum_to_one(config: Config, fitted: Fitted) -> None:
    if not hasattr(fitted.estimator, "predict_proba"):
        pytest.skip(f"{config.estimator.class_path} has no predict_proba")
    _, table = load_data(config)
    for row in fitted.estimator.predict_proba(table.features[:200]):
        assert all(math.isfinite(float(p)) for p in row)
        assert math.isclose(float(sum(row)), 1.0, abs_tol=1e-6)


def test_retraining_with_the_same_seed_gives_the_same_predictions(
    config: Config, fitted: Fitted
) -> None:
    again = fit(config, *load_data(config))
    assert again.predictions["sha256"] == fitted.predictions["sha256"]
