"""`mlci serve`: the model an alias points at, behind MLflow's scoring protocol.

This module needs the ``serve`` extra (FastAPI, uvicorn); nothing else in mlci imports it.

A poller lists the registry's events (in a folder or on object storage); when the alias moves
(promote or rollback), the new version is loaded and verified off the request path, then swapped
in with one assignment. A request takes the model it starts with, so in-flight requests finish on
the old one. A version that fails verification is never served: the old model stays, and /health
and the log say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import ipaddress
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from mlci import __version__
from mlci._io import utc_now
from mlci._secrets import redact
from mlci.delivery import Registry, Version, age_days
from mlci.errors import MlciError
from mlci.pipeline import Column, Config, Dialect, model_input
from mlci.serving._metrics import Metrics
from mlci.serving._sample import SampleLog
from mlci.serving._scoring import BadRequest, Limits, parse
from mlci.serving._settings import ServeConfig, serve_settings

SWITCH_SECONDS = 0.001
MAX_RETRY_SECONDS = 60.0  # the longest wait before a version that failed to load is tried again
log = logging.getLogger("mlci.serve")
access = logging.getLogger("mlci.access")
ERROR_CODES = {
    400: "BAD_REQUEST",
    404: "ENDPOINT_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    503: "MODEL_NOT_LOADED",
}


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A verified model and the registry version it came from."""

    version: Version
    model: Any
    loaded_at: str
    columns: tuple[Column, ...]  # the version's own features: model and schema swap together
    trained_at: str = ""  # when its training run finished: the model's age in /health
    ignored: tuple[str, ...] = ()  # the data's columns that are not features: sent, dropped
    dialect: Dialect = dataclasses.field(default_factory=Dialect)  # how the data is written
    target: Column | None = None  # a regressor's target (its range): None for a classifier

    @property
    def regressor(self) -> bool:
        """True when the version predicts a number (its manifest's target is numeric)."""
        return self.target is not None

    @property
    def features(self) -> tuple[str, ...]:
        """The feature columns' names, in the manifest's order."""
        return tuple(column.name for column in self.columns)

    def age_days(self) -> float | None:
        """Days since the model was trained, now."""
        return age_days(self.trained_at)


class ModelSlot:
    """The served model: swapped whole when the alias moves, never half-loaded."""

    def __init__(
        self,
        registry: Registry,
        alias: str,
        trusted: tuple[str, ...] = (),
        model_format: str = "joblib",
        retry_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.alias = alias
        self.trusted = trusted
        self.model_format = model_format
        self.retry_seconds = retry_seconds  # the first wait after a version failed to load
        self.clock = clock
        # A version that failed to load, when to try it again, and the wait before that: its
        # files are not downloaded and verified again on every poll.
        self._failed: tuple[int, float, float] | None = None
        self.current: Loaded | None = None
        self.error: str | None = None
        self.reload_failures = 0  # polls that could not load the alias's version, for /metrics
        self._seen: str | None = None
        self._refreshing = threading.Lock()

    def version_number(self) -> int | None:
        """The number of the version being served, None before the first load."""
        current = self.current
        return None if current is None else current.version.number

    def refresh(self) -> None:
        """Load the alias's version when it moved; keep the old model when the new one fails."""
        with self._refreshing:
            version: Version | None = None  # known once the alias is read
            try:
                stamp = self.registry.head()  # one listing: the latest event
                if stamp is not None and stamp == self._seen:
                    return
                version = self.registry.alias(self.alias)
                if version is None:
                    self._fail(f"no version holds the alias '{self.alias}' yet")
                    return
                current = self.current
                if current is not None and current.version.number == version.number:
                    self._seen = stamp
                    return
                failed = self._failed
                if failed and failed[0] == version.number and self.clock() < failed[1]:
                    return  # backing off: /health keeps the error
                model = self.registry.load_model(
                    version, self.trusted, model_format=self.model_format
                )
                manifest = self.registry.manifest(version)
                trained_at = self.registry.trained_at(version)
            except MlciError as error:
                self._fail(str(error), version)  # _seen stays: the next poll tries again
                return
            except Exception as error:  # e.g. a model this scikit-learn cannot unpickle
                self._fail(
                    f"the alias '{self.alias}' could not be loaded: {_describe(error)}", version
                )
                return
            self.current = Loaded(
                version,
                model,
                utc_now("milliseconds"),
                manifest.features,
                trained_at,
                manifest.ignored,
                manifest.dialect,
                manifest.target_column if manifest.task == "regression" else None,
            )
            self.error = None
            self._failed = None
            self._seen = stamp
            log.info(
                json.dumps(
                    {
                        "event": "model_loaded",
                        "alias": self.alias,
                        "version": version.number,
                        "sha256": version.files[version.model_file],
                    }
                )
            )

    def _fail(self, message: str, version: Version | None = None) -> None:
        message = redact(message)  # shown to any client in /health: a library's text may hold one
        if version is not None:  # a version that failed to load: wait twice as long each time
            failed = self._failed
            wait = self.retry_seconds
            if failed is not None and failed[0] == version.number:
                wait = min(failed[2] * 2, MAX_RETRY_SECONDS)
            self._failed = (version.number, self.clock() + wait, wait)
        self.reload_failures += 1
        if message != self.error:
            serving = self.current.version.number if self.current else None
            log.error(json.dumps({"event": "reload_failed", "error": message, "serving": serving}))
        self.error = message


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(slot: ModelSlot, settings: ServeConfig) -> FastAPI:
    """The FastAPI application: /invocations, /ping, /health, /version, /metrics."""
    limits = Limits(settings.max_rows, settings.max_body_bytes)

    batcher = Batcher(settings.max_rows)
    metrics = Metrics(slot)
    sample = (
        SampleLog(Path(settings.sample_log), settings.sample_log_bytes, settings.sample_rate)
        if settings.sample_log
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await run_in_threadpool(slot.refresh)
        # Parsing and scoring run in threads beside the event loop, which needs the GIL back
        # quickly to answer /ping: Python's default is to hand it over every 5 ms, and a full
        # garbage collection over the libraries and the model held it ~100 ms (measured with a
        # 10,000-row body). What is loaded now stays for the server's life: keep it out of them.
        gc.freeze()
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_SECONDS))
        tasks = [asyncio.create_task(_poll(slot, settings.poll_seconds)), batcher.start()]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            log.info(json.dumps({"event": "shutdown"}))

    app = FastAPI(
        title="mlci model server",
        version=__version__,
        description="MLflow's scoring protocol for the model an mlci registry alias points at.",
        lifespan=lifespan,
    )

    def error(status: int, message: str) -> JSONResponse:
        code = ERROR_CODES.get(status, "ERROR")
        return JSONResponse({"error_code": code, "message": message}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return error(exc.status, str(exc))

    @app.middleware("http")
    async def access_log(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        response = await call_next(request)
        metrics.answered(request.url.path, response.status_code, time.perf_counter() - start)
        access.info(
            json.dumps(
                {
                    "time": utc_now("milliseconds"),
                    "client": request.client.host if request.client else None,
                    "method": request.method,
                    "path": request.url.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - start) * 1000, 3),
                    "model_version": response.headers.get("x-model-version"),
                }
            )
        )
        return response

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        loaded = slot.current  # this request's model, whatever the poller swaps in meanwhile
        if loaded is None:
            return error(503, f"no model loaded: {slot.error or 'starting'}")
        body = await _read_body(request, limits.max_body_bytes)
        # The columns of the version this request is scored by: a promotion to a model with
        # other features changes what a valid request is, with the model, in one swap.
        # Parsed in a worker thread: a large body must not keep /ping and /health waiting.
        scoring = await run_in_threadpool(
            parse, body, request.headers.get("content-type"), loaded.columns, limits, loaded.ignored
        )
        if scoring.params.get("proba") and not hasattr(loaded.model, "predict_proba"):
            return error(
                400,
                f"version {loaded.version.number}'s model ({type(loaded.model).__name__}) has "
                'no class probabilities: leave out params {"proba": true}',
            )
        try:
            reply = await batcher.predict(
                loaded.model, scoring.rows, scoring.params, loaded.columns
            )
        except Unstable as unstable:
            metrics.failed(unstable.rows, unstable.what)
            return error(500, str(unstable))
        metrics.scored(reply["predictions"], loaded.target)
        if sample is not None:
            await run_in_threadpool(sample.write, loaded.features, scoring.rows, loaded.dialect)
        return JSONResponse(reply, headers={"X-Model-Version": str(loaded.version.number)})

    @app.get("/metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    def status() -> dict[str, Any]:
        loaded = slot.current
        return {
            "status": "ok" if loaded else "unavailable",
            "alias": slot.alias,
            "model_version": loaded.version.number if loaded else None,
            "loaded_at": loaded.loaded_at if loaded else None,
            "model_trained_at": loaded.trained_at or None if loaded else None,
            "model_age_days": _rounded(loaded.age_days()) if loaded else None,
            "reload_error": slot.error,
        }

    @app.get("/ping")
    @app.get("/health")
    async def health() -> Response:
        return JSONResponse(status(), status_code=200 if slot.current else 503)

    @app.get("/version")
    async def version() -> Response:
        loaded = slot.current
        model = loaded.version if loaded else None
        return JSONResponse(
            {
                "mlci_version": __version__,
                "alias": slot.alias,
                "model_version": model.number if model else None,
                "model_sha256": model.files[model.model_file] if model else None,
                "data_sha256": model.data_sha256 if model else None,
                "model_trained_at": loaded.trained_at or None if loaded else None,
                "model_age_days": _rounded(loaded.age_days()) if loaded else None,
                "features": list(loaded.features) if loaded else None,
            }
        )

    return app


def _rounded(days: float | None) -> float | None:
    return None if days is None else round(days, 3)


async def _poll(slot: ModelSlot, seconds: float) -> None:
    """Refresh forever: a failed refresh is reported in /health and the log, never fatal."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await run_in_threadpool(slot.refresh)
        except Exception as error:  # pragma: no cover - refresh reports its own failures
            slot.error = redact(f"reload failed: {_describe(error)}")
            log.exception("poll_failed")


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the body is {declared} bytes, over the limit of {limit}", 413)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"the body is over the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


@dataclasses.dataclass
class _Pending:
    """One request waiting for its share of a batched prediction."""

    model: Any
    rows: list[list[Any]]
    params: dict[str, Any]
    future: asyncio.Future[dict[str, Any]]
    columns: tuple[Column, ...] = ()


class Batcher:
    """Predicts for every request waiting at that moment in one call, then splits the answers.

    A forest's `predict` costs about the same for 1 row as for 100, so concurrent requests are
    served together: while one batch is being scored, the next requests queue up and form the
    next batch. Nothing waits for a batch to fill, so a lone request is not delayed. Requests
    are grouped by the model they started with, so a hot reload never mixes two versions.
    scikit-learn predictors score each row on its own, so batching does not change an answer.
    """

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.queue: asyncio.Queue[_Pending] | None = None

    def start(self) -> asyncio.Task[None]:
        """Start the batching loop on the running event loop."""
        self.queue = asyncio.Queue()
        return asyncio.create_task(self._loop())

    async def predict(
        self,
        model: Any,
        rows: list[list[Any]],
        params: dict[str, Any],
        columns: tuple[Column, ...] = (),
    ) -> Any:
        """This request's reply, scored together with whatever else is waiting.

        ``columns``: the version's feature columns, which say how rows become the model's input.
        """
        if self.queue is None:  # no lifespan (e.g. a bare ASGI test): score alone
            return await run_in_threadpool(_predict, model, rows, params, columns)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(model, rows, params, future, columns))
        return await future

    async def _loop(self) -> None:
        assert self.queue is not None
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0].rows)
            while not self.queue.empty() and size < self.max_rows:
                batch.append(self.queue.get_nowait())
                size += len(batch[-1].rows)
            groups: dict[int, list[_Pending]] = {}
            for pending in batch:
                groups.setdefault(id(pending.model), []).append(pending)
            for group in groups.values():
                try:
                    await run_in_threadpool(_score_group, group)
                except Exception as exc:  # a bug, not a bad request: fail these, keep serving
                    log.exception("batch scoring failed")
                    for pending in group:
                        _settle(pending, None, exc)


def _score_group(group: list[_Pending]) -> None:
    """Score a group with one call; if that fails, score each request alone to isolate it."""
    rows = [row for pending in group for row in pending.rows]
    params = {"proba": any(pending.params.get("proba") for pending in group)}
    try:
        reply = _predict(group[0].model, rows, params, group[0].columns)
    except (BadRequest, Unstable):  # this request's fault, or its probabilities': isolate it
        if len(group) == 1:
            _settle(group[0], None, sys.exc_info()[1])
            return
        for pending in group:
            _score_group([pending])
        return
    start = 0
    for pending in group:
        end = start + len(pending.rows)
        share = {"predictions": reply["predictions"][start:end]}
        if pending.params.get("proba"):
            share["probabilities"] = reply["probabilities"][start:end]
        _settle(pending, share, None)
        start = end


def _settle(pending: _Pending, reply: dict[str, Any] | None, error: BaseException | None) -> None:
    """Hand a result to the waiting request, on the event loop's thread."""
    loop = pending.future.get_loop()

    def settle() -> None:
        if pending.future.done():  # the client went away
            return
        if error is not None:
            pending.future.set_exception(error)
        else:
            pending.future.set_result(reply or {})

    loop.call_soon_threadsafe(settle)


def _predict(
    model: Any, rows: list[list[Any]], params: dict[str, Any], columns: tuple[Column, ...] = ()
) -> dict[str, Any]:
    import numpy as np

    features = model_input(rows, columns) if columns else np.asarray(rows, dtype=np.float64)
    try:
        labels = model.predict(features)
        if _is_regressor(model):  # numbers, as MLflow's scoring server answers for a regressor
            values = np.asarray(labels, dtype=np.float64)
            bad = int((~np.isfinite(values)).sum())
            if bad:
                raise Unstable(bad, "predictions")
            return {"predictions": [float(value) for value in values]}
        reply: dict[str, Any] = {"predictions": [str(label) for label in labels]}
        if params.get("proba"):
            classes = [str(c) for c in model.classes_]
            probabilities = np.asarray(model.predict_proba(features), dtype=np.float64)
            bad = int((~np.isfinite(probabilities).all(axis=1)).sum())
            if bad:
                raise Unstable(bad)
            reply["probabilities"] = [dict(zip(classes, map(float, row))) for row in probabilities]
    except (ValueError, TypeError, ArithmeticError, RuntimeWarning) as exc:  # e.g. > float32 max
        raise BadRequest(f"the model cannot score these values: {exc}") from None
    return reply


class Unstable(Exception):
    """The model gave NaN or infinite probabilities (or a regressor's predictions): a server-side
    fault, counted in /metrics."""

    def __init__(self, rows: int, what: str = "probabilities") -> None:
        super().__init__(
            f"the served model returned NaN or infinite {what} for {rows} row(s); "
            "it is numerically unstable: roll it back"
        )
        self.rows = rows
        self.what = what


def _is_regressor(model: Any) -> bool:
    """scikit-learn's tag; an object without tags (not an estimator) answers labels."""
    from sklearn.base import is_regressor

    if not hasattr(model, "__sklearn_tags__"):  # scikit-learn 1.6 and 1.7 warn, 1.8 raises
        return False
    return bool(is_regressor(model))


def serve(
    config: Config,
    *,
    alias: str | None = None,
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Run the server until SIGTERM or Ctrl-C; in-flight requests finish first."""
    configured = serve_settings(config)
    settings = dataclasses.replace(
        configured,
        alias=alias or configured.alias,
        host=host or configured.host,
        port=configured.port if port is None else port,
        sample_log=str(config.root / configured.sample_log) if configured.sample_log else "",
    )
    if not is_loopback(settings.host) and host is None:
        raise MlciError(
            f"[tool.mlci.serve] host '{settings.host}' is not a loopback address: pass "
            "--host explicitly to expose the model on the network"
        )
    slot = ModelSlot(
        Registry.of(config),
        settings.alias,
        config.skops_trusted,
        config.model_format,
        retry_seconds=settings.poll_seconds,
    )
    app = create_app(slot, settings)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            access_log=False,  # mlci.access writes one JSON line per request instead
            log_config=None,
            timeout_graceful_shutdown=30,
        )
    )
    log.info(json.dumps({"event": "listening", "host": settings.host, "port": settings.port}))
    # uvicorn handles SIGTERM and SIGINT itself, then re-raises them once it has shut down, with
    # the handlers that were installed before it ran: make a handled SIGTERM end with exit 0.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
