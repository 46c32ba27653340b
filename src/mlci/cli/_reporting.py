"""Commands of reporting: the HTML report, and the pull request's comment."""

from __future__ import annotations

import argparse
import os
import webbrowser
from pathlib import Path
from typing import Any

from mlci._report import REPORT, step_summary
from mlci.cli._common import add, config_of
from mlci.errors import MlciError


def cmd_report(args: argparse.Namespace) -> int:
    """Write artifacts/report.html (pictures, tables, every report section); --open shows it."""
    from mlci import reporting

    config = config_of(args)
    settings = reporting.report_settings(config.sections, config.pyproject)
    path = reporting.write_html(config.artifacts, pictures=settings.pictures)
    print(f"report written to {config.relative(path.resolve())}")
    if args.open and not webbrowser.open(path.resolve().as_uri()):
        print("no browser to open it here: open the file above")
    return 0


def cmd_comment(args: argparse.Namespace) -> int:
    """Post the report as the pull request's one mlci comment (in CI); print it otherwise."""
    from mlci import reporting

    config = config_of(args)
    source = Path(args.report) if args.report else config.artifacts / REPORT
    try:
        report = source.read_text(encoding="utf-8")
    except OSError as error:
        raise MlciError(
            f"{source}: cannot read the report ({error.strerror}); run the sessions first, "
            "e.g. nox -s train gate"
        ) from None
    result = reporting.post_comment(report, os.environ)
    if result.action == "printed":
        print("not in a GitHub Actions pull request job: this is what would be posted\n")
        print(result.body)
    elif result.action == "skipped":
        print(f"comment skipped: {result.reason}")
        step_summary(f"### Pull request comment\n\nSkipped: {result.reason}.")
    else:
        print(f"comment {result.action}: {result.url}")
    return 0


def register(commands: Any) -> None:
    """Add the reporting subcommands."""
    # `mlci report` itself is declared with its sections, by the ci group.
    comment = add(commands, "comment", cmd_comment)
    comment.add_argument("--report", help="the Markdown to post (default: artifacts/report.md)")
