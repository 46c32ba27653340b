"""`mlci update`: the files mlci owns, re-rendered at the installed version, never merged by hand.

A file whose SHA-256 still matches the manifest was never edited: it is replaced. An edited one
is left alone and the new text goes beside it (`<file>.mlci-new`), listed, exit status 1; no
conflict marker is ever written into a file. Files outside the manifest are the project's.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from mlci import __version__
from mlci.errors import MlciError
from mlci.project._files import MANIFEST, Manifest, read_manifest, sha256, write_all
from mlci.project._render import owned

SIDECAR = ".mlci-new"


@dataclasses.dataclass(frozen=True)
class Update:
    """What an update replaces, leaves beside an edited file, and records."""

    replaced: tuple[str, ...]
    sidecars: tuple[str, ...]  # the edited files; the new text is at <path>.mlci-new
    manifest: Manifest
    previous: Manifest

    @property
    def changes(self) -> bool:
        """Whether anything would be written (what `--check` fails on)."""
        return bool(self.replaced or self.sidecars) or self.manifest != self.previous


def _version(text: str) -> tuple[int, ...]:
    """A version's leading numbers, for "newer than" (`0.3.0rc1` reads as 0.3.0)."""
    parts = []
    for part in text.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits[0]))
        if digits.end() != len(part):
            break
    return tuple(parts)


def plan(root: Path) -> tuple[Update, dict[str, bytes]]:
    """What `mlci update` would do in ``root``, and the files it would write."""
    previous = read_manifest(root)
    if _version(previous.version) > _version(__version__):
        raise MlciError(
            f"{MANIFEST}: this project was made by mlci {previous.version}, newer than the "
            f"installed mlci {__version__}: install mlci {previous.version} (its tools lock pins "
            "it: `make` installs it into .tools/) and run `.tools/bin/mlci update`"
        )
    files: dict[str, bytes] = {}
    recorded: dict[str, str] = {}
    replaced, sidecars = [], []
    for path, text in owned().items():
        new = text.encode()
        target = root / path
        current = target.read_bytes() if target.exists() else None
        if current is None and path in previous.files:
            continue  # deleted on purpose: the project's choice, and no longer recorded
        if current == new:
            recorded[path] = sha256(new)
        elif current is None or sha256(current) == previous.files.get(path):
            files[path] = new  # never edited, or new in this version: written
            recorded[path] = sha256(new)
            replaced.append(path)
        else:
            files[path + SIDECAR] = new  # edited: kept, the new text beside it
            if path in previous.files:
                recorded[path] = previous.files[path]
            sidecars.append(path)
    manifest = Manifest(__version__, recorded)
    update = Update(tuple(replaced), tuple(sidecars), manifest, previous)
    if update.changes:
        files[MANIFEST] = manifest.text().encode()
    return update, files


def update(root: Path, *, check: bool = False) -> Update:
    """Update the owned files (all or nothing); with ``check``, only say what would change."""
    found, files = plan(root)
    if not check and files:
        write_all(root, files)
    return found
