"""A re-executed step attaches to its earlier batch even when the API misbehaves while it looks."""

import dagster as dg
import pandas as pd

from dagster_cargo import CargoResource
from dagster_cargo.client import CargoClient
from dagster_cargo.emulator import CargoEmulator

TOKEN = "tok-reexec-93be01f4"
ROWS = pd.DataFrame({"domain": [f"re{i}.example" for i in range(4)], "company_name": [f"R{i}" for i in range(4)]})


@dg.asset
def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    return cargo.run_tool(context, "Enrich company", ROWS).materialize_result()


def resource(emu: CargoEmulator, **kw) -> CargoResource:
    return CargoResource(api_token=TOKEN, base_url=emu.base_url, poll_interval=0.01, max_poll_interval=0.05,
                         credit_breakdown=False, **kw)


def first_attempt_dies_while_waiting(emu, instance, monkeypatch):
    """The first run creates its batch, then its worker dies; the batch goes on running in Cargo."""
    monkeypatch.setattr(CargoClient, "wait_for_batches",
                        lambda self, uuids, **kw: (_ for _ in ()).throw(RuntimeError("run worker lost")))
    first = dg.materialize([enriched], resources={"cargo": resource(emu)}, instance=instance, raise_on_error=False)
    monkeypatch.undo()
    assert not first.success and len(emu.store.engine.batches) == 1
    return first


def reexecute(emu, instance, first, **kw):
    tags = {"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id}
    return dg.materialize([enriched], resources={"cargo": resource(emu, **kw)}, instance=instance, tags=tags,
                          raise_on_error=False)


def test_reexecution_attaches_when_reading_the_earlier_batch_fails_once(monkeypatch):
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.instance_for_test() as instance:
        first = first_attempt_dies_while_waiting(emu, instance, monkeypatch)
        emu.faults.next("GET /v1/orchestration/batches/*", "server_error", status=503)
        emu.advance(3600)
        second = reexecute(emu, instance, first)
        assert second.success
        assert len(emu.store.engine.batches) == 1  # attached: no second payment


def test_reexecution_attaches_to_a_running_batch_reported_with_an_unknown_status(monkeypatch):
    # the earlier batch is still running; Cargo reports a status this client does not know yet
    # ("paused_for_review"). Unknown must mean "not finished", so the step must wait on that batch,
    # not pay for a second one. Simulated time is frozen: the attached wait ends in a poll timeout,
    # which is fine here; what matters is how many batches exist.
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.instance_for_test() as instance:
        first = first_attempt_dies_while_waiting(emu, instance, monkeypatch)
        (earlier,) = emu.store.engine.batches
        emu.advance(1.5)  # querying: not finished
        emu.faults.next(f"GET /v1/orchestration/batches/{earlier}", "unknown_status")
        reexecute(emu, instance, first, poll_timeout=0.3)
        assert list(emu.store.engine.batches) == [earlier], (
            "a second, paid batch was created while the first was running: "
            + str([(b.uuid, b.status) for b in emu.store.engine.batches.values()]))


def test_reexecution_that_cannot_read_its_earlier_batch_does_not_pay_for_another(monkeypatch):
    # every attempt to read the earlier (still running) batch fails: the step cannot know whether it
    # may attach. Creating a new batch anyway risks paying twice; the package's own rule for an
    # ambiguous create (reconcile.py: "cannot see: do not risk a duplicate") is to stop with a clear error.
    with CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0) as emu, \
            dg.instance_for_test() as instance:
        first = first_attempt_dies_while_waiting(emu, instance, monkeypatch)
        (earlier,) = emu.store.engine.batches
        emu.faults.next(f"GET /v1/orchestration/batches/{earlier}", "server_error", times=5, status=503)
        second = reexecute(emu, instance, first, poll_timeout=0.3, max_retries=4, retry_max_elapsed=5.0)
        assert list(emu.store.engine.batches) == [earlier], "a second, paid batch was created"
        assert not second.success
