from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from mlci.ci import _parity as parity
from mlci.cli import main
from mlci.errors import MlciError

PYTHONS = ["3.9", "3.10", "3.11", "3.12"]
# What `nox --list --json` reports for this repository's noxfile: (session, tags, default).
SESSIONS = [
    ("lint", ["ci"], True),
    ("parity", ["ci"], True),
    ("typecheck", ["ci"], True),
    ("train", ["ci"], True),
    ("gate", ["ci"], True),
    ("check", ["ci"], True),
    *((f"test-{python}", ["ci"], True) for python in PYTHONS),
    ("integration-3.9", ["ci"], True),
    ("integration-3.12", ["ci"], True),
    ("mlflow", ["ci"], True),
    ("project", ["ci"], True),
    ("coverage", [], True),
    ("build", [], False),
    ("release", [], False),
    ("retrain", [], False),
    ("rollback", [], False),
    ("drift", [], False),
    ("serve", [], False),
    ("comment", [], False),
    ("bench", [], False),
    ("tune", [], False),
    ("outdated", [], False),
    ("lock", [], False),
    ("clean", [], False),
    *((f"baseline-{python}", [], False) for python in PYTHONS),
    ("all-green", [], False),
]


def fake_nox(root: Path, args: list[str]) -> tuple[list[dict[str, Any]], str | None]:
    """`nox --list --json` for the table above, with nox's selection and error behaviour."""
    entry: list[dict[str, Any]] = [
        {"session": name, "name": name.split("-3.")[0], "tags": tags} for name, tags, _ in SESSIONS
    ]
    if not args:
        return [e for e, (_, _, default) in zip(entry, SESSIONS) if default], None
    kind, *values = args
    if kind == "-t":
        return [e for e in entry if values[0] in e["tags"]], None
    found = [e for e in entry for v in values if v in (e["session"], e["session"].split("-3.")[0])]
    missing = [
        v
        for v in values
        if not any(v == e["session"].split("-3.")[0] or v == e["session"] for e in entry)
    ]
    return ([], f"Sessions not found: {', '.join(missing)}") if missing else (found, None)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the files parity reads."""
    for name in ("Makefile", "pyproject.toml", "noxfile.py", ".python-version"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / ".github", tmp_path / ".github")
    shutil.copytree(REPO / "requirements", tmp_path / "requirements")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def rules(root: Path) -> list[str]:
    return [v.rule for v in parity.check(root, fake_nox)]


WORKFLOW = ".github/workflows/ci.yml"


def test_the_repository_passes(repo: Path) -> None:
    assert parity.check(repo, fake_nox) == []


def test_workflow_runs_only_nox(repo: Path) -> None:
    edit(
        repo / WORKFLOW,
        "        run: nox -s coverage",
        "        run: |\n          pytest -q\n          nox -s coverage",
    )
    violations = parity.check(repo, fake_nox)
    assert [v.rule for v in violations] == ["workflow-runs-only-nox"]
    violation = violations[0]
    assert str(violation).startswith(f"{WORKFLOW}:")
    assert "`pytest -q` is not a nox call" in violation.message
    line = (repo / WORKFLOW).read_text().splitlines()[violation.line - 1]
    assert line.strip() == "pytest -q"


@pytest.mark.parametrize(
    "command",
    ["python -m pip install ruff", "ruff check .", "python -m mlci train", "./scripts/x.sh"],
)
def test_other_tools_in_a_workflow_are_violations(repo: Path, command: str) -> None:
    edit(repo / WORKFLOW, "run: nox -s all-green", f"run: {command}")
    assert "workflow-runs-only-nox" in rules(repo)


BREAKS = [
    # (file, text, replacement, the rule it breaks, a part of the message)
    (
        "pyproject.toml",
        '"prometheus-client>=0.20"]',
        '"prometheus-client>=0.20", "gunicorn>=23"]',
        "locks-fresh",
        "'gunicorn' is not in requirements/serve.txt",
    ),
    (
        ".github/workflows/delivery.yml",
        'run: nox -s rollback -- --reason "$REASON"',
        'run: nox -s rollback --no-venv -- --reason "$REASON"',
        "flags-agree",
        "'--no-venv' is set here only",
    ),
    (
        "Makefile",
        "$(NOX) -s gate",
        "$(NOX) -s gates",
        "sessions-exist",
        "session 'gates' is not in `nox --list`: Sessions not found: gates",
    ),
    (
        WORKFLOW,
        "      matrix:\n",
        '      matrix:\n        python: ["3.9", "3.10", "3.11"]\n',
        "python-matrix",
        "differs from the classifiers",
    ),
    (
        WORKFLOW,
        "python-version: ${{ matrix.python }}",
        'python-version: "3.8"',
        "python-matrix",
        "Python 3.8 is not in the matrix",
    ),
    (".python-version", "3.11", "3.13", "python-matrix", "3.13 is not one of"),
    (
        WORKFLOW,
        "            3.9\n",
        "            3.8\n",
        "python-matrix",
        "Python 3.8 is not in the matrix",
    ),
    (
        "Makefile",
        "\t$(NOX) -s lint",
        "\t$(NOX) -s lint\n\truff check .",
        "makefile-only-nox",
        "`ruff check .` in target 'lint' is not a nox call",
    ),
    (
        "noxfile.py",
        '"nox==2026.10.20"',
        '"nox==2025.1.1"',
        "tool-pins",
        "the script block must pin nox==2026.10.20",
    ),
    (
        "pyproject.toml",
        '"joblib>=1.4",',
        '"joblib>=1.4",\n    "pandas>=2",',
        "locks-fresh",
        "'pandas' is not in requirements/main.txt",
    ),
    ("pyproject.toml", '"joblib>=1.4",', '"joblib>=99",', "locks-fresh", "outside 'joblib>=99'"),
    (
        "Makefile",
        "runs it\n\t$(NOX)\n",
        "runs it\n\t$(NOX) --reuse-venv=no\n",
        "flags-agree",
        "'--reuse-venv=no' is set here only",
    ),
    (
        "Makefile",
        "runs it\n\t$(NOX)\n",
        "runs it\n\t$(NOX) -s lint test\n",
        "flags-agree",
        "must run plain `nox`",
    ),
    (
        WORKFLOW,
        "        run: nox -s coverage",
        "        run: nox -s lock",
        "flags-agree",
        "session 'coverage' runs in `make ci` but no workflow runs it",
    ),
]


@pytest.mark.parametrize(("file", "text", "replacement", "rule", "message"), BREAKS)
def test_each_rule_catches_its_break(
    repo: Path, file: str, text: str, replacement: str, rule: str, message: str
) -> None:
    edit(repo / file, text, replacement)
    violations = parity.check(repo, fake_nox)
    assert violations, "the break went unnoticed"
    assert {v.rule for v in violations} == {rule}, violations
    assert any(message in v.message for v in violations), violations


def test_tool_pins_in_the_makefile(repo: Path) -> None:
    edit(
        repo / "Makefile",
        "$(TOOLS)/bin/python -m pip install --quiet --require-hashes -r requirements/tools.txt",
        "$(TOOLS)/bin/python -m pip install nox==2024.1.1 uv",
    )
    assert "tool-pins" in rules(repo)


def test_locks_fresh_names_every_lock_missing_a_dependency(repo: Path) -> None:
    edit(repo / "pyproject.toml", '"joblib>=1.4",', '"joblib>=1.4",\n    "polars>=1",')
    violations = parity.check(repo, fake_nox)
    assert {v.file for v in violations} == {"pyproject.toml"}
    assert {v.message.split(" is not in ")[1].split(":")[0] for v in violations} == {
        # every lock that installs the project: main, test, one per extra, typecheck
        "requirements/main.txt",
        "requirements/test.txt",
        "requirements/serve.txt",
        "requirements/skops.txt",
        "requirements/ci.txt",
        "requirements/remote.txt",
        "requirements/gcs.txt",
        "requirements/mlflow.txt",
        "requirements/plots.txt",
        "requirements/parquet.txt",
        "requirements/xgboost.txt",
        "requirements/lightgbm.txt",
        "requirements/typecheck.txt",
        "requirements/mlflow-server.txt",
    }


def test_a_tag_that_selects_nothing_also_drops_sessions_from_ci(repo: Path) -> None:
    edit(repo / WORKFLOW, "nox --list --json -t ci", "nox --list --json -t cl")
    violations = parity.check(repo, fake_nox)
    assert {v.rule for v in violations} == {"sessions-exist", "flags-agree"}
    assert "tag 'cl' is not in `nox --list`: it selects no session" in violations[0].message


def test_locks_fresh_catches_a_stray_lock(repo: Path) -> None:
    (repo / "requirements" / "dev.txt").write_text("x==1\n")
    assert rules(repo) == ["locks-fresh"]


def test_workflow_command_parsing(tmp_path: Path) -> None:
    path = tmp_path / "w.yml"
    path.write_text(
        "jobs:\n  a:\n    steps:\n      - run: nox -s lint && echo hi\n"
        "      - name: x\n        run: |\n          nox -s a\n\n"
        "          # comment\n          nox -s b | tee log\n"
        "      - run: 'nox -s c'\n"
    )
    commands = [(c.line, c.text) for c in parity.workflow_commands(path, "w.yml")]
    assert commands == [
        (4, "nox -s lint"),
        (4, "echo hi"),
        (7, "nox -s a"),
        (10, "nox -s b"),
        (10, "tee log"),
        (11, "nox -s c"),
    ]


def test_cli_parity_reports_and_exits(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parity, "nox_list", fake_nox)
    assert main(["-C", str(repo), "parity"]) == 0
    assert "parity: 8 rules checked, passed" in capsys.readouterr().out
    assert "| workflow-runs-only-nox |" in (repo / "artifacts" / "report.md").read_text()
    edit(repo / "Makefile", "\t$(NOX) -s lint", "\tpytest")
    assert main(["-C", str(repo), "parity"]) == 1
    out = capsys.readouterr().out
    assert "Makefile:" in out
    assert "makefile-only-nox" in out


def workflow(tmp_path: Path, steps: str) -> list[parity.Command]:
    """The commands parity finds in a one-job workflow with these steps."""
    path = tmp_path / "w.yml"
    path.write_text(
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-24.04\n    steps:\n" + steps,
        encoding="utf-8",
    )
    return list(parity.workflow_commands(path, "w.yml"))


def test_a_flow_style_step_is_read(tmp_path: Path) -> None:
    found = workflow(tmp_path, "      - {name: x, run: pytest -q}\n")
    assert [(c.line, c.text) for c in found] == [(6, "pytest -q")]


def test_a_folded_block_over_two_lines_is_one_command(tmp_path: Path) -> None:
    found = workflow(tmp_path, "      - run: >-\n          nox -s lint\n          && pytest -q\n")
    assert [(c.line, c.text) for c in found] == [(7, "nox -s lint"), (7, "pytest -q")]


def test_run_inside_another_keys_block_is_not_a_step(tmp_path: Path) -> None:
    steps = (
        "      - uses: actions/github-script@v7\n"
        "        with:\n"
        "          script: |\n"
        "            run: pytest -q\n"
        "      - run: nox -s lint\n"
    )
    assert [(c.line, c.text) for c in workflow(tmp_path, steps)] == [(10, "nox -s lint")]


def test_a_quoted_run_with_a_comment(tmp_path: Path) -> None:
    found = workflow(tmp_path, "      - run: 'nox -s lint'  # comment\n")
    assert [(c.line, c.text) for c in found] == [(6, "nox -s lint")]


def test_literal_blocks_keep_each_lines_number_and_join_continuations(tmp_path: Path) -> None:
    steps = (
        "      - run: |\n"
        "          # set up\n"
        "          nox -s lint \\\n"
        "            --no-color\n"
        "          pytest\n"
    )
    found = workflow(tmp_path, steps)
    assert [(c.line, c.text) for c in found] == [(8, "nox -s lint --no-color"), (10, "pytest")]


def test_the_four_yaml_cases_get_their_verdicts_in_a_real_workflow(repo: Path) -> None:
    """pytest in flow style or a folded block is caught; a run: inside a script is not a step."""
    anchor = "      - name: Run the session\n"
    for step, caught in (
        ("      - {name: x, run: pytest -q}\n", True),
        ("      - run: >-\n          nox -s lint\n          && pytest -q\n", True),
        (
            "      - uses: actions/github-script@v7\n        with:\n          script: |\n"
            "            run: pytest -q\n",
            False,
        ),
        ("      - run: 'nox -s lint'  # comment\n", False),
    ):
        original = (repo / WORKFLOW).read_text()
        edit(repo / WORKFLOW, anchor, step + anchor)
        found = [v for v in parity.check(repo, fake_nox) if v.rule == "workflow-runs-only-nox"]
        assert bool(found) is caught, (step, found)
        if caught:
            assert found[0].message.startswith("`pytest -q` is not a nox call")
        (repo / WORKFLOW).write_text(original)


def test_a_malformed_workflow_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "w.yml"
    path.write_text("jobs:\n  j: [unclosed\n", encoding="utf-8")
    with pytest.raises(MlciError, match=r"^w\.yml:3:1: not valid YAML"):
        list(parity.workflow_commands(path, "w.yml"))


def test_only_the_jobs_that_write_the_registry_may_ask_for_cloud_credentials() -> None:
    """OIDC tokens (id-token: write) for release, retrain and rollback; no other job gains one."""
    from ruamel.yaml import YAML

    granted = {}
    for path in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        workflow = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        assert workflow.get("permissions") == {}, f"{path.name}: workflow-wide permissions"
        for name, job in workflow["jobs"].items():
            permissions = job.get("permissions", {})
            if permissions.get("id-token") == "write":
                granted[f"{path.name}:{name}"] = job
                if path.name == "publish.yml":
                    continue  # Trusted Publishing, checked below
                steps = [step.get("uses", "") for step in job["steps"]]
                assert steps[0].startswith("actions/checkout@"), "checkout before the auth"
                assert any("configure-aws-credentials@" in uses for uses in steps)
                assert any("google-github-actions/auth@" in uses for uses in steps)
                assert job.get("env", {}).get("MLCI_REGISTRY") or workflow["env"]["MLCI_REGISTRY"]
    assert sorted(granted) == [
        "ci.yml:release",
        "delivery.yml:retrain",
        "delivery.yml:rollback",
        "publish.yml:publish",
    ]


def test_mlci_is_published_with_trusted_publishing_from_the_files_it_built_and_tested() -> None:
    """build -> upload-artifact -> publish, never a rebuild; the token in the publish job only."""
    from ruamel.yaml import YAML

    workflow = YAML(typ="safe").load((REPO / ".github" / "workflows" / "publish.yml").read_text())
    assert workflow["on"] == {"release": {"types": ["published"]}}
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    assert build["permissions"] == {"contents": "read"}
    runs = [step["run"] for step in build["steps"] if "run" in step]
    assert runs[1:] == ["nox -s build", "nox -s project"]
    assert build["steps"][-1]["uses"].startswith("actions/upload-artifact@")
    assert publish["needs"] == "build"
    assert publish["environment"]["name"] == "pypi"
    assert publish["permissions"] == {"id-token": "write"}
    uses = [step["uses"] for step in publish["steps"]]
    assert uses[0].startswith("actions/download-artifact@")
    assert uses[1].startswith("pypa/gh-action-pypi-publish@")
    assert all(len(use.split("@")[1]) == 40 for use in uses)  # pinned by full SHA
    assert not any("run" in step for step in publish["steps"])  # nothing is built here
