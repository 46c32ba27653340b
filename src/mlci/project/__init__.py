"""The project surface mlci owns: `mlci init` writes it, `mlci update` keeps it current.

The files come from templates shipped in the wheel, at the installed version; `.mlci/manifest.json`
records the version and each owned file's SHA-256, so an update replaces only what the project
never edited. The data, the checks, `tests/model`, the locks and pyproject.toml are the project's.
"""

from __future__ import annotations

from mlci.project._files import MANIFEST, Manifest, read_manifest
from mlci.project._init import Plan, data_of, init
from mlci.project._init import plan as plan_init
from mlci.project._render import IRIS, OWNED, STARTERS, Data, owned, starters, tables
from mlci.project._update import SIDECAR, Update, update
from mlci.project._update import plan as plan_update

__all__ = [
    "IRIS",
    "MANIFEST",
    "OWNED",
    "SIDECAR",
    "STARTERS",
    "Data",
    "Manifest",
    "Plan",
    "Update",
    "data_of",
    "init",
    "owned",
    "plan_init",
    "plan_update",
    "read_manifest",
    "starters",
    "tables",
    "update",
]
