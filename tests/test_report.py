from __future__ import annotations

from pathlib import Path

import pytest

from mlci import report


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
