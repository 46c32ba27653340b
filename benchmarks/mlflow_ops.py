"""Time MLflow tracking and the MLflow registry backend against the embedded defaults.

Run by `nox -s bench` with the `mlflow` session's Python (a full MLflow: server and client), in
the clone: `python benchmarks/mlflow_ops.py --runs N --output FILE`. It starts `mlflow server`
on 127.0.0.1 (SQLite, a temp folder) and stops it. Each figure is an `mlci` command in its own
process, on a copy of the clone's project, as a user or a CI step runs it. Writes
{name: [seconds]} as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

UNTRACKED = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLCI_"))}


def timed(args: list[str], env: dict[str, str]) -> float:
    """Seconds for one command, which must succeed."""
    start = time.perf_counter()
    done = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.stderr.write(done.stdout.decode(errors="replace")[-3000:])
        raise SystemExit(f"mlflow bench: {' '.join(args)} failed ({done.returncode})")
    return time.perf_counter() - start


@contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """A real `mlflow server` with a SQLite store, only the web server; stopped after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        *("server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"),
        *("--artifacts-destination", str(folder / "artifacts")),
    ]
    env = {**UNTRACKED, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with (folder / "server.log").open("w") as log:
        server = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 180
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"mlflow bench: the server exited; see {log.name}")
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("mlflow bench: the server did not answer") from None
                    time.sleep(0.25)
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def project_copy(clone: Path, work: Path) -> Path:
    """The clone's project (config, data, locks, baseline) without its artifacts or registry."""
    project = work / "project"
    project.mkdir()
    for name in ("pyproject.toml", "data", "requirements", "metrics", "tests"):
        source = clone / name
        if source.is_dir():
            shutil.copytree(source, project / name)
        elif source.exists():
            shutil.copy(source, project / name)
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    mlci = [sys.executable, "-m", "mlci", "-C"]
    with tempfile.TemporaryDirectory(prefix="mlci-mlflow-bench-") as tmp:
        work = Path(tmp)
        project = project_copy(Path.cwd(), work)
        (work / "server").mkdir()
        with mlflow_server(work / "server") as url:
            tracked = {**UNTRACKED, "MLFLOW_TRACKING_URI": url}
            train = [*mlci, str(project), "train", "--force"]
            timed(train, tracked)  # the experiment exists before the first timed run
            for _ in range(args.runs):  # alternated, so that drift in the machine hits both
                results.setdefault("train|untracked", []).append(timed(train, UNTRACKED))
                results.setdefault("train|tracked", []).append(timed(train, tracked))
            release = [*mlci, str(project), "release"]
            for run in range(args.runs):  # each into a new, empty registry
                local = {**UNTRACKED, "MLCI_REGISTRY": str(work / f"registry-{run}")}
                results.setdefault("release|local", []).append(timed(release, local))
                on_mlflow = {**tracked, "MLCI_REGISTRY": f"mlflow:bench-{run}"}
                results.setdefault("release|mlflow", []).append(timed(release, on_mlflow))
    Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
