"""``cargo-fault-report``: run many tool and play materializations, 8 at once, against a faulty emulator
(then kill -9 and re-execute) and report failures, wrong adoptions, duplicate and orphan batches, credits
and token leaks. A development tool: it ships with no runtime package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _fault_report(args: argparse.Namespace) -> int:
    from . import SuiteConfig, run_fault_suite

    config = SuiteConfig(materializations=args.materializations, seed=args.seed, profile=args.profile,
                         earlier_batches=args.earlier_batches, crash_scenarios=not args.no_crash_scenarios)

    def progress(outcome: object) -> str | None:
        done = getattr(outcome, "index", 0) + 1
        return f"\r{done}/{config.materializations} materializations" + ("\n" if done == config.materializations else "")

    try:
        report = run_fault_suite(config, progress=progress if not args.quiet else None)
    except ValueError as exc:  # e.g. an unknown --profile
        print(f"Invalid fault-report options: {exc}", file=sys.stderr)
        return 2
    print(report.render(), flush=True)
    return 1 if report.problems() else 0


def build_parser() -> argparse.ArgumentParser:
    """The ``cargo-fault-report`` argument parser."""
    parser = argparse.ArgumentParser(prog="cargo-fault-report", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--materializations", type=int, default=200,
                        help="tool and play materializations to run, 8 at once")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault sequence and the inputs")
    parser.add_argument("--profile", default="mixed",
                        help="emulator fault preset: none, mixed, ... (see the emulator's EMULATOR.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    parser.add_argument("--earlier-batches", type=int, default=150,
                        help="batches each workflow has before the suite starts (over one list page)")
    parser.add_argument("--no-crash-scenarios", action="store_true",
                        help="skip the kill -9 / re-execution scenarios")
    parser.set_defaults(func=_fault_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cargo-fault-report`` console script."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
