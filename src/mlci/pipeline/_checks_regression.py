"""Behavioural checks of a regressor: tolerances where a classifier's checks compare labels.

The same file and the same four kinds as a classifier's (``_checks``), with what a number needs:
an example's prediction must fall in a range (``min``/``max``); invariance lets a prediction move
by ``abs_tol`` or ``rel_tol`` of itself (Giskard's ``output_sensitivity``) on a share of the
rows; directional asks a rise (or a fall) of at least ``min_delta``; a slice has a floor or a
ceiling on one of the regression metrics. Always on: every prediction is a finite number, and
retraining with the same seed gives the same predictions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlci._settings import get, reject_unknown
from mlci.errors import MlciError
from mlci.pipeline._checks import (
    Condition,
    HeldOut,
    Outcome,
    _condition,
    _escape,
    _key,
    _moved,
    _slice_example,
    _toml,
    _where,
    entries_of,
    example_row,
    min_share,
    numeric_column,
)
from mlci.pipeline._columns import INTEGER, NUMERIC
from mlci.pipeline._data import Manifest, Table
from mlci.pipeline._regression import regression_metrics

SLICE_METRICS = ("r2", "rmse", "mae", "max_error", "mape")


@dataclasses.dataclass(frozen=True)
class Example:
    """Minimum functionality: a row, and the range its prediction must fall in."""

    name: str
    row: dict[str, Any]
    low: float | None
    high: float | None

    def expected(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in [{self.low:g}, {self.high:g}]"
        return f">= {self.low:g}" if self.low is not None else f"<= {self.high:g}"

    def holds(self, value: float) -> bool:
        return (
            math.isfinite(value)
            and (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
        )


@dataclasses.dataclass(frozen=True)
class Invariance:
    """Moving ``column`` by ``delta`` moves each prediction by at most the tolerance."""

    column: str
    delta: float
    relative: bool
    abs_tol: float
    rel_tol: float
    min_share: float


@dataclasses.dataclass(frozen=True)
class Directional:
    """Raising ``column`` by ``increase`` moves the prediction up (or down) by ``min_delta``."""

    column: str
    increase: float
    direction: str  # "up" or "down"
    min_delta: float
    min_share: float


@dataclasses.dataclass(frozen=True)
class Slice:
    """A floor (``min``) or a ceiling (``max``) on a metric over the rows meeting ``where``."""

    name: str
    metric: str
    low: float | None
    high: float | None
    where: Condition | None


@dataclasses.dataclass(frozen=True)
class RegressionChecks:
    """Every declared check of a regressor."""

    path: Path | None
    examples: tuple[Example, ...] = ()
    invariance: tuple[Invariance, ...] = ()
    directional: tuple[Directional, ...] = ()
    slices: tuple[Slice, ...] = ()


def load(path: Path, document: dict[str, Any], manifest: Manifest) -> RegressionChecks:
    """Parse a regressor's checks file: every column must exist, every tolerance make sense."""
    kinds = {column.name: column for column in manifest.features}

    def entries(kind: str) -> list[tuple[str, dict[str, Any]]]:
        return entries_of(document, path, kind)

    def column(entry: dict[str, Any], where: str) -> str:
        return numeric_column(entry, where, manifest)

    def share(entry: dict[str, Any], where: str) -> float:
        return min_share(entry, where)

    def bounds(entry: dict[str, Any], where: str) -> tuple[float | None, float | None]:
        low = get(entry, "min", float, where) if "min" in entry else None
        high = get(entry, "max", float, where) if "max" in entry else None
        if low is None and high is None:
            raise MlciError(f"{where}: give 'min', 'max' or both: the range the value must meet")
        if low is not None and high is not None and low > high:
            raise MlciError(f"{where}: min {low:g} is above max {high:g}")
        return low, high

    examples: list[Example] = []
    for where, entry in entries("examples"):
        if "label" in entry:
            raise MlciError(
                f"{where} label: the target is a number: give the range its prediction must "
                "fall in with 'min' and 'max' instead"
            )
        reject_unknown(entry, {"name", "row", "min", "max"}, where)
        values = example_row(entry, where, manifest)
        name = get(entry, "name", str, where, default=f"example {len(examples) + 1}")
        examples.append(Example(name, values, *bounds(entry, where)))

    invariance: list[Invariance] = []
    for where, entry in entries("invariance"):
        reject_unknown(
            entry, {"column", "delta", "relative", "abs_tol", "rel_tol", "min_share"}, where
        )
        if ("delta" in entry) == ("relative" in entry):
            raise MlciError(f"{where}: give either 'delta' (absolute) or 'relative', not both")
        if "abs_tol" not in entry and "rel_tol" not in entry:
            raise MlciError(
                f"{where}: give 'abs_tol' and/or 'rel_tol': how far a prediction may move "
                "(a number never stays exactly the same)"
            )
        relative = "relative" in entry
        abs_tol = get(entry, "abs_tol", float, where, default=0.0)
        rel_tol = get(entry, "rel_tol", float, where, default=0.0)
        if min(abs_tol, rel_tol) < 0:
            raise MlciError(f"{where}: abs_tol and rel_tol must be 0 or more")
        invariance.append(
            Invariance(
                column(entry, where),
                get(entry, "relative" if relative else "delta", float, where),
                relative,
                abs_tol,
                rel_tol,
                share(entry, where),
            )
        )

    directional: list[Directional] = []
    for where, entry in entries("directional"):
        if "label" in entry:
            raise MlciError(
                f"{where} label: the target is a number: say 'direction' (up or down) and "
                "'min_delta' instead"
            )
        reject_unknown(entry, {"column", "increase", "direction", "min_delta", "min_share"}, where)
        direction = get(entry, "direction", str, where, default="up")
        if direction not in ("up", "down"):
            raise MlciError(f"{where} direction: must be 'up' or 'down', got '{direction}'")
        min_delta = get(entry, "min_delta", float, where, default=0.0)
        if min_delta < 0:
            raise MlciError(f"{where} min_delta: must be 0 or more (direction says which way)")
        directional.append(
            Directional(
                column(entry, where),
                get(entry, "increase", float, where),
                direction,
                min_delta,
                share(entry, where),
            )
        )

    slices: list[Slice] = []
    for where, entry in entries("slices"):
        if "label" in entry:
            raise MlciError(f"{where} label: the target is a number: slice rows with 'where'")
        reject_unknown(entry, {"name", "where", "metric", "min", "max"}, where)
        metric = get(entry, "metric", str, where)
        if metric not in SLICE_METRICS:
            raise MlciError(f"{where} metric: must be one of {', '.join(SLICE_METRICS)}")
        low, high = bounds(entry, where)
        condition = None
        if "where" in entry:
            condition = _condition(get(entry, "where", str, where), kinds, where)
        title = get(entry, "name", str, where, default=str(condition or "every held-out row"))
        slices.append(Slice(title, metric, low, high, condition))
    return RegressionChecks(
        path, tuple(examples), tuple(invariance), tuple(directional), tuple(slices)
    )


def run(
    model: Any,
    checks: RegressionChecks,
    manifest: Manifest,
    rows: HeldOut,
    x: Any,
    predicted: list[float],
) -> list[Outcome]:
    """The declared checks of a regressor, after the always-on ones the caller ran."""
    from mlci.pipeline._prepare import model_input

    features = [column.name for column in manifest.features]
    outcomes = []
    for example in checks.examples:
        one = model_input([[example.row[n] for n in features]], manifest.features)
        got = float(model.predict(one)[0])
        outcomes.append(
            Outcome("example", example.name, example.holds(got), example.expected(), f"{got:.6g}")
        )
    for invariance in checks.invariance:
        outcomes.append(
            _invariance(model, x, predicted, features.index(invariance.column), invariance, rows)
        )
    for directional in checks.directional:
        outcomes.append(
            _directional(model, x, predicted, features.index(directional.column), directional, rows)
        )
    for floor in checks.slices:
        outcomes.append(_slice(floor, rows, predicted, features))
    return outcomes


def finite(predicted: Sequence[float]) -> Outcome:
    """Always on: a regressor never answers NaN or infinity."""
    bad = sum(1 for value in predicted if not math.isfinite(value))
    return Outcome(
        "always", "finite predictions", bad == 0, "0 rows with NaN or infinity", f"{bad} rows"
    )


def _invariance(
    model: Any, x: Any, predicted: list[float], column: int, check: Invariance, rows: HeldOut
) -> Outcome:
    import numpy as np

    base = np.asarray(predicted, dtype=np.float64)
    allowed = np.maximum(check.abs_tol, check.rel_tol * np.abs(base))
    moved = [
        np.asarray(model.predict(_moved(x, column, sign * check.delta, check.relative)), float)
        for sign in (1, -1)
    ]
    worst = np.maximum(np.abs(moved[0] - base), np.abs(moved[1] - base))
    changed = [int(i) for i in (worst > allowed + 1e-12).nonzero()[0]]
    share = 1 - len(changed) / len(base) if len(base) else 1.0
    amount = f"{check.delta:.0%}" if check.relative else f"{check.delta:g}"
    tolerance = " or ".join(
        part
        for part in (
            f"{check.abs_tol:g}" if check.abs_tol else "",
            f"{check.rel_tol:.0%} of the prediction" if check.rel_tol else "",
        )
        if part
    )
    return Outcome(
        "invariance",
        f"{check.column} ±{amount}",
        share >= check.min_share,
        f"predictions move ≤ {tolerance} for ≥ {check.min_share:.0%} of {len(base)} rows",
        f"{share:.1%} (largest move {float(worst.max()) if len(worst) else 0.0:.4g}"
        f"{_where(rows.lines, changed)})",
    )


def _directional(
    model: Any, x: Any, predicted: list[float], column: int, check: Directional, rows: HeldOut
) -> Outcome:
    import numpy as np

    after = np.asarray(model.predict(_moved(x, column, check.increase, False)), dtype=np.float64)
    change = after - np.asarray(predicted, dtype=np.float64)
    signed = change if check.direction == "up" else -change
    failed = [int(i) for i in (signed < check.min_delta - 1e-12).nonzero()[0]]
    share = 1 - len(failed) / len(change) if len(change) else 1.0
    name = f"{check.column} +{check.increase:g} moves the prediction {check.direction}"
    worst = float(signed.min()) if len(signed) else 0.0
    return Outcome(
        "directional",
        name,
        share >= check.min_share,
        f"{check.direction} by ≥ {check.min_delta:g} for ≥ {check.min_share:.0%} of rows",
        f"{share:.1%} ({len(failed)} rows did not, worst {worst:+.4g}{_where(rows.lines, failed)})",
    )


def _slice(floor: Slice, rows: HeldOut, predicted: list[float], features: list[str]) -> Outcome:
    kept = list(range(len(predicted)))
    if floor.where is not None:
        column = features.index(floor.where.column)
        kept = [i for i in kept if floor.where.holds(rows.features[i][column])]
    bound = " and ".join(
        part
        for part in (
            f"≥ {floor.low:g}" if floor.low is not None else "",
            f"≤ {floor.high:g}" if floor.high is not None else "",
        )
        if part
    )
    expected = f"{floor.metric} {bound}"
    truth = [float(rows.expected[i]) for i in kept]
    metrics = regression_metrics(truth, [predicted[i] for i in kept], train_size=0)
    value = metrics.get(floor.metric)
    if value is None:
        got = "no held-out rows in the slice" if not kept else f"{floor.metric} is undefined here"
        return Outcome("slice", floor.name, False, expected, got)
    passed = (floor.low is None or value >= floor.low) and (
        floor.high is None or value <= floor.high
    )
    return Outcome("slice", floor.name, passed, expected, f"{value:.4f} on {len(kept)} rows")


def starter(manifest: Manifest, table: Table) -> str:
    """A commented checks file for a regressor, written by ``data init``, that passes on its data.

    Examples: the complete rows nearest the target's 25th, 50th and 75th percentiles, each
    asked to land within two standard deviations of the target of its true value (wide: it
    catches a wrong scale, a sign or a broken pipeline, not a weak model). Invariance: each
    numeric column moved by 1 % of its range, predictions moving by at most a quarter of the
    target's standard deviation (a tree ensemble steps where a line glides), on 90 % of the rows.
    """
    import numpy as np

    columns = manifest.features
    features = [column.name for column in columns]
    numeric = [i for i, column in enumerate(columns) if column.kind in (NUMERIC, INTEGER)]
    complete = [i for i, row in enumerate(table.features) if None not in row]
    y = np.asarray([float(table.labels[i]) for i in complete] if table.labels else [], float)
    spread = float(y.std()) if len(y) else 1.0
    spread = spread or 1.0
    x = np.asarray(
        [[table.features[i][j] for j in numeric] for i in complete], dtype=np.float64
    ).reshape(len(complete), len(numeric))
    target = manifest.target_column
    lines = [
        f"# Behavioural checks of the regressor trained on {Path(manifest.file).name}.",
        "# `mlci check` (the `check` session, part of `make ci`) runs them against the trained",
        "# model. Written by `mlci data init` from the data: review them, keep what your model",
        "# must do, tighten the ranges, add more.",
        "",
        f"# Minimum functionality: a row, and the range its predicted {target.name} must fall in",
        f"# (here its true value ± 2 standard deviations of {target.name}, {2 * spread:.4g}).",
    ]
    chosen: list[int] = []
    for quantile in (0.25, 0.5, 0.75):
        if not len(y):
            break
        k = int(np.argmin(np.abs(y - np.quantile(y, quantile))))
        if k in chosen:
            continue
        chosen.append(k)
        row = table.features[complete[k]]
        values = ", ".join(f"{_key(n)} = {_toml(v)}" for n, v in zip(features, row))
        low, high = _round(y[k] - 2 * spread), _round(y[k] + 2 * spread)
        if target.min is not None:  # never below what the target can be (0 for a count)
            low = max(low, target.min)
        lines += [
            "[[examples]]",
            f'name = "a row near the {int(quantile * 100)}th percentile of {_escape(target.name)}"',
            f"row = {{ {values} }}",
            f"min = {low!r}",
            f"max = {high!r}",
            "",
        ]
    tolerance = _round(0.25 * spread)
    lines += [
        "# Invariance: moving one numeric column by a small amount (1 % of its range here) moves",
        f"# the prediction by at most abs_tol ({tolerance!r}: a quarter of the target's standard",
        "# deviation) or rel_tol of itself, for at least `min_share` of the held-out rows.",
    ]
    for position, j in enumerate(numeric):
        values_seen = x[:, position]
        reach = float(values_seen.max() - values_seen.min()) if len(values_seen) else 1.0
        delta = float(f"{0.01 * (reach or 1.0):.2g}")
        lines += [
            "[[invariance]]",
            f'column = "{_escape(features[j])}"',
            f"delta = {delta!r}",
            f"abs_tol = {tolerance!r}",
            "min_share = 0.9",
            "",
        ]
    first = features[numeric[0]] if numeric else "<a numeric column>"
    lines += [
        "# Directional: raising a column must move the prediction up (or down) by min_delta, e.g.",
        "# [[directional]]",
        f'# column = "{_escape(first)}"',
        "# increase = 1.0",
        '# direction = "up"',
        "# min_delta = 0.0",
        "# min_share = 0.9",
        "",
        "# Slices: a floor (min) or a ceiling (max) on r2, rmse, mae, max_error or mape, for the",
        "# rows meeting a condition (or every held-out row without one), e.g.",
        "# [[slices]]",
        f"# where = {_slice_example(columns, numeric, x)}",
        '# metric = "mae"',
        f"# max = {_round(spread)!r}",
    ]
    return "\n".join(lines) + "\n"


def _round(value: float) -> float:
    """Four significant digits: a reviewed file reads short."""
    return float(f"{value:.4g}")
