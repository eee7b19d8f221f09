"""Requests per run (issue 11 item 5), read from the emulator's request log on a manual clock.

Measured on the emulator's manual clock (the ``manual_emulator`` fixture, seed 1), one asset materialized
once, defaults of the resource (estimate and credit breakdown on), the same status polls either way:

* tool asset (``cargo.run_tool(context, "Enrich company", 30 rows)``): **17** API requests before, **14** after
  (12 → 9 besides the 5 polls): the deployed release was read twice before the create (input check, then
  estimate) and now once; the workflow's batches were listed twice (estimate, then the create's watermark)
  and now once; the batch's release was read twice after it ended (outputs, then per-node credits) and
  now once, the deployed release read before serving the per-node credit names when the batch ran it.
* play asset (``cargo.run_play(context, "Score inbound companies", limit=20)``): **18** before, **16** after
  (12 → 10 besides the 6 polls): one listing and one release read fewer, as above.

No current-user lookup is made on this path (only an ambiguous create's reconciliation may need one).
"""

from collections import Counter

import dagster as dg
import pandas as pd

from dagster_cargo import CargoResource

ROWS = pd.DataFrame({"domain": [f"c{i}.com" for i in range(30)]})


@dg.asset
def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    return cargo.run_tool(context, "Enrich company", ROWS).materialize_result()


@dg.asset
def scored(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    return cargo.run_play(context, "Score inbound companies", limit=20).materialize_result()


def api_requests(emu) -> tuple[Counter, int]:
    """(requests per (method, path) besides status polls, status polls) of the API (``/v1``)."""
    entries = [e for e in emu.requests() if e["path"].startswith("/v1/")]
    polls = [e for e in entries if e["method"] == "GET" and e["path"].startswith("/v1/orchestration/batches/")
             and not e["path"].endswith("/list")]
    rest = Counter((e["method"], "/releases/<uuid>" if "/releases/" in e["path"] and not e["path"].endswith(
        "deployed") else e["path"].removeprefix("/v1/orchestration")) for e in entries if e not in polls)
    return rest, len(polls)


def test_a_tool_asset_run_makes_three_requests_fewer(manual_emulator, cargo_resource):
    result = dg.materialize([enriched], resources={"cargo": cargo_resource()})
    assert result.success and len(result.output_for_node("enriched")) == 30
    rest, polls = api_requests(manual_emulator)
    assert rest[("GET", "/releases/deployed")] == 1  # input check and estimate share one read
    assert rest[("GET", "/batches/list")] == 1  # estimate and the create's watermark share one listing
    assert rest[("GET", "/releases/<uuid>")] == 1  # outputs read the batch's release; credits reuse the deployed
    assert rest[("POST", "/batches")] == 1
    assert not any("users/current" in path for _, path in rest)
    assert sum(rest.values()) == 9 and polls == 5  # 12 + 5 = 17 before


def test_a_play_asset_run_makes_two_requests_fewer(manual_emulator, cargo_resource):
    result = dg.materialize([scored], resources={"cargo": cargo_resource()})
    assert result.success and len(result.output_for_node("scored")) == 20
    rest, polls = api_requests(manual_emulator)
    assert rest[("GET", "/releases/deployed")] == 1  # the estimate's node count
    assert rest[("GET", "/batches/list")] == 1
    assert rest[("GET", "/releases/<uuid>")] == 1
    assert not any("users/current" in path for _, path in rest)
    assert sum(rest.values()) == 10 and polls == 6  # 12 + 6 = 18 before
