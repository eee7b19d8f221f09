"""``resume_unreported`` per materialization, in the run config of workspace assets (the launchpad), for both asset
factories (``build_cargo_assets_definitions`` and ``CargoWorkspaceComponent``), where ``credit_budget`` lives.

A failed run leaves an unreported batch (stopped while its batch runs, not cancelled: as after a kill). A new
materialization launched with run config ``resume_unreported: true`` adopts it: one batch in Cargo, its credits
paid and reported once. Without it, the new materialization says so in its log and pays again. Run config wins
over the resource's field, both ways.
"""

import dagster as dg
import pytest

from ..conftest import make_resource
from .test_asset_factory import BUILDERS, ENRICH, asset_of, build
from .test_unreported_spend import all_batches, crashed_run, log_text, reported

RECORDS = [{"domain": "acme.com", "company_name": "Acme"}, {"domain": "globex.com", "company_name": "Globex"},
           {"domain": "initech.io", "company_name": "Initech"}]  # 3 records: a batch, not single runs


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "instance").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "instance")) as inst:
        yield inst


def config(tool: dg.AssetsDefinition, **fields) -> dict:
    return {"ops": {tool.node_def.name: {"config": {"records": RECORDS, **fields}}}}


def credits(result, node: str) -> float:
    (mat,) = result.asset_materializations_for_node(node)
    return float(mat.metadata["dagster-cargo/credits_used"].value)


def materialize(tool, resources, instance, run_config):
    result = dg.materialize([tool], resources=resources, instance=instance, run_config=run_config)
    assert result.success
    return result


@pytest.mark.parametrize("how", BUILDERS)
def test_run_config_resume_unreported_adopts_the_batch_a_failed_run_left(how, manual_emulator, instance,
                                                                        monkeypatch, tmp_path):
    assets, resources = build(how, manual_emulator, tmp_path)
    tool = asset_of(assets, ENRICH)
    before = manual_emulator.credits_used
    unreported = crashed_run(manual_emulator, instance, monkeypatch, [tool], config(tool))
    result = materialize(tool, resources, instance, config(tool, resume_unreported=True))
    node = tool.node_def.name
    assert reported(result, node) == unreported and all_batches(manual_emulator) == [unreported]  # 1 batch
    assert len(result.output_for_node(node)) == 3
    spent = round(manual_emulator.credits_used - before, 6)
    assert spent > 0 and credits(result, node) == pytest.approx(spent, abs=1e-6)  # paid once, reported once
    assert "adopts it instead of paying again" in log_text(instance, result.run_id)


@pytest.mark.parametrize("how", BUILDERS)
def test_without_it_the_new_materialization_logs_the_batch_and_pays_again(how, manual_emulator, instance,
                                                                          monkeypatch, tmp_path):
    assets, resources = build(how, manual_emulator, tmp_path)
    tool = asset_of(assets, ENRICH)
    unreported = crashed_run(manual_emulator, instance, monkeypatch, [tool], config(tool))
    result = materialize(tool, resources, instance, config(tool))
    text = log_text(instance, result.run_id)
    assert unreported in text and "no materialization reported it" in text
    assert "run config resume_unreported: true" in text  # says how to adopt it next time
    assert reported(result, tool.node_def.name) != unreported and len(all_batches(manual_emulator)) == 2


@pytest.mark.parametrize(("resource_flag", "run_config_flag", "adopts"), [(True, False, False), (False, True, True)])
def test_run_config_wins_over_the_resource(manual_emulator, instance, monkeypatch, tmp_path, resource_flag,
                                           run_config_flag, adopts):
    assets, _ = build("function", manual_emulator, tmp_path)
    tool = asset_of(assets, ENRICH)
    unreported = crashed_run(manual_emulator, instance, monkeypatch, [tool], config(tool))
    resources = {"cargo": make_resource(manual_emulator, resume_unreported=resource_flag)}
    result = materialize(tool, resources, instance, config(tool, resume_unreported=run_config_flag))
    assert (reported(result, tool.node_def.name) == unreported) is adopts
    assert len(all_batches(manual_emulator)) == (1 if adopts else 2)
