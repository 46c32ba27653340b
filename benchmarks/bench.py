"""`nox -s bench`: time the pipeline against the alternatives a user would pick, on this machine.

Every figure is measured here, in this run, on a fresh clone of the repository's HEAD in a temp
folder, and written with the commands that produced it to benchmarks/RESULTS.md. Figures:

1. `make ci` warm (venvs present, nothing changed), against the bare tools run directly;
2. `make ci` cold (no `.nox`), uv against nox's virtualenv backend with pip;
3. the seed article's flow: fresh venv, unpinned `pip install`, train, pytest;
4. `mlci train`: cache hit against full training;
5. serving: `mlci serve` against `mlflow models serve` on the same model;
6. data validation throughput and peak memory on a synthetic 1,000,000-row file.

`--check` measures the cheap figures (or `--only`'s) and compares their ratios with the
committed RESULTS.md instead of rewriting it: exit 1 when one regressed past `--tolerance`.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import check
import load

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MLFLOW = "mlflow==3.17.2"  # the MLflow the serving figure installs into its own venv
WARM_UP = 100  # requests sent to a server before it is measured
PIP_VARIANT = ".tools/bin/nox --force-venv-backend virtualenv"  # the same noxfile, with pip


@dataclasses.dataclass
class Figure:
    """One measured quantity: every run's value, and the command that produced it."""

    name: str
    command: str
    values: list[float]
    unit: str = "s"

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def cell(self, digits: int = 2) -> str:
        low, high = min(self.values), max(self.values)
        return (
            f"{self.median:.{digits}f} {self.unit} "
            f"({low:.{digits}f}-{high:.{digits}f}, {len(self.values)} runs)"
        )


@dataclasses.dataclass
class Bench:
    """The clone being measured and what has been measured so far."""

    work: Path
    clone: Path
    runs: int
    extra_runs: int
    figures: dict[str, Figure] = dataclasses.field(default_factory=dict)
    phases: dict[str, float] = dataclasses.field(default_factory=dict)
    notes: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def replayable(self, command: str) -> str:
        """The command as anyone can replay it: paths relative to the clone, no machine paths."""
        command = command.replace(f"{self.clone}/", "").replace(str(self.clone), ".")
        command = command.replace(f"{self.work}/", "$BENCH/")
        pythons = {
            sys.executable,
            shutil.which("python3"),
            shutil.which("python3", path=clean_env()["PATH"]),
        }
        for python in sorted(filter(None, pythons), key=len, reverse=True):
            command = command.replace(f"{python} ", "python3 ")
        return command

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)
        print(f"  note: {text}", flush=True)

    def add(self, key: str, figure: Figure) -> Figure:
        figure.command = self.replayable(figure.command)
        self.figures[key] = figure
        print(f"  {figure.name}: {figure.cell()}", flush=True)
        return figure


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without this nox session's venv, so children find their own tools."""
    env = dict(os.environ)
    venv = env.pop("VIRTUAL_ENV", None)
    if venv:
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(venv)
        )
    env.pop("NOX_CURRENT_SESSION", None)
    env.update(extra)
    return env


def run(command: list[str] | str, cwd: Path, env: dict[str, str] | None = None) -> float:
    """Run a command to completion, failing the benchmark if it fails; return its wall time."""
    start = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env or clean_env(),
        shell=isinstance(command, str),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:])
        raise SystemExit(f"bench: `{command}` failed with exit code {result.returncode}")
    return elapsed


def repeat(
    bench: Bench,
    key: str,
    name: str,
    command: str,
    cwd: Path,
    *,
    runs: int | None = None,
    before: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> Figure:
    """Time ``command`` ``runs`` times, calling ``before`` (untimed) ahead of each run."""
    values = []
    for _ in range(runs or bench.runs):
        if before:
            before()
        values.append(run(command, cwd, env))
    return bench.add(key, Figure(name, command, values))


def remove(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


# Figure 1 and 2 ----------------------------------------------------------------------------


def figure_make_ci(bench: Bench) -> None:
    """Figures 1 and 2: warm `make ci` against the bare tools; cold, uv against pip."""
    clone = bench.clone
    print("figure 1: make ci, warm", flush=True)
    run("make ci", clone)  # untimed: nothing changed since the setup run
    repeat(bench, "warm", "`make ci`, warm (nothing changed)", "make ci", clone)
    bare(bench)

    print("figure 2: make ci, cold", flush=True)
    repeat(
        bench,
        "cold",
        "`make ci`, cold (no `.nox`; package cache warm)",
        "make ci",
        clone,
        before=lambda: remove(clone / ".nox"),
    )
    repeat(
        bench,
        "cold_pip",
        "the same, nox's virtualenv backend with pip (`--force-venv-backend virtualenv`)",
        PIP_VARIANT,
        clone,
        before=lambda: remove(clone / ".nox"),
    )
    run("make ci", clone)  # leave uv venvs for the later figures


def figure_speedups(bench: Bench) -> None:
    """Before/after rows for the result cache and --parallel: every session runs (slow)."""
    clone = bench.clone
    print("speed-ups: before and after each one", flush=True)
    repeat(
        bench,
        "warm_installs",
        "`make ci`, warm, reinstalling every venv from its lock (as before the install stamp)",
        "make ci",
        clone,
        before=lambda: remove(*clone.glob(".nox/*/.mlci-installed")),
    )
    bytecode(bench)
    repeat(
        bench,
        "warm_nocache",
        "`make ci`, warm, every session run (`MLCI_NO_CACHE=1`)",
        "MLCI_NO_CACHE=1 make ci",
        clone,
        runs=bench.extra_runs,
    )
    repeat(
        bench,
        "warm_nocache_serial",
        "the same, one session at a time (`nox -j 1`)",
        "MLCI_NO_CACHE=1 .tools/bin/nox -j 1",
        clone,
        runs=bench.extra_runs,
    )
    run("make ci", clone)


def bare(bench: Bench) -> None:
    """The sum of ruff, mlci train (cache hit), pytest per Python and coverage combine."""
    clone = bench.clone
    pythons = sorted(
        (p.name.removeprefix("test-").replace("-", ".") for p in (clone / ".nox").glob("test-*")),
        key=lambda v: int(v.split(".")[1]),
    )
    steps = [
        (".nox/lint/bin/ruff check . && .nox/lint/bin/ruff format --check .", {}),
        (".nox/train/bin/mlci train", {}),
    ]
    # Its own output folder, so that the sessions' recorded outputs stay as they were.
    (clone / "artifacts" / "bare").mkdir(parents=True, exist_ok=True)
    for python in pythons:
        venv = f".nox/test-{python.replace('.', '-')}/bin"
        steps.append(
            (
                f"{venv}/pytest --cov --cov-report= --cov-fail-under=0 "
                f"--junitxml=artifacts/bare/junit-{python}.xml",
                {"COVERAGE_FILE": f"artifacts/bare/.coverage.{python}"},
            )
        )
    data = " ".join(f"artifacts/bare/.coverage.{python}" for python in pythons)
    steps.append(
        (
            f".nox/coverage/bin/coverage combine --keep --quiet {data}",
            {"COVERAGE_FILE": "artifacts/bare/.coverage"},
        )
    )
    values = []
    for _ in range(bench.runs):
        values.append(sum(run(command, clone, clean_env(**env)) for command, env in steps))
    bench.add(
        "bare",
        Figure(
            "bare tools, run directly (sum)",
            " ; ".join(
                f"{' '.join(f'{k}={v}' for k, v in env.items())} {c}".strip() for c, env in steps
            ),
            values,
        ),
    )


def bytecode(bench: Bench) -> None:
    """Importing scikit-learn with and without Python's bytecode cache in the venv."""
    clone = bench.clone
    venv = bench.work / "bytecode"
    run(f".tools/bin/uv venv --quiet --python 3.11 {venv}", clone)
    run(
        f".tools/bin/uv pip sync --quiet --python {venv}/bin/python --require-hashes "
        "requirements/main.txt",
        clone,
    )
    command = f"{venv}/bin/python -c 'import sklearn.ensemble, scipy.stats'"
    repeat(
        bench,
        "bytecode_off",
        "import scikit-learn with `PYTHONDONTWRITEBYTECODE=1` (recompiled each time)",
        command,
        clone,
        env=clean_env(PYTHONDONTWRITEBYTECODE="1"),
    )
    quiet = clean_env()
    quiet.pop("PYTHONDONTWRITEBYTECODE", None)
    run(command, clone, quiet)  # untimed: writes the bytecode cache
    repeat(
        bench,
        "bytecode_on",
        "the same with the bytecode cache (what the noxfile allows in its venvs)",
        command,
        clone,
        env=quiet,
    )


# Figure 3 -----------------------------------------------------------------------------------


def figure_seed(bench: Bench) -> None:
    """A fresh venv, unpinned pip install, train, pytest: the article's flow on one Python."""
    print("figure 3: the seed article's flow", flush=True)
    folder = bench.work / "seed"
    shutil.copytree(HERE / "seed", folder)
    shutil.copy(ROOT / "data" / "iris.csv", folder / "iris.csv")
    python = shutil.which("python3", path=clean_env()["PATH"]) or "python3"
    command = (
        f"{python} -m venv .venv && .venv/bin/python -m pip install --quiet -r requirements.txt "
        "&& .venv/bin/python train.py iris.csv && .venv/bin/python -m pytest -q -p no:cacheprovider"
    )
    run(command, folder)  # untimed: fills pip's cache, as the other figures' caches are warm
    repeat(
        bench,
        "seed",
        "seed flow: venv, `pip install -r` (unpinned), train, pytest",
        command,
        folder,
        before=lambda: remove(folder / ".venv", folder / "model.joblib"),
    )
    version = subprocess.run(
        [python, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    bench.note("seed", f"on {version} (`python3` on PATH), pip's cache warm")


# Test speed ---------------------------------------------------------------------------------


def figure_tests(bench: Bench) -> None:
    """One Python's test suite, and a fresh clone's `make ci` with every session run."""
    clone = bench.clone
    print("test speed: one Python's suite; make ci from a fresh clone", flush=True)
    python = (clone / ".python-version").read_text(encoding="utf-8").strip()
    venv = f".nox/test-{python.replace('.', '-')}/bin"
    repeat(
        bench,
        "suite",
        f"one Python's unit tier alone (pytest on {python}, no coverage)",
        f"{venv}/pytest -q -p no:cacheprovider",
        clone,
        env=clean_env(),
    )
    repeat(
        bench,
        "suite_cov",
        f"the same with coverage, as `nox -s test-{python}` runs it",
        f"{venv}/pytest -q -p no:cacheprovider --cov --cov-report= --cov-fail-under=0",
        clone,
        env=clean_env(COVERAGE_FILE=str(bench.work / ".coverage.bench")),
    )
    repeat(
        bench,
        "fresh",
        "`make ci` on a fresh clone: no `.nox`, no `artifacts/`, every session on four Pythons, "
        "the `project` session included",
        "make ci",
        clone,
        before=lambda: remove(clone / ".nox", clone / "artifacts", *clone.glob(".coverage*")),
        runs=bench.extra_runs,
    )
    run("make ci", clone)


# Install, don't fork -----------------------------------------------------------------------


def figure_project(bench: Bench) -> None:
    """A project made by `mlci init` (the Iris sample): a fresh clone's `make ci`, and warm."""
    print("project: mlci init, then the project's own make ci", flush=True)
    clone, work = bench.clone, bench.work
    run(".tools/bin/nox -s build", clone)
    wheels = work / "wheels"
    wheels.mkdir()
    for wheel in (clone / "dist").glob("mlci-*.whl"):
        shutil.copy(wheel, wheels / wheel.name)  # the wheel alone (no sdist beside it)
    env = clean_env(PIP_FIND_LINKS=str(wheels), UV_FIND_LINKS=str(wheels))
    env["PATH"] = os.pathsep.join([str(clone / ".tools" / "bin"), env["PATH"]])  # uv, to lock
    user = work / "user"
    uv = str(clone / ".tools" / "bin" / "uv")
    run([uv, "venv", "--quiet", str(user)], work, env)
    run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(user / "bin" / "python"),
            *map(str, wheels.iterdir()),
        ],
        work,
        env,
    )
    origin = work / "iris-project"
    seconds = run(
        [str(user / "bin" / "mlci"), "init", str(origin), "--find-links", str(wheels)], work, env
    )
    bench.note("project", f"`mlci init` with its lock resolution took {seconds:.1f} s (untimed)")
    for command in (
        "git init --quiet",
        "make baseline",
        "git add -A",
        "git -c user.name=bench -c user.email=bench@example.invalid commit -qm init",
    ):
        run(command, origin, env)
    fresh = work / "iris-fresh"

    def fresh_clone() -> None:
        remove(fresh)
        run(f"git clone --quiet {origin} {fresh}", work, env)

    fresh_clone()
    repeat(
        bench,
        "project_fresh",
        "a project made by `mlci init`: `make ci` on a fresh clone (tools, venvs, every "
        "session on four Pythons)",
        "make ci",
        fresh,
        env=env,
        before=fresh_clone,
        runs=bench.extra_runs,
    )
    repeat(
        bench,
        "project_warm",
        "the same project's `make ci` again, nothing changed",
        "make ci",
        fresh,
        env=env,
    )


# Figure 4 -----------------------------------------------------------------------------------


def figure_train(bench: Bench) -> None:
    print("figure 4: mlci train", flush=True)
    mlci = ".nox/train/bin/mlci"
    run(f"{mlci} train", bench.clone)
    repeat(bench, "train_hit", "`mlci train`, cache hit", f"{mlci} train", bench.clone)
    repeat(
        bench,
        "train_full",
        "`mlci train --force`, full training",
        f"{mlci} train --force",
        bench.clone,
    )


# Figure 7 -----------------------------------------------------------------------------------


def figure_registry(bench: Bench) -> None:
    """Registry operations on a folder and on moto's S3 server; `mlci serve`'s reload latency."""
    print("figure 7: registry backends", flush=True)
    output = bench.work / "registry.json"
    python = (bench.clone / ".python-version").read_text(encoding="utf-8").strip()
    command = (
        f".nox/test-{python.replace('.', '-')}/bin/python benchmarks/registry_ops.py "
        f"--runs {bench.runs} --output {output}"
    )
    run(command, bench.clone, clean_env())
    results = json.loads(output.read_text())
    names = {
        "register": "`mlci registry register` (6 files, one event)",
        "promote": "`mlci registry promote`",
        "list": "`mlci registry list`",
    }
    for operation, label in names.items():
        for backend in ("local", "s3"):
            where = "a local folder" if backend == "local" else "moto's S3 server"
            bench.add(
                f"registry|{operation}|{backend}",
                Figure(f"{label}, {where}", command, results[f"{operation}|{backend}"]),
            )
    bench.add(
        "registry|import|s3fs",
        Figure(
            "`python -c 'import s3fs'`, part of every S3 command", command, results["import|s3fs"]
        ),
    )
    for backend in ("local", "s3"):
        where = "a local folder" if backend == "local" else "moto's S3 server"
        bench.add(
            f"registry|open|{backend}",
            Figure(
                f"list in one process, client open, {where}",
                command,
                [1000 * v for v in results[f"open|list|{backend}"]],
                "ms",
            ),
        )
    poll = results["poll_seconds"][0]
    bench.add(
        "registry|reload|s3",
        Figure(
            f"`mlci serve` reload after a promote (poll every {poll:g} s)",
            command,
            results["reload|s3"],
        ),
    )
    bench.add("registry|poll", Figure("poll interval", command, [poll]))


# Figure 8 -----------------------------------------------------------------------------------


def figure_mlflow(bench: Bench) -> None:
    """Training with and without MLflow tracking; a release on the MLflow registry and a folder."""
    print("figure 8: MLflow tracking and registry", flush=True)
    output = bench.work / "mlflow.json"
    command = (
        f".nox/mlflow/bin/python benchmarks/mlflow_ops.py --runs {bench.runs} --output {output}"
    )
    run(command, bench.clone, clean_env())
    results = json.loads(output.read_text())
    names = {
        "train|untracked": "`mlci train --force`, no tracking",
        "train|tracked": "`mlci train --force`, tracked on an `mlflow server`",
        "release|local": "`mlci release` into a new registry folder",
        "release|mlflow": "`mlci release` into a new MLflow registered model (tracked)",
    }
    for key, label in names.items():
        bench.add(f"mlflow|{key}", Figure(label, command, results[key]))


# Figure 5 -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(command: list[str], cwd: Path, port: int, env: dict[str, str]) -> Iterator[None]:
    """Start a server, wait for /ping, stop it with SIGTERM."""
    log = (cwd / f"server-{port}.log").open("w")
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"bench: {command[0]} exited early; see {log.name}")
            try:
                ping = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                ping.request("GET", "/ping")
                status = ping.getresponse().status
                ping.close()
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {command[0]} did not answer /ping; see {log.name}")
            time.sleep(0.2)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def figure_serving(bench: Bench, skip_mlflow: bool) -> None:
    print("figure 5: serving", flush=True)
    clone = bench.clone
    registry = bench.work / "registry"
    env = clean_env(MLCI_REGISTRY=str(registry))
    run(".nox/train/bin/mlci release", clone, env)
    rows = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [6.9, 3.1, 5.4, 2.1]]
    random.seed(0)
    cases = {
        "1 row": (load.body(rows[:1], FEATURES), 600),
        "100 rows": (load.body([random.choice(rows) for _ in range(100)], FEATURES), 300),
    }
    concurrency = 8
    servers: dict[str, tuple[list[str], Path, dict[str, str]]] = {}
    port = free_port()
    servers["mlci serve"] = (
        [sys.executable, "-m", "mlci", "serve", "--port", str(port)],
        clone,
        dict(env, PATH=os.environ["PATH"]),
    )
    if not skip_mlflow:
        mlflow_bin = mlflow_venv(bench, registry)
        if mlflow_bin is not None:
            mport = free_port()
            servers["mlflow models serve"] = (
                [
                    str(mlflow_bin / "mlflow"),
                    *("models", "serve", "-m", str(bench.work / "mlflow-model")),
                    *("--env-manager", "local", "--host", "127.0.0.1", "--port", str(mport)),
                ],
                bench.work,
                clean_env(PATH=f"{mlflow_bin}{os.pathsep}{clean_env()['PATH']}"),
            )
    for name, (command, cwd, server_env) in servers.items():
        server_port = int(command[command.index("--port") + 1])
        with server(command, cwd, server_port, server_env):
            for case, (body, requests) in cases.items():
                load.run(server_port, body, WARM_UP, concurrency)
                results = [
                    load.run(server_port, body, requests, concurrency) for _ in range(bench.runs)
                ]
                shown = f"{requests} POSTs, {concurrency} keep-alive clients"
                for metric, unit in (("rps", "req/s"), ("p50_ms", "ms"), ("p99_ms", "ms")):
                    bench.add(
                        f"serve|{name}|{case}|{metric}",
                        Figure(
                            f"{name}, {case}: {metric}", shown, [r[metric] for r in results], unit
                        ),
                    )


def mlflow_venv(bench: Bench, registry: Path) -> Path | None:
    """MLflow in its own venv, with the scikit-learn of the served model; None if it fails."""
    from mlci.delivery import PRODUCTION, Registry  # installed in the bench session

    opened = Registry.at(registry)
    version = opened.get(PRODUCTION)
    lineage = opened.lineage(version)
    sklearn = lineage["packages"]["scikit-learn"]
    venv = bench.work / "mlflow-venv"
    python = shutil.which("python3.11", path=clean_env()["PATH"]) or sys.executable
    started = time.perf_counter()
    try:
        run(f"{python} -m venv {venv}", bench.work)
        run(
            f"{venv}/bin/python -m pip install --quiet '{MLFLOW}' 'scikit-learn=={sklearn}'",
            bench.work,
        )
        model = bench.work / version.model_file
        model.write_bytes(opened.read_file(version, version.model_file))
        run(
            f"{venv}/bin/python {HERE / 'mlflow_model.py'} {model} {bench.work / 'mlflow-model'}",
            bench.work,
        )
    except SystemExit as error:
        bench.note("serving", f"MLflow could not be installed or prepared ({error}): skipped")
        return None
    bench.note(
        "serving",
        f"{MLFLOW} with scikit-learn {sklearn} installed into its own venv in "
        f"{time.perf_counter() - started:.0f} s; the model is version {version.number}'s "
        "joblib file, saved with `mlflow.sklearn.save_model`",
    )
    return venv / "bin"


# Figure 6 -----------------------------------------------------------------------------------


def figure_validation(bench: Bench) -> None:
    print("figure 6: data validation", flush=True)
    sizes = (100_000, 1_000_000)  # ten times the rows: the same peak memory
    mlci = bench.clone / ".nox/train/bin/mlci"
    manifest = bench.clone / "data" / "iris.manifest.json"
    for rows in sizes:
        path = bench.work / f"iris-{rows}.csv"
        synthetic(path, rows)
        command = f"{mlci} data validate {path} --manifest {manifest} --schema-only"
        values, peaks = [], []
        for _ in range(bench.runs):
            seconds, peak = timed_rss(command, bench.clone)
            values.append(seconds)
            peaks.append(peak)
        label = f"{rows:,} rows"
        bench.add(f"validate|{rows}", Figure(f"validate {label}", command, values))
        bench.add(
            f"validate_rate|{rows}",
            Figure(
                f"validate {label}: throughput",
                command,
                [rows / v / 1000 for v in values],
                "k rows/s",
            ),
        )
        bench.add(
            f"validate_rss|{rows}", Figure(f"validate {label}: peak RSS", command, peaks, "MB")
        )
        bench.note("validation", f"{label}: {path.stat().st_size / 1e6:.0f} MB of CSV")


def synthetic(path: Path, rows: int) -> None:
    """Iris-schema rows drawn around the real classes' means."""
    means = {
        "setosa": (5.0, 3.4, 1.5, 0.2),
        "versicolor": (5.9, 2.8, 4.3, 1.3),
        "virginica": (6.6, 3.0, 5.6, 2.0),
    }
    rng = random.Random(7)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([*FEATURES, "species"])
        labels = list(means)
        for _ in range(rows):
            label = labels[rng.randrange(3)]
            writer.writerow([f"{max(0.1, rng.gauss(m, 0.3)):.1f}" for m in means[label]] + [label])


def timed_rss(command: str, cwd: Path) -> tuple[float, float]:
    """Wall time and peak resident memory (MB) of a command, from a fresh child's rusage."""
    code = (
        "import resource, subprocess, sys, time;"
        "start = time.perf_counter();"
        "subprocess.run(sys.argv[1], shell=True, check=True, capture_output=True);"
        "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, command],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[-2]), int(out[-1]) / 1024  # Linux reports kilobytes


# The report ---------------------------------------------------------------------------------


def versions(clone: Path) -> dict[str, str]:
    def out(command: str) -> str:
        result = subprocess.run(
            command,
            shell=True,
            cwd=clone,
            env=clean_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        return (
            (result.stdout or result.stderr).strip().splitlines()[0]
            if result.returncode == 0
            else "?"
        )

    return {
        "mlci commit": out("git rev-parse --short HEAD"),
        "nox": out(".tools/bin/nox --version"),
        "uv": out(".tools/bin/uv --version"),
        "pip": out("python3 -m pip --version").split(" from ")[0],
        "Pythons": out(
            "bash -c 'for p in 3.9 3.10 3.11 3.12; do python$p -V; done' | paste -sd, -"
        ),
        "scikit-learn (3.11)": out(
            ".nox/train/bin/python -c 'import sklearn; print(sklearn.__version__)'"
        ),
    }


def machine() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "OS": f"{platform.system()} {platform.release()}",
    }


def ratio(bench: Bench, top: str, bottom: str) -> float | None:
    if top in bench.figures and bottom in bench.figures:
        return bench.figures[top].median / bench.figures[bottom].median
    return None


def rendered(bench: Bench, started: float) -> str:
    from report import render

    return render(bench, machine(), versions(bench.clone), time.perf_counter() - started)


def write_report(text: str, output: Path) -> None:
    tmp = output.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, output)
    print(f"wrote {output}", flush=True)


def check_against(text: str, committed: str, tolerance: float) -> int:
    """Compare this run's ratios with the committed ones; print (and summarise in CI) the table."""
    found = check.compare(committed, text, tolerance)
    if not found:
        print("bench: none of this run's checked ratios is in RESULTS.md", file=sys.stderr)
        return 2
    section = check.render(found, tolerance)
    print(section, flush=True)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as out:
            out.write(section + "\n")
    return 0 if all(c.passed for c in found) else 1


def setup(clone: Path, wanted: list[str]) -> None:
    """The venvs the figures use: `make ci` when a figure times it, else only what they run."""
    if "ci" in wanted:
        return  # figure 1 runs `make ci` itself
    if not set(wanted) <= set(LIGHT):
        run("make ci", clone)
        return
    python = (clone / ".python-version").read_text(encoding="utf-8").strip()
    sessions = sorted({s.format(python=python) for name in wanted for s in LIGHT[name]})
    run(".tools/bin/nox -s train", clone)
    if sessions:
        run(f".tools/bin/nox --install-only -s {' '.join(sessions)}", clone)


# The figures that need no `make ci` first, and the session venvs they use beyond `train`'s.
LIGHT: dict[str, list[str]] = {
    "seed": [],
    "tests": ["test-{python}"],
    "project": [],
    "train": [],
    "validation": [],
    "registry": ["test-{python}"],
    "mlflow": ["mlflow"],
}
CHECKED = ["train", "registry"]  # what --check measures unless --only says otherwise

FIGURES = {
    "ci": figure_make_ci,
    "speedups": figure_speedups,
    "seed": figure_seed,
    "tests": figure_tests,
    "train": figure_train,
    "validation": figure_validation,
    "registry": figure_registry,
    "mlflow": figure_mlflow,
    "project": figure_project,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (default: 5)")
    parser.add_argument(
        "--extra-runs",
        type=int,
        default=3,
        help="runs of the slow before/after rows (default: 3)",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset of: {', '.join([*FIGURES, 'serving'])} "
        "(default: every figure; speedups, the slow before/after rows, only when named)",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="serve figure without MLflow")
    parser.add_argument(
        "--speedups", action="store_true", help="add the before/after rows of the speed-ups"
    )
    parser.add_argument("--output", help="where to write the results (default: RESULTS.md)")
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"compare ratios with the committed RESULTS.md, writing nothing unless --output is "
        f"given (default figures: {','.join(CHECKED)})",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.5,
        help="--check: how far a ratio may move the wrong way, relative (default: 0.5; "
        "these short figures move 20-40%% from run to run on one machine)",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    default = [name for name in FIGURES if name != "speedups"] + ["serving"]
    if args.check:
        default = CHECKED
    wanted = [name for name in args.only.split(",") if name] or default
    unknown = sorted(set(wanted) - {*FIGURES, "serving"})
    if unknown:
        parser.error(f"--only: unknown figure(s) {', '.join(unknown)}")
    if args.speedups and "speedups" not in wanted:
        wanted.insert(1, "speedups")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlci-bench-") as tmp:
        work = Path(tmp)
        clone = work / "clone"
        print(f"bench: cloning {ROOT} (HEAD) into {clone}", flush=True)
        run(f"git clone --quiet {ROOT} {clone}", work)
        run("make .tools/bin/nox", clone)
        bench = Bench(work, clone, args.runs, args.extra_runs)
        setup(clone, wanted)
        bench.phases["setup"] = time.perf_counter() - started
        for name in wanted:
            phase = time.perf_counter()
            if name == "serving":
                figure_serving(bench, args.no_mlflow)
            else:
                FIGURES[name](bench)
            bench.phases[name] = time.perf_counter() - phase
        text = rendered(bench, started)
    # Read before writing: `--check --output benchmarks/RESULTS.md` compares with the old figures.
    committed = (HERE / "RESULTS.md").read_text(encoding="utf-8") if args.check else ""
    if args.output or not args.check:
        write_report(text, Path(args.output or HERE / "RESULTS.md"))
    if args.check:
        raise SystemExit(check_against(text, committed, args.tolerance))


if __name__ == "__main__":
    main()
