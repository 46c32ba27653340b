"""The serving sample log, and training/serving skew from it (`mlci drift --serving-log`)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from conftest import make_project

from mlci.cli import main
from mlci.pipeline import Config, load_config
from mlci.serving import SampleLog, serving_batch

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def iris(config: Config) -> list[list[float]]:
    with config.data.open() as stream:
        return [[float(v) for v in row[:4]] for row in list(csv.reader(stream))[1:]]


def test_the_log_never_takes_more_than_its_budget(tmp_path: Path) -> None:
    log = SampleLog(tmp_path / "served.csv", max_bytes=4000)
    rows = [[5.1, 3.5, 1.4, 0.2]] * 7
    for _ in range(60):
        assert log.write(FEATURES, rows) == 7
        sizes = [p.stat().st_size for p in tmp_path.iterdir()]
        assert sum(sizes) <= 4000
    rotated = tmp_path / "served.csv.1"
    assert rotated.exists()
    for path in (tmp_path / "served.csv", rotated):
        lines = path.read_text().splitlines()
        assert lines[0] == ",".join(FEATURES)
        assert set(lines[1:]) == {"5.1,3.5,1.4,0.2"}


def test_a_version_with_other_features_starts_a_new_file(tmp_path: Path) -> None:
    log = SampleLog(tmp_path / "served.csv", max_bytes=10_000)
    log.write(FEATURES, [[1, 2, 3, 4]])
    log.write(("a", "b"), [[1, 2]])
    assert (tmp_path / "served.csv").read_text() == "a,b\n1.0,2.0\n"
    assert (tmp_path / "served.csv.1").read_text().splitlines()[0] == ",".join(FEATURES)
    # Only the newest file counts then: the two have other columns.
    assert serving_batch(tmp_path / "served.csv", tmp_path) == tmp_path / "served.csv"


def test_a_share_of_rows_is_logged(tmp_path: Path) -> None:
    log = SampleLog(tmp_path / "served.csv", max_bytes=1_000_000, rate=0.1, seed=3)
    written = sum(log.write(FEATURES, [[1.0, 2.0, 3.0, 4.0]] * 100) for _ in range(20))
    assert 120 <= written <= 280  # about 10% of 2000
    assert len((tmp_path / "served.csv").read_text().splitlines()) == written + 1


def test_skew_between_served_rows_and_training_data_is_detected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ML Test Score, monitoring: what serving sees is compared with what training saw."""
    project = make_project(tmp_path / "project")
    config = load_config(project)
    assert main(["-C", str(project), "release"]) == 0
    rows = iris(config)
    rng = random.Random(5)
    same = SampleLog(tmp_path / "same.csv", max_bytes=4000)
    skewed = SampleLog(tmp_path / "skewed.csv", max_bytes=4000)
    for _ in range(40):
        batch = rng.choices(rows, k=5)
        same.write(FEATURES, batch)
        skewed.write(FEATURES, [[row[0] + 1.5, row[1], row[2] * 1.8, row[3]] for row in batch])
    assert (tmp_path / "skewed.csv.1").exists()  # rotated: both files are read
    capsys.readouterr()
    assert main(["-C", str(project), "drift", "--serving-log", str(tmp_path / "same.csv")]) == 0
    assert main(["-C", str(project), "drift", "--serving-log", str(tmp_path / "skewed.csv")]) == 1
    out = capsys.readouterr().out
    assert f"drift in serving log {tmp_path / 'skewed.csv'}" in out
    report = (project / "artifacts" / "drift.json").read_text()
    assert '"column": "petal_length"' in report
    assert "training data of production (version 1)" in report


def test_a_missing_serving_log_names_the_setting(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "drift", "--serving-log", "nowhere.csv"]) == 2
    assert "set [tool.mlci.serve] sample_log" in capsys.readouterr().err
    assert main(["-C", str(project), "drift", "x.csv", "--serving-log", "y.csv"]) == 2


@pytest.mark.parametrize(
    ("value", "message"), [("1.5", "must be at most 1"), ("0", "must be positive")]
)
def test_sample_rate_is_a_share(
    project: Path, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f"\n[tool.mlci.serve]\nsample_rate = {value}\n")
    assert main(["-C", str(project), "status"]) == 2
    assert f"[tool.mlci.serve] sample_rate: {message}" in capsys.readouterr().err
