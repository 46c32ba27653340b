"""What changed between the current artifacts and the committed baseline: metrics and params."""

from __future__ import annotations

import dataclasses
from typing import Any

from mlci._report import Section
from mlci.pipeline._baseline import TOLERANCE
from mlci.pipeline._evaluate import scalar_metrics
from mlci.pipeline._gate import Reference


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


def changes(metrics: dict[str, Any], params: dict[str, Any], reference: Reference) -> list[Change]:
    """Every metric and param of the current run next to the reference's (none when it has none)."""
    comparable = reference.metrics is not None
    result = []
    for kind, new, old in (
        ("metric", scalar_metrics(metrics), reference.metrics or {}),
        ("param", _flatten(params), _flatten((comparable and reference.params) or {})),
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


def shown(found: list[Change], reference: Reference, everything: bool) -> list[Change]:
    """What a diff shows: the changes, or every value when asked or when nothing is comparable."""
    return [c for c in found if everything or c.changed or reference.metrics is None]


def section(found: list[Change], reference: Reference, *, everything: bool = False) -> Section:
    """The diff's report section, against the gate's reference."""
    if reference.metrics is not None:
        title = f"Changes against the {reference.name}"
    else:
        title = f"No comparison: {reference.note or 'no reference'}; current values only"
    table = rows(shown(found, reference, everything), everything=True)
    return Section(
        title,
        header=tuple(HEADER),
        rows=tuple(map(tuple, table)),
        empty="No changes.",
        headline=title + ":",
    )
