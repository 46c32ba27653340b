from __future__ import annotations

import concurrent.futures
import errno
import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import damage, new_bucket, retrain_with, store_of

from mlci.cli import main
from mlci.delivery._registry import DATA, PRODUCTION, Registry
from mlci.delivery._store import FsspecStore, LocalStore
from mlci.errors import MlciError
from mlci.pipeline._config import Config, load_config
from mlci.pipeline._train import TrainResult, train


@pytest.fixture
def registry(config: Config, trained: TrainResult, registry_url: str) -> Registry:
    """A registry on each backend (a folder, an S3 bucket), the trained artifacts as version 1."""
    reg = Registry.of(config)
    assert reg.location == registry_url.rstrip("/")
    reg.register(config)
    return reg


@pytest.fixture
def local_registry(config: Config, trained: TrainResult) -> Registry:
    """The project's registry folder with version 1: for checks that do not depend on the store."""
    reg = Registry.of(config)
    reg.register(config)
    return reg


def model_key(registry: Registry, number: int = 1) -> str:
    version = registry.get(number)
    return f"{version.folder}/{version.model_file}"


def last_event(registry: Registry) -> str:
    return f"events/{store_of(registry).list('events')[-1]}"


def test_register_copies_a_complete_verified_version(
    config: Config, trained: TrainResult, registry: Registry
) -> None:
    version = registry.get(1)
    assert version.stage_key == trained.lineage["stage"]["key"]
    assert version.metrics["accuracy"] == pytest.approx(trained.metrics["accuracy"])
    assert version.data_sha256 == trained.lineage["data"]["sha256"]
    assert set(version.files) == {
        "model.joblib",
        "metrics.json",
        "predictions.json",
        "lineage.json",
        DATA,
        "data.manifest.json",
    }
    assert version.files["model.joblib"] == trained.lineage["outputs"]["model"]
    assert registry.verify(version) == []
    model = registry.load_model(version)
    assert model.get_params()["n_estimators"] == 10


def test_the_same_stage_key_is_registered_once(config: Config, registry: Registry) -> None:
    again = registry.register(config)
    assert (again.created, again.version.number) == (False, 1)
    assert [v.number for v in registry.versions()] == [1]


def test_new_inputs_make_a_new_version(project: Path, registry: Registry) -> None:
    config = retrain_with(project, trees=11)
    second = registry.register(config)
    assert (second.created, second.version.number) == (True, 2)
    assert second.version.stage_key != registry.get(1).stage_key


def test_stale_artifacts_are_refused(config: Config, local_registry: Registry) -> None:
    with (config.data).open("a") as stream:
        stream.write("5.0,3.0,1.5,0.2,setosa\n")
    with pytest.raises(MlciError, match=r"not up to date .*data changed.*run 'mlci train'"):
        local_registry.register(config)


def test_registry_location_comes_from_the_environment(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "shared-registry"
    monkeypatch.setenv("MLCI_REGISTRY", str(elsewhere))
    assert Registry.of(load_config(project)).local_root == elsewhere
    monkeypatch.setenv("MLCI_REGISTRY", "file://" + str(elsewhere))
    assert Registry.of(load_config(project)).local_root == elsewhere
    monkeypatch.setenv("MLCI_REGISTRY", "memory://team/registry")
    registry = Registry.of(load_config(project))
    assert (registry.local_root, registry.location) == (None, "memory://team/registry")


def test_promote_rollback_and_history(project: Path, registry: Registry) -> None:
    registry.promote(1, PRODUCTION, "first")
    registry.register(retrain_with(project, trees=11))
    moved = registry.promote("2", PRODUCTION, "better")
    assert moved is not None
    assert (moved.from_version, moved.to_version) == (1, 2)
    back = registry.rollback(PRODUCTION, "bad answers")
    assert (back.action, back.from_version, back.to_version) == ("rollback", 2, 1)
    assert registry.get(PRODUCTION).number == 1
    history = registry.history(PRODUCTION)
    assert [(m.action, m.from_version, m.to_version, m.reason) for m in history] == [
        ("promote", None, 1, "first"),
        ("promote", 1, 2, "better"),
        ("rollback", 2, 1, "bad answers"),
    ]
    assert all(m.user and m.time for m in history)
    with pytest.raises(MlciError, match="no earlier target"):
        registry.rollback(PRODUCTION)


def test_rollback_walks_back_through_every_promotion(project: Path, registry: Registry) -> None:
    registry.register(retrain_with(project, trees=11))
    registry.register(retrain_with(project, trees=12))
    for number in (1, 2, 3):
        registry.promote(number, "champion")
    assert registry.rollback("champion").to_version == 2
    assert registry.rollback("champion").to_version == 1
    registry.promote(3, "staging")
    assert registry.get("champion").number == 1  # other aliases have their own history
    assert [m.alias for m in registry.history()].count("staging") == 1


@pytest.mark.parametrize(
    "alias", ["", "12", "pro duction", "a/b", "prod.v2", "latest", "LATEST", "v1", "V12", "é"]
)
def test_alias_names_any_backend_refuses_are_refused_on_every_backend(
    registry: Registry, alias: str
) -> None:
    """MLflow's rule everywhere, checked before anything is written (prod.v2 once was)."""
    before = registry.read()
    with pytest.raises(MlciError, match="alias"):
        registry.promote(1, alias)
    after = registry.read()
    assert (after.head, after.history, after.aliases) == (before.head, [], {})
    registry.promote(1, "prod_v2-b")  # letters, digits, '_' and '-' are fine
    assert registry.get("prod_v2-b").number == 1


def test_promoting_the_current_version_is_a_no_op_and_rollback_always_moves(
    project: Path, registry: Registry
) -> None:
    assert registry.promote(1, PRODUCTION) is not None
    assert registry.promote(1, PRODUCTION) is None  # nothing recorded
    assert len(registry.history(PRODUCTION)) == 1
    with pytest.raises(MlciError, match="no earlier target"):
        registry.rollback(PRODUCTION)
    registry.register(retrain_with(project, trees=11))
    registry.promote(2, PRODUCTION)
    back = registry.rollback(PRODUCTION)
    assert (back.from_version, back.to_version) == (2, 1)


def test_a_history_with_a_repeated_target_rolls_back_to_a_different_version(
    project: Path, local_registry: Registry
) -> None:
    """Before the no-op, promoting v1 twice stacked it twice: a rollback said 1 -> 1."""
    store = store_of(local_registry)
    local_registry.register(retrain_with(project, trees=11))
    local_registry.promote(1, PRODUCTION)
    local_registry.promote(2, PRODUCTION)
    head = local_registry.read().head
    event = json.loads(store.read(f"events/{head:012d}.json"))
    event["seq"] = head + 1
    event["move"].update(from_version=2, to_version=2)  # the old code recorded this
    store.create(f"events/{head + 1:012d}.json", json.dumps(event).encode())
    back = local_registry.rollback(PRODUCTION)
    assert (back.from_version, back.to_version) == (2, 1)
    assert local_registry.get(PRODUCTION).number == 1
    assert local_registry.read().head == head + 2  # and the log still replays


@pytest.mark.parametrize("command", [["show", "²"], ["promote", "²", "--to", "production"]])
def test_a_superscript_digit_is_no_version_number(
    project: Path, local_registry: Registry, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-C", str(project), "registry", *command]) == 2
    err = capsys.readouterr().err
    assert "no alias '²'" in err
    assert "Traceback" not in err


def test_unknown_versions_and_aliases(local_registry: Registry) -> None:
    with pytest.raises(MlciError, match="no version 7"):
        local_registry.get(7)
    with pytest.raises(MlciError, match="no alias 'production'"):
        local_registry.get(PRODUCTION)
    with pytest.raises(MlciError, match="no version 9 in the registry"):
        local_registry.promote(9, PRODUCTION)
    with pytest.raises(MlciError, match="no alias 'champion'"):
        local_registry.promote("champion", PRODUCTION)
    with pytest.raises(MlciError, match="no alias 'production' to roll back"):
        local_registry.rollback(PRODUCTION)


@pytest.mark.parametrize(
    "change",
    [
        lambda data: data[:-10],  # truncated
        lambda data: data.replace(b"sklearn", b"sklearm", 1),
        lambda data: None,
    ],
    ids=["truncated", "tampered", "missing"],
)
def test_a_damaged_version_is_never_unpickled(
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[bytes], bytes | None],
) -> None:
    import joblib

    damage(registry, model_key(registry), change)
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(MlciError, match="version 1 failed verification, refusing to load it"):
        registry.load_model(registry.get(1))


def test_a_corrupt_event_is_reported_not_repaired(config: Config, registry: Registry) -> None:
    registry.promote(1, PRODUCTION)
    key = last_event(registry)
    before = damage(registry, key, lambda data: b'{"format": 1, "seq": ')
    with pytest.raises(MlciError, match=r"events/000000000002\.json: corrupt registry event "):
        registry.register(config)
    damage(registry, key, lambda data: before.replace(b'"to_version": 1', b'"to_version": 5'))
    with pytest.raises(MlciError, match=r"version 5 is not registered.*restore it from a backup"):
        registry.promote(1, PRODUCTION)
    damage(registry, key, lambda data: before)
    assert registry.get(PRODUCTION).number == 1


def test_a_gap_in_the_event_log_is_corruption(project: Path, registry: Registry) -> None:
    registry.register(retrain_with(project, trees=11))
    registry.promote(2, PRODUCTION)
    damage(registry, "events/000000000002.json", lambda data: None)
    with pytest.raises(MlciError, match=r"000000000002\.json: corrupt .*missing from the event"):
        registry.versions()


def test_an_event_from_a_newer_mlci_is_refused(local_registry: Registry) -> None:
    damage(
        local_registry,
        last_event(local_registry),
        lambda data: data.replace(b'"format": 1', b'"format": 9'),
    )
    with pytest.raises(MlciError, match=r"unknown format 9 \(a newer mlci\?\)"):
        local_registry.read()


def test_snapshots_cache_the_log_and_a_bad_one_is_ignored(
    project: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlci.delivery import _registry

    monkeypatch.setattr(_registry, "SNAPSHOT_EVERY", 3)
    registry.register(retrain_with(project, trees=11))
    for number in (1, 2, 1, 2):
        registry.promote(number, PRODUCTION)
    assert store_of(registry).list("snapshots") == ["000000000003.json", "000000000006.json"]
    expected = registry.read()
    assert (expected.head, expected.snapshot) == (6, 6)
    reads: list[str] = []
    real, real_many = store_of(registry).read, store_of(registry).read_many

    def counted(key: str) -> bytes:
        reads.append(key)
        return real(key)

    def counted_many(keys: list[str]) -> dict[str, bytes]:
        reads.extend(keys)
        return real_many(keys)

    monkeypatch.setattr(store_of(registry), "read", counted)
    monkeypatch.setattr(store_of(registry), "read_many", counted_many)
    assert registry.read().to_dict() == expected.to_dict()
    assert reads == ["snapshots/000000000006.json"]  # no event replayed
    damage(registry, "snapshots/000000000006.json", lambda data: b"{not json")
    reads.clear()
    assert registry.read().to_dict() == expected.to_dict()
    assert list(dict.fromkeys(reads))[1:] == ["snapshots/000000000003.json"] + [
        f"events/{n:012d}.json" for n in (4, 5, 6)
    ]


def test_a_registry_from_before_the_event_log_is_read_then_imported(
    config: Config, trained: TrainResult, tmp_path: Path
) -> None:
    """``index.json`` and ``versions/<N>/``, as earlier mlci wrote them, keep working."""
    old = tmp_path / "old-registry"
    Registry.at(old).register(config)
    [event] = store_of(Registry.at(old)).list("events")
    version = json.loads((old / "events" / event).read_text())["version"]
    (old / version["folder"]).rename(old / "versions" / "1")
    del version["folder"], version["trained_at"]  # neither was recorded then
    legacy = {"format": 1, "versions": [version], "aliases": {}, "history": []}
    (old / "index.json").write_text(json.dumps(legacy))
    shutil.rmtree(old / "events")
    registry = Registry.at(old)
    assert registry.get(1).folder == "versions/1"
    assert registry.get(1).trained_at == ""  # not recorded then: read from its lineage
    lineage = json.loads((old / "versions" / "1" / "lineage.json").read_text())
    assert registry.trained_at(registry.get(1)) == lineage["finished_at"]
    assert registry.verify(registry.get(1)) == []
    assert not (old / "events").exists()  # reading changes nothing
    registry.promote(1, PRODUCTION, "after the upgrade")
    assert store_of(registry).list("events") == ["000000000001.json", "000000000002.json"]
    assert registry.history()[0].reason == "after the upgrade"
    assert registry.load_model(registry.get(PRODUCTION)) is not None
    (old / "index.json").write_text("{not json")  # ignored once imported
    assert registry.get(PRODUCTION).number == 1


def test_a_corrupt_index_from_before_the_event_log_is_reported(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text('{"format": 1, "versions": [{"number": 1}]}')
    with pytest.raises(MlciError, match=r"index\.json: corrupt registry index .*from a backup"):
        Registry.at(tmp_path).versions()


CHILD = """
import sys
from mlci.delivery import Registry
from mlci.pipeline import load_config
from pathlib import Path

config = load_config(Path(sys.argv[1]))
registry = Registry.of(config)
version = registry.register(config).version
registry.promote(version.number, "production", sys.argv[1])
"""


@pytest.mark.integration
def test_concurrent_writers_lose_no_version_and_no_move(
    project: Path, tmp_path: Path, registry_url: str
) -> None:
    """Four processes register and promote at once, on each backend."""
    projects: list[Path] = []
    for trees in (5, 6, 7, 7):  # the last two share a stage key: one version between them
        copy = tmp_path / f"project-{len(projects)}"
        shutil.copytree(project, copy, ignore=shutil.ignore_patterns("artifacts"))
        retrain_with(copy, trees=trees)
        projects.append(copy)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(p)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in projects
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    reg = Registry.at(registry_url)
    versions = reg.versions()
    numbers = [v.number for v in versions]
    if registry_url.startswith("mlflow:"):
        # MLflow numbers versions itself: a duplicate registration, undone, leaves a gap.
        assert len(numbers) == 3
        assert numbers == sorted(set(numbers))
        assert numbers[0] == 1
    else:
        assert numbers == [1, 2, 3]
    assert len({v.stage_key for v in versions}) == 3
    assert all(reg.verify(v) == [] for v in versions)
    history = reg.history(PRODUCTION)
    reasons = [m.reason for m in history]
    # The last two promote one version: when no other move comes between them, the second
    # finds production already there and records nothing.
    assert sorted(set(reasons)) == sorted(reasons)
    assert {str(projects[0]), str(projects[1])} <= set(reasons) <= set(map(str, projects))
    assert set(reasons) & {str(projects[2]), str(projects[3])}
    assert all(m.from_version != m.to_version for m in history)
    chain = [None, *(m.to_version for m in history)]
    assert [m.from_version for m in history] == chain[:-1]  # each move saw the one before
    assert reg.get(PRODUCTION).number == history[-1].to_version


# The MLflow client calls that change something on the server: where a writer can die. Not
# setting MLflow's alias after a move is recorded: the move is done then (its repeat would be a
# second move), and test_mlflow_registry shows the next move setting a lagging alias.
MLFLOW_WRITES = {
    "create_run",
    "set_terminated",
    "log_artifacts",
    "create_model_version",
    "delete_model_version",
}


def _killed_at(step: int, action: Callable[[Registry], object], location: str) -> bool:
    """Run ``action`` in a forked child that dies before its ``step``-th object write.

    Returns True when the child was killed, False when it finished before that step.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        calls = {"n": 0}

        def dying(real: Callable[..., Any]) -> Callable[..., Any]:
            def create(self: Any, key: str, source: Any) -> Any:
                calls["n"] += 1
                if calls["n"] == step:
                    os._exit(137)
                return real(self, key, source)

            return create

        LocalStore.create = dying(LocalStore.create)  # type: ignore[method-assign]
        FsspecStore.create = dying(FsspecStore.create)  # type: ignore[method-assign]
        if location.startswith("mlflow:"):
            from mlci.delivery import _mlflow

            real_call = _mlflow.MlflowRegistry._call

            def dying_call(self: Any, what: str, method: str, *args: Any, **kw: Any) -> Any:
                if method in MLFLOW_WRITES:
                    calls["n"] += 1
                    if calls["n"] == step:
                        os._exit(137)
                return real_call(self, what, method, *args, **kw)

            _mlflow.MlflowRegistry._call = dying_call  # type: ignore[method-assign]
        _finish(action, location)
    return _killed(pid, step)


def _finish(action: Callable[[Registry], object], location: str) -> None:  # pragma: no cover
    """The child's end: run ``action`` and exit 0, or 1 on any error (137 is a kill)."""
    try:
        action(Registry.at(location))  # a new client: the parent's has threads of its own
    except BaseException:
        os._exit(1)
    os._exit(0)


def _killed(pid: int, step: int) -> bool:
    """Wait for the child: True when it was killed at ``step``, False when it finished."""
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
    assert code in (0, 137), f"the child failed with {code} at step {step}"
    return code == 137


def _consistent(reg: Registry) -> None:
    index = reg.read()  # readable: not corrupt
    for version in index.versions.values():
        assert reg.verify(version) == [], f"listed version {version.number} is incomplete"
    assert all(number in index.versions for number in index.aliases.values())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.integration
def test_a_writer_killed_at_any_step_leaves_the_registry_consistent(
    project: Path, registry: Registry, registry_url: str
) -> None:
    config = retrain_with(project, trees=11)
    registry.promote(1, PRODUCTION)
    actions: list[Callable[[Registry], object]] = [
        lambda reg: reg.register(config),
        lambda reg: reg.promote(2, PRODUCTION, "kill test"),
        lambda reg: reg.rollback(PRODUCTION, "kill test"),
    ]
    for action in actions:
        step = 1
        while _killed_at(step, action, registry_url):
            _consistent(registry)
            step += 1
        assert step > 1, "the action wrote no object to kill it at"
        _consistent(registry)  # the last child outlived every write: after all those crashes
    # ... each action still did its work exactly once
    assert [v.number for v in registry.versions()] == [1, 2]
    assert registry.get(PRODUCTION).number == 1
    assert [m.action for m in registry.history()] == ["promote", "promote", "rollback"]


def test_cli_register_list_show_promote_rollback_history(
    project: Path, trained: TrainResult, registry_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ["-C", str(project), "registry"]
    assert main([*run, "list"]) == 0
    assert "no versions yet" in capsys.readouterr().out
    assert main([*run, "register"]) == 0
    assert "registered version 1" in capsys.readouterr().out
    assert main([*run, "register"]) == 0
    assert "unchanged: these artifacts are already version 1" in capsys.readouterr().out
    retrain_with(project, trees=11)
    assert main([*run, "register"]) == 0
    assert main([*run, "promote", "1", "--to", "production", "--reason", "first"]) == 0
    assert main([*run, "promote", "2", "--to", "production"]) == 0
    assert "production: version 1 -> version 2 (promote)" in capsys.readouterr().out.splitlines()
    assert main([*run, "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["version", "aliases", "accuracy"]
    assert table[3].split()[:2] == ["2", "production"]
    assert main([*run, "list", "--json"]) == 0
    assert [v["number"] for v in json.loads(capsys.readouterr().out)] == [1, 2]
    assert main([*run, "show", "production"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("version 2 (production)")
    assert "verified    yes" in out
    assert main([*run, "show", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["aliases"] == ["production"]
    assert main([*run, "rollback", "production", "--reason", "regression"]) == 0
    assert "production: version 2 -> version 1 (rollback)" in capsys.readouterr().out
    assert main([*run, "history", "production"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    assert lines[-1].split()[3:7] == ["rollback", "2", "1", "regression"]
    assert main([*run, "history", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    registry = Registry.of(load_config(project))
    damage(registry, f"{registry.get(1).folder}/metrics.json", lambda data: b"{}")
    assert main([*run, "show", "1"]) == 1
    assert "verified    NO" in capsys.readouterr().out
    assert main([*run, "show", "8"]) == 2
    assert "mlci: error:" in capsys.readouterr().err


def test_a_clean_run_leaves_only_named_objects(project: Path, registry: Registry) -> None:
    registry.register(retrain_with(project, trees=11))
    assert not registry.register(load_config(project)).created
    named = sorted(v.folder.split("/")[1] for v in registry.versions())
    assert _folders(registry) == named
    root = registry.local_root
    if root is not None:
        assert not [p for p in root.rglob("*") if p.name.startswith(".tmp-")]


def _folders(registry: Registry) -> list[str]:
    root = registry.local_root
    if root is not None:
        return sorted(p.name for p in (root / "versions").iterdir())
    store = store_of(registry)
    assert isinstance(store, FsspecStore)
    return sorted({p.rsplit("/", 2)[-2] for p in store.fs.find(f"{store.root}/versions")})


def test_skops_versions_load_through_the_allow_list(project: Path) -> None:
    pytest.importorskip("skops")
    config = retrain_with(
        project,
        trees=5,
        extra='model_format = "skops"\nskops_trusted = ["sklearn.tree._tree.Tree"]\n',
    )
    reg = Registry.of(config)
    version = reg.register(config).version
    assert version.model_file == "model.skops"
    model = reg.load_model(version, config.skops_trusted, model_format="skops")
    assert model.get_params()["n_estimators"] == 5
    with pytest.raises(MlciError, match=r"outside the allow-list: sklearn\.tree\._tree\.Tree"):
        reg.load_model(version, (), model_format="skops")


def test_training_in_skops_writes_a_skops_model(project: Path) -> None:
    pytest.importorskip("skops")
    config = retrain_with(project, trees=5, extra='model_format = "skops"\n')
    assert (config.artifacts / "model.skops").is_file()
    assert train(config).up_to_date


def test_a_rollback_before_any_promotion_is_a_corrupt_index(local_registry: Registry) -> None:
    """A hand-edited history must be reported as corrupt, never raise IndexError."""
    local_registry.promote(1, PRODUCTION, "first")
    damage(
        local_registry,
        last_event(local_registry),
        lambda data: data.replace(b'"promote"', b'"rollback"'),
    )
    with pytest.raises(MlciError, match=r"\.json: corrupt registry event .*rolled back"):
        local_registry.rollback(PRODUCTION)
    with pytest.raises(MlciError, match="corrupt registry event"):
        local_registry.read()


def test_a_url_whose_backend_is_not_installed_names_the_extra(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if mlci[gcs] were not installed
    monkeypatch.setenv("MLCI_REGISTRY", "gs://models/registry")
    assert main(["-C", str(project), "registry", "list"]) == 2
    err = capsys.readouterr().err
    assert "gs://models/registry: the 'gs' backend is not installed" in err
    assert "install mlci[gcs]" in err
    assert "Traceback" not in err
    monkeypatch.setitem(sys.modules, "fsspec", None)
    monkeypatch.setenv("MLCI_REGISTRY", "s3://models/registry")
    assert main(["-C", str(project), "registry", "list"]) == 2
    assert "a URL registry needs fsspec; install mlci[remote]" in capsys.readouterr().err


def test_credentials_in_a_url_are_never_shown(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLCI_REGISTRY", "memory://user:hunter2@team/registry")
    assert main(["-C", str(project), "registry", "list"]) == 0
    out = capsys.readouterr().out
    assert "memory://team/registry: no versions yet" in out
    assert "hunter2" not in out


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A registry URL in a new, empty bucket on the moto server."""
    return new_bucket(s3_endpoint, monkeypatch)


@pytest.mark.integration
def test_the_s3_server_lets_one_create_of_a_key_win(bucket: str) -> None:
    """The concurrency tests rely on S3's rule: of concurrent creates of one key, one wins."""
    store = store_of(Registry.at(bucket))

    def create(key: str, writer: int) -> int:
        try:
            store.create(key, f"writer {writer}".encode())
        except FileExistsError:
            return 0
        return 1

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the server's threads switch as often as they can
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            winners = [
                sum(pool.map(functools.partial(create, f"race/{key}"), range(8)))
                for key in range(100)
            ]
    finally:
        sys.setswitchinterval(previous)
    assert winners == [1] * 100


def test_a_bucket_without_credentials_is_a_clear_error(
    project: Path,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = bucket
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata: loopback only
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(project / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(project / "no-config"))
    monkeypatch.setenv("MLCI_REGISTRY", url)
    assert main(["-C", str(project), "registry", "list"]) == 2
    err = capsys.readouterr().err
    assert f"mlci: error: {url}/events: cannot reach the registry (" in err
    assert "credentials" in err.lower()
    assert "Traceback" not in err


def test_each_registry_opened_resolves_its_own_credentials(
    project: Path, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stores share botocore's parsed service model, never a session or its credentials."""
    assert FsspecStore(bucket).list("events") == []
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata: loopback only
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(project / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(project / "no-config"))
    with pytest.raises(MlciError, match="credentials"):
        FsspecStore(bucket).list("events")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # credentials again: a new store works
    store = FsspecStore(bucket)
    store.create("events/1", b"{}")
    assert store.list("events") == ["1"]


def test_a_bucket_that_does_not_exist_is_not_an_empty_registry(
    project: Path,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = bucket
    monkeypatch.setenv("MLCI_REGISTRY", url.replace("mlci-", "mlic-", 1))  # a typo
    assert main(["-C", str(project), "registry", "list"]) == 2
    assert "the bucket 'mlic-" in capsys.readouterr().err
    monkeypatch.setenv("MLCI_REGISTRY", url)
    assert main(["-C", str(project), "registry", "list"]) == 0
    assert "no versions yet" in capsys.readouterr().out


def _no_hard_links() -> None:
    def link(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EPERM, "hard links are not supported here")

    os.link = link


def _killed_in_a_write_without_links(
    step: int, action: Callable[[Registry], object], location: str
) -> bool:
    """Like ``_killed_at``, on a filesystem without hard links: the child dies halfway through
    writing an object's bytes, or just before a rename, at its ``step``-th such call."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        from mlci.delivery import _store

        calls = {"n": 0}
        real_write, real_rename = _store._write, Path.rename

        def write(stream: Any, source: Any) -> None:
            calls["n"] += 1
            if calls["n"] == step:
                data = source if isinstance(source, bytes) else source.read_bytes()
                stream.write(data[: len(data) // 2])
                stream.flush()
                os._exit(137)
            real_write(stream, source)

        def rename(source: Path, target: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == step:
                os._exit(137)
            return real_rename(source, target)

        _no_hard_links()
        _store._write = write
        Path.rename = rename  # type: ignore[assignment]  # pathlib's own, on every Python
        _finish(action, location)
    return _killed(pid, step)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.integration
def test_without_hard_links_a_killed_writer_leaves_nothing_that_breaks_reads(
    project: Path, local_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = local_registry.location
    config = retrain_with(project, trees=11)
    actions: list[Callable[[Registry], object]] = [
        lambda reg: reg.register(config),
        lambda reg: reg.promote(2, PRODUCTION, "kill test"),
    ]
    for action in actions:
        step = 1
        while _killed_in_a_write_without_links(step, action, location):
            _consistent(local_registry)  # never "corrupt ... restore from backup"
            step += 1
        assert step > 2, "the action wrote no object to kill it in"
    assert [v.number for v in local_registry.versions()] == [1, 2]
    assert local_registry.get(PRODUCTION).number == 2
    # In this process too: objects are whole folders, and none is ever replaced.
    monkeypatch.setattr(os, "link", lambda *args: (_ for _ in ()).throw(OSError(errno.EPERM, "")))
    store = store_of(local_registry)
    store.create("scratch/x.json", b"first")
    with pytest.raises(FileExistsError):
        store.create("scratch/x.json", b"second")
    assert (store.read("scratch/x.json"), store.exists("scratch/x.json")) == (b"first", True)
    assert isinstance(store, LocalStore)
    assert (store.root / "scratch" / "x.json").is_dir()
    local_registry.promote(1, PRODUCTION)  # events as folders, among events as files
    assert local_registry.rollback(PRODUCTION).to_version == 2


def test_a_snapshot_that_cannot_be_written_is_a_warning_the_move_stands(
    local_registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlci.delivery import _registry

    def full_disk(self: Any, index: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_registry, "SNAPSHOT_EVERY", 1)
    monkeypatch.setattr(_registry.StoreRegistry, "_write_snapshot", full_disk)
    move = local_registry.promote(1, PRODUCTION)
    assert move is not None
    assert local_registry.get(PRODUCTION).number == 1
    err = capsys.readouterr().err
    assert "mlci: warning:" in err
    assert "is recorded, but its snapshot" in err


def test_a_project_in_skops_refuses_a_joblib_version_before_unpickling_it(
    project: Path,
    local_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import joblib

    local_registry.promote(1, PRODUCTION)  # a joblib version
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(
        text.replace("[tool.mlci]\n", '[tool.mlci]\nmodel_format = "skops"\n', 1)
    )
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("unpickled"))
    rows = project / "rows.csv"
    rows.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    assert main(["-C", str(project), "predict", str(rows), "--model", PRODUCTION]) == 2
    err = capsys.readouterr().err
    assert "version 1 is a joblib model, and [tool.mlci] model_format = 'skops'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("url", ["s3:/bucket/x", "http://host/registry", "ftp://u:pw@host/x"])
def test_a_url_mlci_does_not_support_is_an_error_naming_the_supported_ones(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    monkeypatch.setenv("MLCI_REGISTRY", url)
    assert main(["-C", str(project), "registry", "list"]) == 2
    err = capsys.readouterr().err
    assert "is not a registry URL mlci supports: give s3://…, s3a://…, gs://…" in err
    assert "MLCI_REGISTRY" in err
    assert "pw@" not in err
    assert "Traceback" not in err
    assert not (project / "s3:").exists()
