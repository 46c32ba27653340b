"""mlci's sessions, as factories a project's noxfile calls: importing this registers nothing.

A project's `noxfile.py` (as `mlci init` writes it) calls one factory per session it wants::

    project = mlci.nox.configure(__file__)
    mlci.nox.lint(project)
    mlci.nox.train(project)

Replacing a session means not calling its factory and defining your own `@nox.session` of that
name; adding one is defining it. Every session installs from a hash-pinned lock in
`requirements/` (written by `mlci lock`) and runs one `mlci` command or tool. This module
imports only the standard library and nox: it runs in nox's own venv (`.tools/`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import nox

__all__ = [
    "Project",
    "all_green",
    "baseline",
    "check",
    "clean",
    "comment",
    "configure",
    "coverage",
    "drift",
    "gate",
    "install_locked",
    "lint",
    "lock",
    "outdated",
    "parity",
    "release",
    "retrain",
    "rollback",
    "serve",
    "test",
    "train",
    "tune",
]

# mlci's Python matrix, used when pyproject.toml names none (no trove classifiers).
PYTHONS = ["3.9", "3.10", "3.11", "3.12"]
# A registry URL's scheme -> the lock of the extra that reaches it (MLCI_REGISTRY wins, as in mlci).
BACKEND_LOCKS = {"s3": "remote", "s3a": "remote", "gs": "gcs", "gcs": "gcs"}
Function = Callable[[nox.Session], None]


@dataclasses.dataclass(frozen=True)
class Project:
    """What the sessions read from the project once, when the noxfile loads."""

    root: Path
    pyproject: dict[str, Any]
    pythons: list[str]
    default_python: str

    @property
    def mlci(self) -> dict[str, Any]:
        """The `[tool.mlci]` table."""
        table: dict[str, Any] = self.pyproject.get("tool", {}).get("mlci", {})
        return table

    @property
    def is_package(self) -> bool:
        """The project is a package of its own, installed beside the locks (without deps)."""
        return "build-system" in self.pyproject

    def lock(self, name: str) -> Path:
        """``requirements/<name>.txt``."""
        return self.root / "requirements" / f"{name}.txt"

    def extra_locks(self) -> list[Path]:
        """The locks the configured model format, registry and tracking need beside main's."""
        names = ["skops"] if self.mlci.get("model_format", "joblib") == "skops" else []
        registry = os.environ.get("MLCI_REGISTRY") or self.mlci.get("registry", "")
        if "://" in registry:
            backend = BACKEND_LOCKS.get(registry.split("://")[0].lower())
            names += [backend] if backend else []
        tracking = os.environ.get("MLFLOW_TRACKING_URI") or self.mlci.get("mlflow", {}).get(
            "tracking_uri", ""
        )
        if tracking or registry.startswith("mlflow:"):
            names.append("mlflow")
        return [self.lock(name) for name in names]

    def model_locks(self) -> list[Path]:
        """What the model's sessions install: the runtime, the extras, the report's pictures."""
        plots = [self.lock("plots")] if self.lock("plots").exists() else []
        return [self.lock("main"), *self.extra_locks(), *plots]


def configure(noxfile: str | Path) -> Project:
    """Read the project beside ``noxfile`` and set the nox options every mlci project uses."""
    # Installs are exact syncs from the locks, so reusing a venv is safe; `make ci` never skips
    # a missing Python; sessions marked allow_parallel run side by side, one per CPU.
    nox.options.default_venv_backend = "uv|virtualenv"
    nox.options.error_on_missing_interpreters = True
    nox.options.reuse_venv = "yes"
    nox.options.parallel = "auto"  # type: ignore[assignment]  # nox takes "auto"; its stub says int
    # Let Python cache bytecode in the (git-ignored) session venvs: with PYTHONDONTWRITEBYTECODE
    # set, every pytest run recompiles scikit-learn (about 1.5 s).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    root = Path(noxfile).resolve().parent
    pyproject = nox.project.load_toml(root / "pyproject.toml")
    try:
        pythons = nox.project.python_versions(pyproject)
    except (KeyError, ValueError):
        pythons = []
    version_file = root / ".python-version"
    default = version_file.read_text(encoding="utf-8").strip() if version_file.exists() else "3.11"
    return Project(root, pyproject, pythons or PYTHONS, default)


def install_locked(session: nox.Session, project: Project, *locks: Path) -> None:
    """Make the venv exactly the locks (hashes required), then the project without its deps.

    A reused venv whose locks and pyproject.toml are unchanged since its last install is left
    as it is (about a third of a warm `make ci`). `rm -rf .nox` rebuilds from scratch.
    """
    missing = [lock for lock in locks if not lock.exists()]
    if missing:
        session.error(
            f"{', '.join(lock.relative_to(project.root).as_posix() for lock in missing)} missing: "
            "add its dependency group to pyproject.toml and run `mlci lock` (or `nox -s lock`)"
        )
    itself = project.is_package
    stamp = Path(session.virtualenv.location) / ".mlci-installed"
    inputs = [*locks, project.root / "pyproject.toml"] if itself else list(locks)
    wanted = hashlib.sha256(
        b"".join(path.read_bytes() for path in inputs) + session.venv_backend.encode()
    ).hexdigest()
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        session.log("venv matches the locks: nothing to install")
        return
    if session.venv_backend == "uv":
        # `sync` also removes what a changed lock dropped, which keeps reused venvs honest.
        session.run_install("uv", "pip", "sync", "--require-hashes", "--quiet", *map(str, locks))
    else:
        session.install(
            "--require-hashes", "--no-compile", *(f"--requirement={lock}" for lock in locks)
        )
    if itself:
        session.install("--no-deps", "--quiet", "-e", str(project.root))
    # Through run_install, so that `nox --no-install` (which skips the installs) skips it too.
    session.run_install(
        "python",
        "-c",
        "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])",
        str(stamp),
        wanted,
        silent=True,
    )


def _register(function: Function, **options: Any) -> Function:
    """Register ``function`` as a session now, when the noxfile calls its factory."""
    registered: Function = nox.session(**options)(function)
    return registered


def lint(project: Project) -> Function:
    """ruff, zizmor offline, GitHub's workflow schema, import contracts when configured."""

    def lint(session: nox.Session) -> None:
        """Lint the code (ruff) and the workflows (zizmor offline, GitHub's workflow schema)."""
        install_locked(session, project, project.lock("lint"))
        session.run("mlci", "cached", "lint", "--", "mlci", "lint")

    return _register(lint, python=project.default_python, tags=["ci"], allow_parallel=True)


def parity(project: Project) -> Function:
    """`mlci parity`: CI runs what `make ci` runs."""

    def parity(session: nox.Session) -> None:
        """Check that CI runs what `make ci` runs: workflows, Makefile, sessions, Pythons, locks."""
        install_locked(session, project, project.lock("ci"))
        session.run("mlci", "cached", "parity", "--", "mlci", "parity", *session.posargs)

    return _register(parity, python=project.default_python, tags=["ci"], allow_parallel=True)


def train(project: Project) -> Function:
    """`mlci train`: validate the data, train and evaluate (skipped when up to date)."""

    def train(session: nox.Session) -> None:
        """Validate the data, then train and evaluate the model (skipped when up to date)."""
        install_locked(session, project, *project.model_locks())
        session.run("mlci", "train", *session.posargs)

    return _register(train, python=project.default_python, tags=["ci"], allow_parallel=True)


def gate(project: Project) -> Function:
    """`mlci gate`, after train."""

    def gate(session: nox.Session) -> None:
        """Pass or fail the trained model against the floors and this Python's baseline."""
        install_locked(session, project, *project.model_locks())
        session.run("mlci", "gate")
        session.run("mlci", "diff", "--md", silent=True)

    return _register(
        gate, python=project.default_python, tags=["ci"], requires=["train"], allow_parallel=True
    )


def check(project: Project) -> Function:
    """`mlci check`: the behavioural checks, after train."""

    def check(session: nox.Session) -> None:
        """The model's behavioural checks (data/<name>.checks.toml) against the trained model."""
        install_locked(session, project, *project.model_locks())
        # The trained model is a function of the tree (the stage key), so the verdict is too.
        session.run(
            *("mlci", "cached", "check", "--output", "artifacts/checks.json", "--"),
            *("mlci", "check", *session.posargs),
        )

    return _register(
        check, python=project.default_python, tags=["ci"], requires=["train"], allow_parallel=True
    )


def tune(project: Project) -> Function:
    """`mlci tune`, on demand and on the schedule."""

    def tune(session: nox.Session) -> None:
        """Cross-validate [tool.mlci.tune] grid; fail if the configured params trail its best."""
        install_locked(session, project, *project.model_locks())
        session.run("mlci", "tune", *session.posargs)

    return _register(tune, python=project.default_python, default=False)


def baseline(project: Project) -> Function:
    """`mlci baseline update` on every Python of the matrix."""

    def baseline(session: nox.Session) -> None:
        """Retrain on every Python of the matrix and record the results in metrics/baseline.json."""
        install_locked(session, project, *project.model_locks())
        session.run("mlci", "baseline", "update")

    return _register(baseline, python=project.pythons, default=False)


def test(project: Project) -> Function:
    """pytest on every Python of the matrix: `tests/model` and the team's own tests."""

    def test(session: nox.Session) -> None:
        """Run the tests on one interpreter (and measure the project's own code, if it has any)."""
        install_locked(session, project, project.lock("test"))
        junit = f"artifacts/junit-{session.python}.xml"
        outputs = ["--output", junit]
        pytest = ["pytest", f"--junitxml={junit}"]
        env = {}
        if project.is_package:
            coverage_file = f".coverage.{session.python}"
            outputs += ["--output", coverage_file, "--env", "COVERAGE_FILE"]
            pytest += ["--cov", "--cov-report=", "--cov-fail-under=0"]
            env["COVERAGE_FILE"] = coverage_file
        session.run(
            *("mlci", "cached", f"test-{session.python}", *outputs, "--"),
            *pytest,
            *session.posargs,
            env=env,
        )

    return _register(test, python=project.pythons, tags=["ci"], allow_parallel=True)


def coverage(project: Project) -> Function:
    """Combine the test sessions' coverage and fail under the threshold."""

    def coverage(session: nox.Session) -> None:
        """Combine every interpreter's coverage data, report it, and fail under the threshold."""
        if not project.is_package:
            session.skip("no code of the project's own to measure (no [build-system])")
        data = sorted(path.name for path in project.root.glob(".coverage.*"))
        install_locked(session, project, project.lock("test"))
        # The per-Python data files are the test sessions' outputs, so they are this one's
        # inputs: named as outputs of the record, a changed or missing one runs it again.
        outputs = [arg for name in data for arg in ("--output", name)]
        outputs += ["--output", "artifacts/coverage.json", "--output", "artifacts/coverage.xml"]
        session.run("mlci", "cached", "coverage", *outputs, "--", "mlci", "coverage", *data)

    # A project without code of its own skips it: no venv to build for that, on every make ci.
    return _register(coverage, python=project.default_python if project.is_package else False)


def release(project: Project) -> Function:
    """`mlci release`: register, stage, smoke-test and promote."""

    def release(session: nox.Session) -> None:
        """Validate, train, gate against production, register, stage, smoke-test, promote."""
        install_locked(session, project, *project.model_locks())
        session.run("mlci", "release", *session.posargs)

    return _register(release, python=project.default_python, default=False)


def retrain(project: Project) -> Function:
    """`mlci release --if-needed`: drift, new data, or no production yet."""

    def retrain(session: nox.Session) -> None:
        """Release only when there is drift, new training data, or no production model yet."""
        install_locked(session, project, *project.model_locks())
        session.run("mlci", "release", "--if-needed")

    return _register(retrain, python=project.default_python, default=False)


def rollback(project: Project) -> Function:
    """`mlci registry rollback production`."""

    def rollback(session: nox.Session) -> None:
        """Move production back to its previous version (`nox -s rollback -- --reason TEXT`)."""
        install_locked(session, project, *project.model_locks())
        session.run("mlci", "registry", "rollback", "production", *session.posargs)

    return _register(rollback, python=project.default_python, default=False)


def drift(project: Project) -> Function:
    """`mlci drift` on the incoming batches."""

    def drift(session: nox.Session) -> None:
        """Compare the incoming batches (or the files given) with production's training data."""
        install_locked(session, project, *project.model_locks())
        session.run("mlci", "drift", *session.posargs)

    return _register(drift, python=project.default_python, default=False)


def serve(project: Project) -> Function:
    """`mlci serve`: the production model behind MLflow's scoring protocol."""

    def serve(session: nox.Session) -> None:
        """Serve the production model on 127.0.0.1:8080 (`nox -s serve -- --port 9000`)."""
        install_locked(session, project, project.lock("serve"), *project.extra_locks())
        session.run("mlci", "serve", *session.posargs)

    return _register(serve, python=project.default_python, default=False)


def comment(project: Project) -> Function:
    """The pull request's one mlci comment."""

    def comment(session: nox.Session) -> None:
        """Post artifacts/report.md as the pull request's one mlci comment; print it locally."""
        install_locked(session, project, *project.model_locks())
        # The registry's versions and metric history join the report when this job can read it
        # (a pull request's job gets no cloud credentials: then it says so and goes on).
        session.run("mlci", "registry", "list", success_codes=[0, 2])
        session.run("mlci", "comment", *session.posargs)

    return _register(comment, python=project.default_python, default=False)


def outdated(project: Project) -> Function:
    """`mlci lock --outdated`, on the schedule."""

    def outdated(session: nox.Session) -> None:
        """Report the locked packages that have newer allowed versions (run on the schedule)."""
        install_locked(session, project, project.lock("tools"))
        session.run("mlci", "lock", "--outdated")

    return _register(outdated, python=project.default_python, default=False)


def lock(project: Project) -> Function:
    """`mlci lock`: the hash-pinned universal locks."""

    def lock(session: nox.Session) -> None:
        """Regenerate the hash-pinned universal locks (`nox -s lock -- --upgrade` to move pins)."""
        install_locked(session, project, project.lock("tools"))
        session.run("mlci", "lock", *session.posargs)

    return _register(lock, python=project.default_python, default=False)


def clean(project: Project) -> Function:
    """Remove what the sessions wrote (not the venvs)."""

    def clean(session: nox.Session) -> None:
        """Remove generated artifacts and coverage data (not the venvs: `rm -rf .nox .tools`)."""
        for path in [project.root / "artifacts", *project.root.glob(".coverage.*")]:
            if not path.exists():
                continue
            session.log(f"removing {path.relative_to(project.root)}")
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    return _register(clean, python=False, default=False)


def all_green(project: Project) -> Function:
    """The workflow's one required check."""

    def all_green(session: nox.Session) -> None:
        """The workflow's one required check: fail unless every job it needs succeeded."""
        needs = json.loads(os.environ.get("NEEDS", "{}"))
        failed = {job: need["result"] for job, need in needs.items() if need["result"] != "success"}
        if failed:
            session.error(f"not green: {failed}")
        session.log(f"all green: {', '.join(sorted(needs)) or 'no jobs'}")

    return _register(all_green, name="all-green", python=False, default=False)
