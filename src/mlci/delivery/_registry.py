"""The model registry: immutable numbered versions, movable aliases, and the history of every move.

Layout of the registry folder (``[tool.mlci] registry``, or ``MLCI_REGISTRY``)::

    index.json          versions, aliases and alias history: the one source of truth
    versions/<N>/       model, metrics, lineage, predictions, the training data and its manifest
    .lock               serialises writers (register, promote, rollback)

A version folder is complete before it is renamed into ``versions/``, and it exists before the
index names it; the index is replaced atomically. A writer killed at any point therefore leaves
either the old index or the new one, never a listed half version or an alias to nothing. Readers
need no lock. A folder that the index does not name is a leftover of a killed writer: it is
invisible, and the next writer removes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlci import pipeline
from mlci._io import atomic_write_json, locked, read_json, sha256_file, utc_now
from mlci.delivery._settings import registry_location
from mlci.errors import MlciError
from mlci.pipeline import (
    Config,
    loads,
    read_verified,
    scalar_metrics,
)

INDEX_FORMAT = 1
DATA = "data.csv"
MANIFEST = "data.manifest.json"
INDEX = "index.json"
LOCK = ".lock"
STAGING = ".staging-"
PRODUCTION = "production"
STAGING_ALIAS = "staging"


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for the index."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Version:
        """Read an index entry; a missing field is a KeyError that the index check reports."""
        return cls(**{field.name: raw[field.name] for field in dataclasses.fields(cls)})


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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for the history."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Index:
    """The whole registry state, read from and written to ``index.json`` in one piece."""

    versions: dict[int, Version]
    aliases: dict[str, int]
    history: list[Move]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON for ``index.json``."""
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


class Registry:
    """A registry folder on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, config: Config) -> Registry:
        """The configured registry (``MLCI_REGISTRY`` wins over ``[tool.mlci] registry``)."""
        return cls(registry_location(config))

    @property
    def index_path(self) -> Path:
        """Where the index lives."""
        return self.root / INDEX

    def folder(self, number: int) -> Path:
        """A version's folder."""
        return self.root / "versions" / str(number)

    # Reading ---------------------------------------------------------------------------------

    def read(self) -> Index:
        """The current index; empty for a new registry, an error for a corrupt one."""
        if not self.index_path.exists():
            return Index({}, {}, [])
        raw = read_json(self.index_path, "registry index")
        try:
            if raw.get("format") != INDEX_FORMAT:
                raise ValueError(f"unknown format {raw.get('format')!r}")
            versions = {v.number: v for v in map(Version.from_dict, raw["versions"])}
            aliases = {str(name): int(number) for name, number in raw["aliases"].items()}
            history = [Move(**move) for move in raw["history"]]
            for alias in {move.alias for move in history}:
                targets_of(history, alias)  # a history that cannot be replayed is corrupt
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MlciError(
                f"{self.index_path}: corrupt registry index ({type(exc).__name__}: {exc}); "
                "it is not rebuilt automatically: restore it from a backup"
            ) from None
        dangling = sorted(name for name, number in aliases.items() if number not in versions)
        if dangling:
            raise MlciError(
                f"{self.index_path}: corrupt registry index: alias(es) {', '.join(dangling)} "
                "point at versions that are not registered"
            )
        return Index(versions, aliases, history)

    def versions(self) -> list[Version]:
        """Every version, oldest first."""
        index = self.read()
        return [index.versions[number] for number in sorted(index.versions)]

    def get(self, reference: str | int, index: Index | None = None) -> Version:
        """A version by number or by alias (in ``index`` when the caller has read it)."""
        index = self.read() if index is None else index
        text = str(reference)
        if text.isdigit():
            number = int(text)
            if number not in index.versions:
                raise MlciError(f"{self.root}: no version {number} in the registry")
            return index.versions[number]
        if text not in index.aliases:
            known = ", ".join(sorted(index.aliases)) or "none yet"
            raise MlciError(f"{self.root}: no alias '{text}' (aliases: {known})")
        return index.versions[index.aliases[text]]

    def alias(self, name: str) -> Version | None:
        """The version an alias points at, or None."""
        index = self.read()
        number = index.aliases.get(name)
        return None if number is None else index.versions[number]

    def history(self, alias: str | None = None) -> list[Move]:
        """Every alias move, oldest first (only ``alias``'s when given)."""
        return [move for move in self.read().history if alias in (None, move.alias)]

    def verify(self, version: Version, *, skip: tuple[str, ...] = ()) -> list[str]:
        """Every file of a version that is missing or does not hash to its recorded SHA-256."""
        problems = []
        for name, expected in sorted(version.files.items()):
            if name in skip:
                continue
            path = self.folder(version.number) / name
            if not path.is_file():
                problems.append(f"{path}: missing")
            elif sha256_file(path) != expected:
                problems.append(f"{path}: SHA-256 differs from the recorded {expected[:12]}…")
        return problems

    def manifest(self, version: Version) -> pipeline.Manifest:
        """The version's own copy of its data's manifest: the schema travels with the model."""
        return pipeline.load_manifest(self.folder(version.number) / MANIFEST)

    def load_model(self, version: Version, trusted: tuple[str, ...] = ()) -> Any:
        """Load a version's model after verifying every one of its files."""
        path = self.folder(version.number) / version.model_file
        # The model is hashed as it is read, once; then the other files.
        problems = []
        try:
            data = read_verified(path, version.files[version.model_file])
        except MlciError as error:
            problems.append(str(error))
        problems += self.verify(version, skip=(version.model_file,))
        if problems:
            raise MlciError(
                f"version {version.number} failed verification, refusing to load it:\n  "
                + "\n  ".join(problems)
            )
        return loads(data, path, trusted)

    # Writing ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Index]:
        """Hold the writers' lock and yield the current index."""
        with locked(self.root / LOCK, "the registry"):
            yield self.read()

    def _write(self, index: Index) -> None:
        atomic_write_json(self.index_path, index.to_dict(), sort_keys=False)

    def register(self, config: Config) -> Registered:
        """Copy the up-to-date artifacts into a new version; the same stage key gives the same."""
        status = pipeline.stage_status(config)
        if not status.up_to_date or status.lineage is None:
            raise MlciError(
                "the artifacts are not up to date (" + "; ".join(status.reasons) + "); "
                "run 'mlci train' before registering"
            )
        artifacts = pipeline.Artifacts.of(config)
        with self._locked() as index:
            for version in index.versions.values():
                if version.stage_key == status.key:
                    return Registered(version, created=False)
            self._remove_leftovers(index)
            number = max(index.versions, default=0) + 1
            staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=self.root))
            try:
                sources = [*artifacts.files, config.data, config.manifest]
                names = [*(path.name for path in artifacts.files), DATA, MANIFEST]
                files = {}
                for source, name in zip(sources, names):
                    _copy(source, staging / name)
                    files[name] = sha256_file(staging / name)
                self._check_copied(files, status.lineage, artifacts)
                _fsync_dir(staging)
                target = self.folder(number)
                target.parent.mkdir(exist_ok=True)
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            version = Version(
                number=number,
                stage_key=status.key,
                created_at=utc_now(),
                created_by=_user(),
                model_file=artifacts.model.name,
                files=files,
                metrics=scalar_metrics(read_json(pipeline.Artifacts(target).metrics, "metrics")),
                data_sha256=files[DATA],
                python=str(status.lineage.get("python")),
            )
            index.versions[number] = version
            self._write(index)
        return Registered(version, created=True)

    @staticmethod
    def _check_copied(
        files: dict[str, str], lineage: dict[str, Any], artifacts: pipeline.Artifacts
    ) -> None:
        """The copies must be the files the lineage recorded, or the artifacts moved under us."""
        outputs = lineage.get("outputs", {})
        expected = {
            artifacts.model.name: outputs.get("model"),
            DATA: lineage.get("data", {}).get("sha256"),
        }
        for name, sha in expected.items():
            if files[name] != sha:
                raise MlciError(
                    f"{name} changed while it was being registered; run 'mlci train' and retry"
                )

    def _remove_leftovers(self, index: Index) -> None:
        """Remove what killed writers left: staging folders and versions the index never named."""
        for leftover in self.root.glob(f"{STAGING}*"):
            shutil.rmtree(leftover, ignore_errors=True)
        folder = self.root / "versions"
        if folder.is_dir():
            for path in folder.iterdir():
                if not (path.name.isdigit() and int(path.name) in index.versions):
                    shutil.rmtree(path, ignore_errors=True)

    def promote(self, reference: str | int, alias: str, reason: str = "") -> Move:
        """Point ``alias`` at a version, recording who moved it, when, from where and why."""
        _check_alias(alias)
        with self._locked() as index:
            version = self.get(reference, index)
            move = Move(
                alias,
                "promote",
                index.aliases.get(alias),
                version.number,
                utc_now(),
                _user(),
                reason,
            )
            index.aliases[alias] = version.number
            index.history.append(move)
            self._write(index)
        return move

    def rollback(self, alias: str, reason: str = "") -> Move:
        """Move ``alias`` back to the target it had before its current one."""
        with self._locked() as index:
            if alias not in index.aliases:
                raise MlciError(f"{self.root}: no alias '{alias}' to roll back")
            targets = targets_of(index.history, alias)
            if len(targets) < 2:
                raise MlciError(
                    f"alias '{alias}' has no earlier target to roll back to "
                    f"(it has only ever pointed at version {index.aliases[alias]})"
                )
            move = Move(alias, "rollback", targets[-1], targets[-2], utc_now(), _user(), reason)
            index.aliases[alias] = targets[-2]
            index.history.append(move)
            self._write(index)
        return move


def targets_of(history: list[Move], alias: str) -> list[int]:
    """The alias's targets as a stack: a promotion pushes one, a rollback pops one."""
    stack: list[int] = []
    for move in history:
        if move.alias != alias:
            continue
        if move.action == "rollback":
            if len(stack) < 2:
                raise ValueError(f"alias '{alias}' is rolled back before it had two targets")
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


def _check_alias(alias: str) -> None:
    if not alias or alias.isdigit() or not all(c.isalnum() or c in "-_." for c in alias):
        raise MlciError(
            f"alias '{alias}': use letters, digits, '-', '_' or '.', not only digits "
            "(numbers name versions)"
        )


def _copy(source: Path, target: Path) -> None:
    """Copy a file and fsync it, so that a renamed version folder is on disk in full."""
    try:
        shutil.copyfile(source, target)
    except FileNotFoundError:
        raise MlciError(f"{source}: not found; run 'mlci train'") from None
    with target.open("rb+") as stream:
        os.fsync(stream.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can fsync a folder
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return os.environ.get("GITHUB_ACTOR", "unknown")
