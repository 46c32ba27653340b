"""Serving: MLflow's scoring protocol over HTTP for the model a registry alias points at.

The request parser (``parse``) needs only the standard library; ``create_app`` and ``serve`` need
the ``serve`` extra (FastAPI, uvicorn) and are imported when first used, so that
``import mlci.serving`` works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlci.serving._sample import SampleLog, serving_batch
from mlci.serving._scoring import BadRequest, Limits, parse
from mlci.serving._settings import ServeConfig, serve_settings

if TYPE_CHECKING:
    from mlci.serving._server import ModelSlot, create_app, serve

__all__ = [
    "BadRequest",
    "Limits",
    "ModelSlot",
    "SampleLog",
    "ServeConfig",
    "create_app",
    "parse",
    "serve",
    "serve_settings",
    "serving_batch",
]

_SERVER = {"ModelSlot", "create_app", "serve"}


def __getattr__(name: str) -> Any:
    """Import the FastAPI server on first use (PEP 562), so the extra stays optional."""
    if name in _SERVER:
        from mlci.serving import _server

        return getattr(_server, name)
    raise AttributeError(f"module 'mlci.serving' has no attribute {name!r}")
