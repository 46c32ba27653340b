"""What every command group shares: the project's config and the way a subcommand is declared."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from mlci.pipeline import Config

Handler = Callable[[argparse.Namespace], int]


def load_all(root: Path) -> Config:
    """Load ``[tool.mlci]`` and check every concern's part of it, so a typo fails any command."""
    from mlci.delivery import delivery_settings, drift_settings, registry_location
    from mlci.pipeline import load_config
    from mlci.reporting import report_settings
    from mlci.serving import serve_settings

    config = load_config(root)
    registry_location(config)
    drift_settings(config)
    delivery_settings(config)
    serve_settings(config)
    report_settings(config.sections, config.pyproject)
    return config


def config_of(args: argparse.Namespace) -> Config:
    """The ``[tool.mlci]`` config of the project named by ``-C``, every section checked."""
    return load_all(Path(args.project))


def add(commands: Any, name: str, handler: Handler) -> argparse.ArgumentParser:
    """Declare a subcommand whose help is its handler's docstring."""
    doc = (handler.__doc__ or "").strip()
    parser: argparse.ArgumentParser = commands.add_parser(name, help=doc, description=doc)
    parser.set_defaults(handler=handler)
    return parser


def publish(config: Config, name: str, markdown: str, *, draw: bool = True) -> None:
    """A section into ``report.md`` (and CI's step summary), then ``report.html`` rebuilt.

    ``draw=False`` uses only pictures drawn before (the cheap paths); with
    ``[tool.mlci.report] pictures = false`` nothing is drawn.
    """
    from mlci import _report, reporting

    _report.publish(config.artifacts, name, markdown)
    pictures = reporting.report_settings(config.sections, config.pyproject).pictures
    try:
        reporting.write_html(config.artifacts, draw=draw, pictures=pictures)
    except Exception as error:  # a picture that cannot be drawn never fails the command
        print(
            f"mlci: warning: {config.artifacts / reporting.HTML} not updated: "
            f"{type(error).__name__}: {error}",
            file=sys.stderr,
        )
