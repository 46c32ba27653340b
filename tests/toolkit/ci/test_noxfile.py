"""The noxfile's sessions, run against a stand-in for nox that records what they would install."""

from __future__ import annotations

import re
import runpy
import shutil
import sys
import types
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import REPO

import mlci
from mlci._settings import tomllib


class Recorder:
    """A nox.Session that runs nothing and keeps every command."""

    def __init__(self, venv: Path) -> None:
        self.virtualenv = types.SimpleNamespace(location=str(venv))
        self.venv_backend = "uv"
        self.python = "3.11"
        self.posargs: list[str] = []
        self.env: dict[str, str] = {}
        self.commands: list[tuple[str, ...]] = []

    def run_install(self, *args: str, **kwargs: Any) -> None:
        self.commands.append(args)

    run = install = run_install

    def log(self, *args: Any) -> None:
        pass

    def error(self, *args: Any) -> None:
        raise AssertionError(" ".join(map(str, args)))


def fake_nox() -> types.ModuleType:
    sessions: dict[str, Callable[..., None]] = {}

    def session(*args: Any, **kwargs: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
        def register(function: Callable[..., None]) -> Callable[..., None]:
            sessions[kwargs.get("name", function.__name__)] = function
            return function

        return register

    def load_toml(path: Path) -> dict[str, Any]:
        with Path(path).open("rb") as stream:
            document: dict[str, Any] = tomllib.load(stream)
        return document

    module = types.ModuleType("nox")
    module.session = session  # type: ignore[attr-defined]  # a stand-in module's attributes
    module.options = types.SimpleNamespace()  # type: ignore[attr-defined]  # likewise
    module.project = types.SimpleNamespace(  # type: ignore[attr-defined]  # likewise
        load_toml=load_toml, python_versions=lambda pyproject: ["3.9", "3.10", "3.11", "3.12"]
    )
    module.Session = Recorder  # type: ignore[attr-defined]  # likewise
    module.main = lambda: None  # type: ignore[attr-defined]  # likewise
    module.sessions = sessions  # type: ignore[attr-defined]  # what the test reads back
    return module


def synced_locks(root: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The lock files session ``name`` of ``root/noxfile.py`` syncs its venv to."""
    nox = fake_nox()
    monkeypatch.setitem(sys.modules, "nox", nox)
    # mlci.nox, if imported before, is bound to the real nox: import it again with the stand-in.
    monkeypatch.delitem(sys.modules, "mlci.nox", raising=False)
    monkeypatch.delattr(mlci, "nox", raising=False)
    runpy.run_path(str(root / "noxfile.py"), run_name="noxfile")
    recorder = Recorder(root / ".nox" / name)
    nox.sessions[name](recorder)
    sync = next(c for c in recorder.commands if c[:3] == ("uv", "pip", "sync"))
    return [Path(arg).name for arg in sync if arg.endswith(".txt")]


def set_model_format(root: Path, model_format: str) -> None:
    """Whatever the repository's [tool.mlci] says (a fork rewrites it), use ``model_format``."""
    pyproject = root / "pyproject.toml"
    text = re.sub(r"(?m)^model_format\s*=.*\n", "", pyproject.read_text())
    pyproject.write_text(
        text.replace("[tool.mlci]\n", f'[tool.mlci]\nmodel_format = "{model_format}"\n', 1)
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name in ("noxfile.py", "pyproject.toml", ".python-version"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "requirements", tmp_path / "requirements")
    (tmp_path / ".nox").mkdir()
    return tmp_path


@pytest.mark.parametrize("name", ["train", "gate", "check", "release", "retrain", "drift", "serve"])
def test_model_format_skops_installs_skops_in_every_model_session(
    repo: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the test lock had skops: the documented setting failed in these sessions."""
    set_model_format(repo, "skops")
    assert "skops.txt" in synced_locks(repo, name, monkeypatch)


@pytest.mark.parametrize(
    ("url", "lock"),
    [
        ("s3://models/registry", "remote.txt"),
        ("gs://models/registry", "gcs.txt"),
        ("mlflow:iris-classifier", "mlflow.txt"),
    ],
)
@pytest.mark.parametrize("name", ["gate", "release", "retrain", "rollback", "drift", "serve"])
def test_a_registry_url_installs_its_backend_in_the_sessions_that_use_it(
    repo: Path, name: str, url: str, lock: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_model_format(repo, "joblib")
    assert lock not in synced_locks(repo, name, monkeypatch)
    monkeypatch.setenv("MLCI_REGISTRY", url)  # as the delivery workflow sets it
    assert lock in synced_locks(repo, name, monkeypatch)
    monkeypatch.delenv("MLCI_REGISTRY")
    pyproject = repo / "pyproject.toml"
    text = re.sub(r"(?m)^registry\s*=.*\n", "", pyproject.read_text())
    pyproject.write_text(text.replace("[tool.mlci]\n", f'[tool.mlci]\nregistry = "{url}"\n', 1))
    assert lock in synced_locks(repo, name, monkeypatch)


@pytest.mark.parametrize("name", ["train", "gate", "release", "drift"])
def test_tracked_runs_install_mlflows_client_in_the_sessions_that_log(
    repo: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_model_format(repo, "joblib")
    for variable in ("MLFLOW_TRACKING_URI", "MLCI_REGISTRY"):
        monkeypatch.delenv(variable, raising=False)
    pyproject = repo / "pyproject.toml"  # untracked, whatever a fork's own settings say
    untracked = re.sub(r"(?m)^(registry|tracking_uri)\s*=.*\n", "", pyproject.read_text())
    pyproject.write_text(untracked)
    assert "mlflow.txt" not in synced_locks(repo, name, monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert "mlflow.txt" in synced_locks(repo, name, monkeypatch)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    setting = 'tracking_uri = "http://127.0.0.1:5000"\n'
    if "[tool.mlci.mlflow]\n" in untracked:
        tracked = untracked.replace("[tool.mlci.mlflow]\n", "[tool.mlci.mlflow]\n" + setting)
    else:
        tracked = untracked + "\n[tool.mlci.mlflow]\n" + setting
    pyproject.write_text(tracked)
    assert "mlflow.txt" in synced_locks(repo, name, monkeypatch)


def test_joblib_sessions_install_the_runtime_and_the_reports_pictures_only(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_model_format(repo, "joblib")
    for variable in ("MLFLOW_TRACKING_URI", "MLCI_REGISTRY"):
        monkeypatch.delenv(variable, raising=False)
    pyproject = repo / "pyproject.toml"  # whatever a fork's own registry and tracking say
    pyproject.write_text(re.sub(r"(?m)^(registry|tracking_uri)\s*=.*\n", "", pyproject.read_text()))
    assert synced_locks(repo, "train", monkeypatch) == ["main.txt", "plots.txt"]
    assert "plots.txt" not in synced_locks(repo, "serve", monkeypatch)
    assert synced_locks(repo, "parity", monkeypatch) == ["ci.txt"]


def test_importing_mlci_nox_registers_nothing_and_each_factory_registers_its_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nox registers every decorated function when its module runs: mlci.nox must decorate
    nothing until a noxfile calls a factory, so a project can leave one out and define its own."""
    import importlib

    nox = fake_nox()
    monkeypatch.setitem(sys.modules, "nox", nox)
    monkeypatch.delitem(sys.modules, "mlci.nox", raising=False)
    monkeypatch.delattr(mlci, "nox", raising=False)
    factories = importlib.import_module("mlci.nox")
    assert nox.sessions == {}
    (tmp_path / "pyproject.toml").write_text("[tool.mlci]\n")
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # configure() drops it
    project = factories.configure(tmp_path / "noxfile.py")
    assert nox.sessions == {}
    factories.train(project)
    factories.all_green(project)
    assert sorted(nox.sessions) == ["all-green", "train"]
