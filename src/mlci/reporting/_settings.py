"""Reporting's part of ``[tool.mlci]``: ``[tool.mlci.report]``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mlci._settings import section_settings


@dataclasses.dataclass(frozen=True)
class ReportSettings:
    """What ``artifacts/report.html`` holds beside its tables."""

    # matplotlib pictures; false keeps the tables and draws nothing (a command saves 0.1-0.2 s
    # per picture whose numbers changed)
    pictures: bool = True


def report_settings(sections: dict[str, Any], pyproject: Path) -> ReportSettings:
    """``[tool.mlci.report]``, each key type-checked."""
    return section_settings(ReportSettings, sections, "report", pyproject, lambda name, value: "")
