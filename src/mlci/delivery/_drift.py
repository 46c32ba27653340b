"""Drift: does a new batch still look like the data the model was trained on?

Per column, after Evidently's defaults: two-sample Kolmogorov-Smirnov for numeric columns when the
reference has at most ``ks_max_rows`` rows, Wasserstein distance over the reference's standard
deviation above that, chi-squared for the label (a regressor's target is a number, tested like
one). PSI is reported alongside. The dataset drifts when the share of drifted columns reaches
``share``. Beside the columns, the model's predictions on the batch are compared with its
predictions on the reference (Evidently's prediction drift): reported, not counted, since they
move because the columns do.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci._report import Markup, Section, mermaid_xychart
from mlci.delivery._settings import DriftConfig, drift_settings
from mlci.errors import MlciError
from mlci.pipeline import (
    BOOLEAN,
    CLASSIFICATION,
    NUMERIC,
    PARQUET_SUFFIXES,
    REGRESSION,
    Column,
    Config,
    Manifest,
    Table,
    load_manifest,
    load_trained,
    model_input,
    model_threads,
    outputs,
    read_file,
)

if TYPE_CHECKING:
    from mlci.delivery._registry import Registry

RESULTS = "drift.json"  # in the artifacts folder, unless --output says otherwise
PSI_BINS = 10
PSI_FLOOR = 1e-4  # empty bins get this share, so PSI stays finite
FEW_ROWS = 30  # below this many rows a test has little power: said in the note
BATCH_SUFFIXES = (".csv", *PARQUET_SUFFIXES)  # the files in `incoming` that are batches


@dataclasses.dataclass(frozen=True)
class ColumnDrift:
    """One column's test, its outcome and the threshold it was held to."""

    column: str
    test: str
    statistic: float | None
    p_value: float | None
    distance: float | None
    threshold: float
    drifted: bool
    psi: float | None = None
    note: str = ""
    # Each side's share of rows per bin (the reference's deciles, or the labels): the pictures.
    histogram: dict[str, list[Any]] | None = None
    # False for the share of missing values: reported beside its column, not a column itself.
    counted: bool = True


@dataclasses.dataclass(frozen=True)
class DriftReport:
    """Every column's result and the dataset verdict for one batch."""

    batch: str
    reference: str
    batch_rows: int
    reference_rows: int
    columns: list[ColumnDrift]
    share_threshold: float
    psi_threshold: float = 0.1  # PSI at or above this is marked (never decisive)

    @property
    def tested(self) -> list[ColumnDrift]:
        """The columns the dataset verdict counts (not the missing-value shares)."""
        return [c for c in self.columns if c.counted]

    @property
    def share(self) -> float:
        """The share of tested columns that drifted."""
        tested = self.tested
        return sum(c.drifted for c in tested) / len(tested) if tested else 0.0

    @property
    def drifted(self) -> bool:
        """Dataset drift: the share of drifted columns reaches the threshold."""
        return bool(self.tested) and self.share >= self.share_threshold

    @property
    def drifted_columns(self) -> list[str]:
        """The names of the columns that drifted (a missing-value share among them)."""
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: per column, then the dataset verdict."""
        return {
            "batch": self.batch,
            "reference": self.reference,
            "batch_rows": self.batch_rows,
            "reference_rows": self.reference_rows,
            "columns": [_finite_json(dataclasses.asdict(c)) for c in self.columns],
            "dataset": {
                "drifted_columns": self.drifted_columns,
                "share": self.share,
                "threshold": self.share_threshold,
                "drifted": self.drifted,
            },
        }


def detect(
    reference: Table,
    batch: Table,
    settings: DriftConfig,
    *,
    labels: tuple[str, ...] = (),
    names: tuple[str, str] = ("reference", "batch"),
    task: str = CLASSIFICATION,
    predictions: tuple[list[Any], list[Any]] | None = None,
) -> DriftReport:
    """Compare every feature column by its kind, its share of missing values, and the label.

    ``predictions``: the model's on the reference and on the batch, compared beside the columns.
    """
    columns = []
    kinds = reference.columns or tuple(Column(name, NUMERIC) for name in reference.feature_names)
    for position, column in enumerate(kinds):
        ref = [row[position] for row in reference.features]
        cur = [row[position] for row in batch.features]
        present = [v for v in ref if v is not None], [v for v in cur if v is not None]
        if not (present[0] and present[1]):
            pass  # a column missing in every row of one side: its missing share says so
        elif column.kind == BOOLEAN:  # two values: chi-squared, as for categories
            ref, cur = (["true" if v else "false" for v in side] for side in present)
            columns.append(categories(column.name, ref, cur, settings, ("false", "true")))
        elif column.numeric:
            columns.append(numeric(column.name, *present, settings))
        else:
            columns.append(categories(column.name, *present, settings, column.values))
        if len(present[0]) < len(ref) or len(present[1]) < len(cur):
            columns.append(missing_share(column.name, ref, cur, settings))
    if reference.labels is not None and batch.labels is not None:
        if task == REGRESSION:
            columns.append(numeric("target", reference.labels, batch.labels, settings))
        else:
            columns.append(label(reference.labels, batch.labels, settings, labels))
    if predictions is not None:
        columns.append(prediction(*predictions, settings, task, labels))
    return DriftReport(
        names[1],
        names[0],
        len(batch.features),
        len(reference.features),
        columns,
        settings.share,
        settings.psi,
    )


def numeric(
    name: str, reference: list[float], current: list[float], settings: DriftConfig
) -> ColumnDrift:
    """KS on a small reference, normalized Wasserstein on a large one; PSI either way."""
    import numpy as np
    from scipy import stats

    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    edges, expected, actual = _bins(ref, cur)
    psi_value = _psi(expected, actual)
    histogram = {
        "edges": [float(edge) for edge in edges],
        "reference": [round(float(share), 6) for share in expected],
        "batch": [round(float(share), 6) for share in actual],
    }
    notes = []
    if len(cur) < FEW_ROWS:
        notes.append(f"only {len(cur)} rows: the test has little power")
    if psi_value >= settings.psi:
        notes.append(f"PSI {psi_value:.3f} >= {settings.psi:g}")
    if len(ref) <= settings.ks_max_rows:
        result = stats.ks_2samp(ref, cur)
        p_value = float(result.pvalue)
        return ColumnDrift(
            name,
            "ks",
            float(result.statistic),
            p_value,
            None,
            settings.ks_p_value,
            p_value <= settings.ks_p_value,
            psi_value,
            "; ".join(notes),
            histogram,
        )
    distance = float(stats.wasserstein_distance(ref, cur))
    spread = float(np.std(ref))
    if spread == 0.0:
        notes.append("constant in the reference")
        normalized = 0.0 if distance == 0.0 else math.inf
    else:
        normalized = distance / spread
    return ColumnDrift(
        name,
        "wasserstein",
        distance,
        None,
        normalized,
        settings.wasserstein,
        normalized >= settings.wasserstein,
        psi_value,
        "; ".join(notes),
        histogram,
    )


def label(
    reference: list[str], current: list[str], settings: DriftConfig, labels: tuple[str, ...] = ()
) -> ColumnDrift:
    """Chi-squared test of homogeneity on the two label count vectors."""
    return categories("label", reference, current, settings, labels)


def prediction(
    reference: list[Any],
    current: list[Any],
    settings: DriftConfig,
    task: str = CLASSIFICATION,
    labels: tuple[str, ...] = (),
) -> ColumnDrift:
    """The model's predictions on the batch against those on the reference; not counted."""
    if task == REGRESSION:
        found = numeric("prediction", reference, current, settings)
    else:
        found = categories("prediction", reference, current, settings, labels)
    return dataclasses.replace(found, counted=False)


def missing_share(
    name: str, reference: list[Any], current: list[Any], settings: DriftConfig
) -> ColumnDrift:
    """Chi-squared on missing against present counts: did the share of missing values move?"""
    import numpy as np
    from scipy import stats

    counts = np.array(
        [
            [sum(v is None for v in side), sum(v is not None for v in side)]
            for side in (reference, current)
        ],
        dtype=np.float64,
    )
    shares = counts[:, 0] / counts.sum(axis=1)
    note = f"missing {shares[0]:.1%} in the reference, {shares[1]:.1%} in the batch"
    if counts[:, 0].sum() == 0 or counts[:, 1].sum() == 0:
        statistic, p_value = 0.0, 1.0
    else:
        statistic, p_value, _, _ = stats.chi2_contingency(counts)
    return ColumnDrift(
        f"{name} (missing)",
        "missing",
        float(statistic),
        float(p_value),
        None,
        settings.chi2_p_value,
        float(p_value) <= settings.chi2_p_value,
        note=note,
        counted=False,
    )


def categories(
    name: str,
    reference: list[str],
    current: list[str],
    settings: DriftConfig,
    known: tuple[str, ...] = (),
) -> ColumnDrift:
    """Chi-squared test of homogeneity on the two category count vectors; PSI over the shares."""
    import numpy as np
    from scipy import stats

    seen = list(known or sorted(set(reference) | set(current)))
    counts = np.array(
        [[reference.count(x) for x in seen], [current.count(x) for x in seen]], dtype=np.float64
    )
    shown = [x for x, total in zip(seen, counts.sum(axis=0)) if total > 0]
    counts = counts[:, counts.sum(axis=0) > 0]
    shares = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    histogram: dict[str, list[Any]] = {
        "categories": [str(x) for x in shown],
        "reference": [round(float(v), 6) for v in shares[0]],
        "batch": [round(float(v), 6) for v in shares[1]],
    }
    if counts.shape[1] < 2:
        return ColumnDrift(
            name,
            "chi2",
            None,
            None,
            None,
            settings.chi2_p_value,
            False,
            note=f"one {'label' if name == 'label' else 'value'} on both sides: nothing to compare",
        )
    statistic, p_value, _, _ = stats.chi2_contingency(counts)
    note = f"only {len(current)} rows: the test has little power" if len(current) < FEW_ROWS else ""
    return ColumnDrift(
        name,
        "chi2",
        float(statistic),
        float(p_value),
        None,
        settings.chi2_p_value,
        float(p_value) <= settings.chi2_p_value,
        psi=None if name == "label" else _psi(shares[0], shares[1]),
        note=note,
        histogram=histogram,
    )


def psi(reference: Any, current: Any) -> float:
    """Population stability index over the reference's deciles."""
    _, expected, actual = _bins(reference, current)
    return _psi(expected, actual)


def _bins(reference: Any, current: Any) -> tuple[Any, Any, Any]:
    """The reference's decile edges, and each side's share of rows per bin."""
    import numpy as np

    edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)))
    if len(edges) < 2:  # a constant reference: one bin for its value, one for everything else
        same = float(np.mean(current == edges[0]))
        expected = np.array([1.0, 0.0])
        actual = np.array([same, 1.0 - same])
        edges = np.array([edges[0], edges[0], edges[0]])
    else:
        inner = edges[1:-1]
        expected = np.bincount(
            np.searchsorted(inner, reference, side="right"), minlength=len(edges) - 1
        )
        actual = np.bincount(
            np.searchsorted(inner, current, side="right"), minlength=len(edges) - 1
        )
        expected = expected / expected.sum()
        actual = actual / actual.sum()
    return edges, expected, actual


def _psi(expected: Any, actual: Any) -> float:
    import numpy as np

    expected = np.clip(expected, PSI_FLOOR, None)
    actual = np.clip(actual, PSI_FLOOR, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def reference_of(
    config: Config, registry: Registry | None = None
) -> tuple[Path | bytes, str, Manifest]:
    """Production's training data and manifest when there is one, else the configured data.

    The manifest is the version's own: batches are judged by the columns its model takes. The
    data comes from the registry (verified against its recorded SHA-256), wherever it lives.
    """
    path, name, manifest, _ = _reference(config, registry)
    return path, name, manifest


def _reference(
    config: Config, registry: Registry | None
) -> tuple[Path | bytes, str, Manifest, Callable[[], Any]]:
    """The reference data and manifest, and how to load the model that goes with them."""
    from mlci.delivery._registry import DATA, PRODUCTION, Registry

    registry = Registry.of(config) if registry is None else registry
    production = registry.alias(PRODUCTION)
    if production is None:
        manifest = load_manifest(config.manifest)
        return config.data, config.relative(config.data), manifest, lambda: load_trained(config)
    found = registry
    return (
        registry.read_file(production, DATA),
        f"training data of production (version {production.number})",
        registry.manifest(production),
        lambda: found.load_model(
            production, config.skops_trusted, model_format=config.model_format
        ),
    )


def _predicted(config: Config, load: Callable[[], Any], tables: list[Table], task: str) -> Any:
    """The model's predictions on each table, or None when there is no model to ask."""
    try:
        model = load()
    except MlciError:  # not trained yet, and nothing in production: the columns alone
        return None
    with model_threads(config):
        return [outputs(model.predict(model_input(t.features, t.columns)), task) for t in tables]


def incoming(config: Config) -> list[Path]:
    """The new batches waiting in ``[tool.mlci.drift] incoming``, by name."""
    folder = config.root / drift_settings(config).incoming
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in BATCH_SUFFIXES)


def check(
    config: Config, batches: list[Path], registry: Registry | None = None
) -> list[DriftReport]:
    """Validate each batch against the manifest, then compare it with the reference."""
    path, name, manifest, load = _reference(config, registry)
    reference = _read(path, name, manifest, require_target=True)
    settings = drift_settings(config)
    tables = []
    for batch in batches:
        display = config.relative(batch.resolve())
        tables.append((display, _read(batch, display, manifest, require_target=False)))
    predicted = _predicted(config, load, [reference, *(t for _, t in tables)], manifest.task)
    reports = []
    for index, (display, table) in enumerate(tables, start=1):
        reports.append(
            detect(
                reference,
                table,
                settings,
                labels=manifest.target_column.labels,
                names=(name, display),
                task=manifest.task,
                predictions=None if predicted is None else (predicted[0], predicted[index]),
            )
        )
    return reports


def _read(source: Path | bytes, display: str, manifest: Any, *, require_target: bool) -> Table:
    # read_file refuses a file without rows, so every table here has at least one.
    return read_file(source, manifest, require_target=require_target, display=display)


def _finite_json(row: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinity: an infinite distance is written as a string."""
    return {k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in row.items()}


def section(reports: list[DriftReport]) -> Section:
    """The drift report section: one table per batch, under its verdict."""
    drifted = [report.batch for report in reports if report.drifted]
    title = f"drift in {', '.join(drifted)}" if drifted else "no drift"
    parts = []
    for report in reports:
        verdict = "DRIFT" if report.drifted else "no drift"
        tested = report.tested
        moved = [c.column for c in report.columns if c.drifted and not c.counted]
        summary = (
            f"{report.batch}: {verdict}: {sum(c.drifted for c in tested)} of {len(tested)} "
            f"columns drifted (share {report.share:.2f}, threshold {report.share_threshold:g}); "
            + (f"the share of missing values moved in {', '.join(moved)}; " if moved else "")
            + f"{report.batch_rows} rows against {report.reference_rows} of the {report.reference}"
        )
        parts.append(
            Section(
                summary,
                header=tuple(HEADER),
                rows=tuple(map(tuple, rows(report))),
                blocks=tuple(filter(None, [chart(report)])),
            )
        )
    return Section(
        f"Drift: {title}",
        tuple(Markup(part.markdown(level=3)) for part in parts),
        headline="\n\n".join(part.text() for part in parts) + f"\n\n{title}",
    )


def chart(report: DriftReport) -> str:
    """PSI per column as bars, its threshold as a line: a Mermaid chart ("" without PSI)."""
    scored = [(c.column, c.psi) for c in report.columns if c.psi is not None]
    if not scored:
        return ""
    values = [float(value or 0.0) for _, value in scored]
    return mermaid_xychart(
        f"{report.batch}: PSI per column (line: {report.psi_threshold:g})",
        [name for name, _ in scored],
        "PSI",
        bars=values,
        line=[report.psi_threshold] * len(scored),
    )


HEADER = ["column", "test", "statistic", "p-value / distance", "threshold", "PSI", "drifted"]


def rows(report: DriftReport) -> list[list[str]]:
    """The table for the terminal and the CI summary."""

    def show(value: float | None) -> str:
        return "-" if value is None else f"{value:.4g}"

    return [
        [
            c.column,
            c.test,
            show(c.statistic),
            f"p={show(c.p_value)}" if c.p_value is not None else f"d={show(c.distance)}",
            ("p <= " if c.test != "wasserstein" else "d >= ") + f"{c.threshold:g}",
            show(c.psi),
            ("DRIFT" if c.drifted else "no") + (f" ({c.note})" if c.note else ""),
        ]
        for c in report.columns
    ]
