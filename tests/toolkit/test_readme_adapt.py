"""The README's "Adapt it to your model" steps, replayed in a temp copy of the repository."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from mlci.cli import main

SECTION = re.compile(r"## Adapt it to your model\n(?P<body>.*?)\n## ", re.DOTALL)


def section() -> str:
    match = SECTION.search((REPO / "README.md").read_text(encoding="utf-8"))
    assert match, "README has no 'Adapt it to your model' section"
    return match["body"]


def block(text: str, start: str, end: str) -> str:
    """The lines between a line containing ``start`` and the next one equal to ``end``."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if start in line) + 1
    last = next(i for i in range(first, len(lines)) if lines[i].strip() == end)
    indent = len(lines[first]) - len(lines[first].lstrip())
    return "\n".join(line[indent:] for line in lines[first:last]) + "\n"


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's tracked files, as a fresh clone has them; the working folder."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, files.split("\0")):
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    # What the steps create must not exist yet, whatever a fork has committed: its own data of
    # the same name, its baseline (the steps start from a baseline made on other data, or none).
    for made in [*tmp_path.glob("data/wine.*"), tmp_path / "metrics" / "baseline.json"]:
        made.unlink(missing_ok=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_adapt_steps_work(clone: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = section()
    # 1. Export the data with the README's own snippet.
    snippet = block(text, "<<'PY'", "PY")
    subprocess.run([sys.executable, "-"], input=snippet, text=True, cwd=clone, check=True)
    assert (clone / "data" / "wine.csv").read_text().count("\n") == 179
    # 2. mlci data init, as written.
    command = re.search(r"mlci (data init \S+ --target \S+)", text)
    assert command, "no `mlci data init` line in the section"
    assert main(command[1].split()) == 0
    assert (clone / "data" / "wine.checks.toml").is_file()
    # 3. The [tool.mlci] tables, replaced as the README says.
    toml = block(text, "```toml", "```")
    pyproject = clone / "pyproject.toml"
    old = pyproject.read_text()
    pyproject.write_text(
        old[: old.index("[tool.mlci]\n")] + toml + "\n" + old[old.index("[tool.mlci.drift]") :]
    )
    # 4. train, check, gate, baseline, gate: what the README's comments say happens.
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
    # The model's tests, driven by the new config, hold for the new model on this Python.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-cov", "tests/model"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
