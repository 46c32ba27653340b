from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import retrain_with

from mlci.cli import main
from mlci.delivery import _registry as registry_module
from mlci.delivery._registry import DATA, PRODUCTION, Registry
from mlci.errors import MlciError
from mlci.pipeline._config import Config, load_config
from mlci.pipeline._train import TrainResult, train


@pytest.fixture
def registry(config: Config, trained: TrainResult) -> Registry:
    """The project's registry, with the trained artifacts registered as version 1."""
    reg = Registry.of(config)
    reg.register(config)
    return reg


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


def test_stale_artifacts_are_refused(config: Config, registry: Registry) -> None:
    with (config.data).open("a") as stream:
        stream.write("5.0,3.0,1.5,0.2,setosa\n")
    with pytest.raises(MlciError, match=r"not up to date .*data changed.*run 'mlci train'"):
        registry.register(config)


def test_registry_location_comes_from_the_environment(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "shared-registry"
    monkeypatch.setenv("MLCI_REGISTRY", str(elsewhere))
    assert Registry.of(load_config(project)).root == elsewhere


def test_promote_rollback_and_history(project: Path, registry: Registry) -> None:
    registry.promote(1, PRODUCTION, "first")
    registry.register(retrain_with(project, trees=11))
    moved = registry.promote("2", PRODUCTION, "better")
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


@pytest.mark.parametrize("alias", ["", "12", "pro duction", "a/b"])
def test_bad_alias_names_are_refused(registry: Registry, alias: str) -> None:
    with pytest.raises(MlciError, match="alias"):
        registry.promote(1, alias)


def test_unknown_versions_and_aliases(registry: Registry) -> None:
    with pytest.raises(MlciError, match="no version 7"):
        registry.get(7)
    with pytest.raises(MlciError, match="no alias 'production'"):
        registry.get(PRODUCTION)
    with pytest.raises(MlciError, match="no version 9 in the registry"):
        registry.promote(9, PRODUCTION)
    with pytest.raises(MlciError, match="no alias 'champion'"):
        registry.promote("champion", PRODUCTION)
    with pytest.raises(MlciError, match="no alias 'production' to roll back"):
        registry.rollback(PRODUCTION)


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[:-10]),  # truncated
        lambda path: path.write_bytes(path.read_bytes().replace(b"sklearn", b"sklearm", 1)),
        lambda path: path.unlink(),
    ],
    ids=["truncated", "tampered", "missing"],
)
def test_a_damaged_version_is_never_unpickled(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, damage: Callable[[Path], object]
) -> None:
    import joblib

    damage(registry.folder(1) / "model.joblib")
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(MlciError, match="version 1 failed verification, refusing to load it"):
        registry.load_model(registry.get(1))


def test_a_corrupt_index_is_reported_not_rebuilt(config: Config, registry: Registry) -> None:
    registry.index_path.write_text('{"format": 1, "versions": [', encoding="utf-8")
    before = registry.index_path.read_bytes()
    with pytest.raises(MlciError, match=r"index.json:1:\d+: registry index is not valid JSON"):
        registry.register(config)
    registry.index_path.write_text('{"format": 1, "versions": [{"number": 1}]}')
    with pytest.raises(MlciError, match=r"corrupt registry index .*restore it from a backup"):
        registry.promote(1, PRODUCTION)
    registry.index_path.write_bytes(before)
    assert registry.index_path.read_bytes() == before


def test_an_alias_to_a_missing_version_is_corruption(registry: Registry) -> None:
    index = json.loads(registry.index_path.read_text())
    index["aliases"] = {PRODUCTION: 5}
    registry.index_path.write_text(json.dumps(index))
    with pytest.raises(MlciError, match=r"alias.*production point at versions that are not"):
        registry.versions()


def _register_in_child(project: Path, shared: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlci", "-C", str(project), "registry", "register"],
        env={**os.environ, "MLCI_REGISTRY": str(shared)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_registers_give_distinct_complete_versions(
    project: Path, tmp_path: Path
) -> None:
    projects: list[Path] = []
    for trees in (5, 6, 7, 7):  # the last two share a stage key: one version between them
        copy = tmp_path / f"project-{len(projects)}"
        shutil.copytree(project, copy, ignore=shutil.ignore_patterns("artifacts"))
        retrain_with(copy, trees=trees)
        projects.append(copy)
    shared = tmp_path / "shared"
    children = [_register_in_child(p, shared) for p in projects]
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
    reg = Registry(shared)
    versions = reg.versions()
    assert [v.number for v in versions] == [1, 2, 3]
    assert len({v.stage_key for v in versions}) == 3
    assert all(reg.verify(v) == [] for v in versions)
    assert sorted(p.name for p in (shared / "versions").iterdir()) == ["1", "2", "3"]


def _killed_at(step: int, action: Callable[[], object], monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run ``action`` in a forked child that dies at its ``step``-th file operation.

    Returns True when the child was killed, False when it finished before that step.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        calls = {"n": 0}
        real: dict[str, Callable[..., Any]] = {"replace": os.replace, "copyfile": shutil.copyfile}

        def dying(name: str) -> Any:  # stands in for os.replace or shutil.copyfile
            def op(*args: Any, **kwargs: Any) -> Any:
                calls["n"] += 1
                if calls["n"] == step:
                    os._exit(137)
                return real[name](*args, **kwargs)

            return op

        os.replace = dying("replace")
        shutil.copyfile = dying("copyfile")
        try:
            action()
        except BaseException:
            os._exit(1)
        os._exit(0)
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
def test_a_writer_killed_at_any_step_leaves_the_registry_consistent(
    project: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = retrain_with(project, trees=11)
    registry.promote(1, PRODUCTION)
    actions: list[Callable[[], object]] = [
        lambda: registry.register(config),
        lambda: registry.promote(2, PRODUCTION, "kill test"),
        lambda: registry.rollback(PRODUCTION, "kill test"),
    ]
    for action in actions:
        step = 1
        while _killed_at(step, action, monkeypatch):
            _consistent(registry)
            step += 1
        assert step > 1, "the action did no file operation to kill"
        action()  # after every kind of crash, the same action still works
        _consistent(registry)
    assert [v.number for v in registry.versions()] == [1, 2]
    assert sorted(p.name for p in (registry.root / "versions").iterdir()) == ["1", "2"]
    assert not list(registry.root.glob(".staging-*"))
    assert registry.get(PRODUCTION).number == 1


def test_cli_register_list_show_promote_rollback_history(
    project: Path, trained: TrainResult, capsys: pytest.CaptureFixture[str]
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
    (project / "registry" / "versions" / "1" / "metrics.json").write_text("{}")
    assert main([*run, "show", "1"]) == 1
    assert "verified    NO" in capsys.readouterr().out
    assert main([*run, "show", "8"]) == 2
    assert "mlci: error:" in capsys.readouterr().err


def test_registry_module_has_no_leftover_from_a_clean_run(registry: Registry) -> None:
    assert not list(registry.root.glob(f"{registry_module.STAGING}*"))
    assert (registry.root / ".lock").exists()


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
    model = reg.load_model(version, config.skops_trusted)
    assert model.get_params()["n_estimators"] == 5
    with pytest.raises(MlciError, match=r"outside the allow-list: sklearn\.tree\._tree\.Tree"):
        reg.load_model(version, ())


def test_training_in_skops_writes_a_skops_model(project: Path) -> None:
    pytest.importorskip("skops")
    config = retrain_with(project, trees=5, extra='model_format = "skops"\n')
    assert (config.artifacts / "model.skops").is_file()
    assert train(config).up_to_date


def test_a_rollback_before_any_promotion_is_a_corrupt_index(registry: Registry) -> None:
    """A hand-edited history must be reported as corrupt, never raise IndexError."""
    registry.promote(1, PRODUCTION, "first")
    raw = json.loads(registry.index_path.read_text())
    raw["history"].insert(0, {**raw["history"][0], "action": "rollback", "from_version": 1})
    registry.index_path.write_text(json.dumps(raw))
    with pytest.raises(MlciError, match=r"index\.json: corrupt registry index .*rolled back"):
        registry.rollback(PRODUCTION)
    with pytest.raises(MlciError, match="corrupt registry index"):
        registry.read()
