"""The ``mlci`` command: one module per command group, each handler parses, calls and prints."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from mlci import __version__
from mlci._secrets import RedactingStream, redact
from mlci.cli import _ci, _delivery, _pipeline, _project, _reporting, _serving
from mlci.errors import MlciError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand sets ``handler``."""
    parser = argparse.ArgumentParser(
        prog="mlci",
        description="Validate data, train, gate, check parity: the steps of the nox pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"mlci {__version__}")
    parser.add_argument(
        "-C",
        "--project",
        default=".",
        metavar="DIR",
        help="project folder holding pyproject.toml (default: .)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (_project, _pipeline, _delivery, _serving, _reporting, _ci):
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print a message and exit non-zero, without a traceback.

    stderr is redacted for the whole command: a library's log line or warning may quote a URL
    with its credentials, and secrets never leave the process.
    """
    stderr = sys.stderr
    sys.stderr = RedactingStream(stderr)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=LIGHTGBM_NAMES, category=UserWarning)
            return _run(argv)
    finally:
        sys.stderr = stderr


# LightGBM 4.6 (the last for Python 3.9) names a model fitted on an array's columns itself, and
# scikit-learn 1.6 then warns at every prediction that the array has no names
# (lightgbm-org/LightGBM#6798, fixed in 4.7): a notice about their code, on every row scored.
LIGHTGBM_NAMES = "X does not have valid feature names, but LGBM"


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe is noticed here, not at exit
    except BrokenPipeError:  # `mlci registry list | head`: the reader has gone, so be quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE
    except MlciError as error:
        print(f"mlci: error: {redact(str(error))}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("mlci: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
