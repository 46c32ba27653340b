from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from mlci import _io as files
from mlci.errors import MlciError


def test_atomic_write_replaces_content_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    files.atomic_write_json(target, {"b": 1, "a": [1, 2]})
    files.atomic_write_json(target, {"c": 3})
    assert json.loads(target.read_text()) == {"c": 3}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.txt"
    files.atomic_write_text(target, "old")

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert files.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert files.sha256_bytes(data) == hashlib.sha256(data).hexdigest()


def test_read_json_names_the_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  oops\n}')
    with pytest.raises(MlciError, match=r"bad\.json:3:3: lineage is not valid JSON"):
        files.read_json(path, "lineage")
    with pytest.raises(MlciError, match=r"missing\.json: lineage not found"):
        files.read_json(tmp_path / "missing.json", "lineage")


def test_canonical_json_is_order_independent() -> None:
    assert files.canonical_json({"a": 1, "b": 2}) == files.canonical_json({"b": 2, "a": 1})


def test_atomic_writes_honour_the_umask(tmp_path: Path) -> None:
    """A registry shared by a team: its index must be as readable as any file open() creates."""
    previous = os.umask(0o022)
    try:
        files.atomic_write_text(tmp_path / "index.json", "{}")
        (tmp_path / "plain.json").write_text("{}")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "index.json").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.json").stat().st_mode) == 0o644


def test_a_lock_that_cannot_be_had_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Windows, msvcrt gives up after its retries with a bare OSError."""

    def busy(fd: int) -> None:
        raise OSError(36, "Resource deadlock avoided")

    monkeypatch.setattr(files, "_lock", busy)
    lock = files.locked(tmp_path / ".lock", "the registry")
    with pytest.raises(MlciError, match=r"\.lock: the registry is locked by another process"):
        lock.__enter__()


def test_utc_now_is_iso_8601_in_utc() -> None:
    assert files.utc_now().endswith("+00:00")
    assert len(files.utc_now("milliseconds").split(".")[1]) == len("123+00:00")
