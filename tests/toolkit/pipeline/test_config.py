from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_pyproject
from sklearn.ensemble import RandomForestClassifier

from mlci.cli._common import load_all
from mlci.delivery import drift_settings, registry_location
from mlci.errors import MlciError
from mlci.pipeline._config import EstimatorSpec, StepSpec, build_estimator, load_config


def test_loads_defaults_and_resolves_paths(project: Path) -> None:
    config = load_config(project)
    assert config.data == project.resolve() / "data" / "iris.csv"
    assert config.target == "species"
    assert config.estimator.params == {"n_estimators": 10, "random_state": 42}
    assert config.gate.floors == {"accuracy": 0.8, "macro_f1": 0.8}
    assert config.resolved()["data"] == "data/iris.csv"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.mlci]\ntarget = 'species'\n", "missing required key 'data'"),
        ("[tool.mlci]\ndata = 'x.csv'\n", "missing required key 'target'"),
        ("[tool.mlci]\ndata = 1\ntarget = 'y'\n", "data: must be a string, got 1"),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\ntest_size = 1.5\n",
            "test_size: must be between 0 and 1",
        ),
        ("[tool.mlci]\ndata = 'x'\ntarget = 'y'\nseed = 'a'\n", "seed: must be an integer"),
        ("[tool.mlci]\ndata = 'x'\ntarget = 'y'\ndatta = 1\n", r"unknown key\(s\) datta"),
        ("[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.gate]\nfoo = 1\n", "unknown key 'foo'"),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.gate]\nmin_accuracy = 'high'\n",
            "must be a number",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.estimator]\nklass = 'a.B'\n",
            "unknown key",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\nmodel_format = 'pickle'\n",
            "model_format: must be one of joblib, skops, got 'pickle'",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\nskops_trusted = [1]\n",
            "skops_trusted: must be a list of type names",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.drift]\nshares = 0.5\n",
            r"\[tool.mlci.drift\]: unknown key\(s\) shares",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.drift]\nks_p_value = 2\n",
            "ks_p_value: must be between 0 and 1, got 2",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.drift]\nks_max_rows = 'a'\n",
            "ks_max_rows: must be an integer",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.serve]\nport = 0\n",
            r"\[tool.mlci.serve\] port: must be positive",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\nregistry = 3\n",
            r"\[tool.mlci\] registry: must be a string",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.gate.simpler]\ncheck = 'maybe'\n",
            r"\[tool.mlci.gate.simpler\] check: 'maybe' is not one of fail, warn, off",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.gate.simpler]\nmargin = 1.5\n",
            r"\[tool.mlci.gate.simpler\] margin: must be at least 0 and below 1, got 1.5",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.gate.simpler]\nmodel = {}\n",
            r"\[tool.mlci.gate.simpler\] model: give 'class' \(and 'params'\), or 'steps'",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.gate.simpler]\nbaseline = 1\n",
            r"\[tool.mlci.gate.simpler\]: unknown key\(s\) baseline",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.report]\npictures = 'no'\n",
            r"\[tool.mlci.report\] pictures: must be true or false, got 'no'",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\n[tool.mlci.report]\nplots = false\n",
            r"\[tool.mlci.report\]: unknown key\(s\) plots",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\nthreads = 0\n",
            r"\[tool.mlci\] threads: must be 1 or more, got 0",
        ),
        (
            "[tool.mlci]\ndata = 'x'\ntarget = 'y'\nthreads = 'auto'\n",
            r"\[tool.mlci\] threads: must be an integer",
        ),
        ("[project]\nname = 'x'\n", r"no \[tool.mlci\] table"),
        ("[tool.mlci\n", "invalid TOML"),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    # What every command loads: the pipeline's settings and each other concern's section.
    with pytest.raises(MlciError, match=message) as info:
        load_all(tmp_path)
    assert "pyproject.toml" in str(info.value)


def test_missing_pyproject(tmp_path: Path) -> None:
    with pytest.raises(MlciError, match=r"pyproject\.toml: not found"):
        load_config(tmp_path)


def test_manifest_defaults_next_to_the_data(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.mlci]\ndata = 'd/train.csv'\ntarget = 'y'\n")
    assert load_config(tmp_path).manifest == tmp_path.resolve() / "d" / "train.manifest.json"


def test_build_estimator_applies_params() -> None:
    estimator = build_estimator(
        EstimatorSpec.single("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 7})
    )
    assert isinstance(estimator, RandomForestClassifier)
    assert estimator.n_estimators == 7


@pytest.mark.parametrize(
    ("class_path", "params", "message"),
    [
        ("RandomForest", {}, "not an import path"),
        ("sklearn.nope.Model", {}, "cannot import module 'sklearn.nope'"),
        ("sklearn.ensemble.Nope", {}, "has no class 'Nope'"),
        ("pathlib.PurePath", {}, "is not a scikit-learn estimator"),
        (
            "sklearn.ensemble.RandomForestClassifier",
            {"n_estimator": 3},
            "n_estimator not a parameter",
        ),
        (
            "sklearn.cluster.KMeans",
            {},
            r"class: sklearn.cluster.KMeans is neither a classifier nor a regressor",
        ),
        ("sklearn.preprocessing.StandardScaler", {}, "is neither a classifier nor a regressor"),
    ],
)
def test_build_estimator_errors(class_path: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(MlciError, match=message):
        build_estimator(EstimatorSpec.single(class_path, params))


def test_extra_keys_are_checked_in_a_real_project(project: Path) -> None:
    write_pyproject(project, extra="color = 'blue'\n")
    with pytest.raises(MlciError, match=r"unknown key\(s\) color"):
        load_config(project)


def test_drift_registry_and_format_settings(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_pyproject(
        project,
        extra='registry = "models"\n[tool.mlci.drift]\nshare = 0.25\nwasserstein = 0.2\n',
    )
    config = load_config(project)
    assert registry_location(config) == project.resolve() / "models"
    drift = drift_settings(config)
    assert (drift.share, drift.wasserstein) == (0.25, 0.2)
    assert drift.ks_p_value == 0.05
    assert config.model_format == "joblib"
    monkeypatch.setenv("MLCI_REGISTRY", str(tmp_path / "elsewhere"))
    assert registry_location(load_config(project)) == tmp_path / "elsewhere"


def pipeline_spec(*classes: str) -> EstimatorSpec:
    return EstimatorSpec(tuple(StepSpec(name, {}) for name in classes))


def test_steps_build_a_pipeline_whose_params_are_checked(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.mlci]\ndata = 'd.csv'\ntarget = 'y'\n[tool.mlci.estimator]\nsteps = [\n"
        '  { class = "sklearn.preprocessing.StandardScaler" },\n'
        '  { class = "sklearn.linear_model.LogisticRegression", params = { C = 0.5 } },\n]\n'
    )
    config = load_config(tmp_path)
    assert config.estimator.name == "StandardScaler → LogisticRegression"
    assert config.resolved()["estimator"] == {
        "steps": [
            {"class": "sklearn.preprocessing.StandardScaler", "params": {}},
            {"class": "sklearn.linear_model.LogisticRegression", "params": {"C": 0.5}},
        ]
    }
    estimator = build_estimator(config.estimator)
    assert [type(step).__name__ for step in estimator] == ["StandardScaler", "LogisticRegression"]
    assert estimator[-1].C == 0.5


def test_a_single_estimator_keeps_its_resolved_form() -> None:
    """Existing stage keys (and so trained artifacts) stay valid for `class` + `params`."""
    spec = EstimatorSpec.single("sklearn.svm.SVC", {"probability": True, "C": 2})
    assert spec.resolved() == {"class": "sklearn.svm.SVC", "params": {"C": 2, "probability": True}}


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (
            ("sklearn.preprocessing.StandardScaler", "sklearn.cluster.KMeans"),
            r"steps\[1\]: sklearn.cluster.KMeans is neither a classifier nor a regressor",
        ),
        (
            ("sklearn.linear_model.LogisticRegression", "sklearn.linear_model.LogisticRegression"),
            r"steps\[0\]: sklearn.linear_model.LogisticRegression is not a transformer",
        ),
        (
            ("sklearn.preprocessing.Nope", "sklearn.svm.SVC"),
            r"steps\[0\] class: .* has no class .Nope.",
        ),
    ],
)
def test_pipeline_errors_name_the_step(classes: tuple[str, ...], message: str) -> None:
    with pytest.raises(MlciError, match=message):
        build_estimator(pipeline_spec(*classes))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("steps = []", "steps: must list at least one estimator"),
        ('class = "x.Y"\nsteps = [{ class = "a.B" }]', "either 'class' and 'params', or 'steps'"),
        ("steps = ['sklearn.svm.SVC']", r"steps\[0\]: must be a table"),
        ('steps = [{ klass = "x" }]', r"steps\[0\]: unknown key\(s\) klass"),
    ],
)
def test_steps_config_errors(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f"[tool.mlci]\ndata = 'd.csv'\ntarget = 'y'\n[tool.mlci.estimator]\n{table}\n"
    )
    with pytest.raises(MlciError, match=message):
        load_config(tmp_path)
