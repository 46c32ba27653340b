"""Coverage across the Pythons: combine each one's data, write the reports, judge the total.

One command instead of six in the session, so that `mlci cached` can skip them all when the
per-Python data did not change (each report re-analyses every source file: about 1 s each).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mlci._io import read_json
from mlci._report import Markup, Section
from mlci.errors import MlciError

COMBINED = ".coverage"  # in the artifacts folder: a report reading the root's `.coverage` would
# combine (and delete) the per-Python `.coverage.*` files, which are the test sessions' outputs.
JSON = "coverage.json"


def combine_and_report(root: Path, artifacts: Path, data: Sequence[str]) -> int:
    """Combine ``data``; write XML, HTML and JSON; print the table. `coverage report`'s exit code.

    The reports exit 2 under the threshold; only the final `coverage report` decides.
    """
    if not data:
        raise MlciError("no .coverage.<python> data files: run the test sessions first")
    tool = shutil.which("coverage", path=str(Path(sys.executable).parent)) or "coverage"
    env = {**os.environ, "COVERAGE_FILE": str(artifacts / COMBINED)}
    artifacts.mkdir(parents=True, exist_ok=True)
    reports = [
        ["xml", "--quiet", "-o", str(artifacts / "coverage.xml")],
        ["html", "--quiet", "-d", str(artifacts / "coverage-html")],
        ["json", "--quiet", "-o", str(artifacts / JSON)],
    ]
    steps = [["combine", "--keep", "--quiet", *data], *reports]
    for step in steps:
        result = subprocess.run([tool, *step], cwd=root, env=env, check=False)
        if result.returncode not in (0, 2):
            raise MlciError(f"coverage {step[0]} failed with exit code {result.returncode}")
    return subprocess.run([tool, "report"], cwd=root, env=env, check=False).returncode


def coverage_section(path: Path) -> tuple[Section, float, int]:
    """(the section, the total percentage, how many files) of a `coverage json` report."""
    data = read_json(path, "coverage JSON")
    try:
        total = float(data["totals"]["percent_covered"])
        files = {name: info["summary"]["percent_covered"] for name, info in data["files"].items()}
    except (KeyError, TypeError, ValueError):
        raise MlciError(f"{path}: not a `coverage json` report (no totals or files)") from None
    rows = [(Markup(f"`{name}`"), f"{percent:.1f}%") for name, percent in sorted(files.items())]
    rows.append((Markup("**total**"), Markup(f"**{total:.1f}%**")))
    section = Section(f"Coverage: {total:.1f}%", header=("file", "covered"), rows=tuple(rows))
    return section, total, len(files)
