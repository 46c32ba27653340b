"""Serving's part of ``[tool.mlci]``: ``[tool.mlci.serve]``, the command line overriding it."""

from __future__ import annotations

import dataclasses
from typing import Any

from mlci._settings import section_settings
from mlci.pipeline import Config


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """`mlci serve` defaults; the command line overrides them."""

    alias: str = "production"
    host: str = "127.0.0.1"
    port: int = 8080
    max_rows: int = 10_000  # rows per request
    max_body_bytes: int = 5 * 1024 * 1024
    poll_seconds: float = 1.0  # how often the alias is checked for a move
    sample_log: str = ""  # a CSV of the scored rows, for `mlci drift --serving-log` ("" = off)
    sample_log_bytes: int = 10_000_000  # the log and its rotated file never take more than this
    sample_rate: float = 1.0  # the share of rows logged


def serve_settings(config: Config) -> ServeConfig:
    """``[tool.mlci.serve]``, every number positive."""

    def rule(name: str, value: Any) -> str:
        if isinstance(value, (int, float)) and value <= 0:
            return "must be positive"
        if name == "sample_rate" and value > 1:
            return "must be at most 1 (every row)"
        return ""

    return section_settings(ServeConfig, config.sections, "serve", config.pyproject, rule)
