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


def _publish_many(folder: str, worker: int) -> None:
    for index in range(15):
        report.publish(Path(folder), f"w{worker}-{index}", f"## worker {worker} section {index}")


def test_parallel_sessions_lose_no_section(tmp_path: Path) -> None:
    """nox runs sessions side by side; each publish is a read-modify-write of one file."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_publish_many, args=(str(tmp_path), n)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    text = (tmp_path / "report.md").read_text()
    missing = [
        (n, i) for n in range(4) for i in range(15) if f"## worker {n} section {i}\n" not in text
    ]
    assert missing == []


@pytest.mark.integration
def test_mlci_coverage_combines_reports_and_judges_the_floor(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real `coverage` data from two runs, as two Pythons' test sessions leave them."""
    import os
    import subprocess
    import sys

    from mlci.cli import main

    (project / "demo.py").write_text("def a(x):\n    if x:\n        return 1\n    return 2\n")
    for name, arg in ((".coverage.one", "1"), (".coverage.two", "0")):
        (project / "run.py").write_text(f"import demo\ndemo.a({arg})\n")
        env = {**os.environ, "COVERAGE_FILE": name}
        command = [
            sys.executable,
            "-m",
            "coverage",
            "run",
            "--branch",
            "--include=demo.py",
            "run.py",
        ]
        subprocess.run(command, cwd=project, env=env, check=True)
    assert main(["-C", str(project), "coverage", ".coverage.one", ".coverage.two"]) == 0
    out = capsys.readouterr().out
    assert "coverage 100.0% over 1 files" in out
    for name in ("coverage.json", "coverage.xml", "coverage-html/index.html", ".coverage"):
        assert (project / "artifacts" / name).exists(), name
    assert (project / ".coverage.one").exists()  # kept: the test sessions' outputs
    assert "## Coverage: 100.0%" in (project / "artifacts" / "report.md").read_text()
    # Only one Python's data: a branch is missed, and a floor of 100 fails.
    with (project / "pyproject.toml").open("a") as stream:
        stream.write("\n[tool.coverage.report]\nfail_under = 100\n")
    assert main(["-C", str(project), "coverage", ".coverage.one"]) == 2
    assert main(["-C", str(project), "coverage"]) == 2
    assert "no .coverage.<python> data files" in capsys.readouterr().err
