"""``/metrics``: the server's counters in Prometheus' text format (``prometheus_client``).

Requests by path and status, their latency, rows scored, predicted classes, rows whose class
probabilities were not finite, and from the model slot at each scrape: the served version, its
age and the failed reloads. Each app has its own registry: nothing global, nothing shared.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        self.registry.register(_SlotCollector(slot))

    def answered(self, path: str, status: int, seconds: float) -> None:
        """One request answered."""
        shown = path if path in PATHS else "other"
        self.requests.labels(shown, str(status)).inc()
        self.latency.labels(shown).observe(seconds)

    def scored(self, labels: list[str]) -> None:
        """Rows scored, with their predicted classes."""
        self.rows.inc(len(labels))
        # One increment per class, not per row: this runs on the event loop.
        for label, count in collections.Counter(labels).items():
            self.predicted.labels(label).inc(count)

    def render(self) -> tuple[bytes, str]:
        """The text exposition, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


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
