"""``artifacts/report.html``: pictures and tables from the artifacts, one file, no network."""

from __future__ import annotations

import base64
import html.parser
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import write_pyproject

from mlci import reporting
from mlci.cli import main
from mlci.reporting import _plots


class Page(html.parser.HTMLParser):
    """What a browser would fetch or run: every tag's URL attributes, and the sections."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.sections: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        if tag == "section" and found.get("id"):
            self.sections.append(str(found["id"]))


# The pictures of a project that trained, gated, released and checked a drifted batch, in order.
PICTURES = ["confusion", "importance", "simpler", "per_class", "comparison", "history", "drift"]


def released_with_drift(project: Path, *, pictures: bool = True) -> Path:
    """Train, gate, release and check one drifted batch: every artifact the report draws."""
    write_pyproject(project, trees=10, pictures=pictures)
    for command in (["train"], ["gate"], ["release"]):
        assert main(["-C", str(project), *command]) in (0, 1)
    rows = (project / "data" / "iris.csv").read_text().splitlines()
    batch = project / "data" / "incoming" / "setosa-heavy.csv"
    batch.parent.mkdir()
    batch.write_text("\n".join(rows[:60]) + "\n")  # the header, then mostly setosa
    assert main(["-C", str(project), "drift"]) == 1
    return project / "artifacts"


def test_the_pipeline_writes_a_self_contained_report_with_its_pictures(project: Path) -> None:
    pytest.importorskip("matplotlib", reason="the pictures need the plots extra")
    artifacts = released_with_drift(project)
    text = (artifacts / reporting.HTML).read_text()
    page = Page(text)
    assert page.sections == [*PICTURES, "report"]
    # Nothing outside the file: every URL is an inline image; no script, stylesheet or font.
    assert page.urls
    assert all(url.startswith("data:image/png;base64,") for url in page.urls)
    assert not {"script", "link", "iframe", "object", "embed"} & set(page.tags)
    assert "@import" not in text
    assert "url(" not in text
    for url in page.urls:
        assert base64.b64decode(url.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    # The exact numbers are there too, next to the pictures.
    metrics = json.loads((artifacts / "metrics.json").read_text())
    assert f"accuracy {metrics['accuracy']:.4f}" in text
    assert "setosa-heavy.csv: DRIFT" in text
    assert "gate passed against" in text or "gate FAILED against" in text


def test_without_matplotlib_the_tables_stay_and_the_extra_is_named(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_plots, "available", lambda: False)
    artifacts = released_with_drift(project)
    shutil.rmtree(artifacts / "plots", ignore_errors=True)
    text = reporting.write_html(artifacts).read_text()
    page = Page(text)
    assert page.urls == []
    assert "uv pip install -e '.[plots]'" in text
    assert "requirements/plots.txt" in text
    assert page.sections[: len(PICTURES)] == PICTURES
    assert "<td>setosa</td>" in text


def test_with_pictures_off_nothing_is_drawn_and_the_page_says_so(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(data: object) -> bytes:
        raise AssertionError("a picture was drawn with pictures = false")

    for key in list(_plots.DRAW):
        monkeypatch.setitem(_plots.DRAW, key, forbidden)
    artifacts = released_with_drift(project, pictures=False)
    assert main(["-C", str(project), "report"]) == 0
    assert not (artifacts / "plots").exists()
    text = (artifacts / reporting.HTML).read_text()
    page = Page(text)
    assert page.urls == []
    assert "[tool.mlci.report] pictures = false" in text
    assert "uv pip install" not in text  # pictures are off, not missing
    assert page.sections == [*PICTURES, "report"]
    assert "<td>setosa</td>" in text


def test_each_picture_is_drawn_once_per_data(project: Path) -> None:
    pytest.importorskip("matplotlib", reason="the pictures need the plots extra")
    write_pyproject(project, trees=10, pictures=True)
    assert main(["-C", str(project), "train"]) == 0
    plots = project / "artifacts" / "plots"
    first = {p.name: p.stat().st_mtime_ns for p in plots.iterdir()}
    assert sorted(name.split("-")[0] for name in first) == [
        "confusion",
        "importance",
        "per_class",
        "simpler",
    ]
    assert main(["-C", str(project), "train"]) == 0  # a cache hit: the same pictures
    assert {p.name: p.stat().st_mtime_ns for p in plots.iterdir()} == first
    # Other numbers to draw (a hand-edited matrix stands for another model): a new picture,
    # and the old one goes.
    metrics_file = project / "artifacts" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["confusion_matrix"]["matrix"][0][0] += 1
    metrics_file.write_text(json.dumps(metrics))
    assert main(["-C", str(project), "report"]) == 0
    again = {p.name for p in plots.iterdir()}
    assert len(again) == 4
    assert next(name for name in again if name not in first).startswith("confusion-")


def test_report_writes_the_page_and_names_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "report"]) == 0
    assert capsys.readouterr().out == "report written to artifacts/report.html\n"
    assert "Nothing to show yet" in (project / "artifacts" / "report.html").read_text()


def test_a_picture_that_cannot_be_drawn_is_a_warning_not_a_failure(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(data: object) -> bytes:
        raise RuntimeError("no canvas")

    monkeypatch.setattr(_plots, "available", lambda: True)
    monkeypatch.setitem(_plots.DRAW, "confusion", broken)
    write_pyproject(project, trees=4, pictures=True)
    assert main(["-C", str(project), "train"]) == 0
    err = capsys.readouterr().err
    assert "mlci: warning:" in err
    assert "report.html not updated: RuntimeError: no canvas" in err
    assert "<!-- mlci:train -->" in (project / "artifacts" / "report.md").read_text()


CHROMIUM = next(
    (
        found
        for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
        if (found := shutil.which(name))
    ),
    None,
)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here: the structure test stands in")
def test_the_report_renders_in_headless_chromium_with_no_network(
    project: Path, tmp_path: Path
) -> None:
    """Loaded from disk with every connection refused, the heat map's blues are on screen."""
    pytest.importorskip("matplotlib", reason="the pictures need the plots extra")
    artifacts = released_with_drift(project)
    shot = tmp_path / "shot.png"
    command = [
        str(CHROMIUM),
        *("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"),
        *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
        "--proxy-server=127.0.0.1:9",  # any request would fail: the page needs none
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,1400",
        f"--screenshot={shot}",
        (artifacts / reporting.HTML).resolve().as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120, env=dict(os.environ))
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    dark_blue = ((blue > 0.35) & (red < 0.15) & (green < 0.35)).sum()
    assert dark_blue > 500, "the confusion matrix's heat map is not on the page"


def test_markdown_carries_the_confusion_matrix_and_mermaid_charts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What GitHub shows without images: the step summary and the comment are report.md."""
    artifacts = released_with_drift(project)
    markdown = (artifacts / "report.md").read_text()
    metrics = json.loads((artifacts / "metrics.json").read_text())
    labels = metrics["confusion_matrix"]["labels"]
    assert f"| true \\ predicted | {' | '.join(labels)} |" in markdown
    first = metrics["confusion_matrix"]["matrix"][0]
    assert f"| **{labels[0]}** | {' | '.join(map(str, first))} |" in markdown
    charts = markdown.split("```mermaid\nxychart-beta\n")[1:]
    titles = {chart.splitlines()[0] for chart in charts}
    assert {
        '    title "data/incoming/setosa-heavy.csv: PSI per column (line: 0.1)"',
        '    title "accuracy by registry version"',
    } <= titles
    history = next(chart for chart in charts if "registry version" in chart.splitlines()[0])
    assert '    x-axis ["v1 (production, staging)"]' in history
    assert f"    line [{metrics['accuracy']:.4g}]" in history
    capsys.readouterr()
    assert main(["-C", str(project), "registry", "list", "--chart"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-2].startswith("accuracy, bars from ")
    assert out.splitlines()[-1].startswith("v1 (production, staging)  ████")
    # ... and the listing joins the report (the pull request's comment runs it): table and chart.
    history = (artifacts / "report.md").read_text().split("<!-- mlci:history -->\n")[1]
    assert history.startswith("## Registry: 1 version\n")
    assert '    title "accuracy by registry version"' in history.split("<!-- mlci:")[0]


def test_a_text_chart_scales_between_the_lowest_and_highest_version() -> None:
    chart = reporting.text_chart([("v1", 0.5), ("v2", 1.0), ("v3", None)], "accuracy", width=20)
    lines = chart.splitlines()
    assert lines[0] == "accuracy, bars from 0.5000 (shortest) to 1.0000 (longest)"
    assert lines[1] == "v1  █" + " " * 19 + "  0.5000"
    assert lines[2] == "v2  " + "█" * 20 + "  1.0000"
    assert lines[3] == "v3  (no accuracy)"
    assert reporting.text_chart([], "accuracy") == "no version has accuracy to chart"


def test_report_open_says_so_where_there_is_no_browser(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import webbrowser

    opened: list[str] = []

    def no_browser(url: str) -> bool:
        opened.append(url)
        return False

    monkeypatch.setattr(webbrowser, "open", no_browser)
    assert main(["-C", str(project), "report", "--open"]) == 0
    assert opened == [(project / "artifacts" / "report.html").resolve().as_uri()]
    assert "no browser to open it here" in capsys.readouterr().out


def test_the_gate_charts_the_candidate_against_its_reference_once_per_metric() -> None:
    from mlci.pipeline._gate import Check, Verdict, chart

    checks = [
        Check("accuracy", 0.95, 0.9, ">= 0.9", True),
        Check("accuracy", 0.95, 0.9, "drop <= 0.02", True),
        Check("macro_f1", 0.94, 0.91, "drop <= 0.02", True),
        Check("recall", 0.8, None, ">= 0.7", True),  # a floor only: not charted
    ]
    drawn = chart(Verdict(checks, "baseline for Python 3.11", []))
    assert drawn.startswith("```mermaid\nxychart-beta\n")
    assert '    title "candidate (bars) against the baseline for Python 3.11 (line)"' in drawn
    assert '    x-axis ["accuracy", "macro_f1"]' in drawn
    assert "    bar [0.95, 0.94]" in drawn
    assert "    line [0.9, 0.91]" in drawn
    assert chart(Verdict(checks[3:], None, [])) == ""


def test_the_page_shows_hostile_names_as_text() -> None:
    from mlci._report import Section
    from mlci.reporting._html import markdown_html

    name = "b\n<!-- mlci:gate --><img src=x onerror=alert(1)> [l](e.html) `x` a|b"
    section = Section(f"Drift in {name}", rows=((name, "1"),), header=("column", "v"))
    page = markdown_html(section.markdown())
    assert "<img" not in page
    assert "<!--" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "[l](e.html) `x` a|b" in page  # shown as written, in the heading and in the cell
    assert page.count("[l](e.html) `x` a|b") == 2
