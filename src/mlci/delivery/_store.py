"""Where a registry keeps its objects: a local folder, or any fsspec URL (S3, GCS, ...).

The registry needs four operations, all of which object stores have: read an object, create one
only if it does not exist yet (S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``; a hard link
locally), list a prefix, and tell whether an object exists. There is no rename, no overwrite and
no lock, so one registry design serves every backend.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from mlci._secrets import without_credentials
from mlci.errors import MlciError

CHUNK = 1 << 20
REMOTE_EXTRA = {"s3": "remote", "s3a": "remote", "gs": "gcs", "gcs": "gcs"}
BUCKETS = set(REMOTE_EXTRA)  # schemes whose first path component is a bucket
TEMPORARY = ".tmp-"  # a local object being written; never listed
OBJECT = "object"  # without hard links, a local object is a folder holding this one file
S3 = {"s3", "s3a"}


class Store(Protocol):
    """A flat namespace of immutable objects named by '/'-separated keys."""

    location: str  # for messages: a path or a URL, never with credentials in it

    def read(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when there is none."""
        ...

    def create(self, key: str, source: bytes | Path) -> None:
        """Write a new object in one piece; FileExistsError when ``key`` already exists."""
        ...

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """Several objects at once (concurrently where the backend can); FileNotFoundError
        when one is missing."""
        ...

    def list(self, prefix: str) -> list[str]:
        """The names of the objects directly under ``prefix`` (a folder-like key), sorted."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object exists."""
        ...

    def describe(self, key: str) -> str:
        """Where an object is, for messages."""
        ...

    def remove(self, prefix: str) -> None:
        """Delete every object under ``prefix`` (only ever one this process alone wrote)."""
        ...


def is_url(location: str) -> bool:
    """A URL with a scheme other than file:// (Windows drive letters are paths)."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+)://", location)
    return match is not None and match.group(1).lower() != "file"


# The URL schemes a registry can live at: object stores that create an object only if it is new,
# and memory:// (one process, for trying things out).
SCHEMES = ("s3", "s3a", "gs", "gcs", "memory", "file")
_URL_LIKE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/")


def check_location(location: str, where: str) -> None:
    """Refuse what looks like a URL but is not a supported one, rather than make it a folder.

    ``s3:/bucket`` (one slash) would otherwise be a local folder named ``s3:``, and ``http://``
    or ``ftp://`` would fail later with a library's words.
    """
    match = _URL_LIKE.match(location)
    if match is None:
        return
    scheme = match.group(1).lower()
    if scheme not in SCHEMES or not location[match.end() :].startswith("/"):
        shown = without_credentials(location)
        raise MlciError(
            f"{where}: '{shown}' is not a registry URL mlci supports: give "
            f"{', '.join(f'{s}://…' for s in SCHEMES[:4])}, 'mlflow:<model name>' or a folder"
        )


def open_store(location: str | Path) -> Store:
    """A local folder for a path (or file:// URL), an fsspec filesystem for any other URL."""
    text = str(location)
    check_location(text, "registry")
    if is_url(text):
        return FsspecStore(text)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return LocalStore(Path(text))


class LocalStore:
    """A folder on disk; a new object is a complete, fsynced file hard-linked into place.

    On a filesystem without hard links, the object is a folder holding one complete file, renamed
    into place whole: renaming a folder onto an existing object fails, as linking does, so no
    writer overwrites another, and a reader sees the whole object or none.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def describe(self, key: str) -> str:
        """The object's path."""
        return str(self._path(key))

    def read(self, key: str) -> bytes:
        """The file's bytes."""
        path = self._path(key)
        return (path / OBJECT if path.is_dir() else path).read_bytes()

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """The files' bytes, one after the other."""
        return {key: self.read(key) for key in keys}

    def exists(self, key: str) -> bool:
        """Whether the file exists."""
        path = self._path(key)
        return path.is_file() or (path / OBJECT).is_file()

    def list(self, prefix: str) -> list[str]:
        """The files in the folder ``prefix``, without those still being written."""
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(TEMPORARY))

    def remove(self, prefix: str) -> None:
        """Delete the folder ``prefix``."""
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def create(self, key: str, source: bytes | Path) -> None:
        """Write a temporary file, fsync it, then link it to ``key``: linking never overwrites."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f"{TEMPORARY}{uuid.uuid4().hex}")
        try:
            with temporary.open("xb") as stream:
                _write(stream, source)
                stream.flush()
                os.fsync(stream.fileno())
            try:
                os.link(temporary, target)
            except FileExistsError:
                raise
            except OSError:  # a filesystem without hard links
                _rename_folder_into_place(temporary, target)
            _fsync_dir(target.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()


def _rename_folder_into_place(temporary: Path, target: Path) -> None:
    """Move the complete file into a new folder, and rename that folder to ``target``.

    POSIX rename fails when ``target`` is a file or a folder with anything in it, so an existing
    object is never replaced; a writer killed before the rename leaves a temporary folder that
    no listing shows.
    """
    folder = target.with_name(f"{TEMPORARY}{uuid.uuid4().hex}")
    folder.mkdir()
    try:
        temporary.rename(folder / OBJECT)
        _fsync_dir(folder)
        if target.exists():  # rename would fail too; say so the way linking does
            raise FileExistsError(errno.EEXIST, "exists", str(target))
        try:
            folder.rename(target)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise FileExistsError(exc.errno, "exists", str(target)) from None
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class FsspecStore:
    """Any fsspec filesystem that can create exclusively (mode ``"xb"``): S3, GCS, memory://."""

    def __init__(self, url: str) -> None:
        self.location = without_credentials(url).rstrip("/")
        scheme = url.split("://", 1)[0].lower()
        extra = REMOTE_EXTRA.get(scheme, "remote")
        try:
            import fsspec
        except ImportError:
            raise MlciError(
                f"registry {self.location}: a URL registry needs fsspec; install mlci[{extra}] "
                f"(pip install 'mlci[{extra}]', or the lock requirements/{extra}.txt)"
            ) from None
        try:
            options: dict[str, Any] = {"skip_instance_cache": True}
            if scheme in BUCKETS:
                # Another process may have written since we last listed: never trust a cached one.
                options["use_listings_cache"] = False
            if scheme in S3:
                options["session"] = _s3_session()
            self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            raise MlciError(
                f"registry {self.location}: the '{scheme}' backend is not installed ({exc}); "
                f"install mlci[{extra}]"
            ) from None
        except ValueError as exc:  # an unknown protocol
            raise MlciError(f"registry {self.location}: {exc}") from None
        self.root = self.root.rstrip("/")
        # Object stores list a missing bucket as empty: check it once, or a typo in its name
        # would read as an empty registry.
        self._bucket = self.root.split("/")[0] if scheme in BUCKETS else None

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def describe(self, key: str) -> str:
        """The object's URL."""
        return f"{self.location}/{key}"

    @contextlib.contextmanager
    def _reaching(self, key: str, *, retryable: bool = False) -> Iterator[None]:
        """The backend's failures (credentials, network, permissions) as one clear error."""
        try:
            yield
        except (FileNotFoundError, FileExistsError, MlciError):
            raise
        except OSError as exc:
            if retryable and exc.errno == errno.EIO:
                raise  # S3's 409 for a concurrent conditional write: the registry retries it
            raise MlciError(f"{self.describe(key)}: {_reason(exc)}") from None
        except _backend_errors() as exc:  # botocore's NoCredentialsError, ClientError, aiohttp's
            raise MlciError(f"{self.describe(key)}: {_reason(exc)}") from None

    def read(self, key: str) -> bytes:
        """The object's bytes."""
        with self._reaching(key):
            data: bytes = self.fs.cat_file(self._path(key))
        return data

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """The objects' bytes, fetched concurrently by async backends (one round trip's wait)."""
        if len(keys) < 2:
            return {key: self.read(key) for key in keys}
        paths = {self._path(key): key for key in keys}
        with self._reaching(keys[0]):
            found = self.fs.cat(list(paths), on_error="return")
        result = {}
        for path, key in paths.items():
            data = found.get(path, FileNotFoundError(path))
            if isinstance(data, FileNotFoundError):
                raise data
            if isinstance(data, BaseException):
                raise MlciError(f"{self.describe(key)}: {_reason(data)}")
            result[key] = data
        return result

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        with self._reaching(key):
            return bool(self.fs.exists(self._path(key)))

    def list(self, prefix: str) -> list[str]:
        """The objects directly under ``prefix``."""
        path = self._path(prefix).rstrip("/")
        self.fs.invalidate_cache(path)
        try:
            with self._reaching(prefix):
                entries = self.fs.ls(path, detail=True)
        except FileNotFoundError:
            self._check_bucket()
            return []
        return sorted(
            str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            for entry in entries
            if entry.get("type") == "file"
        )

    def _check_bucket(self) -> None:
        bucket, self._bucket = self._bucket, None  # once per client
        if bucket:
            with self._reaching(""):
                found = self.fs.exists(bucket)
            if not found:
                raise MlciError(
                    f"registry {self.location}: the bucket '{bucket}' does not exist, or these "
                    "credentials cannot see it; create it (the README's 'Shared registry')"
                )

    def remove(self, prefix: str) -> None:
        """Delete every object under ``prefix``."""
        with contextlib.suppress(FileNotFoundError), self._reaching(prefix):
            self.fs.rm(self._path(prefix), recursive=True)

    def create(self, key: str, source: bytes | Path) -> None:
        """Open with ``"xb"``: the backend commits the object only if the key is still free."""
        try:
            with self._reaching(key, retryable=True), self.fs.open(self._path(key), "xb") as stream:
                _write(stream, source)
        except (NotImplementedError, ValueError) as exc:
            if isinstance(exc, ValueError) and "mode" not in str(exc):
                raise
            raise MlciError(
                f"registry {self.location}: this filesystem cannot create objects exclusively "
                f"(mode 'xb'), which the registry needs to stay correct under concurrent "
                f"writers: {exc}"
            ) from None


def _backend_errors() -> tuple[type[BaseException], ...]:
    """What S3's clients raise for credentials, permissions and the network (gcsfs: OSError).

    Only these become "cannot reach the registry": anything else is a bug, and surfaces as one.
    Evaluated only when an error is being matched; the imports are cached by Python.
    """
    errors: list[type[BaseException]] = []
    with contextlib.suppress(ImportError):
        import botocore.exceptions

        errors += [botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError]
    with contextlib.suppress(ImportError):
        import aiohttp

        errors.append(aiohttp.ClientError)
    return tuple(errors)


# botocore's parsed service descriptions, by data path: read once per process. Each store still
# gets its own session, so credentials, profile and endpoint are resolved anew every time.
_LOADERS: dict[str, Any] = {}


def _s3_session() -> Any:
    """A new aiobotocore session that shares this process's botocore data loader.

    A new session loads and parses S3's service model (megabytes of JSON) again: about 0.2 s
    for every registry a process opens after its first (commands run in-process, as the tests
    run them, and a forked writer).
    """
    import aiobotocore.session

    session = aiobotocore.session.AioSession()
    data_path = str(session.get_config_variable("data_path") or "")
    loader = _LOADERS.setdefault(data_path, session.get_component("data_loader"))
    session.register_component("data_loader", loader)
    return session


def _reason(error: BaseException) -> str:
    """What went wrong, in one line: the error's kind and its message."""
    message = " ".join(str(error).split()) or "no message"
    return f"cannot reach the registry ({type(error).__name__}: {message})"


def _write(stream: IO[bytes], source: bytes | Path) -> None:
    if isinstance(source, bytes):
        if not source:  # an empty object would be committed without the condition (s3fs)
            raise ValueError("registry objects are never empty")
        stream.write(source)
        return
    with source.open("rb") as reader:
        if not reader.read(1):
            raise ValueError(f"{source}: registry objects are never empty")
        reader.seek(0)
        shutil.copyfileobj(reader, stream, CHUNK)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can fsync a folder
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
