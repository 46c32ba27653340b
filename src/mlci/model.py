"""Model files: written atomically with joblib, loaded only after their SHA-256 is verified."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from mlci.errors import MlciError
from mlci.files import atomic_write_bytes, sha256_bytes, sha256_file


def save_model(estimator: Any, path: Path) -> str:
    """Dump the estimator with joblib, write it atomically and return its SHA-256."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def load_verified(path: Path, expected_sha256: str) -> Any:
    """Unpickle a model only after its bytes hash to what was recorded when it was written.

    joblib files are pickles: loading one can run arbitrary code, so a file that is missing,
    truncated or tampered with is refused before it is ever deserialised.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MlciError(f"{path}: model file not found; run 'mlci train' first") from None
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise MlciError(
            f"{path}: SHA-256 {actual[:12]}… does not match the recorded {expected_sha256[:12]}…; "
            "the file was modified or truncated, refusing to load it "
            "(retrain with 'mlci train --force')"
        )
    import joblib

    return joblib.load(io.BytesIO(data))


def file_matches(path: Path, expected_sha256: str | None) -> bool:
    """True when ``path`` exists and hashes to ``expected_sha256``."""
    return expected_sha256 is not None and path.is_file() and sha256_file(path) == expected_sha256
