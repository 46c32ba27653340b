"""Commands of delivery: the registry, the release, drift."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci._io import atomic_write_json
from mlci._report import Section, text_table
from mlci.cli._common import add, config_of, publish
from mlci.errors import MlciError

VERSION_HEADER = ["version", "aliases", "accuracy", "macro_f1", "python", "created", "stage key"]
SHOWN_METRICS = {"classification": ("accuracy", "macro_f1"), "regression": ("r2", "rmse")}


def _shown_metrics(versions: list[delivery.Version]) -> tuple[str, ...]:
    """The two metrics the table shows: a regressor's registry shows R² and RMSE."""
    if any("r2" in v.metrics for v in versions) and not any(
        "accuracy" in v.metrics for v in versions
    ):
        return SHOWN_METRICS["regression"]
    return SHOWN_METRICS["classification"]


if TYPE_CHECKING:  # the concern is imported when a command runs, not to parse one
    from mlci import delivery
    from mlci.pipeline import Config, TrainResult


def _where(config: Config, registry: delivery.Registry) -> str:
    """The registry as the user wrote it: a folder relative to the project, or its URL."""
    root = registry.local_root
    return registry.location if root is None else config.relative(root)


EPHEMERAL = """### Registry: ephemeral

This job's registry is the folder `{where}` on the runner: it started empty and goes with the
job, so the gate had no production model to compare with, a rollback has no history, and the
uploaded artifact is its only copy. Keep it in object storage: set the repository variable
`MLCI_REGISTRY` to `s3://bucket/prefix` or `gs://bucket/prefix` (README, "Shared registry").
"""


def _note_if_ephemeral(config: Config, registry: delivery.Registry) -> None:
    """On a hosted runner a registry folder lives as long as the job: say so in the summary."""
    if os.environ.get("GITHUB_ACTIONS") == "true" and registry.local_root is not None:
        publish(config, "registry", EPHEMERAL.format(where=_where(config, registry)))


def _snapshot(config: Config, registry: delivery.Registry, index: delivery.Index) -> None:
    """The registry's versions and aliases as the report draws them (``registry.json``)."""
    from mlci import delivery

    path = config.artifacts / delivery.REGISTRY_SNAPSHOT
    atomic_write_json(path, delivery.snapshot(index, _where(config, registry)))


def _registry(args: argparse.Namespace) -> delivery.Registry:
    from mlci import delivery

    return delivery.Registry.of(config_of(args))


def _version_rows(
    versions: list[delivery.Version], aliases: dict[int, list[str]]
) -> list[list[str]]:
    shown = _shown_metrics(versions)
    return [
        [
            str(v.number),
            ", ".join(aliases.get(v.number, [])) or "-",
            *(f"{v.metrics[name]:.4f}" if name in v.metrics else "-" for name in shown),
            v.python,
            v.created_at,
            v.stage_key[:12],
        ]
        for v in versions
    ]


def cmd_registry_register(args: argparse.Namespace) -> int:
    """Copy the up-to-date artifacts into a new registry version (same inputs: same version)."""
    from mlci import delivery

    config = config_of(args)
    registry = delivery.Registry.of(config)
    registered = registry.register(config)
    _snapshot(config, registry, registry.read())
    number = registered.version.number
    if registered.created:
        print(f"registered version {number} in {_where(config, registry)}")
    else:
        print(f"unchanged: these artifacts are already version {number}")
    return 0


def cmd_registry_list(args: argparse.Namespace) -> int:
    """List every version with its aliases and headline metrics."""
    from mlci import delivery

    config = config_of(args)
    registry = delivery.Registry.of(config)
    index = registry.read()
    _snapshot(config, registry, index)
    aliases: dict[int, list[str]] = {}
    for name, number in sorted(index.aliases.items()):
        aliases.setdefault(number, []).append(name)
    versions = [index.versions[n] for n in sorted(index.versions)]
    if args.json:
        print(json.dumps(index.to_dict()["versions"], indent=2))
        return 0
    if not versions:
        print(f"{_where(config, registry)}: no versions yet; run 'mlci registry register'")
        return 0
    rows = _version_rows(versions, aliases)
    header = [*VERSION_HEADER[:2], *_shown_metrics(versions), *VERSION_HEADER[4:]]
    print(text_table(header, rows))
    section = Section(
        f"Registry: {len(versions)} version{'s' if len(versions) != 1 else ''}",
        (f"registry: {_where(config, registry)}",),
        tuple(header),
        tuple(map(tuple, rows)),
        blocks=tuple(filter(None, [delivery.history_chart(index)])),
    )
    publish(config, "history", section.markdown())
    if args.chart:
        from mlci import reporting

        metric = delivery.headline_metric(index)
        points = [
            (
                f"v{v.number}"
                + (f" ({', '.join(aliases[v.number])})" if v.number in aliases else ""),
                v.metrics.get(metric) if metric else None,
            )
            for v in versions
        ]
        print()
        print(reporting.text_chart(points, metric or "metric"))
    return 0


def cmd_registry_show(args: argparse.Namespace) -> int:
    """Show one version (by number or alias): its age, metrics, files and their hashes."""
    from mlci import delivery

    registry = _registry(args)
    index = registry.read()
    version = registry.get(args.version, index)
    aliases = sorted(a for a, n in index.aliases.items() if n == version.number)
    if args.json:
        print(json.dumps({**version.to_dict(), "aliases": aliases}, indent=2))
        return 0
    print(f"version {version.number}" + (f" ({', '.join(aliases)})" if aliases else ""))
    print(f"  created     {version.created_at} by {version.created_by}")
    trained = registry.trained_at(version)
    age = delivery.age_days(trained)
    print(f"  trained     {trained or '-'}" + ("" if age is None else f" ({age:.1f} days ago)"))
    print(f"  python      {version.python}")
    print(f"  stage key   {version.stage_key}")
    print(f"  data        sha256 {version.data_sha256}")
    for name, value in sorted(version.metrics.items()):
        print(f"  {name:<11} {value:.4f}")
    print(f"  location    {registry.describe(version)}")
    for name, sha in sorted(version.files.items()):
        print(f"    {name:<20} {sha}")
    problems = registry.verify(version)
    print("  verified    " + ("yes" if not problems else "NO: " + "; ".join(problems)))
    return 0 if not problems else 1


def _print_move(move: delivery.Move) -> None:
    before = "nothing" if move.from_version is None else f"version {move.from_version}"
    print(f"{move.alias}: {before} -> version {move.to_version} ({move.action})")
    if move.skipped:
        print(f"skipped deleted version(s) {', '.join(map(str, move.skipped))}")


def cmd_registry_promote(args: argparse.Namespace) -> int:
    """Point an alias (staging, production, any name) at a version."""
    from mlci import delivery

    config = config_of(args)
    registry = delivery.Registry.of(config)
    move = registry.promote(args.version, args.to, args.reason)
    if move is None:
        print(f"{args.to}: already version {registry.get(args.to).number}; nothing moved")
    else:
        _print_move(move)
    _snapshot(config, registry, registry.read())
    return 0


def cmd_registry_rollback(args: argparse.Namespace) -> int:
    """Move an alias back to its previous target; the move is recorded in the history."""
    from mlci import delivery

    config = config_of(args)
    registry = delivery.Registry.of(config)
    _note_if_ephemeral(config, registry)
    _print_move(registry.rollback(args.alias, args.reason))
    _snapshot(config, registry, registry.read())
    return 0


def cmd_registry_history(args: argparse.Namespace) -> int:
    """Every move of an alias (or of all aliases): time, user, from, to, reason."""
    index = _registry(args).read()
    moves = [m for m in index.history if args.alias in (None, m.alias)]
    if args.json:
        print(json.dumps([move.to_dict() for move in moves], indent=2))
        return 0

    def shown(number: int | None) -> str:
        if number is None:
            return "-"
        return f"{number} (deleted)" if number in index.deleted else str(number)

    rows = [
        [
            m.time,
            m.user,
            m.alias,
            m.action,
            shown(m.from_version),
            shown(m.to_version),
            m.reason or "-",
        ]
        for m in moves
    ]
    header = ["time", "user", "alias", "action", "from", "to", "reason"]
    print(text_table(header, rows) if rows else "no alias moves yet")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    """Validate, train, gate against production, register, stage, smoke-test, promote."""
    from mlci import delivery

    config = config_of(args)
    registry = delivery.Registry.of(config)  # once: opening may probe MLflow or start S3
    _note_if_ephemeral(config, registry)
    result = delivery.release(
        config,
        if_needed=args.if_needed,
        after_training=lambda run: _track_run(config, run),
        registry=registry,
    )
    section = delivery.release_section(result)
    index = registry.read()
    _snapshot(config, registry, index)
    chart = delivery.history_chart(index)
    if chart:
        section = dataclasses.replace(section, blocks=(*section.blocks, chart))
    publish(config, "release", section.markdown())
    _track_release(config, result, section.markdown())
    if section.rows:  # the steps first, the headline last, as its conclusion
        print(text_table(section.header, section.rows))
    print(section.headline)
    return 0 if result.passed else 1


def _track_run(config: Config, trained: TrainResult) -> None:
    """Log the release's training run to MLflow (when it trained), before it is registered."""
    from mlci import tracking

    logged = tracking.record_training(config, trained)
    if logged is not None:
        print(f"mlflow: run {logged.run_id} on {logged.tracking_uri}")


def _track_release(config: Config, result: delivery.Release, markdown: str) -> None:
    """Add the release's steps to its training run in MLflow, when that run was tracked."""
    from mlci import tracking

    if result.trained is None:
        return
    tags = {"mlci.release": "passed" if result.passed else "stopped"}
    if result.version is not None:
        tags["mlci.registry_version"] = str(result.version)
    tracking.record_result(config, "release", markdown, tags=tags)


def cmd_export(args: argparse.Namespace) -> int:
    """Write a registry version as an MLflow model directory (`mlflow models serve -m DIR`)."""
    from mlci import delivery, tracking

    config = config_of(args)
    registry = delivery.Registry.of(config)
    version = registry.get(args.version)
    model = registry.load_model(version, config.skops_trusted, model_format=config.model_format)
    directory = Path(args.directory)
    tracking.export(
        model,
        registry.manifest(version),
        registry.lineage(version),
        directory,
        model_format=version.model_file.rsplit(".", 1)[-1],
        trusted=config.skops_trusted,
    )
    print(f"exported version {version.number} to {directory}/ (MLflow model: MLmodel, model)")
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    """Compare new batches with the production model's training data; exit 1 on dataset drift."""
    from mlci import delivery

    config = config_of(args)
    if args.serving_log:
        reports = _serving_drift(config, Path(args.serving_log), args.csv)
    else:
        batches = [Path(p) for p in args.csv] or delivery.incoming(config)
        if not batches:
            folder = delivery.drift_settings(config).incoming
            print(f"no batches given and none in {folder}/: nothing to compare")
            return 0
        reports = delivery.check_drift(config, batches)
    output = Path(args.output) if args.output else config.artifacts / delivery.DRIFT_RESULTS
    atomic_write_json(output, {"batches": [report.to_dict() for report in reports]})
    section = delivery.drift_section(reports)
    publish(config, "drift", section.markdown())
    _track_drift(config, reports, section.markdown())
    print(f"{section.headline}; report written to {config.relative(output.resolve())}")
    return 1 if any(report.drifted for report in reports) else 0


def _serving_drift(config: Config, log: Path, csv: list[str]) -> list[delivery.DriftReport]:
    """Training/serving skew: the rows the server logged, against production's training data."""
    import tempfile

    from mlci import delivery
    from mlci.serving import serving_batch

    if csv:
        raise MlciError("give either CSV batches or --serving-log, not both")
    if not log.is_file():
        raise MlciError(
            f"{log}: no serving log; set [tool.mlci.serve] sample_log and let the server score"
        )
    with tempfile.TemporaryDirectory(prefix="mlci-serving-log-") as work:
        reports = delivery.check_drift(config, [serving_batch(log.resolve(), Path(work))])
    return [dataclasses.replace(report, batch=f"serving log {log}") for report in reports]


def _track_drift(config: Config, reports: list[delivery.DriftReport], markdown: str) -> None:
    """Add the drift verdict to production's training run, when that run was tracked."""
    from mlci import delivery, tracking

    if not tracking.tracking_settings(config).enabled:
        return
    registry = delivery.Registry.of(config)
    production = registry.alias(delivery.PRODUCTION)
    if production is None:
        return
    drifted = [report.batch for report in reports if report.drifted]
    tags = {"mlci.drift": ", ".join(drifted) if drifted else "none"}
    metrics = {"drift_share_max": max((report.share for report in reports), default=0.0)}
    lineage = registry.lineage(production)
    tracking.record_result(config, "drift", markdown, tags=tags, metrics=metrics, lineage=lineage)


def register(commands: Any) -> None:
    """Add the delivery subcommands."""
    registry = commands.add_parser("registry", help="model versions, aliases and their history")
    registry_commands = registry.add_subparsers(
        dest="registry_command", metavar="ACTION", required=True
    )
    add(registry_commands, "register", cmd_registry_register)
    listing = add(registry_commands, "list", cmd_registry_list)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument(
        "--chart", action="store_true", help="and the headline metric by version, as bars"
    )
    show = add(registry_commands, "show", cmd_registry_show)
    show.add_argument("version", help="a version number or an alias")
    show.add_argument("--json", action="store_true", help="print JSON")
    promote = add(registry_commands, "promote", cmd_registry_promote)
    promote.add_argument("version", help="a version number or an alias")
    promote.add_argument("--to", required=True, metavar="ALIAS", help="e.g. staging, production")
    promote.add_argument("--reason", default="", help="why, for the history")
    rollback = add(registry_commands, "rollback", cmd_registry_rollback)
    rollback.add_argument("alias", help="e.g. production")
    rollback.add_argument("--reason", default="", help="why, for the history")
    history = add(registry_commands, "history", cmd_registry_history)
    history.add_argument("alias", nargs="?", help="one alias (default: all)")
    history.add_argument("--json", action="store_true", help="print JSON")
    release = add(commands, "release", cmd_release)
    release.add_argument(
        "--if-needed",
        action="store_true",
        help="only when there is no production model, new training data, or drift",
    )
    export = commands.add_parser("export", help="a registry version in another tool's format")
    export_formats = export.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    mlflow = add(export_formats, "mlflow", cmd_export)
    mlflow.add_argument("version", help="a version number or an alias")
    mlflow.add_argument("directory", help="a new folder for the MLflow model")
    drift = add(commands, "drift", cmd_drift)
    drift.add_argument("csv", nargs="*", help="batches (default: [tool.mlci.drift] incoming/*.csv)")
    drift.add_argument("--output", help="JSON report (default: artifacts/drift.json)")
    drift.add_argument(
        "--serving-log",
        metavar="FILE",
        help="compare the rows `mlci serve` logged ([tool.mlci.serve] sample_log) instead",
    )
