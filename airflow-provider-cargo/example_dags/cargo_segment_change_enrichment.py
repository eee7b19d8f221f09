"""Event-driven: each new change of a Cargo segment runs a play over exactly the records it added or updated.

``CargoSegmentChangeTrigger`` watches the segment from the triggerer (an ``AssetWatcher``): every change with
records fires one asset event, exactly once across triggerer restarts (its watermark is kept in the asset's
state store). The DAG is scheduled on that asset, and ``change=CHANGE_FROM_EVENT`` runs the play over the
change(s) named by the triggering events.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, Asset, AssetWatcher
from cargo_provider.operators.cargo import CargoRunOperator
from cargo_provider.triggers.changes import CHANGE_FROM_EVENT, CargoSegmentChangeTrigger

# the segment to watch: a name or UUID (the run-example script passes the play's own segment)
SEGMENT = os.environ.get("CARGO_EXAMPLE_SEGMENT", "ICP companies")

icp_changes = Asset("cargo_icp_companies_changes", watchers=[
    AssetWatcher(name="cargo_icp_companies_watcher",
                 trigger=CargoSegmentChangeTrigger(segment=SEGMENT, poll_interval=60)),
])

with DAG("cargo_segment_change_enrichment", schedule=[icp_changes], start_date=datetime(2026, 1, 1),
         catchup=False, tags=["cargo", "example"]) as dag:
    CargoRunOperator(task_id="score_new_companies", play="Score inbound companies", change=CHANGE_FROM_EVENT)
