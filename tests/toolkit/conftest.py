"""Fixtures that build small mlci projects in temp dirs.

The toolkit's tests never read the repository's `[tool.mlci]`, data, baseline or artifacts: their
Iris comes from scikit-learn, so a fork that configures another data set cannot fail them.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Imported here, before the unit tier's guard: on Python 3.9 numpy's first import runs `lscpu`,
# which the guard refuses when that import happens inside a test.
import numpy.testing  # noqa: F401
import pytest

from mlci.delivery import Registry
from mlci.delivery._registry import StoreRegistry
from mlci.delivery._store import FsspecStore, LocalStore, Store
from mlci.pipeline import _stage as stage
from mlci.pipeline import infer_manifest
from mlci.pipeline._config import Config, load_config
from mlci.pipeline._train import TrainResult, train

# One thread per process the toolkit's tests start (OpenMP, BLAS): `make ci` runs two suites at
# a time on two cores. Set per test, not for the pytest process: tests/model runs in the same
# process and must not inherit the toolkit's settings. Training sets its own thread count
# ([tool.mlci] threads), so the model does not depend on this either way.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

REPO = Path(__file__).resolve().parents[2]  # for the CI tests (parity, locks) only
IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def readme_adapt_section() -> str:
    """The README's "Adapt it to your model" section, which two tests replay."""
    match = re.search(
        r"## Adapt it to your model\n(?P<body>.*?)\n## ",
        (REPO / "README.md").read_text(encoding="utf-8"),
        re.DOTALL,
    )
    assert match, "README has no 'Adapt it to your model' section"
    return match["body"]


def block(text: str, start: str, end: str) -> str:
    """The lines between a line containing ``start`` and the next one equal to ``end``."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if start in line) + 1
    last = next(i for i in range(first, len(lines)) if lines[i].strip() == end)
    indent = len(lines[first]) - len(lines[first].lstrip())
    return "\n".join(line[indent:] for line in lines[first:last]) + "\n"


@functools.cache
def iris_csv() -> str:
    """Iris as a CSV, from the copy scikit-learn ships."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    lines = [",".join((*IRIS_FEATURES, "species"))]
    for row, target in zip(iris.data, iris.target):
        lines.append(",".join(repr(float(v)) for v in row) + f",{iris.target_names[target]}")
    return "\n".join(lines) + "\n"


def dataset_csv(name: str, *, string_labels: bool) -> str:
    """A scikit-learn data set as CSV: `label` last, integer or string labels."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    features = [f.replace(" ", "_") for f in bunch.feature_names]
    lines = [",".join([*features, "label"])]
    for row, target in zip(bunch.data, bunch.target):
        label = str(bunch.target_names[target]) if string_labels else str(int(target))
        lines.append(",".join(repr(float(v)) for v in row) + f",{label}")
    return "\n".join(lines) + "\n"


def make_dataset_project(
    root: Path, name: str, estimator: str, *, string_labels: bool = False, extra: str = ""
) -> Path:
    """A project on another scikit-learn data set, with `estimator` as its TOML table body."""
    (root / "data").mkdir(parents=True)
    csv_path = root / "data" / f"{name}.csv"
    csv_path.write_text(dataset_csv(name, string_labels=string_labels), encoding="utf-8")
    infer_manifest(csv_path, "label", root / "data" / f"{name}.manifest.json").save()
    (root / "pyproject.toml").write_text(
        f'[tool.mlci]\ndata = "data/{name}.csv"\ntarget = "label"\n{extra}\n'
        f"[tool.mlci.estimator]\n{estimator}\n{NO_PICTURES}",
        encoding="utf-8",
    )
    return root


NO_PICTURES = "[tool.mlci.report]\npictures = false\n"  # see write_pyproject


RIDGE = """steps = [
  { class = "sklearn.preprocessing.StandardScaler" },
  { class = "sklearn.linear_model.Ridge", params = { alpha = 1.0 } },
]"""


def diabetes_project(root: Path, estimator: str = RIDGE, extra: str = "") -> Path:
    """The diabetes data (target `progression`), its drafted manifest, and ``estimator``."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    (root / "data").mkdir(parents=True)
    lines = [",".join([*data.feature_names, "progression"])]
    lines += [
        ",".join(map(repr, [*map(float, x), float(y)])) for x, y in zip(data.data, data.target)
    ]
    csv_path = root / "data" / "diabetes.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    infer_manifest(csv_path, "progression", root / "data" / "diabetes.manifest.json").save()
    (root / "pyproject.toml").write_text(
        f'[tool.mlci]\ndata = "data/diabetes.csv"\ntarget = "progression"\n{extra}\n'
        f"[tool.mlci.estimator]\n{estimator}\n{NO_PICTURES}",
        encoding="utf-8",
    )
    return root


SCALED_LOGISTIC = """steps = [
  { class = "sklearn.preprocessing.StandardScaler" },
  { class = "sklearn.linear_model.LogisticRegression", params = { max_iter = 1000 } },
]"""


def write_iris(folder: Path) -> None:
    """``folder/iris.csv`` and the manifest `mlci data init` drafts for it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "iris.csv").write_text(iris_csv(), encoding="utf-8")
    infer_manifest(folder / "iris.csv", "species", folder / "iris.manifest.json").save()


PYPROJECT = """\
[project]
name = "example"
version = "0"

[tool.mlci]
data = "data/iris.csv"
manifest = "data/iris.manifest.json"
target = "species"
test_size = 0.2
seed = 42
artifacts = "artifacts"
lock = "requirements/main.txt"
{extra}
[tool.mlci.estimator]
class = "sklearn.ensemble.RandomForestClassifier"
params = {{ n_estimators = {trees}, random_state = 42 }}

[tool.mlci.gate]
min_accuracy = 0.8
min_macro_f1 = 0.8
max_drop = 0.02

[tool.mlci.report]
pictures = {pictures}
"""


def write_pyproject(
    root: Path, *, trees: int = 10, extra: str = "", pictures: bool = False
) -> None:
    """Write a pyproject.toml with a [tool.mlci] table pointing at the project's Iris copy.

    Pictures are off unless a test is about them: drawing them was a third of the suite's time
    (tests/toolkit/reporting draws every one).
    """
    text = PYPROJECT.format(trees=trees, extra=extra, pictures=str(pictures).lower())
    (root / "pyproject.toml").write_text(text, encoding="utf-8")


def make_project(root: Path) -> Path:
    """Fill ``root`` with the Iris data, its manifest, a lock file and a config."""
    write_iris(root / "data")
    (root / "requirements").mkdir()
    (root / "requirements" / "main.txt").write_text("scikit-learn==0\n", encoding="utf-8")
    write_pyproject(root)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with the Iris data, its manifest, a lock file and a config."""
    return make_project(tmp_path)


@pytest.fixture
def config(project: Path) -> Config:
    """The loaded config of ``project``."""
    return load_config(project)


# Trained artifacts by stage key. The key covers every input (data, config, code, lock,
# Python) and no path, so a copy into another project with the same inputs is up to date there;
# tests that need a real fit call `train` themselves.
_TRAINED: dict[str, Path] = {}
_TEMPLATES = Path(tempfile.mkdtemp(prefix="mlci-trained-"))
atexit.register(shutil.rmtree, _TEMPLATES, True)


def train_once(config: Config) -> TrainResult:
    """Train, or copy the artifacts of an earlier run with the same stage key (a cache hit)."""
    key = stage.check(config).key
    template = _TRAINED.get(key)
    if template is not None:
        shutil.rmtree(config.artifacts, ignore_errors=True)
        shutil.copytree(template, config.artifacts)
    result = train(config)
    if key not in _TRAINED:
        _TRAINED[key] = _TEMPLATES / key
        shutil.copytree(config.artifacts, _TRAINED[key])
    return result


@pytest.fixture
def trained(config: Config) -> TrainResult:
    """``project`` after one training run."""
    return train_once(config)


# Settings of the developer's shell or the CI job that would change what a test sees, or let a
# test write into the job itself (a failing-gate test appending to the real step summary).
ISOLATED = (
    "MLCI_REGISTRY",
    "MLCI_NO_CACHE",
    "GITHUB_ACTIONS",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_OUTPUT",
    "GITHUB_ENV",
    "GITHUB_TOKEN",
    "MLFLOW_TRACKING_URI",
    # Object storage: tests talk to their own moto server with their own dummy credentials.
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "GOOGLE_APPLICATION_CREDENTIALS",
)


def isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the variables above for the rest of the test."""
    for name in ISOLATED:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without the variables above; a test that needs one sets its own."""
    isolate(monkeypatch)
    for name in THREAD_VARIABLES:
        monkeypatch.setenv(name, os.environ.get(name, "1"))


# The two tiers. A test that starts a process or a server belongs to the integration tier
# (`nox -s integration`, the oldest and newest Python); the unit tier runs on every Python and
# refuses both, so a test cannot slip into the wrong tier unnoticed.
INTEGRATION_FIXTURES = {"s3_endpoint", "mlflow_server"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """MLflow, generated-project and real-server tests are integration tests (before `-m`)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if (
            item.get_closest_marker("mlflow")
            or item.get_closest_marker("project")
            or fixtures & INTEGRATION_FIXTURES
        ):
            item.add_marker(pytest.mark.integration)


def _refuse(what: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(
            f"the unit tier runs in-process: this test {what}; mark it `integration`"
        )

    return refuse


@pytest.fixture(autouse=True)
def _unit_tier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the integration tier, starting a process or listening on a socket fails."""
    if request.node.get_closest_marker("integration"):
        return
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("starts a process"))
    monkeypatch.setattr(os, "fork", _refuse("forks"))
    monkeypatch.setattr(socket.socket, "bind", _refuse("listens on a socket"))


def free_port() -> int:
    """A loopback port nothing listens on (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OneRequestAtATime:
    """moto's app, answering one request at a time, as S3 orders conditional writes.

    moto's PUT checks ``If-None-Match: *`` and then stores the object, with no lock between the
    two (moto/s3/responses.py, ``put_object``): two concurrent creates of one key can both
    succeed, which S3 never allows and the registry's event log relies on. Serialised, moto
    keeps S3's guarantee; ``test_the_s3_server_lets_one_create_of_a_key_win`` checks it does.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 for the whole run: a real S3 API over HTTP, no network."""
    pytest.importorskip("s3fs", reason="the remote extra (s3fs) is not installed")
    werkzeug_app = pytest.importorskip(
        "moto.moto_server.werkzeug_app", reason="moto[server] is not installed"
    )
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    app = OneRequestAtATime(
        werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
    )
    # moto 5.2 has a request handler of its own; 5.1 (the last for Python 3.9) uses werkzeug's.
    handler = getattr(werkzeug_app, "MotoRequestHandler", None)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def new_bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty bucket on the moto server; the URL of a registry in it.

    The credentials are dummies, set the standard way (AWS_* variables), so that mlci and the
    processes a test starts find them as they would on a runner.
    """
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    name = f"mlci-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return f"s3://{name}/models/registry"


SECRET = "mlci-test-secret-0f3a9c"  # the dummy secret key: tests check that it is never shown


@pytest.fixture(
    params=[
        "local",
        pytest.param("s3", marks=pytest.mark.integration),
        pytest.param("mlflow", marks=pytest.mark.mlflow),
    ]
)
def registry_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A new registry on each backend, set as MLCI_REGISTRY for the test and its processes.

    The MLflow backend needs the real server (the `mlflow` session); elsewhere it skips.
    """
    if request.param == "local":
        location = str(tmp_path / "shared-registry")
    elif request.param == "s3":
        location = new_bucket(request.getfixturevalue("s3_endpoint"), monkeypatch)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", request.getfixturevalue("mlflow_server"))
        location = f"mlflow:registry-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MLCI_REGISTRY", location)
    return location


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 with a SQLite store, for the whole run; stopped after.

    Only the `mlflow` session installs the server (the full `mlflow` package); elsewhere the
    tests that need it skip.
    """
    pytest.importorskip("mlflow.server", reason="needs the full mlflow package: nox -s mlflow")
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        *("server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"),
        *("--artifacts-destination", str(folder / "artifacts")),
    ]
    # Only the web server: the job runner's extra processes are not needed here.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (folder / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "mlflow server did not answer /health"
                time.sleep(0.25)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)  # the server and the workers it started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def store_of(registry: Registry) -> Store:
    """The store under a folder or URL registry; tests of the store's own objects skip MLflow."""
    if not isinstance(registry, StoreRegistry):
        pytest.skip("looks at the objects of a folder or bucket registry")
    return registry.store


def damage(registry: Registry, key: str, change: Callable[[bytes], bytes | None]) -> bytes:
    """Replace (or, for None, delete) one object behind the registry's back; the old bytes.

    On MLflow ``key`` is a version's file (``runs:/<run>/mlci/<name>``), replaced through
    MLflow's own API as anyone with write access could.
    """
    if not isinstance(registry, StoreRegistry):
        return _damage_mlflow(key, change)
    store = store_of(registry)
    old = store.read(key)
    new = change(old)
    if isinstance(store, LocalStore):
        path = store.root / key
        if new is None:
            path.unlink()
        else:
            path.write_bytes(new)
    else:
        assert isinstance(store, FsspecStore)
        target = f"{store.root}/{key}"
        if new is None:
            store.fs.rm(target)
        else:
            store.fs.pipe_file(target, new)
    return old


def _damage_mlflow(key: str, change: Callable[[bytes], bytes | None]) -> bytes:
    import mlflow.artifacts
    from mlflow import MlflowClient

    if not key.startswith("runs:/"):
        pytest.skip("an object of a folder or bucket registry's event log")
    run_id, _, path = key.removeprefix("runs:/").partition("/")
    with tempfile.TemporaryDirectory() as folder:
        old = Path(mlflow.artifacts.download_artifacts(artifact_uri=key, dst_path=folder))
        before = old.read_bytes()
        new = change(before)
        if new is None:
            pytest.skip("MLflow's API deletes no single artifact")
        old.write_bytes(new)
        MlflowClient().log_artifact(run_id, str(old), path.rpartition("/")[0])
    return before


def retrain_with(root: Path, *, trees: int, extra: str = "") -> Config:
    """Rewrite the project's config with another forest size and train it: a new stage key."""
    write_pyproject(root, trees=trees, extra=extra)
    config = load_config(root)
    train_once(config)
    return config
