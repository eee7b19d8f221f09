from datetime import datetime, timedelta

from _kill import kill_once_around_the_save
from airflow.sdk import DAG
from cargo_provider.operators.cargo import CargoRunOperator

DAG_ID = "cargo_kill_before_save"
kill_once_around_the_save(DAG_ID, "before-save")

with DAG(DAG_ID, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    CargoRunOperator(task_id="enrich", tool="Enrich company", deferrable=True, retries=1,
                     retry_delay=timedelta(seconds=1),
                     records=[{"domain": f"{DAG_ID}-{i}.com"} for i in range(3)])
