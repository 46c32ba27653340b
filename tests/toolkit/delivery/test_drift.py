from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest

from mlci.cli import main
from mlci.delivery import DriftConfig
from mlci.delivery import _drift as drift
from mlci.errors import MlciError
from mlci.pipeline import Config, TrainResult, infer_manifest, load_manifest
from mlci.pipeline._data import Table

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def iris_rows(config: Config) -> tuple[list[str], list[list[str]]]:
    with config.data.open(newline="") as stream:
        header, *rows = list(csv.reader(stream))
    return header, rows


def write_batch(
    path: Path,
    config: Config,
    *,
    size: int = 100,
    seed: int = 7,
    shift: dict[str, float] | None = None,
    scale: dict[str, float] | None = None,
) -> Path:
    """A batch resampled from the Iris data, with chosen columns shifted or scaled."""
    header, rows = iris_rows(config)
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for row in rng.choices(rows, k=size):
            out = list(row)
            for name, value in (shift or {}).items():
                out[header.index(name)] = f"{float(out[header.index(name)]) + value:.2f}"
            for name, value in (scale or {}).items():
                out[header.index(name)] = f"{float(out[header.index(name)]) * value:.2f}"
            writer.writerow(out)
    return path


def test_a_resampled_batch_does_not_drift(config: Config, tmp_path: Path) -> None:
    (report,) = drift.check(config, [write_batch(tmp_path / "same.csv", config)])
    assert report.drifted_columns == []
    assert not report.drifted
    assert [c.test for c in report.columns] == ["ks"] * 4 + ["chi2"]
    assert report.reference_rows == 150
    assert report.batch_rows == 100


@pytest.mark.parametrize(
    ("shift", "scale"),
    [
        ({"sepal_length": 1.0}, {}),
        ({}, {"petal_length": 1.5}),
        ({"sepal_width": 0.8}, {"petal_width": 1.6, "sepal_length": 1.3}),
    ],
)
def test_shifting_or_scaling_flags_exactly_those_columns(
    config: Config, tmp_path: Path, shift: dict[str, float], scale: dict[str, float]
) -> None:
    batch = write_batch(tmp_path / "moved.csv", config, shift=shift, scale=scale)
    (report,) = drift.check(config, [batch])
    assert sorted(report.drifted_columns) == sorted({*shift, *scale})
    assert report.drifted == (len({*shift, *scale}) / 5 >= 0.5)
    moved = [c for c in report.columns if c.drifted]
    assert all(c.p_value is not None and c.p_value <= 0.05 for c in moved)
    assert all(c.psi is not None and c.psi > 0.1 for c in moved)


def test_a_large_reference_uses_normalized_wasserstein() -> None:
    rng = random.Random(3)
    reference = Table(("x", "y"), [[rng.gauss(0, 1), rng.gauss(5, 2)] for _ in range(2000)], None)
    same = Table(("x", "y"), [[rng.gauss(0, 1), rng.gauss(5, 2)] for _ in range(500)], None)
    moved = Table(("x", "y"), [[rng.gauss(0.5, 1), rng.gauss(5, 2)] for _ in range(500)], None)
    settings = DriftConfig()
    assert drift.detect(reference, same, settings).drifted_columns == []
    report = drift.detect(reference, moved, settings)
    assert [c.test for c in report.columns] == ["wasserstein", "wasserstein"]
    assert report.drifted_columns == ["x"]
    assert report.columns[0].distance == pytest.approx(0.5, abs=0.15)
    assert report.drifted  # one of two columns: share 0.5


def test_thresholds_are_configurable() -> None:
    rng = random.Random(4)
    reference = Table(("x",), [[rng.gauss(0, 1)] for _ in range(300)], None)
    moved = Table(("x",), [[rng.gauss(0.3, 1)] for _ in range(300)], None)
    assert drift.detect(reference, moved, DriftConfig()).drifted
    assert not drift.detect(reference, moved, DriftConfig(ks_p_value=1e-12)).drifted
    assert drift.detect(reference, moved, DriftConfig(ks_max_rows=10, wasserstein=0.2)).drifted
    assert not drift.detect(reference, moved, DriftConfig(ks_max_rows=10, wasserstein=0.9)).drifted


def test_five_rows_get_an_answer_and_a_warning(config: Config, tmp_path: Path) -> None:
    (report,) = drift.check(config, [write_batch(tmp_path / "five.csv", config, size=5)])
    assert report.batch_rows == 5
    assert all("only 5 rows" in c.note for c in report.columns)
    json.dumps(report.to_dict(), allow_nan=False)


def test_constant_columns_get_an_answer() -> None:
    reference = Table(("x", "c"), [[float(i), 1.0] for i in range(2000)], None)
    same = Table(("x", "c"), [[float(i), 1.0] for i in range(0, 2000, 4)], None)
    other = Table(("x", "c"), [[float(i), 2.0] for i in range(0, 2000, 4)], None)
    constant = drift.detect(reference, same, DriftConfig()).columns[1]
    assert (constant.drifted, constant.distance, constant.note) == (
        False,
        0.0,
        "constant in the reference",
    )
    changed = drift.detect(reference, other, DriftConfig())
    assert changed.drifted_columns == ["c"]
    assert changed.to_dict()["columns"][1]["distance"] == "inf"
    json.dumps(changed.to_dict(), allow_nan=False)
    small = drift.detect(
        Table(("c",), [[1.0]] * 50, None), Table(("c",), [[1.0]] * 5, None), DriftConfig()
    )
    assert small.drifted_columns == []


def test_a_single_label_on_both_sides_is_not_tested() -> None:
    column = drift.label(["a"] * 10, ["a"] * 4, DriftConfig())
    assert (column.drifted, column.p_value) == (False, None)
    assert "one label" in column.note


def test_psi_is_near_zero_for_the_same_distribution_and_large_when_moved() -> None:
    rng = random.Random(5)
    values = [rng.gauss(0, 1) for _ in range(5000)]
    assert drift.psi(values[:2500], values[2500:]) < 0.02
    assert drift.psi(values, [v + 1 for v in values]) > 0.25


def test_invalid_batches_are_refused_with_their_line(config: Config, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,x,0.2\n", encoding="utf-8"
    )
    with pytest.raises(MlciError, match=r"bad.csv:2:3: petal_length: not a number"):
        drift.check(config, [bad])


def test_cli_exit_codes_json_and_summary(
    project: Path, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    incoming = project / "data" / "incoming"
    assert main(["-C", str(project), "drift"]) == 0
    assert "nothing to compare" in capsys.readouterr().out
    write_batch(incoming / "a.csv", config)
    assert main(["-C", str(project), "drift"]) == 0
    assert "no drift" in capsys.readouterr().out
    write_batch(
        incoming / "b.csv",
        config,
        shift={"sepal_length": 1.0, "petal_length": 1.5},
        scale={"petal_width": 1.6},
    )
    assert main(["-C", str(project), "drift"]) == 1
    out = capsys.readouterr().out
    assert "drift in data/incoming/b.csv" in out
    report = json.loads((project / "artifacts" / "drift.json").read_text())
    verdicts = [batch["dataset"] for batch in report["batches"]]
    assert [v["drifted"] for v in verdicts] == [False, True]
    assert verdicts[1]["drifted_columns"] == ["sepal_length", "petal_length", "petal_width"]
    first = report["batches"][1]["columns"][0]
    assert set(first) >= {"test", "statistic", "p_value", "distance", "threshold", "drifted"}
    summary = (project / "artifacts" / "report.md").read_text()
    assert "## Drift: drift in data/incoming/b.csv" in summary
    assert "| sepal_length | ks |" in summary
    (incoming / "c.csv").write_text("nope\n1\n")
    assert main(["-C", str(project), "drift", str(incoming / "c.csv")]) == 2
    assert "c.csv:1:1: column 'nope' is not in the manifest" in capsys.readouterr().err


def test_the_reference_is_production_training_data(
    project: Path, trained: TrainResult, config: Config
) -> None:
    from mlci.delivery._registry import PRODUCTION, Registry

    assert drift.reference_of(config)[:2] == (config.data, "data/iris.csv")
    registry = Registry.of(config)
    registry.register(config)
    registry.promote(1, PRODUCTION)
    source, name, manifest = drift.reference_of(config)
    assert source == config.data.read_bytes()  # the registry's verified copy
    assert name == "training data of production (version 1)"
    assert str(manifest.path).endswith("data.manifest.json")
    assert manifest.schema() == load_manifest(config.manifest).schema()


def test_batches_are_judged_by_productions_columns(
    project: Path, trained: TrainResult, config: Config
) -> None:
    """A checkout whose data lost a column still checks drift against what production takes."""
    from mlci.delivery._registry import PRODUCTION, Registry

    registry = Registry.of(config)
    registry.promote(registry.register(config).version.number, PRODUCTION)
    data = project / "data" / "iris.csv"
    batch = project / "batch.csv"
    batch.write_text("\n".join(data.read_text().splitlines()[:41]) + "\n")
    three = [",".join(line.split(",")[1:]) for line in data.read_text().splitlines()]
    data.write_text("\n".join(three) + "\n")  # the checkout moved on: no sepal_length
    infer_manifest(data, "species", config.manifest).save()
    (report,) = drift.check(config, [batch])
    assert [c.column for c in report.columns][:4] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]


def test_a_batch_name_cannot_forge_a_report_section_a_mention_or_an_image(
    project: Path, config: Config, trained: TrainResult
) -> None:
    from mlci._report import _read_sections

    assert main(["-C", str(project), "gate"]) in (0, 1)
    gate = _read_sections(project / "artifacts" / "report.md")["gate"]
    forged = "x\n<!-- mlci:gate -->\n## Quality gate: passed @octocat ![i](x.png) [l](e.html)\n.csv"
    shift = {"sepal_length": 1.0, "petal_length": 1.5}
    write_batch(project / "data" / "incoming" / forged, config, shift=shift)
    assert main(["-C", str(project), "drift"]) in (0, 1)
    text = (project / "artifacts" / "report.md").read_text()
    sections = _read_sections(project / "artifacts" / "report.md")
    assert sections["gate"] == gate  # the real gate section, untouched
    assert text.count("\n<!-- mlci:gate -->") == 1  # the forged one is escaped, not a marker
    assert "\n## Quality gate: passed @" not in text
    assert "@octocat" not in text  # no mention: '@' is followed by a word joiner
    outside_charts = re.sub(r"```mermaid\n.*?```", "", text, flags=re.DOTALL)  # literal there
    assert "![i](x.png)" not in outside_charts
    assert "[l](e.html)" not in outside_charts
    assert "!\\[i\\](x.png)" in outside_charts  # shown as written


def test_a_multi_line_step_detail_stays_in_its_table_row() -> None:
    from mlci._report import Section

    section = Section(
        "Release",
        header=("step", "result", "detail"),
        rows=(("smoke", "FAIL", "line 1: wrong\nline 2: also | wrong"),),
    )
    table = section.markdown().split("\n\n")[1].splitlines()
    assert len(table) == 3
    assert table[2] == "| smoke | FAIL | line 1: wrong line 2: also \\| wrong |"


def _mixed(rng: random.Random, rows: int, *, women: float, missing: float) -> Table:
    """A categorical and a numeric column, with a share of missing ages."""
    from mlci.pipeline import Column

    columns = (
        Column("sex", "categorical", values=("female", "male")),
        Column("age", "numeric", min=0, max=100, missing=True),
    )
    features = [
        [
            "female" if rng.random() < women else "male",
            None if rng.random() < missing else rng.uniform(1, 80),
        ]
        for _ in range(rows)
    ]
    return Table(("sex", "age"), features, None, columns)


def test_categories_and_the_share_of_missing_values_drift() -> None:
    rng = random.Random(2)  # a seed whose like batch is alike at alpha 0.05, as most are
    reference = _mixed(rng, 600, women=0.5, missing=0.1)
    same = drift.detect(reference, _mixed(rng, 300, women=0.5, missing=0.1), DriftConfig())
    assert same.drifted_columns == []
    moved = drift.detect(reference, _mixed(rng, 300, women=0.8, missing=0.4), DriftConfig())
    by_name = {c.column: c for c in moved.columns}
    assert by_name["sex"].test == "chi2"
    assert by_name["sex"].drifted
    assert by_name["sex"].psi is not None
    assert by_name["sex"].psi > 0.1
    assert by_name["age (missing)"].drifted
    note = by_name["age (missing)"].note
    assert re.match(r"missing \d+\.\d% in the reference, 4\d\.\d% in the batch", note)
    assert not by_name["age"].drifted  # the ages present are alike
    # the missing share is reported beside its column, not counted as a column of its own
    assert [c.column for c in moved.tested] == ["sex", "age"]
    assert moved.share == 0.5
    summary = drift.section([moved]).text()
    assert "1 of 2 columns drifted (share 0.50" in summary
    assert "the share of missing values moved in age (missing)" in summary
