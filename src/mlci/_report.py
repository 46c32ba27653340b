"""The same Markdown report locally and in CI: `artifacts/report.md` and GitHub's step summary."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path

from mlci._io import atomic_write_text, locked

REPORT = "report.md"
LOCK = ".report.lock"
_SECTION = re.compile(r"^<!-- mlci:(?P<name>[\w-]+) -->\n", re.MULTILINE)
ORDER = (
    "lint",
    "parity",
    "train",
    "gate",
    "checks",
    "diff",
    "coverage",
    "drift",
    "release",
    "registry",
)


@dataclasses.dataclass(frozen=True)
class Section:
    """One report section as plain data; each concern builds its own, the cli only prints it.

    The same data renders as Markdown (the report, CI's step summary) and as terminal text.
    """

    title: str
    lines: tuple[str, ...] = ()  # paragraphs before the table
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()  # paragraphs after the table
    empty: str = ""  # said instead of an empty table
    headline: str = ""  # the terminal's first line, when it differs from the title

    def markdown(self, level: int = 2) -> str:
        """For the report and the step summary."""
        parts = [f"{'#' * level} {self.title}", *self.lines]
        if self.rows:
            parts.append(markdown_table(self.header, self.rows))
        elif self.empty:
            parts.append(self.empty)
        return "\n\n".join([*parts, *self.notes])

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
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(row) for row in rows)])


def publish(artifacts: Path, name: str, markdown: str) -> Path:
    """Put one section into `artifacts/report.md`, replacing an older one of the same name.

    When `GITHUB_STEP_SUMMARY` is set (in GitHub Actions), the section is appended there too, so a
    developer's report and CI's summary are built by the same code from the same data.
    """
    body = markdown.rstrip() + "\n"
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
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as stream:
            stream.write(body + "\n")
    return path


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
