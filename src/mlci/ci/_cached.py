"""`mlci cached`: skip a command that already passed on exactly these inputs, as DVC skips a stage.

The key covers every file of the work tree that git does not ignore (tracked or not), the
interpreter, the command line and the environment variables it names. A hit needs a record of
a successful run with that key and every declared output still present with its recorded hash.
CI starts from a clean checkout, so it always runs; ``MLCI_NO_CACHE=1`` forces a run locally.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlci._io import atomic_write_json, canonical_json, read_json, sha256_file

NO_CACHE = "MLCI_NO_CACHE"
FOLDER = ".cache"  # inside the artifacts folder, so `nox -s clean` clears it


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Whether the command ran, and its exit code (0 for a hit)."""

    ran: bool
    returncode: int
    reason: str


def tree_hash(root: Path, exclude: Sequence[Path] = ()) -> str | None:
    """SHA-256 over the path and content of every file git does not ignore; None outside git."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    skip = {path.resolve() for path in exclude}
    digest = hashlib.sha256()
    for name in sorted(set(filter(None, listed.decode("utf-8", "surrogateescape").split("\0")))):
        path = root / name
        if path.resolve() in skip or not path.is_file():
            continue  # a deleted-but-tracked file counts by its absence
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(sha256_file(path).encode() + b"\0")
    return digest.hexdigest()


def key(
    root: Path, command: Sequence[str], env: Sequence[str], outputs: Sequence[Path]
) -> str | None:
    """The cache key of a command, or None when the tree cannot be hashed."""
    tree = tree_hash(root, outputs)
    if tree is None:
        return None
    inputs: dict[str, Any] = {
        "tree": tree,
        "python": [sys.version, sys.prefix],
        "command": list(command),
        "env": {name: os.environ.get(name) for name in env},
    }
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()


def run(
    root: Path,
    artifacts: Path,
    name: str,
    command: Sequence[str],
    *,
    outputs: Sequence[Path] = (),
    env: Sequence[str] = (),
) -> Outcome:
    """Run ``command`` unless a successful run with the same key and intact outputs is on record."""
    record_path = artifacts / FOLDER / f"{name}.json"
    outputs = [root / path for path in outputs]
    current = key(root, command, env, outputs)
    reason = _miss(record_path, current, root)
    if not reason:
        return Outcome(False, 0, "")
    print(f"mlci: {name}: running ({reason})", flush=True)
    started = time.monotonic()
    try:
        returncode = subprocess.run(list(command), cwd=root, check=False).returncode
    except FileNotFoundError:
        print(f"mlci: cached: {command[0]}: command not found", file=sys.stderr)
        return Outcome(True, 127, reason)
    if returncode != 0 or current is None:
        record_path.unlink(missing_ok=True)
        return Outcome(True, returncode, reason)
    atomic_write_json(
        record_path,
        {
            "key": current,
            "command": list(command),
            "outputs": {
                path.relative_to(root).as_posix(): sha256_file(path)
                for path in outputs
                if path.is_file()
            },
            "seconds": round(time.monotonic() - started, 3),
            "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
        },
    )
    return Outcome(True, 0, reason)


def _miss(record_path: Path, current: str | None, root: Path) -> str:
    """Why the command must run, or "" for a hit."""
    if os.environ.get(NO_CACHE):
        return f"{NO_CACHE} is set"
    if current is None:
        return "not a git work tree: nothing to key the cache on"
    if not record_path.exists():
        return "no successful run on record"
    try:
        record = read_json(record_path, "cache record")
    except Exception:  # a damaged record is just a miss
        return "the cache record is unreadable"
    if not isinstance(record, dict) or record.get("key") != current:
        return "inputs changed since the last successful run"
    for path, sha in record.get("outputs", {}).items():
        if not (root / path).is_file() or sha256_file(root / path) != sha:
            return f"output {path} is missing or modified"
    return ""
