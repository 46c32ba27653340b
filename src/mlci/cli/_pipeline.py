"""Commands of the training pipeline: data, train, tune, status, predict, gate, diff, baseline."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci._io import atomic_write_json, atomic_write_text
from mlci.cli._common import add, config_of, publish
from mlci.errors import MlciError

if TYPE_CHECKING:  # the concern is imported when a command runs, not to parse one
    from mlci import pipeline


def cmd_data_validate(args: argparse.Namespace) -> int:
    """Check a CSV against the manifest and print every problem."""
    from mlci import pipeline

    config = config_of(args)
    manifest = pipeline.load_manifest(Path(args.manifest) if args.manifest else config.manifest)
    path = Path(args.csv) if args.csv else config.data
    display = args.csv or config.relative(config.data)
    report = pipeline.validate(path, manifest, check_hash=not args.schema_only, display=display)
    if not report.ok:
        print(pipeline.format_problems(report), file=sys.stderr)
        return 2
    print(f"{display}: OK, {report.rows} rows match {config.relative(manifest.path)}")
    return 0


def cmd_data_accept(args: argparse.Namespace) -> int:
    """Record a deliberately changed data file (hash and rows) in the manifest."""
    from mlci import pipeline

    config = config_of(args)
    manifest = pipeline.load_manifest(Path(args.manifest) if args.manifest else config.manifest)
    updated = pipeline.accept(manifest, Path(args.csv) if args.csv else None)
    print(
        f"{config.relative(updated.path)}: recorded {updated.file} "
        f"({updated.rows} rows, sha256 {updated.sha256[:12]}…)"
    )
    return 0


def cmd_data_init(args: argparse.Namespace) -> int:
    """Draft a manifest for a new CSV: review its ranges and labels, then commit it."""
    from mlci import pipeline

    csv_path = Path(args.csv)
    manifest_path = (
        Path(args.manifest)
        if args.manifest
        else csv_path.with_name(f"{csv_path.stem}.manifest.json")
    )
    if manifest_path.exists() and not args.force:
        raise MlciError(f"{manifest_path}: already exists; pass --force to overwrite it")
    manifest = pipeline.infer_manifest(csv_path, args.target, manifest_path)
    checks = csv_path.with_name(f"{csv_path.stem}.checks.toml")
    starter = None
    if args.force or not checks.exists():
        table = pipeline.read_file(csv_path, manifest, display=args.csv)
        starter = pipeline.starter_checks(manifest, table)
    manifest.save()
    print(
        f"{manifest_path}: wrote a manifest for {manifest.rows} rows; review its ranges and labels"
    )
    for line in pipeline.review_notes(manifest):
        print(f"  {line}")
    if starter is None:
        print(f"{checks}: kept (pass --force to replace it with a new starter)")
    else:
        atomic_write_text(checks, starter)
        print(f"{checks}: wrote starter behavioural checks; review them (`mlci check` runs them)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Validate the data, then train unless the artifacts are up to date."""
    from mlci import pipeline

    config = config_of(args)
    result = pipeline.train(config, force=args.force)
    folder = config.relative(result.artifacts.folder)
    if result.up_to_date:
        print(f"up to date: {folder}/ was trained from the current inputs (use --force to retrain)")
    else:
        print(f"trained {config.estimator.name} on {result.lineage['data']['rows']} rows")
    metrics = result.metrics
    print(
        f"  {pipeline.headline_text(metrics)}   "
        f"train {metrics['train_size']} / test {metrics['test_size']} rows"
    )
    print(f"  model    {config.relative(result.artifacts.model)}")
    print(f"  metrics  {config.relative(result.artifacts.metrics)}")
    print(f"  lineage  {config.relative(result.artifacts.lineage)}")
    # A cache hit stays cheap (no matplotlib, no numpy): the pictures were drawn when it trained.
    section = pipeline.train_section(config, result).markdown()
    publish(config, "train", section, draw=not result.up_to_date)
    _track_training(config, result)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """Cross-validate [tool.mlci.tune] grid; fail when the configured params trail its best."""
    from mlci import pipeline

    config = config_of(args)
    if config.tune is None:
        raise MlciError(
            f"{config.pyproject}: no [tool.mlci.tune] table; add one with the params to try, "
            "e.g. grid = { max_depth = [3, 5, 8] }"
        )
    _, table = pipeline.load_data(config)
    tuning = pipeline.tune(config, config.tune, table)
    atomic_write_json(config.artifacts / pipeline.TUNE_RESULTS, pipeline.tuning_to_dict(tuning))
    section = pipeline.tune_section(config, tuning)
    publish(config, "tune", section.markdown(), draw=False)
    print(section.text())
    return 0 if tuning.passed else 1


def _track_training(config: pipeline.Config, result: pipeline.TrainResult) -> None:
    """Log a run that trained to the MLflow server, when one is configured."""
    from mlci import tracking

    logged = tracking.record_training(config, result)
    if logged is not None:
        print(f"  mlflow   run {logged.run_id} on {logged.tracking_uri}")


def cmd_status(args: argparse.Namespace) -> int:
    """Say whether the artifacts are up to date; exit 1 when they are stale."""
    from mlci import pipeline

    status = pipeline.stage_status(config_of(args))
    if status.up_to_date:
        print(f"up to date (stage key {status.key[:12]}…)")
        return 0
    print("stale: " + "; ".join(status.reasons))
    return 1


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict labels for rows from a CSV file or stdin with the verified model."""
    from mlci import pipeline

    config = config_of(args)
    if args.model:
        from mlci.delivery import Registry

        registry = Registry.of(config)
        version = registry.get(args.model)
        model = registry.load_model(version, config.skops_trusted, model_format=config.model_format)
        manifest = registry.manifest(version)  # the version's columns, not the checkout's
    else:
        model = pipeline.load_trained(config)
        manifest = pipeline.load_manifest(config.manifest)
    if args.csv in (None, "-"):
        labels = pipeline.predict_rows(manifest, model, sys.stdin, "<stdin>")
    else:
        labels = pipeline.predict_file(manifest, model, Path(args.csv))
    if args.json:
        print(json.dumps({"predictions": labels}))
    else:
        print("\n".join(map(str, labels)))
    return 0


@dataclasses.dataclass(frozen=True)
class _Run:
    """Up-to-date artifacts and the Python that made them."""

    metrics: dict[str, Any]
    lineage: dict[str, Any]
    python: str


def _current_run(config: pipeline.Config) -> _Run:
    """The run that the gate and diff judge; stale or missing artifacts are an error."""
    from mlci import pipeline
    from mlci._io import read_json

    status = pipeline.stage_status(config)
    if not status.up_to_date or status.lineage is None:
        raise MlciError(
            "the artifacts are not up to date (" + "; ".join(status.reasons) + "); run 'mlci train'"
        )
    metrics = read_json(pipeline.Artifacts.of(config).metrics, "metrics")
    python = pipeline.minor_of(status.lineage.get("python", ""))
    return _Run(metrics, status.lineage, python)


def _reference(config: pipeline.Config, run: _Run) -> pipeline.Reference:
    """The gate's reference, shared by `mlci gate` and `mlci diff`."""
    from mlci.delivery import gate_reference

    return gate_reference(config, run.python, run.lineage.get("data", {}))


def cmd_gate(args: argparse.Namespace) -> int:
    """Pass or fail the trained model: floors, and the largest drop against its reference."""
    from mlci import pipeline

    config = config_of(args)
    run = _current_run(config)
    reference = _reference(config, run)
    verdict = pipeline.judge(config, run.metrics, reference)
    section = pipeline.gate_section(verdict, reference)
    result = {**pipeline.verdict_to_dict(verdict), "note": reference.note}
    atomic_write_json(config.artifacts / pipeline.GATE_RESULTS, result)
    publish(config, "gate", section.markdown())
    _track_gate(config, section.markdown(), verdict.passed, verdict.reference)
    if args.json:
        print(json.dumps(pipeline.verdict_to_dict(verdict), indent=2))
    else:
        print(section.text())
    return 0 if verdict.passed else 1


def _track_gate(
    config: pipeline.Config, markdown: str, passed: bool, reference: str | None
) -> None:
    """Add the verdict to the candidate's MLflow run, when it was tracked."""
    from mlci import tracking

    tags = {"mlci.gate": "passed" if passed else "failed"}
    tags["mlci.gate_reference"] = reference or "the floors only"
    tracking.record_result(config, "gate", markdown, tags=tags)


def cmd_diff(args: argparse.Namespace) -> int:
    """Metrics and params of the current artifacts against the gate's reference."""
    from mlci import pipeline

    config = config_of(args)
    run = _current_run(config)
    reference = _reference(config, run)
    found = pipeline.changes(run.metrics, run.lineage.get("config", {}), reference)
    section = pipeline.diff_section(found, reference, everything=args.all)
    if args.json:
        print(
            json.dumps(
                [dataclasses.asdict(c) for c in pipeline.shown(found, reference, args.all)],
                indent=2,
            )
        )
    elif args.md:
        publish(config, "diff", section.markdown())
        print(section.markdown())
    else:
        print(section.text())
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Run the behavioural checks against the trained model; exit 1 when one fails."""
    from mlci import pipeline

    config = config_of(args)
    run = _current_run(config)  # stale or missing artifacts are an error, as for the gate
    path = pipeline.checks_path(config)
    checks = pipeline.load_checks(path, pipeline.load_manifest(config.manifest))
    model = pipeline.load_trained(config)
    outcomes = pipeline.run_checks(
        config,
        model,
        checks,
        retrain=not args.no_retrain,
        data_sha256=run.lineage["data"]["sha256"],
    )
    pipeline.save_checks(config, outcomes)
    source = config.relative(path) if checks.path else f"no {config.relative(path)}"
    section = pipeline.checks_section(outcomes, source)
    publish(config, "checks", section.markdown())
    if args.json:
        print(json.dumps([dataclasses.asdict(o) for o in outcomes], indent=2))
    else:
        print(section.text())
    return 0 if all(o.passed for o in outcomes) else 1


def cmd_baseline_update(args: argparse.Namespace) -> int:
    """Retrain from scratch on this Python and record it in the baseline file."""
    from mlci import pipeline

    config = config_of(args)
    fresh = pipeline.update_baseline(config)
    print(
        f"{config.relative(config.baseline)}: recorded Python {pipeline.python_minor()} "
        f"({pipeline.headline_text(fresh['metrics'], ', ')}, model {fresh['model_sha256'][:12]}…)"
    )
    return 0


def cmd_baseline_check(args: argparse.Namespace) -> int:
    """Retrain from scratch and confirm this Python's baseline is reproduced exactly."""
    from mlci import pipeline

    config = config_of(args)
    problems = pipeline.check_baseline(config)
    python = pipeline.python_minor()
    if problems:
        print(f"Python {python} does not reproduce the baseline:", file=sys.stderr)
        print("\n".join(f"  {problem}" for problem in problems), file=sys.stderr)
        return 1
    print(f"Python {python} reproduces {config.relative(config.baseline)}")
    return 0


def register(commands: Any) -> None:
    """Add the pipeline's subcommands."""
    data = commands.add_parser("data", help="validate data against its manifest, record changes")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    validate = add(data_commands, "validate", cmd_data_validate)
    validate.add_argument("csv", nargs="?", help="CSV or Parquet file (default: [tool.mlci] data)")
    validate.add_argument("--manifest", help="manifest file (default: [tool.mlci] manifest)")
    validate.add_argument(
        "--schema-only", action="store_true", help="skip the hash check (new batches)"
    )
    accept = add(data_commands, "accept", cmd_data_accept)
    accept.add_argument("csv", nargs="?", help="CSV or Parquet file (default: the manifest's file)")
    accept.add_argument("--manifest", help="manifest file (default: [tool.mlci] manifest)")
    init = add(data_commands, "init", cmd_data_init)
    init.add_argument("csv", help="CSV or Parquet file to describe")
    init.add_argument("--target", required=True, help="the label column")
    init.add_argument("--manifest", help="where to write it (default: <csv stem>.manifest.json)")
    init.add_argument("--force", action="store_true", help="overwrite an existing manifest")

    train = add(commands, "train", cmd_train)
    train.add_argument("--force", action="store_true", help="retrain even when up to date")
    add(commands, "status", cmd_status)
    add(commands, "tune", cmd_tune)
    gate = add(commands, "gate", cmd_gate)
    gate.add_argument("--json", action="store_true", help="print the verdict as JSON")
    check = add(commands, "check", cmd_check)
    check.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    check.add_argument(
        "--no-retrain", action="store_true", help="skip the same-seed retraining check"
    )
    diff = add(commands, "diff", cmd_diff)
    diff_format = diff.add_mutually_exclusive_group()
    diff_format.add_argument("--md", action="store_true", help="Markdown, also added to the report")
    diff_format.add_argument("--json", action="store_true", help="JSON")
    diff.add_argument("--all", action="store_true", help="show unchanged values too")
    base = commands.add_parser("baseline", help="the committed per-Python baseline")
    base_commands = base.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    add(base_commands, "update", cmd_baseline_update)
    add(base_commands, "check", cmd_baseline_check)
    predict = add(commands, "predict", cmd_predict)
    predict.add_argument(
        "csv",
        nargs="?",
        help="CSV (in the data's dialect) or Parquet with the feature columns (default: stdin)",
    )
    predict.add_argument("--json", action="store_true", help='print {"predictions": [...]}')
    predict.add_argument(
        "--model", metavar="VERSION|ALIAS", help="a registry version (default: artifacts/)"
    )
