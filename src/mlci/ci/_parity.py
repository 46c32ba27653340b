"""`mlci parity`: prove that CI runs what `make ci` runs, by reading the repository.

Every rule reports `file:line: rule: message`. The checks are textual on purpose: they read the
workflow, the Makefile and the locks the way a reviewer would, without running any of them, and
ask nox itself (`nox --list --json`) which sessions exist.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from mlci._report import Section
from mlci._settings import tomllib
from mlci.ci._locks import (
    EXTRA,
    Lock,
    disagreements,
    installed_together,
    locks,
    normalize,
    pins,
    python_versions,
    resolve_differences,
)
from mlci.errors import MlciError

RULES = {
    "workflow-runs-only-nox": "every workflow `run:` step calls nox or the tools bootstrap",
    "sessions-exist": "every session a workflow or the Makefile names exists",
    "python-matrix": "the workflow provides exactly the noxfile's Pythons",
    "makefile-only-nox": "Makefile recipes call nox or the tools bootstrap",
    "tool-pins": "the workflow and the Makefile install the tools lock's nox and uv",
    "locks-fresh": "each lock satisfies what pyproject.toml asks for",
    "locks-agree": "locks installed together pin each package at one version, on every Python",
    "flags-agree": "make ci and CI run the same sessions with the same nox options",
}
TOOLS_LOCK = "requirements/tools.txt"
# Options that only select or list sessions; anything else must live in noxfile.py's nox.options.
SELECTING = {"-s", "--session", "--sessions", "-t", "--tags", "-l", "--list", "--json"}
TAKES_VALUE = {"-s", "--session", "--sessions", "-t", "--tags"}
_OUTPUT = re.compile(r'^echo\s+"[\w-]+=\$\((?P<nox>nox\s[^)]*)\)"\s+>>\s+"\$GITHUB_OUTPUT"$')
_VERSION = re.compile(r"^3\.\d+$")

Lister = Callable[[Path, list[str]], "tuple[list[dict[str, Any]], str | None]"]


@dataclasses.dataclass(frozen=True)
class Violation:
    """One broken rule, where it is broken, and how to fix it."""

    file: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message}"


@dataclasses.dataclass(frozen=True)
class Command:
    """One shell command of a workflow `run:` step or a Makefile recipe."""

    file: str
    line: int
    text: str


def nox_list(root: Path, args: list[str]) -> tuple[list[dict[str, Any]], str | None]:
    """Ask nox which sessions a selection names: (sessions, error)."""
    result = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--json", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        lines = [line.removeprefix("nox > ") for line in result.stderr.splitlines() if line.strip()]
        return [], lines[-1] if lines else f"nox --list failed with exit code {result.returncode}"
    return json.loads(result.stdout), None


def load_workflow(path: Path, display: str) -> Any:
    """A workflow parsed by ruamel.yaml, whose nodes keep their line numbers (``.lc``)."""
    try:
        from ruamel.yaml.error import MarkedYAMLError, YAMLError
    except ImportError:
        raise MlciError(
            "parity reads workflows with ruamel.yaml, from the ci extra: run it through nox "
            "(`nox -s parity`) or install requirements/ci.txt"
        ) from None
    try:
        return _parse(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{display}:{mark.line + 1}:{mark.column + 1}" if mark else display
        raise MlciError(f"{where}: not valid YAML: {exc.problem or exc}") from None
    except YAMLError as exc:
        raise MlciError(f"{display}: not valid YAML: {exc}") from None


@functools.lru_cache(maxsize=32)
def _parse(text: str) -> Any:
    """Parse once per distinct text (about 25 ms a workflow); the documents are only read."""
    from ruamel.yaml import YAML

    return YAML(typ="rt").load(text)


def _mappings(node: Any) -> Iterator[Any]:
    """Every mapping in a YAML document, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _mappings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _mappings(item)


def _value_line(mapping: Any, key: str) -> tuple[int, bool]:
    """(1-based line where the value of ``key`` starts, whether it is a block scalar)."""
    key_line, _, value_line, _ = mapping.lc.data[key]
    block = type(mapping[key]).__name__ in ("LiteralScalarString", "FoldedScalarString")
    # A block scalar's text starts on the line after its `|` or `>` indicator.
    return (key_line + 2 if block else value_line + 1), block


def workflow_commands(path: Path, display: str) -> Iterator[Command]:
    """The commands of every step's `run:` in the workflow at ``path``."""
    return commands_of(load_workflow(path, display), display)


def commands_of(document: Any, display: str) -> Iterator[Command]:
    """The commands of every step's `run:`, split at `&&`, `||`, `;` and pipes, with line numbers.

    Only `run` keys of the steps of jobs count, in any YAML style (flow or block mappings, plain,
    quoted, literal or folded scalars); a `run:` inside another key's text is not a step.
    """
    jobs = document.get("jobs") if isinstance(document, dict) else None
    for job in (jobs or {}).values():
        steps = job.get("steps") if isinstance(job, dict) else None
        for step in steps or []:
            if not isinstance(step, dict) or not isinstance(step.get("run"), str):
                continue
            line, block = _value_line(step, "run")
            text = str(step["run"])
            if not block or "\n" not in text.rstrip("\n"):
                yield from _split(display, line, " ".join(text.split("\\\n")).strip())
                continue
            pending, start = "", line
            for offset, raw in enumerate(text.splitlines()):
                if not pending:
                    start = line + offset
                if raw.rstrip().endswith("\\"):  # a shell line continuation
                    pending += raw.strip()[:-1].strip() + " "
                    continue
                command = (pending + raw.strip()).strip()
                pending = ""
                if command:
                    yield from _split(display, start, command)


def values_of(document: Any, key: str) -> Iterator[tuple[int, Any]]:
    """(line, value) of every ``key`` in a workflow, wherever it stands."""
    for mapping in _mappings(document):
        if key in mapping:
            yield _value_line(mapping, key)[0], mapping[key]


def _split(file: str, line: int, text: str) -> Iterator[Command]:
    if text.startswith("#"):
        return
    for part in re.split(r"&&|\|\||;|(?<![|>])\|(?!\|)", text):
        if part.strip():
            yield Command(file, line, part.strip())


def makefile_recipes(path: Path, display: str) -> Iterator[tuple[str, Command]]:
    """(target, command) for every recipe line of the Makefile."""
    target = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if raw.startswith("\t"):
            for command in _split(display, number, raw.strip().lstrip("@-+")):
                yield target, command
        elif re.match(r"^[^\s#=]+(\s+[^\s#=]+)*\s*:(?!=)", raw):
            target = raw.split(":", 1)[0].strip()


def _is_nox(text: str) -> bool:
    return (
        text == "nox"
        or text.startswith("nox ")
        or text in ("$(NOX)",)
        or text.startswith("$(NOX) ")
    )


def _is_bootstrap(text: str) -> bool:
    """`python -m pip install --require-hashes -r requirements/tools.txt`, nothing else."""
    try:
        tokens = shlex.split(text)
    except ValueError:
        return False
    if len(tokens) < 4 or tokens[1:4] != ["-m", "pip", "install"]:
        return False
    if not re.fullmatch(r"python3?|\$\(TOOLS\)/bin/python|\S*/python3?", tokens[0]):
        return False
    rest = tokens[4:]
    if "--require-hashes" not in rest or "-r" not in rest:
        return False
    position = rest.index("-r")
    if rest[position + 1 : position + 2] != [TOOLS_LOCK]:
        return False
    others = [
        t for i, t in enumerate(rest) if t not in ("--require-hashes", "-r") and i != position + 1
    ]
    return all(t in ("--quiet", "-q", "--no-deps", "--disable-pip-version-check") for t in others)


def _nox_args(text: str) -> list[str]:
    """nox's own arguments; what follows `--` goes to the session (posargs), not to nox."""
    tokens = shlex.split(text.replace("$(NOX)", "nox"))
    args = tokens[1:] if tokens and tokens[0] == "nox" else []
    return args[: args.index("--")] if "--" in args else args


@dataclasses.dataclass
class Repo:
    """What the rules read from one repository."""

    root: Path
    workflows: dict[str, Any]  # relative path -> the parsed workflow, read once
    commands: list[Command]
    recipes: list[tuple[str, Command]]
    pyproject: dict[str, Any]
    _lines: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def default_python(self) -> str:
        """The single-interpreter sessions' Python (`.python-version`)."""
        path = self.root / ".python-version"
        return path.read_text(encoding="utf-8").strip() if path.exists() else "3.11"

    @property
    def locks(self) -> list[Lock]:
        """The lock files `nox -s lock` writes."""
        return locks(self.pyproject, self.default_python)

    @classmethod
    def read(cls, root: Path) -> Repo:
        """Read the workflows, the Makefile and pyproject.toml."""
        paths = sorted((root / ".github" / "workflows").glob("*.y*ml"))
        names = [path.relative_to(root).as_posix() for path in paths]
        workflows = {name: load_workflow(root / name, name) for name in names}
        commands = [
            command
            for display, document in workflows.items()
            for command in commands_of(document, display)
        ]
        makefile = root / "Makefile"
        recipes = list(makefile_recipes(makefile, "Makefile")) if makefile.exists() else []
        with (root / "pyproject.toml").open("rb") as stream:
            pyproject = tomllib.load(stream)
        return cls(root, workflows, commands, recipes, pyproject)

    def nox_invocations(self) -> list[Command]:
        """Every nox call in the workflows and the Makefile (inside `$(...)` too)."""
        found = []
        for command in [*self.commands, *(c for _, c in self.recipes)]:
            output = _OUTPUT.match(command.text)
            if output:
                found.append(Command(command.file, command.line, output["nox"]))
            elif _is_nox(command.text):
                found.append(command)
        return found

    def line_of(self, relative: str, needle: str) -> int:
        """The first line of a file that contains ``needle`` (1 when absent)."""
        if relative not in self._lines:
            path = self.root / relative
            text = path.read_text(encoding="utf-8") if path.exists() else ""
            self._lines[relative] = text.splitlines()
        for number, line in enumerate(self._lines[relative], start=1):
            if needle in line:
                return number
        return 1


def check_workflow_runs_only_nox(repo: Repo) -> Iterator[Violation]:
    """A workflow step that runs pytest, ruff or a script bypasses the pipeline's definition."""
    for command in repo.commands:
        if _is_nox(command.text) or _is_bootstrap(command.text) or _OUTPUT.match(command.text):
            continue
        yield Violation(
            command.file,
            command.line,
            "workflow-runs-only-nox",
            f"`{command.text}` is not a nox call; "
            "move it into a noxfile session and run `nox -s NAME`",
        )


def check_makefile_only_nox(repo: Repo) -> Iterator[Violation]:
    """A recipe that runs a tool directly would make `make` differ from CI."""
    for target, command in repo.recipes:
        text = command.text
        if _is_nox(text):
            continue
        if target == "$(NOX)" and (
            _is_bootstrap(text)
            or re.fullmatch(r"\$\(PYTHON\) -m venv \$\(TOOLS\)|touch \$\(NOX\)", text)
        ):
            continue
        yield Violation(
            command.file,
            command.line,
            "makefile-only-nox",
            f"`{text}` in target '{target}' is not a nox call; recipes run `$(NOX) -s NAME` only",
        )


def _selections(repo: Repo) -> list[tuple[Command, str, str]]:
    """(command, "-s" or "-t", value) for every literal session or tag selection."""
    found = []
    for command in repo.nox_invocations():
        args = _nox_args(command.text)
        for index, arg in enumerate(args):
            if arg in TAKES_VALUE:
                kind = "-t" if arg in ("-t", "--tags") else "-s"
                for value in args[index + 1 :]:
                    if value.startswith("-"):
                        break
                    if "$" not in value:
                        found.append((command, kind, value))
    return found


Selected = dict[tuple[str, str], "tuple[list[dict[str, Any]], str | None]"]


def _select(repo: Repo, lister: Lister) -> Selected:
    """What every literal selection selects: one nox call for all names, one per tag.

    A name matches a session's full name or its base name (`test` selects every `test-3.x`),
    as in nox; only when the batch fails is each name asked on its own, to say which one.
    """
    selections = {(kind, value) for _, kind, value in _selections(repo)}
    names = sorted(value for kind, value in selections if kind == "-s")
    answers: Selected = {}
    batch, error = lister(repo.root, ["-s", *names]) if names else ([], None)
    for name in names:
        if error:
            answers["-s", name] = lister(repo.root, ["-s", name])
        else:
            found = [s for s in batch if name in (s.get("session"), s.get("name"))]
            answers["-s", name] = (found, None)
    for kind, value in selections:
        if kind == "-t":
            answers[kind, value] = lister(repo.root, [kind, value])
    return answers


def check_sessions_exist(repo: Repo, selected: Selected) -> Iterator[Violation]:
    """A typo in `nox -s NAME` would only show up as a red CI run."""
    for command, kind, value in _selections(repo):
        sessions, error = selected[kind, value]
        if error or not sessions:
            what = "tag" if kind == "-t" else "session"
            yield Violation(
                command.file,
                command.line,
                "sessions-exist",
                f"{what} '{value}' is not in `nox --list`: {error or 'it selects no session'}",
            )


def check_flags_agree(repo: Repo, lister: Lister, selected: Selected) -> Iterator[Violation]:
    """Options belong in noxfile.py (nox.options), so `make ci` and CI cannot drift apart."""
    for command in repo.nox_invocations():
        for arg in _nox_args(command.text):
            option = arg.split("=", 1)[0]
            if arg.startswith("-") and option not in SELECTING:
                yield Violation(
                    command.file,
                    command.line,
                    "flags-agree",
                    f"nox option '{arg}' is set here only; set it once in noxfile.py (nox.options)",
                )
    ci = [c for target, c in repo.recipes if target == "ci" and _is_nox(c.text)]
    if not ci:
        yield Violation("Makefile", 1, "flags-agree", "no `ci` target that runs nox")
        return
    if any(arg in TAKES_VALUE for c in ci for arg in _nox_args(c.text)):
        yield Violation(
            ci[0].file,
            ci[0].line,
            "flags-agree",
            "`make ci` must run plain `nox` (the default sessions, as CI does), not a selection",
        )
    default, error = lister(repo.root, [])
    if error:
        yield Violation(ci[0].file, ci[0].line, "flags-agree", f"cannot list nox sessions: {error}")
        return
    in_ci: set[str] = set()
    for command, kind, value in _selections(repo):
        if command.file != "Makefile":
            in_ci.update(s["session"] for s in selected[kind, value][0])
    for session in default:
        if session["session"] not in in_ci:
            yield Violation(
                ci[0].file,
                ci[0].line,
                "flags-agree",
                f"session '{session['session']}' runs in `make ci` but no workflow runs it; "
                "tag it `ci` or name it in the workflow",
            )


def check_python_matrix(repo: Repo) -> Iterator[Violation]:
    """The workflow must offer every Python of the matrix, and no other."""
    matrix = python_versions(repo.pyproject)
    if (repo.root / ".python-version").exists():
        default = repo.default_python
        if default not in matrix:
            yield Violation(
                ".python-version", 1, "python-matrix", f"{default} is not one of {matrix}"
            )
    derived = False
    for display, document in repo.workflows.items():
        for number, value in values_of(document, "python-version"):
            text = str(value)
            if "matrix.python" in text:
                derived = True
            elif "${{" not in text and text:
                # One version, or several one per line (setup-python installs them all).
                for version in text.split():
                    if version not in matrix:
                        yield Violation(
                            display,
                            number,
                            "python-matrix",
                            f"Python {version} is not in the matrix {matrix}",
                        )
        for number, value in values_of(document, "matrix"):
            literal = value.get("python") if isinstance(value, dict) else None
            if not isinstance(literal, list):
                continue
            items = sorted(str(item) for item in literal)
            if items != sorted(matrix):
                yield Violation(
                    display,
                    number,
                    "python-matrix",
                    f"literal Python list {items} differs from the classifiers {matrix}; "
                    "derive the matrix from `nox --list --json` instead",
                )
            derived = True
    lists = any("--list" in c.text or " -l" in c.text for c in repo.nox_invocations())
    if repo.workflows and not (derived and lists):
        yield Violation(
            next(iter(repo.workflows)),
            1,
            "python-matrix",
            "no job provides `${{ matrix.python }}` from `nox --list --json`: "
            "the test sessions' Pythons would not be installed",
        )


def check_tool_pins(repo: Repo) -> Iterator[Violation]:
    """nox and uv come from the tools lock, at the versions pyproject's `tools` group pins."""
    lock = repo.root / TOOLS_LOCK
    if not lock.exists():
        yield Violation(TOOLS_LOCK, 1, "tool-pins", "missing: run `nox -s lock`")
        return
    pinned = pins(lock)
    for name in ("nox", "uv"):
        if len(pinned.get(name, [])) != 1:
            yield Violation(TOOLS_LOCK, 1, "tool-pins", f"{name} must be pinned exactly once")
    noxfile = repo.root / "noxfile.py"
    if noxfile.exists() and pinned.get("nox"):
        script = re.search(
            r'#\s*dependencies\s*=\s*\[.*?"nox==([^"]+)"', noxfile.read_text(encoding="utf-8")
        )
        if not script or script[1] != pinned["nox"][0]:
            yield Violation(
                "noxfile.py",
                repo.line_of("noxfile.py", "dependencies"),
                "tool-pins",
                f"the script block must pin nox=={pinned['nox'][0]}, as the tools lock does",
            )
    for command in [*repo.commands, *(c for _, c in repo.recipes)]:
        if re.search(r"\b(pip|pipx|uv)\b.*\binstall\b", command.text) and not _is_bootstrap(
            command.text
        ):
            yield Violation(
                command.file,
                command.line,
                "tool-pins",
                f"`{command.text}` installs tools outside {TOOLS_LOCK}; "
                f"use `python -m pip install --require-hashes -r {TOOLS_LOCK}`",
            )


def check_locks_fresh(repo: Repo) -> Iterator[Violation]:
    """A dependency added to pyproject.toml but not locked would be installed by nobody."""
    from packaging.requirements import InvalidRequirement, Requirement

    project = repo.pyproject.get("project", {})
    groups = repo.pyproject.get("dependency-groups", {})
    for lock, inputs in ((lock.path, lock.inputs) for lock in repo.locks):
        path = repo.root / lock
        if not path.exists():
            yield Violation(lock, 1, "locks-fresh", "missing: run `nox -s lock`")
            continue
        pinned = pins(path)
        for source in inputs:
            if source == "project":
                wanted = project.get("dependencies", [])
            elif source.startswith(EXTRA):
                wanted = project.get("optional-dependencies", {}).get(source[len(EXTRA) :])
            else:
                wanted = groups.get(source)
            if wanted is None:
                yield Violation(
                    lock,
                    1,
                    "locks-fresh",
                    f"pyproject.toml has no dependency group or extra '{source}'",
                )
                continue
            for text in wanted:
                if not isinstance(text, str):
                    continue
                try:
                    requirement = Requirement(text)
                except InvalidRequirement as exc:
                    yield Violation(
                        "pyproject.toml",
                        repo.line_of("pyproject.toml", text),
                        "locks-fresh",
                        str(exc),
                    )
                    continue
                versions = pinned.get(normalize(requirement.name), [])
                line = repo.line_of("pyproject.toml", text)
                if not versions:
                    yield Violation(
                        "pyproject.toml",
                        line,
                        "locks-fresh",
                        f"'{requirement.name}' is not in {lock}: "
                        "run `nox -s lock` and commit the locks",
                    )
                elif not any(requirement.specifier.contains(v, prereleases=True) for v in versions):
                    yield Violation(
                        "pyproject.toml",
                        line,
                        "locks-fresh",
                        f"{lock} pins {requirement.name}=={', '.join(versions)}, outside '{text}': "
                        "run `nox -s lock`",
                    )
    for path in sorted((repo.root / "requirements").glob("*.txt")):
        relative = path.relative_to(repo.root).as_posix()
        if relative not in {lock.path for lock in repo.locks}:
            yield Violation(relative, 1, "locks-fresh", "not produced by `nox -s lock`; remove it")


def check_locks_agree(repo: Repo) -> Iterator[Violation]:
    """The runtime's and the extras' locks never pin one package at two versions."""
    paths = [lock.path for lock in installed_together(repo.locks)]
    if not all((repo.root / path).exists() for path in paths):
        return  # locks-fresh reports a missing lock
    pythons = python_versions(repo.pyproject)
    for lock, message in disagreements(repo.root, paths, pythons):
        yield Violation(lock, 1, "locks-agree", message)


def check_resolution(repo: Repo) -> Iterator[Violation]:
    """A full re-resolve (`--resolve`): the locks are exactly what `nox -s lock` would write now."""
    for lock, change in resolve_differences(repo.root, repo.locks).items():
        yield Violation(
            lock, 1, "locks-fresh", f"a fresh resolution differs ({change}): run `nox -s lock`"
        )


def check(root: Path, lister: Lister | None = None, *, resolve: bool = False) -> list[Violation]:
    """Run every rule on the repository at ``root``; ``resolve`` also re-resolves (network)."""
    repo = Repo.read(root)
    lister = lister or nox_list
    selected = _select(repo, lister)
    violations = [
        *check_workflow_runs_only_nox(repo),
        *check_sessions_exist(repo, selected),
        *check_python_matrix(repo),
        *check_makefile_only_nox(repo),
        *check_tool_pins(repo),
        *check_locks_fresh(repo),
        *check_locks_agree(repo),
        *check_flags_agree(repo, lister, selected),
        *(check_resolution(repo) if resolve else []),
    ]
    return sorted(set(violations), key=lambda v: (v.file, v.line, v.rule, v.message))


def section(violations: list[Violation]) -> Section:
    """The parity report section: every rule and whether it held."""
    verdict = "passed" if not violations else f"{len(violations)} violation(s)"
    return Section(
        f"Parity: {verdict}",
        header=("rule", "checks that", "result"),
        rows=tuple(map(tuple, summary_rows(violations))),
        headline=f"parity: {len(RULES)} rules checked, {verdict}",
    )


def summary_rows(violations: list[Violation]) -> list[list[str]]:
    """One row per rule: what it checks and how many violations it found."""
    counts = dict.fromkeys(RULES, 0)
    for violation in violations:
        counts[violation.rule] += 1
    return [
        [rule, text, "pass" if not counts[rule] else f"{counts[rule]} violation(s)"]
        for rule, text in RULES.items()
    ]
