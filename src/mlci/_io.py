"""Atomic writes and hashing: a write that fails or is killed leaves the previous file intact."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlci.errors import MlciError

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hash a file in chunks so that memory stays bounded whatever its size."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hash bytes already in memory."""
    return hashlib.sha256(data).hexdigest()


def finite_float(value: object) -> float | None:
    """``value`` (a number or its text) as a finite float; None for NaN, infinity, booleans, text.

    The one number parser of data files, manifests and scoring requests: each caller words its
    own error, all of them accept and refuse the same values.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) < 2**1023 else None  # float() would overflow
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def canonical_json(value: Any) -> str:
    """Serialise with sorted keys and no spacing, so equal values hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write through a temp file in the same folder, fsync it, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        # mkstemp creates 0600; give the file the mode open() would, so that a registry folder
        # shared by a team stays readable by the group the umask allows.
        tmp.chmod(0o666 & ~_umask())
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def utc_now(timespec: str = "seconds") -> str:
    """The current UTC time in ISO 8601, for lineage, registry history and logs."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec=timespec)


@contextlib.contextmanager
def locked(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for one writer at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        try:
            _lock(handle.fileno())
        except OSError as exc:  # Windows gives up after ten one-second retries
            raise MlciError(
                f"{path}: {what} is locked by another process ({exc.strerror or exc}); "
                "try again when it has finished"
            ) from None
        try:
            yield
        finally:
            _unlock(handle.fileno())


try:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # pragma: no cover - Windows
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined,unused-ignore]  # Windows only

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined,unused-ignore]  # Windows only


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: Any, *, sort_keys: bool = True) -> None:
    """Write indented JSON atomically, ending with a newline."""
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=sort_keys) + "\n")


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file, turning a missing or malformed file into an error that names it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MlciError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise MlciError(f"{path}: cannot read {what}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MlciError(
            f"{path}:{exc.lineno}:{exc.colno}: {what} is not valid JSON: {exc.msg}"
        ) from None
