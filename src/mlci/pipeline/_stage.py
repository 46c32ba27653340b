"""The training stage's cache key and freshness check, after DVC's re-run rules.

A stage is stale when the data, the resolved config, the training code, the lock file or the
Python version changed, or when any output is missing or modified.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import sys
from pathlib import Path
from typing import Any

from mlci._io import atomic_write_json, canonical_json, read_json, sha256_file
from mlci.errors import MlciError
from mlci.pipeline._config import Config
from mlci.pipeline._model import file_matches

PACKAGE = Path(__file__).resolve().parents[1]  # src/mlci
_MLCI_IMPORT = re.compile(r"^\s*(?:from|import)\s+mlci\.(\w+)", re.MULTILINE)
# The manifest is an input since it describes how the data is read and prepared (dialect, kinds).
INPUT_NAMES = ("data", "manifest", "config", "code", "lock", "python")
COMPLETE = "complete"


@dataclasses.dataclass(frozen=True)
class Artifacts:
    """Where a training run's outputs live."""

    folder: Path
    model_format: str = "joblib"

    @classmethod
    def of(cls, config: Config) -> Artifacts:
        """The configured artifacts folder and model format."""
        return cls(config.artifacts, config.model_format)

    @property
    def model(self) -> Path:
        """The model file: ``model.joblib`` or ``model.skops``."""
        return self.folder / f"model.{self.model_format}"

    @property
    def predictions(self) -> Path:
        """The held-out rows' expected and predicted labels."""
        return self.folder / "predictions.json"

    @property
    def files(self) -> tuple[Path, ...]:
        """Every output, lineage last: the order in which a run is committed."""
        return (self.model, self.metrics, self.predictions, self.lineage)

    @property
    def metrics(self) -> Path:
        """Held-out metrics."""
        return self.folder / "metrics.json"

    @property
    def lineage(self) -> Path:
        """Inputs, versions and hashes of the run; written last, so it marks a complete run."""
        return self.folder / "lineage.json"


@dataclasses.dataclass(frozen=True)
class Status:
    """Whether the artifacts are up to date, and if not, why."""

    key: str
    inputs: dict[str, str | None]
    reasons: list[str]
    lineage: dict[str, Any] | None = None

    @property
    def up_to_date(self) -> bool:
        """True when the artifacts are complete and were made from the current inputs."""
        return not self.reasons


def python_id() -> str:
    """The interpreter, as precisely as a pickled model depends on it."""
    version = ".".join(str(part) for part in sys.version_info[:3])
    return f"{sys.implementation.name}-{version}"


def training_sources() -> list[Path]:
    """The `pipeline` package's source and the shared mlci modules it imports, sorted.

    Derived from the code, never from a list to keep up to date; import-linter keeps the pipeline
    from importing delivery, serving or ci, so their settings and code never reach the key.
    """
    pipeline = sorted((PACKAGE / "pipeline").glob("*.py"))
    shared = {
        name
        for path in pipeline
        for name in _MLCI_IMPORT.findall(path.read_text(encoding="utf-8"))
        if name != "pipeline"
    }
    return pipeline + sorted(PACKAGE / f"{name}.py" for name in shared)


def code_hash() -> str:
    """SHA-256 over the source of every module that training runs."""
    digest = hashlib.sha256()
    for path in training_sources():
        name = path.relative_to(PACKAGE).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def current_inputs(config: Config) -> dict[str, str | None]:
    """Hash every input of the training stage, cheaply and without importing scikit-learn."""
    lock = config.lock
    return {
        "data": sha256_file(config.data) if config.data.is_file() else None,
        "manifest": sha256_file(config.manifest) if config.manifest.is_file() else None,
        "config": hashlib.sha256(canonical_json(config.resolved()).encode()).hexdigest(),
        "code": code_hash(),
        "lock": sha256_file(lock) if lock is not None and lock.is_file() else None,
        "python": python_id(),
    }


def stage_key(inputs: dict[str, str | None]) -> str:
    """The cache key: one SHA-256 over all recorded inputs."""
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()


def read_lineage(artifacts: Artifacts) -> dict[str, Any] | None:
    """The recorded lineage, or None when there is none yet."""
    if not artifacts.lineage.exists():
        return None
    lineage = read_json(artifacts.lineage, "lineage")
    return lineage if isinstance(lineage, dict) else None


def read_run(config: Config) -> dict[str, Any] | None:
    """The lineage of the artifacts' training run when it is complete, else None."""
    lineage = read_lineage(Artifacts.of(config))
    return lineage if lineage is not None and lineage.get("status") == COMPLETE else None


def annotate_lineage(config: Config, key: str, value: Any) -> None:
    """Record where else a complete run went (e.g. its tracking server) in its lineage.

    The stage key, inputs and output hashes are untouched: the run is still up to date.
    """
    artifacts = Artifacts.of(config)
    lineage = read_run(config)
    if lineage is None:
        raise MlciError(f"{config.relative(artifacts.lineage)}: no complete training run")
    lineage[key] = value
    atomic_write_json(artifacts.lineage, lineage)


def check(config: Config) -> Status:
    """Compare the current inputs with the ones the artifacts were made from."""
    inputs = current_inputs(config)
    key = stage_key(inputs)
    artifacts = Artifacts.of(config)
    lineage = read_lineage(artifacts)
    if lineage is None:
        return Status(
            key, inputs, [f"no complete training run in {config.relative(artifacts.folder)}/"]
        )
    reasons = []
    if lineage.get("status") != COMPLETE:
        reasons.append("the last training run did not finish")
    recorded = lineage.get("stage", {}).get("inputs", {})
    for name in INPUT_NAMES:
        if recorded.get(name) != inputs[name]:
            reasons.append(f"{name} changed")
    outputs = lineage.get("outputs", {})
    for name, path in (("model", artifacts.model), ("metrics", artifacts.metrics)):
        if not file_matches(path, outputs.get(name)):
            reasons.append(f"{name} output is missing or modified ({config.relative(path)})")
    return Status(key, inputs, reasons, lineage)
