from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import damage

from mlci.cli import main
from mlci.delivery import Registry
from mlci.pipeline import TrainResult


def run(project: Path, *args: str) -> int:
    return main(["-C", str(project), *args])


def test_end_to_end_validate_train_status_predict(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(project, "data", "validate") == 0
    assert "data/iris.csv: OK, 150 rows" in capsys.readouterr().out

    assert run(project, "status") == 1
    assert "stale: no complete training run" in capsys.readouterr().out

    assert run(project, "train") == 0
    out = capsys.readouterr().out
    assert "trained RandomForestClassifier on 150 rows" in out
    assert "accuracy" in out
    assert "artifacts/model.joblib" in out

    assert run(project, "train") == 0
    assert capsys.readouterr().out.startswith("up to date")
    assert run(project, "status") == 0
    assert capsys.readouterr().out.startswith("up to date (stage key ")

    rows = project / "rows.csv"
    rows.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.0,3.4,1.5,0.2\n")
    assert run(project, "predict", str(rows)) == 0
    assert capsys.readouterr().out == "setosa\n"
    assert run(project, "predict", str(rows), "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"predictions": ["setosa"]}

    with rows.open() as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        assert run(project, "predict") == 0
    assert capsys.readouterr().out == "setosa\n"


def test_invalid_data_exits_2_with_every_problem(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "data" / "iris.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("setosa", "rose")
    lines[5] = "x" + lines[5]
    path.write_text("\n".join(lines) + "\n")
    assert run(project, "data", "validate") == 2
    err = capsys.readouterr().err
    assert "data/iris.csv:4:5: species: unknown label 'rose'" in err
    assert "data/iris.csv:6:1: sepal_length: not a number" in err
    assert "data/iris.csv: 3 problems" in err  # two cells and the hash
    assert "Traceback" not in err

    assert run(project, "train") == 2
    assert "refusing to train on invalid data" in capsys.readouterr().err


def test_accept_then_validate(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "data" / "iris.csv"
    path.write_text(path.read_text() + "5.0,3.0,1.5,0.2,setosa\n")
    assert run(project, "data", "validate") == 2
    assert run(project, "data", "accept") == 0
    assert "(151 rows" in capsys.readouterr().out
    assert run(project, "data", "validate") == 0


def test_schema_only_skips_the_hash(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = project / "batch.csv"
    batch.write_text(
        "sepal_length,sepal_width,petal_length,petal_width,species\n5,3,1.5,0.2,setosa\n"
    )
    assert run(project, "data", "validate", str(batch)) == 2
    assert run(project, "data", "validate", str(batch), "--schema-only") == 0


def test_init_writes_a_manifest_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,label\n1,x\n2,y\n")
    assert main(["data", "init", str(csv), "--target", "label"]) == 0
    assert (tmp_path / "t.manifest.json").is_file()
    assert main(["data", "init", str(csv), "--target", "label"]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["data", "init", str(csv), "--target", "label", "--force"]) == 0


def test_config_errors_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.mlci]\ndata = 'x.csv'\n")
    assert main(["-C", str(tmp_path), "train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlci: error: ")
    assert "missing required key 'target'" in err


def test_predict_from_a_missing_file(
    trained: TrainResult,
    project: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(project, "predict", str(project / "nope.csv")) == 2
    err = capsys.readouterr().err
    assert "nope.csv: data file not found" in err
    assert "Traceback" not in err


def test_predict_without_a_model(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(project, "predict", "x.csv") == 2
    assert "no complete training run; run 'mlci train'" in capsys.readouterr().err


@pytest.mark.integration
def test_python_dash_m_runs_the_cli(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlci", "-C", str(project), "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "stale" in result.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    from mlci import __version__

    assert capsys.readouterr().out == f"mlci {__version__}\n"


def test_serve_without_the_extra_says_what_to_install(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As if FastAPI were not installed. mlci is not on the package index: the hint must name a
    # command that works in a clone, never `pip install 'mlci[serve]'`.
    monkeypatch.setitem(sys.modules, "mlci.serving._server", None)
    assert main(["-C", str(project), "serve"]) == 2
    err = capsys.readouterr().err
    assert "uv pip install -e '.[serve]'" in err
    assert "nox -s serve" in err
    assert "pip install 'mlci[serve]'" not in err


def test_predict_with_a_registry_version(
    project: Path, trained: TrainResult, registry_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = project / "rows.csv"
    rows.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    assert main(["-C", str(project), "registry", "register"]) == 0
    assert main(["-C", str(project), "registry", "promote", "1", "--to", "production"]) == 0
    capsys.readouterr()
    assert main(["-C", str(project), "predict", str(rows), "--model", "production"]) == 0
    assert capsys.readouterr().out == "setosa\n"
    registry = Registry.at(registry_url)
    version = registry.get(1)
    damage(registry, f"{version.folder}/{version.model_file}", lambda data: data[:-1])
    assert main(["-C", str(project), "predict", str(rows), "--model", "1"]) == 2
    assert "failed verification, refusing to load it" in capsys.readouterr().err


def test_predict_with_a_version_of_other_columns_uses_its_own(
    project: Path, trained: TrainResult, capsys: pytest.CaptureFixture[str]
) -> None:
    """The checkout's data has moved on to three columns; version 1 still takes four."""
    assert main(["-C", str(project), "registry", "register"]) == 0
    data = project / "data" / "iris.csv"
    three = [",".join(line.split(",")[1:]) for line in data.read_text().splitlines()]
    data.write_text("\n".join(three) + "\n")
    assert (
        main(["-C", str(project), "data", "init", str(data), "--target", "species", "--force"]) == 0
    )
    four = project / "four.csv"
    four.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    capsys.readouterr()
    assert main(["-C", str(project), "predict", str(four), "--model", "1"]) == 0
    assert capsys.readouterr().out == "setosa\n"
    assert main(["-C", str(project), "train"]) == 0
    assert main(["-C", str(project), "predict", str(four)]) == 2  # the new model: 3 columns
    assert "sepal_length" in capsys.readouterr().err


@pytest.mark.integration
def test_a_reader_that_goes_away_gets_no_traceback(project: Path) -> None:
    """`mlci ... | head -1`: the pipe closes before mlci has printed everything."""
    rows = project / "rows.csv"
    rows.write_text(
        "sepal_length,sepal_width,petal_length,petal_width\n" + "5.0,3.4,1.5,0.2\n" * 50_000
    )
    assert main(["-C", str(project), "train"]) == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "mlci", "-C", str(project), "predict", str(rows)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"setosa\n"
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err
    assert process.returncode == 141


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(
    project: Path, port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["-C", str(project), "serve", "--port", port])
    assert exit.value.code == 2
    assert "a port from 0 to 65535" in capsys.readouterr().err
