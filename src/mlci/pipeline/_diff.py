"""What changed between the current artifacts and the committed baseline: metrics and params."""

from __future__ import annotations

import dataclasses
from typing import Any

from mlci.pipeline._baseline import TOLERANCE
from mlci.pipeline._evaluate import scalar_metrics


@dataclasses.dataclass(frozen=True)
class Change:
    """One metric or param, old and new."""

    kind: str
    name: str
    old: Any
    new: Any

    @property
    def changed(self) -> bool:
        """True when the value moved (numbers beyond the tolerance)."""
        if isinstance(self.old, (int, float)) and isinstance(self.new, (int, float)):
            return abs(float(self.new) - float(self.old)) > TOLERANCE
        return bool(self.old != self.new)

    @property
    def delta(self) -> str:
        """New minus old for numbers, blank otherwise."""
        if isinstance(self.old, (int, float)) and isinstance(self.new, (int, float)):
            return f"{self.new - self.old:+.4f}"
        return ""


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def changes(
    metrics: dict[str, Any], params: dict[str, Any], baseline: dict[str, Any]
) -> list[Change]:
    """Every metric and param of the current run next to the baseline's."""
    result = []
    for kind, new, old in (
        ("metric", scalar_metrics(metrics), baseline.get("metrics", {})),
        ("param", _flatten(params), _flatten(baseline.get("params", {}))),
    ):
        for name in sorted(set(new) | set(old)):
            result.append(Change(kind, name, old.get(name), new.get(name)))
    return result


HEADER = ["", "name", "baseline", "current", "delta"]


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def rows(found: list[Change], *, everything: bool = False) -> list[list[str]]:
    """Table rows, only for what changed unless ``everything``."""
    return [
        [change.kind, change.name, _show(change.old), _show(change.new), change.delta]
        for change in found
        if everything or change.changed
    ]
