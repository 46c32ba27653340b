"""The README's "Adapt it to your model" steps, their mlci commands replayed in-process.

The `project` session replays the same steps end to end (a built wheel, the locks, `make ci`):
tests/toolkit/project/test_end_to_end.py. This one runs on every Python, in the unit tier.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from conftest import block, readme_adapt_section

from mlci.cli import main


def test_the_readme_adapt_steps_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = readme_adapt_section()
    monkeypatch.chdir(tmp_path)
    # 1. Export the data with the README's own snippet (in this process: no subprocess here).
    exec(compile(block(text, "<<'PY'", "PY"), "README snippet", "exec"), {})
    with Path("data/wine.csv").open(newline="") as stream:
        assert sum(1 for _ in csv.reader(stream)) == 179
    # 2. mlci init, as written (the locks are the `project` session's: they need the index).
    command = re.search(r"^\s*mlci (init --data \S+ --target \S+)$", text, re.MULTILINE)
    assert command, "no `mlci init --data … --target …` line in the section"
    assert main([*command[1].split(), "--no-lock"]) == 0
    assert Path("data/wine.checks.toml").is_file()
    Path("requirements").mkdir()
    Path("requirements/main.txt").write_text("scikit-learn==0\n")  # what the stage key reads
    # 3. The tables, replaced as the README says; pictures off for the suite's time.
    toml = block(text, "```toml", "```")
    pyproject = Path("pyproject.toml")
    old = pyproject.read_text()
    start, end = old.index("[tool.mlci.estimator]"), old.index("[tool.mlci.drift]")
    pyproject.write_text(
        old[:start] + toml + "\n" + old[end:] + "\n[tool.mlci.report]\npictures = false\n"
    )
    # 4. train, check, gate, tune, baseline, gate: what the README's comments say happens.
    capsys.readouterr()
    assert main(["train"]) == 0
    assert "trained StandardScaler → LogisticRegression on 178 rows" in capsys.readouterr().out
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith("model checks passed")
    assert main(["gate"]) == 0
    out = capsys.readouterr().out
    assert "reference: none, floors only" in out
    assert "vs StandardScaler → LogisticRegression" in out  # and the simpler models
    assert main(["tune"]) == 0
    assert capsys.readouterr().out.startswith("tuning passed")
    assert main(["baseline", "update"]) == 0
    assert main(["gate"]) == 0
    assert "reference: baseline for Python" in capsys.readouterr().out
