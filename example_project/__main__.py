"""Quickstart: materialize the example project end to end and print what came back.

Run with ``python -m example_project`` (``make demo``). Without ``CARGO_API_TOKEN`` an
in-process Cargo emulator serves the API on a free loopback port. The run:

1. materializes every unpartitioned asset in one run (sign-ups → tool enrichment with asset
   checks, plays, the workspace assets, the credit-usage summary);
2. backfills three days of the daily-partitioned play asset, one run per partition;
3. prints each DataFrame's head and the credits each asset used.
"""

import contextlib
import datetime as dt
import os
import sys

import pandas as pd

# the three days before today (the emulator's records were created over the past year)
BACKFILL_DAYS = tuple((dt.date.today() - dt.timedelta(days=n)).isoformat() for n in (3, 2, 1))


def _meta(mat) -> dict:
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def _report(result, title: str) -> None:
    print(f"\n=== {title} ===")
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        key = mat.asset_key.to_user_string()
        meta = _meta(mat)
        partition = f" [{mat.partition}]" if mat.partition else ""
        line = f"- {key}{partition}: {meta.get('dagster/row_count')} rows"
        if "dagster-cargo/credits_used" in meta:
            batch = meta.get("dagster-cargo/batch_uuid") or "none (nothing to run)"
            counts = meta.get("dagster-cargo/counts") or {}  # the counts: one JSON entry, not plotted
            line += (f", {meta['dagster-cargo/credits_used']:g} credits used, batch {batch} "
                     f"({counts.get('executed_runs_count')}/{counts.get('runs_count')} "
                     f"runs, {counts.get('failed_runs_count')} failed)")
        print(line)
        node = event.step_key
        frame = result.output_for_node(node, "result") if node else None
        if isinstance(frame, pd.DataFrame) and len(frame):
            with pd.option_context("display.width", 160, "display.max_columns", 10):
                print(frame.head(5).to_string(max_colwidth=26))
    for check in result.get_asset_check_evaluations():
        state = "passed" if check.passed else f"FAILED ({check.severity.value})"
        print(f"  check {check.asset_key.to_user_string()}:{check.check_name} {state}")


def main() -> int:
    import dagster as dg

    with contextlib.ExitStack() as stack:
        if not os.environ.get("CARGO_API_TOKEN") and not os.environ.get("CARGO_EMULATOR_URL"):
            from cargo_gtm_emulator import CargoEmulator

            from .connection import emulator_token

            emulator = stack.enter_context(CargoEmulator(token=emulator_token(), speed=200.0, seed=7))
            os.environ["CARGO_EMULATOR_URL"] = emulator.base_url
        from .assets import daily_company_scores
        from .definitions import defs

        everything_now = dg.define_asset_job(
            "quickstart", selection=dg.AssetSelection.all() - dg.AssetSelection.assets(daily_company_scores))
        merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[everything_now]))
        instance = dg.DagsterInstance.ephemeral()
        ok = True

        result = merged.resolve_job_def("quickstart").execute_in_process(instance=instance, raise_on_error=False)
        _report(result, "dagster-cargo example: all unpartitioned assets")
        ok &= result.success

        backfill = merged.resolve_job_def("daily_company_scoring")
        for day in BACKFILL_DAYS:
            result = backfill.execute_in_process(instance=instance, partition_key=day, raise_on_error=False)
            _report(result, f"backfill of daily_company_scores, partition {day}")
            ok &= result.success
    if not ok:
        print("Some assets failed; see the log above.", file=sys.stderr)
        return 1
    print("\nAll example assets materialized.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
