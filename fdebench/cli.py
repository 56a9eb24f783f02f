"""The ``fdebench`` command line: parse arguments, call the library, map errors to exit codes."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def _check(args: argparse.Namespace) -> int:
    from .selfcheck import check_passed, format_rows, run_check

    rows = run_check(n_steps=args.steps)
    print(format_rows(rows))
    ok = check_passed(rows)
    print("\nall gradient modes agree with direct to 1e-9" if ok else "\nGRADIENT MISMATCH")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fdebench",
        description="Benchmark harness for neural fractional-order differential equations.",
    )
    parser.add_argument("--version", action="version", version=f"fdebench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = sub.add_parser(
        "check",
        help="check the engine on embedded problems (accuracy, gradient agreement)",
        description="Solve D^a y = -y with every method (error against the Mittag-Leffler "
        "solution) and compare every gradient mode with direct autograd on a small neural FDE.",
    )
    check.add_argument("--steps", type=int, default=100, help="solver steps (default 100)")
    check.set_defaults(handler=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"fdebench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
