from __future__ import annotations

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
