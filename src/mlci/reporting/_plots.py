"""The report's pictures, drawn with matplotlib (the ``plots`` extra) on its Agg backend.

Each function takes a figure's plain data and returns PNG bytes. Nothing here is imported
unless matplotlib is installed (``available``); PNGs carry no date or version, so the same data
gives the same bytes.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from collections.abc import Callable
from typing import Any

EXTRA = "plots"
DPI = 100


def available() -> bool:
    """Whether matplotlib can be imported here."""
    return importlib.util.find_spec("matplotlib") is not None


def _figure(width: float, height: float) -> Any:
    with warnings.catch_warnings():
        # matplotlib 3.9 (the last for Python 3.9) calls pyparsing names that newer pyparsing
        # deprecates: a notice about its code, nothing a user can act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        import matplotlib

        matplotlib.use("Agg")  # no display, no window: files only
        from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def confusion(data: dict[str, Any]) -> bytes:
    """The confusion matrix as a heat map, with the counts in the cells."""
    labels = [str(label) for label in data["labels"]]
    matrix = data["matrix"]
    size = max(3.5, 0.9 * len(labels) + 2)
    figure = _figure(size, size * 0.85)
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    ticks = list(range(len(labels)))
    axes.set_xticks(ticks, labels, rotation=30 if len(labels) > 4 else 0)
    axes.set_yticks(ticks, labels)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    threshold = (max(map(max, matrix)) + min(map(min, matrix))) / 2
    for row, counts in enumerate(matrix):
        for column, count in enumerate(counts):
            color = image.cmap(0.0) if count > threshold else image.cmap(1.0)
            axes.text(column, row, str(count), ha="center", va="center", color=color)
    axes.set_title("held-out rows: true label (rows) against predicted (columns)", fontsize=9)
    return _png(figure)


def per_class(data: dict[str, Any]) -> bytes:
    """Precision, recall and F1 of each class, side by side."""
    classes = list(data)
    figure = _figure(max(4.5, 1.2 * len(classes) + 2), 3.2)
    axes = figure.subplots()
    width = 0.8 / 3
    for offset, metric in enumerate(("precision", "recall", "f1")):
        values = [data[name][metric] for name in classes]
        positions = [i + (offset - 1) * width for i in range(len(classes))]
        axes.bar(positions, values, width, label=metric)
    axes.set_xticks(range(len(classes)), classes, rotation=30 if len(classes) > 5 else 0)
    axes.set_ylim(0, 1.05)
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title("per class, on the held-out rows", fontsize=9)
    return _png(figure)


def importance(data: dict[str, Any]) -> bytes:
    """Each feature's permutation importance with its spread; idle features in grey."""
    features = data["features"]
    means = [float(score["mean"]) for score in data["scores"]]
    spreads = [float(score["std"]) for score in data["scores"]]
    figure = _figure(5.5, max(2.2, 0.35 * len(features) + 1))
    axes = figure.subplots()
    colors = ["tab:blue" if mean > 0 else "tab:gray" for mean in means]
    positions = list(range(len(features)))
    axes.barh(positions, means, xerr=spreads, color=colors)
    axes.set_yticks(positions, features)
    axes.invert_yaxis()
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_xlabel(f"{data.get('lost', 'accuracy')} lost when the feature is shuffled")
    axes.set_title("permutation importance, held-out rows", fontsize=9)
    return _png(figure)


def comparison(data: dict[str, Any]) -> bytes:
    """The candidate's metrics beside its reference's (baseline or production)."""
    metrics = [row["metric"] for row in data["rows"]]
    figure = _figure(max(4.5, 1.4 * len(metrics) + 2), 3.2)
    axes = figure.subplots()
    positions = range(len(metrics))
    candidate = [row["candidate"] or 0.0 for row in data["rows"]]
    reference = [row["reference"] or 0.0 for row in data["rows"]]
    axes.bar([p - 0.2 for p in positions], candidate, 0.4, label="candidate")
    axes.bar([p + 0.2 for p in positions], reference, 0.4, label=data["reference"])
    axes.set_xticks(list(positions), metrics)
    low = min([*candidate, *reference], default=0.0)
    axes.set_ylim(max(0.0, low - 0.1), 1.02 if max([*candidate, *reference]) <= 1 else None)
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title(f"candidate against {data['reference']}", fontsize=9)
    return _png(figure)


def simpler(data: dict[str, Any]) -> bytes:
    """The candidate's headline metrics beside the simpler models' on the same held-out rows.

    Scores between 0 and 1 share one axis; otherwise (a regressor's errors, in the target's
    units) each metric gets a panel of its own scale.
    """
    metrics, models = data["metrics"], data["models"]
    values = [value for scores in models.values() for value in scores]
    if values and min(values) >= 0.0 and max(values) <= 1.0:
        figure = _figure(max(4.5, 1.8 * len(metrics) + 2), 3.2)
        axes = figure.subplots()
        width = 0.8 / max(1, len(models))
        for index, (name, scores) in enumerate(models.items()):
            offset = (index - (len(models) - 1) / 2) * width
            axes.bar([p + offset for p in range(len(metrics))], scores, width, label=name)
        axes.set_xticks(list(range(len(metrics))), metrics)
        axes.set_ylim(0.0, 1.02)
        axes.legend(loc="lower right", fontsize=7)
        axes.set_title("candidate against simpler models, same split", fontsize=9)
        return _png(figure)
    figure = _figure(2.4 * len(metrics) + 1, 3.4)
    panels = figure.subplots(1, len(metrics), squeeze=False)[0]
    names = list(models)
    colors = [f"C{index}" for index in range(len(names))]
    for position, (axes, metric) in enumerate(zip(panels, metrics)):
        axes.bar(range(len(names)), [models[n][position] for n in names], color=colors)
        axes.set_xticks([])
        axes.axhline(0, color="black", linewidth=0.6)
        axes.set_title(metric, fontsize=9)
        axes.tick_params(axis="y", labelsize=7)
    figure.legend(
        [panels[0].patches[i] for i in range(len(names))],
        names,
        loc="outside lower center",
        ncols=min(4, len(names)),
        fontsize=7,
    )
    figure.suptitle("candidate against simpler models, same split", fontsize=9)
    return _png(figure)


def fit(data: dict[str, Any]) -> bytes:
    """A regressor's held-out rows: predicted against actual, with the diagonal of exactness."""
    expected, predicted = data["expected"], data["predicted"]
    figure = _figure(4.6, 4.2)
    axes = figure.subplots()
    axes.scatter(expected, predicted, s=10, alpha=0.6)
    low, high = min(*expected, *predicted), max(*expected, *predicted)
    axes.plot([low, high], [low, high], color="black", linewidth=0.8)
    axes.set_xlabel("actual")
    axes.set_ylabel("predicted")
    axes.set_title("held-out rows: predicted against actual", fontsize=9)
    return _png(figure)


def residuals(data: dict[str, Any]) -> bytes:
    """Residuals (predicted minus actual) against the prediction, around the zero line."""
    expected, predicted = data["expected"], data["predicted"]
    figure = _figure(5.0, 3.2)
    axes = figure.subplots()
    axes.scatter(predicted, [p - e for e, p in zip(expected, predicted)], s=10, alpha=0.6)
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("predicted - actual")
    axes.set_title("held-out rows: residuals against predicted", fontsize=9)
    return _png(figure)


def history(data: dict[str, Any]) -> bytes:
    """A metric across the registry's versions, with the aliases marked."""
    labels, values = data["labels"], data["values"]
    figure = _figure(max(4.5, 0.6 * len(labels) + 2), 3.0)
    axes = figure.subplots()
    axes.plot(range(len(values)), values, marker="o")
    axes.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 8 else 0)
    for position, (value, tags) in enumerate(zip(values, data["aliases"])):
        if tags:
            axes.annotate(
                tags,
                (position, value),
                textcoords="offset points",
                xytext=(0, 8),
                ha="center",
                fontsize=8,
            )
    axes.set_ylabel(data["metric"])
    axes.set_title(f"{data['metric']} by registry version", fontsize=9)
    return _png(figure)


def drift(data: dict[str, Any]) -> bytes:
    """One small panel per column: the reference's and the batch's distribution."""
    columns = data["columns"]
    count = len(columns)
    across = min(3, count)
    down = (count + across - 1) // across
    figure = _figure(3.4 * across, 2.6 * down)
    grid = figure.subplots(down, across, squeeze=False)
    for index, column in enumerate(columns):
        axes = grid[index // across][index % across]
        bins = column["histogram"]
        names = bins.get("categories") or [f"{low:.3g}" for low in bins["edges"][:-1]]
        positions = range(len(names))
        axes.bar([p - 0.2 for p in positions], bins["reference"], 0.4, label="reference")
        axes.bar([p + 0.2 for p in positions], bins["batch"], 0.4, label="batch")
        axes.set_xticks(list(positions), names, rotation=90, fontsize=6)
        verdict = "DRIFT" if column["drifted"] else "no drift"
        axes.set_title(
            f"{column['column']}: {column['summary']} ({verdict})",
            fontsize=8,
            color="tab:red" if column["drifted"] else "black",
        )
        axes.tick_params(axis="y", labelsize=7)
    for index in range(count, down * across):
        grid[index // across][index % across].set_visible(False)
    grid[0][0].legend(fontsize=7)
    return _png(figure)


DRAW: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "confusion": confusion,
    "fit": fit,
    "residuals": residuals,
    "per_class": per_class,
    "importance": importance,
    "comparison": comparison,
    "simpler": simpler,
    "history": history,
    "drift": drift,
}
