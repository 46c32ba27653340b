"""Model files: written atomically, loaded only after their SHA-256 is verified.

Two formats: joblib (the default, a pickle) and skops, which loads only the types the
repository's allow-list (``[tool.mlci] skops_trusted``) and skops' own defaults trust.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlci._io import atomic_write_bytes, sha256_bytes, sha256_file
from mlci.errors import MlciError


def dumps(estimator: Any, model_format: str) -> bytes:
    """Serialise an estimator in ``model_format`` (``joblib`` or ``skops``)."""
    if model_format == "skops":
        sio = _skops()
        data: bytes = sio.dumps(estimator)
        return data
    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def save_model(estimator: Any, path: Path) -> str:
    """Write the estimator atomically in the format its suffix names; return its SHA-256."""
    data = dumps(estimator, path.suffix.lstrip("."))
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def read_verified(path: Path, expected_sha256: str) -> bytes:
    """A model file's bytes, only when they hash to what was recorded when it was written."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MlciError(f"{path}: model file not found; run 'mlci train' first") from None
    return check_sha256(data, expected_sha256, str(path))


def check_sha256(data: bytes, expected_sha256: str, where: str) -> bytes:
    """``data`` when it hashes to what was recorded for it, else an error naming ``where``."""
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise MlciError(
            f"{where}: SHA-256 {actual[:12]}… does not match the recorded "
            f"{(expected_sha256 or 'nothing')[:12]}…; the file was modified or truncated, "
            "refusing to load it"
        )
    return data


def load_verified(path: Path, expected_sha256: str, trusted: Sequence[str] = ()) -> Any:
    """Deserialise a model only after its bytes hash to what was recorded when it was written.

    joblib files are pickles: loading one can run arbitrary code, so a file that is missing,
    truncated or tampered with is refused before it is ever deserialised.
    """
    return loads(read_verified(path, expected_sha256), path, trusted)


def loads(data: bytes, path: Path, trusted: Sequence[str] = ()) -> Any:
    """Deserialise verified bytes; skops refuses any type outside the allow-list."""
    if path.suffix == ".skops":
        sio = _skops()
        untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(trusted))
        if untrusted:
            raise MlciError(
                f"{path}: holds types outside the allow-list: {', '.join(untrusted)}; review "
                "them and add them to [tool.mlci] skops_trusted to load this model"
            )
        return sio.loads(data, trusted=list(trusted) or None)
    import joblib

    return joblib.load(io.BytesIO(data))


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise MlciError(
            "model_format = 'skops' needs the skops package: the nox sessions install it "
            "(requirements/skops.txt); by hand: uv pip install -e '.[skops]'"
        ) from None
    return sio


def file_matches(path: Path, expected_sha256: str | None) -> bool:
    """True when ``path`` exists and hashes to ``expected_sha256``."""
    return expected_sha256 is not None and path.is_file() and sha256_file(path) == expected_sha256
