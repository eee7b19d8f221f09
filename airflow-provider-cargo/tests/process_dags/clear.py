from datetime import datetime, timedelta

from airflow.sdk import DAG
from cargo_provider.operators.cargo import CargoRunOperator

with DAG("cargo_clear", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    # retries=1: Airflow 3.3.2 may mark the resumed try failed (a cleared try's trigger event arriving within a
    # scheduler loop, see docs/airflow/known-issues.md); the retry must then attach to the same second batch
    CargoRunOperator(task_id="enrich", tool="Enrich company", deferrable=True, retries=1,
                     retry_delay=timedelta(seconds=1),
                     records=[{"domain": f"cargo_clear-{i}.com"} for i in range(3)])
