"""docs/ml-test-score.md stays honest: what it cites exists, and its totals add up."""

from __future__ import annotations

import ast
import re
from fractions import Fraction

from conftest import REPO

from mlci.cli import build_parser

DOC = REPO / "docs" / "ml-test-score.md"
SECTIONS = ("Data", "Model", "Infrastructure", "Monitoring")


def cited(pattern: str) -> list[str]:
    """Every backticked citation in the page that matches ``pattern`` (group 1)."""
    spans = re.findall(r"`([^`]+)`", DOC.read_text(encoding="utf-8"))
    return [m.group(1) for span in spans if (m := re.fullmatch(pattern, span))]


def test_every_cited_test_exists() -> None:
    tests = cited(r"(tests/[\w/]+\.py::\w+)")
    assert len(tests) >= 15
    missing = []
    for reference in tests:
        path, name = reference.split("::")
        source = (REPO / path).read_text(encoding="utf-8") if (REPO / path).is_file() else ""
        defined = {
            node.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)
        }
        if name not in defined:
            missing.append(reference)
    assert missing == []


def test_every_cited_command_and_session_exists() -> None:
    parser = build_parser()
    actions = [a for a in parser._actions if a.dest == "command"]
    commands = set(actions[0].choices or {})
    named = set(cited(r"mlci (\w+)(?: .*)?"))
    assert named
    assert named <= commands, named - commands
    noxfile = (REPO / "noxfile.py").read_text(encoding="utf-8")
    sessions = set(re.findall(r"^def (\w+)\(session", noxfile, re.MULTILINE))
    # The sessions mlci's factories register, as the noxfile calls them (`mlci.train(project)`).
    sessions |= set(re.findall(r"^mlci\.(\w+)\(project\)", noxfile, re.MULTILINE))
    used = set(cited(r"nox -s (\w+)(?: --.*)?"))
    assert used
    assert used <= sessions, used - sessions


def score(text: str) -> Fraction:
    return Fraction(text.replace("½", "1/2"))


def test_each_total_is_the_sum_of_its_rows_and_the_final_is_the_lowest() -> None:
    text = DOC.read_text(encoding="utf-8")
    totals = {}
    for name in SECTIONS:
        body = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        rows = re.findall(r"^\| (\d) \| [^|]+ \| ([\d.½]+) \|", body, re.MULTILINE)
        assert [int(n) for n, _ in rows] == list(range(1, 8)), name
        total = sum(score(s) for _, s in rows)
        assert f"| | **{name}** | **{float(total):g}** |" in body
        assert f"| {name} | {float(total):g} |" in text  # the summary table
        totals[name] = total
    assert f"| **final (lowest)** | **{float(min(totals.values())):g}** |" in text


def test_the_page_is_linked_from_the_readme() -> None:
    assert "docs/ml-test-score.md" in (REPO / "README.md").read_text(encoding="utf-8")
