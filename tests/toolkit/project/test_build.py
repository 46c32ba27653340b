"""`nox -s build`: the same bytes from one commit, and a wheel holding mlci and nothing else."""

from __future__ import annotations

import hashlib
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

from mlci import __version__, project

pytestmark = pytest.mark.integration


def build(out: Path, epoch: str) -> dict[str, str]:
    """Build the wheel and sdist as the build session does; each file's SHA-256."""
    subprocess.run(
        [
            *("uv", "build", "--quiet", "--out-dir", str(out)),
            *("--build-constraints", str(REPO / "requirements" / "build.txt")),
            *("--require-hashes", str(REPO)),
        ],
        env={**os.environ, "SOURCE_DATE_EPOCH": epoch},
        check=True,
    )
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in out.iterdir()
        if path.suffix in (".whl", ".gz")
    }


def test_two_builds_of_one_commit_are_byte_identical_and_ship_only_mlci(tmp_path: Path) -> None:
    epoch = subprocess.run(
        ["git", "log", "-1", "--format=%ct"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    first, second = build(tmp_path / "a", epoch), build(tmp_path / "b", epoch)
    wheel = f"mlci-{__version__}-py3-none-any.whl"
    assert sorted(first) == [wheel, f"mlci-{__version__}.tar.gz"]
    assert first == second
    with zipfile.ZipFile(tmp_path / "a" / wheel) as archive:
        names = archive.namelist()
    assert all(name.startswith(("mlci/", f"mlci-{__version__}.dist-info/")) for name in names)
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    # Everything a project needs at run time: the session factories and every template.
    assert "mlci/nox.py" in names
    templates = {name.rsplit("/", 1)[1] for name in names if "/templates/" in name}
    assert set(project.OWNED.values()) | set(project.STARTERS.values()) <= templates
