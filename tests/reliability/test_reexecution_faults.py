"""A re-executed step attaches to its earlier batch even when the API misbehaves while it looks."""

import dagster as dg
import pandas as pd
from cargo_gtm import CargoClient
from cargo_gtm.running.handle import BatchHandle
from cargo_gtm_emulator import CargoEmulator

from dagster_cargo import CargoResource

from ..conftest import make_resource

TOKEN = "tok-reexec-93be01f4"
ROWS = pd.DataFrame({"domain": [f"re{i}.example" for i in range(4)], "company_name": [f"R{i}" for i in range(4)]})


@dg.asset
def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    return cargo.run_tool(context, "Enrich company", ROWS).materialize_result()


def resource(emu: CargoEmulator, **kw) -> CargoResource:
    """On a manual-clock emulator the resource waits (polls, retry backoff) on a clock that moves it."""
    return make_resource(emu, **{"api_token": TOKEN, "poll_interval": 0.01, "max_poll_interval": 0.05, "credit_breakdown": False, **kw})


def first_attempt_dies_while_waiting(emu, instance, monkeypatch):
    """The first run creates its batch, then its worker dies; the batch goes on running in Cargo."""
    monkeypatch.setattr(BatchHandle, "poll", lambda self: (_ for _ in ()).throw(RuntimeError("run worker lost")))
    first = dg.materialize([enriched], resources={"cargo": resource(emu)}, instance=instance, raise_on_error=False)
    monkeypatch.undo()
    assert not first.success and len(emu.batches()) == 1
    return first


def reexecute(emu, instance, first, **kw):
    tags = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
    return dg.materialize([enriched], resources={"cargo": resource(emu, **kw)}, instance=instance, tags=tags,
                          raise_on_error=False)


def test_reexecution_attaches_when_reading_the_earlier_batch_fails_once(monkeypatch):
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.DagsterInstance.ephemeral() as instance:
        first = first_attempt_dies_while_waiting(emu, instance, monkeypatch)
        emu.faults.next("GET /v1/orchestration/batches/*", "server_error", status=503)
        emu.advance(3600)
        second = reexecute(emu, instance, first)
        assert second.success
        assert len(emu.batches()) == 1  # attached: no second payment


def test_reexecution_attaches_to_a_running_batch_reported_with_an_unknown_status(monkeypatch):
    # the earlier batch is still running; Cargo reports a status this client does not know yet
    # ("paused_for_review"). Unknown must mean "not finished", so the step must wait on that batch,
    # not pay for a second one. Simulated time is frozen: the attached wait ends in a poll timeout,
    # which is fine here; what matters is how many batches exist.
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.DagsterInstance.ephemeral() as instance:
        first = first_attempt_dies_while_waiting(emu, instance, monkeypatch)
        (earlier,) = [b.uuid for b in emu.batches()]
        emu.advance(1.5)  # querying: not finished
        emu.faults.next(f"GET /v1/orchestration/batches/{earlier}", "unknown_status")
        reexecute(emu, instance, first, poll_timeout=0.3)
        assert [b.uuid for b in emu.batches()] == [earlier], (
            "a second, paid batch was created while the first was running: "
            + str([(b.uuid, b.status) for b in emu.batches()]))


def test_reexecution_that_cannot_read_its_earlier_batch_does_not_pay_for_another(monkeypatch):
    # every attempt to read the earlier (still running) batch fails: the step cannot know whether it
    # may attach. Creating a new batch anyway risks paying twice; the package's own rule for an
    # ambiguous create (reconcile.py: "cannot see: do not risk a duplicate") is to stop with a clear error.
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.DagsterInstance.ephemeral() as instance:
        first = first_attempt_dies_while_waiting(emu, instance, monkeypatch)
        (earlier,) = [b.uuid for b in emu.batches()]
        emu.faults.next(f"GET /v1/orchestration/batches/{earlier}", "server_error", times=5, status=503)
        second = reexecute(emu, instance, first, poll_timeout=0.3, max_retries=4, retry_max_elapsed=5.0)
        assert [b.uuid for b in emu.batches()] == [earlier], "a second, paid batch was created"
        assert not second.success


# ---------------------------------------------------------------------------- every re-execution path attaches
def test_a_step_retry_attaches_to_the_batch_its_first_try_created(monkeypatch):
    calls = {"n": 0}
    original = BatchHandle.poll

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("worker hiccup")
        return original(self)

    monkeypatch.setattr(BatchHandle, "poll", flaky)

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=1))
    def retried(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", ROWS).materialize_result()

    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([retried], resources={"cargo": resource(emu)}, instance=instance,
                                raise_on_error=False)
        assert result.success and calls["n"] >= 2  # the first try died at its first poll; the retry polled on
        assert len(emu.batches()) == 1


def _python_api_world(tmp_path, monkeypatch):
    from cargo_fault_suite.jobs import TOKEN_ENV, resource_config

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path))

    def run_config(emu):
        return {"ops": {"tool_0": {"config": {"index": 0, "domains": list(ROWS["domain"])}}},
                "resources": resource_config(emu.base_url, poll_interval=0.01, max_poll_interval=0.05,
                                             credit_breakdown=False)}

    return instance, run_config


def test_execute_job_with_reexecution_options_attaches(tmp_path, monkeypatch):
    # runs re-executed through the Python API carry root_run_id/parent_run_id on the run, not as tags
    from cargo_fault_suite.jobs import single_tool_job

    instance, run_config = _python_api_world(tmp_path, monkeypatch)
    # real time (marked slow in tests/conftest.py): execute_job rebuilds the job from its module and the resource
    # from run config, so no clock can be injected into it
    with CargoEmulator(token=TOKEN, speed=200.0, run_failure_rate=0.0) as emu, instance:
        monkeypatch.setattr(BatchHandle, "poll", lambda self: (_ for _ in ()).throw(RuntimeError("run worker lost")))
        with dg.execute_job(dg.reconstructable(single_tool_job), instance=instance,
                            run_config=run_config(emu)) as first:
            assert not first.success
        monkeypatch.undo()
        monkeypatch.setenv("DAGSTER_CARGO_SUITE_TOKEN", TOKEN)
        options = dg.ReexecutionOptions.from_failure(first.run_id, instance)
        with dg.execute_job(dg.reconstructable(single_tool_job), instance=instance, run_config=run_config(emu),
                            reexecution_options=options) as second:
            assert second.success
            run = instance.get_run_by_id(second.run_id)
            assert run.root_run_id == first.run_id and run.parent_run_id == first.run_id
        assert len(emu.batches()) == 1  # attached: paid once, not twice


def test_an_intent_without_a_batch_is_resolved_by_content_and_twins_are_named(monkeypatch):
    """The first attempt dies between the create and tagging the run: only its intent is recorded. A twin with the
    same input appears meanwhile: the re-execution cannot tell which is its own, so it stops, names both and records
    them on the run. Once the user cancels the twin, the next re-execution adopts the remaining one."""
    from cargo_gtm import records_data
    from cargo_gtm.inputs.records import to_json_records

    original = CargoClient.create_batches

    def dies_before_tagging(self, workflow_uuid, datas, **kw):
        kw["on_created"] = kw["on_created_many"] = None  # the batches are never recorded
        original(self, workflow_uuid, datas, **kw)
        raise RuntimeError("run worker lost")

    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, dg.DagsterInstance.ephemeral() as instance:
        # Cargo's time moves only while the client waits: the resource's manual clock advances the emulator
        monkeypatch.setattr(CargoClient, "create_batches", dies_before_tagging)
        first = dg.materialize([enriched], resources={"cargo": resource(emu)}, instance=instance,
                               raise_on_error=False)
        monkeypatch.setattr(CargoClient, "create_batches", original)
        assert not first.success
        tags = instance.get_run_by_id(first.run_id).tags
        assert any(k.startswith("dagster-cargo/intent.") for k in tags)
        assert not any(k.startswith("dagster-cargo/batch.") for k in tags)
        (mine,) = [b.uuid for b in emu.batches()]
        with CargoClient(TOKEN, base_url=emu.base_url) as client:
            wf = str(emu.store.tool_by_name("Enrich company")["workflowUuid"])
            twin = client.create_batch(wf, records_data(to_json_records(ROWS)), reconcile=False).uuid
        second = reexecute(emu, instance, first)
        assert not second.success
        text = second.failure_data_for_node("enriched").error.to_string()
        assert mine in text and twin in text and "Next step" in text
        recorded = [v for k, v in instance.get_run_by_id(second.run_id).tags.items()
                    if k.startswith("dagster-cargo/candidates.")]
        assert recorded and set(recorded[0].split(",")) == {mine, twin}
        assert len(emu.batches()) == 2  # nothing created while it could not tell
        with CargoClient(TOKEN, base_url=emu.base_url) as client:
            client.cancel_batch(twin)
        third = reexecute(emu, instance, first)
        assert third.success
        assert len(emu.batches()) == 2
        assert instance.get_run_by_id(third.run_id).tags and mine in str(third.asset_materializations_for_node(
            "enriched")[0].metadata)
