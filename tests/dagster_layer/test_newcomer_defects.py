"""Issue 21 item 3, the code defects a newcomer met: credit labels, failed records named by their input, the
resource's description in Markdown, and ``dagster-cargo/output_node_slug`` on every materialization."""

import logging
import re

import dagster as dg
from cargo_fault_suite.report import FaultReport

from dagster_cargo import CargoResource
from dagster_cargo.definitions.asset_defs import build_cargo_assets_definitions
from dagster_cargo.running.resource import CargoResource as _Resource

from ..conftest import make_resource


def materialize_logged(emu, body, **resource_kw):
    @dg.asset
    def subject(context: dg.AssetExecutionContext, cargo: CargoResource):
        return body(context, cargo).materialize_result()

    with dg.instance_for_test() as instance:
        result = dg.materialize([subject], resources={"cargo": make_resource(emu, **resource_kw)},
                                instance=instance)
        logs = [(e.level, e.user_message) for e in instance.all_logs(result.run_id) if e.user_message]
    return result, logs


# -- credits: provider-only figures are labelled, "credits" alone is the bill -------------------------------------
def test_progress_lines_label_provider_credits_and_the_summary_gives_the_split(manual_emulator):
    records = [{"domain": f"d{i}.com"} for i in range(16)]
    result, logs = materialize_logged(manual_emulator, lambda ctx, cargo: cargo.run_tool(ctx, "Enrich company", records),
                                      progress_log_interval=0.0)
    progress = [m for _, m in logs if re.search(r"runs executed", m)]
    assert progress, logs
    assert all("provider credits so far" in m for m in progress)
    assert not [m for m in progress if re.search(r"\d credits", m)]  # no unlabelled figure
    (summary,) = [m for _, m in logs if "output rows" in m]
    meta = result.asset_materializations_for_node("subject")[0].metadata
    total = meta["dagster-cargo/credits_used"].value
    provider = meta["dagster-cargo/provider_credits"].value
    assert total > provider  # the execution charge is in the bill
    assert f"{total:g} credits ({provider:g} provider + " in summary
    last = progress[-1]
    assert f"{provider:g} provider credits so far" in last  # the progress figure is the provider part of it


def test_fault_report_labels_its_provider_only_credit_figure():
    report = FaultReport(materializations=2, concurrency=1, seed=1, profile="none", succeeded=2, failed_clear=0,
                         failed_unclear=0, duplicate_batches=0, batches=2, credits_spent=2500, credits_expected=2500,
                         token_leaks=0, searched={}, missing_rows=0, faults={}, wall_seconds=1.0)
    text = report.render()
    line = next(line for line in text.splitlines() if "2500 / 2500" in line)
    assert line.strip().startswith("Provider credits spent / expected")
    assert "provider credits only: before Cargo's execution charge" in line


# -- a failed record is named by its input --------------------------------------------------------------------------
def test_failed_tool_record_is_named_by_its_input_not_an_opaque_id(flaky_emulator):
    records = [{"domain": f"d{i}.com", "company_name": f"Co {i}"} for i in range(12)]
    result, logs = materialize_logged(flaky_emulator, lambda ctx, cargo: cargo.run_tool(ctx, "Enrich company", records))
    frame = result.output_for_node("subject")
    failed = frame.index[frame["_status"] == "error"]
    assert len(failed), "the flaky emulator fails a quarter of the runs"
    first = int(failed[0])
    (warning,) = [m for level, m in logs if level == logging.WARNING and "input records failed" in m]
    assert f"first: domain='d{first}.com', input row {first}: \"" in warning
    assert warning.index("domain=") < warning.index("rec_")  # Cargo's own message (with its id) comes after


def test_failed_play_record_is_named_by_its_domain(flaky_emulator):
    result, logs = materialize_logged(flaky_emulator, lambda ctx, cargo: cargo.run_play(
        ctx, "Score inbound companies", limit=20))
    frame = result.output_for_node("subject")
    failed = frame.index[frame["_status"] == "error"]
    assert len(failed)
    domain = frame["domain"].iloc[int(failed[0])]
    (warning,) = [m for level, m in logs if level == logging.WARNING and "input records failed" in m]
    assert f"first: domain={domain!r}, input row {int(failed[0])}" in warning


# -- the resource's description renders as Markdown ----------------------------------------------------------------
def test_resource_description_is_markdown_not_rst():
    description = _Resource(api_token=dg.EnvVar("CARGO_API_TOKEN")).get_resource_definition().description
    assert ".. code-block" not in description
    assert "```python" in description and description.rstrip().endswith("```")
    assert "cargo.run_play(context, \"Score inbound companies\", limit=100)" in description


# -- dagster-cargo/output_node_slug: what ran, as the README's metadata table says --------------------------------
def output_node_of(result, node="subject"):
    meta = result.asset_materializations_for_node(node)[0].metadata
    value = meta.get("dagster-cargo/output_node_slug")
    return getattr(value, "value", value)


def test_materializations_write_the_output_node_slug(manual_emulator):
    emu = manual_emulator
    default, _ = materialize_logged(emu, lambda ctx, cargo: cargo.run_play(ctx, "Score inbound companies", limit=2))
    assert output_node_of(default) == "output"  # Cargo's default: the release's last node
    named, _ = materialize_logged(emu, lambda ctx, cargo: cargo.run_play(
        ctx, "Score inbound companies", limit=2, output_node_slug="score"))
    assert output_node_of(named) == "score"
    tool, _ = materialize_logged(emu, lambda ctx, cargo: cargo.run_tool(
        ctx, "Enrich company", [{"domain": f"d{i}.com"} for i in range(3)]))
    assert output_node_of(tool) == "output"
    single, _ = materialize_logged(emu, lambda ctx, cargo: cargo.run_tool(ctx, "Enrich company", [{"domain": "a.com"}]))
    assert output_node_of(single) == "output"


def test_workspace_asset_writes_the_output_node_slug_from_its_snapshot(manual_emulator):
    (play,) = build_cargo_assets_definitions(make_resource(manual_emulator), selector=["Qualify inbound companies"])
    result = dg.materialize([play], resources={"cargo": make_resource(manual_emulator)},
                            run_config={"ops": {"cargo__qualify_inbound_companies": {"config": {"limit": 3}}}})
    assert output_node_of(result, "cargo__qualify_inbound_companies") == "end"
