"""Cargo's concurrency as Dagster pools: Cargo assets carry a pool, and ``concurrencyLimitReached`` on create
is waited out (it created nothing) and reported, or ends in a failure that says what to do."""

import dagster as dg
import httpx
import pytest
from cargo_gtm import BusyPolicy, CargoClient, CargoConcurrencyLimitError, records_data
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo import CARGO_POOL, CargoResource, build_cargo_asset, build_cargo_assets_definitions
from dagster_cargo.definitions.workspace_data import CargoWorkflowProps

from ..conftest import TOKEN, make_resource


def resource(emu, **extra) -> CargoResource:
    return make_resource(emu, **extra)


def test_workspace_and_factory_assets_carry_the_cargo_pool(emulator):
    assets = build_cargo_assets_definitions(resource(emulator), selector=["Enrich company", "Score inbound companies"])
    assert CARGO_POOL == "cargo"
    assert [a.op.pool for a in assets] == ["cargo", "cargo"]
    (mine,) = build_cargo_assets_definitions(resource(emulator), selector=["Enrich company"], pool="acme-cargo")
    assert mine.op.pool == "acme-cargo"
    (none,) = build_cargo_assets_definitions(resource(emulator), selector=["Enrich company"], pool=None)
    assert none.op.pool is None
    props = CargoWorkflowProps(type="tool", uuid="t", name="Enrich company", workflow_uuid="w")
    hand = build_cargo_asset(props, dg.AssetSpec(["mine", "enriched"]))
    assert hand.op.pool == "cargo"
    # the pool is what Dagster's run queue and executor see
    job = dg.Definitions(assets=assets, resources={"cargo": resource(emulator)}).resolve_implicit_global_asset_job_def()
    assert {node.definition.pool for node in job.graph.node_dict.values()} == {"cargo"}


# -- the emulator's gate -----------------------------------------------------------------------------------------
def test_the_emulator_refuses_a_create_at_its_concurrency_limit_and_creates_nothing():
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0, concurrency_limit=1) as emu:
        tool = emu.store.tool_by_name("Enrich company")
        body = {"workflowUuid": tool["workflowUuid"], "data": {"kind": "records", "records": [{"domain": "a.com"}]}}
        with httpx.Client(base_url=emu.base_url + "/v1", headers={"authorization": f"Bearer {TOKEN}"}) as http:
            assert http.post("/orchestration/batches", json=body).status_code == 200
            refused = http.post("/orchestration/batches", json=body)
            assert refused.status_code == 400
            assert refused.json() == {"errorMessage": "Concurrency limit reached.", "reason": "concurrencyLimitReached"}
            assert len(emu.batches()) == 1
            emu.advance(60)  # the first batch finishes: the workspace accepts again
            assert http.post("/orchestration/batches", json=body).status_code == 200
            emu.set_concurrency_limit(None)
            assert http.post("/orchestration/batches", json=body).status_code == 200
        assert len(emu.batches()) == 3


# -- the client waits it out -------------------------------------------------------------------------------------
def test_a_refused_create_is_sent_again_after_a_backoff_and_makes_exactly_one_batch():
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0, concurrency_limit=1) as emu:
        slept: list[float] = []

        def sleep(seconds: float) -> None:  # simulated time moves as the client waits
            slept.append(seconds)
            emu.advance(seconds)

        reports: list[str] = []
        with CargoClient(TOKEN, base_url=emu.base_url, sleep=sleep,
                         busy=BusyPolicy(first_delay=2, max_delay=8, max_wait=100)) as client:
            client.busy_report = reports.append
            workflow = client.find_tool("Enrich company").workflow_uuid
            first = client.create_batch(workflow, records_data([{"domain": "acme.com"}]))
            second = client.create_batch(workflow, records_data([{"domain": "hooli.com"}]))
        assert first.uuid != second.uuid
        batches = emu.batches(workflow="Enrich company")
        assert [b.uuid for b in batches] == [first.uuid, second.uuid]
        assert [list(b.inputs) for b in batches] == [[{"domain": "acme.com"}], [{"domain": "hooli.com"}]]
        creates = [r for r in emu.requests("POST", "/v1/orchestration/batches")]
        assert len(creates) == 1 + len(slept) + 1  # the first, each refusal of the second, its success
        assert slept == [2, 4, 8, 8, 8][:len(slept)] and slept  # doubling, capped
        assert len(reports) == len(slept)
        assert "concurrencyLimitReached" in reports[0] and "nothing spent" in reports[0]
        assert "Sending it again in 2s" in reports[0]


def test_the_wait_is_bounded_and_the_failure_says_what_to_do():
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0, concurrency_limit=1) as emu:
        slept: list[float] = []
        with CargoClient(TOKEN, base_url=emu.base_url, sleep=slept.append,  # time never moves: always refused
                         busy=BusyPolicy(first_delay=5, max_delay=60, max_wait=30)) as client:
            workflow = client.find_tool("Enrich company").workflow_uuid
            client.create_batch(workflow, records_data([{"domain": "acme.com"}]))
            with pytest.raises(CargoConcurrencyLimitError) as caught:
                client.create_batch(workflow, records_data([{"domain": "hooli.com"}]))
        assert slept == [5, 10]  # 5 + 10 = 15; one more pause (20) would pass max_wait=30
        assert (caught.value.attempts, caught.value.waited) == (3, 15)
        text = str(caught.value)
        assert "reason=concurrencyLimitReached" in text and "Concurrency limit reached." in text
        assert "dagster instance concurrency set cargo" in text
        assert "3 time(s) over 15s of waiting" in text and "0 credits spent" in text
        assert len(emu.batches()) == 1


def test_an_asset_refused_by_cargo_fails_with_the_figures_and_the_next_step():
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0, concurrency_limit=1) as emu:
        with CargoClient(TOKEN, base_url=emu.base_url) as client:
            client.create_batch(client.find_tool("Enrich company").workflow_uuid, records_data([{"domain": "a.com"}]))
        (asset,) = build_cargo_assets_definitions(resource(emu), selector=["Enrich company"])
        result = dg.materialize([asset], resources={"cargo": resource(emu, concurrency_wait=0)}, raise_on_error=False,
                                run_config={"ops": {"cargo__enrich_company": {"config": {"records": [{"domain": "b.com"}]}}}})
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        error = failure.step_failure_data.error
        message = error.message + (error.cause.message if error.cause else "")
        assert "concurrencyLimitReached" in message and "dagster instance concurrency set cargo" in message
        assert "0 credits spent" in message and "raise concurrency_wait" in message
        assert len(emu.batches()) == 1
