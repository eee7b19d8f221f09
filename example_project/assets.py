"""The example's hand-written assets: sign-ups → tool enrichment (with checks, eager
automation); a play over ICP companies; a daily-partitioned play over a date window."""

import dagster as dg
import pandas as pd

from dagster_cargo import (
    CargoCheckConfig,
    CargoResource,
    cargo_check_specs,
    cargo_workflow_metadata,
    partition_window_filter,
)

ENRICH_TOOL = "Enrich company"
SCORING_PLAY = "Score inbound companies"
ENRICHMENT_CHECKS = CargoCheckConfig(failed_ratio_warn=0.05, failed_ratio_error=0.25, max_credits_per_record=5)
DAILY = dg.DailyPartitionsDefinition(start_date="2026-10-01")

_SIGNUPS = [
    ("acme.com", "Acme"), ("globex.com", "Globex"), ("initech.io", "Initech"), ("umbrella.co", "Umbrella"),
    ("hooli.com", "Hooli"), ("piedpiper.com", "Pied Piper"), ("stark.io", "Stark Industries"),
    ("wayne.co", "Wayne Enterprises"), ("wonka.com", "Wonka"), ("cyberdyne.ai", "Cyberdyne"),
    ("tyrell.ai", "Tyrell"), ("soylent.co", "Soylent"), ("vandelay.com", "Vandelay Industries"),
    ("dundermifflin.com", "Dunder Mifflin"), ("gringotts.io", "Gringotts"), ("oscorp.com", "Oscorp"),
]
_CONTACTS = [
    ("Ada", "Lovelace", "acme.com"), ("Grace", "Hopper", "globex.com"), ("Alan", "Turing", "initech.io"),
    ("Katherine", "Johnson", "hooli.com"), ("Linus", "Torvalds", "piedpiper.com"),
]


@dg.asset(kinds={"pandas"}, group_name="gtm", description="Inbound sign-ups from the product (stand-in for a warehouse table).")
def inbound_signups() -> dg.MaterializeResult:
    frame = pd.DataFrame(_SIGNUPS, columns=["domain", "company_name"])
    frame["signed_up_at"] = pd.date_range("2025-01-06", periods=len(frame), freq="6h", tz="UTC")
    return dg.MaterializeResult(value=frame, metadata={"dagster/row_count": len(frame)})


@dg.asset(kinds={"pandas"}, group_name="gtm", description="New contacts to find work emails for.")
def new_contacts() -> dg.MaterializeResult:
    frame = pd.DataFrame(_CONTACTS, columns=["first_name", "last_name", "domain"])
    return dg.MaterializeResult(value=frame, metadata={"dagster/row_count": len(frame)})


@dg.asset(
    kinds={"cargo", "pandas"},
    group_name="gtm",
    description=f"Sign-ups enriched by the Cargo tool {ENRICH_TOOL!r}; re-runs whenever sign-ups change.",
    check_specs=cargo_check_specs("enriched_signups", ENRICHMENT_CHECKS),
    automation_condition=dg.AutomationCondition.eager(),
    metadata=cargo_workflow_metadata(ENRICH_TOOL, "tool"),
)
def enriched_signups(context: dg.AssetExecutionContext, cargo: CargoResource, inbound_signups: pd.DataFrame):
    records = inbound_signups[["domain", "company_name"]]
    return cargo.run_tool(context, ENRICH_TOOL, records).materialize_result(checks=ENRICHMENT_CHECKS)


ICP_FILTER = {
    "conjonction": "and",
    "groups": [{"conjonction": "and", "conditions": [
        {"kind": "number", "columnSlug": "employee_count", "operator": "greaterThan", "value": 200},
    ]}],
}


@dg.asset(kinds={"cargo", "pandas"}, group_name="gtm", metadata=cargo_workflow_metadata(SCORING_PLAY, "play"),
          description=f"The Cargo play {SCORING_PLAY!r} run over ICP companies (>200 employees).")
def scored_icp_companies(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    result = cargo.run_play(context, SCORING_PLAY, filter=ICP_FILTER, limit=60)
    return result.materialize_result()


@dg.asset(
    kinds={"cargo", "pandas"},
    group_name="gtm",
    partitions_def=DAILY,
    metadata=cargo_workflow_metadata(SCORING_PLAY, "play"),
    description=f"Each day's new companies (by created_at) scored by the play {SCORING_PLAY!r}. Backfill-able.",
)
def daily_company_scores(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
    result = cargo.run_play(context, SCORING_PLAY, filter=partition_window_filter(context, "created_at"))
    return result.materialize_result()
