# nox's own requirement (nox checks it on start); mlci and the rest come from requirements/.
# /// script
# dependencies = ["nox==2026.10.20"]
# ///
"""The pipeline, defined once: `make ci`, GitHub Actions and developers all run these sessions.

Each session comes from mlci (pinned in requirements/tools.txt), installs from a hash-pinned lock
in `requirements/` and runs one `mlci` command or tool. To replace a session, delete its line
and define a `@nox.session` of that name; to add one, define it below. `mlci update` keeps this
file up to date while you have not edited it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

# This repository is mlci itself: its noxfile takes the session factories from src/, where a
# project's comes from the mlci its tools lock pins. Everything else below is what `mlci init`
# writes, then this repository's own sessions (tests/toolkit/project checks that it stays so).
ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT / "src"))
from mlci import nox as mlci

nox.needs_version = ">=2026.10.20"
project = mlci.configure(__file__)

# `make ci` (plain `nox`) runs the sessions tagged ci: lint, parity, train, gate, check, test on
# every Python, and coverage of the project's own code when it has any.
mlci.lint(project)
mlci.parity(project)
mlci.train(project)
mlci.gate(project)
mlci.check(project)
mlci.test(project)

# This repository's own sessions in `make ci`, added the way a project adds its own; before
# coverage, which combines their data.
TEST_LOCK = project.lock("test")  # the runtime, every extra and the tests


def tools_path(session: nox.Session) -> str:
    """PATH with the session's venv first, then this nox's own (uv, to build the wheel)."""
    return os.pathsep.join([session.bin, str(Path(sys.executable).parent), os.environ["PATH"]])


@nox.session(python=project.default_python, tags=["ci"], allow_parallel=True)
def typecheck(session: nox.Session) -> None:
    """Type-check src/, tests/ and this noxfile with mypy --strict (settings in pyproject.toml)."""
    mlci.install_locked(session, project, project.lock("typecheck"))
    session.run("mlci", "cached", "typecheck", "--", "mypy", *session.posargs)


# The integration tier: the real components (moto's S3 server, `mlci serve` processes, killed
# writers, clones, Chromium) on the oldest and the newest Python; the unit tier (`test`, every
# Python) leaves them out through pyproject.toml's `-m "not integration"`.
@nox.session(python=[project.pythons[0], project.pythons[-1]], tags=["ci"], allow_parallel=True)
def integration(session: nox.Session) -> None:
    """The tests that start servers, processes and browsers: `pytest -m integration`."""
    mlci.install_locked(session, project, TEST_LOCK)
    coverage_file = f".coverage.integration-{session.python}"
    session.run(
        *("mlci", "cached", f"integration-{session.python}", "--output", coverage_file),
        *("--env", "COVERAGE_FILE", "--"),
        *("pytest", "-m", "integration and not mlflow and not project"),
        *("--cov", "--cov-report=", "--cov-fail-under=0", *session.posargs),
        env={"COVERAGE_FILE": coverage_file, "PATH": tools_path(session)},
    )


@nox.session(python=project.default_python, tags=["ci"], allow_parallel=True)
def mlflow(session: nox.Session) -> None:
    """The MLflow tests, against a real `mlflow server` (SQLite, loopback) they start and stop."""
    mlci.install_locked(session, project, project.lock("mlflow-server"))
    coverage_file = ".coverage.mlflow"  # combined by the coverage session with the others
    session.run(
        *("mlci", "cached", "mlflow", "--output", coverage_file, "--env", "COVERAGE_FILE", "--"),
        *("pytest", "-m", "mlflow", "--cov", "--cov-report=", "--cov-fail-under=0"),
        *session.posargs,
        env={"COVERAGE_FILE": coverage_file},
    )


@nox.session(name="project", python=project.default_python, tags=["ci"], allow_parallel=True)
def generated_project(session: nox.Session) -> None:
    """End to end: build the wheel, `mlci init` the README's wine project, run its make ci."""
    mlci.install_locked(session, project, TEST_LOCK)
    session.run(
        *("mlci", "cached", "project", "--env", "MLCI_WHEELS", "--"),
        *("pytest", "-m", "project", "--no-cov", *session.posargs),
        env={"PATH": tools_path(session)},
    )


mlci.coverage(project)
# On demand, and in the delivery workflow.
mlci.tune(project)
mlci.baseline(project)
mlci.release(project)
mlci.retrain(project)
mlci.rollback(project)
mlci.drift(project)
mlci.serve(project)
mlci.comment(project)
mlci.outdated(project)
mlci.lock(project)
mlci.clean(project)
mlci.all_green(project)


# This repository's own sessions on demand.
@nox.session(python=project.default_python, default=False)
def build(session: nox.Session) -> None:
    """Build the wheel and sdist into dist/: the same bytes from the same commit (a test checks)."""
    mlci.install_locked(session, project, project.lock("tools"))
    epoch = session.run("git", "log", "-1", "--format=%ct", silent=True, external=True)
    shutil.rmtree(ROOT / "dist", ignore_errors=True)
    session.run(
        *("uv", "build", "--out-dir", str(ROOT / "dist")),
        *("--build-constraints", str(project.lock("build")), "--require-hashes", str(ROOT)),
        env={"SOURCE_DATE_EPOCH": str(epoch).strip()},
    )


@nox.session(python=project.default_python, default=False)
def bench(session: nox.Session) -> None:
    """Time make ci, training, serving and validation; write (or `-- --check`) RESULTS.md."""
    mlci.install_locked(session, project, project.lock("serve"))
    session.run("python", "benchmarks/bench.py", *session.posargs)


if __name__ == "__main__":
    nox.main()
