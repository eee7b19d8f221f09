"""Requests per materialization, read from the emulator's request log on a manual clock (issue 20 item 3).

The **minimum** is what a correct result needs, whoever writes the client, counted per materialization:

* resolving the play's or tool's name (``plays/list`` / ``tools/list``): 1;
* a tool's deployed release (``releases/deployed``), to check its required form fields before the first
  credit is spent: 1 (tools only);
* the exactly-once watermark (``batches/list``, one page whatever the history): 1;
* the create: 1; the status polls: as many as the wait schedule makes (the same for any client);
* the download URL: 1; the node executions behind the billed credit figure, provider + 0.01 per node execution
  (``runs/metrics``): 1. The same metrics prove that every run succeeded through every node here, so ``_status``
  needs no ``runs/count`` (a batch with a failed, skipped or filtered run is counted: see
  ``test_a_failed_run_is_counted_and_marked``).

Everything else must fit in **3** more: the estimate before spending (a play's ``releases/deployed`` for its node
count, ``segmentation/segments/fetch`` for its record count) and the credits left (``billing/subscriptions``).
The batch's release, read for its node slugs, comes from the client's release cache (read once per release:
here it is the deployed one read before the create).
"""

from collections import Counter

import dagster as dg
import pandas as pd
import pytest

from dagster_cargo import CargoResource

PLAY, TOOL = "Score inbound companies", "Enrich company"


def company(i: int) -> dict:
    return {"_id": f"cmp_rq_{i}", "_title": f"Rq {i}", "domain": f"rq{i}.example", "name": f"Rq {i}",
            "industry": "Software", "employee_count": 5000, "country": "US", "founded_year": 2020,
            "created_at": "2025-03-01T00:00:00.000Z"}


def api_requests(emu) -> tuple[Counter, int]:
    """(requests per (method, path) besides status polls, status polls) of the API (``/v1``)."""
    entries = [e for e in emu.requests() if e["path"].startswith("/v1/")]
    polls = [e for e in entries if e["method"] == "GET" and e["path"].startswith("/v1/orchestration/batches/")
             and not e["path"].endswith("/list")]
    rest = Counter((e["method"], "/releases/<uuid>" if "/releases/" in e["path"] and not e["path"].endswith(
        "deployed") else "/batches/<uuid>/download" if e["path"].endswith("/download") else e["path"].removeprefix(
        "/v1/orchestration")) for e in entries if e not in polls)
    return rest, len(polls)


def materialize(emu, resource: CargoResource, kind: str, n: int) -> int:
    if kind == "tool":
        rows = pd.DataFrame({"domain": [f"c{i}.com" for i in range(n)]})

        @dg.asset(name="enriched")
        def asset(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
            return cargo.run_tool(context, TOOL, rows).materialize_result()
    else:
        emu.store.upsert_records("companies", [company(i) for i in range(n)], snapshot=False)

        @dg.asset(name="scored")
        def asset(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
            return cargo.run_play(context, PLAY, limit=n).materialize_result()
    result = dg.materialize([asset], resources={"cargo": resource})
    assert result.success
    return len(result.output_for_node(asset.node_def.name))


@pytest.mark.parametrize("n", [100, 1_000])
@pytest.mark.parametrize("kind", ["tool", "play"])
def test_requests_per_materialization_are_at_most_the_minimum_plus_three(manual_emulator, cargo_resource, kind, n):
    assert materialize(manual_emulator, cargo_resource(), kind, n) == n
    rest, polls = api_requests(manual_emulator)
    lookup = ("GET", "/tools/list" if kind == "tool" else "/plays/list")
    needed = [lookup, ("GET", "/batches/list"), ("POST", "/batches"), ("POST", "/batches/<uuid>/download"),
              ("POST", "/runs/metrics")] + [("GET", "/releases/deployed")] * (kind == "tool")
    assert all(rest[r] >= 1 for r in needed), rest
    minimum = len(needed) + polls
    sent = sum(rest.values()) + polls
    assert sent <= minimum + 3, (sent, minimum, rest)
    assert rest[("GET", "/releases/<uuid>")] == 0  # the batch's release is the deployed one, read once
    assert rest[("GET", "/batches/list")] == 1 and rest[("POST", "/batches")] == 1
    assert rest[("POST", "/runs/count")] == 0  # every run succeeded, as runs/metrics prove
    assert not any("users/current" in path for _, path in rest)


def test_a_failed_run_is_counted_and_marked(manual_emulator, cargo_resource):
    manual_emulator.plan_failures({"domain=c7.com": "always"})
    rows = pd.DataFrame({"domain": [f"c{i}.com" for i in range(20)]})

    @dg.asset(name="enriched")
    def asset(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, TOOL, rows).materialize_result()

    result = dg.materialize([asset], resources={"cargo": cargo_resource(failed_rows="keep")})
    frame = result.output_for_node("enriched")
    rest, _ = api_requests(manual_emulator)
    assert rest[("POST", "/runs/count")] == 1  # the metrics show an errored execution: the runs are counted
    assert frame["_status"].tolist() == ["error" if i == 7 else "success" for i in range(20)]
