"""The nox sessions as a user runs them, with an S3 registry and MLflow tracking.

The tests install from `test.txt`, one joint resolution of everything; the sessions install the
runtime's lock beside the registry's, tracking's and the pictures' locks, which once pinned one
package at two versions. So this drives the real `nox -s train release` of a copy of this
repository, with moto's S3 server and a real `mlflow server` (the `mlflow` session's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, new_bucket

pytestmark = pytest.mark.integration  # two clones, processes, real servers

NOX = REPO / ".tools" / "bin" / "nox"  # the pinned nox that `make` installs


def copy_of_repository(target: Path) -> Path:
    """The working tree's files that git tracks or would track: what a fresh clone has."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.mark.mlflow
@pytest.mark.skipif(sys.version_info < (3, 10), reason="MLflow's client needs Python 3.10")
def test_train_and_release_sessions_with_an_s3_registry_and_mlflow_tracking(
    tmp_path: Path, s3_endpoint: str, mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not NOX.exists():
        pytest.skip("the pinned nox is installed by the Makefile (make ci, make help)")
    clone = copy_of_repository(tmp_path / "clone")
    registry = new_bucket(s3_endpoint, monkeypatch)
    env = {
        **os.environ,
        "MLCI_REGISTRY": registry,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLCI_NO_CACHE": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [str(NOX), "--no-color", "-s", "train", "release"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "unsatisfiable" not in result.stderr
    assert "released version 1 to production (was none)" in result.stdout + result.stderr
    lineage = json.loads((clone / "artifacts" / "lineage.json").read_text())
    assert lineage["tracking"]["tracking_uri"] == mlflow_server
    from mlci.delivery import PRODUCTION, Registry

    production = Registry.at(registry).get(PRODUCTION)
    assert production.files[production.model_file] == lineage["outputs"]["model"]
