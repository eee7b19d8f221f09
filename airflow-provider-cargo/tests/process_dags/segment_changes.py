import os
from datetime import datetime

from airflow.sdk import DAG, Asset, AssetWatcher
from cargo_provider.operators.cargo import CargoRunOperator
from cargo_provider.triggers.changes import CHANGE_FROM_EVENT, CargoSegmentChangeTrigger

changes = Asset("cargo_test_segment_changes", watchers=[AssetWatcher(
    name="cargo_test_segment_watcher",
    trigger=CargoSegmentChangeTrigger(segment=os.environ.get("CARGO_TEST_SEGMENT", "ICP companies"),
                                      poll_interval=2))])

with DAG("cargo_segment_changes", schedule=[changes], start_date=datetime(2026, 1, 1), catchup=False) as dag:
    CargoRunOperator(task_id="score", play="Score inbound companies", change=CHANGE_FROM_EVENT, deferrable=True)
