"""mlci's tables merged into a pyproject.toml, the user's text kept byte for byte.

A table the file lacks is appended; a dependency group it lacks goes in right under its
`[dependency-groups]` header; a table or group it already has is the user's and stays as it is.
The result is parsed again, and must hold every table it was meant to: nothing else is edited,
so the user's comments, order and formatting survive (what tomlkit would give, with no parser
of our own to trust).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from mlci._settings import tomllib
from mlci.errors import MlciError

_HEADER = re.compile(r"(?m)^\[dependency-groups\][ \t]*(#[^\n]*)?\n")


@dataclasses.dataclass(frozen=True)
class Merged:
    """The new text, and what was added or left as the user had it."""

    text: str
    added: tuple[str, ...]
    kept: tuple[str, ...]


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        document: dict[str, Any] = tomllib.loads(text)
        return document
    except tomllib.TOMLDecodeError as exc:
        raise MlciError(f"{where}: not valid TOML: {exc}") from None


def _lookup(document: dict[str, Any], dotted: str) -> Any:
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _groups(fragment: str) -> list[tuple[str, str]]:
    """(name, line) of each group in a `[dependency-groups]` fragment, in order."""
    return [
        (line.split("=", 1)[0].strip(), line)
        for line in fragment.splitlines()
        if "=" in line and not line.lstrip().startswith(("#", "["))
    ]


def merge(existing: str | None, tables: dict[str, str], where: str = "pyproject.toml") -> Merged:
    """``existing`` (None: no file yet) with each of ``tables`` (dotted name -> TOML text)."""
    if existing is None:
        text = "\n".join(fragment.rstrip("\n") + "\n" for fragment in tables.values())
        return Merged(text, tuple(tables), ())
    document = _parse(existing, where)
    text, added, kept = existing, [], []
    for name, fragment in tables.items():
        present = _lookup(document, name)
        if name == "dependency-groups" and isinstance(present, dict):
            missing = [(group, line) for group, line in _groups(fragment) if group not in present]
            kept += [f"{name}.{group}" for group, _ in _groups(fragment) if group in present]
            if missing:
                header = _HEADER.search(text)
                if header is None:
                    raise MlciError(
                        f"{where}: [dependency-groups] is not a table of its own; "
                        "write it as a `[dependency-groups]` section"
                    )
                lines = "".join(line + "\n" for _, line in missing)
                text = text[: header.end()] + lines + text[header.end() :]
                added += [f"{name}.{group}" for group, _ in missing]
        elif present is not None:
            kept.append(name)
        else:
            text = text.rstrip("\n") + "\n\n" + fragment.rstrip("\n") + "\n"
            added.append(name)
    merged = _parse(text, f"{where} (merged)")
    for name in added:
        if _lookup(merged, name) is None:  # pragma: no cover - a bug here, never user input
            raise MlciError(f"{where}: merging {name} failed")
    return Merged(text, tuple(added), tuple(kept))
