"""The ``[tool.mlci]`` table of pyproject.toml: where the data is and which estimator to train."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from mlci.errors import MlciError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9 and 3.10 only
    import tomli as tomllib

PYPROJECT = "pyproject.toml"
DEFAULT_ESTIMATOR = "sklearn.ensemble.RandomForestClassifier"


@dataclasses.dataclass(frozen=True)
class EstimatorSpec:
    """An estimator named by import path, with constructor params."""

    class_path: str
    params: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """Quality-gate thresholds: absolute floors and the largest allowed drop against a reference."""

    floors: dict[str, float]
    max_drop: float
    max_relative_drop: float


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
class ServeConfig:
    """`mlci serve` defaults; the command line overrides them."""

    alias: str = "production"
    host: str = "127.0.0.1"
    port: int = 8080
    max_rows: int = 10_000  # rows per request
    max_body_bytes: int = 5 * 1024 * 1024
    poll_seconds: float = 1.0  # how often the alias is checked for a move


@dataclasses.dataclass(frozen=True)
class Config:
    """The resolved project config; every path is absolute."""

    root: Path
    data: Path
    manifest: Path
    target: str
    test_size: float
    seed: int
    artifacts: Path
    lock: Path | None
    baseline: Path
    estimator: EstimatorSpec
    gate: GateConfig
    registry: Path
    model_format: str = "joblib"
    skops_trusted: tuple[str, ...] = ()
    drift: DriftConfig = dataclasses.field(default_factory=lambda: DriftConfig())
    serve: ServeConfig = dataclasses.field(default_factory=lambda: ServeConfig())

    def resolved(self) -> dict[str, Any]:
        """The settings that shape a trained model, as plain JSON (paths relative to the root)."""
        return {
            "data": self.relative(self.data),
            "target": self.target,
            "test_size": self.test_size,
            "seed": self.seed,
            "model_format": self.model_format,
            "estimator": {
                "class": self.estimator.class_path,
                "params": dict(sorted(self.estimator.params.items())),
            },
        }

    def relative(self, path: Path) -> str:
        """Show ``path`` relative to the project root when it lies inside it."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


_TOP_KEYS = {
    "data",
    "manifest",
    "target",
    "test_size",
    "seed",
    "artifacts",
    "lock",
    "baseline",
    "estimator",
    "gate",
    "registry",
    "model_format",
    "skops_trusted",
    "drift",
    "serve",
}
MODEL_FORMATS = ("joblib", "skops")
REGISTRY_ENV = "MLCI_REGISTRY"
_GATE_FLOOR_PREFIX = "min_"


def load_config(root: Path) -> Config:
    """Read ``[tool.mlci]`` from ``root/pyproject.toml``, checking every key and type."""
    root = root.resolve()
    pyproject = root / PYPROJECT
    try:
        with pyproject.open("rb") as stream:
            document = tomllib.load(stream)
    except FileNotFoundError:
        raise MlciError(f"{pyproject}: not found; run mlci from the project folder") from None
    except tomllib.TOMLDecodeError as exc:
        raise MlciError(f"{pyproject}: invalid TOML: {exc}") from None

    table = document.get("tool", {}).get("mlci")
    if table is None:
        raise MlciError(f"{pyproject}: no [tool.mlci] table; see the README for an example")
    where = f"{pyproject}: [tool.mlci]"
    _reject_unknown(table, _TOP_KEYS, where)

    data = root / _get(table, "data", str, where)
    manifest_name = _get(table, "manifest", str, where, default="")
    manifest = (
        root / manifest_name if manifest_name else data.with_name(f"{data.stem}.manifest.json")
    )
    test_size = _get(table, "test_size", float, where, default=0.2)
    if not 0.0 < test_size < 1.0:
        raise MlciError(f"{where} test_size: must be between 0 and 1 (exclusive), got {test_size}")
    lock = _get(table, "lock", str, where, default="")
    model_format = _get(table, "model_format", str, where, default="joblib")
    if model_format not in MODEL_FORMATS:
        raise MlciError(
            f"{where} model_format: must be one of {', '.join(MODEL_FORMATS)}, got '{model_format}'"
        )
    trusted = _get(table, "skops_trusted", list, where, default=[])
    if not all(isinstance(name, str) for name in trusted):
        raise MlciError(f"{where} skops_trusted: must be a list of type names (strings)")
    registry = os.environ.get(REGISTRY_ENV) or _get(
        table, "registry", str, where, default="registry"
    )

    return Config(
        root=root,
        data=data,
        manifest=manifest,
        target=_get(table, "target", str, where),
        test_size=float(test_size),
        seed=_get(table, "seed", int, where, default=42),
        artifacts=root / _get(table, "artifacts", str, where, default="artifacts"),
        lock=root / lock if lock else None,
        baseline=root / _get(table, "baseline", str, where, default="metrics/baseline.json"),
        estimator=_estimator_spec(
            table.get("estimator", {}), f"{pyproject}: [tool.mlci.estimator]"
        ),
        gate=_gate_config(table.get("gate", {}), f"{pyproject}: [tool.mlci.gate]"),
        registry=root / registry,
        model_format=model_format,
        skops_trusted=tuple(trusted),
        drift=_drift_config(table.get("drift", {}), f"{pyproject}: [tool.mlci.drift]"),
        serve=_serve_config(table.get("serve", {}), f"{pyproject}: [tool.mlci.serve]"),
    )


def python_versions(pyproject: dict[str, Any]) -> list[str]:
    """The Python matrix from the trove classifiers, oldest first (as nox.project reads it)."""
    prefix = "Programming Language :: Python :: 3."
    classifiers = pyproject.get("project", {}).get("classifiers", [])
    versions = [c.rsplit(" ", 1)[-1] for c in classifiers if c.startswith(prefix)]
    return sorted(versions, key=lambda version: int(version.split(".")[1]))


def _estimator_spec(table: Any, where: str) -> EstimatorSpec:
    if not isinstance(table, dict):
        raise MlciError(f"{where}: must be a table with 'class' and 'params'")
    _reject_unknown(table, {"class", "params"}, where)
    class_path = _get(table, "class", str, where, default=DEFAULT_ESTIMATOR)
    params = _get(table, "params", dict, where, default={})
    return EstimatorSpec(class_path=class_path, params=dict(params))


def _gate_config(table: Any, where: str) -> GateConfig:
    if not isinstance(table, dict):
        raise MlciError(f"{where}: must be a table")
    floors: dict[str, float] = {}
    for key, value in table.items():
        if key in ("max_drop", "max_relative_drop"):
            continue
        if not key.startswith(_GATE_FLOOR_PREFIX):
            raise MlciError(
                f"{where}: unknown key '{key}'; "
                "expected min_<metric>, max_drop or max_relative_drop"
            )
        floors[key[len(_GATE_FLOOR_PREFIX) :]] = _number(value, f"{where} {key}")
    return GateConfig(
        floors=floors,
        max_drop=_number(table.get("max_drop", 0.0), f"{where} max_drop"),
        max_relative_drop=_number(
            table.get("max_relative_drop", 0.0), f"{where} max_relative_drop"
        ),
    )


def _drift_config(table: Any, where: str) -> DriftConfig:
    if not isinstance(table, dict):
        raise MlciError(f"{where}: must be a table")
    fields = {field.name: field for field in dataclasses.fields(DriftConfig)}
    _reject_unknown(table, set(fields), where)
    values: dict[str, Any] = {}
    for key, value in table.items():
        kind = type(fields[key].default)
        values[key] = _get(table, key, kind, where)
        if kind is float:
            values[key] = float(values[key])
            if not 0.0 <= values[key] <= 1.0 and key != "wasserstein":
                raise MlciError(f"{where} {key}: must be between 0 and 1, got {value}")
            if values[key] < 0:
                raise MlciError(f"{where} {key}: must not be negative, got {value}")
    return DriftConfig(**values)


def _serve_config(table: Any, where: str) -> ServeConfig:
    if not isinstance(table, dict):
        raise MlciError(f"{where}: must be a table")
    fields = {field.name: field for field in dataclasses.fields(ServeConfig)}
    _reject_unknown(table, set(fields), where)
    values = {key: _get(table, key, type(fields[key].default), where) for key in table}
    for key, value in values.items():
        if isinstance(value, (int, float)) and value <= 0:
            raise MlciError(f"{where} {key}: must be positive, got {value}")
    return ServeConfig(**values)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MlciError(f"{where}: must be a number, got {value!r}")
    return float(value)


_MISSING = object()
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    dict: "a table",
    list: "a list",
}


def _get(table: dict[str, Any], key: str, kind: type, where: str, default: Any = _MISSING) -> Any:
    """Fetch ``key`` and check its type; a missing required key names the table it belongs in."""
    if key not in table:
        if default is _MISSING:
            raise MlciError(f"{where}: missing required key '{key}'")
        return default
    value = table[key]
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        raise MlciError(f"{where} {key}: must be {_TYPE_NAMES[kind]}, got {value!r}")
    return value


def _reject_unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise MlciError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
        )


def build_estimator(spec: EstimatorSpec) -> Any:
    """Import the estimator class and construct it, checking each param name against it."""
    where = "[tool.mlci.estimator]"
    module_name, _, class_name = spec.class_path.rpartition(".")
    if not module_name:
        raise MlciError(
            f"{where} class: '{spec.class_path}' is not an import path like {DEFAULT_ESTIMATOR}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MlciError(f"{where} class: cannot import module '{module_name}': {exc}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise MlciError(f"{where} class: module '{module_name}' has no class '{class_name}'")
    try:
        estimator = cls()
    except TypeError as exc:
        raise MlciError(f"{where} class: cannot construct {class_name}(): {exc}") from None
    if not (
        hasattr(estimator, "fit")
        and hasattr(estimator, "predict")
        and hasattr(estimator, "get_params")
    ):
        raise MlciError(
            f"{where} class: {spec.class_path} is not a scikit-learn estimator "
            "(it needs fit, predict and get_params)"
        )
    valid = estimator.get_params(deep=False)
    unknown = sorted(set(spec.params) - set(valid))
    if unknown:
        raise MlciError(
            f"{where} params: {', '.join(unknown)} not a parameter of {class_name}; "
            f"valid parameters: {', '.join(sorted(valid))}"
        )
    estimator.set_params(**spec.params)
    return estimator
