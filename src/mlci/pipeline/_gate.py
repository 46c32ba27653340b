"""The quality gate: floors and ceilings, and the largest loss allowed against a reference.

Comparisons follow MLflow's ``MetricThreshold``, each metric with its direction
(``greater_is_better``: accuracy, F1, R²; lower is better: MAE, RMSE, max error, MAPE). A
candidate passes a floor when ``value >= min_<metric>``, a ceiling when ``value <= max_<metric>``,
and a reference check when it is worse than the reference by at most ``max_drop`` (MLflow's
``min_absolute_change``, negated) and at most ``max_relative_drop`` of the reference
(``min_relative_change``, negated): for R², ``value >= reference - max_drop``; for RMSE,
``value <= reference + max_drop``. A metric missing from the candidate fails.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mlci._report import Section, mermaid_xychart
from mlci.errors import MlciError
from mlci.pipeline import _baseline as baseline
from mlci.pipeline._baseline import TOLERANCE
from mlci.pipeline._config import DUMMY_METRICS, Config, GateConfig
from mlci.pipeline._evaluate import SIMPLER, headline
from mlci.pipeline._task import CLASSIFICATION, greater_is_better

RESULTS = "gate.json"  # the verdict as plain JSON, in the artifacts folder, for the report


@dataclasses.dataclass(frozen=True)
class Check:
    """One row of the gate's table."""

    metric: str
    candidate: float | None
    reference: float | None
    rule: str
    passed: bool
    versus: str = ""  # a simpler model this check compares with, instead of the reference

    @property
    def label(self) -> str:
        """The metric, and the simpler model it is compared with when there is one."""
        return f"{self.metric} vs {self.versus}" if self.versus else self.metric

    @property
    def delta(self) -> float | None:
        """Candidate minus reference, when both exist."""
        if self.candidate is None or self.reference is None:
            return None
        return self.candidate - self.reference

    def describe(self) -> str:
        """One sentence for a failure."""
        if self.candidate is None:
            return f"{self.metric} is missing from the candidate's metrics"
        if self.versus and self.reference is not None:
            return (
                f"{self.metric} {self.candidate:.4f} does not beat the simpler model {self.versus} "
                f"({self.reference:.4f}) as '{self.rule}' asks"
            )
        against = "" if self.reference is None else f" against the reference {self.reference:.4f}"
        return f"{self.metric} {self.candidate:.4f} breaks '{self.rule}'{against}"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """All checks, the reference's name, and the metrics that improved beyond tolerance."""

    checks: list[Check]
    reference: str | None
    improved: list[str]
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [check for check in self.checks if not check.passed]


@dataclasses.dataclass(frozen=True)
class Reference:
    """What a candidate is judged against: its metrics and params, and a name for the report.

    ``metrics`` is None when there is nothing comparable (no reference, or one made on other
    data): then only the floors apply, and ``note`` says why.
    """

    metrics: dict[str, float] | None
    name: str | None
    note: str = ""
    params: dict[str, Any] | None = None


def incomparable(candidate: dict[str, Any], reference: dict[str, Any] | None) -> str:
    """Why two runs' metrics cannot be compared ("" when they can): other data or schema.

    Both arguments are a lineage's ``data`` (sha256 and schema); a reference without them was
    recorded before mlci kept them, and is not trusted either.
    """
    if not reference or "schema" not in reference:
        return "it does not record which data it was made on"
    theirs, ours = reference["schema"], candidate.get("schema", {})
    for part, what in (("features", "feature columns"), ("target", "target"), ("labels", "labels")):
        if theirs.get(part) != ours.get(part):
            return f"it was made on other {what} ({_short(theirs.get(part))})"
    if reference.get("sha256") != candidate.get("sha256"):
        return f"it was made on other data (sha256 {str(reference.get('sha256'))[:12]}…)"
    return ""


def _short(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def baseline_reference(config: Config, python: str, candidate: dict[str, Any]) -> Reference:
    """This Python's committed baseline when made on the candidate's data; else floors only.

    ``candidate`` is the candidate's lineage ``data`` (sha256 and schema).
    """
    entry = baseline.entry(config, python)
    if entry is not None:
        name = f"baseline for Python {python}"
        why = incomparable(candidate, entry.get("data"))
        if why:
            return Reference(
                None,
                name,
                f"the {name} cannot be compared: {why}. Only the floors apply; record a new "
                "baseline for this data with 'nox -s baseline' and commit it",
            )
        return Reference(entry["metrics"], name, params=entry.get("params"))
    return Reference(
        None,
        None,
        f"no production model and no {config.relative(config.baseline)} entry for Python "
        f"{python}: floors only; run 'nox -s baseline' and commit it to start guarding against "
        "regressions",
    )


def evaluate(
    candidate: dict[str, float],
    reference: dict[str, float] | None,
    gate: GateConfig,
    reference_name: str | None = None,
    task: str = CLASSIFICATION,
) -> Verdict:
    """Apply the floors and ceilings, then the rules against ``reference`` when there is one."""
    checks = []
    bounds = [(metric, floor, True) for metric, floor in gate.floors.items()]
    bounds += [(metric, ceiling, False) for metric, ceiling in gate.ceilings.items()]
    for metric, bound, floor in sorted(bounds):
        value = candidate.get(metric)
        ref = reference.get(metric) if reference else None
        if floor:
            passed = value is not None and value >= bound - TOLERANCE
        else:
            passed = value is not None and value <= bound + TOLERANCE
        checks.append(Check(metric, value, ref, f"{'>=' if floor else '<='} {bound:g}", passed))
    improved = []
    if reference is not None:
        for metric in sorted(set(headline(task)) | set(gate.floors) | set(gate.ceilings)):
            ref = reference.get(metric)
            if ref is None:
                continue
            value = candidate.get(metric)
            greater = greater_is_better(metric)
            sign = 1.0 if greater else -1.0  # worse is lower for R², higher for RMSE
            # Each configured limit must hold, as with MLflow's absolute and relative changes;
            # with neither configured, no loss at all is allowed.
            limits = [ref - sign * gate.max_drop] if gate.max_drop else []
            if gate.max_relative_drop:
                limits.append(ref - sign * abs(ref) * gate.max_relative_drop)
            allowed = (max if greater else min)(limits, default=ref)
            passed = value is not None and sign * (value - allowed) >= -TOLERANCE
            checks.append(Check(metric, value, ref, _regression_rule(gate, greater), passed))
            if value is not None and sign * (value - ref) > TOLERANCE:
                improved.append(metric)
    return Verdict(checks, reference_name, improved)


def _regression_rule(gate: GateConfig, greater: bool = True) -> str:
    word = "drop" if greater else "rise"
    parts = []
    if gate.max_drop:
        parts.append(f"{word} <= {gate.max_drop:g}")
    if gate.max_relative_drop:
        parts.append(f"{word} <= {gate.max_relative_drop:.1%}")
    return " and ".join(parts) if parts else f"no {word}"


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "missing"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def rows(verdict: Verdict) -> list[list[str]]:
    """The table: metric, candidate, reference, delta, rule, result."""
    return [
        [
            check.label,
            _number(check.candidate),
            "-" if check.reference is None else _number(check.reference),
            "-" if check.delta is None else _number(check.delta, signed=True),
            check.rule,
            "pass" if check.passed else "FAIL",
        ]
        for check in verdict.checks
    ]


HEADER = ["metric", "candidate", "reference", "delta", "rule", "result"]


def to_dict(verdict: Verdict) -> dict[str, Any]:
    """Plain JSON of the verdict."""
    return {
        "passed": verdict.passed,
        "reference": verdict.reference,
        "improved": verdict.improved,
        "warnings": verdict.warnings,
        "checks": [
            {
                "metric": check.metric,
                "candidate": check.candidate,
                "reference": check.reference,
                "delta": check.delta,
                "rule": check.rule,
                "passed": check.passed,
                **({"versus": check.versus} if check.versus else {}),
            }
            for check in verdict.checks
        ],
    }


def section(verdict: Verdict, reference: Reference) -> Section:
    """The gate's report section: the table, why there is or is not a reference, what failed."""
    result = "passed" if verdict.passed else "FAILED"
    shown = (verdict.reference if reference.metrics is not None else None) or "none, floors only"
    notes = [reference.note] if reference.note else []
    notes += [f"FAILED: {check.describe()}" for check in verdict.failures]
    if any(check.versus for check in verdict.failures):
        notes.append(
            "a simpler model does as well: configure it instead, or improve this one "
            "([tool.mlci.gate.simpler] sets the margin, or check = 'warn')"
        )
    notes += verdict.warnings
    if verdict.passed and verdict.improved:
        notes.append(
            f"better than the {verdict.reference} on {', '.join(verdict.improved)}: "
            "release it ('nox -s release'), or record it as the baseline ('nox -s baseline')"
        )
    return Section(
        f"Quality gate: {result}",
        (f"Reference: {shown}",),
        tuple(HEADER),
        tuple(map(tuple, rows(verdict))),
        tuple(notes),
        headline=f"quality gate {result} (reference: {shown})",
        blocks=tuple(filter(None, [chart(verdict)])),
    )


def chart(verdict: Verdict) -> str:
    """The candidate (bars) against its reference (line), per metric, as a Mermaid chart.

    "" when there is no reference: the floors alone are in the table.
    """
    pairs: dict[str, tuple[float, float]] = {}
    for check in verdict.checks:  # a metric with a floor and a drop rule is charted once
        if check.candidate is not None and check.reference is not None and not check.versus:
            pairs.setdefault(check.metric, (check.candidate, check.reference))
    if not pairs or verdict.reference is None:
        return ""
    return mermaid_xychart(
        f"candidate (bars) against the {verdict.reference} (line)",
        list(pairs),
        "value",
        bars=[candidate for candidate, _ in pairs.values()],
        line=[reference for _, reference in pairs.values()],
    )


def judge(config: Config, metrics: dict[str, Any], reference: Reference) -> Verdict:
    """Judge a run's metrics against ``reference`` with the configured floors and drops."""
    from mlci.pipeline._evaluate import scalar_metrics
    from mlci.pipeline._task import task_of_metrics

    task = task_of_metrics(metrics)
    verdict = evaluate(
        scalar_metrics(metrics), reference.metrics, config.gate, reference.name, task
    )
    verdict = simpler(verdict, metrics, config.gate)
    return useless(verdict, metrics.get("feature_importance"), config.gate.useless_features, task)


def simpler(verdict: Verdict, metrics: dict[str, Any], gate: GateConfig) -> Verdict:
    """The candidate against the simpler models fitted on its split: it must beat each by margin.

    On the headline metrics and every metric with a floor or a ceiling; a constant only on what
    it is the best constant for (``DUMMY_METRICS``). The margin is added to a score and taken as
    a share off an error. Training records their scores (``simpler_models`` in metrics.json); a
    run without them is an error while the check is on.
    """
    from mlci.pipeline._task import task_of_metrics

    settings = gate.simpler
    if settings.check == "off":
        return verdict
    task = task_of_metrics(metrics)
    recorded = metrics.get(SIMPLER)
    if not isinstance(recorded, dict) or set(recorded) != set(settings.models(task)):
        raise MlciError(
            "the candidate's metrics hold no scores for the simpler models that "
            "[tool.mlci.gate.simpler] configures: retrain it (mlci train --force)"
        )
    first = headline(task)
    found = []
    for name in settings.models(task):
        theirs = recorded[name].get("metrics", {})
        wanted = DUMMY_METRICS.get(name) or {*first, *gate.floors, *gate.ceilings}
        for metric in sorted(wanted, key=lambda m: _headline_first(m, first)):
            if metric not in theirs:
                continue
            value, bar = metrics.get(metric), float(theirs[metric])
            if greater_is_better(metric):
                rule, needed = f">= simpler + {settings.margin:g}", bar + settings.margin
                passed = value is not None and value >= needed - TOLERANCE
            else:
                rule, needed = f"<= simpler - {settings.margin:.0%}", bar * (1 - settings.margin)
                passed = value is not None and value <= needed + TOLERANCE
            found.append(Check(metric, value, bar, rule, passed, versus=name))
    if settings.check == "fail":
        return dataclasses.replace(verdict, checks=[*verdict.checks, *found])
    lost = [f"warning: {check.describe()}" for check in found if not check.passed]
    return dataclasses.replace(verdict, warnings=[*verdict.warnings, *lost])


def _headline_first(metric: str, first: tuple[str, ...]) -> tuple[int, str]:
    return (first.index(metric) if metric in first else len(first), metric)


def useless(verdict: Verdict, importance: Any, mode: str, task: str = CLASSIFICATION) -> Verdict:
    """Features whose permutation importance is not above zero: a warning, or a failed check."""
    if mode == "off" or not isinstance(importance, dict):
        return verdict
    idle = sorted(
        (name, float(value["mean"]))
        for name, value in importance.items()
        if float(value["mean"]) <= TOLERANCE
    )
    if not idle:
        return verdict
    if mode == "fail":
        checks = [Check(f"importance of {name}", mean, None, "> 0", False) for name, mean in idle]
        return dataclasses.replace(verdict, checks=[*verdict.checks, *checks])
    shown = ", ".join(f"{name} ({mean:.4f})" for name, mean in idle)
    warning = (
        f"warning: shuffling {shown} costs no {'accuracy' if task == CLASSIFICATION else 'R²'} "
        "on the held-out rows: "
        "drop the feature, or set [tool.mlci.gate] useless_features = 'fail' to stop on it"
    )
    return dataclasses.replace(verdict, warnings=[*verdict.warnings, warning])
