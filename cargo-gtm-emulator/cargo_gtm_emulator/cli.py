"""``cargo-emulator``: serve the Cargo API emulator, or change a running one's state.

* ``cargo-emulator serve [--port 8765] [--speed 20] ...``: serve the emulator until Ctrl-C.
* ``cargo-emulator ctl ACTION ...``: change a running emulator's state (records, clock, faults, ...).

The token the emulator accepts is never taken on the command line, where ``ps`` shows it to every
local user: it is read from the environment variable ``--token-env`` names (``CARGO_EMULATOR_TOKEN``
by default) or from the file ``--token-file`` names.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .token_source import add_token_options, read_token

if TYPE_CHECKING:
    from .faults import FaultProfile

#: the default ``--speed``: simulated seconds per real second. 20 makes a demo batch of a few records finish
#: in about a second of real time while still showing progress; 1 is Cargo's own pace.
DEFAULT_SPEED = 20.0


def _run_emulator(args: argparse.Namespace) -> int:
    from . import CargoEmulator
    from .faults import FAULT_KINDS

    try:
        faults = _fault_profile(args)
    except ValueError as exc:
        print(f"Invalid fault options: {exc}", file=sys.stderr)
        return 2
    from .variants import parse_variant_option

    try:
        variants = dict(parse_variant_option(v) for v in args.variant or [])
    except ValueError as exc:
        print(f"Invalid --variant: {exc}", file=sys.stderr)
        return 2
    token = read_token(args)
    if token is None:
        return 2
    emu = CargoEmulator(token=token, speed=args.speed, seed=args.seed,
                        run_failure_rate=args.run_failure_rate, credits=args.credits, host=args.host,
                        port=args.port, max_concurrent_runs=args.max_concurrent_runs, faults=faults,
                        extra_workflows=args.extra_workflows, variants=variants,
                        concurrency_limit=args.concurrency_limit, agent_play=args.agent_play)
    stopping = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    _tune_gc()
    emu.start()
    print(f"Cargo emulator ready at {emu.base_url} (API base {emu.api_url})", flush=True)
    if variants:
        print("Layout variants: " + ", ".join(f"{k}={v}" for k, v in sorted(variants.items())), flush=True)
    if faults is not None:
        active = ", ".join(f"{k}={faults.probability(k)}" for k in FAULT_KINDS if faults.probability(k) > 0)
        print(f"Fault injection on (seed {faults.seed}): {active or 'none'}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        emu.stop()
        print("Cargo emulator stopped", flush=True)
    return 0


def _tune_gc() -> None:
    """GC settings for a serving process: the emulator keeps every batch, run and execution it simulates
    (tens of thousands of long-lived objects per big batch fan-out) and makes few cycles, so Python's
    default young-generation threshold (700) ran the collector over them again and again: about a third
    of the simulation's CPU. The seeded workspace is frozen out of collection; young collections run every
    50,000 allocations. (Only ``serve`` does this: an emulator embedded in a test leaves its host's GC alone.)"""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


_FAULT_PARAMS = {"slow_seconds": "fault_slow_seconds", "retry_after_seconds": "fault_retry_after",
                 "seed": "fault_seed"}


def _fault_profile(args: argparse.Namespace) -> FaultProfile | None:
    """The profile from ``--fault-profile`` and the ``--fault-*`` flags (flags override the preset)."""
    from .faults import FAULT_KINDS, FaultProfile

    overrides: dict[str, float | int] = {}
    for kind in FAULT_KINDS:
        value = getattr(args, f"fault_{kind}")
        if value is not None:
            overrides[kind] = value
    for field_name, dest in _FAULT_PARAMS.items():
        if getattr(args, dest) is not None:
            overrides[field_name] = getattr(args, dest)
    if args.fault_profile is None and not any(k in overrides for k in FAULT_KINDS):
        return None
    return FaultProfile.preset(args.fault_profile or "none", **overrides)


def _add_fault_flags(emu: argparse.ArgumentParser) -> None:
    from .faults import FAULT_KINDS, PRESETS

    group = emu.add_argument_group("fault injection", "Probabilities per eligible request (see EMULATOR.md).")
    group.add_argument("--fault-profile", choices=sorted(PRESETS), default=None,
                       help="named preset; individual --fault-* flags override it")
    for kind in FAULT_KINDS:
        group.add_argument(f"--fault-{kind.replace('_', '-')}", dest=f"fault_{kind}", type=float,
                           default=None, metavar="P")
    group.add_argument("--fault-slow-seconds", type=float, default=None, help="slow_response delay (2.0)")
    group.add_argument("--fault-retry-after", type=float, default=None, help="Retry-After seconds (1)")
    group.add_argument("--fault-seed", type=int, default=None, help="seed of the fault sequence (0)")



def _limit(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``cargo-emulator`` argument parser."""
    parser = argparse.ArgumentParser(prog="cargo-emulator", description="A local emulator of Cargo's REST API.")
    sub = parser.add_subparsers(dest="command", required=True)
    emu = sub.add_parser("serve", help="Serve the emulator on loopback until Ctrl-C.",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    emu.add_argument("--host", default="127.0.0.1", help="address to listen on")
    emu.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    add_token_options(emu)
    emu.add_argument("--speed", type=float, default=DEFAULT_SPEED,
                     help="simulated seconds per real second (1 = Cargo's own pace; 20 suits a demo)")
    emu.add_argument("--seed", type=int, default=0, help="seed of the seeded workspace and the simulated runs")
    emu.add_argument("--run-failure-rate", type=float, default=0.05,
                     help="share of runs that fail (deterministic by record id and seed)")
    emu.add_argument("--credits", type=int, default=100_000, help="credits of the workspace subscription")
    emu.add_argument("--max-concurrent-runs", type=int, default=10,
                     help="runs of one batch executing at once (its execution slots; a simulation speed knob)")
    emu.add_argument("--concurrency-limit", type=_limit, default=None, metavar="N",
                     help="unfinished batches and single runs the workspace accepts; a create beyond it gets "
                          "400 concurrencyLimitReached (default: no limit; change it later with `ctl concurrency`)")
    emu.add_argument("--agent-play", action=argparse.BooleanOptionalAction, default=True,
                     help="seed the play 'Classify inbound companies' (agent node with fallbackOnFailure and "
                          "fallbackChildUuid, slug repeated across node kinds); --no-agent-play leaves it out")
    emu.add_argument("--extra-workflows", type=int, default=0,
                     help="seed this many more runnable plays and tools, for scale tests (e.g. 993 → 1,000)")
    _add_fault_flags(emu)
    emu.add_argument("--variant", action="append", metavar="NAME=VALUE",
                     help="layout variant where Cargo's docs leave a behaviour open (repeatable; see EMULATOR.md)")
    emu.set_defaults(func=_run_emulator)
    sub.add_parser("ctl", add_help=False,
                   help="Change a running emulator's state (records, play schedules, clock, variants, faults, "
                        "reset, attached outputs, redeploys); see `cargo-emulator ctl --help`.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cargo-emulator`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["ctl"]:  # its own parser (options before the action)
        from .control import main as ctl_main

        return ctl_main(argv[1:], prog="cargo-emulator ctl")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
