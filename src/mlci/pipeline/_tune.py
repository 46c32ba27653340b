"""Hyperparameter tuning: are the configured params as good as the best of a grid?

``mlci tune`` cross-validates every point of ``[tool.mlci.tune] grid`` (scikit-learn's
``GridSearchCV``) on the training rows of the pipeline's own split, so the held-out rows the gate
judges stay unseen. It scores the configured params on the same folds, and fails when they trail
the best point by more than ``tolerance``: the config is where tuning's result must land.

A classifier is judged by accuracy or macro-F1 (stratified folds), a regressor by R², RMSE, MAE
or max error (plain folds). For an error, lower is better and ``tolerance`` is a share of the
best point's error (0.01: within 1 %); for a score, it is an absolute difference.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from mlci._report import Section
from mlci.errors import MlciError
from mlci.pipeline._config import (
    SCORED,
    SCORING,
    Config,
    EstimatorSpec,
    TuneConfig,
    build_estimator,
)
from mlci.pipeline._prepare import model_input
from mlci.pipeline._task import REGRESSION, greater_is_better
from mlci.pipeline._train import model_threads, split, target_array

RESULTS = "tune.json"  # in the artifacts folder: every point's score, the verdict
SHOWN = 10  # the report's table: the best points, and the configured params


@dataclasses.dataclass(frozen=True)
class Point:
    """One set of params and its cross-validated score."""

    params: dict[str, Any]
    mean: float
    std: float


@dataclasses.dataclass(frozen=True)
class Tuning:
    """The configured params against the grid's best, on the same folds."""

    settings: TuneConfig
    configured: Point
    points: list[Point]
    metric: str = "accuracy"  # the metric's own value in each point: an error stays positive

    @property
    def greater(self) -> bool:
        """True when a higher value is better (accuracy, R²), False for an error."""
        return greater_is_better(self.metric)

    @property
    def best(self) -> Point:
        """The grid's best point (the first of equals, in grid order)."""
        if self.greater:
            return max(self.points, key=lambda point: point.mean)
        return min(self.points, key=lambda point: point.mean)

    @property
    def passed(self) -> bool:
        """True when the configured params trail the best by no more than the tolerance."""
        best, tolerance = self.best.mean, self.settings.tolerance
        if self.greater:
            return self.configured.mean >= best - tolerance - 1e-12
        return self.configured.mean <= best + tolerance * abs(best) + 1e-12


def tune(config: Config, settings: TuneConfig, table: Any) -> Tuning:
    """Cross-validate the configured params and every grid point on the training rows.

    With ``[tool.mlci] threads`` OpenMP and BLAS threads, as training fits: a grid of
    ``HistGradientBoosting*`` scores the same everywhere, and two sessions side by side do not
    fight over every core.
    """
    build_estimator(config.estimator)  # loads the OpenMP and BLAS libraries the limit reaches
    with model_threads(config):
        return _tune(config, settings, table)


def _tune(config: Config, settings: TuneConfig, table: Any) -> Tuning:
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    assert table.labels is not None
    spec = config.estimator
    task = config.task
    metric = settings.metric_for(task)
    if metric not in SCORED[task]:
        raise MlciError(
            f"[tool.mlci.tune] metric: '{metric}' does not judge a {task} model; use one of "
            f"{', '.join(SCORED[task])}"
        )
    where = "[tool.mlci.tune] grid"
    for name in settings.grid:  # each name and value refused before any fitting, by field
        for value in settings.grid[name]:
            build_estimator(_with(spec, {name: value}), f"{where}.{name}")
    features = model_input(table.features, table.columns)
    labels = target_array(table.labels, task)
    train_rows, _ = split(config, labels, task)  # the held-out rows stay unseen
    x, y = features[train_rows], labels[train_rows]
    kind = KFold if task == REGRESSION else StratifiedKFold
    folds = kind(settings.folds, shuffle=True, random_state=config.seed)
    try:
        list(folds.split(x, y))  # too few rows of a label for the folds: said before fitting
    except ValueError as exc:
        raise MlciError(f"[tool.mlci.tune] folds: {exc}") from None
    scoring = SCORING[metric]
    sign = 1.0 if greater_is_better(metric) else -1.0  # scikit-learn negates errors

    def cross_validated(params: dict[str, Any]) -> Point:
        estimator = build_estimator(
            _with(spec, params), columns=table.columns, prepare=config.prepare
        )
        try:
            scores = cross_val_score(
                estimator, x, y, cv=folds, scoring=scoring, error_score="raise"
            )
        except (TypeError, ValueError) as exc:  # scikit-learn checks param values when fitting
            shown = ", ".join(f"{name} = {_toml(value)}" for name, value in params.items())
            raise MlciError(f"{where}: fitting {spec.name} with {shown} failed: {exc}") from None
        scores = sign * scores
        return Point(params, round(float(scores.mean()), 6), round(float(scores.std()), 6))

    names = list(settings.grid)
    configured = {name: spec.params.get(name, _default(spec, name)) for name in names}
    points = [
        cross_validated(dict(zip(names, values)))
        for values in itertools.product(*(settings.grid[name] for name in names))
    ]
    return Tuning(settings, cross_validated(configured), points, metric)


def _with(spec: EstimatorSpec, params: dict[str, Any]) -> EstimatorSpec:
    """The spec with the classifier's (last step's) params updated."""
    last = dataclasses.replace(spec.steps[-1], params={**spec.steps[-1].params, **params})
    return EstimatorSpec((*spec.steps[:-1], last))


def _default(spec: EstimatorSpec, name: str) -> Any:
    """The estimator's own default for a param the config leaves unset."""
    from mlci.pipeline._config import _build_step

    return _build_step(spec.steps[-1], "[tool.mlci.estimator]").get_params(deep=False).get(name)


def to_dict(tuning: Tuning) -> dict[str, Any]:
    """Plain JSON: the settings, the configured point, the best, and every point."""
    point = dataclasses.asdict
    return {
        "passed": tuning.passed,
        "metric": tuning.metric,
        "folds": tuning.settings.folds,
        "tolerance": tuning.settings.tolerance,
        "configured": point(tuning.configured),
        "best": point(tuning.best),
        "points": [point(p) for p in tuning.points],
    }


def advice(tuning: Tuning) -> str:
    """What to change in the config when the configured params lose."""
    best = ", ".join(f"{name} = {_toml(value)}" for name, value in tuning.best.params.items())
    tolerance = tuning.settings.tolerance
    trail = (
        f"more than {tolerance:g} below" if tuning.greater else f"more than {tolerance:.0%} above"
    )
    return (
        f"the configured params score {tuning.configured.mean:.4f} {tuning.metric} in "
        f"{tuning.settings.folds}-fold cross-validation, {trail} the grid's best "
        f"{tuning.best.mean:.4f}: set {best} in [tool.mlci.estimator] params, or widen "
        "[tool.mlci.tune] tolerance"
    )


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def section(config: Config, tuning: Tuning) -> Section:
    """The report's section: the best points and the configured params, with their scores."""
    result = "passed" if tuning.passed else "FAILED"
    names = list(tuning.settings.grid)
    ranked = sorted(tuning.points, key=lambda point: -point.mean if tuning.greater else point.mean)
    ranked = ranked[:SHOWN]
    rows = [
        [*(_toml(p.params[n]) for n in names), f"{p.mean:.4f}", f"{p.std:.4f}", ""] for p in ranked
    ]
    configured = tuning.configured
    rows.append(
        [
            *(_toml(configured.params[n]) for n in names),
            f"{configured.mean:.4f}",
            f"{configured.std:.4f}",
            "**configured**",
        ]
    )
    notes = () if tuning.passed else (f"FAILED: {advice(tuning)}",)
    return Section(
        f"Tuning: {result}",
        (
            f"{config.estimator.name}: {len(tuning.points)} grid points, "
            f"{tuning.settings.folds}-fold cross-validated {tuning.metric} on the "
            f"training rows only; the configured params may trail the best by "
            + (
                f"{tuning.settings.tolerance:g}"
                if tuning.greater
                else f"{tuning.settings.tolerance:.0%} of its {tuning.metric}"
            ),
        ),
        (*names, f"mean {tuning.metric}", "std", ""),
        tuple(map(tuple, rows)),
        notes,
        headline=f"tuning {result}: configured {configured.mean:.4f}, best {tuning.best.mean:.4f}",
    )
