"""The files mlci owns in a project, rendered from the templates shipped in the wheel."""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path, PurePosixPath

from mlci import __version__
from mlci.pipeline import is_parquet

# The tools every project's locks pin: this repository's own `tools` group, checked by its tests.
NOX_VERSION = "2026.10.20"
UV_VERSION = "0.13.8"

# Project path -> template. `mlci update` keeps these current (the manifest records their hashes).
OWNED = {
    "noxfile.py": "noxfile.py.tmpl",
    "Makefile": "Makefile.tmpl",
    ".github/workflows/ci.yml": "ci.yml.tmpl",
    ".github/workflows/delivery.yml": "delivery.yml.tmpl",
    ".github/dependabot.yml": "dependabot.yml.tmpl",
    ".python-version": "python-version.tmpl",
}
# Written once by `mlci init` when absent, then the project's own: never updated.
STARTERS = {
    "tests/model/test_model.py": "test_model.py.tmpl",
    ".gitignore": "gitignore.tmpl",
}


@dataclasses.dataclass(frozen=True)
class Data:
    """Where the project's data is, relative to its root."""

    csv: str
    target: str

    @property
    def manifest(self) -> str:
        """The manifest beside the CSV, as `mlci data init` names it."""
        return PurePosixPath(self.csv).with_suffix(".manifest.json").as_posix()

    @property
    def checks(self) -> str:
        """The starter checks beside the CSV, as `mlci data init` names them."""
        return PurePosixPath(self.csv).with_suffix(".checks.toml").as_posix()


IRIS = Data("data/iris.csv", "species")


def template(name: str, **values: str) -> str:
    """One template's text with its ``@name@`` placeholders filled."""
    folder = resources.files("mlci.project").joinpath("templates")
    text = folder.joinpath(name).read_text(encoding="utf-8")
    for key, value in {
        "mlci": __version__,
        "nox": NOX_VERSION,
        "uv": UV_VERSION,
        **values,
    }.items():
        text = text.replace(f"@{key}@", value)
    return text


def owned() -> dict[str, str]:
    """Every file mlci owns, as this version writes it."""
    return {path: template(name) for path, name in OWNED.items()}


def starters() -> dict[str, str]:
    """The files `mlci init` starts the project with, which are the project's from then on."""
    return {path: template(name) for path, name in STARTERS.items()}


def tables(data: Data, task: str = "classification") -> dict[str, str]:
    """The pyproject.toml tables `mlci init` adds, by dotted name, as TOML text.

    ``task``: what the data's target asks for (`mlci data init` decides): a regressor's project
    starts with a regressor, its gate with floors and ceilings that make sense for one.
    """
    if data == IRIS:
        config = template("tool-mlci.iris.toml.tmpl")
    else:
        name = "tool-mlci.regression.toml.tmpl" if task == "regression" else "tool-mlci.toml.tmpl"
        config = template(name, data=data.csv, manifest=data.manifest, target=data.target)
    return {
        # Parquet data needs pyarrow wherever the data is read (training, tests, drift).
        "dependency-groups": template(
            "groups.toml.tmpl",
            extras="plots,parquet" if is_parquet(Path(data.csv)) else "plots",
        ),
        "tool.mlci": config,
        "tool.pytest": template("tool-pytest.toml.tmpl"),
        "tool.ruff": template("tool-ruff.toml.tmpl"),
    }
