"""Time registry operations on a local folder and on moto's S3 server, and `mlci serve`'s reload.

Run by `nox -s bench` with the test session's Python (it has s3fs, moto and the serve extra), in
the clone: `python benchmarks/registry_ops.py --runs N --output FILE`. Each operation is an
`mlci` command in its own process, as a user or a CI step runs it. Writes {name: [seconds]}
as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlci.delivery import PRODUCTION, Registry
from mlci.pipeline import load_config, train
from mlci.serving import serve_settings


def timed_command(args: list[str], registry: str) -> float:
    """Seconds for one `mlci` command against ``registry``, as a user runs it."""
    start = time.perf_counter()
    subprocess.run(
        args, env={**os.environ, "MLCI_REGISTRY": registry}, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def second_project(clone: Path, work: Path) -> Path:
    """A copy of the project with another seed: other artifacts, a second version."""
    project = work / "second"
    project.mkdir()
    for name in ("pyproject.toml", "data", "requirements"):
        source = clone / name
        if source.is_dir():
            shutil.copytree(source, project / name)
        elif source.exists():
            shutil.copy(source, project / name)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(re.sub(r"(?m)^seed = (\d+)", lambda m: f"seed = {int(m[1]) + 1}", text))
    train(load_config(project))
    return project


def served_version(port: int) -> str | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        body = json.loads(response.read() or b"null")
        return str(body.get("model_version")) if response.status == 200 else None
    except (OSError, ValueError):
        return None
    finally:
        connection.close()


def wait_for(port: int, version: str, limit: float = 60) -> float:
    """Seconds until /health reports ``version``."""
    start = time.perf_counter()
    while served_version(port) != version:
        if time.perf_counter() - start > limit:
            raise SystemExit(f"registry bench: the server never served version {version}")
        time.sleep(0.005)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
    )
    import boto3

    boto3.client("s3").create_bucket(Bucket="bench")
    clone = Path.cwd()
    config = load_config(clone)
    train(config)
    results: dict[str, list[float]] = {"poll_seconds": [serve_settings(config).poll_seconds]}
    with tempfile.TemporaryDirectory(prefix="mlci-registry-bench-") as tmp:
        work = Path(tmp)
        second = load_config(second_project(clone, work))
        mlci = [sys.executable, "-m", "mlci", "-C"]
        for backend, base in (("local", str(work / "local")), ("s3", "s3://bench/registry")):
            for run in range(args.runs):  # `mlci registry register` into an empty registry
                location = f"{base}-{run}"
                results.setdefault(f"register|{backend}", []).append(
                    timed_command([*mlci, str(clone), "registry", "register"], location)
                )
            location = f"{base}-0"
            Registry.at(location).register(second)
            for run in range(args.runs):
                number = str(1 + run % 2)
                promote = ["registry", "promote", number, "--to", PRODUCTION]
                results.setdefault(f"promote|{backend}", []).append(
                    timed_command([*mlci, str(clone), *promote], location)
                )
            for _ in range(args.runs):
                results.setdefault(f"list|{backend}", []).append(
                    timed_command([*mlci, str(clone), "registry", "list"], location)
                )
        # Where an S3 command's time goes: the import, then each operation with the client open.
        for _ in range(args.runs):
            results.setdefault("import|s3fs", []).append(
                timed_command([sys.executable, "-c", "import s3fs"], "")
            )
        for backend, base in (("local", str(work / "local")), ("s3", "s3://bench/registry")):
            opened = Registry.at(f"{base}-0")
            opened.versions()  # the first request opens the connection
            for _ in range(args.runs):
                start = time.perf_counter()
                opened.versions()
                results.setdefault(f"open|list|{backend}", []).append(time.perf_counter() - start)
        # The server's reload: from a promote's return to /health naming the new version.
        location = "s3://bench/registry-0"
        registry = Registry.at(location)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            server_port = sock.getsockname()[1]
        command = [sys.executable, "-m", "mlci", "serve", "--port", str(server_port)]
        log = (work / "serve.log").open("w")
        server = subprocess.Popen(
            command, env={**os.environ, "MLCI_REGISTRY": location}, stdout=log, stderr=log
        )
        try:
            current = registry.get(PRODUCTION).number
            wait_for(server_port, str(current))
            for _ in range(args.runs):
                current = 3 - current
                registry.promote(current, PRODUCTION, "bench: reload latency")
                results.setdefault("reload|s3", []).append(wait_for(server_port, str(current)))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
    moto.stop()
    Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
