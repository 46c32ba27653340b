"""The ``mlci`` command: one subcommand per pipeline stage, each a thin call into its module."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

from mlci import __version__
from mlci.config import Config, load_config
from mlci.errors import MlciError


def _config(args: argparse.Namespace) -> Config:
    return load_config(Path(args.project))


def cmd_data_validate(args: argparse.Namespace) -> int:
    """Check a CSV against the manifest and print every problem."""
    from mlci.data import format_problems, load_manifest, validate

    config = _config(args)
    manifest = load_manifest(Path(args.manifest) if args.manifest else config.manifest)
    path = Path(args.csv) if args.csv else config.data
    display = args.csv or config.relative(config.data)
    report = validate(path, manifest, check_hash=not args.schema_only, display=display)
    if not report.ok:
        print(format_problems(report), file=sys.stderr)
        return 2
    print(f"{display}: OK, {report.rows} rows match {config.relative(manifest.path)}")
    return 0


def cmd_data_accept(args: argparse.Namespace) -> int:
    """Record a deliberately changed data file (hash and rows) in the manifest."""
    from mlci.data import accept, load_manifest

    config = _config(args)
    manifest = load_manifest(Path(args.manifest) if args.manifest else config.manifest)
    updated = accept(manifest, Path(args.csv) if args.csv else None)
    print(
        f"{config.relative(updated.path)}: recorded {updated.file} "
        f"({updated.rows} rows, sha256 {updated.sha256[:12]}…)"
    )
    return 0


def cmd_data_init(args: argparse.Namespace) -> int:
    """Draft a manifest for a new CSV: review its ranges and labels, then commit it."""
    from mlci.data import infer_manifest

    csv_path = Path(args.csv)
    manifest_path = (
        Path(args.manifest)
        if args.manifest
        else csv_path.with_name(f"{csv_path.stem}.manifest.json")
    )
    if manifest_path.exists() and not args.force:
        raise MlciError(f"{manifest_path}: already exists; pass --force to overwrite it")
    manifest = infer_manifest(csv_path, args.target, manifest_path)
    manifest.save()
    print(
        f"{manifest_path}: wrote a manifest for {manifest.rows} rows; review its ranges and labels"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Validate the data, then train unless the artifacts are up to date."""
    from mlci.evaluate import SUMMARY_HEADER, summary_rows
    from mlci.report import markdown_table, publish
    from mlci.train import train

    config = _config(args)
    result = train(config, force=args.force)
    folder = config.relative(result.artifacts.folder)
    if result.up_to_date:
        print(f"up to date: {folder}/ was trained from the current inputs (use --force to retrain)")
    else:
        print(f"trained {config.estimator.class_path} on {result.lineage['data']['rows']} rows")
    metrics = result.metrics
    print(
        f"  accuracy {metrics['accuracy']:.4f}   macro_f1 {metrics['macro_f1']:.4f}   "
        f"train {metrics['train_size']} / test {metrics['test_size']} rows"
    )
    print(f"  model    {config.relative(result.artifacts.model)}")
    print(f"  metrics  {config.relative(result.artifacts.metrics)}")
    print(f"  lineage  {config.relative(result.artifacts.lineage)}")
    verb = "up to date" if result.up_to_date else "trained"
    markdown = (
        f"## Training: {verb}\n\n{config.estimator.class_path} on "
        f"{result.lineage['data']['rows']} rows of `{result.lineage['data']['path']}`, "
        f"{metrics['train_size']} train / {metrics['test_size']} held out, "
        f"{result.lineage['python']}\n\n" + markdown_table(SUMMARY_HEADER, summary_rows(metrics))
    )
    publish(config.artifacts, "train", markdown)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Say whether the artifacts are up to date; exit 1 when they are stale."""
    from mlci import stage

    config = _config(args)
    status = stage.check(config)
    if status.up_to_date:
        print(f"up to date (stage key {status.key[:12]}…)")
        return 0
    print("stale: " + "; ".join(status.reasons))
    return 1


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict labels for rows from a CSV file or stdin with the verified model."""
    from mlci.data import open_csv
    from mlci.predict import load_trained, predict_rows

    config = _config(args)
    if args.model:
        registry = _registry(config)
        model = registry.load_model(registry.get(args.model), config.skops_trusted)
    else:
        model = load_trained(config)
    if args.csv in (None, "-"):
        labels = predict_rows(config, model, sys.stdin, "<stdin>")
    else:
        with open_csv(Path(args.csv)) as stream:
            labels = predict_rows(config, model, stream, args.csv)
    if args.json:
        print(json.dumps({"predictions": labels}))
    else:
        print("\n".join(labels))
    return 0


@dataclasses.dataclass(frozen=True)
class _Run:
    """Up-to-date artifacts and the baseline entry of the Python that made them."""

    metrics: dict[str, Any]
    lineage: dict[str, Any]
    python: str
    reference: dict[str, Any] | None


def _current_run(config: Config) -> _Run:
    """The run that the gate and diff judge; stale or missing artifacts are an error."""
    from mlci import baseline, stage
    from mlci.files import read_json

    status = stage.check(config)
    if not status.up_to_date or status.lineage is None:
        raise MlciError(
            "the artifacts are not up to date (" + "; ".join(status.reasons) + "); run 'mlci train'"
        )
    metrics = read_json(stage.Artifacts.of(config).metrics, "metrics")
    python = baseline.minor_of(status.lineage.get("python", ""))
    return _Run(metrics, status.lineage, python, baseline.entry(config, python))


def cmd_gate(args: argparse.Namespace) -> int:
    """Pass or fail the trained model: floors, and the largest drop against production."""
    from mlci import gate
    from mlci.report import markdown_table, publish, text_table

    config = _config(args)
    run = _current_run(config)
    verdict, reference = gate.judge(config, run.metrics, run.python)
    notes = [reference.note] if reference.note else []
    for check in verdict.failures:
        notes.append(f"FAILED: {check.describe()}")
    if verdict.passed and verdict.improved:
        notes.append(
            f"better than the {verdict.reference} on {', '.join(verdict.improved)}: "
            "release it ('nox -s release'), or record it as the baseline ('nox -s baseline')"
        )
    result = "passed" if verdict.passed else "FAILED"
    title = f"quality gate {result} (reference: {verdict.reference or 'none'})"
    publish(
        config.artifacts,
        "gate",
        f"## Quality gate: {result}\n\nReference: {verdict.reference or 'none'}\n\n"
        + markdown_table(gate.HEADER, gate.rows(verdict))
        + "".join(f"\n\n{note}" for note in notes),
    )
    if args.json:
        print(json.dumps(gate.to_dict(verdict), indent=2))
    else:
        print(title)
        print(text_table(gate.HEADER, gate.rows(verdict)))
        for note in notes:
            print(note)
    return 0 if verdict.passed else 1


def cmd_diff(args: argparse.Namespace) -> int:
    """Metrics and params of the current artifacts against the committed baseline."""
    from mlci import diff
    from mlci.report import markdown_table, publish, text_table

    config = _config(args)
    run = _current_run(config)
    python, reference = run.python, run.reference or {}
    found = diff.changes(run.metrics, run.lineage.get("config", {}), reference)
    table = diff.rows(found, everything=args.all)
    heading = f"Changes against the baseline for Python {python}"
    if not reference:
        heading = f"No baseline for Python {python}: every value is new"
    if args.json:
        print(json.dumps([dataclasses.asdict(c) for c in found if args.all or c.changed], indent=2))
    elif args.md:
        markdown = f"## {heading}\n\n" + (
            markdown_table(diff.HEADER, table) if table else "No changes."
        )
        publish(config.artifacts, "diff", markdown)
        print(markdown)
    else:
        print(heading + ":")
        print(text_table(diff.HEADER, table) if table else "no changes")
    return 0


def cmd_baseline_update(args: argparse.Namespace) -> int:
    """Retrain from scratch on this Python and record it in the baseline file."""
    from mlci import baseline

    config = _config(args)
    fresh = baseline.update(config)
    print(
        f"{config.relative(config.baseline)}: recorded Python {baseline.python_minor()} "
        f"(accuracy {fresh['metrics']['accuracy']:.4f}, model {fresh['model_sha256'][:12]}…)"
    )
    return 0


def cmd_baseline_check(args: argparse.Namespace) -> int:
    """Retrain from scratch and confirm this Python's baseline is reproduced exactly."""
    from mlci import baseline

    config = _config(args)
    problems = baseline.check(config)
    if problems:
        print(f"Python {baseline.python_minor()} does not reproduce the baseline:", file=sys.stderr)
        print("\n".join(f"  {problem}" for problem in problems), file=sys.stderr)
        return 1
    print(f"Python {baseline.python_minor()} reproduces {config.relative(config.baseline)}")
    return 0


def cmd_parity(args: argparse.Namespace) -> int:
    """Check that CI runs what `make ci` runs; print `file:line: rule: message` per violation."""
    from mlci import parity
    from mlci.report import markdown_table, publish

    config = _config(args)
    violations = parity.check(config.root, resolve=args.resolve)
    for violation in violations:
        print(violation)
    verdict = "passed" if not violations else f"{len(violations)} violation(s)"
    markdown = f"## Parity: {verdict}\n\n" + markdown_table(
        ["rule", "checks that", "result"], parity.summary_rows(violations)
    )
    publish(config.artifacts, "parity", markdown)
    print(f"parity: {len(parity.RULES)} rules checked, {verdict}")
    return 1 if violations else 0


def cmd_lock(args: argparse.Namespace) -> int:
    """Regenerate the hash-pinned universal lock files with uv."""
    from mlci import locks
    from mlci.parity import Repo

    repo = Repo.read(Path(args.project).resolve())
    locks.compile_all(repo.root, repo.locks, upgrade=args.upgrade)
    for lock in repo.locks:
        print(f"{lock.path}: {len(locks.pins(repo.root / lock.path))} packages")
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    """Run ruff, zizmor (offline) and check-jsonschema; fail on any finding."""
    from mlci import lint
    from mlci.report import markdown_table, publish, text_table

    config = _config(args)
    findings = lint.run_all(config.root)
    rows = [[f.tool, f.what, str(f.count)] for f in findings]
    total = sum(f.count for f in findings)
    verdict = "clean" if not total else f"{total} finding(s)"
    publish(
        config.artifacts,
        "lint",
        f"## Lint: {verdict}\n\n" + markdown_table(["tool", "checks", "findings"], rows),
    )
    print(text_table(["tool", "checks", "findings"], rows))
    return 1 if total else 0


def cmd_report_coverage(args: argparse.Namespace) -> int:
    """Add the total and per-file coverage (from `coverage json`) to the report."""
    from mlci.files import read_json
    from mlci.report import markdown_table, publish

    config = _config(args)
    path = Path(args.json_file)
    data = read_json(path, "coverage JSON")
    try:
        total = data["totals"]["percent_covered"]
        files = {name: info["summary"]["percent_covered"] for name, info in data["files"].items()}
    except (KeyError, TypeError):
        raise MlciError(f"{path}: not a `coverage json` report (no totals or files)") from None
    rows = [[f"`{name}`", f"{percent:.1f}%"] for name, percent in sorted(files.items())]
    rows.append(["**total**", f"**{total:.1f}%**"])
    publish(
        config.artifacts,
        "coverage",
        f"## Coverage: {total:.1f}%\n\n" + markdown_table(["file", "covered"], rows),
    )
    report = config.relative(config.artifacts / "report.md")
    print(f"coverage {total:.1f}% over {len(files)} files, added to {report}")
    return 0


def _registry(config: Config) -> Any:
    from mlci.registry import Registry

    return Registry.of(config)


def _version_rows(versions: list[Any], aliases: dict[int, list[str]]) -> list[list[str]]:
    return [
        [
            str(v.number),
            ", ".join(aliases.get(v.number, [])) or "-",
            f"{v.metrics.get('accuracy', 0):.4f}",
            f"{v.metrics.get('macro_f1', 0):.4f}",
            v.python,
            v.created_at,
            v.stage_key[:12],
        ]
        for v in versions
    ]


VERSION_HEADER = ["version", "aliases", "accuracy", "macro_f1", "python", "created", "stage key"]


def cmd_registry_register(args: argparse.Namespace) -> int:
    """Copy the up-to-date artifacts into a new registry version (same inputs: same version)."""
    config = _config(args)
    registered = _registry(config).register(config)
    number = registered.version.number
    if registered.created:
        print(f"registered version {number} in {config.relative(config.registry)}")
    else:
        print(f"unchanged: these artifacts are already version {number}")
    return 0


def cmd_registry_list(args: argparse.Namespace) -> int:
    """List every version with its aliases and headline metrics."""
    from mlci.report import text_table

    config = _config(args)
    index = _registry(config).read()
    aliases: dict[int, list[str]] = {}
    for name, number in sorted(index.aliases.items()):
        aliases.setdefault(number, []).append(name)
    versions = [index.versions[n] for n in sorted(index.versions)]
    if args.json:
        print(json.dumps(index.to_dict()["versions"], indent=2))
        return 0
    if not versions:
        print(f"{config.relative(config.registry)}: no versions yet; run 'mlci registry register'")
        return 0
    print(text_table(VERSION_HEADER, _version_rows(versions, aliases)))
    return 0


def cmd_registry_show(args: argparse.Namespace) -> int:
    """Show one version (by number or alias): metrics, lineage, files and their hashes."""
    config = _config(args)
    registry = _registry(config)
    index = registry.read()
    version = registry.get(args.version, index)
    aliases = sorted(a for a, n in index.aliases.items() if n == version.number)
    if args.json:
        print(json.dumps({**version.to_dict(), "aliases": aliases}, indent=2))
        return 0
    print(f"version {version.number}" + (f" ({', '.join(aliases)})" if aliases else ""))
    print(f"  created     {version.created_at} by {version.created_by}")
    print(f"  python      {version.python}")
    print(f"  stage key   {version.stage_key}")
    print(f"  data        sha256 {version.data_sha256}")
    for name, value in sorted(version.metrics.items()):
        print(f"  {name:<11} {value:.4f}")
    print(f"  folder      {registry.folder(version.number)}")
    for name, sha in sorted(version.files.items()):
        print(f"    {name:<20} {sha}")
    problems = registry.verify(version)
    print("  verified    " + ("yes" if not problems else "NO: " + "; ".join(problems)))
    return 0 if not problems else 1


def _print_move(move: Any) -> None:
    before = "nothing" if move.from_version is None else f"version {move.from_version}"
    print(f"{move.alias}: {before} -> version {move.to_version} ({move.action})")


def cmd_registry_promote(args: argparse.Namespace) -> int:
    """Point an alias (staging, production, any name) at a version."""
    config = _config(args)
    _print_move(_registry(config).promote(args.version, args.to, args.reason))
    return 0


def cmd_registry_rollback(args: argparse.Namespace) -> int:
    """Move an alias back to its previous target; the move is recorded in the history."""
    config = _config(args)
    _print_move(_registry(config).rollback(args.alias, args.reason))
    return 0


def cmd_registry_history(args: argparse.Namespace) -> int:
    """Every move of an alias (or of all aliases): time, user, from, to, reason."""
    from mlci.report import text_table

    config = _config(args)
    moves = _registry(config).history(args.alias)
    if args.json:
        print(json.dumps([move.to_dict() for move in moves], indent=2))
        return 0
    rows = [
        [
            m.time,
            m.user,
            m.alias,
            m.action,
            "-" if m.from_version is None else str(m.from_version),
            str(m.to_version),
            m.reason or "-",
        ]
        for m in moves
    ]
    header = ["time", "user", "alias", "action", "from", "to", "reason"]
    print(text_table(header, rows) if rows else "no alias moves yet")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    """Validate, train, gate against production, register, stage, smoke-test, promote."""
    from mlci import release
    from mlci.report import markdown_table, publish, text_table

    config = _config(args)
    result = release.release(config, if_needed=args.if_needed)
    before = result.production_before
    production = "none" if before is None else f"version {before}"
    if result.skipped:
        headline = f"nothing to release: {result.skipped} (production: {production})"
    elif result.unchanged:
        headline = f"unchanged: version {result.version} is already production"
    elif result.passed:
        headline = f"released version {result.version} to production (was {production})"
    else:
        failed = next(step for step in result.steps if not step.passed)
        headline = f"release stopped at '{failed.name}': production stays at {production}"
    header = ["step", "result", "detail"]
    table = release.rows(result)
    publish(
        config.artifacts,
        "release",
        f"## Release: {headline}\n\n" + (markdown_table(header, table) if table else ""),
    )
    if table:
        print(text_table(header, table))
    print(headline)
    return 0 if result.passed else 1


def cmd_drift(args: argparse.Namespace) -> int:
    """Compare new batches with the production model's training data; exit 1 on dataset drift."""
    from mlci import drift
    from mlci.files import atomic_write_json
    from mlci.report import markdown_table, publish, text_table

    config = _config(args)
    batches = [Path(p) for p in args.csv] or drift.incoming(config)
    if not batches:
        print(f"no batches given and none in {config.drift.incoming}/: nothing to compare")
        return 0
    reports = drift.check(config, batches)
    output = Path(args.output) if args.output else config.artifacts / "drift.json"
    atomic_write_json(output, {"batches": [report.to_dict() for report in reports]})
    sections = []
    for report in reports:
        verdict = "DRIFT" if report.drifted else "no drift"
        summary = (
            f"{report.batch}: {verdict}: {len(report.drifted_columns)} of {len(report.columns)} "
            f"columns drifted (share {report.share:.2f}, threshold {report.share_threshold:g}); "
            f"{report.batch_rows} rows against {report.reference_rows} of the {report.reference}"
        )
        print(text_table(drift.HEADER, drift.rows(report)))
        print(summary + "\n")
        sections.append(f"### {summary}\n\n" + markdown_table(drift.HEADER, drift.rows(report)))
    drifted = [report.batch for report in reports if report.drifted]
    title = f"drift in {', '.join(drifted)}" if drifted else "no drift"
    publish(config.artifacts, "drift", f"## Drift: {title}\n\n" + "\n\n".join(sections))
    print(f"{title}; report written to {config.relative(output.resolve())}")
    return 1 if drifted else 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the model an alias points at (MLflow's scoring protocol), reloading when it moves."""
    try:
        from mlci.serve import serve
    except ImportError as exc:
        raise MlciError(
            f"mlci serve needs the serve extra ({exc}): pip install 'mlci[serve]'"
        ) from None
    serve(_config(args), alias=args.alias, host=args.host, port=args.port)
    return 0


def cmd_cached(args: argparse.Namespace) -> int:
    """Run a command unless it already passed on exactly these inputs (MLCI_NO_CACHE=1: always)."""
    from mlci import cached

    command = args.cmd
    if not command:
        raise MlciError("cached: give the command after '--', e.g. mlci cached tests -- pytest")
    config = _config(args)
    outcome = cached.run(
        config.root,
        config.artifacts,
        args.name,
        command,
        outputs=[Path(path) for path in args.output],
        env=args.env,
    )
    if not outcome.ran:
        print(
            f"mlci: {args.name}: up to date, it passed on exactly these inputs "
            f"(set {cached.NO_CACHE}=1 to run it anyway)"
        )
    return outcome.returncode


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand sets ``handler``."""
    parser = argparse.ArgumentParser(
        prog="mlci",
        description="Validate data, train, gate, check parity: the steps of the nox pipeline.",
    )
    parser.add_argument("--version", action="version", version=f"mlci {__version__}")
    parser.add_argument(
        "-C",
        "--project",
        default=".",
        metavar="DIR",
        help="project folder holding pyproject.toml (default: .)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = commands.add_parser("data", help="validate data against its manifest, record changes")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    validate = _add(data_commands, "validate", cmd_data_validate)
    validate.add_argument("csv", nargs="?", help="CSV file (default: [tool.mlci] data)")
    validate.add_argument("--manifest", help="manifest file (default: [tool.mlci] manifest)")
    validate.add_argument(
        "--schema-only", action="store_true", help="skip the hash check (new batches)"
    )
    accept = _add(data_commands, "accept", cmd_data_accept)
    accept.add_argument("csv", nargs="?", help="CSV file (default: the manifest's file)")
    accept.add_argument("--manifest", help="manifest file (default: [tool.mlci] manifest)")
    init = _add(data_commands, "init", cmd_data_init)
    init.add_argument("csv", help="CSV file to describe")
    init.add_argument("--target", required=True, help="the label column")
    init.add_argument("--manifest", help="where to write it (default: <csv stem>.manifest.json)")
    init.add_argument("--force", action="store_true", help="overwrite an existing manifest")

    train = _add(commands, "train", cmd_train)
    train.add_argument("--force", action="store_true", help="retrain even when up to date")
    _add(commands, "status", cmd_status)
    gate = _add(commands, "gate", cmd_gate)
    gate.add_argument("--json", action="store_true", help="print the verdict as JSON")
    diff = _add(commands, "diff", cmd_diff)
    diff_format = diff.add_mutually_exclusive_group()
    diff_format.add_argument("--md", action="store_true", help="Markdown, also added to the report")
    diff_format.add_argument("--json", action="store_true", help="JSON")
    diff.add_argument("--all", action="store_true", help="show unchanged values too")
    base = commands.add_parser("baseline", help="the committed per-Python baseline")
    base_commands = base.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    _add(base_commands, "update", cmd_baseline_update)
    _add(base_commands, "check", cmd_baseline_check)
    parity = _add(commands, "parity", cmd_parity)
    parity.add_argument(
        "--resolve",
        action="store_true",
        help="also re-resolve every lock with uv (needs the index)",
    )
    lock = _add(commands, "lock", cmd_lock)
    lock.add_argument("--upgrade", action="store_true", help="move every pin to the newest allowed")
    _add(commands, "lint", cmd_lint)
    report = commands.add_parser("report", help="add a section to artifacts/report.md")
    report_commands = report.add_subparsers(dest="report_command", metavar="SECTION", required=True)
    coverage = _add(report_commands, "coverage", cmd_report_coverage)
    coverage.add_argument(
        "json_file", metavar="COVERAGE_JSON", help="the output of `coverage json`"
    )
    registry = commands.add_parser("registry", help="model versions, aliases and their history")
    registry_commands = registry.add_subparsers(
        dest="registry_command", metavar="ACTION", required=True
    )
    _add(registry_commands, "register", cmd_registry_register)
    listing = _add(registry_commands, "list", cmd_registry_list)
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = _add(registry_commands, "show", cmd_registry_show)
    show.add_argument("version", help="a version number or an alias")
    show.add_argument("--json", action="store_true", help="print JSON")
    promote = _add(registry_commands, "promote", cmd_registry_promote)
    promote.add_argument("version", help="a version number or an alias")
    promote.add_argument("--to", required=True, metavar="ALIAS", help="e.g. staging, production")
    promote.add_argument("--reason", default="", help="why, for the history")
    rollback = _add(registry_commands, "rollback", cmd_registry_rollback)
    rollback.add_argument("alias", help="e.g. production")
    rollback.add_argument("--reason", default="", help="why, for the history")
    history = _add(registry_commands, "history", cmd_registry_history)
    history.add_argument("alias", nargs="?", help="one alias (default: all)")
    history.add_argument("--json", action="store_true", help="print JSON")
    release = _add(commands, "release", cmd_release)
    release.add_argument(
        "--if-needed",
        action="store_true",
        help="only when there is no production model, new training data, or drift",
    )
    drift = _add(commands, "drift", cmd_drift)
    drift.add_argument("csv", nargs="*", help="batches (default: [tool.mlci.drift] incoming/*.csv)")
    drift.add_argument("--output", help="JSON report (default: artifacts/drift.json)")
    serve = _add(commands, "serve", cmd_serve)
    serve.add_argument("--alias", help="the registry alias to serve (default: production)")
    serve.add_argument(
        "--host", help="address to bind (default: 127.0.0.1; others only when given here)"
    )
    serve.add_argument("--port", type=int, help="port (default: 8080)")
    cache = _add(commands, "cached", cmd_cached)
    cache.usage = "mlci cached NAME [--output PATH]... [--env VAR]... -- COMMAND [ARG...]"
    cache.add_argument("name", help="a name for the record, e.g. test-3.11")
    cache.add_argument(
        "--output", action="append", default=[], help="a file the command writes (repeatable)"
    )
    cache.add_argument(
        "--env", action="append", default=[], help="an environment variable it reads (repeatable)"
    )
    cache.set_defaults(cmd=[])  # main() passes what follows `--` untouched
    predict = _add(commands, "predict", cmd_predict)
    predict.add_argument("csv", nargs="?", help="CSV with the feature columns (default: stdin)")
    predict.add_argument("--json", action="store_true", help='print {"predictions": [...]}')
    predict.add_argument(
        "--model", metavar="VERSION|ALIAS", help="a registry version (default: artifacts/)"
    )
    return parser


def _add(
    commands: Any, name: str, handler: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    doc = (handler.__doc__ or "").strip()
    parser = commands.add_parser(name, help=doc, description=doc)
    parser.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print a message and exit non-zero, without a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "cached" in argv and "--" in argv:  # the wrapped command is not mlci's to parse
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    args = build_parser().parse_args(argv)
    if command:
        args.cmd = command
    try:
        return args.handler(args)
    except MlciError as error:
        print(f"mlci: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("mlci: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
