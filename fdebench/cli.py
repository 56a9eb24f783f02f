"""The ``fdebench`` command line: parse arguments, call runner/report, map errors to exit codes.

Exit codes: 0 success; 1 some runs failed (their records and the report are still written),
``check`` found a mismatch or ``compare`` found a regression; 2 bad usage or input (a one-line
error per problem, :class:`fdebench.errors.InputError`); 130 interrupted.  Any other exception
is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .errors import InputError

DEFAULT_SUITE = "quickstart"


def _check(args: argparse.Namespace) -> int:
    from .runner.execute import resolve_device
    from .selfcheck import check_passed, format_rows, run_check

    rows = run_check(n_steps=args.steps, device=resolve_device(args.device))
    print(format_rows(rows))
    ok = check_passed(rows)
    print("\nevery method converges at its order and every exact gradient mode agrees with "
          "direct to 1e-9" if ok else "\nCHECK FAILED (rows marked FAIL)")
    return 0 if ok else 1


def _suites(args: argparse.Namespace) -> int:
    import yaml

    from .runner.suite_file import bundled_suites

    for name, path in bundled_suites().items():
        data = yaml.safe_load(path.read_text()) or {}
        print(f"{name:<20} {str(data.get('description', '')).strip()}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .runner import find_suite, load_suite, plan, run_suite

    suite = load_suite(find_suite(args.suite))
    if args.dry_run:
        runs = plan(suite, args.device, args.only)
        for run in runs:
            print(run.run_id + (f"  (skipped: {run.skip})" if run.skip else ""))
        print(f"{len(runs)} runs ({sum(1 for r in runs if r.skip)} skipped)", file=sys.stderr)
        return 0
    counts = run_suite(suite, args.results_dir, device=args.device, only=args.only,
                       force=args.force, quiet=args.quiet, executor=args.executor,
                       jobs=args.jobs, address=args.address)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"suite {suite.name}: {summary or 'nothing to run'}")
    from .results import OK, RUNS_FILE

    results = args.results_dir / suite.name
    if (results / RUNS_FILE).exists():
        from .report import write_report

        print(f"report: {write_report(results, args.reports_dir)}")
    failed = sum(n for status, n in counts.items() if status not in (OK, "cached", "skipped"))
    return 1 if failed else 0


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(write_report(args.results, args.reports_dir))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .compare import compare_paths, render

    comparison = compare_paths(args.baseline, args.current, args.fail_on,
                               allow_missing=args.allow_missing)
    for line in comparison.warnings:
        print(f"fdebench: warning: {line}", file=sys.stderr)
    print(render(comparison, args.format), end="")
    return 1 if comparison.regressions else 0


FAIL_ON_HELP = (
    "comma-separated METRIC:LIMIT items; LIMIT is +N%% / -N%% (change relative to the "
    "baseline), +N / -N (change in the metric's units), +Npp / -Npp (percentage points, N/100), "
    "<N / >N (bound on the current value), e.g. "
    "'peak_mem_bytes:+10%%,time_per_iter_s:+25%%,grad_rel_err:<1e-8,test_accuracy:-1pp'"
)


RUN_EPILOG = """\
suite keys worth knowing (docs: docs/suites.md, the bundled suites' comments):
  measure: {cost_only: true}   measure memory, time and the gradient against direct's at
                               full size, without training on or evaluating (a task entry
                               or the grid may set cost_only per run); the Claims section
                               takes memory and speed from such runs, accuracy from trained
  engine: textbook             a second direct baseline: the scheme as research code writes
                               it (the history a Python list; direct gradient only), the
                               implementation the AAAI-2025 adjoint paper measured against
  grid: {step_size: [...]}     a sweep over N (also alpha, batch_size): the report's claim
                               maps say from which N each claim holds
  missing: 0.3                 lotka_volterra: drop that fraction of the observation times
  history: soe, gradient: revolve   the compressed history and its exact adjoint from
                               binomial checkpoints: memory far below (N + 1)|y|
bundled suites for the paper's claims: paper-replica, claims-map (CPU), paper-claims-gpu;
below the trajectory floor: memory-frontier."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fdebench",
        description="Benchmark harness for neural fractional-order differential equations.",
    )
    parser.add_argument("--version", action="version", version=f"fdebench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a suite, record the runs, write the report",
                         description="Run every task of a suite under each configuration in "
                         "a fresh process, append one record per run, then write the report.",
                         epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("suite", nargs="?", default=DEFAULT_SUITE,
                     help="a suite YAML file, or the name of a bundled suite (`fdebench "
                     "suites` lists them; default: quickstart)")
    run.add_argument("--results-dir", type=Path, default=Path("results"), metavar="DIR",
                     help="where run records go (default: results/)")
    run.add_argument("--reports-dir", type=Path, default=Path("reports"), metavar="DIR",
                     help="where reports go (default: reports/)")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"],
                     help="override the suite's device")
    run.add_argument("--only", metavar="PATTERN",
                     help="run only ids matching PATTERN (a glob, or a substring)")
    run.add_argument("--force", action="store_true", help="redo runs already recorded ok")
    run.add_argument("--dry-run", action="store_true", help="print the expanded runs and exit")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--executor", default="local", metavar="NAME",
                     help="local: this machine (default); ray: a Ray cluster (pip install "
                     "'fdebench[ray]')")
    run.add_argument("--jobs", type=_integer(1), metavar="N",
                     help="runs at once (default: 1 locally, one GPU each on CUDA; on Ray, as "
                     "many as the cluster holds)")
    run.add_argument("--address", metavar="ADDR",
                     help="the Ray cluster to use: auto or HOST:PORT (default: start a private "
                     "Ray instance here)")
    run.set_defaults(handler=_run)

    report = sub.add_parser("report", help="write the report of stored results",
                            description="Write reports/<suite>/README.md and figures from a "
                            "results folder, without running anything.")
    report.add_argument("results", type=Path, help="a results folder, e.g. results/quickstart")
    report.add_argument("--reports-dir", type=Path, default=Path("reports"), metavar="DIR",
                        help="where reports go (default: reports/)")
    report.set_defaults(handler=_report)

    compare = sub.add_parser(
        "compare", help="compare two results run by run; exit 1 on a regression",
        description="Compare two harness results folders (runs.jsonl, matched by run id) or two "
        "pytest-benchmark JSON files (matched by benchmark name), print a table of changes, and "
        "exit 1 listing every regression beyond the --fail-on thresholds.",
    )
    compare.add_argument("baseline", type=Path, help="results folder, runs.jsonl or .json file")
    compare.add_argument("current", type=Path, help="the same kind of results, to check")
    compare.add_argument("--fail-on", metavar="SPEC", help=FAIL_ON_HELP)
    compare.add_argument("--format", choices=["terminal", "markdown"], default="terminal",
                         help="table format (default: terminal)")
    compare.add_argument("--allow-missing", action="store_true",
                         help="compare the runs both sides have and warn about the others "
                         "(default: runs on one side only are an error)")
    compare.set_defaults(handler=_compare)

    check = sub.add_parser(
        "check",
        help="check the engine on embedded problems (accuracy, gradient agreement)",
        description="Solve D^a y = -y with every method (error against the Mittag-Leffler "
        "solution) and compare every gradient mode with direct autograd on a small neural FDE.",
    )
    check.add_argument("--steps", type=_integer(16, 100_000), default=100,
                       help="solver steps N (16 to 100000; the order is measured from N and 2N; "
                       "default 100)")
    check.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                       help="where to solve (default: cpu)")
    check.set_defaults(handler=_check)

    suites = sub.add_parser("suites", help="list the bundled suites",
                            description="List the suites shipped with fdebench; `fdebench run "
                            "NAME` runs one from any folder.")
    suites.set_defaults(handler=_suites)
    return parser


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An option's type: an integer in ``[low, high]`` (``high`` None: no upper bound)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except InputError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"fdebench: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        tail = "; finished runs are recorded, run again to resume" if args.command == "run" else ""
        print(f"fdebench: interrupted{tail}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
