"""Issue 19 item 3: every input checked before the first credit is spent (0 batches created, 0 credits used)."""

import logging
import math

import dagster as dg
import pytest
from cargo_gtm import CargoClient
from cargo_gtm.errors import CargoInputError
from cargo_gtm.inputs.filter_check import check_filter
from cargo_gtm.models import Release

from dagster_cargo import CargoResource
from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions

from ..conftest import TOKEN, make_resource

SCORE_OP = "cargo__score_inbound_companies"


@pytest.fixture
def emulator(manual_emulator):
    return manual_emulator


def run_asset(emu, body):
    @dg.asset
    def subject(context: dg.AssetExecutionContext, cargo: CargoResource):
        return body(context, cargo).materialize_result()

    return dg.materialize([subject], resources={"cargo": make_resource(emu)}, raise_on_error=False)


def error_text(result, node="subject") -> str:
    assert not result.success
    return result.failure_data_for_node(node).error.to_string()


def assert_nothing_spent(emu):
    with CargoClient(TOKEN, base_url=emu.base_url) as c:
        assert c.list_batches() == []
        assert c.get_subscription().subscription_credits_used_count == 0
    assert not [r for r in emu.request_log if r["method"] == "POST" and r["path"] in (
        "/v1/orchestration/batches", "/v1/orchestration/runs")]


# -- output_node_slug against the deployed release ---------------------------------------------------------------
@pytest.mark.parametrize("body", [
    lambda ctx, cargo: cargo.run_play(ctx, "Score inbound companies", limit=3, output_node_slug="scroe"),
    lambda ctx, cargo: cargo.run_tool(ctx, "Enrich company", [{"domain": f"d{i}.com"} for i in range(5)],
                                      output_node_slug="enrich"),
    lambda ctx, cargo: cargo.run_tool(ctx, "Enrich company", [{"domain": "a.com"}], output_node_slug="enrich"),
], ids=["play", "tool-batch", "tool-single-run"])
def test_unknown_output_node_slug_is_refused_before_the_create(emulator, body):
    text = error_text(run_asset(emulator, body))
    assert "is not a node of" in text and "0 credits spent" in text
    assert "'enrich_company'" in text  # the slugs that exist are listed
    assert_nothing_spent(emulator)


def test_output_node_slug_repeated_across_nodes_is_refused_before_the_create(emulator):
    records = [{"domain": f"d{i}.com"} for i in range(4)]
    text = error_text(run_asset(emulator, lambda ctx, cargo: cargo.run_tool(
        ctx, "Normalize domain", records, output_node_slug="variables")))
    assert "Output node slug 'variables' names 2 nodes of tool 'Normalize domain'" in text
    assert "native 'variables' (variables), native 'variables' (variables)" in text
    assert_nothing_spent(emulator)


def test_slug_repeated_across_node_kinds_after_a_redeploy_is_refused(emulator):
    """CARGO-DOCS 15.4: an ``agent`` node (top-level agentUuid, no actionSlug) and a ``variables`` node both
    slugged ``classify``."""
    emulator.redeploy("Enrich company", add_nodes=[
        {"slug": "classify", "kind": "agent", "agentUuid": "agent-123"},
        {"slug": "classify", "kind": "native", "actionSlug": "variables"}], position=2)
    text = error_text(run_asset(emulator, lambda ctx, cargo: cargo.run_tool(
        ctx, "Enrich company", [{"domain": "a.com"}, {"domain": "b.com"}], output_node_slug="classify")))
    assert "names 2 nodes" in text and "agent 'classify' (agent agent-123)" in text
    assert_nothing_spent(emulator)


def test_the_default_seeded_workspace_has_a_slug_repeated_across_kinds_and_a_fallback_node(emulator):
    """CARGO-DOCS 15.4 on the workspace as seeded (no redeploy): the play "Classify inbound companies" has an
    ``agent`` node (top-level agentUuid, no actionSlug, fallbackOnFailure with a fallbackChildUuid) and a
    ``variables`` node, both slugged ``classify``. The ambiguous slug is refused before any spend; the exit node
    resolves past the fallback edge and runs."""
    with CargoClient(TOKEN, base_url=emulator.base_url) as c:
        play = c.find_play("Classify inbound companies")
        release = c.get_deployed_release(play.workflow_uuid)
    agent = next(n for n in release.nodes if n.kind == "agent")
    assert agent.slug == "classify" and agent.action_slug is None and agent.agent_uuid
    assert agent.fallback_on_failure and agent.fallback_child_uuid == release.nodes[2].uuid
    assert [(n.slug, n.kind) for n in release.nodes].count(("classify", "native")) == 1
    ids = {"kind": "recordIds", "modelUuid": play.model_uuid, "ids": ["cmp_0001", "cmp_0002"]}
    text = error_text(run_asset(emulator, lambda ctx, cargo: cargo.run_play(
        ctx, "Classify inbound companies", data=ids, output_node_slug="classify")))
    assert "Output node slug 'classify' names 2 nodes of play 'Classify inbound companies'" in text
    assert f"agent 'classify' (agent {agent.agent_uuid})" in text and "native 'classify' (variables)" in text
    assert_nothing_spent(emulator)
    result = run_asset(emulator, lambda ctx, cargo: cargo.run_play(
        ctx, "Classify inbound companies", data=ids, output_node_slug="end"))
    assert result.success
    meta = result.asset_materializations_for_node("subject")[0].metadata
    assert meta["dagster-cargo/output_node_slug"].value == "end" and meta["dagster/row_count"].value == 2


def test_a_valid_output_node_slug_still_runs(emulator):
    result = run_asset(emulator, lambda ctx, cargo: cargo.run_play(
        ctx, "Score inbound companies", limit=3, output_node_slug="score"))
    assert result.success
    assert result.asset_materializations_for_node("subject")[0].metadata["dagster/row_count"].value == 3


def test_release_nodes_with_fallback_child_and_top_level_tool_uuid_resolve():
    """15.4 fields parse, name the node in messages, and a fallback child is never taken for the root."""
    release = Release.model_validate({"uuid": "r", "workflowUuid": "w", "status": "deployed", "nodes": [
        {"uuid": "n2", "slug": "fallback", "kind": "native", "actionSlug": "variables", "childrenUuids": ["n3"]},
        {"uuid": "n1", "slug": "start", "kind": "native", "actionSlug": "start", "childrenUuids": ["n4"],
         "fallbackChildUuid": "n2"},
        {"uuid": "n4", "slug": "lookup", "kind": "tool", "toolUuid": "tool-9", "childrenUuids": ["n3"]},
        {"uuid": "n3", "slug": "output", "kind": "native", "actionSlug": "end", "childrenUuids": []}]})
    assert release.nodes[1].fallback_child_uuid == "n2"
    assert release.nodes[2].tool_uuid == "tool-9" and release.nodes[2].describe() == "tool 'lookup' (tool tool-9)"
    assert release.output_node().slug == "output"
    from cargo_gtm.inputs.output_node import check_output_node

    check_output_node(release.nodes, "lookup", release_uuid="r", what="tool 'x'")  # unique: passes
    with pytest.raises(CargoInputError, match="'fallback', 'lookup', 'output', 'start'"):
        check_output_node(release.nodes, "nope", release_uuid="r", what="tool 'x'")


# -- launchpad config: filter and record_ids --------------------------------------------------------------------
def test_launchpad_config_with_filter_and_record_ids_is_refused(emulator):
    (play,) = build_cargo_assets_definitions(make_resource(emulator), selector=["Score inbound companies"])
    config = {"record_ids": ["cmp_0001", "cmp_0002"], "filter": {"conjonction": "and", "groups": [
        {"conjonction": "and", "conditions": [
            {"kind": "string", "columnSlug": "country", "operator": "is", "values": ["FR"]}]}]}}
    result = dg.materialize([play], resources={"cargo": make_resource(emulator)}, raise_on_error=False,
                            run_config={"ops": {SCORE_OP: {"config": config}}})
    text = error_text(result, SCORE_OP)
    assert "was given 'record_ids' and 'filter'" in text
    assert "give only one of them" in text
    assert_nothing_spent(emulator)


def test_run_play_with_data_and_filter_is_refused(emulator):
    text = error_text(run_asset(emulator, lambda ctx, cargo: cargo.run_play(
        ctx, "Score inbound companies", data={"kind": "segment", "segmentUuid": "s"},
        filter={"conjonction": "and", "groups": []})))
    assert "was given data= and filter=" in text
    assert_nothing_spent(emulator)


# -- NaN / infinity in a filter ---------------------------------------------------------------------------------
@pytest.mark.parametrize("condition", [
    {"kind": "number", "columnSlug": "employee_count", "operator": "greaterThan", "value": math.nan},
    {"kind": "number", "columnSlug": "employee_count", "operator": "lowerThan", "value": math.inf},
    {"kind": "number", "columnSlug": "employee_count", "operator": "between", "firstValue": 1,
     "lastValue": -math.inf},
], ids=["nan", "inf", "between-minus-inf"])
def test_nan_or_infinite_filter_value_is_refused(emulator, condition):
    flt = {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [condition]}]}
    text = error_text(run_asset(emulator, lambda ctx, cargo: cargo.run_play(ctx, "Score inbound companies",
                                                                           filter=flt, limit=5)))
    assert "Filter at filter.groups[0].conditions[0]" in text and "not a finite number" in text
    assert_nothing_spent(emulator)


def test_nan_inside_an_object_property_condition_is_refused():
    with pytest.raises(CargoInputError, match="not a finite number"):
        check_filter({"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
            {"kind": "objectProperty", "columnSlug": "meta", "propertyName": "x", "operator": "greaterThan",
             "value": float("nan")}]}]})


# -- filter error paths: one path for the same mistake, whichever check finds it ---------------------------------
def test_filter_error_paths_are_the_same_from_every_check(emulator):
    wrong_column = {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
        {"kind": "string", "columnSlug": "contry", "operator": "is", "values": ["FR"]}]}]}
    wrong_key = {"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
        {"kind": "string", "columnSlug": "country", "operator": "is", "value": ["FR"]}]}]}
    texts = [error_text(run_asset(emulator, lambda ctx, cargo, f=f: cargo.run_play(
        ctx, "Score inbound companies", filter=f))) for f in (wrong_column, wrong_key)]
    texts.append(error_text(run_asset(emulator, lambda ctx, cargo: cargo.run_play(
        ctx, "Score inbound companies", data={"kind": "filter", "modelUuid": cargo.get_client().find_play(
            "Score inbound companies").model_uuid, "filter": wrong_key}))))
    for text in texts:
        assert "Filter at filter.groups[0].conditions[0]" in text
        assert "data.filter" not in text
    assert_nothing_spent(emulator)


def test_required_field_message_has_no_doubled_quote(emulator):
    text = error_text(run_asset(emulator, lambda ctx, cargo: cargo.run_tool(
        ctx, "Enrich company", [{"domain": "a.com"}, {"company_name": "x"}])))
    assert "''s" not in text
    assert "no value for the required form field 'domain' of the tool 'Enrich company'" in text


# -- a play's name given to run_tool ------------------------------------------------------------------------------
def test_run_tool_given_a_play_says_use_run_play(emulator):
    text = error_text(run_asset(emulator, lambda ctx, cargo: cargo.run_tool(
        ctx, "Score inbound companies", [{"domain": "a.com"}])))
    assert "that is a play: use run_play" in text
    text = error_text(run_asset(emulator, lambda ctx, cargo: cargo.run_play(ctx, "Enrich company")))
    assert "that is a tool: use run_tool" in text
    assert_nothing_spent(emulator)


# -- record ids Cargo does not know --------------------------------------------------------------------------------
def test_unknown_record_ids_are_a_warning_with_their_count_and_in_metadata(emulator):
    (play,) = build_cargo_assets_definitions(make_resource(emulator), selector=["Score inbound companies"])
    ids = ["cmp_0001", "cmp_0002", "nope_1", "cmp_0003", "nope_2"]
    with dg.instance_for_test() as instance:
        result = dg.materialize([play], resources={"cargo": make_resource(emulator)}, instance=instance,
                                run_config={"ops": {SCORE_OP: {"config": {"record_ids": ids}}}})
        logs = instance.all_logs(result.run_id)
    meta = result.asset_materializations_for_node(SCORE_OP)[0].metadata
    assert meta["dagster-cargo/unknown_record_ids"].value == 2
    assert meta["dagster-cargo/unknown_record_ids_sample"].value == "nope_1, nope_2"
    assert meta["dagster/row_count"].value == 3
    warnings = [e.user_message for e in logs if e.level == logging.WARNING and "record ids given" in e.user_message]
    assert len(warnings) == 1
    assert "2 of 5 record ids given to Cargo play 'Score inbound companies'" in warnings[0]
    assert "(nope_1, nope_2)" in warnings[0]


def test_known_record_ids_record_zero_unknown(emulator):
    (play,) = build_cargo_assets_definitions(make_resource(emulator), selector=["Score inbound companies"])
    result = dg.materialize([play], resources={"cargo": make_resource(emulator)},
                            run_config={"ops": {SCORE_OP: {"config": {"record_ids": ["cmp_0001"]}}}})
    meta = result.asset_materializations_for_node(SCORE_OP)[0].metadata
    assert meta["dagster-cargo/unknown_record_ids"].value == 0
    assert "dagster-cargo/unknown_record_ids_sample" not in meta


def test_op_config_with_data_and_record_ids_is_refused(emulator):
    from dagster_cargo.definitions.ops import cargo_batch_op

    @dg.job
    def job():
        cargo_batch_op()

    result = job.execute_in_process(resources={"cargo": make_resource(emulator)}, raise_on_error=False, run_config={
        "ops": {"cargo_batch_op": {"config": {"workflow": "Score inbound companies", "record_ids": ["cmp_0001"],
                                              "data": {"kind": "segment", "segmentUuid": "s-1"}}}}})
    text = error_text(result, "cargo_batch_op")
    assert "gives data and record_ids" in text and "0 credits spent" in text
    assert_nothing_spent(emulator)
