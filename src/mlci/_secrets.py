"""The one place where secrets are taken out of text that leaves the process.

Every error, log line, report section, step summary, pull-request comment, HTTP body and MLflow tag
that mlci writes passes through ``redact``, including a third-party library's error text, which
may quote a URL with its credentials. ``cli.main`` also wraps stderr in ``RedactingStream``, so
that a library's own log lines and warnings are covered too.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable
from typing import IO, Any

MASK = "***"
# Variables whose value is a secret as a whole.
SECRET_VARIABLES = (
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
# Variables that hold a URL whose userinfo (user:password@) is a secret.
URL_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLCI_REGISTRY")
SHORTEST = 4  # shorter values are not replaced word for word: they would garble the message
# userinfo is everything up to the last '@' before the host: a password may hold '@' or ':'.
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#'\"<>]*@")


def without_credentials(url: str) -> str:
    """``scheme://user:secret@host/...`` shown as ``scheme://host/...``."""
    return _USERINFO.sub(r"\1", url)


def redact(text: str, environ: dict[str, str] | None = None) -> str:
    """``text`` without URL credentials and without the value of any secret variable."""
    text = without_credentials(str(text))
    for secret in _secrets(os.environ if environ is None else environ):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _secrets(environ: Any) -> list[str]:
    """The secret strings in the environment, longest first, with their URL-encoded forms."""
    found: set[str] = set()
    for name in SECRET_VARIABLES:
        found.update(_forms(environ.get(name) or ""))
    for name in URL_VARIABLES:
        match = _USERINFO.match(environ.get(name) or "")
        if match:
            userinfo = match.group(0)[len(match.group(1)) : -1]
            _, _, password = userinfo.partition(":")
            found.update(_forms(password))
            found.update(_forms(urllib.parse.unquote(password)))
    return sorted((s for s in found if len(s) >= SHORTEST), key=len, reverse=True)


def _forms(secret: str) -> Iterable[str]:
    """A secret as it is, and as it appears percent-encoded in a URL."""
    return {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}


class RedactingStream:
    """A text stream that redacts what is written to it before passing it on (stderr)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` redacted; returns the length written, as a stream does."""
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
