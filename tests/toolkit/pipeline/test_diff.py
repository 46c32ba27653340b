from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_pyproject

from mlci.cli import main
from mlci.pipeline import Reference
from mlci.pipeline import _diff as diff


def test_changes_only_lists_what_moved() -> None:
    metrics = {"accuracy": 0.9, "macro_f1": 0.8, "per_class": {}}
    reference = Reference(
        {"accuracy": 0.9, "macro_f1": 0.85}, "baseline", params={"seed": 1, "test_size": 0.2}
    )
    found = diff.changes(metrics, {"seed": 2, "test_size": 0.2}, reference)
    assert diff.rows(found) == [
        ["metric", "macro_f1", "0.8500", "0.8000", "-0.0500"],
        ["param", "seed", "1", "2", "+1.0000"],
    ]
    assert len(diff.rows(found, everything=True)) == 4


def test_new_and_removed_values() -> None:
    found = diff.changes(
        {"accuracy": 0.9}, {"estimator": {"class": "a.B"}}, Reference({}, "b", params={"old": "x"})
    )
    assert ["param", "estimator.class", "-", "a.B", ""] in diff.rows(found)
    assert ["param", "old", "x", "-", ""] in diff.rows(found)


def test_cli_diff_after_editing_a_hyperparameter(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "baseline", "update"]) == 0
    assert main(["-C", str(project), "train"]) == 0
    capsys.readouterr()
    assert main(["-C", str(project), "diff"]) == 0
    assert "No changes." in capsys.readouterr().out

    write_pyproject(project, trees=3)
    assert main(["-C", str(project), "status"]) == 1
    assert main(["-C", str(project), "train"]) == 0
    capsys.readouterr()
    assert main(["-C", str(project), "diff", "--md"]) == 0
    out = capsys.readouterr().out
    assert "| param | estimator.params.n_estimators | 10 | 3 | -7.0000 |" in out
    assert "## Changes against the baseline" in (project / "artifacts" / "report.md").read_text()
    assert main(["-C", str(project), "diff", "--json", "--all"]) == 0
    assert '"name": "accuracy"' in capsys.readouterr().out
