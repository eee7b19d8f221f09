"""``dg dev -m example_project.definitions``: every dagster-cargo feature in one project.

* hand-written assets (``assets.py``): tool enrichment with asset checks and eager automation,
  a play over a filter, a daily-partitioned play over a date window (with a schedule);
* the workspace's plays/tools as assets (state-backed: listed once per code-location load);
* a sensor that enriches each new change of the "ICP companies" segment, and a sensor that
  records batches Cargo ran on its own;
* a job built from the ``cargo_batch_op`` op, and a credit-usage summary asset.

Sensors (and the automation sensor behind ``enriched_signups``' eager condition) start RUNNING, so
the example reacts as soon as ``dg dev`` is up; stop them from the UI's Automation page.
"""

import datetime as dt
import gc
import multiprocessing

import dagster as dg

from dagster_cargo import (
    CargoResource,
    build_cargo_assets_definitions,
    build_cargo_change_sensor,
    build_cargo_observation_sensor,
    cargo_batch_op,
)

from .assets import daily_company_scores, enriched_signups, inbound_signups, new_contacts, scored_icp_companies
from .connection import cargo_resource, workspace_state_path

cargo = cargo_resource()

# The workspace's plays and one tool, as executable assets keyed cargo/<name>. The listing is kept
# in $DAGSTER_HOME (state_path): only the first load calls Cargo; delete the file to refresh it.
workspace_assets = build_cargo_assets_definitions(
    cargo,
    state_path=workspace_state_path(cargo.base_url),
    selector=["Score inbound companies", "Find decision makers", "Find work email"],
    tool_inputs={"Find work email": "new_contacts"},
)
score_play_asset = next(a for a in workspace_assets if a.key.path[-1] == "score_inbound_companies")
decision_makers_asset = next(a for a in workspace_assets if a.key.path[-1] == "find_decision_makers")


@dg.asset(
    kinds={"cargo", "pandas"},
    group_name="cost",
    deps=[enriched_signups, scored_icp_companies, *workspace_assets],
    description="Credits used over the last 7 days, per day and per play/tool (Cargo billing usage).",
)
def cargo_credit_usage(cargo: CargoResource) -> dg.MaterializeResult:
    today = dt.date.today()
    frame = cargo.credit_usage_summary(today - dt.timedelta(days=7), today + dt.timedelta(days=1))
    total = float(frame["credits"].sum()) if len(frame) else 0.0
    return dg.MaterializeResult(value=frame, metadata={"dagster/row_count": len(frame), "credits_total": total})


# Steps fork from a server that has loaded this module (where the platform has one): they start without importing
# it again and leave without Python's teardown, which a spawned step (Dagster's default) goes through before its
# run can stop; see docs/getting-started.md on stopping `dg dev`.
_STEP_EXECUTOR = (dg.multiprocess_executor.configured({"start_method": {"forkserver": {}}})
                  if "forkserver" in multiprocessing.get_all_start_methods() else dg.multiprocess_executor)

daily_scoring_job = dg.define_asset_job("daily_company_scoring", selection=[daily_company_scores])


@dg.job(description="Job-based usage: one Cargo batch from typed op config.")
def score_companies_job():
    cargo_batch_op()


defs = dg.Definitions(
    assets=[inbound_signups, new_contacts, enriched_signups, scored_icp_companies, daily_company_scores,
            *workspace_assets, cargo_credit_usage],
    jobs=[daily_scoring_job, score_companies_job],
    schedules=[
        dg.build_schedule_from_partitioned_job(daily_scoring_job, hour_of_day=6),
        dg.ScheduleDefinition(name="weekly_decision_makers", cron_schedule="0 7 * * 1",
                              target=dg.AssetSelection.assets(decision_makers_asset)),
    ],
    sensors=[
        build_cargo_change_sensor(score_play_asset, "ICP companies", name="score_new_icp_companies",
                                  minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING),
        build_cargo_observation_sensor(workspace_assets, minimum_interval_seconds=60,
                                       default_status=dg.DefaultSensorStatus.RUNNING),
        dg.AutomationConditionSensorDefinition(
            "default_automation_condition_sensor", target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING),
    ],
    resources={"cargo": cargo},
    executor=_STEP_EXECUTOR,
)
# Every process that loads these definitions (the gRPC server, a run worker, the forkserver) ends in Python's
# teardown, whose final garbage collection walks every object loaded here: seconds per process on a busy
# machine, one after the other when Ctrl-C stops a run. Frozen objects are left out of that collection.
gc.freeze()
