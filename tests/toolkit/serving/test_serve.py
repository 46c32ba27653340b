from __future__ import annotations

import concurrent.futures
import dataclasses
import http.client
import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import uvicorn
from conftest import damage, free_port, make_project, retrain_with, store_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlci.delivery._registry import PRODUCTION, Registry
from mlci.errors import MlciError
from mlci.pipeline import Column, infer_manifest, load_config
from mlci.serving import ServeConfig
from mlci.serving._server import Loaded, ModelSlot, create_app, is_loopback, serve

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
COLUMNS = tuple(Column(name, "numeric") for name in FEATURES)
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [6.7, 3.0, 5.2, 2.3]]
SETTINGS = ServeConfig(max_rows=50, max_body_bytes=4096, poll_seconds=0.02)


class Server:
    """The app under uvicorn on a loopback port, in a thread of the test process."""

    def __init__(self, app: Any) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = "application/json",
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, json.loads(data or b"null"), dict(response.getheaders())

    def text(self, path: str) -> tuple[int, str, str]:
        """A GET whose body is text: status, body, content type."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode()
        connection.close()
        return response.status, body, response.getheader("content-type") or ""

    def post(
        self, body: Any, content_type: str = "application/json"
    ) -> tuple[int, Any, dict[str, str]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.request("POST", "/invocations", data, content_type)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wait_for(condition: Any, what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@dataclasses.dataclass
class Served:
    server: Server
    registry: Registry
    slot: ModelSlot
    models: dict[int, Any]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Versions 1 and 2 registered, 1 in production, served on loopback."""
    root = make_project(tmp_path_factory.mktemp("serve"))
    registry = Registry.of(load_config(root))
    for trees in (10, 3):
        registry.register(retrain_with(root, trees=trees))
    registry.promote(1, PRODUCTION)
    slot = ModelSlot(registry, PRODUCTION)
    server = Server(create_app(slot, SETTINGS))
    models = {n: registry.load_model(registry.get(n)) for n in (1, 2)}
    yield Served(server, registry, slot, models)
    server.stop()


def expected(served: Served, rows: list[list[float]], version: int = 1) -> list[str]:
    return [str(label) for label in served.models[version].predict(rows)]


FORMATS: dict[str, dict[str, Any]] = {
    "dataframe_split": {"dataframe_split": {"columns": FEATURES, "data": ROWS}},
    "dataframe_records": {"dataframe_records": [dict(zip(FEATURES, r)) for r in ROWS]},
    "instances": {"instances": ROWS},
    "instances of objects": {"instances": [dict(zip(FEATURES, r)) for r in ROWS]},
    "inputs": {"inputs": ROWS},
    "inputs as columns": {"inputs": {f: [r[i] for r in ROWS] for i, f in enumerate(FEATURES)}},
}


@pytest.mark.parametrize("proba", [False, True])
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_json_format(served: Served, name: str, proba: bool) -> None:
    body: dict[str, Any] = dict(FORMATS[name])
    if proba:
        body["params"] = {"proba": True}
    status, reply, headers = served.server.post(body)
    assert status == 200, reply
    assert reply["predictions"] == expected(served, ROWS)
    assert headers["x-model-version"] == "1"
    if proba:
        model = served.models[1]
        classes = [str(c) for c in model.classes_]
        assert reply["probabilities"] == [
            dict(zip(classes, map(float, p))) for p in model.predict_proba(ROWS)
        ]
    else:
        assert set(reply) == {"predictions"}


def test_csv_with_a_header(served: Served) -> None:
    text = ",".join(reversed(FEATURES)) + "\n"
    text += "".join(",".join(str(v) for v in reversed(r)) + "\n" for r in ROWS)
    status, reply, _ = served.server.post(text.encode(), "text/csv")
    assert (status, reply) == (200, {"predictions": expected(served, ROWS)})


BAD_REQUESTS = [
    ({"instances": [[1, 2, 3]]}, "application/json", 400, "expected 4 features"),
    ({"dataframe_split": {"columns": FEATURES[:3], "data": [[1, 2, 3]]}}, None, 400, "missing"),
    ({"dataframe_records": [{"sepal_length": "x"}]}, None, 400, "missing column"),
    ({"instances": [["a", 1, 2, 3]]}, None, 400, "is not a number"),
    (b'{"instances": [[NaN, 1, 2, 3]]}', None, 400, "null is not allowed"),
    (b'{"instances": [[Infinity, 1, 2, 3]]}', None, 400, "Infinity is not a valid value"),
    ({"instances": [[None, 1, 2, 3]]}, None, 400, "null is not allowed"),
    # the served version's manifest: each value within its column's range
    (
        {"instances": [[1e300, 1, 2, 3]]},
        None,
        400,
        "instances[0][0]: 1e+300 is outside the allowed",
    ),
    ({"instances": []}, None, 400, "the batch is empty"),
    ({"instances": [[1, 2, 3, 4]] * 51}, None, 400, "51 rows is more than the limit of 50"),
    (b"{" + b" " * 5000 + b"}", None, 413, "over the limit of 4096"),
    ({"instances": [[1, 2, 3, 4]]}, "text/plain", 415, "unsupported Content-Type"),
    ({"instances": [[1, 2, 3, 4]]}, "application/json; charset=latin-1", 415, "charset"),
    (b'{"instances": [[1, 2, 3, 4]]', None, 400, "malformed JSON"),
    ({"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}, None, 400, "exactly one of"),
    (b"sepal_length\n1\n", "text/csv", 400, "missing column"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "message"), BAD_REQUESTS)
def test_bad_requests_get_a_4xx_json_error_and_serving_goes_on(
    served: Served, body: Any, content_type: str | None, status: int, message: str
) -> None:
    got, reply, _ = served.server.post(body, content_type or "application/json")
    assert got == status
    assert message in reply["message"]
    assert reply["error_code"] in {"BAD_REQUEST", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"}
    assert served.server.post(FORMATS["instances"])[0] == 200


def test_missing_content_type_unknown_paths_and_methods(served: Served) -> None:
    status, reply, _ = served.server.request("POST", "/invocations", b"{}", None)
    assert (status, reply["error_code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert served.server.request("GET", "/nope")[0] == 404
    status, reply, _ = served.server.request("GET", "/invocations")
    assert (status, reply["error_code"]) == (405, "METHOD_NOT_ALLOWED")


def test_ping_health_and_version(served: Served) -> None:
    for path in ("/ping", "/health"):
        status, reply, _ = served.server.request("GET", path)
        assert status == 200
        assert (reply["status"], reply["model_version"]) == ("ok", 1)
    status, reply, _ = served.server.request("GET", "/version")
    version = served.registry.get(1)
    assert version.trained_at  # recorded when it was registered
    assert 0 <= reply["model_age_days"] < 1  # trained by this test's fixture, minutes ago
    assert reply == {
        "mlci_version": reply["mlci_version"],
        "alias": PRODUCTION,
        "model_version": 1,
        "model_sha256": version.files["model.joblib"],
        "data_sha256": version.data_sha256,
        "model_trained_at": version.trained_at,
        "model_age_days": reply["model_age_days"],
        "features": FEATURES,
    }
    _, health, _ = served.server.request("GET", "/health")
    assert health["model_trained_at"] == version.trained_at
    assert health["model_age_days"] >= reply["model_age_days"]
    from mlci import __version__

    assert reply["mlci_version"] == __version__


def test_access_log_lines_are_json(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mlci.access"):
        served.server.post(FORMATS["instances"])
        served.server.post({"instances": []})
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "mlci.access"]
    assert [(line["path"], line["status"]) for line in lines[-2:]] == [
        ("/invocations", 200),
        ("/invocations", 400),
    ]
    assert lines[-2]["model_version"] == "1"
    assert lines[-1]["ms"] >= 0


def test_promotion_and_rollback_while_requests_flow(served: Served) -> None:
    seen: list[tuple[int, str, list[str]]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            status, reply, headers = served.server.post(FORMATS["instances"])
            seen.append((status, headers.get("x-model-version", ""), reply.get("predictions")))

    clients = [threading.Thread(target=client) for _ in range(3)]
    for thread in clients:
        thread.start()
    try:
        wait_for(lambda: len(seen) > 20, "requests before the promotion")
        served.registry.promote(2, PRODUCTION, "test")
        wait_for(lambda: any(s[1] == "2" for s in seen[-5:]), "version 2 to be served")
        served.registry.rollback(PRODUCTION, "test")
        wait_for(lambda: all(s[1] == "1" for s in seen[-6:]), "version 1 to be served again")
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    assert {status for status, _, _ in seen} == {200}
    assert {version for _, version, _ in seen} == {"1", "2"}
    for _, version, predictions in seen:  # every answer is its version's own
        assert predictions == expected(served, ROWS, int(version))


def test_a_tampered_version_is_not_loaded(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    served.registry.promote(1, PRODUCTION, "reset")
    wait_for(lambda: served.slot.version_number() == 1, "version 1")
    version = served.registry.get(2)
    key = f"{version.folder}/{version.model_file}"
    original = store_of(served.registry).read(key)
    try:
        damage(served.registry, key, lambda data: data[:-7])
        with caplog.at_level(logging.ERROR, logger="mlci.serve"):
            served.registry.promote(2, PRODUCTION, "tampered")
            wait_for(lambda: served.slot.error is not None, "the reload failure")
        status, reply, _ = served.server.request("GET", "/health")
        assert (status, reply["model_version"]) == (200, 1)
        assert "version 2 failed verification" in reply["reload_error"]
        assert served.server.post(FORMATS["instances"])[2]["x-model-version"] == "1"
        assert any("reload_failed" in r.getMessage() for r in caplog.records)
        damage(served.registry, key, lambda data: original)  # repaired: the next poll loads it
        wait_for(lambda: served.slot.version_number() == 2, "the repaired version")
        assert served.slot.error is None
    finally:
        damage(served.registry, key, lambda data: original)
        served.registry.promote(1, PRODUCTION, "reset")
        wait_for(lambda: served.slot.version_number() == 1, "version 1")


def test_a_reload_that_raises_any_error_keeps_polling(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model this scikit-learn cannot unpickle raises ValueError, not MlciError: keep polling."""
    real = served.registry.load_model

    def incompatible(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("node array from the pickle has an incompatible dtype")

    monkeypatch.setattr(served.registry, "load_model", incompatible)
    try:
        served.registry.promote(2, PRODUCTION, "incompatible")
        wait_for(lambda: served.slot.error is not None, "the reload failure")
        status, reply, _ = served.server.request("GET", "/health")
        assert (status, reply["model_version"]) == (200, 1)
        assert "ValueError: node array" in reply["reload_error"]
        monkeypatch.setattr(served.registry, "load_model", real)
        wait_for(lambda: served.slot.version_number() == 2, "the next poll to load version 2")
        assert served.slot.error is None
    finally:
        monkeypatch.setattr(served.registry, "load_model", real)
        served.registry.promote(1, PRODUCTION, "reset")
        wait_for(lambda: served.slot.version_number() == 1, "version 1")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from([*FEATURES, "columns", "data", "proba", "x"]), children, max_size=5
        )
    ),
    max_leaves=20,
)
BODIES = st.fixed_dictionaries(
    {},
    optional={
        "dataframe_split": JSON_VALUES,
        "dataframe_records": JSON_VALUES,
        "instances": JSON_VALUES,
        "inputs": JSON_VALUES,
        "params": JSON_VALUES,
    },
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=BODIES.map(lambda b: json.dumps(b).encode()) | st.binary(max_size=200),
    content_type=st.sampled_from(
        ["application/json", "text/csv", "text/plain", "application/json; charset=ascii"]
    ),
)
def test_fuzzed_requests_never_get_a_5xx(served: Served, body: bytes, content_type: str) -> None:
    status, reply, _ = served.server.post(body, content_type)
    assert status < 500, reply
    if status != 200:
        assert reply["message"]


@pytest.mark.integration
def test_no_model_yet_is_503_until_one_is_promoted(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    registry = Registry.of(load_config(root))
    slot = ModelSlot(registry, "candidate")
    server = Server(create_app(slot, SETTINGS))
    try:
        assert server.request("GET", "/ping")[0] == 503
        status, reply, _ = server.post(FORMATS["instances"])
        assert (status, reply["error_code"]) == (503, "MODEL_NOT_LOADED")
        assert "no version holds the alias 'candidate'" in reply["message"]
        registry.register(retrain_with(root, trees=3))
        registry.promote(1, "candidate")
        wait_for(lambda: server.request("GET", "/ping")[0] == 200, "the first model")
        assert server.post(FORMATS["instances"])[0] == 200
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("a.b", False)],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_configured_public_host_needs_an_explicit_flag(project: Path) -> None:
    text = (project / "pyproject.toml").read_text()
    text = text.replace(
        "[tool.mlci.estimator]", '[tool.mlci.serve]\nhost = "0.0.0.0"\n\n[tool.mlci.estimator]'
    )
    (project / "pyproject.toml").write_text(text)
    with pytest.raises(MlciError, match="not a loopback address: pass --host explicitly"):
        serve(load_config(project))


@pytest.mark.integration
def test_mlci_serve_shuts_down_gracefully_on_sigterm(project: Path) -> None:
    registry = Registry.of(load_config(project))
    registry.register(retrain_with(project, trees=3))
    registry.promote(1, PRODUCTION)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlci", "-C", str(project), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def up() -> bool:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                connection.request("GET", "/ping")
                response = connection.getresponse()
                response.read()
                return response.status == 200
            except OSError:
                return False
            finally:
                connection.close()

        wait_for(up, "mlci serve to start", seconds=30)
        os.kill(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    # A clean shutdown on SIGTERM is a success: exit 0 (uvicorn alone re-raises the signal).
    assert process.returncode == 0, output
    assert output.index('"event": "shutdown"') < output.index("Finished server process")
    assert '"event": "listening", "host": "127.0.0.1"' in output


README = Path(__file__).resolve().parents[3] / "README.md"
CURL = re.compile(
    r"```sh\n(?P<curl>curl -s http://127\.0\.0\.1:8080(?P<path>/\S+).*?)\n```\n```json\n"
    r"(?P<reply>.*?)\n```",
    re.DOTALL,
)


def readme_examples() -> list[tuple[str, str, bytes, dict[str, Any]]]:
    """(path, content type, body, documented reply) of every curl example in the README."""
    examples = []
    for match in CURL.finditer(README.read_text(encoding="utf-8")):
        command = match["curl"].replace("\\\n", " ")
        header = re.search(r"-H 'Content-Type: ([^']+)'", command)
        data = re.search(r"(?:-d|--data-binary) (\$?)'(.*?)'", command, re.DOTALL)
        assert header is not None, command
        assert data is not None, command
        content_type = header[1]
        body = data[2].encode()
        if data[1]:  # $'...': bash decodes the backslash escapes
            body = body.decode("unicode_escape").encode()
        examples.append((match["path"], content_type, body, json.loads(match["reply"])))
    return examples


@pytest.mark.integration
def test_the_readme_curl_examples_return_the_documented_replies(tmp_path: Path) -> None:
    examples = readme_examples()
    assert len(examples) >= 3
    root = make_project(tmp_path)
    registry = Registry.of(load_config(root))
    registry.register(retrain_with(root, trees=100))  # the repository's default forest
    registry.promote(1, PRODUCTION)
    server = Server(create_app(ModelSlot(registry, PRODUCTION), SETTINGS))
    try:
        for path, content_type, body, reply in examples:
            assert server.request("POST", path, body, content_type)[:2] == (200, reply)
    finally:
        server.stop()


class CountingModel:
    """A stand-in predictor: the label of a row is its sum; 999 anywhere is refused."""

    classes_ = ("a", "b")

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, rows: Any) -> list[str]:
        self.calls.append(len(rows))
        if (rows == 999).any():
            raise ValueError("999 is out of range")
        return [str(float(row.sum())) for row in rows]

    def predict_proba(self, rows: Any) -> list[list[float]]:
        return [[0.25, 0.75] for _ in rows]


def test_concurrent_requests_are_scored_together_and_answered_apart() -> None:
    import asyncio

    from mlci.serving._scoring import BadRequest
    from mlci.serving._server import Batcher

    async def scenario(model: CountingModel, bad: bool) -> list[Any]:
        batcher = Batcher(max_rows=1000)
        task = batcher.start()
        requests = [([[float(i), 1.0]], {"proba": i % 2 == 0}) for i in range(20)]
        if bad:
            requests.append(([[999.0, 1.0]], {}))
        results = await asyncio.gather(
            *(batcher.predict(model, rows, params) for rows, params in requests),
            return_exceptions=True,
        )
        task.cancel()
        return results

    def check(results: list[Any]) -> None:
        for i, reply in enumerate(results[:20]):
            assert reply["predictions"] == [str(float(i) + 1.0)]
            assert ("probabilities" in reply) == (i % 2 == 0)

    model = CountingModel()
    check(asyncio.run(scenario(model, bad=False)))
    assert len(model.calls) < 20  # fewer predict calls than requests
    assert sum(model.calls) == 20

    model = CountingModel()  # one bad request: its batch is rescored request by request
    results = asyncio.run(scenario(model, bad=True))
    check(results)
    assert isinstance(results[20], BadRequest)
    assert "999 is out of range" in str(results[20])
    assert max(model.calls) > 1


@pytest.mark.integration
def test_a_promoted_version_with_other_columns_is_served_with_its_own(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Model and schema swap together: the request format follows the version being served."""
    root = make_project(tmp_path_factory.mktemp("schema"))
    registry = Registry.of(load_config(root))
    registry.register(retrain_with(root, trees=5))  # version 1: the four Iris columns
    data = root / "data" / "iris.csv"
    three = [",".join(line.split(",")[1:]) for line in data.read_text().splitlines()]
    data.write_text("\n".join(three) + "\n")  # no sepal_length: version 2 takes three columns
    infer_manifest(data, "species", root / "data" / "iris.manifest.json").save()
    registry.register(retrain_with(root, trees=5))
    registry.promote(1, PRODUCTION)
    slot = ModelSlot(registry, PRODUCTION)
    server = Server(create_app(slot, SETTINGS))
    try:
        four = {"instances": [dict(zip(FEATURES, ROWS[0]))]}
        smaller = {"instances": [dict(zip(FEATURES[1:], ROWS[0][1:]))]}
        status, reply, headers = server.post(four)
        assert (status, headers["x-model-version"]) == (200, "1")
        assert server.post(smaller)[0] == 400
        registry.promote(2, PRODUCTION, "three columns")
        wait_for(lambda: slot.version_number() == 2, "version 2")
        status, reply, headers = server.post(smaller)
        assert (status, headers["x-model-version"]) == (200, "2")
        assert reply["predictions"] == [
            registry.load_model(registry.get(2)).predict([ROWS[0][1:]])[0]
        ]
        status, reply, _ = server.post(four)
        assert status == 400
        assert "sepal_length" in reply["message"]
        assert server.request("GET", "/version")[1]["features"] == FEATURES[1:]
    finally:
        server.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics parsed by prometheus_client's own parser: (name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.integration
def test_metrics_count_requests_rows_and_classes_and_report_the_model(served: Served) -> None:
    """ML Test Score, monitoring: serving metrics in the format operators scrape."""
    slot = ModelSlot(served.registry, PRODUCTION)
    server = Server(create_app(slot, SETTINGS))
    try:
        production = served.registry.get(PRODUCTION).number
        wait_for(lambda: slot.version_number() == production, "the first load")
        assert server.post({"instances": ROWS})[0] == 200
        assert server.post({"instances": ROWS[:1], "params": {"proba": True}})[0] == 200
        assert server.post({"instances": []})[0] == 400
        status, text, content_type = server.text("/metrics")
    finally:
        server.stop()
    assert status == 200
    assert content_type.startswith("text/plain; version=")
    found = samples(text)
    assert found[("mlci_requests_total", (("path", "/invocations"), ("status", "200")))] == 2
    assert found[("mlci_requests_total", (("path", "/invocations"), ("status", "400")))] == 1
    assert found[("mlci_request_duration_seconds_count", (("path", "/invocations"),))] == 3
    assert found[("mlci_rows_scored_total", ())] == 4
    classes = {
        labels[0][1]: n for (name, labels), n in found.items() if name == "mlci_predictions_total"
    }
    expected = served.models[production].predict(ROWS + ROWS[:1])
    assert classes == {str(c): float(list(expected).count(c)) for c in set(expected)}
    assert found[("mlci_model_version", ())] == production
    assert 0 <= found[("mlci_model_age_seconds", ())] < 86400
    assert found[("mlci_reload_failures_total", ())] == 0
    assert found[("mlci_nonfinite_probabilities_total", ())] == 0


class NaNProbabilities:
    """A served model whose labels are right and whose probabilities are NaN."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.classes_ = model.classes_

    def predict(self, rows: Any) -> Any:
        return self.model.predict(rows)

    def predict_proba(self, rows: Any) -> Any:
        import numpy as np

        return np.full((len(rows), len(self.classes_)), np.nan)


@pytest.mark.integration
def test_nan_probabilities_are_a_500_counted_in_metrics_not_a_crash(served: Served) -> None:
    class Fixed(ModelSlot):
        def refresh(self) -> None:  # the model set below stays
            pass

    slot = Fixed(served.registry, PRODUCTION)
    version = served.registry.get(1)
    slot.current = Loaded(version, NaNProbabilities(served.models[1]), "now", COLUMNS)
    server = Server(create_app(slot, SETTINGS))
    try:
        status, reply, _ = server.post({"instances": ROWS, "params": {"proba": True}})
        assert status == 500
        assert "NaN or infinite probabilities for 3 row(s)" in reply["message"]
        assert server.post({"instances": ROWS})[0] == 200  # labels alone are still served
        found = samples(server.text("/metrics")[1])
    finally:
        server.stop()
    assert found[("mlci_nonfinite_probabilities_total", ())] == 3
    assert found[("mlci_requests_total", (("path", "/invocations"), ("status", "500")))] == 1


def test_failed_reloads_are_counted(served: Served, tmp_path: Path) -> None:
    root = make_project(tmp_path / "empty")
    slot = ModelSlot(Registry.of(load_config(root)), PRODUCTION)  # nothing in production
    for _ in range(3):
        slot.refresh()
    from mlci.serving._metrics import Metrics

    found = samples(Metrics(slot).render()[0].decode())
    assert found[("mlci_reload_failures_total", ())] == 3
    assert math.isnan(found[("mlci_model_version", ())])


@pytest.mark.integration
def test_the_server_logs_the_rows_it_scored_when_asked(served: Served, tmp_path: Path) -> None:
    log = tmp_path / "served.csv"
    settings = dataclasses.replace(SETTINGS, sample_log=str(log), sample_log_bytes=100_000)
    slot = ModelSlot(served.registry, PRODUCTION)
    server = Server(create_app(slot, settings))
    try:
        wait_for(lambda: slot.current is not None, "the first load")
        assert server.post({"instances": ROWS})[0] == 200
        assert server.post({"instances": []})[0] == 400  # nothing scored, nothing logged
    finally:
        server.stop()
    lines = log.read_text().splitlines()
    assert lines[0] == ",".join(FEATURES)
    assert [[float(v) for v in line.split(",")] for line in lines[1:]] == ROWS


class _Fixed(ModelSlot):
    def refresh(self) -> None:  # the model a test sets stays
        pass


@pytest.mark.integration
def test_proba_for_a_model_without_probabilities_is_a_400_for_that_client_alone(
    served: Served,
) -> None:
    from sklearn.svm import LinearSVC

    svc = LinearSVC(random_state=0).fit(ROWS * 2, ["a", "b", "c"] * 2)
    slot = _Fixed(served.registry, PRODUCTION)
    slot.current = Loaded(served.registry.get(1), svc, "now", COLUMNS)
    server = Server(create_app(slot, SETTINGS))
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            asked = [
                pool.submit(server.post, {"instances": ROWS, "params": {"proba": i % 2 == 0}})
                for i in range(16)
            ]
            answers = [future.result() for future in asked]
    finally:
        server.stop()
    for i, (status, reply, _) in enumerate(answers):
        if i % 2 == 0:
            assert status == 400
            assert "LinearSVC) has no class probabilities" in reply["message"]
        else:
            assert (status, reply["predictions"]) == (200, list(svc.predict(ROWS)))


@pytest.mark.integration
@pytest.mark.parametrize("held", ["parse", "_score_group"])
def test_ping_answers_while_a_body_is_parsed_or_scored(
    served: Served, monkeypatch: pytest.MonkeyPatch, held: str
) -> None:
    """A body held in parsing or scoring must not hold /ping: that work runs off the loop.

    No clock: the step is stopped at a gate until /ping has answered. Had it run on the event
    loop, /ping could not answer and its 10 s client timeout fails the test.
    """
    from mlci.serving import _server

    entered, release = threading.Event(), threading.Event()
    step = getattr(_server, held)

    def gated(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(30), "the test never released the step"
        return step(*args, **kwargs)

    monkeypatch.setattr(_server, held, gated)
    server = Server(create_app(served.slot, ServeConfig(poll_seconds=0.05)))
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            scored = pool.submit(server.post, {"instances": ROWS})
            assert entered.wait(10), f"the request never reached {held}"
            try:
                assert server.request("GET", "/ping")[0] == 200
                assert server.text("/health")[0] == 200
                assert not scored.done()  # it is still held: /ping did not wait for it
            finally:
                release.set()
            status, reply, _ = scored.result()
    finally:
        server.stop()
    assert status == 200
    assert len(reply["predictions"]) == len(ROWS)


@pytest.mark.integration
def test_a_hostile_body_is_refused_in_a_short_message(served: Served) -> None:
    names = [f"column_{i}" for i in range(80_000)]  # the reported body: 80,000 distinct names
    hostile = json.dumps({"dataframe_split": {"columns": names, "data": []}})  # ~1 MB
    server = Server(create_app(served.slot, ServeConfig(poll_seconds=0.05)))
    try:
        status, reply, _ = server.post(hostile.encode())
    finally:
        server.stop()
    assert status == 400
    assert "80000 columns, more than the model's 4 features" in reply["message"]
    assert len(reply["message"]) < 500


def test_a_version_that_fails_to_load_is_tried_again_later_not_on_every_poll(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = {"now": 1000.0}
    loads: list[int] = []

    def failing(version: Any, *args: Any, **kwargs: Any) -> Any:
        loads.append(version.number)
        raise MlciError(f"version {version.number} failed verification")

    registry = Registry.at(served.registry.location)  # its own: the module's server polls too
    slot = _Fixed(registry, PRODUCTION, retry_seconds=1.0, clock=lambda: clock["now"])
    monkeypatch.setattr(registry, "load_model", failing)
    served.registry.promote(2, PRODUCTION, "backoff test")
    try:
        for _ in range(10):  # ten polls at the same moment: one download
            ModelSlot.refresh(slot)
        assert loads == [2]
        assert "version 2 failed verification" in (slot.error or "")
        waits = []
        for _ in range(4):  # then 1 s, 2 s, 4 s, 8 s between tries
            before = len(loads)
            while len(loads) == before:
                clock["now"] += 0.5
                ModelSlot.refresh(slot)
            waits.append(clock["now"])
        gaps = [later - earlier for earlier, later in zip([1000.0, *waits], waits)]
        assert gaps == [1.0, 2.0, 4.0, 8.0]
    finally:
        served.registry.promote(1, PRODUCTION, "reset")
        wait_for(lambda: served.slot.version_number() == 1, "version 1")
