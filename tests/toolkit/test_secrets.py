"""Secrets never leave the process: one redactor, used by every way text leaves it."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import write_pyproject

from mlci._secrets import RedactingStream, redact, without_credentials
from mlci.cli import main
from mlci.errors import MlciError


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://ci:s3cret@127.0.0.1:5000/api", "http://127.0.0.1:5000/api"),
        ("https://ci:p@ss:w@rd@host/x@y", "https://host/x@y"),  # '@' and ':' in the password
        ("s3://bucket/prefix", "s3://bucket/prefix"),
        ("https://token@host", "https://host"),
        ("see 'http://a:b@h:1/x' and ftp://u:v@f/", "see 'http://h:1/x' and ftp://f/"),
    ],
)
def test_credentials_are_taken_out_of_every_url_in_a_text(url: str, shown: str) -> None:
    assert without_credentials(url) == shown
    assert redact(url, {}) == shown


@pytest.mark.parametrize(
    "name",
    [
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ],
)
def test_the_value_of_a_secret_variable_is_masked_as_it_is_and_url_encoded(name: str) -> None:
    secret = "pa:ss@word/+x"
    environ = {name: secret}
    text = f"failed with {secret}; the request was ?p=pa%3Ass%40word%2F%2Bx"
    shown = redact(text, environ)
    assert secret not in shown
    assert "pa%3Ass%40word" not in shown
    assert shown.startswith("failed with ***")


def test_the_password_of_the_tracking_uri_is_masked_also_where_it_stands_alone() -> None:
    environ = {"MLFLOW_TRACKING_URI": "http://ci:p%40ss:word@127.0.0.1:5000"}
    shown = redact("auth as ci with p@ss:word failed (p%40ss:word)", environ)
    assert "p@ss:word" not in shown
    assert "p%40ss:word" not in shown
    assert "ci" in shown  # the user name is not a secret


def test_an_mlci_error_and_stderr_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_0123456789abcdef")
    assert "ghp_" not in str(MlciError("token ghp_0123456789abcdef refused"))
    buffer = io.StringIO()
    RedactingStream(buffer).write("http://u:pw@h/ and ghp_0123456789abcdef\n")
    assert buffer.getvalue() == "http://h/ and ***\n"


class _HealthyButFailing(http.server.BaseHTTPRequestHandler):
    """/health answers 200, the API 503: a proxy in front of a broken MLflow server."""

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        code = 200 if self.path.rstrip("/") == "/health" else 503
        body = b"OK" if code == 200 else b"Service Unavailable"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def failing_server() -> Iterator[str]:
    """The server above on a loopback port; stopped after the test."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HealthyButFailing)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.mark.skipif(sys.version_info < (3, 10), reason="MLflow's client needs Python 3.10")
@pytest.mark.integration
def test_a_password_in_the_tracking_uri_reaches_neither_stderr_nor_health(
    project: Path,
    failing_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("mlflow")
    pytest.importorskip("fastapi")
    from mlci.delivery import Registry
    from mlci.serving._server import ModelSlot, create_app
    from mlci.serving._settings import ServeConfig

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ci:s3cret@{failing_server}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    write_pyproject(project, extra='registry = "mlflow:iris"\n')
    assert main(["-C", str(project), "registry", "list"]) == 2
    err = capsys.readouterr().err
    assert "503" in err or "Service Unavailable" in err or "MLflow could not" in err
    assert "s3cret" not in err
    assert "Traceback" not in err

    slot = ModelSlot(Registry.at("mlflow:iris"), "production")
    slot.refresh()
    assert slot.error is not None
    assert "s3cret" not in slot.error
    app = create_app(slot, ServeConfig())
    routes: list[Any] = list(app.routes)
    endpoint = next(route.endpoint for route in routes if getattr(route, "path", "") == "/health")
    health = asyncio.run(endpoint())
    assert health.status_code == 503
    body = health.body.decode()
    assert json.loads(body)["reload_error"]
    assert "s3cret" not in body


def test_the_report_the_step_summary_and_the_comment_are_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlci._report import publish
    from mlci.reporting._comment import post_comment

    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value-123")
    text = "## Release\n\nsmoke failed: http://ci:s3cret@host/x (key aws-secret-value-123)\n"
    report = publish(tmp_path, "release", text)
    for written in (report.read_text(), summary.read_text()):
        assert "s3cret" not in written
        assert "aws-secret-value-123" not in written
        assert "http://host/x" in written
    comment = post_comment(report.read_text(), {})
    assert "s3cret" not in comment.body
    assert "aws-secret-value-123" not in comment.body
