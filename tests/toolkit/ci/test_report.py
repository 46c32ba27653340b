from __future__ import annotations

from pathlib import Path

import pytest

from mlci import _report as report


def test_sections_are_replaced_and_kept_in_pipeline_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    report.publish(tmp_path, "gate", "## Gate\n\nold")
    report.publish(tmp_path, "train", "## Train")
    report.publish(tmp_path, "gate", "## Gate\n\nnew")
    text = (tmp_path / "report.md").read_text()
    assert text.index("## Train") < text.index("## Gate")
    assert "new" in text
    assert "old" not in text


def test_the_step_summary_gets_the_same_markdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    report.publish(tmp_path / "artifacts", "train", "## Train\n\n| a |")
    assert summary.read_text() == "earlier step\n## Train\n\n| a |\n\n"
    assert "## Train\n\n| a |" in (tmp_path / "artifacts" / "report.md").read_text()


def test_tables() -> None:
    assert (
        report.markdown_table(["a", "b"], [["1", "x|y"]])
        == "| a | b |\n| --- | --- |\n| 1 | x\\|y |"
    )
    assert (
        report.text_table(["name", "v"], [["accuracy", "1"]])
        == "name      v\n--------  -\naccuracy  1"
    )


def test_cli_coverage_section(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from mlci.cli import main

    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    data = {
        "totals": {"percent_covered": 93.25},
        "files": {
            "src/mlci/a.py": {"summary": {"percent_covered": 100.0}},
            "src/mlci/b.py": {"summary": {"percent_covered": 80.5}},
        },
    }
    (project / "coverage.json").write_text(json.dumps(data))
    assert main(["-C", str(project), "report", "coverage", str(project / "coverage.json")]) == 0
    text = (project / "artifacts" / "report.md").read_text()
    assert "## Coverage: 93.2%" in text
    assert "| `src/mlci/b.py` | 80.5% |" in text
    (project / "coverage.json").write_text("{}")
    assert main(["-C", str(project), "report", "coverage", str(project / "coverage.json")]) == 2
    assert "not a `coverage json` report" in capsys.readouterr().err
