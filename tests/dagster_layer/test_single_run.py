"""Single-record runs in Dagster: routing by single_run_threshold, the same outputs and metadata as a
one-record batch, exactly once across re-execution, and one-record sensor enrichment end to end.

The emulator's clock is manual and the resource's client waits on a ManualClock that advances it.
"""


from collections.abc import Iterator

import dagster as dg
import pandas as pd
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.running.clock import ManualClock
from cargo_gtm.running.single_run import run_intent
from cargo_gtm_emulator import CargoEmulator

import dagster_cargo.running.resource as resource_module
from dagster_cargo import CargoResource
from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions
from dagster_cargo.definitions.sensors import build_cargo_change_sensor
from dagster_cargo.running.single_run import MODE_KEY, RUN_INTENT_PREFIX, RUN_PREFIX, RUN_UUID_KEY, _tag_key

from ..conftest import TOKEN

TOOL = "Enrich company"
PLAY = "Score inbound companies"
RECORD = {"domain": "acme.example", "company_name": "Acme"}


def make_emulator(rate: float = 0.0) -> CargoEmulator:
    return CargoEmulator(token=TOKEN, clock="manual", seed=1, run_failure_rate=rate, credits=1000)


@pytest.fixture
def emu(monkeypatch) -> Iterator[CargoEmulator]:
    with make_emulator() as e:
        manual(monkeypatch, e)
        yield e


def manual(monkeypatch, emu: CargoEmulator) -> None:
    """Every client the resource makes waits on a manual clock that moves the emulator's time."""
    def client(*args, **kwargs):
        return CargoClient(*args, clock=ManualClock(on_sleep=emu.advance), **kwargs)

    monkeypatch.setattr(resource_module, "CargoClient", client)


def resource(emu: CargoEmulator, **kw) -> CargoResource:
    return CargoResource(api_token=TOKEN, base_url=emu.base_url, **kw)


def tool_asset(records, name: str = "enriched"):
    @dg.asset(name=name)
    def _asset(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, TOOL, records).materialize_result()

    return _asset


def materialize(emu, asset, **kw):
    result = dg.materialize([asset], resources={"cargo": resource(emu, **kw)})
    node = asset.node_def.name
    return result.output_for_node(node), result.asset_materializations_for_node(node)[0].metadata


def standalone_runs(emu):
    return [r for r in emu.runs() if r.batch_uuid is None]


def test_one_record_runs_as_a_single_run_with_the_batch_outputs_and_metadata_keys(emu):
    frame, meta = materialize(emu, tool_asset([RECORD]))
    (run,) = standalone_runs(emu)
    assert not emu.batches() and meta[MODE_KEY].value == "single_run" and meta[RUN_UUID_KEY].value == run.uuid
    batch_frame, batch_meta = materialize(emu, tool_asset([RECORD], "enriched_batch"), single_run_threshold=0)
    assert len(emu.batches()) == 1 and MODE_KEY not in batch_meta
    pd.testing.assert_frame_equal(frame, batch_frame)
    assert set(batch_meta) - set(meta) == {"dagster-cargo/batch_uuid"}  # no batch: its UUID is the run's
    for key in ("dagster-cargo/credits_used", "dagster-cargo/provider_credits", "dagster-cargo/execution_charge",
                "dagster-cargo/counts",
                "dagster/row_count", "dagster-cargo/provider_credits/enrich_company"):
        assert meta[key].value == batch_meta[key].value, key
    assert meta["dagster-cargo/credits_used"].value == pytest.approx(2.03)  # 2 provider + 3 executions x 0.01


def test_credits_used_is_what_the_subscription_lost(emu):
    with CargoClient(TOKEN, base_url=emu.base_url) as c:
        start = c.get_subscription().credits_remaining
        _, meta = materialize(emu, tool_asset([RECORD]))
        lost = round(start - c.get_subscription().credits_remaining, 6)
    assert meta["dagster-cargo/credits_used"].value == lost
    assert meta["dagster-cargo/credits_remaining"].value == pytest.approx(start - lost)


def test_a_failing_record_is_kept_with_cargos_message(monkeypatch):
    with make_emulator(1.0) as emu:
        manual(monkeypatch, emu)
        frame, meta = materialize(emu, tool_asset([RECORD]))
        (run,) = standalone_runs(emu)
    row = frame.to_dict("records")[0]
    assert row["_status"] == "error" and row["_error_message"].startswith("Enrich company failed for record")
    assert meta["dagster-cargo/counts"].value["failed_rows"] == 1 and meta["dagster-cargo/counts"].value["failed_runs_count"] == 1
    assert run.status == "error"


def test_threshold_routes_small_inputs_and_zero_disables(emu):
    records = [{"domain": f"s{i}.example", "company_name": f"S{i}"} for i in range(3)]
    frame, meta = materialize(emu, tool_asset(records), single_run_threshold=3)
    assert len(standalone_runs(emu)) == 3 and not emu.batches() and list(frame["domain"]) == [
        r["domain"] for r in records]
    assert meta["dagster-cargo/counts"].value["runs_count"] == 3
    materialize(emu, tool_asset(records, "more"), single_run_threshold=2)  # over the threshold: a batch
    assert len(emu.batches()) == 1 and len(standalone_runs(emu)) == 3


def test_plays_run_as_batches_whatever_the_threshold(emu):
    @dg.asset
    def scored(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_play(context, PLAY, limit=1).materialize_result()

    _, meta = materialize(emu, scored, single_run_threshold=5)
    assert len(emu.batches()) == 1 and not standalone_runs(emu) and MODE_KEY not in meta


def test_a_refused_single_run_falls_back_to_a_batch(emu, monkeypatch):
    from cargo_gtm.errors import CargoRequestError

    def refused(*a, **kw):
        exc = CargoRequestError.__new__(CargoRequestError)
        Exception.__init__(exc, "Play workflows are not compatible with run creation.")
        exc.reason = "playNotCompatible"
        raise exc

    monkeypatch.setattr(CargoClient, "create_run", refused)
    _, meta = materialize(emu, tool_asset([RECORD]))
    assert len(emu.batches()) == 1 and not standalone_runs(emu) and MODE_KEY not in meta


# ---------------------------------------------------------------------------- exactly once
def test_reexecution_attaches_to_the_earlier_attempts_run(emu, monkeypatch):
    from cargo_gtm.running import RunHandle

    with dg.instance_for_test() as instance:  # the worker dies while waiting (the one step loop polls the handle)
        monkeypatch.setattr(RunHandle, "poll", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("worker lost")))
        first = dg.materialize([tool_asset([RECORD])], resources={"cargo": resource(emu)}, instance=instance,
                               raise_on_error=False)
        assert not first.success and len(standalone_runs(emu)) == 1
        monkeypatch.undo()
        manual(monkeypatch, emu)
        retry = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
        second = dg.materialize([tool_asset([RECORD])], resources={"cargo": resource(emu)}, instance=instance,
                                tags=retry)
    (run,) = standalone_runs(emu)  # exactly one run: no second payment
    meta = second.asset_materializations_for_node("enriched")[0].metadata
    assert meta[RUN_UUID_KEY].value == run.uuid and len(emu.requests("POST", "/v1/orchestration/runs")) == 1
    assert second.output_for_node("enriched")["_status"].tolist() == ["success"]


def test_an_intent_without_a_run_is_resolved_by_content(emu):
    """The first attempt recorded its intent, sent the create and died before recording the run."""
    with dg.instance_for_test() as instance:
        @dg.asset(name="enriched")
        def dies(context: dg.AssetExecutionContext, cargo: CargoResource) -> None:
            client = cargo.get_client()
            wf = client.find_tool(TOOL).workflow_uuid
            key = _tag_key(context, wf, RECORD, 0)
            intent = run_intent(client, wf)
            context.instance.add_run_tags(context.run.run_id, {RUN_INTENT_PREFIX + key[len(RUN_PREFIX):]: intent.to_json()})
            client.create_run(wf, RECORD)
            raise RuntimeError("worker lost after the create")

        first = dg.materialize([dies], resources={"cargo": resource(emu)}, instance=instance, raise_on_error=False)
        assert not first.success
        retry = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
        second = dg.materialize([tool_asset([RECORD])], resources={"cargo": resource(emu)}, instance=instance,
                                tags=retry)
    (run,) = standalone_runs(emu)
    assert second.asset_materializations_for_node("enriched")[0].metadata[RUN_UUID_KEY].value == run.uuid


def test_a_fresh_run_makes_its_own_single_run(emu):
    with dg.instance_for_test() as instance:
        for _ in range(2):
            dg.materialize([tool_asset([RECORD])], resources={"cargo": resource(emu)}, instance=instance)
    assert len(standalone_runs(emu)) == 2  # a new Dagster run is new work, not a retry


# ---------------------------------------------------------------------------- sensor
def company(i: int) -> dict:
    return {"_id": f"cmp_new_{i}", "_title": f"New {i}", "domain": f"new{i}.example", "name": f"New {i}",
            "industry": "Software", "employee_count": 1000 + i, "country": "US", "founded_year": 2020,
            "created_at": "2025-03-01T00:00:00.000Z"}


def test_one_record_segment_change_enriched_by_a_tool_runs_as_a_single_run(emu):
    cargo = resource(emu)
    (enrich,) = build_cargo_assets_definitions(cargo, selector=[TOOL])
    segment_uuid = emu.store.play_by_name(PLAY)["segmentUuid"]
    sensor = build_cargo_change_sensor(enrich, segment_uuid)
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(resources={"cargo": cargo}, instance=instance) as ctx:
            first = sensor(ctx)
        emu.store.upsert_records("companies", [company(1)])  # a change of one added record
        with dg.build_sensor_context(cursor=first.cursor, resources={"cargo": cargo}, instance=instance) as ctx:
            (request,) = sensor(ctx).run_requests
        config = request.run_config["ops"][enrich.node_def.name]["config"]
        assert [r["domain"] for r in config["records"]] == ["new1.example"] and "_id" not in config["records"][0]
        result = dg.materialize([enrich], resources={"cargo": cargo}, instance=instance,
                                run_config=request.run_config, tags=request.tags)
    meta = result.asset_materializations_for_node(enrich.node_def.name)[0].metadata
    (run,) = standalone_runs(emu)
    assert meta[MODE_KEY].value == "single_run" and meta[RUN_UUID_KEY].value == run.uuid and not emu.batches()
    frame = result.output_for_node(enrich.node_def.name)
    assert frame["domain"].tolist() == ["new1.example"] and frame["_status"].tolist() == ["success"]


def test_a_play_change_sensor_still_sends_the_change(emu):
    cargo = resource(emu)
    (play,) = build_cargo_assets_definitions(cargo, selector=[PLAY])
    sensor = build_cargo_change_sensor(play, emu.store.play_by_name(PLAY)["segmentUuid"])
    with dg.build_sensor_context(resources={"cargo": cargo}) as ctx:
        first = sensor(ctx)
    emu.store.upsert_records("companies", [company(2)])
    with dg.build_sensor_context(cursor=first.cursor, resources={"cargo": cargo}) as ctx:
        (request,) = sensor(ctx).run_requests
    config = request.run_config["ops"][play.node_def.name]["config"]
    assert set(config) == {"change_uuid", "change_kinds"}


def test_a_terminated_step_cancels_its_run(emu, monkeypatch):
    from cargo_gtm.running import RunHandle
    from dagster._core.errors import DagsterExecutionInterruptedError

    def terminated(*args, **kwargs):
        raise DagsterExecutionInterruptedError("terminated")

    monkeypatch.setattr(RunHandle, "poll", terminated)
    result = dg.materialize([tool_asset([RECORD])], resources={"cargo": resource(emu)}, raise_on_error=False)
    (run,) = standalone_runs(emu)
    assert not result.success
    # REFERENCE 3.5 (by id)
    (cancel,) = emu.requests("POST", "/v1/orchestration/runs/cancel")
    assert cancel["json"] == {"workflowUuid": run.workflow_uuid, "uuids": [run.uuid]}
    emu.advance(5)
    assert emu.runs()[0].status == "cancelled"


# ---------------------------------------------------------------------------- one step loop
FIVE = [{"domain": f"five{i}.example", "company_name": f"Five {i}"} for i in range(5)]


def test_five_single_runs_over_budget_are_cancelled_mid_run_short_of_the_full_cost(emu):
    """single_run_threshold=5, a budget below the 5 runs' cost: the step loop cancels them while they run."""
    full = 5 * 2.03  # each run: 2 provider credits + 3 node executions x 0.01
    with CargoClient(TOKEN, base_url=emu.base_url) as c:
        start = c.get_subscription().credits_remaining
        result = dg.materialize([tool_asset(FIVE)], resources={"cargo": resource(
            emu, single_run_threshold=5, max_credits_per_batch=3.0, estimate_credits=False)}, raise_on_error=False)
        emu.advance(30)  # let the cancellations end
        spent = round(start - c.get_subscription().credits_remaining, 6)
    runs = standalone_runs(emu)
    assert len(runs) == 5 and not emu.batches() and not result.success
    assert any(r.status == "cancelled" for r in runs), [r.status for r in runs]
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    text = str(failure.event_specific_data.error)
    assert "budget of 3" in text and "dagster-cargo cancelled" in text and "Next step: raise credit_budget" in text
    assert spent < full and spent > 3.0, spent
    (cancel,) = emu.requests("POST", "/v1/orchestration/runs/cancel")  # one request for the runs still running
    assert set(cancel["json"]["uuids"]) <= {r.uuid for r in runs}
