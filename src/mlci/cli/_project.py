"""`mlci init` and `mlci update`: the project surface mlci owns."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from mlci.cli._common import add


def cmd_init(args: argparse.Namespace) -> int:
    """Write mlci's noxfile, Makefile, workflows, config and locks into a new or existing folder."""
    from mlci import __version__, project

    root = Path(args.directory)
    data = project.data_of(root, args.data, args.target)
    if args.dry_run:
        plan = project.plan_init(root, data)
        for line in plan.lines():
            print(line)
        if not args.no_lock:
            print("resolve requirements/*.txt with `mlci lock`")
        if plan.conflicts and not args.force:
            print(f"{len(plan.conflicts)} file(s) exist: `mlci init` refuses without --force")
        return 0
    started = time.perf_counter()
    plan = project.init(
        root, data, force=args.force, lock=not args.no_lock, find_links=args.find_links
    )
    written = len(plan.files)
    print(
        f"{root}: mlci {__version__} wrote {written} file(s) in "
        f"{time.perf_counter() - started:.1f} s" + ("" if args.no_lock else ", the locks resolved")
    )
    for path in plan.merged.kept:
        advice = ""
        if path.startswith("dependency-groups."):
            # The sessions install mlci through these groups: the project's own must name it.
            wanted = project.tables(data)["dependency-groups"]
            line = next(
                (line for line in wanted.splitlines() if line.startswith(path.split(".", 1)[1])),
                "",
            )
            advice = f"; mlci's sessions expect it to hold what `{line}` does"
        elif path == "tool.mlci" and args.data:
            advice = f"; point its data, manifest and target at {data.csv} yourself"
        print(f"pyproject.toml: kept your [{path}] as it is{advice}", file=sys.stderr)
    if args.data:
        from mlci import pipeline

        manifest = pipeline.load_manifest(root / data.manifest)
        print(f"{data.manifest}: drafted from {data.csv}; review it and {data.checks}")
        for line in pipeline.review_notes(manifest):
            print(f"  {line}")
    print("next: `make baseline` (the model on every Python), then `make ci`")
    if args.no_lock:
        print("the locks are not written yet: run `mlci lock` first")
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    """Re-render the files mlci owns at the installed version; an edited one gets a .mlci-new."""
    from mlci import __version__, project

    root = Path(args.project)
    result = project.update(root, check=args.check)
    verb = "would replace" if args.check else "replaced"
    for path in result.replaced:
        print(f"{verb} {path}")
    for path in result.sidecars:
        print(
            f"{path}: edited since mlci {result.previous.version} wrote it; "
            f"{'would write' if args.check else 'wrote'} the new text to {path}{project.SIDECAR}",
            file=sys.stderr,
        )
    if not result.changes:
        print(f"up to date with mlci {__version__}")
        return 0
    if result.sidecars and not args.check:
        print(
            f"{len(result.sidecars)} edited file(s) kept: merge each {project.SIDECAR} by hand, "
            "then delete it",
            file=sys.stderr,
        )
    return 1 if args.check or result.sidecars else 0


def register(commands: Any) -> None:
    """Add `init` and `update`."""
    init = add(commands, "init", cmd_init)
    init.add_argument("directory", nargs="?", default=".", metavar="DIR", help="default: .")
    init.add_argument("--data", metavar="FILE", help="your CSV (default: the Iris sample)")
    init.add_argument("--target", metavar="COLUMN", help="the label column of --data")
    init.add_argument("--force", action="store_true", help="overwrite the files it would write")
    init.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    init.add_argument(
        "--find-links",
        metavar="DIR",
        help="a folder holding mlci's wheel, before it is on the package index",
    )
    init.add_argument(
        "--no-lock", action="store_true", help="write no lock (then run `mlci lock` yourself)"
    )
    update = add(commands, "update", cmd_update)
    update.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when anything would change"
    )
