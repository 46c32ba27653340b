"""`nox -s bench -- --check`: this run's ratios against the committed benchmarks/RESULTS.md.

Absolute times move with the machine; ratios of two figures measured side by side in one run
move much less, so the check compares those. Each ratio RESULTS.md prints is read back from its
`- label: **N.NNx**` line; a ratio regresses when it moved the wrong way by more than the
tolerance (relative to the committed value). Not checked: the before/after rows of past
speed-ups, and ratios over a sub-millisecond figure (a listing in one process), whose noise
alone exceeds any useful tolerance.
"""

from __future__ import annotations

import dataclasses
import re

RATIO_LINE = re.compile(r"^- (?P<label>.+): \*\*(?P<value>[0-9]+(?:\.[0-9]+)?)x\*\*$", re.MULTILINE)
LOWER, HIGHER = "lower", "higher"
# Which way is better, by the labels report.py writes (a test checks each pattern still matches).
BETTER = (
    (re.compile(r"^warm `make ci` / bare tools"), LOWER),
    (re.compile(r"^(warm|cold|fresh-clone) `make ci` / seed flow$"), LOWER),
    (re.compile(r"^cold: virtualenv \+ pip / uv$"), HIGHER),
    (re.compile(r"^full training / cache hit$"), HIGHER),
    (re.compile(r": `mlci serve` / `mlflow` requests/s$"), HIGHER),
    (re.compile(r"^`(register|promote|list)` on S3 / on a folder$"), LOWER),
    (re.compile(r"^tracked / untracked training$"), LOWER),
    (re.compile(r"^release, MLflow / folder$"), LOWER),
)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One ratio: its committed value, this run's, and whether it stayed within tolerance."""

    label: str
    committed: float
    measured: float
    better: str
    tolerance: float

    @property
    def limit(self) -> float:
        """The worst value still accepted."""
        if self.better == LOWER:
            return self.committed * (1 + self.tolerance)
        return self.committed / (1 + self.tolerance)

    @property
    def passed(self) -> bool:
        if self.better == LOWER:
            return self.measured <= self.limit
        return self.measured >= self.limit


def ratios(markdown: str) -> dict[str, float]:
    """Every `- label: **N.NNx**` line of a RESULTS.md, by label."""
    return {m["label"]: float(m["value"]) for m in RATIO_LINE.finditer(markdown)}


def better(label: str) -> str | None:
    """Which way the ratio should go, or None for one that is not checked."""
    return next((way for pattern, way in BETTER if pattern.search(label)), None)


def compare(committed: str, measured: str, tolerance: float) -> list[Comparison]:
    """The checked ratios found in both texts, in this run's order."""
    before = ratios(committed)
    found = []
    for label, value in ratios(measured).items():
        way = better(label)
        if way is not None and label in before:
            found.append(Comparison(label, before[label], value, way, tolerance))
    return found


def render(comparisons: list[Comparison], tolerance: float) -> str:
    """A Markdown section: every checked ratio, its limit, and the verdict."""
    failed = [c for c in comparisons if not c.passed]
    verdict = "FAILED" if failed else "passed"
    lines = [
        f"## Benchmark check: {verdict}",
        "",
        f"Ratios of this run against the committed `benchmarks/RESULTS.md`; a ratio may move the "
        f"wrong way by {tolerance:.0%} of its committed value.",
        "",
        "| ratio | committed | this run | better | limit | result |",
        "|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        result = "pass" if c.passed else "FAIL"
        lines.append(
            f"| {c.label} | {c.committed:.2f}x | {c.measured:.2f}x | {c.better} | "
            f"{c.limit:.2f}x | {result} |"
        )
    return "\n".join(lines) + "\n"
