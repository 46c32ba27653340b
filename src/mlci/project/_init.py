"""`mlci init`: the project surface mlci owns, written into a new folder or an existing repo."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from mlci import __version__
from mlci.errors import MlciError
from mlci.project._files import MANIFEST, Manifest, sha256, write_all
from mlci.project._pyproject import Merged, merge
from mlci.project._render import IRIS, Data, owned, starters, tables, template

PYPROJECT = "pyproject.toml"
KEPT_IF_PRESENT = {".gitignore"}  # a repository's own .gitignore is never replaced


@dataclasses.dataclass(frozen=True)
class Plan:
    """What `mlci init` writes, what it would overwrite, and how it merges pyproject.toml."""

    root: Path
    files: dict[str, bytes]
    conflicts: tuple[str, ...]
    kept: tuple[str, ...]
    merged: Merged

    def lines(self) -> list[str]:
        """The plan as `--dry-run` prints it."""
        found = [
            f"{'overwrite' if path in self.conflicts else 'write'} {path}"
            for path in sorted(self.files)
            if path != PYPROJECT
        ]
        added = ", ".join(f"[{name}]" for name in self.merged.added) or "nothing"
        found.append(f"{'merge' if self.merged.kept else 'write'} {PYPROJECT}: add {added}")
        found += [f"keep {PYPROJECT}'s [{name}] as it is" for name in self.merged.kept]
        found += [f"keep {path} as it is" for path in self.kept]
        return found


def _data_files(root: Path, data: Data, csv_text: str | None) -> tuple[dict[str, bytes], str]:
    """The manifest and starter checks `mlci data init` writes (and the CSV, for the sample).

    With them, the task the data's target asks for (classification or regression).
    """
    from mlci import pipeline

    with tempfile.TemporaryDirectory(prefix="mlci-init-") as tmp:
        csv_path = Path(tmp) / Path(data.csv).name
        if csv_text is None:
            try:
                csv_path.write_bytes((root / data.csv).read_bytes())
            except FileNotFoundError:
                raise MlciError(f"{data.csv}: data file not found in {root}") from None
        else:
            csv_path.write_text(csv_text, encoding="utf-8")
        manifest_path = csv_path.with_name(Path(data.manifest).name)
        manifest = pipeline.infer_manifest(csv_path, data.target, manifest_path)
        table = pipeline.read_file(csv_path, manifest, display=data.csv)
        checks = pipeline.starter_checks(manifest, table)
        body = json.dumps(manifest.to_dict(), indent=2) + "\n"
    files = {data.manifest: body.encode(), data.checks: checks.encode()}
    if csv_text is not None:
        files[data.csv] = csv_text.encode()
    return files, manifest.task


def data_of(root: Path, csv: str | None, target: str | None) -> Data:
    """The project's data from `--data` and `--target` (both or neither: then the Iris sample)."""
    if (csv is None) != (target is None):
        raise MlciError("--data and --target go together: the CSV and its label column")
    if csv is None or target is None:
        return IRIS
    path = Path(csv)
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        relative = absolute.resolve().relative_to(root.resolve())
    except ValueError:
        raise MlciError(f"--data {csv}: the data must be inside the project ({root})") from None
    return Data(relative.as_posix(), target)


def plan(root: Path, data: Data) -> Plan:
    """Everything `mlci init` would write into ``root``, without writing anything."""
    files = {path: text.encode() for path, text in owned().items()}
    kept = []
    for path, text in starters().items():
        if path in KEPT_IF_PRESENT and (root / path).exists():
            kept.append(path)
        else:
            files[path] = text.encode()
    written, task = _data_files(root, data, template("iris.csv.tmpl") if data == IRIS else None)
    files.update(written)
    pyproject = root / PYPROJECT
    existing = pyproject.read_text(encoding="utf-8") if pyproject.exists() else None
    merged = merge(existing, tables(data, task))
    files[PYPROJECT] = merged.text.encode()
    manifest = Manifest(__version__, {path: sha256(files[path]) for path in owned()})
    files[MANIFEST] = manifest.text().encode()
    conflicts = tuple(
        sorted(path for path in files if path != PYPROJECT and (root / path).exists())
    )
    return Plan(root, files, conflicts, tuple(kept), merged)


def locks(plan: Plan, find_links: str | None) -> dict[str, bytes]:
    """The project's locks, resolved by `mlci lock` against the planned pyproject.toml."""
    from mlci import ci

    with tempfile.TemporaryDirectory(prefix="mlci-init-locks-") as tmp:
        folder = Path(tmp)
        for name in (PYPROJECT, ".python-version"):
            (folder / name).write_bytes(plan.files[name])
        (folder / "requirements").mkdir()
        found = ci.project_locks(folder)
        ci.compile_all(folder, found, find_links=find_links)
        return {lock.path: (folder / lock.path).read_bytes() for lock in found}


def _existing_locks(plan: Plan) -> list[str]:
    """The lock files `mlci lock` would write that the folder already has."""
    from mlci import ci
    from mlci._settings import tomllib

    pyproject = tomllib.loads(plan.files[PYPROJECT].decode())
    default_python = plan.files[".python-version"].decode().strip()
    paths = [lock.path for lock in ci.locks(pyproject, default_python)]
    return [path for path in paths if (plan.root / path).exists()]


def init(
    root: Path,
    data: Data,
    *,
    force: bool = False,
    lock: bool = True,
    find_links: str | None = None,
) -> Plan:
    """Write the project, all or nothing; refuse to overwrite files (listed) unless forced."""
    found = plan(root, data)
    if lock:
        found = dataclasses.replace(
            found,
            conflicts=tuple(sorted({*found.conflicts, *_existing_locks(found)})),
        )
    if found.conflicts and not force:
        listed = "\n".join(f"  {path}" for path in found.conflicts)
        raise MlciError(
            f"{root}: mlci init would overwrite {len(found.conflicts)} file(s):\n{listed}\n"
            "nothing written; pass --force to overwrite them, --dry-run to see the plan"
        )
    files = dict(found.files)
    if lock:
        files.update(locks(found, find_links))
    root.mkdir(parents=True, exist_ok=True)
    write_all(root, files)
    return dataclasses.replace(found, files=files)
