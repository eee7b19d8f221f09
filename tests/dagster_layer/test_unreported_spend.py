"""What a crash costs (issue 19, item 6): a batch a failed run paid for and no materialization reported.

A run is stopped while its batch runs (terminated with ``cancel_on_termination=False``, as a killed worker
leaves it: the batch keeps running and billing) and is not re-executed. A *new* materialization of the same asset
with the same input then pays again by default, and says so in its log, naming the unreported batch; with
``resume_unreported=True`` (or the run tag) it adopts that batch instead. The unreported-spend sensor lists the
batch until a materialization reports it.
"""

import dagster as dg
import pandas as pd
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.running.handle import BatchHandle
from dagster._core.errors import DagsterExecutionInterruptedError

from dagster_cargo import CargoResource, build_cargo_unreported_spend_sensor

from ..conftest import TOKEN, make_resource

RECORDS = pd.DataFrame({"domain": ["acme.com", "globex.com", "initech.io"],
                        "company_name": ["Acme", "Globex", "Initech"]})


@dg.asset(kinds={"cargo"})
def enriched_once(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    return cargo.run_tool(context, "Enrich company", RECORDS).materialize_result()


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


def crashed_run(emu, instance, monkeypatch, assets=(enriched_once,), run_config=None) -> str:
    """A run of ``assets`` stopped while waiting, its batch left running (as after a kill); returns the batch
    uuid."""
    original = BatchHandle.poll

    def interrupted(self):
        raise DagsterExecutionInterruptedError()

    monkeypatch.setattr(BatchHandle, "poll", interrupted)
    result = dg.materialize(list(assets), instance=instance, raise_on_error=False, run_config=run_config,
                            resources={"cargo": make_resource(emu, cancel_on_termination=False)})
    monkeypatch.setattr(BatchHandle, "poll", original)
    assert not result.success
    assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.FAILURE
    (uuid,) = all_batches(emu)
    return uuid


def all_batches(emu) -> list[str]:
    with CargoClient(TOKEN, base_url=emu.base_url) as client:
        tool = next(t for t in client.list_tools() if t.name == "Enrich company")
        return [b.uuid for b in client.list_all_batches(tool.workflow_uuid)]


def log_text(instance, run_id) -> str:
    return "\n".join(e.user_message for e in instance.all_logs(run_id))


def reported(result, node="enriched_once") -> str:
    (mat,) = result.asset_materializations_for_node(node)
    return str(mat.metadata["dagster-cargo/batch_uuid"].value)


def sensor_reason(emu, instance) -> str:
    sensor = build_cargo_unreported_spend_sensor()
    with dg.build_sensor_context(instance=instance, resources={"cargo": make_resource(emu)}) as ctx:
        return str(sensor(ctx).skip_reason.skip_message)


def test_a_new_materialization_says_it_pays_again_for_an_unreported_batch(manual_emulator, instance, monkeypatch):
    unreported = crashed_run(manual_emulator, instance, monkeypatch)
    assert unreported in sensor_reason(manual_emulator, instance)
    result = dg.materialize([enriched_once], instance=instance, resources={"cargo": make_resource(manual_emulator)})
    assert result.success
    text = log_text(instance, result.run_id)
    assert unreported in text and "no materialization reported it" in text and "resume_unreported" in text
    assert reported(result) != unreported and len(all_batches(manual_emulator)) == 2  # paid again, by default
    assert unreported in sensor_reason(manual_emulator, instance)  # still nobody's


@pytest.mark.parametrize("how", ["resource", "run_tag"])
def test_resume_unreported_adopts_the_batch_instead_of_paying_again(manual_emulator, instance, monkeypatch, how):
    unreported = crashed_run(manual_emulator, instance, monkeypatch)
    resource = make_resource(manual_emulator, resume_unreported=(how == "resource"))
    tags = {"dagster-cargo/resume_unreported": "true"} if how == "run_tag" else None
    result = dg.materialize([enriched_once], instance=instance, resources={"cargo": resource}, tags=tags)
    assert result.success
    assert reported(result) == unreported and all_batches(manual_emulator) == [unreported]
    assert len(result.output_for_node("enriched_once")) == 3
    assert sensor_reason(manual_emulator, instance) == "No unreported spend."


def test_a_run_tag_false_overrides_the_resource(manual_emulator, instance, monkeypatch):
    """The most specific setting wins: the run tag false beats the resource's resume_unreported=True."""
    unreported = crashed_run(manual_emulator, instance, monkeypatch)
    result = dg.materialize([enriched_once], instance=instance, tags={"dagster-cargo/resume_unreported": "false"},
                            resources={"cargo": make_resource(manual_emulator, resume_unreported=True)})
    assert reported(result) != unreported and len(all_batches(manual_emulator)) == 2
