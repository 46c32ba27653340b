from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import isolate, retrain_with

from mlci.cli import main
from mlci.errors import MlciError
from mlci.pipeline import Config, TrainResult
from mlci.pipeline import _gate as gate
from mlci.pipeline._config import GateConfig

FLOORS = GateConfig(floors={"accuracy": 0.9, "macro_f1": 0.9}, max_drop=0.0, max_relative_drop=0.0)


def test_passes_floors_and_no_regression() -> None:
    verdict = gate.evaluate(
        {"accuracy": 0.95, "macro_f1": 0.94}, {"accuracy": 0.95, "macro_f1": 0.94}, FLOORS
    )
    assert verdict.passed
    assert not verdict.improved
    assert [row[-1] for row in gate.rows(verdict)] == ["pass"] * 4


def test_a_floor_fails() -> None:
    verdict = gate.evaluate({"accuracy": 0.85, "macro_f1": 0.95}, None, FLOORS)
    assert not verdict.passed
    assert [c.metric for c in verdict.failures] == ["accuracy"]
    assert verdict.failures[0].describe() == "accuracy 0.8500 breaks '>= 0.9'"


def test_a_missing_metric_fails() -> None:
    verdict = gate.evaluate({"accuracy": 0.95}, {"accuracy": 0.95, "macro_f1": 0.9}, FLOORS)
    assert [c.metric for c in verdict.failures] == ["macro_f1", "macro_f1"]
    assert verdict.failures[0].describe() == "macro_f1 is missing from the candidate's metrics"


def test_absolute_drop() -> None:
    rules = GateConfig(floors={}, max_drop=0.02, max_relative_drop=0.0)
    ok = gate.evaluate(
        {"accuracy": 0.93, "macro_f1": 0.9}, {"accuracy": 0.95, "macro_f1": 0.9}, rules
    )
    assert ok.passed
    bad = gate.evaluate(
        {"accuracy": 0.92, "macro_f1": 0.9}, {"accuracy": 0.95, "macro_f1": 0.9}, rules
    )
    assert [c.metric for c in bad.failures] == ["accuracy"]
    assert bad.failures[0].rule == "drop <= 0.02"
    delta = bad.failures[0].delta
    assert delta is not None
    assert abs(delta + 0.03) < 1e-12


def test_relative_drop_and_both_limits_must_hold() -> None:
    relative = GateConfig(floors={}, max_drop=0.0, max_relative_drop=0.05)
    reference = {"accuracy": 0.8, "macro_f1": 0.8}
    assert gate.evaluate({"accuracy": 0.761, "macro_f1": 0.8}, reference, relative).passed
    assert not gate.evaluate({"accuracy": 0.759, "macro_f1": 0.8}, reference, relative).passed
    both = GateConfig(floors={}, max_drop=0.01, max_relative_drop=0.05)
    assert not gate.evaluate({"accuracy": 0.785, "macro_f1": 0.8}, reference, both).passed


def test_no_drop_at_all_when_no_limit_is_set() -> None:
    strict = GateConfig(floors={}, max_drop=0.0, max_relative_drop=0.0)
    reference = {"accuracy": 0.9, "macro_f1": 0.9}
    assert gate.evaluate(dict(reference), reference, strict).passed
    assert not gate.evaluate({"accuracy": 0.8999, "macro_f1": 0.9}, reference, strict).passed


def test_improvement_is_reported() -> None:
    verdict = gate.evaluate(
        {"accuracy": 0.99, "macro_f1": 0.9}, {"accuracy": 0.9, "macro_f1": 0.9}, FLOORS
    )
    assert verdict.passed
    assert verdict.improved == ["accuracy"]


def write_metrics(project: Path, **values: float | None) -> None:
    """Craft the metrics file (None deletes a metric) and keep the artifacts consistent with it."""
    from mlci._io import atomic_write_json, sha256_file
    from mlci.pipeline import _stage as stage

    artifacts = stage.Artifacts(project / "artifacts")
    metrics = json.loads(artifacts.metrics.read_text())
    for name, value in values.items():
        if value is None:
            del metrics[name]
        else:
            metrics[name] = value
    atomic_write_json(artifacts.metrics, metrics)
    lineage = json.loads(artifacts.lineage.read_text())
    lineage["outputs"]["metrics"] = sha256_file(artifacts.metrics)
    atomic_write_json(artifacts.lineage, lineage)


def test_cli_gate_against_the_baseline(
    trained: TrainResult, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "baseline", "update"]) == 0
    capsys.readouterr()
    assert main(["-C", str(project), "gate"]) == 0
    out = capsys.readouterr().out
    assert "quality gate passed (reference: baseline for Python" in out
    report = (project / "artifacts" / "report.md").read_text()
    assert "## Quality gate: passed" in report
    assert "| accuracy |" in report

    write_metrics(project, accuracy=0.5, macro_f1=0.5)
    assert main(["-C", str(project), "gate"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: accuracy 0.5000 breaks '>= 0.8'" in out
    assert "against the reference" in out

    write_metrics(project, accuracy=1.0, macro_f1=1.0)
    assert main(["-C", str(project), "gate", "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["improved"] == ["accuracy", "macro_f1"]
    # Numbers and nulls, not the table's formatted strings ("0.9667", "-", "missing").
    checks = {(c["metric"], c["rule"]): c for c in verdict["checks"]}
    floor = checks["accuracy", ">= 0.8"]
    assert isinstance(floor["candidate"], float)
    assert floor["passed"] is True
    assert all(isinstance(c["delta"], (float, type(None))) for c in verdict["checks"])
    assert all(isinstance(c["reference"], (float, type(None))) for c in verdict["checks"])
    assert main(["-C", str(project), "gate"]) == 0
    assert "record it as the baseline ('nox -s baseline')" in capsys.readouterr().out


def test_cli_gate_without_a_baseline_uses_floors(
    trained: TrainResult, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "gate"]) == 0
    out = capsys.readouterr().out
    assert "reference: none" in out
    assert "floors only" in out


def test_cli_gate_refuses_stale_artifacts(
    trained: TrainResult, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        (project / "pyproject.toml").read_text().replace("n_estimators = 10", "n_estimators = 11")
    )
    (project / "pyproject.toml").write_text(text)
    assert main(["-C", str(project), "gate"]) == 2
    assert "not up to date (config changed); run 'mlci train'" in capsys.readouterr().err


def test_cli_gate_fails_on_a_metric_missing_from_the_metrics_file(
    trained: TrainResult, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_metrics(project, macro_f1=None)
    assert main(["-C", str(project), "gate"]) == 1
    assert "FAILED: macro_f1 is missing from the candidate's metrics" in capsys.readouterr().out


def test_gate_uses_production_when_the_registry_has_one(
    trained: TrainResult, config: Config, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlci.delivery._registry import PRODUCTION, Registry

    registry = Registry.of(config)
    registry.register(config)
    registry.promote(1, PRODUCTION)
    write_metrics(project, accuracy=0.5, macro_f1=0.5)
    assert main(["-C", str(project), "gate"]) == 1
    out = capsys.readouterr().out
    reference = "production (version 1) on the candidate's held-out rows"
    assert f"quality gate FAILED (reference: {reference})" in out
    assert "against the reference" in out
    assert "Champion/challenger: production (version 1) predicted the same held-out rows" in out


def test_a_failing_gate_test_never_writes_to_the_ci_jobs_summary(
    trained: TrainResult, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In CI, GITHUB_STEP_SUMMARY is set for the job: every test starts without it."""
    summary = tmp_path / "summary.md"
    summary.write_text("")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    isolate(monkeypatch)  # what the autouse fixture does before every test
    write_metrics(project, macro_f1=None)
    assert main(["-C", str(project), "gate"]) == 1
    assert summary.read_text() == ""


def edit_baseline(project: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = project / "metrics" / "baseline.json"
    baseline = json.loads(path.read_text())
    for entry in baseline.values():
        change(entry)
    path.write_text(json.dumps(baseline))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda e: e["data"].update(sha256="0" * 64), "it was made on other data (sha256 000000"),
        (
            lambda e: e["data"]["schema"].update(features=["a", "b"]),
            "it was made on other feature columns (a, b)",
        ),
        (lambda e: e["data"]["schema"].update(labels=["0", "1"]), "other labels (0, 1)"),
        (lambda e: e.pop("data"), "it does not record which data it was made on"),
    ],
)
def test_a_baseline_of_other_data_is_never_compared(
    trained: TrainResult,
    project: Path,
    capsys: pytest.CaptureFixture[str],
    change: Callable[[dict[str, Any]], None],
    why: str,
) -> None:
    assert main(["-C", str(project), "baseline", "update"]) == 0
    edit_baseline(project, change)
    write_metrics(project, accuracy=0.99, macro_f1=0.99)  # "better": must not be said
    capsys.readouterr()
    assert main(["-C", str(project), "gate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("quality gate passed (reference: none, floors only)")
    assert why in out
    assert "record a new baseline for this data with 'nox -s baseline'" in out
    assert "better than" not in out
    assert "drop <=" not in out  # only the floors
    assert main(["-C", str(project), "diff"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("No comparison: the baseline for Python")
    assert "+0." not in out  # no delta


def test_champion_and_challenger_are_scored_on_the_same_rows(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Production predicts the candidate's held-out rows, even when the data has grown."""
    import numpy as np
    from sklearn.metrics import accuracy_score

    from mlci.delivery import PRODUCTION, Registry, gate_reference
    from mlci.pipeline import accept, load_manifest, load_trained, stage_status

    config = retrain_with(project, trees=3)
    registry = Registry.of(config)
    registry.promote(registry.register(config).version.number, PRODUCTION)
    data = project / "data" / "iris.csv"
    lines = data.read_text().splitlines()
    data.write_text("\n".join([*lines, *lines[1:31]]) + "\n")  # 30 more rows: another split
    accept(load_manifest(config.manifest))
    config = retrain_with(project, trees=12)
    lineage = stage_status(config).lineage
    assert lineage is not None
    reference = gate_reference(config, "3.x", lineage["data"])
    assert reference.name == "production (version 1) on the candidate's held-out rows"
    predictions = json.loads((project / "artifacts" / "predictions.json").read_text())
    table = [row.split(",") for row in data.read_text().splitlines()[1:]]
    rows = np.asarray([table[line - 2][:4] for line in predictions["lines"]], dtype=float)
    champion = registry.load_model(registry.get(PRODUCTION))
    expected = accuracy_score(predictions["expected"], champion.predict(rows))
    assert reference.metrics is not None
    assert reference.metrics["accuracy"] == pytest.approx(expected)
    assert len(predictions["lines"]) == 36  # the candidate's rows, not production's 30
    assert load_trained(config) is not None
    assert main(["-C", str(project), "diff"]) == 0
    assert capsys.readouterr().out.startswith(
        "Changes against the production (version 1) on the candidate's held-out rows:"
    )


def test_production_with_other_columns_gives_floors_only(
    trained: TrainResult, config: Config, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlci.delivery import PRODUCTION, Registry
    from mlci.pipeline import infer_manifest, train

    # Production was trained when the data's first column had another name.
    original = {path: path.read_bytes() for path in (config.data, config.manifest)}
    renamed = config.data.read_text(encoding="utf-8").replace("sepal_length", "stem_length", 1)
    config.data.write_text(renamed, encoding="utf-8")
    infer_manifest(config.data, "species", config.manifest).save()
    train(config)
    registry = Registry.of(config)
    registry.promote(registry.register(config).version.number, PRODUCTION)
    for path, data in original.items():
        path.write_bytes(data)
    train(config)
    assert main(["-C", str(project), "gate"]) == 0
    out = capsys.readouterr().out
    assert "production (version 1) cannot be scored on the candidate's rows" in out
    assert "other feature columns (stem_length" in out


IDLE = {
    "a": {"mean": 0.2, "std": 0.01},
    "b": {"mean": 0.0, "std": 0.0},
    "c": {"mean": -0.03, "std": 0.01},
}


@pytest.mark.parametrize("mode", ["warn", "fail", "off"])
def test_features_that_do_not_help_warn_fail_or_pass_as_configured(mode: str) -> None:
    """ML Test Score, data: every feature earns its place (permutation importance > 0)."""
    from mlci.pipeline._gate import Verdict, useless

    verdict = useless(Verdict([], None, []), IDLE, mode)
    if mode == "off":
        assert verdict == Verdict([], None, [])
    elif mode == "warn":
        assert verdict.passed
        [warning] = verdict.warnings
        assert warning.startswith("warning: shuffling b (0.0000), c (-0.0300) costs no accuracy")
    else:
        assert [(c.metric, c.passed) for c in verdict.checks] == [
            ("importance of b", False),
            ("importance of c", False),
        ]
        assert not verdict.passed


STUMP = (
    'class = "sklearn.tree.DecisionTreeClassifier"\nparams = { max_depth = 1, random_state = 0 }'
)


@pytest.mark.parametrize("check", ["fail", "warn", "off"])
def test_a_model_no_better_than_a_simpler_one_fails_warns_or_passes(
    tmp_path: Path, check: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """ML Test Score, model: a simpler model is not better (a one-split tree on Iris is worse)."""
    from conftest import make_dataset_project

    extra = f'[tool.mlci.gate.simpler]\ncheck = "{check}"\n'
    root = make_dataset_project(tmp_path, "iris", STUMP, string_labels=True, extra=extra)
    assert main(["-C", str(root), "train"]) == 0
    metrics = json.loads((root / "artifacts" / "metrics.json").read_text())
    capsys.readouterr()
    code = main(["-C", str(root), "gate"])
    out = capsys.readouterr().out
    if check == "off":
        assert "simpler_models" not in metrics
        assert code == 0
        assert " vs " not in out
        return
    simpler = metrics["simpler_models"]
    assert list(simpler) == ["DummyClassifier", "StandardScaler → LogisticRegression"]
    logistic = simpler["StandardScaler → LogisticRegression"]["metrics"]["accuracy"]
    assert metrics["accuracy"] < logistic  # the stump loses to the scaled logistic regression
    assert simpler["DummyClassifier"]["metrics"]["accuracy"] < metrics["accuracy"]
    expected = (
        f"accuracy {metrics['accuracy']:.4f} does not beat the simpler model "
        f"StandardScaler → LogisticRegression ({logistic:.4f}) as '>= simpler + 0' asks"
    )
    assert expected in out
    report = (root / "artifacts" / "report.md").read_text()
    assert "| accuracy vs DummyClassifier |" in report or check == "warn"
    assert "Simpler models on the same split" in report
    if check == "warn":
        assert code == 0
        assert f"warning: {expected}" in out
    else:
        assert code == 1
        assert f"FAILED: {expected}" in out
        assert "a simpler model does as well: configure it instead" in out
        verdict = json.loads((root / "artifacts" / "gate.json").read_text())
        versus = {c["versus"] for c in verdict["checks"] if "versus" in c}
        assert versus == {"DummyClassifier", "StandardScaler → LogisticRegression"}


def _scored(accuracy: float, simple: float) -> dict[str, Any]:
    return {
        "accuracy": accuracy,
        "macro_f1": accuracy,
        "simpler_models": {
            "DummyClassifier": {"metrics": {"accuracy": 0.33, "macro_f1": 0.17}},
            "StandardScaler → LogisticRegression": {
                "metrics": {"accuracy": simple, "macro_f1": simple}
            },
        },
    }


@pytest.mark.parametrize(
    ("margin", "accuracy", "passed"),
    [(0.0, 0.93, True), (0.0, 0.92, False), (0.05, 0.97, False), (0.05, 0.98, True)],
)
def test_the_candidate_must_beat_each_simpler_model_by_the_margin(
    margin: float, accuracy: float, passed: bool
) -> None:
    from mlci.pipeline._config import SimplerConfig

    rules = GateConfig({}, 0.0, 0.0, simpler=SimplerConfig(margin=margin))
    verdict = gate.simpler(gate.Verdict([], None, []), _scored(accuracy, 0.93), rules)
    assert verdict.passed is passed
    assert [(c.label, c.rule) for c in verdict.checks][:2] == [
        ("accuracy vs DummyClassifier", f">= simpler + {margin:g}"),
        ("macro_f1 vs DummyClassifier", f">= simpler + {margin:g}"),
    ]
    assert gate.chart(verdict) == ""  # the simpler models are not the gate's reference


def test_metrics_without_the_configured_simpler_models_ask_for_a_retrain() -> None:
    """A metrics.json from before the check, or from another simple model, is not judged as if."""
    from mlci.pipeline._config import EstimatorSpec, SimplerConfig

    other = SimplerConfig(model=EstimatorSpec.single("sklearn.naive_bayes.GaussianNB"))
    for metrics in ({"accuracy": 0.9, "macro_f1": 0.9}, _scored(0.95, 0.9)):
        rules = GateConfig({}, 0.0, 0.0, simpler=other)
        with pytest.raises(MlciError, match=r"retrain it \(mlci train --force\)"):
            gate.simpler(gate.Verdict([], None, []), metrics, rules)
