"""``dagster-cargo`` command line.

Subcommands: ``snapshot`` (write the
workspace listing to a file that ``load_cargo_asset_specs(..., snapshot_path=...)`` and
``build_cargo_assets_definitions(..., snapshot_path=...)`` load instead of calling the API) and
``estimate`` (the credits a batch of a play or tool would cost, creating nothing).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


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

    from cargo_gtm import CargoClient, CargoError

    from .definitions.workspace_data import fetch_workspace_data

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

    from cargo_gtm import CargoClient, CargoError, records_data
    from cargo_gtm.estimate import estimate_credits
    from cargo_gtm.inputs import play_input

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (subcommands via subparsers)."""
    parser = argparse.ArgumentParser(prog="dagster-cargo", description="Dagster integration for Cargo.")
    sub = parser.add_subparsers(dest="command", required=True)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dagster-cargo`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
