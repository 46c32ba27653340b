"""``/metrics``: the server's counters in Prometheus' text format (``prometheus_client``).

Requests by path and status, their latency, rows scored, predicted classes (a classifier) or a
histogram of predicted values (a regressor), rows whose class probabilities or predictions were
not finite, and from the model slot at each scrape: the served version, its
age and the failed reloads. Each app has its own registry: nothing global, nothing shared.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlci.pipeline import Column
    from mlci.serving._server import ModelSlot

PATHS = {"/invocations", "/ping", "/health", "/version", "/metrics"}  # others count as "other"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The server's Prometheus metrics, and the one call per event that updates them."""

    def __init__(self, slot: ModelSlot) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mlci_requests",
            "HTTP requests answered, by path and status code",
            ["path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlci_request_duration_seconds",
            "Time to answer a request, by path",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter("mlci_rows_scored", "Rows scored", registry=self.registry)
        self.predicted = Counter(
            "mlci_predictions",
            "Rows scored, by predicted class",
            ["label"],
            registry=self.registry,
        )
        self.unstable = Counter(
            "mlci_nonfinite_probabilities",
            "Rows whose class probabilities were NaN or infinite (answered with an error)",
            registry=self.registry,
        )
        self.nonfinite = Counter(
            "mlci_nonfinite_predictions",
            "Rows a regressor predicted NaN or infinity for (answered with an error)",
            registry=self.registry,
        )
        self.values: Any = None  # a regressor's histogram, made at its first answer
        self.registry.register(_SlotCollector(slot))

    def answered(self, path: str, status: int, seconds: float) -> None:
        """One request answered."""
        shown = path if path in PATHS else "other"
        self.requests.labels(shown, str(status)).inc()
        self.latency.labels(shown).observe(seconds)

    def scored(self, labels: list[Any], target: Column | None = None) -> None:
        """Rows scored: a classifier's predicted classes, a regressor's values (``target``)."""
        self.rows.inc(len(labels))
        if target is not None:
            histogram = self._histogram(target)
            for value in labels:
                histogram.observe(value)
            return
        # One increment per class, not per row: this runs on the event loop.
        for label, count in collections.Counter(labels).items():
            self.predicted.labels(label).inc(count)

    def failed(self, rows: int, what: str) -> None:
        """Rows whose probabilities, or a regressor's predictions, were not finite."""
        (self.nonfinite if what == "predictions" else self.unstable).inc(rows)

    def _histogram(self, target: Column) -> Any:
        """The predicted values' histogram: ten buckets over the first served target's range.

        Prometheus fixes a histogram's buckets when it is made; a later version with another
        range is counted in the same buckets (and ``+Inf``).
        """
        if self.values is None:
            from prometheus_client import Histogram

            self.values = Histogram(
                "mlci_predicted_value",
                "Values a regressor predicted",
                buckets=value_buckets(target.min, target.max),
                registry=self.registry,
            )
        return self.values

    def render(self) -> tuple[bytes, str]:
        """The text exposition, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def value_buckets(low: float | None, high: float | None, count: int = 10) -> tuple[float, ...]:
    """``count`` equal buckets' upper bounds over the target's range (its manifest's)."""
    if low is None or high is None or not high > low:
        return (0.0, 1.0, 10.0, 100.0, 1000.0)
    step = (high - low) / count
    return tuple(float(f"{low + step * i:.6g}") for i in range(1, count + 1))


class _SlotCollector:
    """What the model slot knows, read at each scrape: version, age, failed reloads."""

    def __init__(self, slot: ModelSlot) -> None:
        self.slot = slot

    def describe(self) -> list[Any]:
        return []  # collected fresh at each scrape

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        loaded = self.slot.current
        version = GaugeMetricFamily(
            "mlci_model_version", "The served registry version (NaN before the first load)"
        )
        version.add_metric([], float(loaded.version.number) if loaded else math.nan)
        yield version
        age = loaded.age_days() if loaded else None
        seconds = GaugeMetricFamily(
            "mlci_model_age_seconds", "Time since the served model was trained"
        )
        seconds.add_metric([], math.nan if age is None else age * 86400)
        yield seconds
        failures = CounterMetricFamily(
            "mlci_reload_failures", "Polls that could not load the alias's version"
        )
        failures.add_metric([], float(self.slot.reload_failures))
        yield failures
