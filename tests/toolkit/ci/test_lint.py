from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from mlci.ci import _lint as lint
from mlci.cli import main
from mlci.errors import MlciError

# A stand-in for each linter: prints what FAKE_<TOOL> says, records its arguments.
STUB = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0]).replace("-", "_").upper()
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
out, code = json.loads(os.environ.get("FAKE_" + name, '["[]", 0]'))
if "json" in " ".join(sys.argv) or name != "ZIZMOR":
    print(out, end="")
sys.exit(code)
"""


@pytest.fixture
def tools(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stub ruff, zizmor and check-jsonschema on PATH, and a workflow to check."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("ruff", "zizmor", "check-jsonschema"):
        path = bin_dir / name
        path.write_text(STUB.format(python=sys.executable))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STUB_LOG", str(tmp_path / "calls.log"))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    (project / ".github" / "workflows").mkdir(parents=True)
    (project / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    return tmp_path / "calls.log"


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.integration
def test_clean_tools_pass_and_report_zero(
    tools: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "lint"]) == 0
    report = (project / "artifacts" / "report.md").read_text()
    assert "## Lint: clean" in report
    assert "| zizmor --offline | workflow security findings | 0 |" in report
    commands = calls(tools)
    assert [
        Path(commands[2][0]).name,
        *commands[2][1:],
    ] == ["zizmor", "--offline", "--format=json", ".github/workflows/ci.yml"]
    assert "vendor.github-workflows" in commands[3]


@pytest.mark.integration
def test_findings_are_counted_and_fail(
    tools: Path, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "FAKE_RUFF", json.dumps([json.dumps([{"code": "F401"}, {"code": "E501"}]), 0])
    )
    monkeypatch.setenv("FAKE_ZIZMOR", json.dumps([json.dumps([{"ident": "artipacked"}]), 14]))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert main(["-C", str(project), "lint"]) == 1
    findings = {f.tool: f.count for f in lint.run_all(project)}
    assert findings["ruff check"] == 2
    assert findings["zizmor --offline"] == 1
    assert findings["check-jsonschema"] == 0
    assert any("--output-format=github" in call for call in calls(tools))
    assert "## Lint: 3 finding(s)" in (project / "artifacts" / "report.md").read_text()


@pytest.mark.integration
def test_schema_errors_count(tools: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FAKE_CHECK_JSONSCHEMA", json.dumps([json.dumps({"status": "fail", "errors": [{}, {}]}), 1])
    )
    assert {f.tool: f.count for f in lint.run_all(project)}["check-jsonschema"] == 2


@pytest.mark.integration
def test_a_dependabot_config_is_audited_and_schema_checked(
    tools: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".github" / "dependabot.yml").write_text("version: 2\nupdates: []\n")
    monkeypatch.setenv(
        "FAKE_CHECK_JSONSCHEMA", json.dumps([json.dumps({"status": "fail", "errors": [{}]}), 1])
    )
    findings = {f.what: f.count for f in lint.run_all(project)}
    assert findings["dependabot schema errors"] == 1
    commands = calls(tools)
    schema = next(c for c in commands if "vendor.dependabot" in c)
    assert schema[-1] == ".github/dependabot.yml"
    zizmor = next(c for c in commands if Path(c[0]).name == "zizmor")
    assert zizmor[-2:] == [".github/workflows/ci.yml", ".github/dependabot.yml"]


@pytest.mark.integration
def test_a_broken_tool_is_an_error(
    tools: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_RUFF", json.dumps(["not json", 2]))
    with pytest.raises(MlciError, match=r"ruff failed \(exit 2\)"):
        lint.run_all(project)


@pytest.mark.integration
def test_a_missing_tool_is_an_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(project / "nothing-here"))
    with pytest.raises(MlciError, match="ruff: not installed"):
        lint.run_all(project)
