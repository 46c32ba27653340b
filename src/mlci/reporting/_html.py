"""``artifacts/report.html``: one self-contained page with the pictures and the report's tables.

Images are inline (``data:`` URIs), the style is inline, and there is no script, font or link
to anything outside the file: it opens the same with no network. Each picture is drawn once per
content (``artifacts/plots/<name>-<hash of its data>.png``), so a process without matplotlib,
or one that rewrites the page for another section, reuses what was drawn.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import html
import json
import re
from pathlib import Path
from typing import Any

from mlci._io import atomic_write_bytes, atomic_write_text, locked
from mlci._report import LOCK, REPORT
from mlci.reporting import _plots

HTML = "report.html"
PLOTS = "plots"
GATE = "gate.json"
DRIFT = "drift.json"
REGISTRY = "registry.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.json"


@dataclasses.dataclass(frozen=True)
class Picture:
    """One figure of the report: its data (what is drawn), its table and its caption."""

    key: str
    title: str
    data: dict[str, Any]
    table: str  # HTML, shown with or without the picture
    caption: str = ""

    @property
    def file(self) -> str:
        digest = hashlib.sha256(json.dumps(self.data, sort_keys=True).encode()).hexdigest()
        return f"{self.key}-{digest[:16]}.png"


def write_html(
    artifacts: Path, title: str = "mlci report", *, draw: bool = True, pictures: bool = True
) -> Path:
    """Write ``report.html`` from what ``artifacts/`` holds now; the path.

    ``draw=False`` only reuses pictures drawn before: no matplotlib import. ``pictures=False``
    (``[tool.mlci.report] pictures = false``) leaves every picture out and draws none.
    """
    figures = [
        *_confusion(artifacts),
        *_fit(artifacts),
        *_comparison(artifacts),
        *_history(artifacts),
        *_drift(artifacts),
    ]
    drawn = {p.key: _drawn(artifacts, p, draw) if pictures else None for p in figures}
    report = artifacts / REPORT
    markdown = report.read_text(encoding="utf-8") if report.is_file() else ""
    note = ""
    if not pictures:
        note = PICTURES_OFF
    elif not _plots.available() and any(drawn[p.key] is None for p in figures if p.data):
        note = NO_PLOTS
    page = render(title, figures, drawn, markdown, note=note)
    path = artifacts / HTML
    with locked(artifacts / LOCK, "the report"):
        atomic_write_text(path, page)
    return path


def _drawn(artifacts: Path, picture: Picture, draw: bool) -> bytes | None:
    """The picture's PNG: drawn before for the same data, drawn now, or None (no matplotlib)."""
    if not picture.data:  # a table only: nothing to draw
        return None
    folder = artifacts / PLOTS
    path = folder / picture.file
    if path.is_file():
        return path.read_bytes()
    if not draw or not _plots.available():
        return None
    png = _plots.DRAW[picture.key](picture.data)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, png)
    for old in folder.glob(f"{picture.key}-*.png"):  # pictures of data that has changed
        if old.name != path.name:
            with contextlib.suppress(OSError):
                old.unlink()
    return png


def _read(path: Path) -> Any:
    """A JSON artifact, or None when it is missing or unreadable (then its figure is left out)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fit(artifacts: Path) -> list[Picture]:
    """A regressor's held-out rows: predicted against actual, and residuals against predicted."""
    metrics, recorded = _read(artifacts / METRICS), _read(artifacts / PREDICTIONS)
    if not (isinstance(metrics, dict) and metrics.get("task") == "regression"):
        return []
    if not isinstance(recorded, dict) or not recorded.get("predicted"):
        return []
    expected = [float(v) for v in recorded["expected"]]
    predicted = [float(v) for v in recorded["predicted"]]
    residuals = sorted(p - e for e, p in zip(expected, predicted))
    middle = residuals[len(residuals) // 2]
    spread = [residuals[len(residuals) // 20], residuals[-1 - len(residuals) // 20]]
    rows = [
        ["rows", str(len(expected))],
        ["R²", _show(metrics.get("r2"))],
        ["RMSE", _show(metrics.get("rmse"))],
        ["MAE", _show(metrics.get("mae"))],
        ["median residual", _show(middle)],
        ["5 % to 95 % of residuals", f"{spread[0]:.4f} to {spread[1]:.4f}"],
    ]
    data = {"expected": expected, "predicted": predicted}
    return [
        Picture(
            "fit",
            "Predicted against actual",
            data,
            table(["held-out rows", "value"], rows),
            "each held-out row; on the diagonal, the prediction is exact",
        ),
        Picture(
            "residuals",
            "Residuals against predicted",
            data,
            "",
            "predicted minus actual; a pattern (a slope, a funnel) is what the model missed",
        ),
    ]


def _confusion(artifacts: Path) -> list[Picture]:
    metrics = _read(artifacts / METRICS)
    if not isinstance(metrics, dict):
        return []
    pictures = []
    matrix = metrics.get("confusion_matrix")
    if isinstance(matrix, dict) and "labels" in matrix and "matrix" in matrix:
        labels = [str(label) for label in matrix["labels"]]
        rows = [[label, *map(str, counts)] for label, counts in zip(labels, matrix["matrix"])]
        pictures.append(
            Picture(
                "confusion",
                "Confusion matrix",
                {"labels": labels, "matrix": matrix["matrix"]},
                table(["true \\ predicted", *labels], rows),
                f"{metrics.get('test_size', '?')} held-out rows; "
                f"accuracy {_show(metrics.get('accuracy'))}",
            )
        )
    importance = metrics.get("feature_importance")
    lost = "R²" if metrics.get("task") == "regression" else "accuracy"
    if isinstance(importance, dict) and importance:
        ranked = sorted(importance.items(), key=lambda item: -float(item[1]["mean"]))
        rows = [[name, _show(v.get("mean")), _show(v.get("std"))] for name, v in ranked]
        pictures.append(
            Picture(
                "importance",
                "Permutation importance",
                {
                    "features": [name for name, _ in ranked],
                    "scores": [v for _, v in ranked],
                    "lost": lost,
                },
                table(["feature", f"{lost} lost when shuffled", "std"], rows),
                "on the held-out rows; at or below zero, the feature does not help the model",
            )
        )
    pictures += _simpler(metrics)
    per_class = metrics.get("per_class")
    if isinstance(per_class, dict) and per_class:
        names = ["precision", "recall", "f1", "support"]
        rows = [
            [str(label), *(_show(scores.get(n)) for n in names)]
            for label, scores in per_class.items()
        ]
        pictures.append(
            Picture("per_class", "Per class", per_class, table(["class", *names], rows))
        )
    return pictures


def _simpler(metrics: dict[str, Any]) -> list[Picture]:
    found = metrics.get("simpler_models")  # scored by training on the candidate's split
    if not isinstance(found, dict) or not found:
        return []
    entries = {
        str(model): e.get("metrics", {}) for model, e in found.items() if isinstance(e, dict)
    }
    names = sorted(
        {m for theirs in entries.values() for m in theirs if isinstance(metrics.get(m), float)}
    )
    if not names:
        return []
    scores = {"candidate": [float(metrics[m]) for m in names]}
    scores.update(
        {model: [float(theirs.get(m, 0.0)) for m in names] for model, theirs in entries.items()}
    )
    rows = [[model, *(_show(v) for v in values)] for model, values in scores.items()]
    return [
        Picture(
            "simpler",
            "Against simpler models",
            {"metrics": names, "models": scores},
            table(["model", *names], rows),
            "fitted on the candidate's training rows, scored on its held-out rows; "
            "the gate fails a candidate that does not beat them",
        )
    ]


def _comparison(artifacts: Path) -> list[Picture]:
    gate = _read(artifacts / GATE)
    if not isinstance(gate, dict) or not isinstance(gate.get("checks"), list):
        return []
    checks = gate["checks"]
    name = gate.get("reference") or "no reference"
    rows = [
        [
            " vs ".join(str(check[k]) for k in ("metric", "versus") if check.get(k)),
            _show(check.get("candidate")),
            _show(check.get("reference")),
            _show(check.get("delta")),
            str(check.get("rule")),
            "pass" if check.get("passed") else "FAIL",
        ]
        for check in checks
    ]
    compared = list(
        {  # one bar pair per metric, though a metric can have a floor and a drop rule
            c["metric"]: {
                "metric": c["metric"],
                "candidate": c["candidate"],
                "reference": c["reference"],
            }
            for c in reversed(checks)
            if isinstance(c.get("candidate"), (int, float))
            and isinstance(c.get("reference"), (int, float))
            and not c.get("versus")  # the simpler models have their own picture
        }.values()
    )[::-1]
    caption = f"gate {'passed' if gate.get('passed') else 'FAILED'} against {name}"
    header = ["metric", "candidate", "reference", "change", "rule", "result"]
    if not compared:  # floors only: a table, nothing to draw side by side
        return [Picture("comparison", "Candidate and reference", {}, table(header, rows), caption)]
    return [
        Picture(
            "comparison",
            "Candidate and reference",
            {"reference": name, "rows": compared},
            table(header, rows),
            caption,
        )
    ]


def _history(artifacts: Path) -> list[Picture]:
    registry = _read(artifacts / REGISTRY)
    if not isinstance(registry, dict) or not registry.get("versions"):
        return []
    versions = registry["versions"]
    metric = registry.get("metric")  # chosen by the registry's own history chart
    if not isinstance(metric, str):
        return []
    aliases: dict[int, list[str]] = {}
    for alias, number in registry.get("aliases", {}).items():
        aliases.setdefault(int(number), []).append(alias)
    kept = [v for v in versions if isinstance(v.get("metrics", {}).get(metric), (int, float))]
    data = {
        "metric": metric,
        "labels": [f"v{v['number']}" for v in kept],
        "values": [float(v["metrics"][metric]) for v in kept],
        "aliases": [", ".join(sorted(aliases.get(int(v["number"]), []))) for v in kept],
    }
    rows = [
        [f"v{v['number']}", _show(v["metrics"][metric]), str(v.get("created_at", "")), str(tags)]
        for v, tags in zip(kept, data["aliases"])
    ]
    return [
        Picture(
            "history",
            "Metric history",
            data,
            table(["version", metric, "registered", "aliases"], rows),
            f"the registry at {registry.get('location', '?')}",
        )
    ]


def _drift(artifacts: Path) -> list[Picture]:
    report = _read(artifacts / DRIFT)
    batches = report.get("batches", []) if isinstance(report, dict) else []
    pictures = []
    for number, batch in enumerate(batches):
        if not isinstance(batch, dict) or not isinstance(batch.get("columns"), list):
            continue
        columns = []
        rows = []
        for column in batch["columns"]:
            summary = _summary(column)
            rows.append(
                [
                    str(column.get("column")),
                    str(column.get("test")),
                    summary,
                    "DRIFT" if column.get("drifted") else "no",
                ]
            )
            if isinstance(column.get("histogram"), dict):
                columns.append(
                    {
                        "column": column["column"],
                        "summary": summary,
                        "drifted": bool(column.get("drifted")),
                        "histogram": column["histogram"],
                    }
                )
        dataset = batch.get("dataset", {})
        tested = [c for c in batch["columns"] if c.get("counted", True)]  # not missing shares
        caption = (
            f"{batch.get('batch')}: {'DRIFT' if dataset.get('drifted') else 'no drift'} "
            f"({sum(bool(c.get('drifted')) for c in tested)} of {len(tested)} columns) "
            f"against the {batch.get('reference')}"
        )
        pictures.append(
            Picture(
                "drift" if number == 0 else f"drift{number}",
                f"Drift: {batch.get('batch')}",
                {"columns": columns},
                table(["column", "test", "statistic against threshold", "drifted"], rows),
                caption,
            )
        )
    return [p for p in pictures if p.key == "drift"] + [p for p in pictures if p.key != "drift"]


def _summary(column: dict[str, Any]) -> str:
    """The column's statistic with its threshold, as the test reads it."""
    if column.get("p_value") is not None:
        return f"p={_show(column['p_value'])} (drift at p <= {column.get('threshold')})"
    if column.get("distance") is not None:
        return f"d={_show(column['distance'])} (drift at d >= {column.get('threshold')})"
    return "not tested"


def _show(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; every cell escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: left; }
th { background: #f6f8fa; }
figure { margin: 0; } figcaption { color: #59636e; font-size: .9rem; }
img { max-width: 100%; height: auto; }
.note { background: #fff8c5; border: 1px solid #d4a72c; padding: .5rem 1rem; }
pre { background: #f6f8fa; padding: .75rem; overflow-x: auto; }
"""

NO_PLOTS = (
    "The pictures need matplotlib, which is not installed here: "
    "<code>uv pip install -e '.[plots]'</code> (the lock <code>requirements/plots.txt</code>; "
    "the nox sessions that write the report install it). The tables below are complete."
)
PICTURES_OFF = (
    "Pictures are off (<code>[tool.mlci.report] pictures = false</code> in pyproject.toml). "
    "The tables below are complete."
)


def render(
    title: str,
    pictures: list[Picture],
    drawn: dict[str, bytes | None],
    markdown: str,
    *,
    note: str = "",
) -> str:
    """The page: the pictures with their tables, then every section of ``report.md``."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if note:
        parts.append(f'<p class="note">{note}</p>')
    for picture in pictures:
        parts.append(f'<section id="{picture.key}"><h2>{html.escape(picture.title)}</h2>')
        png = drawn.get(picture.key)
        if png is not None:
            encoded = base64.b64encode(png).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(picture.title)}" '
                f'src="data:image/png;base64,{encoded}">'
                f"<figcaption>{html.escape(picture.caption)}</figcaption></figure>"
            )
        elif picture.caption:
            parts.append(f"<p>{html.escape(picture.caption)}</p>")
        parts.append(picture.table + "</section>")
    if markdown.strip():
        parts.append('<section id="report"><h2>Pipeline report</h2>')
        parts.append(markdown_html(markdown) + "</section>")
    if not pictures and not markdown.strip():
        parts.append("<p>Nothing to show yet: run <code>make ci</code> or a session.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


_TABLE_RULE = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


def markdown_html(markdown: str) -> str:
    """The small Markdown mlci writes (headings, tables, fences, paragraphs) as HTML."""
    out: list[str] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("<!--") or not line.strip():
            index += 1
        elif line.startswith("```"):
            end = index + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            out.append(f"<pre>{html.escape(chr(10).join(lines[index + 1 : end]))}</pre>")
            index = end + 1
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 6)
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
            index += 1
        elif line.startswith("|"):
            block = []
            while index < len(lines) and lines[index].startswith("|"):
                block.append(lines[index])
                index += 1
            out.append(_table_of(block))
        else:
            block = []
            while (
                index < len(lines)
                and lines[index].strip()
                and not lines[index].startswith(("#", "|", "```", "<!--"))
            ):
                block.append(lines[index])
                index += 1
            out.append(f"<p>{_inline(' '.join(block))}</p>")
    return "\n".join(out)


def _cells(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [cell.strip().replace("\\|", "|") for cell in cells]


def _table_of(block: list[str]) -> str:
    rows = [_cells(line) for line in block if not _TABLE_RULE.match(line)]
    if not rows:
        return ""
    head = "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold**; links stay text (nothing leaves the file).

    Markdown's backslash escapes (``mlci._report.escape``) are shown as the characters they keep.
    """
    escaped = html.escape(text)
    escaped = re.sub(r"(?<!\\)`([^`]+)`", r"<code>\1</code>", escaped)
    escaped = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"\\([\\`\[\]|]|&lt;)", r"\1", escaped)
