"""Training: validate the data, fit the configured estimator, write artifacts atomically.

A run writes into a private staging folder and moves its files into place only once all of
them exist, lineage last; a run that fails or is killed leaves the previous artifacts intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlci import __version__
from mlci._io import atomic_write_json, read_json, sha256_file, utc_now
from mlci._report import Markup, Section, escape, markdown_table
from mlci.errors import MlciError
from mlci.pipeline import _stage as stage
from mlci.pipeline._config import Config, EstimatorSpec, build_estimator, determinism_warning
from mlci.pipeline._data import Manifest, Table, load_manifest, read_training_data
from mlci.pipeline._evaluate import (
    SIMPLER,
    binary_metrics,
    compared,
    compute_metrics,
    predictions_fingerprint,
    summary,
)
from mlci.pipeline._model import save_model
from mlci.pipeline._prepare import PrepareConfig, model_input
from mlci.pipeline._regression import regression_metrics
from mlci.pipeline._stage import Artifacts
from mlci.pipeline._task import REGRESSION, task_of_metrics, task_of_target

PACKAGES = ("scikit-learn", "numpy", "scipy", "joblib", "threadpoolctl")
# The gradient boosting libraries a model may hold: recorded when installed.
BOOSTING = ("xgboost-cpu", "xgboost", "lightgbm")
STAGING_PREFIX = ".run-"

FIRST_LINE = 2  # the data file's first row: line 1 is the header


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What ``train`` produced, or found up to date."""

    artifacts: Artifacts
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    up_to_date: bool


@dataclasses.dataclass(frozen=True)
class Fitted:
    """A fitted estimator with its held-out evaluation."""

    estimator: Any
    metrics: dict[str, Any]
    predictions: dict[str, Any]


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a pickled model depends on (read once per process)."""
    from importlib import metadata  # only when training: it costs a cache hit about 20 ms

    versions: dict[str, str | None] = {}
    for name in (*PACKAGES, *BOOSTING):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name in PACKAGES:  # the boosting libraries only when there
                versions[name] = None
    return versions


def git_commit(root: Path) -> str | None:
    """The checked-out commit, or None outside a git work tree (read from .git, no git process)."""
    for folder in (root.resolve(), *root.resolve().parents):
        dot_git = folder / ".git"
        if dot_git.exists():
            return _head(dot_git)
    return None


def _head(dot_git: Path) -> str | None:
    """HEAD's commit: a detached hash, or its branch's loose or packed ref; None when unborn."""
    try:
        if dot_git.is_file():  # a linked worktree or a submodule: "gitdir: <path>"
            dot_git = (dot_git.parent / dot_git.read_text().split(":", 1)[1].strip()).resolve()
        head = (dot_git / "HEAD").read_text().strip()
        common = dot_git
        if (dot_git / "commondir").is_file():
            common = (dot_git / (dot_git / "commondir").read_text().strip()).resolve()
        if not head.startswith("ref:"):
            return head or None
        ref = head[4:].strip()
        for base in (dot_git, common):
            loose = base / ref
            if loose.is_file():
                return loose.read_text().strip() or None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(f" {ref}") and not line.startswith(("#", "^")):
                    return line.split(" ", 1)[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return None


def load_data(config: Config, sha256: str | None = None) -> tuple[Manifest, Table]:
    """The manifest and the data it validates, read once; invalid data is refused."""
    manifest = load_manifest(config.manifest)
    if manifest.target != config.target:
        raise MlciError(
            f"{config.manifest}: target '{manifest.target}' differs from [tool.mlci] target "
            f"'{config.target}'"
        )
    if sha256 is None:
        sha256 = sha256_file(config.data)
    display = config.relative(config.data)
    return manifest, read_training_data(config.data, manifest, sha256=sha256, display=display)


def split(config: Config, labels: Any, task: str = "classification") -> tuple[Any, Any]:
    """The training and held-out row numbers, seeded, the same for every stage.

    A classifier's split is stratified by label; a regressor's is a plain shuffle (a quantity
    has no classes to keep in proportion, and binning it would add a setting to no clear gain).
    """
    import numpy as np
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(labels))
    stratify = None if task == REGRESSION else labels
    try:
        train_rows, test_rows = train_test_split(
            rows, test_size=config.test_size, random_state=config.seed, stratify=stratify
        )
    except ValueError as exc:
        raise MlciError(f"{config.relative(config.data)}: cannot split the data: {exc}") from None
    return train_rows, test_rows


@contextlib.contextmanager
def model_threads(config: Config) -> Iterator[None]:
    """OpenMP and BLAS threads as ``[tool.mlci] threads`` says, for every stage running the model.

    Fitting makes the same model everywhere with it; predicting (checks, champion scoring, the
    release smoke test) does not depend on it, but two sessions side by side, each spinning
    OpenMP threads on every core, slowed a ``HistGradientBoosting`` check six-fold.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=config.threads):
        yield


def fit(config: Config, manifest: Manifest, table: Table) -> Fitted:
    """Split stratified, fit the estimator, and evaluate it on the held-out rows.

    With ``[tool.mlci] threads`` OpenMP and BLAS threads, whatever the machine's core count or
    ``OMP_NUM_THREADS`` says: a laptop, a runner and the test sessions make the same model.
    """
    from threadpoolctl import threadpool_limits

    # Built first: its import loads the OpenMP and BLAS libraries that the limit then reaches.
    # A wrong estimator fails before any work.
    estimator = build_estimator(
        config.estimator,
        columns=manifest.features,
        prepare=config.prepare,
        target=manifest.target_column,
        task=config.task_setting,
    )
    warning = determinism_warning(config.estimator)
    if warning:
        print(f"mlci: warning: {warning}", file=sys.stderr)
    with threadpool_limits(limits=config.threads):
        return _fit(config, manifest, table, estimator)


def _fit(config: Config, manifest: Manifest, table: Table, estimator: Any) -> Fitted:

    assert table.labels is not None
    task = task_of_target(manifest.target_column)
    features = model_input(table.features, manifest.features)
    labels = target_array(table.labels, task)
    rows = split(config, labels, task)
    test_rows = rows[1]
    expected = outputs(labels[test_rows], task)
    metrics, predicted = _fit_and_score(
        estimator,
        f"[tool.mlci.estimator]: training {config.estimator.class_path}",
        (features, labels),
        rows,
        manifest,
    )
    simpler = {
        name: simpler_score(spec, (features, labels), rows, manifest, config.prepare)
        for name, spec in config.gate.simpler.models(task).items()
    }
    if simpler:
        metrics[SIMPLER] = simpler
    metrics[IMPORTANCE] = importance(
        estimator,
        features[test_rows],
        labels[test_rows],
        [column.name for column in manifest.features],
        config.seed,
        task,
    )
    predictions = {
        "lines": [int(row) + FIRST_LINE for row in test_rows],
        "expected": expected,
        "predicted": predicted,
        "sha256": predictions_fingerprint(predicted),
    }
    return Fitted(estimator, metrics, predictions)


IMPORTANCE = "feature_importance"  # in metrics.json: per feature, the score lost to shuffling
IMPORTANCE_REPEATS = 5
IMPORTANCE_SCORING = {"classification": "accuracy", REGRESSION: "r2"}


def target_array(labels: Sequence[Any], task: str) -> Any:
    """The target as the estimator gets it: labels as objects, a quantity as floats."""
    import numpy as np

    return np.asarray(labels, dtype=np.float64 if task == REGRESSION else object)


def outputs(values: Any, task: str) -> list[Any]:
    """Targets or predictions as recorded in predictions.json: labels as text, numbers as floats.

    A float's JSON form is its shortest exact repr, so a rerun's predictions compare exactly.
    """
    if task == REGRESSION:
        return [float(value) for value in values]
    return [str(value) for value in values]


def _fit_and_score(
    estimator: Any, what: str, data: tuple[Any, Any], rows: tuple[Any, Any], manifest: Manifest
) -> tuple[dict[str, Any], list[str]]:
    """Fit on the training rows, score on the held-out rows; ``what`` names a failed fit."""
    (features, labels), (train_rows, test_rows) = data, rows
    try:
        estimator.fit(features[train_rows], labels[train_rows])
    except (TypeError, ValueError) as exc:
        raise MlciError(f"{what} failed: {exc}") from None
    task = task_of_target(manifest.target_column)
    expected = outputs(labels[test_rows], task)
    return score(
        estimator,
        features[test_rows],
        expected,
        manifest.target_column.labels,
        len(train_rows),
        task,
    )


def simpler_score(
    spec: EstimatorSpec,
    data: tuple[Any, Any],
    rows: tuple[Any, Any],
    manifest: Manifest,
    prepare: PrepareConfig | None = None,
) -> dict[str, Any]:
    """Fit a simpler model on the candidate's training rows; score it on the same held-out rows.

    It gets the candidate's preparation, but for what only the candidate's estimator may support
    (native categories, NaN passed through): there it takes the default for its own estimator.
    """
    from sklearn.exceptions import ConvergenceWarning

    where = "[tool.mlci.gate.simpler] model"
    prepare = prepare or PrepareConfig()
    simpler = PrepareConfig(
        "auto" if prepare.categorical == "native" else prepare.categorical,
        "auto" if prepare.numeric == "passthrough" else prepare.numeric,
    )
    estimator = build_estimator(spec, where, manifest.features, simpler, manifest.target_column)
    with warnings.catch_warnings():  # a baseline that does not converge is still a baseline
        warnings.simplefilter("ignore", ConvergenceWarning)
        scored, _ = _fit_and_score(
            estimator, f"{where}: training {spec.name}", data, rows, manifest
        )
    return {
        "estimator": spec.resolved(),
        "metrics": {
            name: scored[name] for name in compared(task_of_metrics(scored)) if name in scored
        },
    }


def importance(
    model: Any, features: Any, labels: Any, names: list[str], seed: int, task: str = ""
) -> dict[str, dict[str, float]]:
    """Permutation importance on the held-out rows: the score lost when a column is shuffled.

    The score is accuracy for a classifier, R² for a regressor.
    scikit-learn's ``permutation_importance`` with the run's seed, so the same run gives the
    same numbers. A feature at or below zero does not help the model on these rows.
    """
    from sklearn.inspection import permutation_importance

    result = permutation_importance(
        model,
        features,
        labels,
        scoring=IMPORTANCE_SCORING.get(task, "accuracy"),
        n_repeats=IMPORTANCE_REPEATS,
        random_state=seed,
    )
    # + 0.0: shuffles whose changes cancel can average to -1e-18, shown as "-0.0000" otherwise
    return {
        name: {"mean": round(float(mean), 6) + 0.0, "std": round(float(std), 6)}
        for name, mean, std in zip(names, result.importances_mean, result.importances_std)
    }


def score(
    model: Any,
    features: Any,
    expected: list[Any],
    labels: Sequence[str],
    train_size: int,
    task: str = "classification",
) -> tuple[dict[str, Any], list[Any]]:
    """A model's metrics on labelled rows, and its predictions (for training and the gate)."""
    predicted = outputs(model.predict(features), task)
    if task == REGRESSION:
        return regression_metrics(expected, predicted, train_size=train_size), predicted
    metrics = compute_metrics(expected, predicted, labels, train_size=train_size)
    if len(labels) == 2 and hasattr(model, "predict_proba"):
        positive = [str(c) for c in model.classes_].index(labels[-1])
        scores = model.predict_proba(features)[:, positive]
        metrics.update(binary_metrics(expected, [float(s) for s in scores], labels[-1]))
    return metrics, predicted


def held_out_features(predictions: dict[str, Any], table: Table) -> list[list[Any]]:
    """The feature rows a run was evaluated on, found by the data-file lines it recorded."""
    return [list(table.features[line - FIRST_LINE]) for line in predictions["lines"]]


def score_held_out(config: Config, model: Any, data_sha256: str | None = None) -> dict[str, Any]:
    """Another model's metrics on the held-out rows of the current artifacts (champion scoring)."""

    manifest, table = load_data(config, data_sha256)
    recorded = read_json(Artifacts.of(config).predictions, "predictions")
    features = model_input(held_out_features(recorded, table), manifest.features)
    train_size = len(table.features) - len(features)
    with model_threads(config):
        metrics, _ = score(
            model,
            features,
            list(recorded["expected"]),
            manifest.target_column.labels,
            train_size,
            task_of_target(manifest.target_column),
        )
    return metrics


def train(config: Config, *, force: bool = False) -> TrainResult:
    """Train unless the artifacts are up to date for the current inputs (or ``force``)."""
    artifacts = Artifacts.of(config)
    status = stage.check(config)
    if status.up_to_date and not force:
        assert status.lineage is not None
        return TrainResult(artifacts, read_json(artifacts.metrics, "metrics"), status.lineage, True)

    if status.inputs["data"] is None:
        raise MlciError(f"{config.relative(config.data)}: data file not found")
    manifest, table = load_data(config, status.inputs["data"])
    _remove_stale_staging(artifacts.folder)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=_ensure(artifacts.folder)))
    try:
        lineage: dict[str, Any] = {
            "status": "running",
            "stage": {"key": status.key, "inputs": status.inputs},
            "started_at": utc_now(),
        }
        # The key is on disk before training starts, as DVC records inputs before running.
        staged = Artifacts(staging, config.model_format)
        atomic_write_json(staged.lineage, lineage)
        fitted = fit(config, manifest, table)
        model_sha = save_model(fitted.estimator, staged.model)
        atomic_write_json(staged.metrics, fitted.metrics)
        atomic_write_json(staged.predictions, fitted.predictions)
        lineage.update(
            status=stage.COMPLETE,
            mlci_version=__version__,
            config=config.resolved(),
            data={
                "path": config.relative(config.data),
                "sha256": status.inputs["data"],
                "rows": manifest.rows,
                "schema": manifest.schema(),
            },
            python=stage.python_id(),
            packages=dict(package_versions()),
            git_commit=git_commit(config.root),
            outputs={
                "model": model_sha,
                "metrics": sha256_file(staged.metrics),
                "predictions": fitted.predictions["sha256"],
            },
            finished_at=utc_now(),
        )
        atomic_write_json(staged.lineage, lineage)
        _commit(staged, artifacts)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return TrainResult(artifacts, fitted.metrics, lineage, False)


def section(config: Config, result: TrainResult) -> Section:
    """The training run's report section: what was trained on what, and its metrics."""
    data, metrics = result.lineage["data"], result.metrics
    return Section(
        f"Training: {'up to date' if result.up_to_date else 'trained'}",
        (
            f"{config.estimator.name} on {data['rows']} rows of {data['path']}, "
            f"{metrics['train_size']} train / {metrics['test_size']} held out, "
            f"{result.lineage['python']}",
        ),
        *_summary(metrics),
        blocks=(*confusion_block(metrics), *simpler_block(metrics), *importance_block(metrics)),
    )


def _summary(metrics: dict[str, Any]) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    header, rows = summary(metrics)
    return tuple(header), tuple(map(tuple, rows))


def simpler_block(metrics: dict[str, Any]) -> tuple[str, ...]:
    """The candidate beside the simpler models fitted on its split, as a Markdown table."""
    found = metrics.get(SIMPLER)
    if not isinstance(found, dict) or not found:
        return ()
    names = [name for name in compared(task_of_metrics(metrics)) if name in metrics]
    rows = [["**candidate**", *(f"{metrics[name]:.4f}" for name in names)]]
    for model, entry in found.items():
        theirs = entry.get("metrics", {})
        rows.append([model, *(_four(theirs.get(name)) for name in names)])
    table = markdown_table(["model", *names], rows)
    return (
        f"Simpler models on the same split (the gate asks the candidate to beat them):\n\n{table}",
    )


def _four(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"


def importance_block(metrics: dict[str, Any]) -> tuple[str, ...]:
    """Permutation importance per feature as a Markdown table, most important first."""
    found = metrics.get(IMPORTANCE)
    if not isinstance(found, dict) or not found:
        return ()
    ranked = sorted(found.items(), key=lambda item: -item[1]["mean"])
    rows = [[name, f"{v['mean']:.4f}", f"{v['std']:.4f}"] for name, v in ranked]
    lost = (
        "R² lost when shuffled"
        if task_of_metrics(metrics) == REGRESSION
        else ("accuracy lost when shuffled")
    )
    table = markdown_table(["feature", lost, "std"], rows)
    return (
        f"Permutation importance on the held-out rows ({IMPORTANCE_REPEATS} shuffles):\n\n{table}",
    )


def confusion_block(metrics: dict[str, Any]) -> tuple[str, ...]:
    """The confusion matrix as a Markdown table (rows: true label, columns: predicted)."""
    matrix = metrics.get("confusion_matrix")
    if not isinstance(matrix, dict) or not matrix.get("labels"):
        return ()
    labels = [str(label) for label in matrix["labels"]]
    rows = [
        [Markup(f"**{escape(label)}**"), *map(str, counts)]
        for label, counts in zip(labels, matrix["matrix"])
    ]
    table = markdown_table([Markup("true \\ predicted"), *labels], rows)
    return (f"Confusion matrix on the {metrics.get('test_size', '')} held-out rows:\n\n{table}",)


def _commit(staged: Artifacts, artifacts: Artifacts) -> None:
    """Move the staged files into place, lineage last: until it lands, the run is not complete."""
    for source, target in zip(staged.files, artifacts.files):
        os.replace(source, target)


def _remove_stale_staging(folder: Path) -> None:
    """Remove staging folders left behind by runs that were killed."""
    if folder.is_dir():
        for leftover in folder.glob(f"{STAGING_PREFIX}*"):
            with contextlib.suppress(OSError):
                shutil.rmtree(leftover)


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder
