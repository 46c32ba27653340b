"""Two clones of a project share one registry, as two CI runners would: in an S3 bucket, or in
an MLflow Model Registry.

The bucket is on moto's S3 server (127.0.0.1), with the credentials in the standard AWS
variables; the MLflow registry is on a real `mlflow server` (the `mlflow` session), with a
password in MLflow's own variable. Each clone names the registry in its own ``[tool.mlci]``.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import SECRET, free_port, make_project, new_bucket, write_pyproject

from mlci.cli import main
from mlci.delivery import PRODUCTION, Registry

pytestmark = pytest.mark.integration  # two clones, processes, real servers

pytest.importorskip("fastapi", reason="mlci serve needs the serve extra")


def served_version(port: int) -> str | None:
    """The version that answers a prediction, or None while the server is not up."""
    body = json.dumps({"inputs": [[5.1, 3.5, 1.4, 0.2]]}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.getheader("x-model-version") if response.status == 200 else None
    except OSError:
        return None
    finally:
        connection.close()


def wait_for_version(port: int, version: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while served_version(port) != version:
        assert time.monotonic() < deadline, f"the server never served version {version}"
        time.sleep(0.1)


@pytest.fixture(params=["s3", pytest.param("mlflow", marks=pytest.mark.mlflow)])
def shared_registry(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty registry both clones name: a bucket, or a registered model on MLflow."""
    if request.param == "s3":
        return new_bucket(request.getfixturevalue("s3_endpoint"), monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", request.getfixturevalue("mlflow_server"))
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ci")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)  # sent, and never shown
    return f"mlflow:two-clones-{uuid.uuid4().hex[:8]}"


def test_two_clones_release_gate_roll_back_and_serve_from_one_registry(
    tmp_path: Path, shared_registry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = shared_registry
    shared = f'registry = "{url}"\n'
    a = make_project(tmp_path / "a")
    b = make_project(tmp_path / "b")
    write_pyproject(a, trees=30, extra=shared)  # accuracy 0.9333 on its held-out rows
    serve = "[tool.mlci.serve]\npoll_seconds = 0.2\n"
    printed = []

    def run(project: Path, *args: str) -> int:
        code = main(["-C", str(project), *args])
        printed.append(capsys.readouterr().out)
        return code

    # A releases version 1: there is no production yet, so its gate uses the floors and baseline.
    assert run(a, "release") == 0
    assert "released version 1 to production (was none)" in printed[-1]
    # B's gate compares its candidates with version 1, read from the bucket: a worse one stops,
    write_pyproject(b, trees=6, extra=shared + serve)  # 0.9
    assert run(b, "release") == 1
    assert "against production (version 1) on the candidate's held-out rows" in printed[-1]
    assert "release stopped at 'gate': production stays at version 1" in printed[-1]
    # ... a better one is released.
    write_pyproject(b, trees=10, extra=shared + serve)  # 0.9667
    assert run(b, "release") == 0, printed[-1]
    assert "released version 2 to production (was version 1)" in printed[-1]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlci", "-C", str(b), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_version(port, "2")
        # A sees B's release and rolls production back; B's server follows the bucket.
        assert run(a, "registry", "list") == 0
        assert printed[-1].splitlines()[3].split()[:3] == ["2", "production,", "staging"]
        assert run(a, "registry", "rollback", "production", "--reason", "A saw a regression") == 0
        wait_for_version(port, "1")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            log, _ = server.communicate(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
    assert server.returncode == 0, log
    assert '"event": "model_loaded", "alias": "production", "version": 1' in log
    # Every command reads the same registry from either clone.
    assert run(b, "registry", "history", "production") == 0
    actions = [line.split()[2:6] for line in printed[-1].splitlines()[2:]]
    assert actions == [
        ["production", "promote", "-", "1"],
        ["production", "promote", "1", "2"],
        ["production", "rollback", "2", "1"],
    ]
    assert run(b, "registry", "show", "2") == 0
    where = "runs:/" if url.startswith("mlflow:") else f"{url}/versions/"
    assert f"location    {where}" in printed[-1]
    rows = tmp_path / "rows.csv"
    rows.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    assert run(b, "predict", str(rows), "--model", PRODUCTION) == 0
    assert printed[-1] == "setosa\n"
    batch = a / "data" / "incoming" / "batch.csv"
    batch.parent.mkdir()
    batch.write_text((a / "data" / "iris.csv").read_text())
    assert run(a, "drift") == 0
    report = json.loads((a / "artifacts" / "drift.json").read_text())
    assert "training data of production (version 1)" in json.dumps(report)
    assert Registry.at(url).get(PRODUCTION).number == 1
    # Retrain finds production in the bucket: same data, no drift, nothing to release.
    assert run(a, "release", "--if-needed") == 0
    assert "nothing to release: no drift and no new data since production" in printed[-1]
    assert "production: version 1" in printed[-1]
    # The dummy secret is in the environment of every command; it is shown nowhere.
    assert SECRET in (
        os.environ.get("AWS_SECRET_ACCESS_KEY"),
        os.environ.get("MLFLOW_TRACKING_PASSWORD"),
    )
    written = [p.read_text(errors="replace") for p in (a / "artifacts").rglob("*") if p.is_file()]
    written += [p.read_text(errors="replace") for p in (b / "artifacts").rglob("*") if p.is_file()]
    assert not [text for text in [*printed, log, *written] if SECRET in text]
