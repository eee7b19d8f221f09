"""Both sensors against every batch-list layout the emulator serves (issue 9, item 6).

Cargo documents neither the order of ``batches/list`` nor a ``userUuid`` on batches, and may not echo
``data`` (CARGO-DOCS 7.2, 7.3). The same scenario runs under every combination of the emulator's
``batch_list_order``, ``batch_user_uuid`` and ``batch_data_echo`` variants, with a page size of 2 so that
every listing spans several pages: batches by another user, by Cargo's scheduler, by a Dagster run, and by
the token outside Dagster, finishing out of creation order across ticks. Each must be reported exactly
once or never, as stated, with its bill equal to what the subscription lost for it. Simulated time only
moves when the test (or the package's own polling, through an injected sleep) advances it.
"""

import itertools
import json
from collections import Counter
from contextlib import nullcontext
from functools import partial

import dagster as dg
import httpx
import pandas as pd
import pytest
from cargo_gtm import CargoClient, records_data
from cargo_gtm_emulator import VARIANTS, CargoEmulator

from dagster_cargo import CargoResource
from dagster_cargo.definitions import sensors as sensors_module
from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions
from dagster_cargo.definitions.sensors import build_cargo_change_sensor, build_cargo_observation_sensor

from ..conftest import TOKEN, make_resource

PLAY = "Score inbound companies"
TOOL = "Enrich company"
OTHER_USER = "usr_someone_else_0001"
LAYOUTS = [dict(zip(("batch_list_order", "batch_user_uuid", "batch_data_echo"), combo)) for combo in
           itertools.product(VARIANTS["batch_list_order"], VARIANTS["batch_user_uuid"], VARIANTS["batch_data_echo"])]
IDS = ["-".join(layout.values()) for layout in LAYOUTS]


def resource(emu: CargoEmulator) -> CargoResource:
    """On the emulator's manual clock, the package's polling moves Cargo's clock, not the wall's."""
    return make_resource(emu, poll_interval=1.0, max_poll_interval=5.0)


def company(i: int) -> dict:
    return {"_id": f"cmp_var_{i}", "_title": f"Var {i}", "domain": f"var{i}.example", "name": f"Var {i}",
            "industry": "Software", "employee_count": 1000 + i, "country": "US", "founded_year": 2020,
            "created_at": "2025-03-01T00:00:00.000Z"}


def tick(sensor, emu, cursor, instance):
    with dg.build_sensor_context(cursor=cursor, resources={"cargo": resource(emu)}, instance=instance) as ctx:
        return sensor(ctx)


def as_other_user(emu: CargoEmulator, workflow_uuid: str, rows: list[dict]) -> str:
    """A batch created by another user of the workspace (the emulator's control plane)."""
    response = httpx.post(f"{emu.base_url}/_emulator/batches", headers={"authorization": f"Bearer {TOKEN}"},
                          json={"userUuid": OTHER_USER, "workflowUuid": workflow_uuid,
                                "data": records_data(rows)})
    response.raise_for_status()
    return response.json()["batch"]["uuid"]


def values(event: dg.AssetMaterialization) -> dict:
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def seed(layout: dict) -> int:
    """One emulator seed per layout: the tests share one Dagster instance, and no batch UUID of one test's emulator
    may turn up in another's (the instance's run tags name the batches Dagster created)."""
    return 100 + LAYOUTS.index(layout)


@pytest.fixture(scope="module")
def dagster_instance():
    """One Dagster instance for the module (an in-memory one): building one per test cost more than the test."""
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(sensors_module, "PAGE_SIZE", 2)  # every listing spans several pages


@pytest.mark.parametrize("layout", LAYOUTS, ids=IDS)
def test_observation_sensor_reports_each_foreign_batch_once(layout, small_pages, monkeypatch, dagster_instance):
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0, variants=layout, seed=seed(layout)) as emu:
        assets = build_cargo_assets_definitions(resource(emu), selector=[PLAY, TOOL])
        keys = {a.key for a in assets}
        sensor = build_cargo_observation_sensor(assets)
        with CargoClient(TOKEN, base_url=emu.base_url) as client:
            tool_uuid = client.find_tool(TOOL).workflow_uuid

        @dg.asset
        def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
            rows = pd.DataFrame({"domain": ["dagster-1.example", "dagster-2.example"]})
            return cargo.run_tool(context, TOOL, rows).materialize_result()

        with nullcontext(dagster_instance) as instance:
            start = tick(sensor, emu, None, instance)  # starting point: whatever exists now is old
            assert start.asset_events == []

            other = as_other_user(emu, tool_uuid, [{"domain": "other.example"}, {"domain": "other2.example"}])
            emu.store.upsert_records("companies", [company(1), company(2)], snapshot=False)
            scheduled = emu.run_play_schedule(PLAY)  # Cargo's scheduler (no userUuid)
            first = tick(sensor, emu, start.cursor, instance)  # both still pending: frozen clock
            assert first.asset_events == []

            run = dg.materialize([enriched], resources={"cargo": resource(emu)}, instance=instance)
            assert run.success  # its polling advanced the clock: other, scheduled and Dagster's batch finished
            (dagster_batch,) = [b.uuid for b in emu.batches(workflow=TOOL) if "dagster-1.example" in json.dumps(b.inputs)]
            with CargoClient(TOKEN, base_url=emu.base_url) as client:  # the token's user, outside Dagster
                token_batch = client.create_batch(tool_uuid, records_data([{"domain": "script.example"}])).uuid

            reported: list[dg.AssetMaterialization] = []
            cursor = first.cursor
            for step in range(4):
                if step == 2:
                    emu.advance(600)  # token_batch finishes; a late batch by the other user is created
                    late = as_other_user(emu, tool_uuid, [{"domain": "late.example"}])
                    emu.advance(600)
                emu.request_log.clear()
                result = tick(sensor, emu, cursor, instance)
                metrics_calls = len(emu.requests("POST", "/v1/orchestration/runs/metrics"))
                assert metrics_calls == len(result.asset_events)  # one runs/metrics call per newly observed batch
                reported.extend(result.asset_events)
                cursor = result.cursor

            expected = {other, scheduled, late}
            if layout["batch_user_uuid"] == "absent":  # nothing tells the token's scripts from other users
                expected.add(token_batch)
            uuids = [values(e)["dagster-cargo/batch_uuid"] for e in reported]
            assert Counter(uuids) == Counter(expected)  # each exactly once, never Dagster's own batch
            assert dagster_batch not in uuids

            info = {b.uuid: b for b in emu.batches()}
            for event in reported:
                meta = values(event)
                batch = info[meta["dagster-cargo/batch_uuid"]]
                assert event.asset_key in keys and meta["dagster-cargo/observed"] is True
                lost = batch.provider_credits + batch.executions * 0.01  # what the subscription lost for it
                assert meta["dagster-cargo/credits_used"] == pytest.approx(lost, abs=0.01)
                assert meta["dagster-cargo/provider_credits"] == pytest.approx(batch.provider_credits, abs=1e-9)
                assert meta["dagster-cargo/counts"]["node_executions"] == batch.executions
                assert ("dagster-cargo/data_kind" in meta) == (layout["batch_data_echo"] == "present")
            if layout["batch_data_echo"] == "present":
                assert {values(e)["dagster-cargo/data_kind"] for e in reported} >= {"records", "schedule"}


class ReorderedChanges(httpx.BaseTransport):
    """Loopback HTTP to the emulator, with ``changes/list`` served oldest first or in a scrambled order
    (paged after reordering), as Cargo may: it documents no order for its lists."""

    def __init__(self, order: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.order = order

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/segmentation/changes/list") or self.order == "newest_first":
            return self.inner.handle_request(request)
        params = dict(request.url.params)
        limit, offset = int(params.pop("limit", 1000)), int(params.pop("offset", 0))
        everything = self.inner.handle_request(httpx.Request("GET", request.url.copy_with(
            params={**params, "limit": 100000, "offset": 0}), headers=request.headers))
        everything.read()
        changes = everything.json()["changes"]
        changes = changes[::-1] if self.order == "oldest_first" else sorted(changes, key=lambda c: c["uuid"])
        return httpx.Response(200, json={"changes": changes[offset:offset + limit]})


CHANGE_ORDERS = ("newest_first", "oldest_first", "unordered")


@pytest.mark.parametrize(("layout", "order"), [(layout, CHANGE_ORDERS[i % 3]) for i, layout in enumerate(LAYOUTS)],
                         ids=[f"{name}-changes_{CHANGE_ORDERS[i % 3]}" for i, name in enumerate(IDS)])
def test_change_sensor_launches_each_change_once_in_any_order(layout, order, small_pages, monkeypatch,
                                                              dagster_instance):
    """Every batch layout, and ``changes/list`` in each order (four layouts each)."""
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0, variants=layout, seed=seed(layout)) as emu:
        client_factory = partial(CargoClient, http=httpx.Client(transport=ReorderedChanges(order)))
        monkeypatch.setattr("dagster_cargo.running.resource.CargoClient", client_factory)
        (play_asset,) = build_cargo_assets_definitions(resource(emu), selector=[PLAY])
        segment_uuid = emu.store.play_by_name(PLAY)["segmentUuid"]
        sensor = build_cargo_change_sensor(play_asset, segment_uuid)
        with nullcontext(dagster_instance) as instance:
            cursor = tick(sensor, emu, None, instance).cursor
            made: list[str] = []
            launched: list[str] = []
            for round_ in range(3):
                for i in range(2 * round_ + 1):  # 1, 3 and 5 new changes between ticks: several pages each
                    emu.store.upsert_records("companies", [company(100 * round_ + i)])
                    made.append(emu.store.changes_for(segment_uuid)[-1].wire["uuid"])
                    emu.advance(1)
                result = tick(sensor, emu, cursor, instance)
                launched.extend(r.tags["dagster-cargo/change_uuid"] for r in result.run_requests)
                cursor = result.cursor
            assert tick(sensor, emu, cursor, instance).run_requests == []
            assert launched == made  # each change once, oldest first, none missed
