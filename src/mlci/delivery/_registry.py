"""The model registry: immutable numbered versions, movable aliases, and the history of every move.

It lives in a local folder (the default) or at any fsspec URL (``s3://bucket/prefix``, ``gs://``),
with one design for both, built on the one primitive object stores share with file systems: create
an object only if it does not exist yet. Layout (``[tool.mlci] registry``, or ``MLCI_REGISTRY``)::

    versions/<token>/           model, metrics, lineage, predictions, data and manifest; written
                                once, before any event names them
    events/<seq>.json           every state change (register, promote, rollback), claimed with a
                                conditional create at the next sequence number: the source of truth
    snapshots/<seq>.json        the index as of event <seq>: a cache that saves replaying the log

The index (versions, aliases, the rollback stack, history) is the replay of the events. A writer
that loses the race for a sequence number re-reads the log and tries again; a writer killed at
any point leaves either no event or a complete one, so readers see the registry before or after
it, never a half version or an alias to nothing. Files under ``versions/`` that no event names
are leftovers of a killed writer: invisible. No lock, no rename, no overwrite.

Registries written by mlci before the event log (``index.json``) are read as they are, and
imported as one event by the first change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import getpass
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlci import pipeline
from mlci._io import read_json, sha256_file, utc_now
from mlci.delivery._index import (
    EVENT_FORMAT,
    INDEX_FORMAT,
    VERSIONS,
    Index,
    Move,
    Registered,
    Version,
    _apply,
    _parse_index,
    check_alias,
    targets_of,
)
from mlci.delivery._settings import MLFLOW_SCHEME, registry_location
from mlci.delivery._store import LocalStore, Store, open_store
from mlci.errors import MlciError
from mlci.pipeline import (
    Config,
    loads,
    scalar_metrics,
)

DATA = "data.csv"
MANIFEST = "data.manifest.json"
INDEX = "index.json"  # the registry before the event log; imported by the first change
EVENTS = "events"
SNAPSHOTS = "snapshots"
PRODUCTION = "production"
STAGING_ALIAS = "staging"
SNAPSHOT_EVERY = 20  # events between snapshots: a read replays fewer than this many
ATTEMPTS = 50  # conditional creates lost in a row before a writer gives up
EIO_ATTEMPTS = 5  # of those, conflicts the backend reports as an I/O error (S3's 409)
SEQUENCE = re.compile(r"^(\d{12})\.json$")


class Registry:
    """The registry's interface, and everything built on it; callers never know the backend.

    ``Registry.of(config)`` (or ``Registry.at(location)``) opens the configured one: a folder or an
    fsspec URL (``StoreRegistry``), or an MLflow Model Registry (``mlflow:<name>``). Backends give
    the state (``read``), a version's files (``_blob``), ``register`` and ``_append``; the rules
    (verification, aliases, the rollback stack) are the same code for all of them.
    """

    @classmethod
    def of(cls, config: Config) -> Registry:
        """The configured registry (``MLCI_REGISTRY`` wins over ``[tool.mlci] registry``)."""
        location = registry_location(config)
        if isinstance(location, str) and location.startswith(MLFLOW_SCHEME):
            from mlci.delivery._mlflow import configured

            return configured(config, location)
        return StoreRegistry(location)

    @classmethod
    def at(cls, location: Path | str) -> Registry:
        """The registry at a folder, a URL or ``mlflow:<name>`` (``MLFLOW_TRACKING_URI``)."""
        if isinstance(location, str) and location.startswith(MLFLOW_SCHEME):
            from mlci.delivery._mlflow import named

            return named(location)
        return StoreRegistry(location)

    @property
    def location(self) -> str:
        """The folder, URL or MLflow model, for messages (never with credentials)."""
        raise NotImplementedError

    @property
    def local_root(self) -> Path | None:
        """The folder of a local registry, None for a URL or MLflow."""
        return None

    def describe(self, version: Version, name: str = "") -> str:
        """Where a version's files (or one of them) are."""
        return f"{version.folder}/{name}" if name else version.folder

    def head(self) -> str | None:
        """What changes with every change to the registry, cheaply: for pollers."""
        raise NotImplementedError

    def read(self) -> Index:
        """The current index; empty for a new registry, an error for a corrupt one."""
        raise NotImplementedError

    def _blob(self, version: Version, name: str) -> bytes:
        """One of a version's files as stored (FileNotFoundError when missing), unverified."""
        raise NotImplementedError

    def register(self, config: Config) -> Registered:
        """Copy the up-to-date artifacts into a new version; the same stage key gives the same."""
        raise NotImplementedError

    def _append(self, build: Callable[[Index], dict[str, Any] | None]) -> Index:
        """Record the event ``build`` makes of the current index, atomically; the new index."""
        raise NotImplementedError

    def versions(self) -> list[Version]:
        """Every version, oldest first."""
        index = self.read()
        return [index.versions[number] for number in sorted(index.versions)]

    def get(self, reference: str | int, index: Index | None = None) -> Version:
        """A version by number or by alias (in ``index`` when the caller has read it)."""
        index = self.read() if index is None else index
        text = str(reference)
        if text.isascii() and text.isdigit():  # '²'.isdigit() is true, and int('²') fails
            number = int(text)
            if number in index.deleted:
                raise MlciError(f"{self.location}: version {number} was deleted")
            if number not in index.versions:
                raise MlciError(f"{self.location}: no version {number} in the registry")
            return index.versions[number]
        if text not in index.aliases:
            known = ", ".join(sorted(index.aliases)) or "none yet"
            raise MlciError(f"{self.location}: no alias '{text}' (aliases: {known})")
        return self._target(index, text)

    def alias(self, name: str) -> Version | None:
        """The version an alias points at, or None."""
        index = self.read()
        return self._target(index, name) if name in index.aliases else None

    def _target(self, index: Index, alias: str) -> Version:
        number = index.aliases[alias]
        if number in index.deleted:
            raise MlciError(
                f"{self.location}: alias '{alias}' points at version {number}, which was "
                f"deleted; promote another version or roll '{alias}' back"
            )
        return index.versions[number]

    def history(self, alias: str | None = None) -> list[Move]:
        """Every alias move, oldest first (only ``alias``'s when given)."""
        return [move for move in self.read().history if alias in (None, move.alias)]

    def read_file(self, version: Version, name: str) -> bytes:
        """One of a version's files, only when it hashes to its recorded SHA-256."""
        where = self.describe(version, name)
        expected = version.files.get(name)
        if expected is None:
            raise MlciError(f"{where}: version {version.number} has no file '{name}'")
        try:
            data = self._blob(version, name)
        except FileNotFoundError:
            raise MlciError(f"{where}: missing") from None
        return pipeline.check_sha256(data, expected, where)

    def verify(self, version: Version, *, skip: tuple[str, ...] = ()) -> list[str]:
        """Every file of a version that is missing or does not hash to its recorded SHA-256."""
        problems = []
        for name in sorted(version.files):
            if name in skip:
                continue
            try:
                self.read_file(version, name)
            except MlciError as error:
                problems.append(str(error))
        return problems

    def manifest(self, version: Version) -> pipeline.Manifest:
        """The version's own copy of its data's manifest: the schema travels with the model."""
        where = self.describe(version, MANIFEST)
        try:
            raw = json.loads(self.read_file(version, MANIFEST))
        except ValueError as exc:
            raise MlciError(f"{where}: not JSON: {exc}") from None
        return pipeline.parse_manifest(raw, where)

    def lineage(self, version: Version) -> dict[str, Any]:
        """The version's lineage record (training run, config, inputs)."""
        name = pipeline.Artifacts(Path()).lineage.name
        raw: dict[str, Any] = json.loads(self.read_file(version, name))
        return raw

    def trained_at(self, version: Version) -> str:
        """When the version's training run finished (read from its lineage for older records)."""
        return version.trained_at or str(self.lineage(version).get("finished_at") or "")

    def load_model(
        self, version: Version, trusted: tuple[str, ...] = (), *, model_format: str = "joblib"
    ) -> Any:
        """Load a version's model after verifying every one of its files.

        The project's ``model_format`` decides how it is read, never the stored file's name: a
        skops project does not unpickle a ``model.joblib`` someone put in its registry.
        """
        suffix = Path(version.model_file).suffix.lstrip(".")
        if suffix != model_format:
            raise MlciError(
                f"{self.describe(version, version.model_file)}: version {version.number} is a "
                f"{suffix or 'unknown'} model, and [tool.mlci] model_format = '{model_format}': "
                f"refusing to load it; release a {model_format} version, or change model_format"
            )
        # The model is hashed as it is read, once; then the other files.
        problems = []
        data = b""
        try:
            data = self.read_file(version, version.model_file)
        except MlciError as error:
            problems.append(str(error))
        problems += self.verify(version, skip=(version.model_file,))
        if problems:
            raise MlciError(
                f"version {version.number} failed verification, refusing to load it:\n  "
                + "\n  ".join(problems)
            )
        return loads(data, Path(self.describe(version, version.model_file)), trusted)

    # Moving aliases ----------------------------------------------------------------------

    def promote(
        self, reference: str | int, alias: str, reason: str = "", *, expect: int | None = -1
    ) -> Move | None:
        """Point ``alias`` at a version, recording who moved it, when, from where and why.

        None when the alias already points at that version: nothing is recorded, so that the
        rollback stack holds each target once. With ``expect`` (a version number, or None for
        no version), the move happens only while the alias still points there.
        """
        check_alias(alias)
        moved: list[Move] = []

        def build(index: Index) -> dict[str, Any] | None:
            version = self.get(reference, index)
            before = index.aliases.get(alias)
            if expect != -1 and before != expect:
                was = "nothing" if expect is None else f"version {expect}"
                now = "nothing" if before is None else f"version {before}"
                raise MlciError(
                    f"{self.location}: '{alias}' moved from {was} to {now} meanwhile; "
                    f"version {version.number} was not promoted"
                )
            if before == version.number:
                return None
            move = Move(alias, "promote", before, version.number, utc_now(), _user(), reason)
            moved.append(move)
            return {"kind": "move", "move": move.to_dict()}

        self._append(build)
        return moved[-1] if moved else None

    def rollback(self, alias: str, reason: str = "") -> Move:
        """Move ``alias`` back to the latest earlier target that differs and still exists."""
        moved: list[Move] = []

        def build(index: Index) -> dict[str, Any]:
            if alias not in index.aliases:
                raise MlciError(f"{self.location}: no alias '{alias}' to roll back")
            current = index.aliases[alias]
            skipped: set[int] = set()  # deleted targets passed over, for the message
            for target in reversed(targets_of(index.history, alias)[:-1]):
                if target in index.deleted:
                    skipped.add(target)
                elif target != current:
                    break
            else:
                gone = ", ".join(map(str, sorted(skipped)))
                raise MlciError(
                    f"alias '{alias}' has no earlier target to roll back to "
                    f"(it points at version {current}"
                    + (f"; deleted, skipped: {gone})" if gone else ")")
                )
            move = Move(alias, "rollback", current, target, utc_now(), _user(), reason)
            moved.append(dataclasses.replace(move, skipped=tuple(sorted(skipped))))
            return {"kind": "move", "move": move.to_dict()}

        self._append(build)
        return moved[-1]


class StoreRegistry(Registry):
    """A registry in a local folder or at an fsspec URL: the event log on a ``Store``."""

    def __init__(self, where: Store | Path | str) -> None:
        self.store: Store = where if not isinstance(where, (Path, str)) else open_store(where)

    @property
    def location(self) -> str:
        """The folder or URL, for messages (never with credentials)."""
        return self.store.location

    @property
    def local_root(self) -> Path | None:
        """The folder of a local registry, None for a URL."""
        return self.store.root if isinstance(self.store, LocalStore) else None

    def describe(self, version: Version, name: str = "") -> str:
        """Where a version's files (or one of them) are."""
        return self.store.describe(f"{version.folder}/{name}" if name else version.folder)

    def _blob(self, version: Version, name: str) -> bytes:
        return self.store.read(f"{version.folder}/{name}")

    # Reading ---------------------------------------------------------------------------------

    def head(self) -> str | None:
        """What changes with every event, cheaply (one listing): for pollers."""
        events = self.store.list(EVENTS)
        if events:
            return events[-1]
        return INDEX if self.store.exists(INDEX) else None

    def read(self) -> Index:
        """The current index; empty for a new registry, an error for a corrupt one."""
        sequence = self._sequence()
        if not sequence:
            return self._read_legacy()
        index = self._newest_snapshot(sequence[-1]) or Index({}, {}, [])
        keys = [_event_key(seq) for seq in range(index.head + 1, sequence[-1] + 1)]
        try:
            events = self.store.read_many(keys)
        except FileNotFoundError:
            missing = next((k for k in keys if not self.store.exists(k)), keys[0])
            raise self._corrupt(missing, "missing from the event log") from None
        for seq, key in zip(range(index.head + 1, sequence[-1] + 1), keys):
            try:
                raw = json.loads(events[key])
            except ValueError as exc:
                raise self._corrupt(key, f"not JSON: {exc}") from None
            _apply(index, raw, seq, functools.partial(self._corrupt, key))
        return index

    def _sequence(self) -> list[int]:
        """The events' sequence numbers, which must run 1, 2, ... without a gap."""
        found = sorted(int(m.group(1)) for m in map(SEQUENCE.match, self.store.list(EVENTS)) if m)
        for expected, seq in enumerate(found, start=1):
            if seq != expected:
                raise self._corrupt(_event_key(expected), "missing from the event log")
        return found

    def _newest_snapshot(self, last: int) -> Index | None:
        """The newest readable snapshot at or before event ``last``; a bad one is skipped."""
        if last < SNAPSHOT_EVERY:
            return None  # none can have been written yet: spare the listing
        seqs = sorted(
            (int(m.group(1)) for m in map(SEQUENCE.match, self.store.list(SNAPSHOTS)) if m),
            reverse=True,
        )
        for seq in seqs:
            if seq > last:
                continue
            key = f"{SNAPSHOTS}/{seq:012d}.json"
            try:
                raw = json.loads(self.store.read(key))
                if raw.get("seq") != seq:
                    raise ValueError("its sequence number is not its name")
                index = _parse_index(raw["index"])
            except (FileNotFoundError, AttributeError, KeyError, TypeError, ValueError):
                continue  # only a cache: replay from an older one, or from the start
            index.head = index.snapshot = seq
            return index
        return None

    def _read_legacy(self) -> Index:
        """A registry written before the event log: its ``index.json``, or nothing."""
        try:
            data = self.store.read(INDEX)
        except FileNotFoundError:
            return Index({}, {}, [])
        where = self.store.describe(INDEX)
        try:
            return _parse_index(json.loads(data))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise MlciError(
                f"{where}: corrupt registry index ({type(exc).__name__}: {exc}); "
                "it is not rebuilt automatically: restore it from a backup"
            ) from None

    def _corrupt(self, key: str, why: str) -> MlciError:
        return MlciError(
            f"{self.store.describe(key)}: corrupt registry event ({why}); it is not repaired "
            "automatically: restore it from a backup"
        )

    # Writing ---------------------------------------------------------------------------------

    def _append(self, build: Callable[[Index], dict[str, Any] | None]) -> Index:
        """Claim the next event for what ``build`` makes of the current index; the new index.

        ``build`` sees the index as of the latest event and returns the event, or None when
        there is nothing to do. Losing the race to another writer re-reads and rebuilds.
        """
        for attempt in range(ATTEMPTS):
            index = self.read()
            if index.head == 0 and self.store.exists(INDEX):
                self._import_legacy(index)
                continue
            event = build(index)
            if event is None:
                return index
            seq = index.head + 1
            event = {"format": EVENT_FORMAT, "seq": seq, **event}
            try:
                self.store.create(_event_key(seq), _dumps(event))
            except FileExistsError:
                _back_off(attempt)
                continue
            except OSError as exc:  # S3 409: a concurrent conditional write; retry it
                if exc.errno != errno.EIO or attempt >= EIO_ATTEMPTS:
                    raise MlciError(f"{self.location}: cannot write an event: {exc}") from None
                _back_off(attempt)
                continue
            _apply(index, event, seq, lambda why: MlciError(why))
            if seq - index.snapshot >= SNAPSHOT_EVERY:
                try:
                    self._write_snapshot(index)
                except (OSError, MlciError) as error:  # the move is done: the event says so
                    print(
                        f"mlci: warning: {self.location}: event {seq} is recorded, but its "
                        f"snapshot (a cache of the log) could not be written: {error}",
                        file=sys.stderr,
                    )
            return index
        raise MlciError(
            f"{self.location}: {ATTEMPTS} other writers changed the registry first; try again"
        )

    def _import_legacy(self, index: Index) -> None:
        """Turn an ``index.json`` registry into the first event, in one conditional create."""
        event = {"format": EVENT_FORMAT, "seq": 1, "kind": "import", "index": index.to_dict()}
        with contextlib.suppress(FileExistsError):
            self.store.create(_event_key(1), _dumps(event))

    def _write_snapshot(self, index: Index) -> None:
        body = {"format": INDEX_FORMAT, "seq": index.head, "index": index.to_dict()}
        with contextlib.suppress(FileExistsError):
            self.store.create(f"{SNAPSHOTS}/{index.head:012d}.json", _dumps(body))
        index.snapshot = index.head

    def register(self, config: Config) -> Registered:
        """Copy the up-to-date artifacts into a new version; the same stage key gives the same."""
        with candidate(config) as new:
            existing = _by_stage_key(self.read(), new.key)
            if existing is not None:
                return Registered(existing, created=False)
            folder = f"{VERSIONS}/{uuid.uuid4().hex}"
            for name, path in new.copies.items():  # every file before the event that names them
                self.store.create(f"{folder}/{name}", path)
        key = new.key
        found: list[Version] = []

        def build(index: Index) -> dict[str, Any] | None:
            earlier = _by_stage_key(index, key)
            if earlier is not None:  # another writer registered the same inputs meanwhile
                found.append(earlier)
                return None
            version = new.version(max(index.versions, default=0) + 1, folder)
            return {"kind": "register", "version": version.to_dict()}

        index = self._append(build)
        if found:
            self.store.remove(folder)  # ours alone: no event names it
            return Registered(found[0], created=False)
        return Registered(index.versions[max(index.versions)], created=True)


def _by_stage_key(index: Index, key: str) -> Version | None:
    return next((v for v in index.versions.values() if v.stage_key == key), None)


def _event_key(seq: int) -> str:
    return f"{EVENTS}/{seq:012d}.json"


def _dumps(value: Any) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode("utf-8")


def _back_off(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.01 * 2**attempt, 0.5)))


@dataclasses.dataclass(frozen=True)
class Candidate:
    """Up-to-date artifacts about to be registered: private copies, hashed and checked."""

    key: str
    lineage: dict[str, Any]
    copies: dict[str, Path]  # name in the version -> its private copy
    files: dict[str, str]  # name -> SHA-256
    metrics: dict[str, float]
    model_file: str

    def version(self, number: int, folder: str) -> Version:
        """The version record these files become, as version ``number`` in ``folder``."""
        return Version(
            number=number,
            stage_key=self.key,
            created_at=utc_now(),
            created_by=_user(),
            model_file=self.model_file,
            files=self.files,
            metrics=self.metrics,
            data_sha256=self.files[DATA],
            python=str(self.lineage.get("python")),
            folder=folder,
            trained_at=str(self.lineage.get("finished_at") or ""),
        )


@contextlib.contextmanager
def candidate(config: Config) -> Iterator[Candidate]:
    """The artifacts to register, copied, hashed and checked against their lineage."""
    status = pipeline.stage_status(config)
    if not status.up_to_date or status.lineage is None:
        raise MlciError(
            "the artifacts are not up to date (" + "; ".join(status.reasons) + "); "
            "run 'mlci train' before registering"
        )
    artifacts = pipeline.Artifacts.of(config)
    with _copies(
        [*artifacts.files, config.data, config.manifest],
        [*(path.name for path in artifacts.files), DATA, MANIFEST],
    ) as copies:
        files = {name: sha256_file(path) for name, path in copies.items()}
        _check_copied(files, status.lineage, artifacts)
        metrics = scalar_metrics(read_json(copies[artifacts.metrics.name], "metrics"))
        yield Candidate(status.key, status.lineage, copies, files, metrics, artifacts.model.name)


@contextlib.contextmanager
def _copies(sources: list[Path], names: list[str]) -> Iterator[dict[str, Path]]:
    """Private copies of the files to register: hashed, checked and uploaded as they are."""
    folder = Path(tempfile.mkdtemp(prefix="mlci-register-"))
    try:
        copies = {}
        for source, name in zip(sources, names):
            try:
                shutil.copyfile(source, folder / name)
            except FileNotFoundError:
                raise MlciError(f"{source}: not found; run 'mlci train'") from None
            copies[name] = folder / name
        yield copies
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return os.environ.get("GITHUB_ACTOR", "unknown")
