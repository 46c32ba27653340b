"""`mlci update`: unedited files replaced, edited ones kept with a sidecar, newer refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlci import __version__, project
from mlci.cli import main
from mlci.project._files import sha256

OLD = "0.1.0"


def made_by_an_older_mlci(root: Path) -> None:
    """A project `mlci init` wrote, then rewritten as an older mlci would have left it."""
    assert main(["init", str(root), "--no-lock"]) == 0
    files = {}
    for path in ("noxfile.py", "Makefile"):
        old = f"# written by mlci {OLD}\n" + (root / path).read_text()
        (root / path).write_text(old)
        files[path] = sha256(old.encode())
    manifest = json.loads((root / project.MANIFEST).read_text())
    manifest["mlci"] = OLD
    manifest["files"].update(files)
    (root / project.MANIFEST).write_text(json.dumps(manifest))


def test_an_unedited_file_is_replaced_and_an_edited_one_kept_with_its_sidecar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made_by_an_older_mlci(tmp_path)
    edited = (tmp_path / "Makefile").read_text() + "deploy:\n\techo ours\n"
    (tmp_path / "Makefile").write_text(edited)
    user_files = {
        path: (tmp_path / path).read_bytes()
        for path in ("pyproject.toml", "tests/model/test_model.py", "data/iris.csv")
    }
    capsys.readouterr()
    assert main(["-C", str(tmp_path), "update"]) == 1
    out, err = capsys.readouterr()
    owned = project.owned()
    assert "replaced noxfile.py" in out
    assert (tmp_path / "noxfile.py").read_text() == owned["noxfile.py"]
    assert "Makefile: edited since mlci 0.1.0 wrote it" in err
    assert (tmp_path / "Makefile").read_text() == edited  # untouched, no conflict marker
    assert (tmp_path / "Makefile.mlci-new").read_text() == owned["Makefile"]
    for path, data in user_files.items():
        assert (tmp_path / path).read_bytes() == data
    manifest = json.loads((tmp_path / project.MANIFEST).read_text())
    assert manifest["mlci"] == __version__
    assert manifest["files"]["noxfile.py"] == sha256(owned["noxfile.py"].encode())
    # The edited file still reads as edited next time: its recorded hash is the old one.
    assert manifest["files"]["Makefile"] != sha256(edited.encode())
    assert main(["-C", str(tmp_path), "update", "--check"]) == 1


def test_check_exits_1_when_anything_would_change_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made_by_an_older_mlci(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert main(["-C", str(tmp_path), "update", "--check"]) == 1
    assert "would replace noxfile.py" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert main(["-C", str(tmp_path), "update"]) == 0
    assert main(["-C", str(tmp_path), "update", "--check"]) == 0
    assert f"up to date with mlci {__version__}" in capsys.readouterr().out


def test_a_sidecar_merged_by_hand_is_up_to_date(tmp_path: Path) -> None:
    made_by_an_older_mlci(tmp_path)
    (tmp_path / "Makefile").write_text("edited\n")
    assert main(["-C", str(tmp_path), "update"]) == 1
    sidecar = tmp_path / "Makefile.mlci-new"
    sidecar.replace(tmp_path / "Makefile")  # the user takes the new text
    assert main(["-C", str(tmp_path), "update"]) == 0  # records it: no sidecar, exit 0
    assert not sidecar.exists()
    assert main(["-C", str(tmp_path), "update", "--check"]) == 0


def test_a_project_made_by_a_newer_mlci_is_refused_naming_both_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path), "--no-lock"]) == 0
    manifest = json.loads((tmp_path / project.MANIFEST).read_text())
    manifest["mlci"] = "99.0.0"
    (tmp_path / project.MANIFEST).write_text(json.dumps(manifest))
    before = (tmp_path / "noxfile.py").read_bytes()
    assert main(["-C", str(tmp_path), "update"]) == 2
    err = capsys.readouterr().err
    assert f"made by mlci 99.0.0, newer than the installed mlci {__version__}" in err
    assert (tmp_path / "noxfile.py").read_bytes() == before


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "not found"), ("{", "cannot read it"), ('{"mlci": 1}', "expected {'mlci'")],
)
def test_a_missing_or_broken_manifest_is_named(
    tmp_path: Path, text: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if text is not None:
        (tmp_path / ".mlci").mkdir()
        (tmp_path / project.MANIFEST).write_text(text)
    assert main(["-C", str(tmp_path), "update"]) == 2
    assert f"{project.MANIFEST}: " in (err := capsys.readouterr().err)
    assert message in err


def test_a_deleted_owned_file_stays_deleted(tmp_path: Path) -> None:
    made_by_an_older_mlci(tmp_path)
    (tmp_path / ".github" / "workflows" / "delivery.yml").unlink()
    assert main(["-C", str(tmp_path), "update"]) == 0
    assert not (tmp_path / ".github" / "workflows" / "delivery.yml").exists()
    manifest = json.loads((tmp_path / project.MANIFEST).read_text())
    assert ".github/workflows/delivery.yml" not in manifest["files"]
