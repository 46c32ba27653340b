#!/usr/bin/env -S uv run --script
# /// script
# dependencies = ["nox==2026.10.20"]
# ///
"""The pipeline, defined once: `make ci`, GitHub Actions and developers all run these sessions.

Each session installs from a hash-pinned lock in `requirements/`, installs mlci without
dependencies, and runs one tool. No ML logic lives here: it is in `mlci`'s own commands.
`mlci cached` skips lint, parity and the tests when they already passed on exactly the same
work tree, Python and command (CI always starts clean; `MLCI_NO_CACHE=1` forces a run).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import nox

nox.needs_version = ">=2026.10.20"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True  # locally too: `make ci` never skips a Python
nox.options.reuse_venv = "yes"  # installs are exact syncs from the locks, so reuse is safe
# Sessions marked allow_parallel run side by side, one per CPU, each printed as one block when it
# ends (measured in benchmarks/RESULTS.md: the test matrix in about half the time on 2 cores).
# `coverage` is not marked, so it runs alone, after every session before it has finished.
nox.options.parallel = "auto"  # type: ignore[assignment]  # nox takes "auto"; its stub says int

# With PYTHONDONTWRITEBYTECODE set (as on these machines), every pytest run recompiles what it
# imports, about 1.5 s for scikit-learn. The session venvs are ours and git-ignored: let Python
# cache bytecode as it imports (cheaper than `uv pip sync --compile-bytecode`, which compiles
# every installed module when a venv is built). Measured in benchmarks/RESULTS.md.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)  # from the trove classifiers: the list exists once
# The Python of the single-interpreter sessions (lint, train, coverage); setup-python reads it too.
DEFAULT_PYTHON = (ROOT / ".python-version").read_text(encoding="utf-8").strip()
LOCKS = ROOT / "requirements"
MAIN_LOCK = LOCKS / "main.txt"  # runtime dependencies
TEST_LOCK = LOCKS / "test.txt"  # runtime + the `test` group
LINT_LOCK = LOCKS / "lint.txt"  # the `lint` group
TOOLS_LOCK = LOCKS / "tools.txt"  # nox and uv themselves, for the Makefile and the workflow
SERVE_LOCK = LOCKS / "serve.txt"  # runtime + the `serve` extra (FastAPI, uvicorn)
CI_LOCK = LOCKS / "ci.txt"  # runtime + the `ci` extra (ruamel.yaml) + nox, for parity
TYPECHECK_LOCK = LOCKS / "typecheck.txt"  # everything mypy reads, and mypy
MLFLOW_LOCK = LOCKS / "mlflow-server.txt"  # runtime, every extra, tests and a full MLflow server
# The model's own sessions also install the lock of the configured model format's extra, so that
# `model_format = "skops"` works in train, gate, release, drift and serve, not only in the tests.
MODEL_FORMAT = PYPROJECT["tool"]["mlci"].get("model_format", "joblib")
# ... the lock of the registry's backend when the registry is a URL (MLCI_REGISTRY wins, as in
# mlci): `registry = "s3://…"` installs s3fs, `gs://…` gcsfs, `mlflow:…` MLflow's client ...
REGISTRY = os.environ.get("MLCI_REGISTRY") or PYPROJECT["tool"]["mlci"].get("registry", "")
BACKEND_EXTRAS = {"s3": "remote", "s3a": "remote", "gs": "gcs", "gcs": "gcs"}
BACKEND = BACKEND_EXTRAS.get(REGISTRY.split("://")[0].lower()) if "://" in REGISTRY else None
# ... and MLflow's client when training runs are tracked (MLFLOW_TRACKING_URI wins, as in MLflow).
TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI") or PYPROJECT["tool"]["mlci"].get(
    "mlflow", {}
).get("tracking_uri", "")
MLFLOW = bool(TRACKING_URI) or REGISTRY.startswith("mlflow:")
EXTRA_LOCKS = (
    *([LOCKS / "skops.txt"] if MODEL_FORMAT == "skops" else []),
    *([LOCKS / f"{BACKEND}.txt"] if BACKEND else []),
    *([LOCKS / "mlflow.txt"] if MLFLOW else []),
)
# The sessions that write the report also draw its pictures (artifacts/report.html, matplotlib).
PLOTS_LOCK = LOCKS / "plots.txt"
MODEL_LOCKS = (MAIN_LOCK, *EXTRA_LOCKS, PLOTS_LOCK)


def install_locked(session: nox.Session, *locks: Path, project: bool = True) -> None:
    """Make the venv exactly the locks (hashes required), then add mlci without dependencies.

    A reused venv whose locks and pyproject.toml are unchanged since its last install is left
    as it is (about a third of a warm `make ci`); mlci is installed editable, so code changes
    need no reinstall. `rm -rf .nox` or `--reuse-venv=no` rebuilds from scratch.
    """
    stamp = Path(session.virtualenv.location) / ".mlci-installed"
    inputs = [*locks, ROOT / "pyproject.toml"] if project else list(locks)
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
        # --no-compile: as with uv, Python caches bytecode for what is imported, not all of it.
        session.install(
            "--require-hashes", "--no-compile", *(f"--requirement={lock}" for lock in locks)
        )
    if project:
        session.install("--no-deps", "--quiet", "-e", ".")
    # Through run_install, so that `nox --no-install` (which skips the installs) skips it too.
    session.run_install(
        "python",
        "-c",
        "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])",
        str(stamp),
        wanted,
        silent=True,
    )


@nox.session(python=DEFAULT_PYTHON, tags=["ci"], allow_parallel=True)
def lint(session: nox.Session) -> None:
    """Lint the code (ruff) and the workflows (zizmor offline, GitHub's workflow schema)."""
    install_locked(session, LINT_LOCK)
    session.run("mlci", "cached", "lint", "--", "mlci", "lint")


@nox.session(python=DEFAULT_PYTHON, tags=["ci"], allow_parallel=True)
def parity(session: nox.Session) -> None:
    """Check that CI runs what `make ci` runs: workflows, Makefile, sessions, Pythons, locks."""
    install_locked(session, CI_LOCK)
    session.run("mlci", "cached", "parity", "--", "mlci", "parity", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, tags=["ci"], allow_parallel=True)
def typecheck(session: nox.Session) -> None:
    """Type-check src/, tests/ and this noxfile with mypy --strict (settings in pyproject.toml)."""
    install_locked(session, TYPECHECK_LOCK)
    session.run("mlci", "cached", "typecheck", "--", "mypy", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, tags=["ci"], allow_parallel=True)
def train(session: nox.Session) -> None:
    """Validate the data, then train and evaluate the model (skipped when up to date)."""
    install_locked(session, *MODEL_LOCKS)
    session.run("mlci", "train", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, tags=["ci"], requires=["train"], allow_parallel=True)
def gate(session: nox.Session) -> None:
    """Pass or fail the trained model against the floors and this Python's baseline."""
    install_locked(session, *MODEL_LOCKS)
    session.run("mlci", "gate")
    session.run("mlci", "diff", "--md", silent=True)


@nox.session(python=DEFAULT_PYTHON, tags=["ci"], requires=["train"], allow_parallel=True)
def check(session: nox.Session) -> None:
    """The model's behavioural checks (data/<name>.checks.toml) against the trained model."""
    install_locked(session, *MODEL_LOCKS)
    # The trained model is a function of the tree (the stage key), so the checks' verdict is too.
    session.run(
        *("mlci", "cached", "check", "--output", "artifacts/checks.json", "--"),
        *("mlci", "check", *session.posargs),
    )


@nox.session(python=DEFAULT_PYTHON, default=False)
def tune(session: nox.Session) -> None:
    """Cross-validate [tool.mlci.tune] grid; fail if the configured params trail its best."""
    install_locked(session, *MODEL_LOCKS)
    session.run("mlci", "tune", *session.posargs)


@nox.session(python=PYTHONS, default=False)
def baseline(session: nox.Session) -> None:
    """Retrain on every Python of the matrix and record the results in metrics/baseline.json."""
    install_locked(session, *MODEL_LOCKS)
    session.run("mlci", "baseline", "update")


@nox.session(python=PYTHONS, tags=["ci"], allow_parallel=True)
def test(session: nox.Session) -> None:
    """Run the test suite on one interpreter, writing its own coverage data file."""
    install_locked(session, TEST_LOCK)
    coverage_file = f".coverage.{session.python}"
    junit = f"artifacts/junit-{session.python}.xml"
    session.run(
        *("mlci", "cached", f"test-{session.python}", "--output", coverage_file, "--output", junit),
        *("--env", "COVERAGE_FILE", "--"),
        *("pytest", "--cov", "--cov-report=", "--cov-fail-under=0", f"--junitxml={junit}"),
        *session.posargs,
        env={"COVERAGE_FILE": coverage_file},
    )


@nox.session(python=DEFAULT_PYTHON, tags=["ci"], allow_parallel=True)
def mlflow(session: nox.Session) -> None:
    """The MLflow tests, against a real `mlflow server` (SQLite, loopback) they start and stop."""
    install_locked(session, MLFLOW_LOCK)
    coverage_file = ".coverage.mlflow"  # combined by the coverage session with the others
    session.run(
        *("mlci", "cached", "mlflow", "--output", coverage_file, "--env", "COVERAGE_FILE", "--"),
        *("pytest", "-m", "mlflow", "--cov", "--cov-report=", "--cov-fail-under=0"),
        *session.posargs,
        env={"COVERAGE_FILE": coverage_file},
    )


@nox.session(python=DEFAULT_PYTHON)
def coverage(session: nox.Session) -> None:
    """Combine every interpreter's coverage data, report it, and fail under the threshold."""
    install_locked(session, TEST_LOCK)
    data = sorted(str(path.name) for path in ROOT.glob(".coverage.*"))
    # The per-Python data files are the test sessions' outputs, so they are this one's inputs:
    # named as outputs of the record, a changed or missing one runs it again.
    outputs = [arg for name in data for arg in ("--output", name)]
    outputs += ["--output", "artifacts/coverage.json", "--output", "artifacts/coverage.xml"]
    session.run("mlci", "cached", "coverage", *outputs, "--", "mlci", "coverage", *data)


@nox.session(python=DEFAULT_PYTHON, default=False)
def release(session: nox.Session) -> None:
    """Validate, train, gate against production, register, stage, smoke-test, promote."""
    install_locked(session, *MODEL_LOCKS)
    session.run("mlci", "release", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, default=False)
def retrain(session: nox.Session) -> None:
    """Release only when there is drift, new training data, or no production model yet."""
    install_locked(session, *MODEL_LOCKS)
    session.run("mlci", "release", "--if-needed")


@nox.session(python=DEFAULT_PYTHON, default=False)
def rollback(session: nox.Session) -> None:
    """Move production back to its previous version (`nox -s rollback -- --reason TEXT`)."""
    install_locked(session, *MODEL_LOCKS)
    session.run("mlci", "registry", "rollback", "production", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, default=False)
def drift(session: nox.Session) -> None:
    """Compare the incoming batches (or the CSVs given) with production's training data."""
    install_locked(session, *MODEL_LOCKS)
    session.run("mlci", "drift", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, default=False)
def serve(session: nox.Session) -> None:
    """Serve the production model on 127.0.0.1:8080 (`nox -s serve -- --port 9000`)."""
    install_locked(session, SERVE_LOCK, *EXTRA_LOCKS)
    session.run("mlci", "serve", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, default=False)
def comment(session: nox.Session) -> None:
    """Post artifacts/report.md as the pull request's one mlci comment (CI); print it locally."""
    install_locked(session, *MODEL_LOCKS)
    # The registry's versions and metric history join the report when this job can read the
    # registry (a pull request's job gets no cloud credentials: then it says so and goes on).
    session.run("mlci", "registry", "list", success_codes=[0, 2])
    session.run("mlci", "comment", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Time make ci, training, serving and validation; write (or `-- --check`) RESULTS.md."""
    install_locked(session, SERVE_LOCK)
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, default=False)
def outdated(session: nox.Session) -> None:
    """Report the locked packages that have newer allowed versions (the scheduled job runs it)."""
    install_locked(session, TOOLS_LOCK)
    session.run("mlci", "lock", "--outdated")


@nox.session(python=DEFAULT_PYTHON, default=False)
def lock(session: nox.Session) -> None:
    """Regenerate the hash-pinned universal locks (`nox -s lock -- --upgrade` to move pins)."""
    install_locked(session, TOOLS_LOCK)
    session.run("mlci", "lock", *session.posargs)


@nox.session(python=False, default=False)
def clean(session: nox.Session) -> None:
    """Remove generated artifacts and coverage data (not the venvs: `rm -rf .nox .tools`)."""
    for path in [ROOT / "artifacts", *ROOT.glob(".coverage.*")]:
        session.log(f"removing {path.relative_to(ROOT)}")
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


@nox.session(name="all-green", python=False, default=False)
def all_green(session: nox.Session) -> None:
    """The workflow's one required check: fail unless every job it needs succeeded."""
    needs = json.loads(os.environ.get("NEEDS", "{}"))
    failed = {job: need["result"] for job, need in needs.items() if need["result"] != "success"}
    if failed:
        session.error(f"not green: {failed}")
    session.log(f"all green: {', '.join(sorted(needs)) or 'no jobs'}")


if __name__ == "__main__":
    nox.main()
