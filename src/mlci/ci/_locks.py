"""The lock files: what each is compiled from and how, in one place for `lock` and `parity`."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlci._settings import read_toml
from mlci.errors import MlciError

COMPILE = ["uv", "pip", "compile", "--quiet", "--universal", "--generate-hashes", "--no-annotate"]
COMPILE_COMMAND = "nox -s lock"
TOOLS_PYTHON = "3.10"  # nox itself needs >= 3.10
EXTRA = "extra:"  # a lock input naming one of the project's optional dependencies
CI_EXTRA = "ci"  # the parity session's extra, locked with nox itself (`python -m nox --list`)


@dataclasses.dataclass(frozen=True)
class Lock:
    """One lock file: its pyproject inputs, the lowest Python it serves, an optional constraint."""

    path: str
    inputs: tuple[str, ...]
    python: str
    constraint: str | None = None
    together: bool = False  # installed beside the runtime's lock by the model's sessions

    def command(self, output: Path, find_links: str | None = None) -> list[str]:
        """The `uv pip compile` call that writes this lock to ``output``."""
        args = [
            *COMPILE,
            "--custom-compile-command",
            COMPILE_COMMAND,
            "--python-version",
            self.python,
        ]
        if "project" in self.inputs:
            args.append("pyproject.toml")
            for source in self.inputs:
                if source.startswith(EXTRA):
                    args += ["--extra", source[len(EXTRA) :]]
                elif source != "project":
                    args += ["--group", source]
        else:
            args += [arg for group in self.inputs for arg in ("--group", f"pyproject.toml:{group}")]
        if self.constraint:
            args += ["--constraint", self.constraint]
        if find_links:
            # A folder holding a wheel not yet on the index (mlci's own, before it is published);
            # the lock records its name, version and hash, never the folder.
            args += ["--find-links", find_links]
        return [*args, "-o", str(output)]


# The matrix of a project whose pyproject.toml has no trove classifiers (as `mlci init` writes it).
PYTHONS = ("3.9", "3.10", "3.11", "3.12")
MLCI_GROUP = "mlci"  # a project's pin of mlci, included by its other groups, never locked alone


def python_versions(pyproject: dict[str, Any]) -> list[str]:
    """The Python matrix from the trove classifiers, oldest first (as nox.project reads it)."""
    prefix = "Programming Language :: Python :: 3."
    classifiers = pyproject.get("project", {}).get("classifiers", [])
    versions = [c.rsplit(" ", 1)[-1] for c in classifiers if c.startswith(prefix)]
    return sorted(versions, key=lambda version: int(version.split(".")[1])) or list(PYTHONS)


def group_locks(pyproject: dict[str, Any], default_python: str) -> list[Lock]:
    """A project made by `mlci init`: one lock per dependency group, `main` first.

    `test` and the extras' groups take their pins from `main`, so that the locks a session
    installs together agree; `ci` and `tools` hold nox, which needs Python 3.10. A project that
    is a package with dependencies of its own has them in every lock its code is installed with.
    """
    floor = python_versions(pyproject)[0]
    own = ("project",) if pyproject.get("project", {}).get("dependencies") else ()
    main = "requirements/main.txt"
    found = [Lock(main, (*own, "main"), floor, together=True)]
    for name in pyproject.get("dependency-groups", {}):
        path = f"requirements/{name}.txt"
        if name in (MLCI_GROUP, "main"):
            continue
        if name in ("tools", CI_EXTRA):
            found.append(Lock(path, (name,), TOOLS_PYTHON, None if name == "tools" else main))
        elif name == "lint":
            found.append(Lock(path, (name,), default_python, main))
        else:
            found.append(Lock(path, (*own, name), floor, main, together=name != "test"))
    return found


def locks(pyproject: dict[str, Any], default_python: str) -> list[Lock]:
    """Every lock, in the order they must be compiled (main before the locks it constrains)."""
    if "main" in pyproject.get("dependency-groups", {}):
        return group_locks(pyproject, default_python)
    floor = python_versions(pyproject)[0]
    optional = pyproject.get("project", {}).get("optional-dependencies", {})
    extras = tuple(f"{EXTRA}{name}" for name in optional)
    main = "requirements/main.txt"
    joint = "requirements/test.txt"  # every extra and the tests, resolved together
    found = [
        Lock(main, ("project",), floor, together=True),
        Lock(joint, ("project", *extras, "test"), floor, main),
    ]
    # One lock per extra, so that a session needing it (serve, skops, parity) installs the runtime
    # and that extra alone. Each takes its pins from the joint resolution: the model sessions
    # install several at once (a registry's, tracking's, the pictures'), and two extras resolved
    # apart could pin one package at two versions (python-dateutil, once).
    for name in optional:
        if name == CI_EXTRA:
            inputs: tuple[str, ...] = ("project", f"{EXTRA}{name}", "tools")
            found.append(Lock(f"requirements/{name}.txt", inputs, TOOLS_PYTHON, main))
        else:
            found.append(
                Lock(
                    f"requirements/{name}.txt",
                    ("project", f"{EXTRA}{name}"),
                    floor,
                    joint,
                    together=True,
                )
            )
    return [
        *found,
        Lock("requirements/lint.txt", ("lint",), default_python),
        Lock(
            "requirements/typecheck.txt",
            ("project", *extras, "test", "tools", "typecheck"),
            TOOLS_PYTHON,  # mypy needs 3.10; from there, the markers cover every Python it checks
            main,
        ),
        Lock("requirements/tools.txt", ("tools",), TOOLS_PYTHON),
        # `nox -s build`: the build backend, for `uv build --build-constraints --require-hashes`.
        *(
            [Lock("requirements/build.txt", ("build",), floor)]  # builds on any of them
            if "build" in pyproject.get("dependency-groups", {})
            else []
        ),
        *(
            # The integration session: the project, its tests, and the server they talk to.
            Lock(f"requirements/{name}.txt", ("project", *extras, "test", name), TOOLS_PYTHON, main)
            for name in pyproject.get("dependency-groups", {})
            if name.endswith("-server")
        ),
    ]


def default_python(root: Path) -> str:
    """The single-interpreter sessions' Python (`.python-version`)."""
    path = root / ".python-version"
    return path.read_text(encoding="utf-8").strip() if path.exists() else "3.11"


def project_locks(root: Path) -> list[Lock]:
    """The lock files of the project at ``root``, from its pyproject.toml."""
    return locks(read_toml(root / "pyproject.toml"), default_python(root))


def compile_all(
    root: Path, all_locks: list[Lock], *, upgrade: bool = False, find_links: str | None = None
) -> None:
    """Regenerate every lock file in place."""
    for lock in all_locks:
        command = lock.command(root / lock.path, find_links)
        _run([*command, *(["--upgrade"] if upgrade else [])], root)


def pins(path: Path) -> dict[str, list[str]]:
    """name -> pinned versions (one per marker split) of a lock file."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            found.setdefault(normalize(match[1]), []).append(match[2])
    return found


# The platforms a lock's markers are read for: CI's, and the developers' laptops.
PLATFORMS = (
    {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
    {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64"},
    {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
    {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64"},
)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def installed_together(all_locks: list[Lock]) -> list[Lock]:
    """The locks a session may install side by side: the runtime's and each extra's but ci's."""
    return [lock for lock in all_locks if lock.together]


def disagreements(root: Path, paths: list[str], pythons: list[str]) -> list[tuple[str, str]]:
    """(lock, message) for every package two of ``paths`` pin at different versions for one
    Python and platform: installed together, those locks are unsatisfiable there."""
    from packaging.markers import Marker

    found: dict[str, list[tuple[str, str, Marker | None]]] = {}
    for path in paths:
        for line in (root / path).read_text(encoding="utf-8").splitlines():
            match = _PIN.match(line)
            if match:
                marker = Marker(match[3]) if match[3] else None
                found.setdefault(normalize(match[1]), []).append((path, match[2], marker))
    problems: dict[tuple[str, str], str] = {}
    for python in pythons:
        for platform in PLATFORMS:
            environment = {
                **platform,
                "python_version": python,
                "python_full_version": f"{python}.0",
                "implementation_name": "cpython",
                "platform_python_implementation": "CPython",
                "os_name": "nt" if platform["sys_platform"] == "win32" else "posix",
            }
            for name, entries in found.items():
                chosen = {
                    (path, version)
                    for path, version, marker in entries
                    if marker is None or marker.evaluate(environment)
                }
                if len({version for _, version in chosen}) > 1:
                    shown = ", ".join(f"{version} in {path}" for path, version in sorted(chosen))
                    first = min(path for path, _ in chosen)
                    problems.setdefault(
                        (first, name),
                        f"{name} is pinned at {shown} on Python {python} "
                        f"({platform['sys_platform']}): sessions install these together; "
                        "run `nox -s lock`",
                    )
    return [(path, message) for (path, _), message in sorted(problems.items())]


def normalize(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve_differences(
    root: Path, all_locks: list[Lock], *, upgrade: bool = False
) -> dict[str, str]:
    """Re-resolve every lock into a temp dir, keeping its current pins where they still fit.

    With ``upgrade``, every pin moves to the newest version ``pyproject.toml`` allows: what is
    outdated. Returns lock path -> what the resolution changes (only the locks it changes).
    """
    changes = {}
    with tempfile.TemporaryDirectory(prefix="mlci-locks-") as tmp:
        for lock in all_locks:
            if not (root / lock.path).exists():
                continue  # the locks-fresh rule reports a missing lock
            output = Path(tmp) / lock.path
            output.parent.mkdir(parents=True, exist_ok=True)
            # uv keeps the pins of an existing output file, like `nox -s lock` without --upgrade.
            output.write_bytes((root / lock.path).read_bytes())
            command = lock.command(output)
            if lock.constraint:
                command[command.index(lock.constraint)] = str(Path(tmp) / lock.constraint)
            _run([*command, *(["--upgrade"] if upgrade else [])], root)
            old, new = pins(root / lock.path), pins(output)
            moved = sorted(
                f"{name} {','.join(old.get(name, ['-']))} -> {','.join(new.get(name, ['-']))}"
                for name in set(old) | set(new)
                if sorted(old.get(name, [])) != sorted(new.get(name, []))
            )
            if moved:
                changes[lock.path] = "; ".join(moved)
    return changes


def _uv() -> str:
    """uv from this interpreter's environment (where the tools lock installs it), else PATH."""
    return shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"


def _run(command: list[str], root: Path) -> None:
    if command[0] == "uv":
        command = [_uv(), *command[1:]]
    try:
        result = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise MlciError("uv: not installed; run this through nox (`nox -s lock`)") from None
    if result.returncode != 0:
        raise MlciError(f"uv pip compile failed:\n{result.stderr.strip()}")
