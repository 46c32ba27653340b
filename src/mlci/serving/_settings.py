"""Serving's part of ``[tool.mlci]``: ``[tool.mlci.serve]``, the command line overriding it."""

from __future__ import annotations

import dataclasses

from mlci._settings import dataclass_from_table
from mlci.errors import MlciError
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


def serve_settings(config: Config) -> ServeConfig:
    """``[tool.mlci.serve]``, every number positive."""
    where = f"{config.pyproject}: [tool.mlci.serve]"
    settings = dataclass_from_table(ServeConfig, config.sections.get("serve", {}), where)
    for field in dataclasses.fields(ServeConfig):
        value = getattr(settings, field.name)
        if isinstance(value, (int, float)) and value <= 0:
            raise MlciError(f"{where} {field.name}: must be positive, got {value}")
    return settings
