"""The registry in an MLflow Model Registry: ``registry = "mlflow:<registered model name>"``.

Versions are MLflow model versions of that registered model. Each is created from a run whose
artifacts hold mlci's files (``mlci/``: model, metrics, lineage, predictions, data, manifest)
and an MLflow model (``model/``, what ``models:/<name>@production`` loads). Its record travels
as tags: ``mlci.version`` (every file's SHA-256, the metrics, the stage key) and
``mlci.model_sha256``; every file is verified against them before it is used. Aliases are
MLflow aliases. Versions without mlci's tags (made by hand in MLflow) are not mlci's: ignored.

MLflow keeps no history of alias moves and has no conditional write, so mlci keeps the log of
moves as the versions of a companion registered model, ``<name>.mlci-history``: MLflow numbers
them atomically, and each entry claims the sequence number that follows the moves its writer
saw. An entry whose claim was taken first lost the race: it is not part of the history, its
writer deletes it, re-reads and retries. Readers replay the accepted entries with the same
checks as the event log on a folder or a bucket, so both give the same guarantees. MLflow's
aliases follow the replayed history; a writer killed between the two leaves them for the next
move to set.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlci import tracking
from mlci._secrets import redact, without_credentials
from mlci.delivery._index import EVENT_FORMAT, Index, Registered, Version, _apply
from mlci.delivery._registry import (
    ATTEMPTS,
    MANIFEST,
    Registry,
    _back_off,
    _by_stage_key,
    candidate,
)
from mlci.delivery._settings import MLFLOW_SCHEME
from mlci.errors import MlciError
from mlci.pipeline import Config, loads, parse_manifest

HISTORY = ".mlci-history"  # the companion registered model that holds the log of moves
VERSION_TAG = "mlci.version"
MODEL_SHA_TAG = "mlci.model_sha256"
STAGE_KEY_TAG = "mlci.stage_key"
EVENT_TAG = "mlci.event"
FILES = "mlci"  # a version's files, in its run's artifacts
MODEL = "model"  # the MLflow model, in its run's artifacts
MIRROR_ROUNDS = 5
TAGLESS_READS = 3  # listings of the history before an entry without its tag is corrupt
WHAT = "registry = 'mlflow:…'"


class MlflowRegistry(Registry):
    """A registry whose versions and aliases are an MLflow registered model's."""

    def __init__(self, name: str, settings: tracking.TrackingConfig) -> None:
        if not name.strip() or any(c in name for c in "/:'\""):
            raise MlciError(
                f"registry = 'mlflow:{name}': give a registered model name without '/', ':' "
                "or quotes, e.g. 'mlflow:iris-classifier'"
            )
        self.name = name
        self.history_name = name + HISTORY
        self.settings = settings
        self._mlflow_client: Any = None

    @property
    def location(self) -> str:
        """``mlflow:<name>`` (the server is in the settings, never with credentials here)."""
        return f"{MLFLOW_SCHEME}{self.name}"

    @property
    def server(self) -> str:
        """The tracking server, for messages."""
        return without_credentials(self.settings.tracking_uri)

    @property
    def client(self) -> Any:
        """The MLflow client, made on first use (the server is probed then)."""
        if self._mlflow_client is None:
            self._mlflow_client = tracking.registry_client(self.settings, WHAT)
        return self._mlflow_client

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One client call (a request); its failure is an error that says what and where."""
        client = self.client
        try:
            return getattr(client, method)(*args, **kwargs)
        except MlciError:
            raise
        except Exception as error:  # MlflowException, requests' errors
            raise MlciError(
                f"{self.location} on {self.server}: MLflow could not {what}: {_short(error)}"
            ) from None

    # Reading ---------------------------------------------------------------------------------

    def head(self) -> str | None:
        """The newest version and the newest log entry: one search each."""
        newest = [self._newest(self.name), self._newest(self.history_name)]
        return None if newest == [0, 0] else f"{newest[0]}:{newest[1]}"

    def _newest(self, model: str) -> int:
        found = self._call(
            f"list the versions of '{model}'",
            "search_model_versions",
            f"name='{model}'",
            max_results=1,
            order_by=["version_number DESC"],
        )
        return int(found[0].version) if found else 0

    def _search(self, model: str) -> list[Any]:
        """Every version of ``model``, oldest first, page by page."""
        versions: list[Any] = []
        token = None
        while True:
            page = self._call(
                f"list the versions of '{model}'",
                "search_model_versions",
                f"name='{model}'",
                order_by=["version_number ASC"],
                page_token=token,
            )
            versions += list(page)
            token = page.token
            if not token:
                return sorted(versions, key=lambda v: int(v.version))

    def read(self) -> Index:
        """The versions with mlci's record, and the replay of the accepted moves."""
        return self._replay()[0]

    def _replay(self) -> tuple[Index, set[int]]:
        """The index, and which log entries (MLflow version numbers) it accepted.

        An entry listed without its tag is read again before it is called corrupt: one run of
        make ci saw that while four writers were claiming and deleting entries on a SQLite
        server, and MLflow writes a version with its tags in one transaction. Skipping such an
        entry instead would let two writers each believe their claim was accepted.
        """
        for attempt in range(TAGLESS_READS):
            try:
                return self._replay_once()
            except _Tagless as tagless:
                if attempt == TAGLESS_READS - 1:
                    raise tagless.error from None
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _replay_once(self) -> tuple[Index, set[int]]:
        index = Index(self._versions(), {}, [])
        accepted: set[int] = set()
        for entry in self._search(self.history_name):
            where = f"{self.location}: '{self.history_name}' version {entry.version}"
            try:
                raw = json.loads(entry.tags[EVENT_TAG])
            except (KeyError, ValueError) as exc:
                raise _Tagless(_corrupt(where, f"no readable {EVENT_TAG} tag: {exc}")) from None
            if not isinstance(raw, dict) or raw.get("seq") != index.head + 1:
                continue  # a claim another writer took first: not part of the history
            _apply(index, raw, index.head + 1, functools.partial(_corrupt, where), deletable=True)
            accepted.add(int(entry.version))
        return index, accepted

    def _versions(self) -> dict[int, Version]:
        """mlci's versions of the registered model: the first of each stage key."""
        versions: dict[int, Version] = {}
        keys: set[str] = set()
        for found in self._search(self.name):
            if VERSION_TAG not in found.tags:
                continue  # made in MLflow, not by mlci
            number = int(found.version)
            try:
                raw = json.loads(found.tags[VERSION_TAG])
                version = Version.from_dict({**raw, "number": number})
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                where = f"{self.location}: version {number}"
                raise _corrupt(where, f"tag {VERSION_TAG}: {type(exc).__name__}: {exc}") from None
            if found.tags.get(MODEL_SHA_TAG) != version.files.get(version.model_file):
                raise _corrupt(
                    f"{self.location}: version {number}",
                    f"tag {MODEL_SHA_TAG} is not the model file's SHA-256 in {VERSION_TAG}",
                )
            if version.stage_key in keys:
                continue  # a concurrent registration of the same inputs, deleted by its writer
            keys.add(version.stage_key)
            versions[number] = version
        return versions

    def _blob(self, version: Version, name: str) -> bytes:
        import mlflow.artifacts

        with tempfile.TemporaryDirectory(prefix="mlci-mlflow-") as folder:
            try:
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{version.folder}/{name}",
                    dst_path=folder,
                    tracking_uri=self.settings.tracking_uri,
                )
            except Exception as error:
                if _missing(error):
                    raise FileNotFoundError(name) from None
                raise MlciError(
                    f"{version.folder}/{name} on {self.server}: cannot download it: {_short(error)}"
                ) from None
            return Path(path).read_bytes()

    # Writing ---------------------------------------------------------------------------------

    def register(self, config: Config) -> Registered:
        """A new MLflow model version from the up-to-date artifacts; same inputs, same version."""
        with candidate(config) as new:
            existing = _by_stage_key(self.read(), new.key)
            if existing is not None:
                return Registered(existing, created=False)
            run_id = self._run_for(new.key, new.lineage)
            model_copy = new.copies[new.model_file]
            folder = model_copy.parent  # the private copies, and nothing else
            self._call(
                "upload the version's files",
                "log_artifacts",
                run_id,
                str(folder),
                FILES,
            )
            with tempfile.TemporaryDirectory(prefix="mlci-mlflow-model-") as work:
                model = loads(model_copy.read_bytes(), model_copy, config.skops_trusted)
                manifest = parse_manifest(
                    json.loads(new.copies[MANIFEST].read_text()), str(new.copies[MANIFEST])
                )
                tracking.export(
                    model,
                    manifest,
                    new.lineage,
                    Path(work) / MODEL,
                    model_format=config.model_format,
                    trusted=config.skops_trusted,
                )
                self._call(
                    "upload the MLflow model",
                    "log_artifacts",
                    run_id,
                    str(Path(work) / MODEL),
                    MODEL,
                )
            record = new.version(0, f"runs:/{run_id}/{FILES}")
        self._ensure_models()
        body = {k: v for k, v in record.to_dict().items() if k != "number"}
        created = self._call(
            "create a model version",
            "create_model_version",
            self.name,
            f"runs:/{run_id}/{MODEL}",
            run_id=run_id,
            tags={
                VERSION_TAG: json.dumps(body, sort_keys=True),
                MODEL_SHA_TAG: record.files[record.model_file],
                STAGE_KEY_TAG: record.stage_key,
            },
            await_creation_for=0,
        )
        number = int(created.version)
        index = self.read()
        kept = _by_stage_key(index, record.stage_key)
        if kept is not None and kept.number != number:  # the same inputs, registered first
            with contextlib.suppress(MlciError):
                self._call(
                    "delete a duplicate version",
                    "delete_model_version",
                    self.name,
                    str(number),
                )
            return Registered(kept, created=False)
        return Registered(index.versions[number], created=True)

    def _run_for(self, key: str, lineage: dict[str, Any]) -> str:
        """The training run the lineage names on this server, or a new run for the version."""
        logged = lineage.get(tracking.LINEAGE_KEY)
        if isinstance(logged, dict) and logged.get("tracking_uri") == self.server:
            return str(logged["run_id"])
        experiment = self._experiment()
        run = self._call(
            "create a run",
            "create_run",
            experiment,
            run_name=f"register {key[:12]}",
            tags=tracking.tags_of(lineage, key),
        )
        self._call("finish the run", "set_terminated", run.info.run_id)
        return str(run.info.run_id)

    def _experiment(self) -> str:
        """The configured experiment's id, created when missing (a racing creator wins)."""
        name = self.settings.experiment
        for _ in range(2):
            found = self._call(f"find experiment '{name}'", "get_experiment_by_name", name)
            if found is not None:
                return str(found.experiment_id)
            try:
                return str(self.client.create_experiment(name))
            except Exception as error:
                if not _exists(error):
                    raise MlciError(
                        f"{self.server}: MLflow could not create experiment '{name}': "
                        f"{_short(error)}"
                    ) from None
        raise MlciError(f"{self.server}: experiment '{name}' cannot be found or created")

    def _ensure_models(self) -> None:
        """The registered model and its history, made once (a racing creator wins)."""
        described = {
            self.name: "Versions registered by mlci (mlci registry list).",
            self.history_name: (
                f"mlci's log of alias moves of '{self.name}': its history and rollback "
                "stack (mlci registry history). Written by mlci only; do not edit."
            ),
        }
        for model, description in described.items():
            try:
                self.client.create_registered_model(
                    model, tags={"mlci.format": str(EVENT_FORMAT)}, description=description
                )
            except Exception as error:
                if not _exists(error):
                    raise MlciError(
                        f"{self.location} on {self.server}: MLflow could not create registered "
                        f"model '{model}': {_short(error)}"
                    ) from None

    def _append(self, build: Callable[[Index], dict[str, Any] | None]) -> Index:
        """Claim the next move in the log; a lost claim is deleted and the move rebuilt."""
        for attempt in range(ATTEMPTS):
            index = self.read()
            event = build(index)
            if event is None:
                return index
            seq = index.head + 1
            event = {"format": EVENT_FORMAT, "seq": seq, **event}
            target = index.versions[int(event["move"]["to_version"])]
            run_id = target.folder.removeprefix("runs:/").split("/", 1)[0]
            self._ensure_models()
            entry = self._call(
                "record the move",
                "create_model_version",
                self.history_name,
                f"runs:/{run_id}/{MODEL}",
                run_id=run_id,
                tags={EVENT_TAG: json.dumps(event, sort_keys=True)},
                await_creation_for=0,
            )
            if int(entry.version) in self._replay()[1]:
                _apply(index, event, seq, MlciError, deletable=True)
                self._mirror()
                return index
            with contextlib.suppress(MlciError):  # a lost claim: not history, only clutter
                self._call(
                    "delete a lost claim",
                    "delete_model_version",
                    self.history_name,
                    entry.version,
                )
            _back_off(attempt)
        raise MlciError(
            f"{self.location}: {ATTEMPTS} other writers changed the registry first; try again"
        )

    def _mirror(self) -> None:
        """Point MLflow's aliases where the history says, until no move lands meanwhile."""
        for _ in range(MIRROR_ROUNDS):
            index = self.read()
            current = self._call(
                f"read the aliases of '{self.name}'",
                "get_registered_model",
                self.name,
            ).aliases
            for alias, number in sorted(index.aliases.items()):
                if number in index.deleted:
                    continue  # MLflow dropped the alias with the version; reads report it
                if str(current.get(alias)) != str(number):
                    self._call(
                        f"set alias '{alias}'",
                        "set_registered_model_alias",
                        self.name,
                        alias,
                        str(number),
                    )
            if self.read().head == index.head:
                return
            time.sleep(0.05)


def configured(config: Config, location: str) -> MlflowRegistry:
    """The registry ``location`` names, on the configured tracking server."""
    return MlflowRegistry(location[len(MLFLOW_SCHEME) :], tracking.tracking_settings(config))


def named(location: str) -> MlflowRegistry:
    """The registry ``location`` names, on the server ``MLFLOW_TRACKING_URI`` names."""
    uri = os.environ.get(tracking.TRACKING_ENV, "")
    return MlflowRegistry(location[len(MLFLOW_SCHEME) :], tracking.TrackingConfig(tracking_uri=uri))


class _Tagless(Exception):
    """A history entry listed without a readable event tag: corrupt, unless a re-read has it."""

    def __init__(self, error: MlciError) -> None:
        super().__init__(str(error))
        self.error = error


def _corrupt(where: str, why: str) -> MlciError:
    return MlciError(
        f"{where}: corrupt registry record ({why}); it is not repaired automatically: "
        "restore it from a backup of the MLflow server's database"
    )


def _code(error: Exception) -> str:
    return str(getattr(error, "error_code", ""))


def _exists(error: Exception) -> bool:
    return _code(error) == "RESOURCE_ALREADY_EXISTS"


def _missing(error: Exception) -> bool:
    text = str(error).lower()
    return _code(error) == "RESOURCE_DOES_NOT_EXIST" or any(
        sign in text for sign in ("404", "not found", "no such file", "does not exist")
    )


def _short(error: Exception) -> str:
    """The first line of an MLflow error, which can carry a whole response body."""
    lines = redact(str(error)).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:500]
