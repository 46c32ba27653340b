"""Commands that keep local == CI: parity, lint, lock, cached, and the coverage report section."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlci._report import REPORT, Section, step_summary, text_table
from mlci.cli._common import add, config_of, publish
from mlci.cli._reporting import cmd_report
from mlci.errors import MlciError


def cmd_parity(args: argparse.Namespace) -> int:
    """Check that CI runs what `make ci` runs; print `file:line: rule: message` per violation."""
    from mlci import ci

    config = config_of(args)
    violations = ci.check_parity(config.root, resolve=args.resolve)
    for violation in violations:
        print(violation)
    section = ci.parity_section(violations)
    publish(config, "parity", section.markdown())
    print(section.headline)
    return 1 if violations else 0


def cmd_lock(args: argparse.Namespace) -> int:
    """Regenerate the hash-pinned universal lock files with uv."""
    from mlci import ci

    root = Path(args.project).resolve()
    locks = ci.project_locks(root)
    if args.outdated:
        return _outdated(root, locks)
    ci.compile_all(root, locks, upgrade=args.upgrade, find_links=args.find_links)
    for lock in locks:
        print(f"{lock.path}: {len(ci.pins(root / lock.path))} packages")
    return 0


def _outdated(root: Path, locks: list[Any]) -> int:
    """Report, without writing a lock, the pins that have newer allowed versions."""
    from mlci import ci

    moves = ci.resolve_differences(root, locks, upgrade=True)
    rows = [
        [path, change]
        for path, described in sorted(moves.items())
        for change in described.split("; ")
    ]
    lines = (
        ("Newer versions that `pyproject.toml` allows; `nox -s lock -- --upgrade` takes them.",)
        if rows
        else ()
    )
    section = Section(
        f"Outdated locks: {len(rows)} pin{'s' if len(rows) != 1 else ''} behind"
        if rows
        else "Outdated locks: none",
        lines,
        ("lock", "package: locked -> newest allowed"),
        tuple(map(tuple, rows)),
        empty="Every pin is the newest version `pyproject.toml` allows.",
    )
    step_summary(section.markdown())
    print(section.text())
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    """Run ruff, zizmor (offline), check-jsonschema and import-linter; fail on any finding."""
    from mlci import ci

    config = config_of(args)
    findings = ci.run_linters(config.root)
    section = ci.lint_section(findings)
    publish(config, "lint", section.markdown())
    print(text_table(section.header, section.rows))
    return 1 if any(f.count for f in findings) else 0


def cmd_report_coverage(args: argparse.Namespace) -> int:
    """Add the total and per-file coverage (from `coverage json`) to the report."""
    from mlci import ci

    config = config_of(args)
    section, total, files = ci.coverage_section(Path(args.json_file))
    publish(config, "coverage", section.markdown())
    report = config.relative(config.artifacts / REPORT)
    print(f"coverage {total:.1f}% over {files} files, added to {report}")
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    """Combine the Pythons' coverage data, write XML/HTML/JSON, report; exit 2 under the floor."""
    from mlci import ci

    config = config_of(args)
    code = ci.combine_and_report(config.root, config.artifacts, args.data)
    section, total, files = ci.coverage_section(config.artifacts / ci.COVERAGE_JSON)
    publish(config, "coverage", section.markdown())
    report = config.relative(config.artifacts / REPORT)
    print(f"coverage {total:.1f}% over {files} files, added to {report}")
    return code


def _cached_options() -> argparse.ArgumentParser:
    """The options of `mlci cached` that stand between its NAME and the `--`."""
    parser = argparse.ArgumentParser(prog="mlci cached NAME", add_help=False)
    parser.add_argument("--output", action="append", default=[])
    parser.add_argument("--env", action="append", default=[])
    return parser


def cmd_cached(args: argparse.Namespace) -> int:
    """Run a command unless it already passed on exactly these inputs (MLCI_NO_CACHE=1: always)."""
    from mlci import ci

    # argparse hands over everything after NAME (REMAINDER): the options up to `--` are ours,
    # what follows is the wrapped command, never parsed by mlci. When `--` directly follows NAME,
    # argparse has already dropped it.
    rest: list[str] = args.rest
    if "--" in rest:
        split = rest.index("--")
        ours, command = rest[:split], rest[split + 1 :]
    elif rest and not rest[0].startswith("-"):
        ours, command = [], rest
    else:
        ours, command = rest, []
    if not command:
        raise MlciError("cached: give the command after '--', e.g. mlci cached tests -- pytest")
    try:
        options = _cached_options().parse_args(ours)
    except SystemExit:
        raise MlciError(f"cached: unknown options {' '.join(ours)}") from None
    from mlci.pipeline import load_config

    config = load_config(Path(args.project))  # only where the project and its artifacts are
    outcome = ci.run_cached(
        config.root,
        config.artifacts,
        args.name,
        command,
        outputs=[Path(path) for path in options.output],
        env=options.env,
    )
    if not outcome.ran:
        print(
            f"mlci: {args.name}: up to date, it passed on exactly these inputs "
            f"(set {ci.NO_CACHE}=1 to run it anyway)"
        )
    return outcome.returncode


def register(commands: Any) -> None:
    """Add the CI subcommands."""
    parity = add(commands, "parity", cmd_parity)
    parity.add_argument(
        "--resolve",
        action="store_true",
        help="also re-resolve every lock with uv (needs the index)",
    )
    lock = add(commands, "lock", cmd_lock)
    lock.add_argument("--upgrade", action="store_true", help="move every pin to the newest allowed")
    lock.add_argument(
        "--find-links",
        metavar="DIR",
        help="also look for packages in DIR (mlci's wheel before it is on the index)",
    )
    lock.add_argument(
        "--outdated",
        action="store_true",
        help="only report the pins with newer allowed versions (writes no lock)",
    )
    add(commands, "lint", cmd_lint)
    coverage = add(commands, "coverage", cmd_coverage)
    coverage.add_argument("data", nargs="*", metavar="DATA", help="the .coverage.<python> files")
    report = add(commands, "report", cmd_report)
    report.add_argument("--open", action="store_true", help="open it in a browser")
    report_commands = report.add_subparsers(
        dest="report_command", metavar="SECTION", help="add one section to artifacts/report.md"
    )
    coverage = add(report_commands, "coverage", cmd_report_coverage)
    coverage.add_argument(
        "json_file", metavar="COVERAGE_JSON", help="the output of `coverage json`"
    )
    cache = add(commands, "cached", cmd_cached)
    cache.usage = "mlci cached NAME [--output PATH]... [--env VAR]... -- COMMAND [ARG...]"
    cache.add_argument("name", help="a name for the record, e.g. test-3.11")
    cache.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="[--output PATH]... [--env VAR]... -- COMMAND",
        help="files the command writes and variables it reads (repeatable), then the command",
    )
