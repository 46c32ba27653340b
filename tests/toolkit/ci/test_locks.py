from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import REPO

from mlci.ci import _locks as locks
from mlci.ci._parity import Repo
from mlci.cli import main
from mlci.errors import MlciError


@pytest.fixture
def all_locks() -> list[locks.Lock]:
    return Repo.read(REPO).locks


def test_each_lock_is_compiled_from_its_inputs(all_locks: list[locks.Lock], tmp_path: Path) -> None:
    commands = {lock.path: lock.command(tmp_path / "out.txt") for lock in all_locks}
    main, test, lint, tools = (
        commands[f"requirements/{n}.txt"] for n in ("main", "test", "lint", "tools")
    )
    for command in commands.values():
        assert command[:7] == locks.COMPILE
        assert "--generate-hashes" in command
        assert "--universal" in command
        assert "--emit-index-url" not in command
    assert main[-3:] == ["pyproject.toml", "-o", str(tmp_path / "out.txt")]
    assert main[main.index("--python-version") + 1] == "3.9"
    assert test[-6:-2] == ["--group", "test", "--constraint", "requirements/main.txt"]
    assert lint[-4:-2] == ["--group", "pyproject.toml:lint"]
    assert tools[tools.index("--python-version") + 1] == locks.TOOLS_PYTHON


def test_pins_reads_every_marker_split(tmp_path: Path) -> None:
    path = tmp_path / "lock.txt"
    path.write_text(
        "# header\nNumPy==2.0.2 ; python_full_version < '3.10' \\\n    --hash=sha256:aa\n"
        "numpy==2.2.6 ; python_full_version >= '3.10' \\\n    --hash=sha256:bb\n"
        "zope.interface==7.0\n"
    )
    assert locks.pins(path) == {"numpy": ["2.0.2", "2.2.6"], "zope-interface": ["7.0"]}


def test_compile_all_runs_uv_per_lock(
    all_locks: list[locks.Lock], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(locks, "_run", lambda command, root: seen.append(command))
    locks.compile_all(tmp_path, all_locks, upgrade=True)
    outputs = [command[command.index("-o") + 1] for command in seen]
    assert outputs == [str(tmp_path / lock.path) for lock in all_locks]
    assert all("--upgrade" in command for command in seen)


def test_resolve_reports_what_a_fresh_resolution_changes(
    all_locks: list[locks.Lock], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for lock in all_locks:
        (tmp_path / lock.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / lock.path).write_text("joblib==1.5.0 \\\n    --hash=sha256:aa\n")

    def fake_uv(command: list[str], root: Path) -> None:
        output = Path(command[-1])
        if output.name == "main.txt":
            output.write_text("joblib==1.6.0 \\\n    --hash=sha256:bb\n")

    monkeypatch.setattr(locks, "_run", fake_uv)
    assert locks.resolve_differences(tmp_path, all_locks) == {
        "requirements/main.txt": "joblib 1.5.0 -> 1.6.0"
    }
    (tmp_path / "requirements" / "lint.txt").unlink()  # reported by locks-fresh, skipped here
    assert list(locks.resolve_differences(tmp_path, all_locks)) == ["requirements/main.txt"]


def test_outdated_reports_the_pins_an_upgrade_would_move_and_writes_no_lock(
    all_locks: list[locks.Lock],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    for lock in all_locks:
        (tmp_path / lock.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / lock.path).write_text("joblib==1.5.0 \\\n    --hash=sha256:aa\n")
    seen: list[list[str]] = []

    def fake_uv(command: list[str], root: Path) -> None:
        seen.append(command)
        if "--upgrade" in command and Path(command[command.index("-o") + 1]).name == "main.txt":
            Path(command[command.index("-o") + 1]).write_text(
                "joblib==1.6.0 \\\n    --hash=sha256:bb\n"
            )

    monkeypatch.setattr(locks, "_run", fake_uv)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["-C", str(tmp_path), "lock", "--outdated"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Outdated locks: 1 pin behind")
    assert "requirements/main.txt  joblib 1.5.0 -> 1.6.0" in out
    assert "| requirements/main.txt | joblib 1.5.0 -> 1.6.0 |" in summary.read_text()
    assert all("--upgrade" in command for command in seen)
    assert (tmp_path / "requirements" / "main.txt").read_text().startswith("joblib==1.5.0")


@pytest.mark.integration
def test_a_missing_uv_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MlciError, match="uv: not installed"):
        locks._run(["uv", "pip", "compile"], tmp_path)


@pytest.mark.integration
def test_a_failing_uv_is_a_clear_error(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; sys.stderr.write('no solution'); sys.exit(1)"]
    with pytest.raises(MlciError, match="uv pip compile failed:\nno solution"):
        locks._run(command, tmp_path)


def test_locks_installed_together_agree_on_every_python_and_platform(tmp_path: Path) -> None:
    from mlci.ci._locks import disagreements, installed_together, project_locks

    (tmp_path / "a.txt").write_text(
        "python-dateutil==2.9.0.post0 \\\n    --hash=sha256:00\n"
        "urllib3==1.26.20 ; python_full_version < '3.10' \\\n    --hash=sha256:00\n"
    )
    (tmp_path / "b.txt").write_text(
        "python-dateutil==3.0.0 ; python_full_version < '3.11' \\\n    --hash=sha256:00\n"
        "python-dateutil==4.0.0 ; python_full_version >= '3.11' \\\n    --hash=sha256:00\n"
        "urllib3==2.6.3 ; python_full_version >= '3.10' \\\n    --hash=sha256:00\n"
        "colorama==0.4.6 ; sys_platform == 'win32' \\\n    --hash=sha256:00\n"
    )
    found = disagreements(tmp_path, ["a.txt", "b.txt"], ["3.9", "3.12"])
    assert len(found) == 1  # urllib3's pins never apply to the same Python
    assert found[0][0] == "a.txt"
    assert (
        "python-dateutil is pinned at 2.9.0.post0 in a.txt, 3.0.0 in b.txt on Python 3.9"
        in (found[0][1])
    )
    # This repository's own locks: every combination the noxfile can install agrees.
    together = [lock.path for lock in installed_together(project_locks(REPO))]
    assert {"requirements/main.txt", "requirements/remote.txt", "requirements/plots.txt"} <= set(
        together
    )
    assert "requirements/ci.txt" not in together
    assert disagreements(REPO, together, ["3.9", "3.10", "3.11", "3.12"]) == []


def test_a_project_made_by_init_gets_one_lock_per_group_main_first() -> None:
    """`mlci init`'s groups: mlci pinned once and never locked alone; main constrains the rest."""
    from mlci.ci._locks import installed_together, locks

    pyproject = {
        "dependency-groups": {
            "mlci": ["mlci==0.2.0"],
            "main": [{"include-group": "mlci"}, "mlci[plots]"],
            "test": [{"include-group": "main"}, "pytest>=8"],
            "serve": [{"include-group": "mlci"}, "mlci[serve]"],
            "ci": [{"include-group": "mlci"}, "mlci[ci]", "nox==2026.10.20"],
            "lint": [{"include-group": "mlci"}, "ruff>=0.15"],
            "tools": [{"include-group": "mlci"}, "nox==2026.10.20", "uv==0.13.8"],
        }
    }
    found = {lock.path: lock for lock in locks(pyproject, "3.11")}
    assert next(iter(found)) == "requirements/main.txt"
    assert "requirements/mlci.txt" not in found
    assert found["requirements/main.txt"].python == "3.9"  # no classifiers: mlci's matrix
    assert found["requirements/test.txt"].constraint == "requirements/main.txt"
    assert found["requirements/tools.txt"].python == "3.10"  # nox needs it
    assert found["requirements/tools.txt"].constraint is None
    assert found["requirements/lint.txt"].python == "3.11"
    assert sorted(lock.path for lock in installed_together(list(found.values()))) == [
        "requirements/main.txt",
        "requirements/serve.txt",
    ]
    command = found["requirements/test.txt"].command(Path("out.txt"), "wheels")
    assert command[command.index("--find-links") + 1] == "wheels"
    group = command.index("--group")
    assert command[group : group + 2] == ["--group", "pyproject.toml:test"]


def test_a_package_of_its_own_has_its_dependencies_in_the_locks_its_code_runs_with() -> None:
    """An existing repository that is a package: its sessions install it without dependencies."""
    from mlci.ci._locks import locks

    pyproject = {
        "project": {"name": "acme", "dependencies": ["pandas>=2"]},
        "dependency-groups": {
            "mlci": ["mlci==0.2.0"],
            "main": [{"include-group": "mlci"}],
            "test": [{"include-group": "main"}, "pytest>=8"],
            "tools": [{"include-group": "mlci"}, "nox==2026.10.20"],
        },
    }
    found = {lock.path: lock for lock in locks(pyproject, "3.11")}
    assert found["requirements/main.txt"].inputs == ("project", "main")
    assert found["requirements/test.txt"].inputs == ("project", "test")
    assert found["requirements/tools.txt"].inputs == ("tools",)
    command = found["requirements/main.txt"].command(Path("out.txt"))
    assert "pyproject.toml" in command
    assert command[command.index("--group") + 1] == "main"
