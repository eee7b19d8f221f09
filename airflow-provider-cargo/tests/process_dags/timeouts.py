from datetime import datetime, timedelta

from airflow.sdk import DAG
from cargo_provider.operators.cargo import CargoRunOperator

for deferrable in (True, False):
    dag_id = f"cargo_timeout_{'deferred' if deferrable else 'in_worker'}"
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        CargoRunOperator(task_id="enrich", tool="Enrich company", deferrable=deferrable, retries=0,
                         execution_timeout=timedelta(seconds=8),
                         records=[{"domain": f"{dag_id}-{i}.com"} for i in range(3)])
    globals()[dag_id] = dag
