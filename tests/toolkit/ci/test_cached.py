from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlci.ci import _cached as cached
from mlci.cli import main

# Counts its runs in runs.log (git-ignored) and writes out.txt, an output.
COMMAND = [
    sys.executable,
    "-c",
    "import pathlib; p = pathlib.Path('runs.log'); p.write_text(p.read_text() + 'x' "
    "if p.exists() else 'x'); pathlib.Path('out.txt').write_text('result')",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A git work tree with one tracked file and an ignore list."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("runs.log\nout.txt\nartifacts/\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    return tmp_path


def run(tree: Path, command: list[str] = COMMAND) -> cached.Outcome:
    return cached.run(tree, tree / "artifacts", "demo", command, outputs=[Path("out.txt")])


def runs(tree: Path) -> int:
    return len((tree / "runs.log").read_text())


@pytest.mark.integration
def test_a_second_run_on_the_same_inputs_is_skipped(tree: Path) -> None:
    first = run(tree)
    assert (first.ran, first.returncode, first.reason) == (True, 0, "no successful run on record")
    assert run(tree) == cached.Outcome(False, 0, "")
    assert runs(tree) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda t: (t / "code.py").write_text("x = 2\n"), "inputs changed"),
        (lambda t: (t / "new.py").write_text(""), "inputs changed"),  # untracked, not ignored
        (lambda t: (t / "code.py").unlink(), "inputs changed"),
        (lambda t: (t / "out.txt").write_text("tampered"), "output out.txt is missing or modified"),
        (lambda t: (t / "out.txt").unlink(), "output out.txt is missing or modified"),
        (lambda t: (t / "artifacts" / ".cache" / "demo.json").write_text("{"), "unreadable"),
    ],
)
@pytest.mark.integration
def test_any_change_of_input_or_output_runs_again(
    tree: Path, change: Callable[[Path], object], reason: str
) -> None:
    run(tree)
    change(tree)
    outcome = run(tree)
    assert outcome.ran
    assert reason in outcome.reason
    assert runs(tree) == 2


@pytest.mark.integration
def test_ignored_files_do_not_count(tree: Path) -> None:
    run(tree)
    (tree / "runs.log").write_text("xxxxx")  # ignored: not an input
    assert not run(tree).ran


@pytest.mark.integration
def test_the_command_line_and_named_env_vars_are_part_of_the_key(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(tree)
    assert run(tree, [*COMMAND, "extra-arg"]).ran
    monkeypatch.setenv("DEMO_SETTING", "1")
    cached.run(tree, tree / "artifacts", "env", COMMAND, env=["DEMO_SETTING"])
    assert not cached.run(tree, tree / "artifacts", "env", COMMAND, env=["DEMO_SETTING"]).ran
    monkeypatch.setenv("DEMO_SETTING", "2")
    assert cached.run(tree, tree / "artifacts", "env", COMMAND, env=["DEMO_SETTING"]).ran


@pytest.mark.integration
def test_failures_are_never_recorded(tree: Path) -> None:
    failing = [sys.executable, "-c", "raise SystemExit(3)"]
    assert run(tree, failing).returncode == 3
    assert run(tree, failing).returncode == 3
    run(tree)
    assert run(tree, failing).returncode == 3
    assert run(tree).ran  # the failure removed the record of the earlier success


@pytest.mark.integration
def test_no_cache_forces_a_run(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(tree)
    monkeypatch.setenv("MLCI_NO_CACHE", "1")
    assert run(tree).reason == "MLCI_NO_CACHE is set"


@pytest.mark.integration
def test_outside_git_it_always_runs(tmp_path: Path) -> None:
    assert run(tmp_path).ran
    assert run(tmp_path).reason.startswith("not a git work tree")


@pytest.mark.integration
def test_a_missing_command(tree: Path) -> None:
    assert run(tree, ["no-such-command-here"]).returncode == 127


@pytest.mark.integration
def test_cli(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / ".gitignore").write_text("artifacts/\nruns.log\nout.txt\n")
    args = ["-C", str(project), "cached", "demo", "--output", "out.txt", "--", *COMMAND]
    assert main(args) == 0
    assert main(args) == 0
    assert "mlci: demo: up to date, it passed on exactly these inputs" in capsys.readouterr().out
    assert runs(project) == 1
    assert main(["-C", str(project), "cached", "demo"]) == 2
    assert "give the command after '--'" in capsys.readouterr().err


def test_only_the_cached_command_takes_what_follows_its_dashes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mlci data validate -- cached` names a file called `cached`, it is not `mlci cached`."""
    assert main(["-C", str(project), "data", "validate", "--", "cached"]) == 2
    assert "cached" in capsys.readouterr().err


@pytest.mark.integration
def test_the_command_right_after_the_name_runs(project: Path) -> None:
    """`mlci cached NAME -- CMD`, as the noxfile writes it: argparse drops that `--` itself."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / ".gitignore").write_text("artifacts/\nruns.log\nout.txt\n")
    args = ["-C", str(project), "cached", "plain", "--", *COMMAND]
    assert main(args) == 0
    assert main(args) == 0
    assert runs(project) == 1
