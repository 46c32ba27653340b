"""The ``[tool.mlci]`` table of pyproject.toml: where the data is and which estimator to train."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import warnings
from pathlib import Path
from typing import Any

from mlci._settings import PYPROJECT, get, number, read_toml, reject_unknown
from mlci.errors import MlciError
from mlci.pipeline._columns import Column
from mlci.pipeline._prepare import CATEGORICAL_CHOICES, NUMERIC_CHOICES, PrepareConfig, prepared
from mlci.pipeline._task import CLASSIFICATION, REGRESSION, TASKS, check_task, task_of_estimator

DEFAULT_ESTIMATOR = "sklearn.ensemble.RandomForestClassifier"


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """One scikit-learn estimator named by import path, with constructor params."""

    class_path: str
    params: dict[str, Any]

    def resolved(self) -> dict[str, Any]:
        """Plain JSON, params sorted."""
        return {"class": self.class_path, "params": dict(sorted(self.params.items()))}


@dataclasses.dataclass(frozen=True)
class EstimatorSpec:
    """The model: one classifier, or transformers then a classifier (`make_pipeline`)."""

    steps: tuple[StepSpec, ...]

    @classmethod
    def single(cls, class_path: str, params: dict[str, Any] | None = None) -> EstimatorSpec:
        """A plain estimator, no pipeline."""
        return cls((StepSpec(class_path, dict(params or {})),))

    @property
    def class_path(self) -> str:
        """The classifier's import path (the last step)."""
        return self.steps[-1].class_path

    @property
    def params(self) -> dict[str, Any]:
        """The classifier's params (the last step)."""
        return self.steps[-1].params

    @property
    def name(self) -> str:
        """For people: the class names, joined by arrows for a pipeline."""
        return " → ".join(step.class_path.rpartition(".")[2] for step in self.steps)

    def resolved(self) -> dict[str, Any]:
        """Plain JSON: `class` and `params` for one estimator, `steps` for a pipeline."""
        if len(self.steps) == 1:
            return self.steps[0].resolved()
        return {"steps": [step.resolved() for step in self.steps]}


# The simple model a candidate must beat unless [tool.mlci.gate.simpler] names another.
SIMPLE_MODEL = EstimatorSpec(
    (
        StepSpec("sklearn.preprocessing.StandardScaler", {}),
        StepSpec("sklearn.linear_model.LogisticRegression", {"max_iter": 1000}),
    )
)
SIMPLE_REGRESSOR = EstimatorSpec(
    (
        StepSpec("sklearn.preprocessing.StandardScaler", {}),
        StepSpec("sklearn.linear_model.Ridge", {}),
    )
)
DUMMY = EstimatorSpec.single("sklearn.dummy.DummyClassifier", {"strategy": "prior"})
# A regressor's constant baselines: the best constant for each error, as Evidently's dummy.
DUMMY_MEAN = EstimatorSpec.single("sklearn.dummy.DummyRegressor", {"strategy": "mean"})
DUMMY_MEDIAN = EstimatorSpec.single("sklearn.dummy.DummyRegressor", {"strategy": "median"})
DUMMIES = {
    CLASSIFICATION: {DUMMY.name: DUMMY},
    REGRESSION: {"DummyRegressor (mean)": DUMMY_MEAN, "DummyRegressor (median)": DUMMY_MEDIAN},
}
# What a constant is compared on: the mean is the best constant for RMSE (and has R² 0), the
# median for MAE. Models not named here are compared on every headline metric.
DUMMY_METRICS = {"DummyRegressor (mean)": ("r2", "rmse"), "DummyRegressor (median)": ("mae",)}
MODES = ("fail", "warn", "off")


@dataclasses.dataclass(frozen=True)
class SimplerConfig:
    """Simpler models fitted on the candidate's split, which the candidate must beat by `margin`.

    Constants (a ``DummyClassifier`` giving the most frequent label; ``DummyRegressor``s giving
    the mean and the median) and ``model`` (default: scaling, then logistic regression for a
    classifier, ridge regression for a regressor). ``check`` says what losing to one does:
    fail, warn, or off (not fitted).
    """

    check: str = "fail"
    margin: float = 0.0
    model: EstimatorSpec | None = None  # None: the task's default

    def model_for(self, task: str) -> EstimatorSpec:
        """The configured simpler model, or the task's default."""
        if self.model is not None:
            return self.model
        return SIMPLE_REGRESSOR if task == REGRESSION else SIMPLE_MODEL

    def models(self, task: str = CLASSIFICATION) -> dict[str, EstimatorSpec]:
        """The simpler models by the name the report shows; none when the check is off."""
        if self.check == "off":
            return {}
        model = self.model_for(task)
        return {**DUMMIES[task], model.name: model}

    def resolved(self, task: str = CLASSIFICATION) -> dict[str, Any] | None:
        """What shapes the recorded scores (part of the training key); None when off."""
        if self.check == "off":
            return None
        return {"model": self.model_for(task).resolved()}


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """Quality-gate thresholds: absolute floors and the largest allowed drop against a reference."""

    floors: dict[str, float]
    max_drop: float
    max_relative_drop: float
    ceilings: dict[str, float] = dataclasses.field(default_factory=dict)  # max_<metric>
    useless_features: str = (
        "warn"  # a feature whose permutation importance is <= 0: warn, fail, off
    )
    simpler: SimplerConfig = dataclasses.field(default_factory=SimplerConfig)


# mlci's metric: scikit-learn's scorer, negated where lower is better
SCORING = {
    "accuracy": "accuracy",
    "macro_f1": "f1_macro",
    "r2": "r2",
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "max_error": "max_error",
}
SCORED = {CLASSIFICATION: ("accuracy", "macro_f1"), REGRESSION: ("r2", "rmse", "mae", "max_error")}


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """``[tool.mlci.tune]``: the grid over the classifier's params, and how to judge it."""

    grid: dict[str, list[Any]]
    folds: int = 5
    metric: str = ""  # "": the task's first (accuracy, R²)
    tolerance: float = 0.01

    def metric_for(self, task: str) -> str:
        """The configured metric, or the task's default."""
        return self.metric or SCORED[task][0]


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
    model_format: str = "joblib"
    skops_trusted: tuple[str, ...] = ()
    # OpenMP and BLAS threads while fitting: a property of training, not of the machine, since
    # some estimators (HistGradientBoosting) fit another model with another thread count.
    threads: int = 1
    checks: Path | None = None  # the behavioural checks file; None: next to the data
    tune: TuneConfig | None = None  # [tool.mlci.tune]; None: not configured
    prepare: PrepareConfig | None = None  # [tool.mlci.prepare]; None: the defaults
    task_setting: str = "auto"  # [tool.mlci] task: auto (from the estimator), or the task
    # The parts of [tool.mlci] that other concerns own (registry, drift, serve), as read: each
    # parses its own, so that their settings and code never reach the training stage's key.
    sections: dict[str, Any] = dataclasses.field(default_factory=dict)
    pyproject: Path = Path(PYPROJECT)

    @functools.cached_property
    def task(self) -> str:
        """The task the manifest's target asks for (the estimator must agree when it is built).

        Read without importing scikit-learn: the stage key needs it on every cached run.
        Before there is a manifest: ``[tool.mlci] task``, else classification.
        """
        from mlci.pipeline._columns import INTEGER, NUMERIC

        try:
            raw = json.loads(self.manifest.read_text(encoding="utf-8"))
            target = next(c for c in raw["columns"] if c["name"] == raw["target"])
            kind = target.get("kind") or {"float": NUMERIC, "int": INTEGER}.get(target.get("dtype"))
        except (OSError, ValueError, KeyError, TypeError, StopIteration, AttributeError):
            return self.task_setting if self.task_setting in TASKS else CLASSIFICATION
        return REGRESSION if kind in (NUMERIC, INTEGER) else CLASSIFICATION

    def resolved(self) -> dict[str, Any]:
        """The settings that shape a trained model, as plain JSON (paths relative to the root)."""
        resolved = {
            "data": self.relative(self.data),
            "target": self.target,
            "test_size": self.test_size,
            "seed": self.seed,
            "model_format": self.model_format,
            "threads": self.threads,
            "estimator": self.estimator.resolved(),
        }
        if self.prepare is not None:
            resolved["prepare"] = self.prepare.resolved()
        simpler = self.gate.simpler.resolved(self.task)  # recorded with the model's scores
        if simpler is not None:
            resolved["simpler"] = simpler
        if self.task == REGRESSION:  # classifiers' keys stay as they were before regression
            resolved["task"] = REGRESSION
        return resolved

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
    "model_format",
    "skops_trusted",
    "threads",
    "checks",
    "tune",
    "prepare",
    "task",
}
# Keys of [tool.mlci] that belong to delivery, serving, tracking and reporting; the pipeline
# passes them on unread.
DELEGATED = {"registry", "drift", "serve", "mlflow", "delivery", "report"}
MODEL_FORMATS = ("joblib", "skops")
_GATE_FLOOR_PREFIX = "min_"
_GATE_CEILING_PREFIX = "max_"


def load_config(root: Path) -> Config:
    """Read ``[tool.mlci]`` from ``root/pyproject.toml``, checking every key and type."""
    root = root.resolve()
    pyproject = root / PYPROJECT
    document = read_toml(pyproject)
    table = document.get("tool", {}).get("mlci")
    if table is None:
        raise MlciError(f"{pyproject}: no [tool.mlci] table; see the README for an example")
    where = f"{pyproject}: [tool.mlci]"
    reject_unknown(table, _TOP_KEYS | DELEGATED, where)

    data = root / get(table, "data", str, where)
    manifest_name = get(table, "manifest", str, where, default="")
    manifest = (
        root / manifest_name if manifest_name else data.with_name(f"{data.stem}.manifest.json")
    )
    test_size = get(table, "test_size", float, where, default=0.2)
    if not 0.0 < test_size < 1.0:
        raise MlciError(f"{where} test_size: must be between 0 and 1 (exclusive), got {test_size}")
    lock = get(table, "lock", str, where, default="")
    checks = get(table, "checks", str, where, default="")
    model_format = get(table, "model_format", str, where, default="joblib")
    if model_format not in MODEL_FORMATS:
        raise MlciError(
            f"{where} model_format: must be one of {', '.join(MODEL_FORMATS)}, got '{model_format}'"
        )
    threads = get(table, "threads", int, where, default=1)
    if threads < 1:
        raise MlciError(f"{where} threads: must be 1 or more, got {threads}")
    task = _choice(
        get(table, "task", str, where, default="auto"), ("auto", *TASKS), f"{where} task"
    )
    trusted = get(table, "skops_trusted", list, where, default=[])
    if not all(isinstance(name, str) for name in trusted):
        raise MlciError(f"{where} skops_trusted: must be a list of type names (strings)")

    return Config(
        root=root,
        data=data,
        manifest=manifest,
        target=get(table, "target", str, where),
        test_size=float(test_size),
        seed=get(table, "seed", int, where, default=42),
        artifacts=root / get(table, "artifacts", str, where, default="artifacts"),
        lock=root / lock if lock else None,
        baseline=root / get(table, "baseline", str, where, default="metrics/baseline.json"),
        estimator=_estimator_spec(
            table.get("estimator", {}), f"{pyproject}: [tool.mlci.estimator]"
        ),
        gate=_gate_config(table.get("gate", {}), f"{pyproject}: [tool.mlci.gate]"),
        model_format=model_format,
        skops_trusted=tuple(trusted),
        threads=threads,
        checks=root / checks if checks else None,
        tune=_tune_config(table.get("tune"), f"{pyproject}: [tool.mlci.tune]"),
        prepare=_prepare_config(table.get("prepare"), f"{pyproject}: [tool.mlci.prepare]"),
        sections={key: table[key] for key in DELEGATED if key in table},
        pyproject=pyproject,
        task_setting=task,
    )


def _estimator_spec(table: Any, where: str, *, required: bool = False) -> EstimatorSpec:
    if not isinstance(table, dict):
        raise MlciError(f"{where}: must be a table with 'class' and 'params', or 'steps'")
    reject_unknown(table, {"class", "params", "steps"}, where)
    if "steps" not in table:
        if required and "class" not in table:
            raise MlciError(f"{where}: give 'class' (and 'params'), or 'steps'")
        return EstimatorSpec((_step_spec(table, where, DEFAULT_ESTIMATOR),))
    if "class" in table or "params" in table:
        raise MlciError(f"{where}: give either 'class' and 'params', or 'steps', not both")
    steps = get(table, "steps", list, where)
    if not steps:
        raise MlciError(f"{where} steps: must list at least one estimator")
    return EstimatorSpec(
        tuple(_step_spec(step, f"{where} steps[{i}]", None) for i, step in enumerate(steps))
    )


def _step_spec(table: Any, where: str, default: str | None) -> StepSpec:
    if not isinstance(table, dict):
        raise MlciError(f'{where}: must be a table like {{ class = "...", params = {{...}} }}')
    reject_unknown(table, {"class", "params"} | ({"steps"} if default else set()), where)
    class_path = get(table, "class", str, where, **({"default": default} if default else {}))
    return StepSpec(class_path, dict(get(table, "params", dict, where, default={})))


def _gate_config(table: Any, where: str) -> GateConfig:
    if not isinstance(table, dict):
        raise MlciError(f"{where}: must be a table")
    floors: dict[str, float] = {}
    ceilings: dict[str, float] = {}
    for key, value in table.items():
        if key in ("max_drop", "max_relative_drop", "useless_features", "simpler"):
            continue
        if key.startswith(_GATE_FLOOR_PREFIX):
            floors[key[len(_GATE_FLOOR_PREFIX) :]] = number(value, f"{where} {key}")
        elif key.startswith(_GATE_CEILING_PREFIX):  # max_rmse; the metric max_error: max_max_error
            ceilings[key[len(_GATE_CEILING_PREFIX) :]] = number(value, f"{where} {key}")
        else:
            raise MlciError(
                f"{where}: unknown key '{key}'; expected min_<metric> (a floor, e.g. min_r2), "
                "max_<metric> (a ceiling, e.g. max_rmse), max_drop, max_relative_drop, "
                "useless_features or [tool.mlci.gate.simpler]"
            )
    return GateConfig(
        floors=floors,
        ceilings=ceilings,
        max_drop=number(table.get("max_drop", 0.0), f"{where} max_drop"),
        max_relative_drop=number(table.get("max_relative_drop", 0.0), f"{where} max_relative_drop"),
        useless_features=_choice(
            get(table, "useless_features", str, where, default="warn"),
            ("warn", "fail", "off"),
            f"{where} useless_features",
        ),
        simpler=_simpler_config(table.get("simpler", {}), where.replace("gate]", "gate.simpler]")),
    )


def _simpler_config(table: Any, where: str) -> SimplerConfig:
    if not isinstance(table, dict):
        raise MlciError(f"{where}: must be a table with check, margin and model")
    reject_unknown(table, {"check", "margin", "model"}, where)
    margin = number(table.get("margin", 0.0), f"{where} margin")
    if not 0.0 <= margin < 1.0:
        raise MlciError(f"{where} margin: must be at least 0 and below 1, got {margin:g}")
    model = None
    if "model" in table:
        model = _estimator_spec(table["model"], f"{where} model", required=True)
    return SimplerConfig(
        check=_choice(get(table, "check", str, where, default="fail"), MODES, f"{where} check"),
        margin=margin,
        model=model,
    )


def _tune_config(table: Any, where: str) -> TuneConfig | None:
    """``[tool.mlci.tune]`` checked key by key; None when the table is absent."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise MlciError(f"{where}: must be a table with grid, folds, metric and tolerance")
    reject_unknown(table, {"grid", "folds", "metric", "tolerance"}, where)
    grid = get(table, "grid", dict, where)
    if not grid:
        raise MlciError(
            f"{where} grid: name at least one param, e.g. grid = {{ max_depth = [3, 5] }}"
        )
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise MlciError(f"{where} grid.{name}: must be a non-empty list of values")
    folds = get(table, "folds", int, where, default=5)
    if folds < 2:
        raise MlciError(f"{where} folds: must be at least 2, got {folds}")
    metric = get(table, "metric", str, where, default="")
    if metric and metric not in SCORING:
        raise MlciError(f"{where} metric: '{metric}' is not one of {', '.join(SCORING)}")
    tolerance = number(table.get("tolerance", 0.01), f"{where} tolerance")
    if not 0.0 <= tolerance < 1.0:
        raise MlciError(f"{where} tolerance: must be at least 0 and below 1, got {tolerance:g}")
    return TuneConfig(dict(grid), folds, metric, tolerance)


def _prepare_config(table: Any, where: str) -> PrepareConfig | None:
    """``[tool.mlci.prepare]`` checked key by key; None when the table is absent."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise MlciError(f"{where}: must be a table with categorical and numeric")
    reject_unknown(table, {"categorical", "numeric"}, where)
    return PrepareConfig(
        categorical=_choice(
            get(table, "categorical", str, where, default="auto"),
            CATEGORICAL_CHOICES,
            f"{where} categorical",
        ),
        numeric=_choice(
            get(table, "numeric", str, where, default="auto"), NUMERIC_CHOICES, f"{where} numeric"
        ),
    )


def _choice(value: str, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise MlciError(f"{where}: '{value}' is not one of {', '.join(allowed)}")
    return value


def build_estimator(
    spec: EstimatorSpec,
    where: str = "[tool.mlci.estimator]",
    columns: tuple[Column, ...] = (),
    prepare: PrepareConfig | None = None,
    target: Column | None = None,
    task: str = "auto",
) -> Any:
    """The configured classifier or regressor, or `make_pipeline` of the steps.

    With the feature ``columns``, the model starts with the preparation they need (categories
    encoded, missing values imputed; ``[tool.mlci.prepare]``), so that it takes raw rows. With
    the ``target`` column, the estimator must do what it asks for (``task``: the project's
    ``[tool.mlci] task``); without it, any classifier or regressor is accepted.
    """
    from mlci.pipeline._labels import EncodedLabels, needs_codes

    parts = [
        _build_step(step, f"{where} steps[{i}]" if len(spec.steps) > 1 else where)
        for i, step in enumerate(spec.steps)
    ]
    for i, part in enumerate(parts[:-1]):
        if not hasattr(part, "transform"):
            raise MlciError(
                f"{where} steps[{i}]: {spec.steps[i].class_path} is not a transformer (it "
                "has no transform); only the last step may be the classifier or regressor"
            )
    if needs_codes(spec.class_path) and task_of_estimator(parts[-1]) == CLASSIFICATION:
        parts[-1] = EncodedLabels(parts[-1])  # fitted on codes, it answers the labels
    if len(parts) == 1:
        estimator = parts[0]
    else:
        from sklearn.pipeline import make_pipeline

        estimator = make_pipeline(*parts)
    field = "class" if len(spec.steps) == 1 else f"steps[{len(spec.steps) - 1}]"
    if target is not None:
        check_task(estimator, spec.class_path, target, task, where, field)
    elif task_of_estimator(estimator) is None:
        raise MlciError(
            f"{where} {field}: {spec.class_path} is neither a classifier nor a regressor "
            "(sklearn.base.is_classifier / is_regressor); mlci trains one or the other, such "
            f"as {DEFAULT_ESTIMATOR} or sklearn.ensemble.RandomForestRegressor"
        )
    return prepared(estimator, columns, prepare or PrepareConfig(), where)


def _takes_any_param(cls: type) -> bool:
    """True when the constructor takes ``**kwargs`` and hands them to its library (LightGBM's
    ``deterministic``, XGBoost's booster params): the library checks those names."""
    import inspect

    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def determinism_warning(spec: EstimatorSpec) -> str | None:
    """Why a LightGBM model may differ with the thread count, or None.

    LightGBM promises the same model whatever its threads only with ``deterministic = true``
    and a fixed histogram layout (``force_row_wise`` or ``force_col_wise``); otherwise it times
    both layouts and keeps the faster one.
    """
    if not spec.class_path.startswith("lightgbm."):
        return None
    params = spec.params
    if params.get("deterministic") is True and (
        params.get("force_row_wise") is True or params.get("force_col_wise") is True
    ):
        return None
    return (
        f"[tool.mlci.estimator] params: {spec.name} makes the same model on every machine and "
        "thread count only with deterministic = true and force_row_wise = true (or "
        "force_col_wise = true); add them, or baselines may differ between machines"
    )


def _build_step(step: StepSpec, where: str) -> Any:
    """Import one estimator class and construct it, checking each param name against it."""
    module_name, _, class_name = step.class_path.rpartition(".")
    if not module_name:
        raise MlciError(
            f"{where} class: '{step.class_path}' is not an import path like {DEFAULT_ESTIMATOR}"
        )
    try:
        with warnings.catch_warnings():
            # LightGBM imports matplotlib when it is there, and matplotlib 3.9 (the last for
            # Python 3.9) calls pyparsing names newer pyparsing deprecates: a notice about
            # their code, nothing a user can act on.
            warnings.simplefilter("ignore", DeprecationWarning)
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
    if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
        raise MlciError(
            f"{where} class: {step.class_path} is not a scikit-learn estimator "
            "(it needs fit and get_params)"
        )
    valid = estimator.get_params(deep=False)
    unknown = sorted(set(step.params) - set(valid))
    if unknown and not _takes_any_param(cls):
        raise MlciError(
            f"{where} params: {', '.join(unknown)} not a parameter of {class_name}; "
            f"valid parameters: {', '.join(sorted(valid))}"
        )
    try:
        estimator.set_params(**step.params)
    except (TypeError, ValueError) as exc:
        raise MlciError(f"{where} params: {exc}") from None
    return estimator
