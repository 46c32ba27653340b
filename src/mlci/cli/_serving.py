"""`mlci serve`: the prediction server, from the optional serve extra."""

from __future__ import annotations

import argparse
from typing import Any

from mlci.cli._common import add, config_of
from mlci.errors import MlciError

SERVE_EXTRA_HINT = "uv pip install -e '.[serve]' (or: nox -s serve)"


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the model an alias points at (MLflow's scoring protocol), reloading when it moves."""
    try:
        from mlci.serving._server import serve
    except ImportError as exc:
        raise MlciError(
            f"mlci serve needs the serve extra ({exc}): install it with {SERVE_EXTRA_HINT}"
        ) from None
    serve(config_of(args), alias=args.alias, host=args.host, port=args.port)
    return 0


def register(commands: Any) -> None:
    """Add the serving subcommand."""
    serve = add(commands, "serve", cmd_serve)
    serve.add_argument("--alias", help="the registry alias to serve (default: production)")
    serve.add_argument(
        "--host", help="address to bind (default: 127.0.0.1; others only when given here)"
    )
    serve.add_argument("--port", type=_port, help="port (default: 8080)")


def _port(text: str) -> int:
    """A TCP port: a usage error otherwise (70000 was an OverflowError from the socket)."""
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"'{text}': give a port from 0 to 65535")
    return int(text)
