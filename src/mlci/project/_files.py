"""Writing a set of files all or nothing, and the manifest of the files mlci wrote."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

from mlci.errors import MlciError

MANIFEST = ".mlci/manifest.json"


def sha256(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclasses.dataclass(frozen=True)
class Manifest:
    """The mlci version that last wrote the project's owned files, and each file's SHA-256."""

    version: str
    files: dict[str, str]

    def text(self) -> str:
        """The manifest file's contents."""
        body = {"mlci": self.version, "files": dict(sorted(self.files.items()))}
        return json.dumps(body, indent=2) + "\n"


def read_manifest(root: Path) -> Manifest:
    """The project's manifest; an error naming the file when it is missing or malformed."""
    path = root / MANIFEST
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MlciError(
            f"{MANIFEST}: not found in {root}: this project was not made by `mlci init`"
        ) from None
    except (OSError, ValueError) as exc:
        raise MlciError(f"{MANIFEST}: cannot read it: {exc}") from None
    files = body.get("files") if isinstance(body, dict) else None
    version = body.get("mlci") if isinstance(body, dict) else None
    if not isinstance(version, str) or not isinstance(files, dict):
        raise MlciError(f"{MANIFEST}: expected {{'mlci': VERSION, 'files': {{PATH: SHA256}}}}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise MlciError(f"{MANIFEST}: 'files' must map paths to SHA-256 strings")
    return Manifest(version, files)


def _umask() -> int:
    """The process's umask (reading it means setting it: put it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_all(root: Path, files: dict[str, bytes]) -> None:
    """Write every file or none: each is staged beside its target, then all are renamed.

    A failure while staging removes the staged files; a failure while renaming puts back what
    the renames replaced and removes what they created, so the tree is as it was.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for relative, data in files.items():
            target = root / relative
            parent = target.parent
            parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".mlci", dir=parent)
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
            # mkstemp makes the file 0600: give it the mode the target has, or a new file's.
            mode = target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask()
            Path(name).chmod(mode)
            staged.append((Path(name), target))
    except OSError as exc:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        where = exc.filename or root
        raise MlciError(f"cannot write {where}: {exc.strerror}; nothing written") from None
    _commit(staged)


def _commit(staged: list[tuple[Path, Path]]) -> None:
    done: list[tuple[Path, Path | None]] = []  # (target, backup of what it replaced)
    try:
        for temp, target in staged:
            backup = None
            if target.exists():
                backup = target.with_name(f".{target.name}.mlci-backup")
                os.replace(target, backup)
            done.append((target, backup))
            os.replace(temp, target)
    except OSError as exc:
        for target, backup in reversed(done):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, target)
                else:
                    target.unlink(missing_ok=True)
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise MlciError(f"cannot write {exc.filename}: {exc.strerror}; nothing written") from None
    for _, backup in done:
        if backup is not None:
            backup.unlink(missing_ok=True)
