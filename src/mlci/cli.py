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
    metrics = read_json(stage.Artifacts(config.artifacts).metrics, "metrics")
    python = baseline.minor_of(status.lineage.get("python", ""))
    return _Run(metrics, status.lineage, python, baseline.entry(config, python))


def cmd_gate(args: argparse.Namespace) -> int:
    """Pass or fail the trained model: floors, and the largest drop against the baseline."""
    from mlci import gate
    from mlci.evaluate import scalar_metrics
    from mlci.report import markdown_table, publish, text_table

    config = _config(args)
    run = _current_run(config)
    python, reference = run.python, run.reference
    name = f"baseline for Python {python}" if reference else None
    verdict = gate.evaluate(
        scalar_metrics(run.metrics), reference["metrics"] if reference else None, config.gate, name
    )
    notes = []
    if reference is None:
        notes.append(
            f"no {config.relative(config.baseline)} entry for Python {python}: floors only; "
            "run 'nox -s baseline' and commit it to start guarding against regressions"
        )
    for check in verdict.failures:
        notes.append(f"FAILED: {check.describe()}")
    if verdict.passed and verdict.improved:
        notes.append(
            f"better than the baseline on {', '.join(verdict.improved)}: "
            "run 'mlci baseline update' (or 'nox -s baseline') and commit metrics/baseline.json"
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
    predict = _add(commands, "predict", cmd_predict)
    predict.add_argument("csv", nargs="?", help="CSV with the feature columns (default: stdin)")
    predict.add_argument("--json", action="store_true", help='print {"predictions": [...]}')
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
    args = build_parser().parse_args(argv)
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
