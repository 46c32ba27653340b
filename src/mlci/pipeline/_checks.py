"""Behavioural checks of the trained model (CheckList: Ribeiro et al. 2020), for any classifier.

Declared in a reviewed TOML file next to the data (``data/<name>.checks.toml``, or
``[tool.mlci] checks``): minimum functionality (named rows and the label they must get),
invariance (a small change of one column keeps the labels), directional expectations (raising a
column does not lower a class's probability) and slices (a floor per class or per subset of
rows). Three checks need no file: predictions are known labels, probabilities are finite, and
retraining with the same seed gives the same predictions.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlci._io import atomic_write_json, finite_float, read_json
from mlci._report import Section
from mlci._settings import get, read_toml, reject_unknown
from mlci.errors import MlciError
from mlci.pipeline._columns import CATEGORICAL, INTEGER, NUMERIC, Column, read_value
from mlci.pipeline._config import Config
from mlci.pipeline._data import Manifest, Table
from mlci.pipeline._prepare import model_input
from mlci.pipeline._stage import Artifacts
from mlci.pipeline._task import REGRESSION
from mlci.pipeline._train import fit, held_out_features, load_data, model_threads

RESULTS = "checks.json"
SLICE_METRICS = ("recall", "precision", "f1", "accuracy")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CONDITION = re.compile(
    r"^\s*(?P<column>[^\s<>=!]+)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?:'(?P<single>[^']*)'|\"(?P<double>[^\"]*)\"|(?P<value>\S+))\s*$"
)


@dataclasses.dataclass(frozen=True)
class Example:
    """Minimum functionality: a row and the label it must get."""

    name: str
    label: str
    row: dict[str, Any]  # every feature: a number, a category, or None (missing)


@dataclasses.dataclass(frozen=True)
class Invariance:
    """Moving ``column`` by ``delta`` (absolute, or relative to each value) keeps the labels."""

    column: str
    delta: float
    relative: bool
    min_share: float


@dataclasses.dataclass(frozen=True)
class Directional:
    """Raising ``column`` by ``increase`` does not lower the probability of ``label``."""

    column: str
    increase: float
    label: str
    tolerance: float
    min_share: float


@dataclasses.dataclass(frozen=True)
class Condition:
    """``column <op> value``: which held-out rows a slice keeps."""

    column: str
    op: str
    value: float | str  # a number, or a category (== and != only)

    def __str__(self) -> str:
        if isinstance(self.value, str):
            return f"{self.column} {self.op} '{self.value}'"
        return f"{self.column} {self.op} {self.value:g}"

    def holds(self, value: Any) -> bool:
        """True when a row's value meets the condition; a missing value never does."""
        return value is not None and _OPERATORS[self.op](value, self.value)


@dataclasses.dataclass(frozen=True)
class Slice:
    """A floor on ``metric`` for one class, or for the rows that meet ``where``."""

    name: str
    metric: str
    minimum: float
    label: str | None = None
    where: Condition | None = None


@dataclasses.dataclass(frozen=True)
class CheckFile:
    """Every declared check."""

    path: Path | None
    examples: tuple[Example, ...] = ()
    invariance: tuple[Invariance, ...] = ()
    directional: tuple[Directional, ...] = ()
    slices: tuple[Slice, ...] = ()


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One check's verdict: what was expected and what the model did."""

    kind: str
    name: str
    passed: bool
    expected: str
    got: str

    def describe(self) -> str:
        """One line for a failure."""
        return f"{self.kind} '{self.name}': expected {self.expected}, got {self.got}"


def checks_path(config: Config) -> Path:
    """``[tool.mlci] checks``, else ``<data stem>.checks.toml`` next to the data.

    The default file is optional; a file the config names must exist.
    """
    if config.checks is not None and not config.checks.exists():
        raise MlciError(
            f"{config.pyproject}: [tool.mlci] checks: {config.relative(config.checks)} not found"
        )
    return config.checks or config.data.with_name(f"{config.data.stem}.checks.toml")


def load_checks(path: Path, manifest: Manifest) -> Any:
    """Parse and check the file against the manifest: every column and label must exist.

    A regressor's file has the same kinds with tolerances (``_checks_regression``).
    """
    if not path.exists():
        return CheckFile(None)
    document = read_toml(path)
    reject_unknown(document, {"examples", "invariance", "directional", "slices"}, str(path))
    if manifest.task == REGRESSION:
        from mlci.pipeline import _checks_regression

        return _checks_regression.load(path, document, manifest)
    kinds = {column.name: column for column in manifest.features}
    labels = list(manifest.target_column.labels)

    def entries(kind: str) -> list[tuple[str, dict[str, Any]]]:
        return entries_of(document, path, kind)

    def column(entry: dict[str, Any], where: str) -> str:
        return numeric_column(entry, where, manifest)

    def label(entry: dict[str, Any], where: str) -> str:
        value = entry.get("label")
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if text not in labels:
            raise MlciError(f"{where} label: {value!r} is not a label ({', '.join(labels)})")
        return text

    def share(entry: dict[str, Any], where: str, default: float) -> float:
        return min_share(entry, where, default)

    examples: list[Example] = []
    for where, entry in entries("examples"):
        reject_unknown(entry, {"name", "label", "row"}, where)
        expected = label(entry, where)
        values = example_row(entry, where, manifest)
        name = get(entry, "name", str, where, default=f"example {len(examples) + 1}")
        examples.append(Example(name, expected, values))

    invariance: list[Invariance] = []
    for where, entry in entries("invariance"):
        reject_unknown(entry, {"column", "delta", "relative", "min_share"}, where)
        if ("delta" in entry) == ("relative" in entry):
            raise MlciError(f"{where}: give either 'delta' (absolute) or 'relative', not both")
        relative = "relative" in entry
        amount = get(entry, "relative" if relative else "delta", float, where)
        invariance.append(
            Invariance(column(entry, where), amount, relative, share(entry, where, 1.0))
        )

    directional: list[Directional] = []
    for where, entry in entries("directional"):
        reject_unknown(entry, {"column", "increase", "label", "tolerance", "min_share"}, where)
        directional.append(
            Directional(
                column(entry, where),
                get(entry, "increase", float, where),
                label(entry, where),
                get(entry, "tolerance", float, where, default=0.0),
                share(entry, where, 1.0),
            )
        )

    slices: list[Slice] = []
    for where, entry in entries("slices"):
        reject_unknown(entry, {"name", "label", "where", "metric", "min"}, where)
        metric = get(entry, "metric", str, where)
        if metric not in SLICE_METRICS:
            raise MlciError(f"{where} metric: must be one of {', '.join(SLICE_METRICS)}")
        minimum = get(entry, "min", float, where)
        if ("label" in entry) == ("where" in entry):
            raise MlciError(f"{where}: give either 'label' (one class) or 'where' (a subset)")
        if "label" in entry:
            name = label(entry, where)
            slices.append(
                Slice(get(entry, "name", str, where, default=name), metric, minimum, name)
            )
            continue
        condition = _condition(get(entry, "where", str, where), kinds, where)
        if metric != "accuracy":
            raise MlciError(f"{where} metric: a 'where' slice takes accuracy")
        title = get(entry, "name", str, where, default=str(condition))
        slices.append(Slice(title, metric, minimum, where=condition))
    return CheckFile(path, tuple(examples), tuple(invariance), tuple(directional), tuple(slices))


def entries_of(document: dict[str, Any], path: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """The file's ``[[kind]]`` tables, each with where it is for messages."""
    found = get(document, kind, list, str(path), default=[])
    out = []
    for index, entry in enumerate(found, start=1):
        where = f"{path}: [[{kind}]] {index}"
        if not isinstance(entry, dict):
            raise MlciError(f"{where}: must be a table")
        out.append((where, entry))
    return out


def numeric_column(entry: dict[str, Any], where: str, manifest: Manifest) -> str:
    """The entry's ``column``: a feature, and numeric (invariance and directional move it)."""
    kinds = {column.name: column for column in manifest.features}
    name = get(entry, "column", str, where)
    if name not in kinds:
        raise MlciError(f"{where} column: '{name}' is not a feature ({', '.join(kinds)})")
    if kinds[name].kind not in (NUMERIC, INTEGER):
        raise MlciError(
            f"{where} column: '{name}' is {kinds[name].kind}; invariance and directional "
            "checks move numeric columns only (use examples or slices for the others)"
        )
    return name


def min_share(entry: dict[str, Any], where: str, default: float = 1.0) -> float:
    """The share of rows a check must hold for, between 0 and 1."""
    value = get(entry, "min_share", float, where, default=default)
    if not 0.0 <= value <= 1.0:
        raise MlciError(f"{where} min_share: must be between 0 and 1, got {value}")
    return value


def example_row(entry: dict[str, Any], where: str, manifest: Manifest) -> dict[str, Any]:
    """An example's ``row``: every feature (a column that may be missing may be left out),
    each value read as the data's."""
    features = manifest.features
    row = get(entry, "row", dict, where)
    names = [feature.name for feature in features]
    missing = [f.name for f in features if f.name not in row and not f.missing]
    unknown = sorted(set(row) - set(names))
    if missing or unknown:
        raise MlciError(
            f"{where} row: needs exactly the features; missing {missing or 'none'}, "
            f"unknown {unknown or 'none'}"
        )
    values = {}
    for feature in features:
        value, problem = read_value(row.get(feature.name), feature)
        if problem:
            raise MlciError(f"{where} row: {feature.name}: {problem}")
        values[feature.name] = value
    return values


def _condition(text: str, columns: dict[str, Column], where: str) -> Condition:
    match = _CONDITION.match(text)
    if match is None:
        raise MlciError(
            f"{where} where: '{text}' is not '<column> <op> <number>' or "
            "\"<column> == '<category>'\" (op: < <= > >= == !=)"
        )
    column = columns.get(match["column"])
    if column is None:
        raise MlciError(f"{where} where: '{match['column']}' is not a feature")
    quoted = match["single"] if match["single"] is not None else match["double"]
    if column.numeric:
        value = finite_float(match["value"]) if quoted is None else None
        if value is None:
            raise MlciError(
                f"{where} where: {column.name} is {column.kind}: compare it with a number"
            )
        return Condition(column.name, match["op"], value)
    category = quoted if quoted is not None else match["value"]
    if match["op"] not in ("==", "!="):
        raise MlciError(
            f"{where} where: {column.name} is categorical: use == or != with a category"
        )
    if category not in column.values:
        raise MlciError(
            f"{where} where: '{category}' is not a category of {column.name} "
            f"({', '.join(column.values)})"
        )
    return Condition(column.name, match["op"], category)


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """The held-out rows of the trained model, as recorded in predictions.json."""

    features: list[list[Any]]
    expected: list[Any]  # labels, or a regressor's true values
    predicted: list[Any]
    fingerprint: str
    lines: list[int]  # each row's line in the data file, for failures to point at


def held_out(config: Config, table: Table) -> HeldOut:
    """The rows the model was evaluated on, read back by their line numbers."""
    recorded = read_json(Artifacts.of(config).predictions, "predictions")
    return HeldOut(
        held_out_features(recorded, table),
        list(recorded["expected"]),
        list(recorded["predicted"]),
        str(recorded["sha256"]),
        [int(line) for line in recorded["lines"]],
    )


def run_checks(
    config: Config,
    model: Any,
    checks: Any,
    *,
    retrain: bool = True,
    data_sha256: str | None = None,
) -> list[Outcome]:
    """Every check, the always-on ones first; none stops the others.

    ``data_sha256``: the data's hash when the caller has it (the stage check computed it).
    """
    with model_threads(config):
        return _run_checks(config, model, checks, retrain=retrain, data_sha256=data_sha256)


def _run_checks(
    config: Config, model: Any, checks: Any, *, retrain: bool, data_sha256: str | None
) -> list[Outcome]:
    manifest, table = load_data(config, data_sha256)
    rows = held_out(config, table)
    features = [column.name for column in manifest.features]
    labels = list(manifest.target_column.labels)
    x = model_input(rows.features, manifest.features)
    regressor = manifest.task == REGRESSION
    if regressor:
        from mlci.pipeline import _checks_regression

        numbers = [float(p) for p in model.predict(x)]
        outcomes = [_checks_regression.finite(numbers)]
    else:
        predicted = [str(p) for p in model.predict(x)]
        outcomes = [_known_labels(predicted, labels), *_finite_probabilities(model, x)]
    if retrain:
        again = fit(config, manifest, table).predictions["sha256"]
        outcomes.append(
            Outcome(
                "always",
                "same seed, same predictions",
                again == rows.fingerprint,
                f"predictions {rows.fingerprint[:12]}",
                f"predictions {again[:12]}",
            )
        )
    if regressor:
        if checks.path is None:  # no file: the always-on checks alone
            return outcomes
        return outcomes + _checks_regression.run(model, checks, manifest, rows, x, numbers)
    for example in checks.examples:
        one = model_input([[example.row[n] for n in features]], manifest.features)
        got = str(model.predict(one)[0])
        outcomes.append(Outcome("example", example.name, got == example.label, example.label, got))
    for invariance in checks.invariance:
        column = features.index(invariance.column)
        outcomes.append(_invariance(model, x, predicted, column, invariance, rows.lines))
    for directional in checks.directional:
        column = features.index(directional.column)
        outcomes.append(_directional(model, x, column, directional, rows.lines))
    for floor in checks.slices:
        outcomes.append(_slice(floor, rows, predicted, features))
    return outcomes


def _known_labels(predicted: list[str], labels: list[str]) -> Outcome:
    unknown = sorted(set(predicted) - set(labels))
    return Outcome(
        "always",
        "known labels",
        not unknown,
        "only the manifest's labels",
        ", ".join(unknown) or "none other",
    )


def _finite_probabilities(model: Any, x: Any) -> list[Outcome]:
    if not hasattr(model, "predict_proba"):
        return []
    import numpy as np

    probabilities = np.asarray(model.predict_proba(x), dtype=np.float64)
    bad = int(np.sum(~np.isfinite(probabilities).all(axis=1)))
    return [
        Outcome(
            "always", "finite probabilities", bad == 0, "0 rows with NaN or infinity", f"{bad} rows"
        )
    ]


def _moved(x: Any, column: int, amount: float, relative: bool) -> Any:
    moved = x.copy()
    moved[:, column] = moved[:, column] * (1 + amount) if relative else moved[:, column] + amount
    return moved


def _where(lines: Sequence[int], found: Sequence[int], limit: int = 5) -> str:
    """Data-file lines of the rows a check flagged: the first few, and how many more."""
    if not found:
        return ""
    shown = ", ".join(str(lines[i]) for i in found[:limit])
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return f"; line{'s' if len(found) > 1 else ''} {shown}{more}"


def _invariance(
    model: Any, x: Any, predicted: list[str], column: int, check: Invariance, lines: list[int]
) -> Outcome:
    up = [str(p) for p in model.predict(_moved(x, column, check.delta, check.relative))]
    down = [str(p) for p in model.predict(_moved(x, column, -check.delta, check.relative))]
    changed = [i for i, (a, b, c) in enumerate(zip(predicted, up, down)) if not a == b == c]
    kept = len(predicted) - len(changed)
    share = kept / len(predicted) if predicted else 1.0
    amount = f"{check.delta:.0%}" if check.relative else f"{check.delta:g}"
    return Outcome(
        "invariance",
        f"{check.column} ±{amount}",
        share >= check.min_share,
        f"labels kept for ≥ {check.min_share:.0%} of {len(predicted)} rows",
        f"{share:.1%} ({len(changed)} rows changed{_where(lines, changed)})",
    )


def _directional(model: Any, x: Any, column: int, check: Directional, lines: list[int]) -> Outcome:
    name = f"{check.column} +{check.increase:g} raises P({check.label})"
    if not hasattr(model, "predict_proba"):
        return Outcome("directional", name, False, "an estimator with predict_proba", "none")
    classes = [str(c) for c in model.classes_]
    index = classes.index(check.label)
    before = model.predict_proba(x)[:, index]
    after = model.predict_proba(_moved(x, column, check.increase, False))[:, index]
    change = after - before
    dropped = [int(i) for i in (change < -check.tolerance).nonzero()[0]]
    held = len(change) - len(dropped)
    share = held / len(before) if len(before) else 1.0
    worst = float(change.min()) if len(change) else 0.0
    return Outcome(
        "directional",
        name,
        share >= check.min_share,
        f"no drop beyond {check.tolerance:g} for ≥ {check.min_share:.0%} of rows",
        f"{share:.1%} ({len(dropped)} rows dropped, worst {worst:+.3f}{_where(lines, dropped)})",
    )


def _slice(floor: Slice, rows: HeldOut, predicted: list[str], features: list[str]) -> Outcome:
    if floor.label is not None:
        label = floor.label
        tp = sum(1 for e, p in zip(rows.expected, predicted) if e == p == label)
        actual = sum(1 for e in rows.expected if e == label)
        chosen = sum(1 for p in predicted if p == label)
        recall = tp / actual if actual else math.nan
        precision = tp / chosen if chosen else math.nan
        value = {
            "recall": recall,
            "precision": precision,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "accuracy": recall,
        }[floor.metric]
        size = actual
    else:
        assert floor.where is not None
        column = features.index(floor.where.column)
        kept = [i for i, row in enumerate(rows.features) if floor.where.holds(row[column])]
        size = len(kept)
        value = (
            sum(1 for i in kept if rows.expected[i] == predicted[i]) / size if size else math.nan
        )
    if math.isnan(value):
        return Outcome(
            "slice",
            floor.name,
            False,
            f"{floor.metric} ≥ {floor.minimum:g}",
            "no held-out rows in the slice",
        )
    return Outcome(
        "slice",
        floor.name,
        value >= floor.minimum,
        f"{floor.metric} ≥ {floor.minimum:g}",
        f"{value:.4f} on {size} rows",
    )


HEADER = ["check", "name", "expected", "got", "result"]


def rows(outcomes: Sequence[Outcome]) -> list[list[str]]:
    """The report's table."""
    return [[o.kind, o.name, o.expected, o.got, "pass" if o.passed else "FAIL"] for o in outcomes]


def section(outcomes: Sequence[Outcome], source: str) -> Section:
    """The checks' report section: every outcome, then each failure in a sentence."""
    failed = [o for o in outcomes if not o.passed]
    verdict = "passed" if not failed else f"{len(failed)} FAILED"
    return Section(
        f"Model checks: {verdict}",
        (f"{len(outcomes)} checks ({source})",),
        tuple(HEADER),
        tuple(map(tuple, rows(outcomes))),
        tuple(f"FAILED: {o.describe()}" for o in failed),
        headline=f"model checks {verdict}: {len(outcomes)} checks ({source})",
    )


def save(config: Config, outcomes: Sequence[Outcome]) -> Path:
    """Write ``artifacts/checks.json``."""
    path = config.artifacts / RESULTS
    atomic_write_json(path, {"checks": [dataclasses.asdict(o) for o in outcomes]})
    return path


def starter(manifest: Manifest, table: Table) -> str:
    """A commented checks file for new data: real checks from the first commit, to review.

    One example per label (up to five): the complete row nearest its class's median on the
    numeric columns, the most typical one. One invariance check per numeric column, moving it by
    1 % of its observed range. A regressor's: ``_checks_regression.starter``.
    """
    import numpy as np

    if manifest.task == REGRESSION:
        from mlci.pipeline import _checks_regression

        return _checks_regression.starter(manifest, table)

    columns = manifest.features
    features = [column.name for column in columns]
    numeric = [i for i, column in enumerate(columns) if column.kind in (NUMERIC, INTEGER)]
    complete = [i for i, row in enumerate(table.features) if None not in row]
    x = np.asarray(
        [[table.features[i][j] for j in numeric] for i in complete], dtype=np.float64
    ).reshape(len(complete), len(numeric))
    y = np.asarray([table.labels[i] for i in complete] if table.labels else [], dtype=object)
    spread = (
        np.where(x.max(axis=0) > x.min(axis=0), x.max(axis=0) - x.min(axis=0), 1.0)
        if len(complete)
        else np.ones(len(numeric))
    )
    lines = [
        f"# Behavioural checks of the model trained on {Path(manifest.file).name}.",
        "# `mlci check` (the `check` session, part of `make ci`) runs them against the trained",
        "# model. Written by `mlci data init` from the data: review them, keep what your model",
        "# must do, add more.",
        "",
        "# Minimum functionality: a row and the label the model must give it.",
    ]
    for label in list(manifest.target_column.labels)[:5]:
        members = [k for k in range(len(complete)) if y[k] == label]
        if not members:
            continue
        best = members[0]
        if numeric:
            chosen = x[members]
            distance = (((chosen - np.median(chosen, axis=0)) / spread) ** 2).sum(axis=1)
            best = members[int(np.argmin(distance))]
        row = table.features[complete[best]]
        values = ", ".join(f"{_key(n)} = {_toml(v)}" for n, v in zip(features, row))
        lines += [
            "[[examples]]",
            f'name = "a typical {_escape(label)}"',
            f'label = "{_escape(label)}"',
            f"row = {{ {values} }}",
            "",
        ]
    lines += [
        "# Invariance: moving one numeric column by a small amount (1 % of its range here) keeps",
        "# the predicted label of at least `min_share` of the held-out rows.",
    ]
    for position, j in enumerate(numeric):
        delta = float(f"{0.01 * float(spread[position]):.2g}")
        lines += [
            "[[invariance]]",
            f'column = "{_escape(features[j])}"',
            f"delta = {delta!r}",
            "min_share = 0.9",
            "",
        ]
    first = features[numeric[0]] if numeric else "<a numeric column>"
    lines += [
        "# Directional: raising a numeric column must not lower the probability of a class, e.g.",
        "# [[directional]]",
        f'# column = "{_escape(first)}"',
        "# increase = 1.0",
        f'# label = "{_escape(manifest.target_column.labels[-1])}"',
        "# tolerance = 0.01",
        "",
        "# Slices: a floor per class (recall, precision or f1), or for the rows meeting a",
        "# condition (accuracy), e.g.",
        "# [[slices]]",
        f'# label = "{_escape(manifest.target_column.labels[0])}"',
        '# metric = "recall"',
        "# min = 0.8",
        "# [[slices]]",
        f"# where = {_slice_example(columns, numeric, x)}",
        '# metric = "accuracy"',
        "# min = 0.8",
    ]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    """A row's value as TOML: a float, or a quoted category."""
    if isinstance(value, str):
        return f'"{_escape(value)}"'
    return repr(float(value))


def _slice_example(columns: Sequence[Column], numeric: list[int], x: Any) -> str:
    """A slice condition to start from: a category, or the first numeric column's median."""
    import numpy as np

    for column in columns:
        if column.kind == CATEGORICAL:
            return f"\"{_escape(column.name)} == '{_escape(column.values[0])}'\""
    if not numeric:
        return '"<column> >= <number>"'
    median = float(np.median(x[:, 0])) if len(x) else 0.0
    return f'"{_escape(columns[numeric[0]].name)} >= {median:g}"'


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{_escape(name)}"'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
