"""The registry's state as plain data: versions, alias moves, and the rules their replay keeps.

Every backend (a folder, object storage, MLflow) records the same events; replaying them here,
with the same checks, is what gives every backend the same guarantees. The history's charts
and the report's snapshot are read from the same data.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Callable
from typing import Any

from mlci._report import mermaid_xychart
from mlci.errors import MlciError

INDEX_FORMAT = 1
EVENT_FORMAT = 1
VERSIONS = "versions"


@dataclasses.dataclass(frozen=True)
class Version:
    """One registered model: what it was trained from, how well it did, and its files' hashes."""

    number: int
    stage_key: str
    created_at: str
    created_by: str
    model_file: str
    files: dict[str, str]
    metrics: dict[str, float]
    data_sha256: str
    python: str
    folder: str = ""  # its files' prefix in the registry, e.g. "versions/3f2a…"
    trained_at: str = ""  # when its training run finished ("" in versions from before mlci 0.x)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for events, snapshots and ``registry list --json``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Version:
        """Read a recorded version; a missing field is a KeyError that the reader reports."""
        optional = ("folder", "trained_at")  # absent from older records
        fields = {f.name: raw[f.name] for f in dataclasses.fields(cls) if f.name not in optional}
        number = int(fields["number"])
        return cls(
            **fields,
            folder=raw.get("folder") or _legacy(number),
            trained_at=str(raw.get("trained_at") or ""),
        )


@dataclasses.dataclass(frozen=True)
class Move:
    """One alias move, as the history records it."""

    alias: str
    action: str  # "promote" or "rollback"
    from_version: int | None
    to_version: int
    time: str
    user: str
    reason: str
    # A rollback's deleted targets passed over on the way: said to the user, not recorded.
    skipped: tuple[int, ...] = dataclasses.field(default=(), compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for the history."""
        raw = dataclasses.asdict(self)
        del raw["skipped"]
        return raw


@dataclasses.dataclass
class Index:
    """The whole registry state: the replay of its events up to ``head``."""

    versions: dict[int, Version]
    aliases: dict[str, int]
    history: list[Move]
    head: int = 0  # the last event replayed
    snapshot: int = 0  # the event of the newest snapshot read or written
    # Versions the history names that the backend no longer has (deleted in MLflow): history,
    # not corruption. Their moves replay; an alias on one is reported, a rollback skips it.
    deleted: set[int] = dataclasses.field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: versions, aliases, history."""
        return {
            "format": INDEX_FORMAT,
            "versions": [self.versions[n].to_dict() for n in sorted(self.versions)],
            "aliases": dict(sorted(self.aliases.items())),
            "history": [move.to_dict() for move in self.history],
        }


@dataclasses.dataclass(frozen=True)
class Registered:
    """The outcome of ``register``: the version, and whether it was new."""

    version: Version
    created: bool


def _apply(
    index: Index,
    raw: Any,
    seq: int,
    corrupt: Callable[[str], MlciError],
    *,
    deletable: bool = False,
) -> None:
    """Replay one event onto ``index``, checking that it follows from the state before it.

    ``deletable``: the backend lets a version be deleted (MLflow), so a move to a version it no
    longer has is history: the number goes to ``index.deleted`` instead of being an error.
    """
    try:
        if raw.get("format") != EVENT_FORMAT:
            raise ValueError(f"unknown format {raw.get('format')!r} (a newer mlci?)")
        if raw.get("seq") != seq:
            raise ValueError(f"it says it is event {raw.get('seq')!r}")
        kind = raw["kind"]
        if kind == "import" and seq == 1:
            imported = _parse_index(raw["index"])
            index.versions, index.aliases, index.history = (
                imported.versions,
                imported.aliases,
                imported.history,
            )
        elif kind == "register":
            version = Version.from_dict(raw["version"])
            if version.number != max(index.versions, default=0) + 1:
                raise ValueError(f"version {version.number} is not the next number")
            index.versions[version.number] = version
        elif kind == "move":
            move = Move(**raw["move"])
            if move.to_version not in index.versions:
                if not deletable:
                    raise ValueError(f"version {move.to_version} is not registered")
                index.deleted.add(move.to_version)
            if move.from_version != index.aliases.get(move.alias):
                raise ValueError(f"'{move.alias}' did not point at {move.from_version}")
            index.history.append(move)
            targets = targets_of(index.history, move.alias)
            if targets[-1] != move.to_version:
                raise ValueError(f"a rollback of '{move.alias}' to the wrong version")
            index.aliases[move.alias] = move.to_version
        else:
            raise ValueError(f"unknown kind {kind!r}")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise corrupt(f"{type(exc).__name__}: {exc}") from None
    index.head = seq


def _parse_index(raw: Any) -> Index:
    """An index as ``Index.to_dict`` wrote it (snapshots, imports, ``index.json``)."""
    if raw.get("format") != INDEX_FORMAT:
        raise ValueError(f"unknown format {raw.get('format')!r}")
    versions = {v.number: v for v in map(Version.from_dict, raw["versions"])}
    aliases = {str(name): int(number) for name, number in raw["aliases"].items()}
    history = [Move(**move) for move in raw["history"]]
    for alias in {move.alias for move in history}:
        targets_of(history, alias)  # a history that cannot be replayed is corrupt
    dangling = sorted(name for name, number in aliases.items() if number not in versions)
    if dangling:
        raise ValueError(
            f"alias(es) {', '.join(dangling)} point at versions that are not registered"
        )
    return Index(versions, aliases, history)


# The first a version has is charted: a classifier's accuracy, a regressor's R².
CHART_METRICS = ("accuracy", "macro_f1", "f1", "roc_auc", "r2", "rmse")
SNAPSHOT = "registry.json"  # the versions' metrics and the aliases, in artifacts/, for the report


def headline_metric(index: Index) -> str | None:
    """The metric the history charts: the first of CHART_METRICS that a version has."""
    found = {name for version in index.versions.values() for name in version.metrics}
    return next((name for name in CHART_METRICS if name in found), min(found, default=None))


def history_chart(index: Index) -> str:
    """The headline metric across the versions, as a Mermaid line ("" with nothing to draw)."""
    metric = headline_metric(index)
    if metric is None:
        return ""
    aliases: dict[int, list[str]] = {}
    for alias, number in sorted(index.aliases.items()):
        aliases.setdefault(number, []).append(alias)
    kept = [v for _, v in sorted(index.versions.items()) if metric in v.metrics]
    labels = [
        f"v{v.number}" + (f" ({', '.join(aliases[v.number])})" if v.number in aliases else "")
        for v in kept
    ]
    values = [v.metrics[metric] for v in kept]
    return mermaid_xychart(f"{metric} by registry version", labels, metric, line=values)


def snapshot(index: Index, location: str) -> dict[str, Any]:
    """What the report draws of the registry: each version's metrics, the aliases, and which
    metric the history charts (the report does not choose it again)."""
    return {
        "location": location,
        "metric": headline_metric(index),
        "versions": [
            {"number": v.number, "created_at": v.created_at, "metrics": v.metrics}
            for _, v in sorted(index.versions.items())
        ],
        "aliases": dict(sorted(index.aliases.items())),
    }


def age_days(timestamp: str, now: datetime.datetime | None = None) -> float | None:
    """Days since an ISO 8601 time (None when there is none to read)."""
    try:
        then = datetime.datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=datetime.timezone.utc)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return (now - then).total_seconds() / 86400


def targets_of(history: list[Move], alias: str) -> list[int]:
    """The alias's targets as a stack: a promotion pushes one, a rollback pops one."""
    stack: list[int] = []
    for move in history:
        if move.alias != alias:
            continue
        if move.action == "rollback":
            # Down to the recorded target: one step, or past repeated and deleted targets.
            if move.to_version not in stack[:-1]:
                raise ValueError(f"alias '{alias}' is rolled back to a version it never had")
            stack.pop()
            while stack[-1] != move.to_version:
                stack.pop()
        else:
            stack.append(move.to_version)
    return stack


def rolled_back(history: list[Move], alias: str, number: int) -> Move | None:
    """The last rollback that took ``alias`` away from version ``number``, if any."""
    for move in reversed(history):
        if move.alias == alias and move.action == "rollback" and move.from_version == number:
            return move
    return None


# MLflow's rule, the strictest backend's, on every backend: a registry can move to MLflow, and a
# name MLflow refuses would be written to the history and then fail to mirror.
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VERSION_LIKE = re.compile(r"^([vV]?[0-9]+)$")


def check_alias(alias: str) -> None:
    """Refuse an alias name that any backend would refuse, before anything is written."""
    if not _ALIAS.match(alias):
        raise MlciError(
            f"alias '{alias}': use 1 to 255 ASCII letters, digits, '_' or '-' "
            "(MLflow's rule, kept on every backend)"
        )
    if alias.lower() == "latest" or _VERSION_LIKE.match(alias):
        raise MlciError(
            f"alias '{alias}' is reserved: 'latest', numbers and v<number> name versions"
        )


def _legacy(number: int) -> str:
    return f"{VERSIONS}/{number}"
