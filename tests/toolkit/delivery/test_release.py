from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import retrain_with, write_pyproject
from test_drift import write_batch

from mlci.cli import main
from mlci.delivery import _release as release
from mlci.delivery import age_days
from mlci.delivery._registry import PRODUCTION, STAGING_ALIAS, Registry
from mlci.pipeline._config import Config, load_config


def steps(result: release.Release) -> list[tuple[str, bool]]:
    return [(step.name, step.passed) for step in result.steps]


ALL_STEPS = ["validate", "train", "gate", "register", "stage", "smoke test", "promote"]


def test_a_release_runs_every_step_and_promotes(config: Config) -> None:
    result = release.release(config)
    assert steps(result) == [(name, True) for name in ALL_STEPS]
    registry = Registry.of(config)
    assert registry.get(PRODUCTION).number == registry.get(STAGING_ALIAS).number == 1
    assert "against the floors only" in result.steps[2].detail


def test_releasing_twice_registers_once_and_reports_unchanged(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "release"]) == 0
    assert "released version 1 to production (was none)" in capsys.readouterr().out
    assert main(["-C", str(project), "release"]) == 0
    out = capsys.readouterr().out
    assert "unchanged: version 1 is already production" in out
    assert "against production (version 1)" in out
    registry = Registry.of(load_config(project))
    assert [v.number for v in registry.versions()] == [1]
    assert len(registry.history(PRODUCTION)) == 1
    assert "## Release: unchanged" in (project / "artifacts" / "report.md").read_text()


def test_release_then_rollback_restores_production_and_records_both(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "release"]) == 0
    write_pyproject(project, trees=11)
    assert main(["-C", str(project), "release"]) == 0
    assert "released version 2 to production (was version 1)" in capsys.readouterr().out
    assert main(["-C", str(project), "registry", "rollback", "production", "--reason", "bad"]) == 0
    registry = Registry.of(load_config(project))
    assert registry.get(PRODUCTION).number == 1
    moves = [(m.action, m.from_version, m.to_version) for m in registry.history(PRODUCTION)]
    assert moves == [("promote", None, 1), ("promote", 1, 2), ("rollback", 2, 1)]
    # The rolled-back model is not released again by the next run on the same inputs.
    assert main(["-C", str(project), "release"]) == 1
    out = capsys.readouterr().out
    assert "was rolled back from production" in out
    assert "production stays at version 1" in out
    assert registry.get(PRODUCTION).number == 1


def test_a_gate_failure_leaves_production_untouched(project: Path) -> None:
    assert release.release(load_config(project)).passed
    write_pyproject(project, trees=11, extra="")
    text = (
        (project / "pyproject.toml").read_text().replace("min_accuracy = 0.8", "min_accuracy = 1.0")
    )
    (project / "pyproject.toml").write_text(text)
    result = release.release(load_config(project))
    assert steps(result) == [("validate", True), ("train", True), ("gate", False)]
    assert "accuracy" in result.steps[-1].detail
    registry = Registry.of(load_config(project))
    assert [v.number for v in registry.versions()] == [1]
    assert registry.get(PRODUCTION).number == 1


def test_invalid_data_stops_the_release_at_validation(project: Path, config: Config) -> None:
    with config.data.open("a") as stream:
        stream.write("5.0,3.0,x,0.2,setosa\n")
    result = release.release(config)
    assert steps(result) == [("validate", False)]
    assert "not a number: 'x'" in result.steps[0].detail
    assert Registry.of(config).versions() == []


def test_a_failed_smoke_test_keeps_production(project: Path, config: Config) -> None:
    assert release.release(config).passed
    retrained = retrain_with(project, trees=11)
    predictions = retrained.artifacts / "predictions.json"
    recorded = json.loads(predictions.read_text())
    recorded["predicted"] = ["setosa"] * len(recorded["predicted"])
    predictions.write_text(json.dumps(recorded))
    result = release.release(retrained)
    assert steps(result)[-1] == ("smoke test", False)
    assert "predicted" in result.steps[-1].detail
    registry = Registry.of(retrained)
    assert registry.get(PRODUCTION).number == 1
    assert registry.get(STAGING_ALIAS).number == 2


NAN_MODEL = """
import numpy as np
from sklearn.ensemble import RandomForestClassifier


class NaNForest(RandomForestClassifier):
    \"\"\"Right labels, broken probabilities: what a numerically unstable model looks like.\"\"\"

    def predict(self, X):
        return self.classes_[np.argmax(super().predict_proba(X), axis=1)]

    def predict_proba(self, X):
        probabilities = super().predict_proba(X)
        probabilities[::3] = np.nan
        probabilities[1::3, 0] = np.inf
        return probabilities
"""


def test_a_model_with_nan_or_infinite_probabilities_fails_the_smoke_test(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ML Test Score, infrastructure: numerical stability is checked before promotion."""
    (project / "nanmodel.py").write_text(NAN_MODEL)
    monkeypatch.syspath_prepend(str(project))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            'class = "sklearn.ensemble.RandomForestClassifier"', 'class = "nanmodel.NaNForest"'
        )
    )
    result = release.release(load_config(project))
    assert steps(result)[-1] == ("smoke test", False)
    detail = result.steps[-1].detail
    assert "probabilities not finite (nan, nan, nan)" in detail
    assert "probabilities not finite (inf, " in detail
    assert "predicted" not in detail  # its labels are right: only the probabilities are not
    assert Registry.of(load_config(project)).alias(PRODUCTION) is None


def test_if_needed_releases_only_on_new_data_or_drift(
    project: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    assert release.needed(config, Registry.of(config)) == "no production model yet"
    assert main(["-C", str(project), "release", "--if-needed"]) == 0
    assert "released version 1" in capsys.readouterr().out
    assert main(["-C", str(project), "release", "--if-needed"]) == 0
    out = capsys.readouterr().out
    assert "nothing to release: no drift and no new data since production" in out
    write_batch(
        project / "data" / "incoming" / "b.csv",
        config,
        shift={"sepal_length": 1.0, "petal_length": 1.5, "sepal_width": 0.8},
    )
    reason = release.needed(config, Registry.of(config))
    assert reason == "drift in data/incoming/b.csv"
    # Drift on unchanged training data retrains the same model: production does not move.
    assert main(["-C", str(project), "release", "--if-needed"]) == 0
    assert "unchanged" in capsys.readouterr().out
    with config.data.open("a") as stream:
        stream.write("5.0,3.0,1.6,0.2,setosa\n")
    assert main(["-C", str(project), "data", "accept"]) == 0
    assert release.needed(config, Registry.of(config)).startswith("the training data changed")


def test_a_production_model_older_than_max_age_days_fails_if_needed(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ML Test Score, monitoring: a stale production model is noticed, not served for ever."""
    assert main(["-C", str(project), "release"]) == 0
    write_pyproject(project, extra="\n[tool.mlci.delivery]\nmax_age_days = 30\n")
    assert main(["-C", str(project), "release", "--if-needed"]) == 0  # trained minutes ago
    capsys.readouterr()
    production = Registry.of(load_config(project)).get(PRODUCTION)
    now = datetime.datetime.fromisoformat(production.trained_at)
    later = now + datetime.timedelta(days=45)
    monkeypatch.setattr(release, "age_days", lambda stamp: age_days(stamp, later))
    assert main(["-C", str(project), "release", "--if-needed"]) == 1
    out = capsys.readouterr().out
    assert "production is too old: production (version 1) was trained 45.0 days ago" in out
    assert "more than [tool.mlci.delivery] max_age_days = 30: retrain it on newer data" in out
    assert "production is too old" in (project / "artifacts" / "report.md").read_text()


@pytest.mark.parametrize("value", ["0", "-1", '"soon"', "true"])
def test_max_age_days_must_be_a_positive_number(
    project: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_pyproject(project, extra=f"\n[tool.mlci.delivery]\nmax_age_days = {value}\n")
    assert main(["-C", str(project), "registry", "list"]) == 2
    assert "[tool.mlci.delivery] max_age_days: must be a positive number of days" in (
        capsys.readouterr().err
    )


def test_registry_show_reports_when_a_version_was_trained_and_its_age(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "release"]) == 0
    lineage = json.loads((project / "artifacts" / "lineage.json").read_text())
    capsys.readouterr()
    assert main(["-C", str(project), "registry", "show", PRODUCTION]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("  trained"))
    assert line.startswith(f"  trained     {lineage['finished_at']} (0.0 days ago)")


def test_on_a_ci_runner_a_registry_folder_is_called_ephemeral(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["-C", str(project), "release"]) == 0
    text = summary.read_text()
    assert "### Registry: ephemeral" in text
    assert "folder `registry` on the runner" in text
    assert "MLCI_REGISTRY" in text
    summary.unlink()
    monkeypatch.setenv("MLCI_REGISTRY", "memory://shared/registry")  # a URL: not ephemeral
    assert main(["-C", str(project), "registry", "rollback", "production"]) == 2
    assert not summary.exists() or "ephemeral" not in summary.read_text()


def test_a_release_smoke_tests_its_own_version_while_another_stages_one(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent release may stage its version between this one's stage and smoke steps."""
    other = Registry.of(retrain_with(project, trees=12))
    other.register(retrain_with(project, trees=12))  # version 1: the other release's
    config = retrain_with(project, trees=11)
    real_stage, tested = release._stage, list[int]()

    def stage_then_the_other_stages(config: Config, registry: Registry, result: Any) -> bool:
        passed = real_stage(config, registry, result)
        registry.promote(1, STAGING_ALIAS, "the other release")
        return passed

    monkeypatch.setattr(release, "_stage", stage_then_the_other_stages)
    real_smoke = release.smoke_test

    def smoke_test(config: Config, registry: Registry, version: Any) -> list[str]:
        tested.append(version.number)
        return real_smoke(config, registry, version)

    monkeypatch.setattr(release, "smoke_test", smoke_test)
    result = release.release(config)
    assert steps(result) == [(name, True) for name in ALL_STEPS]
    assert result.version == 2
    assert tested == [2]
    assert Registry.of(config).get(PRODUCTION).number == 2


def test_production_moved_since_the_gate_stops_the_promotion_and_says_what_changed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = retrain_with(project, trees=12)
    registry = Registry.of(first)
    registry.register(first)
    registry.promote(1, PRODUCTION)
    registry.register(retrain_with(project, trees=13))  # version 2: another release's
    config = retrain_with(project, trees=11)
    real_smoke = release._smoke

    def smoke_then_the_other_promotes(config: Config, registry: Registry, result: Any) -> bool:
        passed = real_smoke(config, registry, result)
        registry.promote(2, PRODUCTION, "the other release")
        return passed

    monkeypatch.setattr(release, "_smoke", smoke_then_the_other_promotes)
    result = release.release(config)
    assert steps(result)[-1] == ("promote", False)
    assert "'production' moved from version 1 to version 2 meanwhile" in result.steps[-1].detail
    assert registry.get(PRODUCTION).number == 2  # the other release's move stands


def test_a_release_opens_the_registry_once(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    opened = []
    real_of = Registry.of.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, config: Config) -> Registry:
        opened.append(config)
        return real_of(cls, config)  # type: ignore[no-any-return]

    monkeypatch.setattr(Registry, "of", classmethod(counting))
    assert main(["-C", str(project), "release"]) == 0
    assert len(opened) == 1
    write_batch(project / "data" / "incoming" / "a.csv", load_config(project))
    opened.clear()
    assert main(["-C", str(project), "release", "--if-needed"]) == 0
    assert len(opened) == 1
