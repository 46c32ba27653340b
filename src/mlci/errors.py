"""The one exception type a user sees: printed as a message, never as a traceback."""

from __future__ import annotations

from mlci._secrets import redact


class MlciError(Exception):
    """A problem with the user's input (config, data, artifacts) rather than a bug in mlci.

    The CLI prints ``str(error)`` to stderr and exits with ``exit_code``: 2 for invalid input,
    1 for a check that ran and failed. The message is redacted (``mlci._secrets``) when the error
    is made: it often quotes a third-party library's error text, which may hold credentials.
    """

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(redact(message))
        self.exit_code = exit_code
