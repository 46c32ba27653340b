"""`mlci init`: a new project, an existing repository, refusals, the dry run, the merge."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import iris_csv

from mlci import __version__, project
from mlci._settings import tomllib
from mlci.cli import main
from mlci.project._files import sha256

OWNED = sorted(project.OWNED)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and its bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_init_writes_a_new_project_and_records_each_owned_files_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "new"
    assert main(["init", str(root), "--no-lock"]) == 0
    files = tree(root)
    for path in [*OWNED, "tests/model/test_model.py", ".gitignore", "pyproject.toml"]:
        assert path in files, path
    # The Iris sample: its data, the manifest and checks `mlci data init` would write.
    assert files["data/iris.csv"].decode() == iris_csv()
    assert b'"target": "species"' in files["data/iris.manifest.json"]
    assert b"[[examples]]" in files["data/iris.checks.toml"]
    manifest = json.loads(files[".mlci/manifest.json"])
    assert manifest["mlci"] == __version__
    assert manifest["files"] == {path: sha256(files[path]) for path in OWNED}
    pyproject = tomllib.loads(files["pyproject.toml"].decode())
    assert pyproject["tool"]["mlci"]["data"] == "data/iris.csv"
    assert pyproject["dependency-groups"]["mlci"] == [f"mlci=={__version__}"]
    assert (root / "noxfile.py").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert "make baseline" in capsys.readouterr().out


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_init_with_data_points_the_config_at_it(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "flowers.csv").write_text(iris_csv())
    assert (
        main(
            [
                "-C",
                str(tmp_path),
                "init",
                str(tmp_path),
                "--no-lock",
                "--data",
                str(tmp_path / "data" / "flowers.csv"),
                "--target",
                "species",
            ]
        )
        == 0
    )
    config = tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["mlci"]
    assert config["data"] == "data/flowers.csv"
    assert config["manifest"] == "data/flowers.manifest.json"
    assert config["target"] == "species"
    assert (tmp_path / "data" / "flowers.manifest.json").is_file()
    assert (tmp_path / "data" / "flowers.checks.toml").is_file()
    assert not (tmp_path / "data" / "iris.csv").exists()
    groups = tomllib.loads((tmp_path / "pyproject.toml").read_text())["dependency-groups"]
    assert "mlci[plots]" in groups["main"]  # CSV data: no pyarrow


def test_init_with_parquet_data_installs_pyarrow_where_the_data_is_read(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import csv
    import io

    import pyarrow as pa

    rows = list(csv.DictReader(io.StringIO(iris_csv())))
    table = pa.table({name: [row[name] for row in rows] for name in rows[0]})
    table = table.set_column(0, "sepal_length", pa.array([float(r["sepal_length"]) for r in rows]))
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "flowers.parquet")
    args = ["-C", str(tmp_path), "init", str(tmp_path), "--no-lock", "--data"]
    assert main([*args, str(tmp_path / "data" / "flowers.parquet"), "--target", "species"]) == 0
    groups = tomllib.loads((tmp_path / "pyproject.toml").read_text())["dependency-groups"]
    assert "mlci[plots,parquet]" in groups["main"]
    manifest = json.loads((tmp_path / "data" / "flowers.manifest.json").read_text())
    assert manifest["file"] == "flowers.parquet"
    assert manifest["columns"][0]["kind"] == "numeric"


def test_the_generated_project_loads_trains_and_passes_its_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path), "--no-lock"]) == 0
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "main.txt").write_text("scikit-learn==0\n")
    with (tmp_path / "pyproject.toml").open("a") as stream:
        stream.write("\n[tool.mlci.report]\npictures = false\n")  # the suite's time
    monkeypatch.chdir(tmp_path)
    assert main(["train"]) == 0
    assert main(["gate"]) == 0
    assert main(["check", "--no-retrain"]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "data/x.csv"], "--data and --target go together"),
        (["--target", "y"], "--data and --target go together"),
        (["--data", "/elsewhere/x.csv", "--target", "y"], "must be inside the project"),
        (["--data", "data/missing.csv", "--target", "y"], "data/missing.csv: data file not found"),
    ],
)
def test_bad_data_options_are_named_and_nothing_is_written(
    tmp_path: Path,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", ".", "--no-lock", *args]) == 2
    assert message in capsys.readouterr().err
    assert tree(tmp_path) == {}


def existing_repository(root: Path) -> dict[str, bytes]:
    """A repository with a noxfile, a Makefile and a commented pyproject.toml of its own."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "noxfile.py").write_text("# ours\n")
    (root / "Makefile").write_text("all:\n\techo ours\n")
    (root / ".gitignore").write_text("/ours/\n")
    (root / "pyproject.toml").write_text(
        "# The team's project.\n"
        "[project]\n"
        'name = "acme"   # keep this comment\n'
        'version = "1.0"\n'
        "\n"
        "[dependency-groups]\n"
        'test = ["pytest==8.0.0"]  # ours\n'
        "\n"
        "[tool.ruff]\n"
        "line-length = 88\n"
    )
    return tree(root)


def test_init_refuses_to_overwrite_lists_every_file_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = existing_repository(tmp_path)
    assert main(["init", str(tmp_path), "--no-lock"]) == 2
    err = capsys.readouterr().err
    assert "would overwrite 2 file(s)" in err
    assert "  Makefile\n" in err
    assert "  noxfile.py\n" in err
    assert ".gitignore" not in err  # a repository's own .gitignore is kept, not a conflict
    assert tree(tmp_path) == before


def test_dry_run_prints_the_plan_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = existing_repository(tmp_path)
    assert main(["init", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "overwrite noxfile.py" in out
    assert "write .github/workflows/ci.yml" in out
    assert "merge pyproject.toml: add [dependency-groups.mlci]" in out
    assert "keep pyproject.toml's [dependency-groups.test] as it is" in out
    assert "keep pyproject.toml's [tool.ruff] as it is" in out
    assert "keep .gitignore as it is" in out
    assert "resolve requirements/*.txt" in out
    assert "2 file(s) exist" in out
    assert tree(tmp_path) == before


def test_force_merges_pyproject_keeping_the_users_text_and_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = existing_repository(tmp_path)
    assert main(["init", str(tmp_path), "--no-lock", "--force"]) == 0
    # The kept group is the project's; init says what mlci's sessions expect it to hold.
    assert (
        "kept your [dependency-groups.test] as it is; mlci's sessions expect it to hold "
        'what `test = [{ include-group = "main" }' in capsys.readouterr().err
    )
    text = (tmp_path / "pyproject.toml").read_text()
    old = before["pyproject.toml"].decode()
    # Every line the user wrote is still there, in order, comments included.
    lines = iter(text.splitlines())
    assert all(line in lines for line in old.splitlines())
    merged = tomllib.loads(text)
    assert merged["project"]["name"] == "acme"
    assert merged["dependency-groups"]["test"] == ["pytest==8.0.0"]  # theirs, not replaced
    assert merged["dependency-groups"]["mlci"] == [f"mlci=={__version__}"]
    assert merged["tool"]["ruff"] == {"line-length": 88}
    assert merged["tool"]["mlci"]["target"] == "species"
    assert (tmp_path / ".gitignore").read_text() == "/ours/\n"
    assert (tmp_path / "noxfile.py").read_text() == project.owned()["noxfile.py"]


def test_data_given_with_an_existing_mlci_table_says_the_table_was_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.mlci]\ndata = "old.csv"\ntarget = "t"\n')
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "flowers.csv").write_text(iris_csv())
    monkeypatch.chdir(tmp_path)
    args = ["init", ".", "--no-lock", "--data", "data/flowers.csv", "--target", "species"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "kept your [tool.mlci] as it is; point its data, manifest and target at" in err
    assert "data/flowers.csv yourself" in err
    assert (tmp_path / "data" / "flowers.manifest.json").is_file()


def test_an_existing_mlci_table_is_kept(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.mlci]\ndata = "d.csv"\ntarget = "t"\n')
    plan = project.plan_init(tmp_path, project.IRIS)
    assert "tool.mlci" in plan.merged.kept
    assert tomllib.loads(plan.files["pyproject.toml"].decode())["tool"]["mlci"]["data"] == "d.csv"


def test_a_pyproject_that_is_not_toml_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\n")
    assert main(["init", str(tmp_path), "--no-lock"]) == 2
    assert "pyproject.toml: not valid TOML" in capsys.readouterr().err


def test_a_failure_halfway_leaves_the_tree_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = existing_repository(tmp_path)
    real = os.replace
    calls = []

    def failing(source: str | Path, target: str | Path) -> None:
        calls.append(target)
        if len(calls) == 9:  # well into the renames, after several files were replaced
            raise OSError(28, "No space left on device", str(target))
        real(source, target)

    monkeypatch.setattr(os, "replace", failing)
    assert main(["init", str(tmp_path), "--no-lock", "--force"]) == 2
    assert "No space left on device; nothing written" in capsys.readouterr().err
    assert len(calls) >= 9
    assert tree(tmp_path) == before


def test_init_resolves_the_locks_through_mlci_lock_with_find_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The locks are resolved (never copied), against a folder holding mlci's wheel."""
    from mlci import ci

    seen: list[tuple[list[str], str | None]] = []

    def compile_all(
        root: Path, locks: list[ci.Lock], *, upgrade: bool = False, find_links: str | None = None
    ) -> None:
        seen.append(([lock.path for lock in locks], find_links))
        for lock in locks:
            (root / lock.path).write_text(f"# {lock.path}\nmlci=={__version__}\n")

    monkeypatch.setattr(ci, "compile_all", compile_all)
    assert main(["init", str(tmp_path), "--find-links", "wheels"]) == 0
    paths, find_links = seen[0]
    assert find_links == "wheels"
    assert paths[0] == "requirements/main.txt"
    assert {"requirements/test.txt", "requirements/tools.txt", "requirements/lint.txt"} <= set(
        paths
    )
    for path in paths:
        assert (tmp_path / path).read_text().startswith(f"# {path}\n")
