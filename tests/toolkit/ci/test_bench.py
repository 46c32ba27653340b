from __future__ import annotations

import importlib
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench.py"


def bench_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH.parent))  # bench.py imports its neighbour load.py
    spec = importlib.util.spec_from_file_location("mlci_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # for the dataclasses' annotations
    spec.loader.exec_module(module)
    return module


def test_results_show_commands_anyone_can_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RESULTS.md printed the temp folders and the interpreter of the machine that ran it."""
    bench = bench_module(monkeypatch)
    work = tmp_path / "mlci-bench-x"
    state = bench.Bench(work, work / "clone", runs=1, extra_runs=1)
    python = shutil.which("python3") or sys.executable
    figure = bench.Figure(
        "validate",
        f"{work}/clone/.nox/train/bin/mlci data validate {work}/rows.csv "
        f"--manifest {work}/clone/data/iris.manifest.json && {python} -m venv .venv",
        [1.0],
    )
    shown = state.add("validate", figure).command
    assert shown == (
        ".nox/train/bin/mlci data validate $BENCH/rows.csv --manifest data/iris.manifest.json "
        "&& python3 -m venv .venv"
    )
    assert str(tmp_path) not in shown


# A figure for every ratio RESULTS.md prints (the values are made up; the check is relative).
FIGURES = {
    "warm": 4.0,
    "bare": 200.0,
    "cold": 9.0,
    "cold_pip": 90.0,
    "seed": 25.0,
    "fresh": 110.0,
    "suite": 30.0,
    "train_hit": 0.13,
    "train_full": 1.3,
    **{
        f"serve|{s}|1 row|{m}": 100.0
        for s in ("mlci serve", "mlflow models serve")
        for m in ("rps", "p50_ms", "p99_ms")
    },
    **{
        f"registry|{op}|{where}": 1.0
        for op in ("register", "promote", "list", "open")
        for where in ("s3", "local")
    },
    "mlflow|train|tracked": 5.8,
    "mlflow|train|untracked": 3.2,
    "mlflow|release|mlflow": 6.1,
    "mlflow|release|local": 2.9,
}


def rendered(bench: ModuleType, tmp_path: Path, **changed: float) -> str:
    """RESULTS.md as report.py writes it for these figures."""
    report = importlib.import_module("report")  # bench.py's neighbour, on the path it set

    state = bench.Bench(tmp_path, tmp_path / "clone", runs=1, extra_runs=1)
    for key, value in {**FIGURES, **changed}.items():
        state.figures[key] = bench.Figure(key, "true", [value])
    return str(report.render(state, {}, {}, 1.0))


def test_every_checked_ratio_is_one_that_results_md_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = bench_module(monkeypatch)
    check = importlib.import_module("check")
    labels = list(check.ratios(rendered(bench, tmp_path)))
    assert len(labels) >= 12
    for pattern, _ in check.BETTER:
        assert any(pattern.search(label) for label in labels), pattern.pattern


@pytest.mark.parametrize(
    ("changed", "failed"),
    [
        ({}, []),
        ({"train_hit": 0.15}, []),  # 8.7x against 10x: within 25%
        ({"train_hit": 0.2}, ["full training / cache hit"]),  # 6.5x: the cache hit got slower
        ({"train_full": 2.6}, []),  # higher is better: 20x passes
        ({"registry|register|s3": 1.3}, ["`register` on S3 / on a folder"]),
        ({"registry|register|local": 1.3}, []),
        ({"cold_pip": 60.0}, ["cold: virtualenv + pip / uv"]),
        ({"fresh": 150.0}, ["fresh-clone `make ci` / seed flow"]),
    ],
)
def test_check_fails_only_a_ratio_that_moved_the_wrong_way_past_the_tolerance(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    changed: dict[str, float],
    failed: list[str],
) -> None:
    """ML Test Score, monitoring: computing performance has not regressed."""
    bench = bench_module(monkeypatch)
    committed = rendered(bench, tmp_path)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = bench.check_against(rendered(bench, tmp_path, **changed), committed, 0.25)
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.endswith("| FAIL |")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == failed
    assert code == (1 if failed else 0)
    assert f"## Benchmark check: {'FAILED' if failed else 'passed'}" in summary.read_text()


def test_check_without_comparable_ratios_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = bench_module(monkeypatch)
    committed = "# Benchmarks\n\nnothing measured\n"
    assert bench.check_against(rendered(bench, tmp_path), committed, 0.25) == 2
