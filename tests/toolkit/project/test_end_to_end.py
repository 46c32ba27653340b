"""End to end, as a team adopts mlci: the wheel built from this tree, installed, `mlci init` into
a new git repository with the README's wine data, the project's own `make ci` green, then
`mlci update` over one edited and one unedited file.

mlci comes from the built wheel only (a folder holding nothing else, `--find-links`); every other
package from the package index, as for any project: the one test that leaves loopback, run by
the `project` session alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, block, readme_adapt_section

from mlci import __version__, project
from mlci.project._files import sha256

pytestmark = pytest.mark.project


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a command; on failure, show the end of what it printed."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output[-6000:]}"
    return output


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only mlci's wheel, built from this tree as `nox -s build` builds it.

    With MLCI_WHEELS (the publishing workflow), the wheel that job built and will publish.
    """
    folder = tmp_path_factory.mktemp("wheels")
    built = os.environ.get("MLCI_WHEELS")
    if built:
        wheel = next(Path(built).glob(f"mlci-{__version__}-*.whl"))
        shutil.copy(wheel, folder / wheel.name)
        return folder
    epoch = subprocess.run(
        ["git", "log", "-1", "--format=%ct"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    constraints = REPO / "requirements" / "build.txt"
    dist = tmp_path_factory.mktemp("dist")
    run(
        [
            *("uv", "build", "--wheel", "--out-dir", str(dist)),
            *("--build-constraints", str(constraints), "--require-hashes", str(REPO)),
        ],
        REPO,
        {**os.environ, "SOURCE_DATE_EPOCH": epoch},
    )
    # Only the wheel: uv has dropped the hashes of local files when a wheel and an sdist sat
    # side by side, and uv build leaves a .gitignore in its output folder.
    wheel = dist / f"mlci-{__version__}-py3-none-any.whl"
    shutil.copy(wheel, folder / wheel.name)
    return folder


@pytest.fixture(scope="module")
def user(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A user's environment: mlci installed from the wheel in a venv of its own, on PATH."""
    tmp_path = tmp_path_factory.mktemp("user")
    env = {
        **os.environ,
        # mlci from the built wheel, before it is on the index: pip (the tools) and uv (nox).
        "PIP_FIND_LINKS": str(wheels),
        "UV_FIND_LINKS": str(wheels),
        "GIT_AUTHOR_NAME": "mlci",
        "GIT_AUTHOR_EMAIL": "mlci@example.invalid",
        "GIT_COMMITTER_NAME": "mlci",
        "GIT_COMMITTER_EMAIL": "mlci@example.invalid",
    }
    for name in ("VIRTUAL_ENV", "NOX_CURRENT_SESSION", "COVERAGE_FILE", "COVERAGE_PROCESS_START"):
        env.pop(name, None)
    # The user's install of mlci: the wheel, in a venv of its own.
    user = tmp_path / "user"
    run(["uv", "venv", "--quiet", "--python", sys.executable, str(user)], tmp_path, env)
    wheel = next(wheels.iterdir())
    run(
        ["uv", "pip", "install", "--quiet", "--python", str(user / "bin" / "python"), str(wheel)],
        tmp_path,
        env,
    )
    env["PATH"] = os.pathsep.join([str(user / "bin"), env["PATH"]])
    env["MLCI_TEST_USER_PYTHON"] = str(user / "bin" / "python")
    return env


def test_a_project_made_by_mlci_init_passes_its_own_make_ci(
    wheels: Path, user: dict[str, str], tmp_path: Path
) -> None:
    env = user
    python = env["MLCI_TEST_USER_PYTHON"]
    # The README's adapt steps, as written: a new repository, the data, init, the config.
    wine = tmp_path / "wine"
    wine.mkdir()
    run(["git", "init", "--quiet"], wine, env)
    text = readme_adapt_section()
    snippet = block(text, "<<'PY'", "PY")
    subprocess.run([python, "-"], input=snippet, text=True, cwd=wine, check=True, env=env)
    command = re.search(r"^\s*mlci (init --data \S+ --target \S+)$", text, re.MULTILINE)
    assert command, "no `mlci init --data … --target …` line in the section"
    output = run(["mlci", *command[1].split(), "--find-links", str(wheels)], wine, env)
    assert "the locks resolved" in output
    for lock in (wine / "requirements").glob("*.txt"):
        pins = lock.read_text()
        assert re.search(rf"^mlci=={re.escape(__version__)} \\\n\s+--hash=sha256:", pins, re.M), (
            f"{lock.name} pins no hash for mlci"
        )
        assert str(wheels) not in pins  # names, versions, markers and hashes only
        assert "://" not in pins
    toml = block(text, "```toml", "```")
    pyproject = wine / "pyproject.toml"
    old = pyproject.read_text()
    start, end = old.index("[tool.mlci.estimator]"), old.index("[tool.mlci.drift]")
    pyproject.write_text(old[:start] + toml + "\n" + old[end:])

    green(wine, env)
    assert "StandardScaler" in (wine / "artifacts" / "metrics.json").read_text()

    # The next mlci: noxfile.py as an older mlci left it (unedited), the Makefile edited by the
    # team. The update replaces the first, keeps the second with its sidecar, and exits 1.
    noxfile, makefile = wine / "noxfile.py", wine / "Makefile"
    older = "# mlci 0.1.0\n" + noxfile.read_text()
    noxfile.write_text(older)
    manifest = json.loads((wine / project.MANIFEST).read_text())
    manifest.update(mlci="0.1.0")
    manifest["files"]["noxfile.py"] = sha256(older.encode())
    (wine / project.MANIFEST).write_text(json.dumps(manifest))
    edited = makefile.read_text() + "\nserve-local: ## ours\n\t.tools/bin/nox -s serve\n"
    makefile.write_text(edited)
    update = subprocess.run(
        [str(wine / ".tools" / "bin" / "mlci"), "update"],
        cwd=wine,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert update.returncode == 1, update.stdout + update.stderr
    assert "replaced noxfile.py" in update.stdout
    assert "Makefile: edited since mlci 0.1.0" in update.stderr
    assert noxfile.read_text() == project.owned()["noxfile.py"]
    assert makefile.read_text() == edited
    assert (wine / "Makefile.mlci-new").read_text() == project.owned()["Makefile"]


def green(folder: Path, env: dict[str, str]) -> str:
    """The model on every Python, committed; then the project's own `make ci`, to green."""
    run(["make", "baseline"], folder, env)
    run(["git", "add", "-A"], folder, env)
    run(["git", "commit", "--quiet", "-m", "mlci init"], folder, env)
    output = run(["make", "ci"], folder, env)
    ran = re.findall(r"^nox > \* (\S+): (\w+)", output, re.MULTILINE)
    sessions = dict(ran)
    assert {"lint", "parity", "train", "gate", "check"} <= set(sessions), output[-3000:]
    assert {f"test-{python}" for python in ("3.9", "3.10", "3.11", "3.12")} <= set(sessions)
    assert all(result in ("success", "skipped") for result in sessions.values()), sessions
    assert "tests/toolkit" not in output  # no test of mlci's runs in a project
    return output


def test_a_real_table_passes_its_projects_make_ci(
    wheels: Path, user: dict[str, str], tmp_path: Path
) -> None:
    """The README's "Real tables" steps: categories, missing values, an identifier, the
    configured preparation; the project's own `make ci` green with no code or test edit."""
    from tables import passengers
    from test_readme_tables import real_tables_section

    folder = tmp_path / "passengers"
    (folder / "data").mkdir(parents=True)
    made = passengers(folder / "data")
    run(["git", "init", "--quiet"], folder, user)
    text = real_tables_section()
    command = re.search(r"^\s*mlci (init --data \S+ --target \S+)$", text, re.MULTILINE)
    assert command, "no `mlci init --data … --target …` line in the section"
    assert command[1].split()[2::2] == [f"data/{made.path.name}", made.target]
    output = run(["mlci", *command[1].split(), "--find-links", str(wheels)], folder, user)
    assert "passenger_id: not a feature" in output
    pyproject = folder / "pyproject.toml"
    old = pyproject.read_text()
    start, end = old.index("[tool.mlci.estimator]"), old.index("[tool.mlci.gate]")
    toml = block(text, "```toml", "```")
    pyproject.write_text(old[:start] + toml + "\n" + old[end:])
    green(folder, user)
    metrics = json.loads((folder / "artifacts" / "metrics.json").read_text())
    assert set(metrics["feature_importance"]) == {"sex", "embarked", "pclass", "age", "fare"}


def test_a_regression_passes_its_projects_make_ci(
    wheels: Path, user: dict[str, str], tmp_path: Path
) -> None:
    """The README's "Regression" steps on the diabetes data with gradient boosting: a model
    that predicts a number, its project's own `make ci` green with no code or test edit."""
    from test_readme_regression import estimator_blocks, regression_section

    folder = tmp_path / "diabetes"
    (folder / "data").mkdir(parents=True)
    run(["git", "init", "--quiet"], folder, user)
    text = regression_section()
    snippet = block(text, "python - <<'PY'", "PY")
    python = user["MLCI_TEST_USER_PYTHON"]
    subprocess.run([python, "-"], input=snippet, text=True, cwd=folder, check=True, env=user)
    command = re.search(r"^\s*mlci (init --data \S+ --target \S+)$", text, re.MULTILINE)
    assert command, "no `mlci init --data … --target …` line in the section"
    output = run(["mlci", *command[1].split(), "--find-links", str(wheels)], folder, user)
    assert "a quantity to predict (regression)" in output
    pyproject = folder / "pyproject.toml"
    old = pyproject.read_text()
    start, end = old.index("[tool.mlci.estimator]"), old.index("[tool.mlci.gate]")
    pyproject.write_text(old[:start] + estimator_blocks()[0] + "\n" + old[end:])
    green(folder, user)
    metrics = json.loads((folder / "artifacts" / "metrics.json").read_text())
    assert metrics["task"] == "regression"
    gate = json.loads((folder / "artifacts" / "gate.json").read_text())
    assert any(check.get("versus") == "StandardScaler → Ridge" for check in gate["checks"])
