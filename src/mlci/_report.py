"""The same Markdown report locally and in CI: `artifacts/report.md` and GitHub's step summary."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path

from mlci._io import atomic_write_text, locked
from mlci._secrets import redact

REPORT = "report.md"
LOCK = ".report.lock"
_SECTION = re.compile(r"^<!-- mlci:(?P<name>[\w-]+) -->\n", re.MULTILINE)
ORDER = (
    "lint",
    "parity",
    "train",
    "gate",
    "checks",
    "tune",
    "diff",
    "coverage",
    "drift",
    "release",
    "history",
    "registry",
)


# What untrusted text (file, column and label names, error messages) could use to change a page:
# links and images, raw HTML (a forged section marker), tables, code spans, and @mentions.
_MARKUP = re.compile(r"[\\`\[\]|]|<(?=[A-Za-z!/?])|@(?=\w)")


class Markup(str):
    """Text that is Markdown on purpose (bold, code): a table cell that is not escaped."""


def escape(text: str) -> str:
    """``text`` as one line of literal Markdown: no link, image, HTML, table cell or mention."""
    if isinstance(text, Markup):
        return text
    line = " ".join(str(text).splitlines())
    return _MARKUP.sub(lambda m: "@\u2060" if m.group() == "@" else "\\" + m.group(), line)


@dataclasses.dataclass(frozen=True)
class Section:
    """One report section as plain data; each concern builds its own, the cli only prints it.

    The same data renders as Markdown (the report, CI's step summary) and as terminal text.
    """

    title: str
    # Title, lines, cells and notes are plain text, escaped in Markdown (``Markup`` is not).
    lines: tuple[str, ...] = ()  # paragraphs before the table
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()  # paragraphs after the table
    empty: str = ""  # said instead of an empty table
    headline: str = ""  # the terminal's first line, when it differs from the title
    blocks: tuple[str, ...] = ()  # Markdown only (charts, more tables): not in the terminal

    def markdown(self, level: int = 2) -> str:
        """For the report and the step summary."""
        parts = [f"{'#' * level} {escape(self.title)}", *map(escape, self.lines)]
        if self.rows:
            parts.append(markdown_table(self.header, self.rows))
        elif self.empty:
            parts.append(self.empty)
        return "\n\n".join([*parts, *map(escape, self.notes), *self.blocks])

    def text(self) -> str:
        """For the terminal: the title as a line, the table aligned."""
        parts = [self.headline or self.title, *self.lines]
        if self.rows:
            parts.append(text_table(self.header, self.rows))
        elif self.empty:
            parts.append(self.empty)
        return "\n".join([*parts, *self.notes])


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with aligned columns, for the terminal."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
        for line in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(escape(cell) for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(row) for row in rows)])


def mermaid_xychart(
    title: str,
    labels: Sequence[str],
    y_label: str,
    *,
    bars: Sequence[float] = (),
    line: Sequence[float] = (),
) -> str:
    """A Mermaid XY chart in a fenced block: GitHub draws it in Markdown, no image hosting.

    ``xychart-beta`` is the form GitHub's Mermaid accepts; the exact numbers stay in the tables.
    """
    values = [*bars, *line]
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.05 or 0.05
    axis = ", ".join(_quoted(label) for label in labels)
    lines = [
        "```mermaid",
        "xychart-beta",
        f"    title {_quoted(title)}",
        f"    x-axis [{axis}]",
        f"    y-axis {_quoted(y_label)} {_number(max(0.0, low - pad) if low >= 0 else low - pad)}"
        f" --> {_number(high + pad)}",
    ]
    if bars:
        lines.append(f"    bar [{', '.join(map(_number, bars))}]")
    if line:
        lines.append(f"    line [{', '.join(map(_number, line))}]")
    return "\n".join([*lines, "```"])


def _quoted(text: str) -> str:
    """A Mermaid string: one line, no quote, no HTML (Mermaid's entity codes), no mention."""
    line = " ".join(str(text).splitlines()).replace('"', "'")
    line = line.replace("<", "#lt;").replace(">", "#gt;").replace("@", "@\u2060")
    return '"' + line + '"'


def _number(value: float) -> str:
    return f"{value:.4g}"


def publish(artifacts: Path, name: str, markdown: str) -> Path:
    """Put one section into `artifacts/report.md`, replacing an older one of the same name.

    When `GITHUB_STEP_SUMMARY` is set (in GitHub Actions), the section is appended there too, so a
    developer's report and CI's summary are built by the same code from the same data.
    """
    body = _unmarked(redact(markdown)).rstrip() + "\n"
    path = artifacts / REPORT
    # Sessions run in parallel: each read-modify-write of the report holds the report's lock.
    with locked(artifacts / LOCK, "the report"):
        sections = _read_sections(path)
        sections[name] = body
        ordered = sorted(
            sections, key=lambda key: (ORDER.index(key) if key in ORDER else len(ORDER), key)
        )
        text = "# mlci report\n\n" + "\n".join(
            f"<!-- mlci:{key} -->\n{sections[key]}" for key in ordered
        )
        atomic_write_text(path, text)
    step_summary(body)
    return path


def _unmarked(markdown: str) -> str:
    """A section's text with no line that reads as a section marker: markers cannot be forged."""
    return _SECTION.sub(lambda m: "\\" + m.group(), markdown)


def step_summary(markdown: str) -> None:
    """Append to GitHub's step summary of this job, when there is one (``GITHUB_STEP_SUMMARY``)."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as stream:
            stream.write(redact(markdown).rstrip() + "\n\n")


def _read_sections(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    marks = list(_SECTION.finditer(text))
    sections = {}
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        sections[mark["name"]] = text[mark.end() : end].rstrip("\n") + "\n"
    return sections
