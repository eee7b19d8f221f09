"""Twins launched through the daemon's run queue (tests/reliability/test_postgres_instance.py): one asset over the
same records, in the ``cargo`` pool; the resource waits on a clock that moves the manual-clock emulator through its
control plane. CARGO_API_TOKEN / CARGO_BASE_URL name the emulator.

No ``from __future__ import annotations`` here: this module defines Dagster assets.
"""

import os

import dagster as dg
import httpx
import pandas as pd
from cargo_gtm.running.clock import ManualClock

from dagster_cargo import CargoResource

RECORDS = pd.DataFrame({"domain": ["acme.com", "globex.com", "initech.io", "umbrella.co", "hooli.com"],
                        "company_name": ["Acme", "Globex", "Initech", "Umbrella", "Hooli"]})
BASE_URL = os.environ["CARGO_BASE_URL"]


def _advance(seconds: float) -> None:
    httpx.post(f"{BASE_URL}/_emulator/clock/advance", json={"seconds": seconds},
               headers={"Authorization": f"Bearer {os.environ['CARGO_API_TOKEN']}"}, timeout=30).raise_for_status()


@dg.asset(name="enriched_twin", kinds={"cargo"}, pool="cargo")
def enriched_twin(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    cargo = cargo.with_clock(ManualClock(on_sleep=_advance))
    return cargo.run_tool(context, "Enrich company", RECORDS).materialize_result()


defs = dg.Definitions(
    assets=[enriched_twin],
    jobs=[dg.define_asset_job("twins_job", selection=["enriched_twin"])],
    resources={"cargo": CargoResource(api_token=dg.EnvVar("CARGO_API_TOKEN"), base_url=BASE_URL,
                                      poll_interval=0.05, max_poll_interval=0.5, credit_breakdown=True,
                                      poll_timeout=10_000.0)},
)
