"""`mlci lint`: ruff, zizmor, check-jsonschema and import-linter, their findings counted.

Each tool runs once in a machine-readable format to count findings and, only when it found
something, once more in its human (or GitHub annotation) format so the output is readable.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from mlci._report import Section
from mlci._settings import read_toml
from mlci.errors import MlciError

WORKFLOW_SCHEMA = "vendor.github-workflows"
DEPENDABOT = ".github/dependabot.yml"
DEPENDABOT_SCHEMA = "vendor.dependabot"
_CONTRACTS = re.compile(r"Contracts: (?P<kept>\d+) kept, (?P<broken>\d+) broken")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One tool's count."""

    tool: str
    what: str
    count: int


def _run(
    command: Sequence[str], root: Path, *, capture: bool = True
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(command), cwd=root, capture_output=capture, text=True, check=False
        )
    except FileNotFoundError:
        raise MlciError(
            f"{command[0]}: not installed; run the lint session (`nox -s lint`)"
        ) from None


def _json(result: subprocess.CompletedProcess[str], tool: str) -> object:
    try:
        return json.loads(result.stdout or "null")
    except json.JSONDecodeError:
        raise MlciError(
            f"{tool} failed (exit {result.returncode}): {result.stderr.strip()[-500:]}"
        ) from None


def workflows(root: Path) -> list[str]:
    """The workflow files, relative to the root."""
    folder = root / ".github" / "workflows"
    return (
        sorted(p.relative_to(root).as_posix() for p in folder.glob("*.y*ml"))
        if folder.is_dir()
        else []
    )


def run_all(root: Path) -> list[Finding]:
    """Run every linter; print the findings of those that found something."""
    github = bool(os.environ.get("GITHUB_ACTIONS"))
    findings = []

    ruff = _json(_run(["ruff", "check", "--output-format=json", "--exit-zero", "."], root), "ruff")
    count = len(ruff) if isinstance(ruff, list) else 0
    if count:
        _run(
            ["ruff", "check", *(["--output-format=github"] if github else []), "."],
            root,
            capture=False,
        )
    findings.append(Finding("ruff check", "lint rules", count))

    formatted = _run(["ruff", "format", "--check", "."], root)
    count = sum(1 for line in formatted.stdout.splitlines() if line.startswith("Would reformat"))
    if formatted.returncode not in (0, 1):
        raise MlciError(f"ruff format failed: {formatted.stderr.strip()}")
    print(formatted.stdout, end="")
    findings.append(Finding("ruff format", "files to reformat", count))

    files = workflows(root)
    dependabot = root / DEPENDABOT
    if dependabot.is_file():
        findings.append(_schema(root, DEPENDABOT_SCHEMA, [DEPENDABOT], "dependabot schema errors"))
    if files:
        audited = [*files, DEPENDABOT] if dependabot.is_file() else files
        zizmor = _json(_run(["zizmor", "--offline", "--format=json", *audited], root), "zizmor")
        count = len(zizmor) if isinstance(zizmor, list) else 0
        if count:
            _run(
                ["zizmor", "--offline", *(["--format=github"] if github else []), *audited],
                root,
                capture=False,
            )
        findings.append(Finding("zizmor --offline", "workflow security findings", count))

        findings.append(_schema(root, WORKFLOW_SCHEMA, files, "workflow schema errors"))
    if "importlinter" in read_toml(root / "pyproject.toml").get("tool", {}):
        findings.append(import_contracts(root))
    return findings


def _schema(root: Path, schema: str, files: list[str], what: str) -> Finding:
    """check-jsonschema against one of its bundled schemas: the errors counted, then shown."""
    checked = _run(["check-jsonschema", "--builtin-schema", schema, "-o", "json", *files], root)
    result = _json(checked, "check-jsonschema")
    errors = result.get("errors", []) if isinstance(result, dict) else []
    count = len(errors) if checked.returncode else 0
    if count:
        _run(["check-jsonschema", "--builtin-schema", schema, *files], root, capture=False)
    return Finding("check-jsonschema", what, count)


def section(findings: list[Finding]) -> Section:
    """The lint report section: each tool's count of findings."""
    total = sum(f.count for f in findings)
    return Section(
        f"Lint: {'clean' if not total else f'{total} finding(s)'}",
        header=("tool", "checks", "findings"),
        rows=tuple((f.tool, f.what, str(f.count)) for f in findings),
    )


def import_contracts(root: Path) -> Finding:
    """Check the import-linter contracts of pyproject.toml; print the report when one breaks."""
    result = _run(["lint-imports", "--no-cache"], root)
    counts = _CONTRACTS.search(result.stdout)
    if counts is None:
        raise MlciError(
            f"lint-imports failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        )
    broken = int(counts["broken"])
    if broken:
        print(result.stdout, end="")
    return Finding("import-linter", "broken import contracts", broken)
