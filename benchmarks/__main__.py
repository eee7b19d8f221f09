"""Run the benchmarks and print one table: ``python -m benchmarks [--quick] [--only B1,B3] [--json F]``."""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from ._report import Row, machine, render, to_json

BENCHES = {
    "B1": "benchmarks.b1_fanout",
    "B2": "benchmarks.b2_latency",
    "B3": "benchmarks.b3_download",
    "B4": "benchmarks.b4_parquet",
    "B5": "benchmarks.b5_definitions",
    "B6": "benchmarks.b6_emulator",
    "B7": "benchmarks.b7_single_run",
    "B8": "benchmarks.b8_history",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of the harness")
    parser.add_argument("--only", default="", help="comma-separated subset, e.g. B1,B3")
    parser.add_argument("--json", default="", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    wanted = [b.strip().upper() for b in args.only.split(",") if b.strip()] or list(BENCHES)
    unknown = [b for b in wanted if b not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}")
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    for name in wanted:
        started = time.perf_counter()
        print(f"== {name} ({BENCHES[name]}) {'quick' if args.quick else 'full'} ...", flush=True)
        module = importlib.import_module(BENCHES[name])
        got = module.run(quick=args.quick)
        rows.extend(got)
        print(render(got), flush=True)
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    print("\n== all figures\n" + render(rows))
    if args.json:
        with open(args.json, "w") as f:
            f.write(to_json(rows))
    missed = [r for r in rows if r.met is False]
    print(f"\n{len(rows)} figures, {sum(r.met is True for r in rows)} goals met, {len(missed)} missed"
          + (": " + ", ".join(f"{r.bench} {r.metric}" for r in missed) if missed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
