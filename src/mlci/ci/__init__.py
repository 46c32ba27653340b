"""CI parity: what keeps a developer's `make ci` equal to CI's run.

Parity rules over the workflows and the Makefile, the lint tools, the lock files and the record
of commands that already passed (`mlci cached`). It reads the repository, never the model: it
imports neither the pipeline nor scikit-learn (an import-linter contract).
"""

from __future__ import annotations

from mlci.ci._cached import NO_CACHE, Outcome
from mlci.ci._cached import run as run_cached
from mlci.ci._coverage import JSON as COVERAGE_JSON
from mlci.ci._coverage import combine_and_report, coverage_section
from mlci.ci._lint import Finding
from mlci.ci._lint import run_all as run_linters
from mlci.ci._lint import section as lint_section
from mlci.ci._locks import (
    Lock,
    compile_all,
    locks,
    pins,
    project_locks,
    python_versions,
    resolve_differences,
)
from mlci.ci._parity import RULES, Repo, Violation, summary_rows
from mlci.ci._parity import check as check_parity
from mlci.ci._parity import section as parity_section

__all__ = [
    "COVERAGE_JSON",
    "NO_CACHE",
    "RULES",
    "Finding",
    "Lock",
    "Outcome",
    "Repo",
    "Violation",
    "check_parity",
    "combine_and_report",
    "compile_all",
    "coverage_section",
    "lint_section",
    "locks",
    "parity_section",
    "pins",
    "project_locks",
    "python_versions",
    "resolve_differences",
    "run_cached",
    "run_linters",
    "summary_rows",
]
