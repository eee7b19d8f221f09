"""``dagster-cargo`` command line.

Subcommands: ``emulator`` (serve the local Cargo API emulator), ``snapshot`` (write the
workspace listing to a file that ``load_cargo_asset_specs(..., snapshot_path=...)`` and
``build_cargo_assets_definitions(..., snapshot_path=...)`` load instead of calling the API) and
``estimate`` (the credits a batch of a play or tool would cost, creating nothing).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster_cargo.emulator.faults import FaultProfile


def _run_emulator(args: argparse.Namespace) -> int:
    from dagster_cargo.emulator import CargoEmulator
    from dagster_cargo.emulator.faults import FAULT_KINDS

    try:
        faults = _fault_profile(args)
    except ValueError as exc:
        print(f"Invalid fault options: {exc}", file=sys.stderr)
        return 2
    from dagster_cargo.emulator.variants import parse_variant_option

    try:
        variants = dict(parse_variant_option(v) for v in args.variant or [])
    except ValueError as exc:
        print(f"Invalid --variant: {exc}", file=sys.stderr)
        return 2
    emu = CargoEmulator(token=args.token, speed=args.speed, seed=args.seed,
                        run_failure_rate=args.run_failure_rate, credits=args.credits, host=args.host,
                        port=args.port, max_concurrent_runs=args.max_concurrent_runs, faults=faults,
                        extra_workflows=args.extra_workflows, variants=variants)
    stopping = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
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


_FAULT_PARAMS = {"slow_seconds": "fault_slow_seconds", "retry_after_seconds": "fault_retry_after",
                 "seed": "fault_seed"}


def _fault_profile(args: argparse.Namespace) -> FaultProfile | None:
    """The profile from ``--fault-profile`` and the ``--fault-*`` flags (flags override the preset)."""
    from dagster_cargo.emulator.faults import FAULT_KINDS, FaultProfile

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
    from dagster_cargo.emulator.faults import FAULT_KINDS, PRESETS

    group = emu.add_argument_group("fault injection", "Probabilities per eligible request (see EMULATOR.md).")
    group.add_argument("--fault-profile", choices=sorted(PRESETS), default=None,
                       help="named preset; individual --fault-* flags override it")
    for kind in FAULT_KINDS:
        group.add_argument(f"--fault-{kind.replace('_', '-')}", dest=f"fault_{kind}", type=float,
                           default=None, metavar="P")
    group.add_argument("--fault-slow-seconds", type=float, default=None, help="slow_response delay (2.0)")
    group.add_argument("--fault-retry-after", type=float, default=None, help="Retry-After seconds (1)")
    group.add_argument("--fault-seed", type=int, default=None, help="seed of the fault sequence (0)")


def _token(args: argparse.Namespace) -> str | None:
    """The API token from the environment variable ``--token-env`` names (never from the command line);
    None, with a message saying what to set, when it is unset."""
    import os

    token = os.environ.get(args.token_env)
    if not token:
        print(f"Set {args.token_env} to a Cargo API token (Settings → API Tokens).", file=sys.stderr)
        return None
    return token


def _write_snapshot(args: argparse.Namespace) -> int:

    from dagster_cargo.client import CargoClient, CargoError
    from dagster_cargo.workspace_data import fetch_workspace_data

    token = _token(args)
    if token is None:
        return 2
    try:
        with CargoClient(token, base_url=args.base_url, workspace_uuid=args.workspace_uuid) as client:
            data = fetch_workspace_data(client)
    except CargoError as exc:
        print(f"Could not list the Cargo workspace: {exc}", file=sys.stderr)
        return 1
    data.write(args.output)
    plays = sum(w.type == "play" for w in data.workflows)
    print(f"Wrote {args.output}: {plays} plays, {len(data.workflows) - plays} tools"
          + (f", {len(data.skipped)} skipped (see warnings)" if data.skipped else ""), flush=True)
    return 0


def _read_records(path: str) -> list[dict[str, object]]:
    """Records from a ``.csv`` (header row), ``.jsonl``/``.ndjson`` (one object a line) or ``.json`` (an array)."""
    import csv
    import json
    from pathlib import Path

    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".csv"):
        return [dict(row) for row in csv.DictReader(text.splitlines())]
    if path.endswith((".jsonl", ".ndjson")):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = json.loads(text)
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON array of objects")
    return rows


def _estimate(args: argparse.Namespace) -> int:
    import json

    from dagster_cargo.client import CargoClient, CargoError, records_data
    from dagster_cargo.client.inputs import play_input
    from dagster_cargo.estimate import estimate_credits

    token = _token(args)
    if token is None:
        return 2
    try:
        with CargoClient(token, base_url=args.base_url, workspace_uuid=args.workspace_uuid) as client:
            if args.play:
                play = client.find_play(args.play)
                name, kind, workflow_uuid = play.name, "play", play.workflow_uuid
                data = play_input(play.model_uuid, record_ids=args.record_ids, play_name=play.name,
                                  filter=json.loads(args.filter) if args.filter else None, limit=args.limit)
            else:
                if not args.input:
                    print("--tool needs --input FILE (.csv, .json or .jsonl records).", file=sys.stderr)
                    return 2
                tool = client.find_tool(args.tool)
                name, kind, workflow_uuid = tool.name, "tool", tool.workflow_uuid
                data = records_data(_read_records(args.input))
            estimate = estimate_credits(client, workflow_uuid, [data])
    except (CargoError, ValueError, OSError) as exc:
        print(f"Could not estimate: {exc}", file=sys.stderr)
        return 1
    print(f"Cargo {kind} {name!r}: {estimate.describe()}", flush=True)
    if estimate.credits is not None:
        print(f"estimated_credits={estimate.credits:g}", flush=True)
    return 0


def _fault_report(args: argparse.Namespace) -> int:
    from dagster_cargo.fault_suite import SuiteConfig, run_fault_suite

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
    """The argument parser (subcommands via subparsers)."""
    parser = argparse.ArgumentParser(prog="dagster-cargo", description="Dagster integration for Cargo.")
    sub = parser.add_subparsers(dest="command", required=True)
    emu = sub.add_parser("emulator", help="Serve a local emulator of the Cargo API.")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    emu.add_argument("--token", required=True, help="bearer token the emulator accepts (never printed)")
    emu.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    emu.add_argument("--seed", type=int, default=0)
    emu.add_argument("--run-failure-rate", type=float, default=0.05)
    emu.add_argument("--credits", type=int, default=100_000)
    emu.add_argument("--max-concurrent-runs", type=int, default=10)
    emu.add_argument("--extra-workflows", type=int, default=0,
                     help="seed this many more runnable plays and tools, for scale tests (e.g. 996 → 1,000)")
    _add_fault_flags(emu)
    emu.add_argument("--variant", action="append", metavar="NAME=VALUE",
                     help="layout variant where Cargo's docs leave a behaviour open (repeatable; see EMULATOR.md)")
    emu.set_defaults(func=_run_emulator)
    sub.add_parser("emulator-ctl", add_help=False,
                   help="Change a running emulator's state (records, play schedules, clock, variants, faults, "
                        "reset, attached outputs, redeploys); "
                        "see `dagster-cargo emulator-ctl --help`.")
    snap = sub.add_parser("snapshot", help="Write the workspace's plays and tools to a JSON file.")
    snap.add_argument("-o", "--output", required=True, help="file to write, e.g. cargo_workspace.json")
    snap.add_argument("--base-url", default="https://api.getcargo.io")
    snap.add_argument("--workspace-uuid", default=None)
    snap.add_argument("--token-env", default="CARGO_API_TOKEN",
                      help="environment variable holding the API token (never a command-line argument)")
    snap.set_defaults(func=_write_snapshot)
    est = sub.add_parser("estimate", help="Estimate the credits of a batch of a play or tool, creating nothing.")
    target = est.add_mutually_exclusive_group(required=True)
    target.add_argument("--play", help="play name or UUID")
    target.add_argument("--tool", help="tool name or UUID")
    est.add_argument("--input", help="tools: the records, a .csv, .json (array) or .jsonl file")
    est.add_argument("--filter", help="plays: a Cargo filter as JSON (default: every record of the model)")
    est.add_argument("--limit", type=int, default=None, help="plays: at most this many records")
    est.add_argument("--record-ids", nargs="+", default=None, help="plays: run over these record ids")
    est.add_argument("--base-url", default="https://api.getcargo.io")
    est.add_argument("--workspace-uuid", default=None)
    est.add_argument("--token-env", default="CARGO_API_TOKEN",
                     help="environment variable holding the API token (never a command-line argument)")
    est.set_defaults(func=_estimate)
    faults = sub.add_parser("fault-report", help="Run many tool and play materializations, 8 at once, "
                            "against a faulty emulator (then kill -9 and re-execute) and report failures, wrong "
                            "adoptions, duplicate and orphan batches, credits and token leaks.")
    faults.add_argument("--materializations", type=int, default=200)
    faults.add_argument("--seed", type=int, default=1, help="seed of the fault sequence and the inputs")
    faults.add_argument("--profile", default="mixed", help="emulator fault preset (see EMULATOR.md)")
    faults.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    faults.add_argument("--earlier-batches", type=int, default=150,
                        help="batches each workflow has before the suite starts (default 150, over one list page)")
    faults.add_argument("--no-crash-scenarios", action="store_true",
                        help="skip the kill -9 / re-execution scenarios")
    faults.set_defaults(func=_fault_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dagster-cargo`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator-ctl"]:  # its own parser (options before the action)
        from dagster_cargo.emulator.control import main as ctl_main

        return ctl_main(argv[1:], prog="dagster-cargo emulator-ctl")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
