"""This repository's root is a project `mlci init` makes, plus the repository's own additions."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from mlci import project
from mlci._settings import tomllib


def missing_lines(generated: str, actual: str) -> list[str]:
    """The generated lines that ``actual`` lacks, reading both in order (insertions allowed)."""
    lines = actual.splitlines()
    position, missing = 0, []
    for line in generated.splitlines():
        try:
            position = lines.index(line, position) + 1
        except ValueError:
            missing.append(line)
    return missing


@pytest.mark.parametrize("path", sorted(project.OWNED))
def test_each_owned_file_is_what_init_writes_plus_additions(path: str) -> None:
    """Additions (this repository's own sessions, jobs, targets) are allowed; nothing else."""
    missing = missing_lines(project.owned()[path], (REPO / path).read_text(encoding="utf-8"))
    assert not missing, f"{path} drifted from what `mlci init` writes; missing: {missing[:5]}"


@pytest.mark.parametrize("path", sorted(project.STARTERS))
def test_each_starter_is_what_init_writes_plus_additions(path: str) -> None:
    missing = missing_lines(project.starters()[path], (REPO / path).read_text(encoding="utf-8"))
    assert not missing, f"{path} drifted from what `mlci init` writes; missing: {missing[:5]}"


def test_the_mlci_config_is_the_iris_sample_init_writes() -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert project.tables(project.IRIS)["tool.mlci"] in text


def test_the_checker_sees_a_changed_line(tmp_path: Path) -> None:
    generated = "a\nb\nc\n"
    assert missing_lines(generated, "a\nx\nb\nc\ny\n") == []
    assert missing_lines(generated, "a\nc\nb\n") == ["c"]
    assert missing_lines(generated, "a\nB\nc\n") == ["b"]


def test_the_tools_init_pins_are_this_repositorys_own() -> None:
    from mlci.project._render import NOX_VERSION, UV_VERSION

    with (REPO / "pyproject.toml").open("rb") as stream:
        tools = tomllib.load(stream)["dependency-groups"]["tools"]
    assert f"nox=={NOX_VERSION}" in tools
    assert f"uv=={UV_VERSION}" in tools
