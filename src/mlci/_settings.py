"""Reading ``[tool.mlci]``: the TOML file and typed fields whose errors name the file and key.

Each concern parses its own part of the table (the pipeline its settings, delivery the registry and
drift, serving the server's), so that a change to one never touches another's code.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlci.errors import MlciError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9 and 3.10 only
    import tomli as tomllib

__all__ = ["PYPROJECT", "get", "number", "read_toml", "reject_unknown", "tomllib"]

PYPROJECT = "pyproject.toml"
_MISSING: Any = object()
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    dict: "a table",
    list: "a list",
    bool: "true or false",
}
T = TypeVar("T")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed one is an error that names it."""
    try:
        with path.open("rb") as stream:
            document: dict[str, Any] = tomllib.load(stream)
            return document
    except FileNotFoundError:
        raise MlciError(f"{path}: not found; run mlci from the project folder") from None
    except tomllib.TOMLDecodeError as exc:
        raise MlciError(f"{path}: invalid TOML: {exc}") from None


def get(table: dict[str, Any], key: str, kind: type[T], where: str, default: Any = _MISSING) -> T:
    """Fetch ``key`` and check its type; a missing required key names the table it belongs in."""
    if key not in table:
        if default is _MISSING:
            raise MlciError(f"{where}: missing required key '{key}'")
        return default  # type: ignore[no-any-return]  # the caller's default has the caller's type
    value = table[key]
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        raise MlciError(f"{where} {key}: must be {_TYPE_NAMES[kind]}, got {value!r}")
    return float(value) if kind is float else value  # type: ignore[return-value]  # checked above


def number(value: Any, where: str) -> float:
    """A TOML number (not a boolean) as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MlciError(f"{where}: must be a number, got {value!r}")
    return float(value)


def reject_unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    """Refuse keys a table does not define, listing the ones it does."""
    unknown = sorted(set(table) - known)
    if unknown:
        raise MlciError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
        )


D = TypeVar("D")


def section_settings(
    cls: type[D],
    sections: dict[str, Any],
    name: str,
    pyproject: Path,
    rule: Callable[[str, Any], str],
) -> D:
    """``[tool.mlci.<name>]`` as ``cls``; ``rule(field, value)`` names a problem, or is empty."""
    where = f"{pyproject}: [tool.mlci.{name}]"
    settings = dataclass_from_table(cls, sections.get(name, {}), where)
    for field in dataclasses.fields(settings):  # type: ignore[arg-type]  # D is a dataclass
        value = getattr(settings, field.name)
        problem = rule(field.name, value)
        if problem:
            raise MlciError(f"{where} {field.name}: {problem}, got {value}")
    return settings


def dataclass_from_table(cls: type[D], table: Any, where: str) -> D:
    """Build a settings dataclass whose fields all have defaults, type-checking each key."""
    if not isinstance(table, dict):
        raise MlciError(f"{where}: must be a table")
    # D is bound to the settings dataclasses only; mypy cannot know that a TypeVar is one.
    fields = {field.name: field for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    reject_unknown(table, set(fields), where)
    values = {key: get(table, key, type(fields[key].default), where) for key in table}
    return cls(**values)
