from __future__ import annotations

import hashlib
import json
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
