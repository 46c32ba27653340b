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
from mlci.pipeline._config import Config
from mlci.pipeline._data import Manifest, Table
from mlci.pipeline._stage import Artifacts
from mlci.pipeline._train import fit, held_out_features, load_data

RESULTS = "checks.json"
SLICE_METRICS = ("recall", "precision", "f1", "accuracy")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CONDITION = re.compile(
    r"^\s*(?P<column>[^\s<>=!]+)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<value>\S+)\s*$"
)


@dataclasses.dataclass(frozen=True)
class Example:
    """Minimum functionality: a row and the label it must get."""

    name: str
    label: str
    row: dict[str, float]


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
    value: float

    def __str__(self) -> str:
        return f"{self.column} {self.op} {self.value:g}"


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


def load_checks(path: Path, manifest: Manifest) -> CheckFile:
    """Parse and check the file against the manifest: every column and label must exist."""
    if not path.exists():
        return CheckFile(None)
    document = read_toml(path)
    reject_unknown(document, {"examples", "invariance", "directional", "slices"}, str(path))
    features = [column.name for column in manifest.features]
    labels = list(manifest.target_column.labels)

    def entries(kind: str) -> list[tuple[str, dict[str, Any]]]:
        found = get(document, kind, list, str(path), default=[])
        out = []
        for index, entry in enumerate(found, start=1):
            where = f"{path}: [[{kind}]] {index}"
            if not isinstance(entry, dict):
                raise MlciError(f"{where}: must be a table")
            out.append((where, entry))
        return out

    def column(entry: dict[str, Any], where: str) -> str:
        name = get(entry, "column", str, where)
        if name not in features:
            raise MlciError(f"{where} column: '{name}' is not a feature ({', '.join(features)})")
        return name

    def label(entry: dict[str, Any], where: str) -> str:
        value = entry.get("label")
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if text not in labels:
            raise MlciError(f"{where} label: {value!r} is not a label ({', '.join(labels)})")
        return text

    def share(entry: dict[str, Any], where: str, default: float) -> float:
        value = get(entry, "min_share", float, where, default=default)
        if not 0.0 <= value <= 1.0:
            raise MlciError(f"{where} min_share: must be between 0 and 1, got {value}")
        return value

    examples: list[Example] = []
    for where, entry in entries("examples"):
        reject_unknown(entry, {"name", "label", "row"}, where)
        expected = label(entry, where)
        row = get(entry, "row", dict, where)
        missing = [name for name in features if name not in row]
        unknown = sorted(set(row) - set(features))
        if missing or unknown:
            raise MlciError(
                f"{where} row: needs exactly the features; missing {missing or 'none'}, "
                f"unknown {unknown or 'none'}"
            )
        values = {name: finite_float(row[name]) for name in features}
        bad = [name for name, value in values.items() if value is None]
        if bad:
            raise MlciError(f"{where} row: {', '.join(bad)} must be finite numbers")
        name = get(entry, "name", str, where, default=f"example {len(examples) + 1}")
        examples.append(Example(name, expected, {k: float(v or 0) for k, v in values.items()}))

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
        condition = _condition(get(entry, "where", str, where), features, where)
        if metric != "accuracy":
            raise MlciError(f"{where} metric: a 'where' slice takes accuracy")
        title = get(entry, "name", str, where, default=str(condition))
        slices.append(Slice(title, metric, minimum, where=condition))
    return CheckFile(path, tuple(examples), tuple(invariance), tuple(directional), tuple(slices))


def _condition(text: str, features: Sequence[str], where: str) -> Condition:
    match = _CONDITION.match(text)
    value = finite_float(match["value"]) if match else None
    if match is None or value is None:
        raise MlciError(
            f"{where} where: '{text}' is not '<column> <op> <number>' (op: < <= > >= == !=)"
        )
    if match["column"] not in features:
        raise MlciError(f"{where} where: '{match['column']}' is not a feature")
    return Condition(match["column"], match["op"], value)


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """The held-out rows of the trained model, as recorded in predictions.json."""

    features: list[list[float]]
    expected: list[str]
    predicted: list[str]
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
    checks: CheckFile,
    *,
    retrain: bool = True,
    data_sha256: str | None = None,
) -> list[Outcome]:
    """Every check, the always-on ones first; none stops the others.

    ``data_sha256``: the data's hash when the caller has it (the stage check computed it).
    """
    import numpy as np

    manifest, table = load_data(config, data_sha256)
    rows = held_out(config, table)
    features = [column.name for column in manifest.features]
    labels = list(manifest.target_column.labels)
    x = np.asarray(rows.features, dtype=np.float64)
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
    for example in checks.examples:
        got = str(model.predict(np.asarray([[example.row[n] for n in features]]))[0])
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
        column, test = features.index(floor.where.column), _OPERATORS[floor.where.op]
        kept = [i for i, row in enumerate(rows.features) if test(row[column], floor.where.value)]
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

    One example per label (up to five): the row nearest its class's median, the most typical
    one. One invariance check per feature, moving it by 1 % of its observed range.
    """
    import numpy as np

    features = [column.name for column in manifest.features]
    x = np.asarray(table.features, dtype=np.float64)
    y = np.asarray(table.labels, dtype=object)
    spread = np.where(x.max(axis=0) > x.min(axis=0), x.max(axis=0) - x.min(axis=0), 1.0)
    lines = [
        f"# Behavioural checks of the model trained on {Path(manifest.file).name}.",
        "# `mlci check` (the `check` session, part of `make ci`) runs them against the trained",
        "# model. Written by `mlci data init` from the data: review them, keep what your model",
        "# must do, add more.",
        "",
        "# Minimum functionality: a row and the label the model must give it.",
    ]
    for label in list(manifest.target_column.labels)[:5]:
        members = x[y == label]
        if not len(members):
            continue
        distance = (((members - np.median(members, axis=0)) / spread) ** 2).sum(axis=1)
        row = members[int(np.argmin(distance))]
        values = ", ".join(f"{_key(n)} = {float(v)!r}" for n, v in zip(features, row))
        lines += [
            "[[examples]]",
            f'name = "a typical {_escape(label)}"',
            f'label = "{_escape(label)}"',
            f"row = {{ {values} }}",
            "",
        ]
    lines += [
        "# Invariance: moving one column by a small amount (1 % of its range here) keeps the",
        "# predicted label of at least `min_share` of the held-out rows.",
    ]
    for name, width in zip(features, spread):
        delta = float(f"{0.01 * float(width):.2g}")
        lines += [
            "[[invariance]]",
            f'column = "{_escape(name)}"',
            f"delta = {delta!r}",
            "min_share = 0.9",
            "",
        ]
    lines += [
        "# Directional: raising a column must not lower the probability of a class, e.g.",
        "# [[directional]]",
        f'# column = "{_escape(features[0])}"',
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
        f'# where = "{features[0]} >= {float(np.median(x[:, 0])):g}"',
        '# metric = "accuracy"',
        "# min = 0.8",
    ]
    return "\n".join(lines) + "\n"


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{_escape(name)}"'


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
