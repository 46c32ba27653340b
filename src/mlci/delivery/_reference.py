"""What the gate judges a candidate against: production scored on the candidate's rows, or the
baseline; never a reference made on other data.

Champion/challenger as MLflow's ``evaluate(..., baseline_model=...)`` does it: the production
model predicts the candidate's held-out rows, so both are measured on the same data.
"""

from __future__ import annotations

from typing import Any

from mlci import pipeline
from mlci.delivery._index import Version
from mlci.delivery._registry import PRODUCTION, Registry
from mlci.pipeline import Config, Reference


def gate_reference(
    config: Config, python: str, candidate: dict[str, Any], registry: Registry | None = None
) -> Reference:
    """Production when the registry has one, else this Python's baseline.

    ``candidate`` is the candidate's lineage ``data`` (sha256 and schema).
    """
    registry = registry or Registry.of(config)
    production = registry.alias(PRODUCTION)
    if production is None:
        return pipeline.baseline_reference(config, python, candidate)
    return champion_reference(config, registry, production, candidate)


def champion_reference(
    config: Config, registry: Registry, champion: Version, candidate: dict[str, Any]
) -> Reference:
    """``champion`` scored on the candidate's held-out rows, when it takes the same columns."""
    name = f"production (version {champion.number})"
    manifest = registry.manifest(champion)
    theirs = {"schema": manifest.schema(), "sha256": candidate.get("sha256")}
    why = pipeline.incomparable(candidate, theirs)  # the same rows: only the schema can differ
    if why:
        return Reference(
            None,
            name,
            f"{name} cannot be scored on the candidate's rows: {why}. Only the floors apply",
        )
    model = registry.load_model(champion, config.skops_trusted, model_format=config.model_format)
    scored = pipeline.scalar_metrics(
        pipeline.score_held_out(config, model, candidate.get("sha256"))
    )
    recorded = pipeline.headline_text(champion.metrics, ", ")
    lineage = registry.lineage(champion)
    return Reference(
        scored,
        f"{name} on the candidate's held-out rows",
        f"Champion/challenger: {name} predicted the same held-out rows as the candidate "
        f"(on its own test rows it recorded {recorded or 'no metrics'})",
        params=lineage.get("config"),
    )
