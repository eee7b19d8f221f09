from datetime import datetime

from airflow.sdk import DAG
from cargo_provider.operators.cargo import CargoRunOperator

with DAG("cargo_clear", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    CargoRunOperator(task_id="enrich", tool="Enrich company", deferrable=True, retries=0,
                     records=[{"domain": f"cargo_clear-{i}.com"} for i in range(3)])
