from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import write_pyproject

from mlci.cli import main
from mlci.errors import MlciError
from mlci.pipeline import _baseline as baseline
from mlci.pipeline._config import load_config


def test_update_writes_this_pythons_entry_only(project: Path) -> None:
    config = load_config(project)
    config.baseline.parent.mkdir()
    config.baseline.write_text(json.dumps({"2.7": {"kept": True}}))
    fresh = baseline.update(config)
    written = json.loads(config.baseline.read_text())
    assert written["2.7"] == {"kept": True}
    assert written[baseline.python_minor()] == fresh
    assert fresh["predictions"]["sha256"]
    assert len(fresh["predictions"]["predicted"]) == 30
    assert set(fresh["versions"]) == {"scikit-learn", "numpy"}
    assert baseline.check(config) == []


def test_compare_shows_metric_deltas_and_changed_rows(project: Path) -> None:
    config = load_config(project)
    expected = baseline.update(config)
    actual = copy.deepcopy(expected)
    actual["metrics"]["accuracy"] -= 0.1
    actual["predictions"]["predicted"][3] = "nope"
    actual["predictions"]["sha256"] = "0" * 64
    problems = baseline.compare(expected, actual)
    assert problems[0].startswith("metric accuracy: ")
    assert "delta -1.00e-01" in problems[0]
    line = expected["predictions"]["lines"][3]
    assert (
        f"line {line}: baseline {expected['predictions']['predicted'][3]}, now nope" in problems[1]
    )
    assert "1 held-out rows changed" in problems[1]


def test_model_hash_is_compared_only_with_equal_versions(project: Path) -> None:
    expected = baseline.update(load_config(project))
    actual = copy.deepcopy(expected)
    actual["model_sha256"] = "f" * 64
    assert "model SHA-256" in baseline.compare(expected, actual)[0]
    actual["versions"]["numpy"] = "0.0"
    assert baseline.compare(expected, actual) == []


def test_a_retrain_with_other_params_does_not_reproduce(project: Path) -> None:
    config = load_config(project)
    baseline.update(config)
    text = (project / "pyproject.toml").read_text().replace("seed = 42", "seed = 7")
    (project / "pyproject.toml").write_text(text)
    problems = baseline.check(load_config(project))
    assert any(p.startswith("predictions fingerprint") for p in problems), problems


def test_check_without_an_entry(project: Path) -> None:
    with pytest.raises(MlciError, match=r"no entry for Python .*run 'nox -s baseline'"):
        baseline.check(load_config(project))


def test_minor_of() -> None:
    assert baseline.minor_of("cpython-3.11.7") == "3.11"


def test_cli_baseline_commands(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(project), "baseline", "update"]) == 0
    assert "recorded Python" in capsys.readouterr().out
    assert main(["-C", str(project), "baseline", "check"]) == 0
    write_pyproject(project, trees=3)
    assert main(["-C", str(project), "baseline", "check"]) == 1
    assert "does not reproduce the baseline" in capsys.readouterr().err


def test_a_malformed_baseline_is_an_error(project: Path) -> None:
    config = load_config(project)
    config.baseline.parent.mkdir()
    config.baseline.write_text("[]")
    with pytest.raises(MlciError, match="keyed by Python version"):
        baseline.load(config)
