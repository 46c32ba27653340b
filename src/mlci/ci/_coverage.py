"""The coverage section of the report, from the JSON that `coverage json` writes."""

from __future__ import annotations

from pathlib import Path

from mlci._io import read_json
from mlci._report import Section
from mlci.errors import MlciError


def coverage_section(path: Path) -> tuple[Section, float, int]:
    """(the section, the total percentage, how many files) of a `coverage json` report."""
    data = read_json(path, "coverage JSON")
    try:
        total = float(data["totals"]["percent_covered"])
        files = {name: info["summary"]["percent_covered"] for name, info in data["files"].items()}
    except (KeyError, TypeError, ValueError):
        raise MlciError(f"{path}: not a `coverage json` report (no totals or files)") from None
    rows = [(f"`{name}`", f"{percent:.1f}%") for name, percent in sorted(files.items())]
    rows.append(("**total**", f"**{total:.1f}%**"))
    section = Section(f"Coverage: {total:.1f}%", header=("file", "covered"), rows=tuple(rows))
    return section, total, len(files)
