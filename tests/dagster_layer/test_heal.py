"""Heal failed records (``retry_failed``): only the failed records run again, each retry batch exactly once,
rows merged in input order, credits that match what the subscription lost. Against the emulator's failure
plan over loopback, with a manual clock (simulated time moves as the client waits)."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.running.clock import ManualClock
from cargo_gtm.running.handle import BatchHandle
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo import CargoResource
from dagster_cargo.definitions.heal_job import build_cargo_heal_job
from dagster_cargo.running.heal import HEAL_KEYS

from ..conftest import TOKEN

ROWS = pd.DataFrame({"domain": [f"site{i}.com" for i in range(10)], "company_name": [f"S{i}" for i in range(10)]})
_EMULATORS: dict[str, CargoEmulator] = {}


class ClockedCargo(CargoResource):
    """The resource, its client on a manual clock that advances the emulator while it waits."""

    def get_client(self) -> CargoClient:
        if self._client is None:
            emu = _EMULATORS[self.base_url]
            self._client = CargoClient(TOKEN, base_url=self.base_url, clock=ManualClock(on_sleep=emu.advance))
        return self._client


@pytest.fixture()
def emu() -> Iterator[CargoEmulator]:
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as e:
        _EMULATORS[e.base_url] = e
        yield e
        del _EMULATORS[e.base_url]


def cargo(emu: CargoEmulator, **kw: Any) -> ClockedCargo:
    return ClockedCargo(api_token=TOKEN, base_url=emu.base_url, poll_interval=1.0, max_poll_interval=5.0, **kw)


def tool_asset(retry_failed: int, **kw: Any) -> dg.AssetsDefinition:
    @dg.asset(name="enriched")
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", ROWS, retry_failed=retry_failed, **kw).materialize_result()

    return enriched


def meta(result: Any, node: str = "enriched") -> dict[str, Any]:
    mat = result.asset_materializations_for_node(node)[0]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def domains(batch: Any) -> list[str]:
    return [r["domain"] for r in batch.inputs]


def test_a_tool_batch_heals_its_failed_records_and_retries_hold_exactly_them(emu: CargoEmulator) -> None:
    emu.plan_failures({"domain=site3.com": 1, "domain=site7.com": 2})
    result = dg.materialize([tool_asset(2)], resources={"cargo": cargo(emu)})
    frame = result.output_for_node("enriched")
    assert list(frame["domain"]) == list(ROWS["domain"])  # every input record once, in input order
    assert set(frame["_status"]) == {"success"} and frame["industry"].notna().all()
    original, round1, round2 = emu.batches("Enrich company")
    assert domains(original) == list(ROWS["domain"]) and original.failed_runs_count == 2
    assert domains(round1) == ["site3.com", "site7.com"]  # exactly the failed records
    assert domains(round2) == ["site7.com"]  # exactly those still failing
    assert round2.failed_runs_count == 0
    md = meta(result)
    assert set(HEAL_KEYS) <= set(md)
    assert md["dagster-cargo/records_healed"] == 2 and md["dagster-cargo/records_still_failing"] == 0
    assert md["dagster-cargo/retry_rounds"] == 2
    assert md["dagster-cargo/retry_batch_uuids"] == f"{round1.uuid};{round2.uuid}"
    assert md["dagster-cargo/batch_uuid"] == original.uuid and md["dagster-cargo/counts"]["batch_count"] == 3
    assert md["dagster-cargo/counts"]["failed_rows"] == 0 and md["dagster-cargo/counts"]["input_records"] == 10
    # credits include the retries and match what the subscription lost
    assert md["dagster-cargo/credits_used"] == pytest.approx(emu.credits_used, abs=1e-6)
    retry = sum(b.provider_credits + 0.01 * b.executions for b in (round1, round2))
    assert md["dagster-cargo/retry_credits"] == pytest.approx(retry, abs=1e-6) and retry > 0


def test_records_failing_forever_stay_error_and_each_round_gets_its_own_batch(emu: CargoEmulator) -> None:
    emu.plan_failures({"domain=site2.com": "always"})
    result = dg.materialize([tool_asset(2)], resources={"cargo": cargo(emu)})
    frame = result.output_for_node("enriched")
    assert list(frame["domain"]) == list(ROWS["domain"])
    assert frame.loc[frame["domain"] == "site2.com", "_status"].item() == "error"
    assert "Provider returned an invalid payload" in frame.loc[frame["domain"] == "site2.com", "_error_message"].item()
    assert (frame["_status"] == "success").sum() == 9
    original, round1, round2 = emu.batches("Enrich company")
    # round 2 re-runs the same subset as round 1: a batch of its own, not an attach to round 1's
    assert domains(round1) == domains(round2) == ["site2.com"] and round1.uuid != round2.uuid
    md = meta(result)
    assert md["dagster-cargo/records_healed"] == 0 and md["dagster-cargo/records_still_failing"] == 1
    assert md["dagster-cargo/counts"]["failed_rows"] == 1
    assert md["dagster-cargo/credits_used"] == pytest.approx(emu.credits_used, abs=1e-6)


def test_reexecution_attaches_to_every_retry_batch_instead_of_paying_again(emu: CargoEmulator, monkeypatch) -> None:
    emu.plan_failures({"domain=site2.com": "always"})
    real_start = BatchHandle.start
    calls = {"n": 0}

    def dies_in_round_2(self: BatchHandle) -> Any:
        report = real_start(self)  # the batch is created (and recorded on the run) ...
        calls["n"] += 1
        if calls["n"] == 3:  # ... original, round 1, then the worker is lost while round 2 runs
            raise RuntimeError("run worker lost")
        return report

    with dg.instance_for_test() as instance:
        monkeypatch.setattr(BatchHandle, "start", dies_in_round_2)
        first = dg.materialize([tool_asset(2)], resources={"cargo": cargo(emu)}, instance=instance,
                               raise_on_error=False)
        assert not first.success and len(emu.batches()) == 3
        monkeypatch.undo()
        emu.advance(600)
        tags = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
        second = dg.materialize([tool_asset(2)], resources={"cargo": cargo(emu)}, instance=instance, tags=tags)
        before = emu.credits_used
        assert len(emu.batches()) == 3  # original and both rounds attached to: nothing created twice
        md = meta(second)
        assert md["dagster-cargo/retry_rounds"] == 2 and md["dagster-cargo/records_still_failing"] == 1
        assert md["dagster-cargo/credits_used"] == pytest.approx(before, abs=1e-6)
        tags_now = instance.get_run_by_id(second.run_id).tags  # type: ignore[union-attr]
        assert {"dagster-cargo/batch_uuid.enriched.heal1", "dagster-cargo/batch_uuid.enriched.heal2"} <= set(tags_now)


def test_a_play_heals_by_record_ids(emu: CargoEmulator) -> None:
    play = emu.store.play_by_name("Score inbound companies")
    ids = [f"cmp_{i:04d}" for i in range(1, 7)]
    emu.plan_failures({"cmp_0004": 1}, workflow="Score inbound companies")

    @dg.asset
    def scored(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        data = {"kind": "recordIds", "modelUuid": play["modelUuid"], "ids": ids}
        return cargo.run_play(context, "Score inbound companies", data=data, retry_failed=1).materialize_result()

    result = dg.materialize([scored], resources={"cargo": cargo(emu)})
    frame = result.output_for_node("scored")
    assert list(frame["_id"]) == ids and set(frame["_status"]) == {"success"}
    original, retry = emu.batches("Score inbound companies")
    assert list(original.record_ids) == ids and original.failed_runs_count == 1
    assert retry.data_kind == "recordIds" and list(retry.record_ids) == ["cmp_0004"]
    assert retry.wire["data"] == {"kind": "recordIds", "modelUuid": play["modelUuid"], "ids": ["cmp_0004"]}
    md = meta(result, "scored")
    assert md["dagster-cargo/records_healed"] == 1 and md["dagster-cargo/records_still_failing"] == 0
    assert md["dagster-cargo/credits_used"] == pytest.approx(emu.credits_used, abs=1e-6)


def test_failed_rows_policy_applies_after_healing(emu: CargoEmulator) -> None:
    emu.plan_failures({"domain=site2.com": "always", "domain=site4.com": 1})
    dropped = dg.materialize([tool_asset(1)], resources={"cargo": cargo(emu, failed_rows="drop")})
    frame = dropped.output_for_node("enriched")
    assert "site2.com" not in set(frame["domain"]) and len(frame) == 9 and set(frame["_status"]) == {"success"}
    assert meta(dropped)["dagster-cargo/records_healed"] == 1
    emu.plan_failures({"domain=site2.com": "always"})
    failed = dg.materialize([tool_asset(1)], resources={"cargo": cargo(emu, failed_rows="fail")}, raise_on_error=False)
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type_value == "STEP_FAILURE")
    assert "still failed after 1 heal round" in str(failure.event_specific_data)


def test_the_budget_covers_the_original_and_the_retries(emu: CargoEmulator) -> None:
    emu.plan_failures({"domain=site2.com": "always"})
    plain = dg.materialize([tool_asset(0)], resources={"cargo": cargo(emu)})
    cost = meta(plain)["dagster-cargo/credits_used"]
    emu.reset()
    emu.plan_failures({"domain=site2.com": "always"})
    result = dg.materialize([tool_asset(3, credit_budget=cost + 0.5)], resources={"cargo": cargo(emu)})
    md = meta(result)
    assert md["dagster-cargo/retry_rounds"] == 0 and len(emu.batches()) == 1  # a retry would exceed it
    assert md["dagster-cargo/records_still_failing"] == 1


def test_heal_after_the_fact_from_the_assets_last_materialization(emu: CargoEmulator) -> None:
    emu.plan_failures({"domain=site3.com": 1, "domain=site8.com": 1})
    with dg.instance_for_test() as instance:
        dg.materialize([tool_asset(0)], resources={"cargo": cargo(emu)}, instance=instance)
        (original,) = emu.batches()
        paid = emu.credits_used
        job = build_cargo_heal_job(resource_defs={"cargo": cargo(emu)})
        run = job.execute_in_process(instance=instance, run_config={
            "ops": {"cargo_heal_op": {"config": {"asset_key": "enriched", "retry_failed": 2}}}})
        frame = run.output_for_node("cargo_heal_op")
        assert list(frame["domain"]) == list(ROWS["domain"]) and set(frame["_status"]) == {"success"}
        _, retry = emu.batches()
        assert domains(retry) == ["site3.com", "site8.com"]
        out = next(e for e in run.all_events if e.event_type_value == "STEP_OUTPUT")
        md = {k: getattr(v, "value", v) for k, v in out.event_specific_data.metadata.items()}  # type: ignore[union-attr]
        assert md["dagster-cargo/records_healed"] == 2 and md["dagster-cargo/healed_batch_uuids"] == original.uuid
        assert md["dagster-cargo/credits_used"] == pytest.approx(emu.credits_used - paid, abs=1e-6)
        assert md["dagster-cargo/retry_credits"] == pytest.approx(emu.credits_used - paid, abs=1e-6)


def test_heal_a_play_batch_after_the_fact_by_uuid(emu: CargoEmulator) -> None:
    play = emu.store.play_by_name("Score inbound companies")
    emu.plan_failures({"cmp_0002": 1, "cmp_0005": "always"}, workflow="Score inbound companies")
    with CargoClient(TOKEN, base_url=emu.base_url, clock=ManualClock(on_sleep=emu.advance)) as client:
        batch = client.create_batch(play.get("workflowUuid"), {"kind": "recordIds", "modelUuid": play["modelUuid"],
                                                               "ids": ["cmp_0001", "cmp_0002", "cmp_0005"]})
        client.wait_for_batch(batch.uuid)
    job = build_cargo_heal_job(resource_defs={"cargo": cargo(emu)})
    run = job.execute_in_process(run_config={"ops": {"cargo_heal_op": {"config": {"batch_uuid": batch.uuid,
                                                                                  "retry_failed": 2}}}})
    frame = run.output_for_node("cargo_heal_op")
    assert list(frame["_id"]) == ["cmp_0001", "cmp_0002", "cmp_0005"]
    assert list(frame["_status"]) == ["success", "success", "error"]
    _, round1, round2 = emu.batches()
    assert list(round1.record_ids) == ["cmp_0002", "cmp_0005"] and list(round2.record_ids) == ["cmp_0005"]


def test_workspace_asset_run_config_takes_retry_failed(emu: CargoEmulator) -> None:
    from dagster_cargo import build_cargo_assets_definitions

    emu.plan_failures({"domain=a1.io": 1})
    (asset,) = build_cargo_assets_definitions(cargo(emu), selector=["Enrich company"])
    records = [{"domain": f"a{i}.io"} for i in range(4)]
    op_name = asset.op.name
    result = dg.materialize([asset], resources={"cargo": cargo(emu)}, run_config={
        "ops": {op_name: {"config": {"records": records, "retry_failed": 1}}}})
    frame = result.output_for_node(op_name)
    assert list(frame["domain"]) == [r["domain"] for r in records] and set(frame["_status"]) == {"success"}
    _, retry = emu.batches()
    assert domains(retry) == ["a1.io"]
    assert meta(result, op_name)["dagster-cargo/records_healed"] == 1


def test_a_negative_retry_count_is_refused_before_any_batch(emu: CargoEmulator) -> None:
    failed = dg.materialize([tool_asset(-1)], resources={"cargo": cargo(emu)}, raise_on_error=False)
    assert not failed.success and emu.batches() == []
