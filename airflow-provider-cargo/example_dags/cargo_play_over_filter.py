"""Score the US companies of the workspace with the *Score inbound companies* play, over a filter.

A play runs over its model's records; ``filter`` takes Cargo's shape (``conjonction`` groups of conditions).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG
from cargo_provider.operators.cargo import CargoRunOperator

with DAG("cargo_play_over_filter", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         tags=["cargo", "example"]) as dag:
    CargoRunOperator(
        task_id="score_us_companies",
        play="Score inbound companies",
        filter={"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
            {"kind": "string", "columnSlug": "country", "operator": "is", "values": ["US"]}]}]},
        limit=25,
        failed_rows="drop",
    )
