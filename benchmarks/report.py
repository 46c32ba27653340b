"""benchmarks/RESULTS.md from one bench run: every figure, its command, the ratios, the targets."""

from __future__ import annotations

import datetime
from typing import Any

TARGETS = [
    # (text, figure key or ratio, how it is met)
    ("warm `make ci` ≤ 10 s", "warm", "le", 10.0),
    ("warm `make ci` ≤ 1.5x the bare tool time", ("warm", "bare"), "le", 1.5),
    ("cold `make ci` ≥ 3x faster than virtualenv + pip", ("cold_pip", "cold"), "ge", 3.0),
    ("cache-hit `mlci train` < 0.3 s", "train_hit", "lt", 0.3),
    ("one Python's unit tier < 20 s", "suite", "lt", 20.0),
    (
        "this repository's fresh-clone `make ci` (the `project` session included) < 180 s",
        "fresh",
        "lt",
        180.0,
    ),
    (
        "a project made by `mlci init`: fresh-clone `make ci`, four Pythons, ≤ 2x the seed flow",
        ("project_fresh", "seed"),
        "le",
        2.0,
    ),
    (
        "a project made by `mlci init`: warm `make ci`, nothing changed, < 3 s",
        "project_warm",
        "lt",
        3.0,
    ),
]


def value(bench: Any, key: Any) -> float | None:
    if isinstance(key, tuple):
        top, bottom = (bench.figures.get(k) for k in key)
        return top.median / bottom.median if top and bottom else None
    figure = bench.figures.get(key)
    return figure.median if figure else None


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def figure_rows(bench: Any, keys: list[str]) -> list[list[str]]:
    return [
        [bench.figures[k].name, bench.figures[k].cell(), f"`{bench.figures[k].command}`"]
        for k in keys
        if k in bench.figures
    ]


def ratio_line(bench: Any, label: str, top: str, bottom: str) -> str:
    found = value(bench, (top, bottom))
    return f"- {label}: **{found:.2f}x**" if found is not None else f"- {label}: not measured"


def section(
    bench: Any,
    title: str,
    prose: list[str],
    keys: list[str],
    ratios: list[tuple[str, str, str]],
    *,
    notes: str = "",
    header: list[str] | None = None,
) -> list[str]:
    """One figure's Markdown: heading, prose, table, ratio lines, then the notes."""
    lines = [f"## {title}", ""] if title else []
    lines += [*prose, ""] if prose else []
    lines += [table(header or ["what", "time", "command"], figure_rows(bench, keys)), ""]
    lines += [ratio_line(bench, label, top, bottom) for label, top, bottom in ratios]
    lines += [f"- {note}" for note in bench.notes.get(notes, [])]
    return [*lines, ""]


def render(bench: Any, machine: dict[str, str], versions: dict[str, str], seconds: float) -> str:
    out = [
        "# Benchmarks",
        "",
        "Written by `nox -s bench` (`benchmarks/bench.py`); every number below comes from that one",
        "run, on a fresh clone of the repository's HEAD, with the command that produced it. Each",
        "cell is the median, then the minimum-maximum and the number of runs. Ratios are of",
        "medians measured side by side in the same run. Commands are relative to the clone;",
        "`$BENCH` is the bench's temporary folder (the data files and extra venvs it makes).",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        *(f"- {k}: {v}" for k, v in machine.items()),
        *(f"- {k}: {v}" for k, v in versions.items()),
        f"- the whole bench took {seconds:.0f} s: "
        + ", ".join(f"{name} {secs:.0f} s" for name, secs in bench.phases.items()),
        "",
    ]
    if "warm" in bench.figures:
        out += section(
            bench,
            "1. `make ci`, warm",
            [
                "Venvs present, nothing changed, all four Pythons. `make ci` skips what already "
                "passed",
                "on exactly these inputs (`mlci cached`, the training stage cache) and venvs whose",
                "locks did not change. The bare tool time is the sum of ruff, `mlci train` (cache",
                "hit), pytest on each Python and `coverage combine`, run directly from the session",
                "venvs without nox: what the pipeline would cost if every tool ran once, by hand.",
            ],
            ["warm", "warm_installs", "bare", "warm_nocache", "warm_nocache_serial"],
            [
                ("warm `make ci` / bare tools (our overhead over the limit)", "warm", "bare"),
                (
                    "before/after the install stamp (reinstalling every venv / skipping)",
                    "warm_installs",
                    "warm",
                ),
                ("`make ci` with every session run / bare tools", "warm_nocache", "bare"),
                (
                    "before/after `mlci cached` (every session run / nothing changed)",
                    "warm_nocache",
                    "warm",
                ),
                (
                    "before/after `--parallel` (one session at a time / two at a time)",
                    "warm_nocache_serial",
                    "warm_nocache",
                ),
            ],
        )
    if "bytecode_off" in bench.figures:
        out += section(
            bench,
            "",
            [
                "Python's bytecode cache: these machines set `PYTHONDONTWRITEBYTECODE=1`, so every",
                "process recompiles what it imports. The noxfile lifts it for its own venvs.",
            ],
            ["bytecode_off", "bytecode_on"],
            [("before/after the bytecode cache", "bytecode_off", "bytecode_on")],
        )
    if "cold" in bench.figures:
        out += section(
            bench,
            "2. `make ci`, cold",
            [
                "No `.nox`; the package caches (uv's, pip's) warm. `artifacts/` stays, so the "
                "tests",
                "that passed on these inputs are not rerun: the figure is the cost of rebuilding",
                "every venv. (With every session run, add the test time of figure 1.)",
            ],
            ["cold", "cold_pip"],
            [("cold: virtualenv + pip / uv", "cold_pip", "cold")],
        )
    if "seed" in bench.figures:
        out += section(
            bench,
            "3. The seed article's flow",
            [
                "A fresh venv, `pip install -r` an unpinned `requirements.txt` (scikit-learn, "
                "joblib,",
                "pytest), `train.py`, pytest, on one Python (`benchmarks/seed/`). It checks "
                "nothing of",
                "what `make ci` checks beyond training and two predictions.",
            ],
            ["seed"],
            [
                ("warm `make ci` / seed flow", "warm", "seed"),
                ("cold `make ci` / seed flow", "cold", "seed"),
                ("`make ci` with every session run / seed flow", "warm_nocache", "seed"),
            ],
            notes="seed",
        )
    if "suite" in bench.figures:
        out += section(
            bench,
            "3b. Test speed",
            [
                "One Python's suite alone, with and without coverage, and `make ci` from a fresh",
                "clone (no venvs, no recorded results: every session runs, four Pythons, two at a",
                "time), against the seed flow of figure 3 measured in the same run.",
            ],
            ["suite", "suite_cov", "fresh"],
            [("fresh-clone `make ci` / seed flow", "fresh", "seed")],
        )
    if "project_fresh" in bench.figures:
        out += section(
            bench,
            "3c. A project made by `mlci init`",
            [
                "The wheel built from the clone (`nox -s build`), installed in a venv of its own;",
                "`mlci init` of the Iris sample with its locks resolved against that wheel,",
                "`make baseline`, a commit; then a fresh clone of that project and its `make ci`",
                "(the tools, every venv, every session on four Pythons), and again warm.",
            ],
            ["project_fresh", "project_warm"],
            [("project's fresh-clone `make ci` / seed flow", "project_fresh", "seed")],
            notes="project",
        )
    if "train_hit" in bench.figures:
        out += section(
            bench,
            "4. `mlci train`",
            [],
            ["train_hit", "train_full"],
            [("full training / cache hit", "train_full", "train_hit")],
        )
    serving = sorted({k.split("|")[1] for k in bench.figures if k.startswith("serve|")})
    if serving:
        cases = sorted({k.split("|")[2] for k in bench.figures if k.startswith("serve|")})
        rows = []
        for name in serving:
            for case in cases:
                cells = [
                    bench.figures.get(f"serve|{name}|{case}|{m}")
                    for m in ("rps", "p50_ms", "p99_ms")
                ]
                if all(cells):
                    rows.append([name, f"{case}: {cells[0].command}", *(c.cell(1) for c in cells)])
        out += [
            "## 5. Serving",
            "",
            "The production model of a release, both servers with their default settings, on",
            "loopback, driven by `benchmarks/load.py` (Python threads on the same 2 cores) after",
            "a warm-up of 100 requests. Each request is an MLflow `dataframe_split` body.",
            "",
            table(["server", "load", "requests/s", "p50", "p99"], rows),
            "",
        ]
        for case in cases:
            mlci = bench.figures.get(f"serve|mlci serve|{case}|rps")
            mlflow = bench.figures.get(f"serve|mlflow models serve|{case}|rps")
            if mlci and mlflow:
                times = mlci.median / mlflow.median
                out.append(f"- {case}: `mlci serve` / `mlflow` requests/s: **{times:.2f}x**")
        out += [*(f"- {n}" for n in bench.notes.get("serving", [])), ""]
    validation = [k for k in bench.figures if k.startswith("validate")]
    if validation:
        out += section(
            bench,
            "6. Data validation",
            [
                "`mlci data validate --schema-only` on synthetic files with the Iris schema. The",
                "validator streams the file: memory does not grow with the file.",
            ],
            validation,
            [],
            notes="validation",
            header=["what", "value", "command"],
        )
    registry = [k for k in bench.figures if k.startswith("registry|") and k != "registry|poll"]
    if registry:
        out += section(
            bench,
            "7. Registry backends",
            [
                "The same registry code on a local folder and on S3 (moto's S3 server on",
                "loopback, through s3fs). Each operation is one `mlci registry ...` command in its",
                "own process, as a developer or a CI step runs it. The reload is the time from a",
                "promote's return until `mlci serve`, polling the bucket, reports the new version",
                "on /health.",
            ],
            registry,
            [
                *(
                    (f"`{op}` on S3 / on a folder", f"registry|{op}|s3", f"registry|{op}|local")
                    for op in ("register", "promote", "list")
                ),
                ("list in one process, S3 / folder", "registry|open|s3", "registry|open|local"),
            ],
            notes="registry",
        )
    mlflow = [k for k in bench.figures if k.startswith("mlflow|")]
    if mlflow:
        out += section(
            bench,
            "8. MLflow tracking and registry",
            [
                "The cost of MLflow, on a real `mlflow server` (SQLite, loopback) started by the",
                "bench: full training with and without a tracked run (params, metrics, tags,",
                "artifacts and the model through `mlflow.sklearn`), run alternately; and a whole",
                "release (train cache hit, gate, register, smoke test, promote) into a new",
                "registry on each backend. Each is one `mlci` command in its own process, so the",
                "time includes importing MLflow's client.",
            ],
            mlflow,
            [
                ("tracked / untracked training", "mlflow|train|tracked", "mlflow|train|untracked"),
                ("release, MLflow / folder", "mlflow|release|mlflow", "mlflow|release|local"),
            ],
            notes="mlflow",
        )
    out += ["## Targets", "", table(["target", "measured", "met"], target_rows(bench)), ""]
    out += [*(f"- {n}" for n in bench.notes.get("targets", [])), ""]
    return "\n".join(out).rstrip() + "\n"


def target_rows(bench: Any) -> list[list[str]]:
    rows = []
    default = sum(secs for name, secs in bench.phases.items() if name != "speedups")
    if {"ci", "seed", "train", "validation", "serving"} <= set(bench.phases):
        met = default < 15 * 60
        rows.append(
            [
                "`nox -s bench` (every figure, without `--speedups`) < 15 min",
                f"{default:.0f} s ({default / 60:.2f} min)",
                "yes" if met else f"no (missed by {default - 15 * 60:.0f} s)",
            ]
        )
    for text, key, how, limit in TARGETS:
        found = value(bench, key)
        if found is None:
            rows.append([text, "not measured", "-"])
            continue
        met = {"le": found <= limit, "ge": found >= limit, "lt": found < limit}[how]
        unit = "x" if isinstance(key, tuple) else " s"
        miss = "" if met else f" (missed by {abs(found - limit):.2f}{unit.strip() or 's'})"
        rows.append([text, f"{found:.2f}{unit}", ("yes" if met else "no") + miss])
    for op in ("register", "promote", "list"):
        found = value(bench, (f"registry|{op}|s3", f"registry|{op}|local"))
        text = f"registry `{op}` on the S3 server ≤ 3x on a local folder"
        if found is None:
            rows.append([text, "not measured", "-"])
        else:
            rows.append([text, f"{found:.2f}x", "yes" if found <= 3 else "no"])
    tracked = bench.figures.get("mlflow|train|tracked")
    untracked = bench.figures.get("mlflow|train|untracked")
    text = "MLflow tracking adds < 1 s to a training run"
    if tracked and untracked:
        added = tracked.median - untracked.median
        miss = "" if added < 1 else f" (missed by {added - 1:.2f} s)"
        rows.append([text, f"{added:.2f} s", ("yes" if added < 1 else "no") + miss])
    else:
        rows.append([text, "not measured", "-"])
    reload, poll = bench.figures.get("registry|reload|s3"), bench.figures.get("registry|poll")
    if reload and poll:
        limit = 2 * poll.median
        rows.append(
            [
                "`mlci serve` reloads within two poll intervals of a promote",
                f"{reload.median:.2f} s (max {max(reload.values):.2f} s; limit {limit:g} s)",
                "yes" if max(reload.values) <= limit else "no",
            ]
        )
    for case in ("1 row", "100 rows"):
        mlci = bench.figures.get(f"serve|mlci serve|{case}|rps")
        mlflow = bench.figures.get(f"serve|mlflow models serve|{case}|rps")
        p99 = bench.figures.get(f"serve|mlci serve|{case}|p99_ms")
        p99_mlflow = bench.figures.get(f"serve|mlflow models serve|{case}|p99_ms")
        text = f"`mlci serve` ≥ 2x MLflow's requests/s at equal or lower p99 ({case})"
        if not (mlci and mlflow and p99 and p99_mlflow):
            rows.append([text, "not measured", "-"])
            continue
        times = mlci.median / mlflow.median
        met = times >= 2 and p99.median <= p99_mlflow.median
        rows.append(
            [
                text,
                f"{times:.2f}x, p99 {p99.median:.1f} vs {p99_mlflow.median:.1f} ms",
                "yes" if met else "no",
            ]
        )
    return rows
