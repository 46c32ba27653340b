"""Every third-party module mlci imports is declared in pyproject.toml, by the part that uses it."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from conftest import REPO

from mlci._settings import read_toml

SOURCE = REPO / "src" / "mlci"
# Import names that differ from the distribution's name.
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "ruamel": "ruamel.yaml",
    "yaml": "pyyaml",
    "mlflow": "mlflow-skinny",
    "prometheus_client": "prometheus-client",
}


def imported(path: Path) -> set[str]:
    """The top-level names of every module a source file imports, at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def declared(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def third_party(path: Path) -> set[str]:
    # tomli below 3.11 and tomllib from 3.11 (core dependency and stdlib), Windows or POSIX locks.
    stdlib = set(sys.stdlib_module_names) | {"mlci", "tomli", "tomllib", "msvcrt", "fcntl"}
    return {DISTRIBUTIONS.get(name, name) for name in imported(path) - stdlib}


@pytest.mark.skipif(sys.version_info < (3, 10), reason="sys.stdlib_module_names needs 3.10")
def test_every_import_is_declared_where_it_is_used() -> None:
    """parity imported `packaging` without declaring it; the same holds for every import."""
    project = read_toml(REPO / "pyproject.toml")["project"]
    core = declared(project["dependencies"])
    extras = {name: declared(reqs) for name, reqs in project["optional-dependencies"].items()}
    # The concern that imports a package names the extra that must declare it.
    owners = {
        "ci": extras["ci"],
        "serving": extras["serve"],
        "delivery": extras["remote"] | extras["mlflow"],  # object storage, MLflow's registry
        "tracking": extras["mlflow"],
        "reporting": extras["plots"],
        "pipeline": extras["parquet"],  # Parquet data files, read by _parquet.py alone
        "nox.py": {"nox"},  # the session factories run inside nox's own process
    }
    missing = []
    for path in sorted(SOURCE.rglob("*.py")):
        concern = path.relative_to(SOURCE).parts[0]
        allowed = core | owners.get(concern, set()) | extras["skops"]
        for name in sorted(third_party(path) - allowed):
            missing.append(f"{path.relative_to(REPO)}: {name}")
    assert missing == []
