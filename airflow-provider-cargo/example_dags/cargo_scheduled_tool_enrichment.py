"""Every day, enrich the companies that signed up with Cargo's *Enrich company* tool.

The sign-ups come from an upstream task through XCom; the enriched rows (one per sign-up, each with its
``_status``) are written as Parquet, and the ``cargo_enriched_companies`` asset gets an event whose extra is
the run's summary (batch uuid, rows, statuses, credits).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, task
from cargo_provider.operators.cargo import CargoRunOperator

ENRICHED = Asset("cargo_enriched_companies")

with DAG("cargo_scheduled_tool_enrichment", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False,
         tags=["cargo", "example"]) as dag:

    @task
    def new_signups() -> list[dict[str, str]]:
        # stands in for a query of yesterday's sign-ups
        return [{"domain": "acme.com", "company_name": "Acme"}, {"domain": "globex.com", "company_name": "Globex"},
                {"domain": "initech.io", "company_name": "Initech"}]

    CargoRunOperator(
        task_id="enrich_companies",
        tool="Enrich company",
        records=new_signups(),
        credit_budget=50,          # cancel and fail past 50 credits (execution charge included)
        retry_failed=1,            # re-run the records whose run failed, once, paying only for them
        retries=2, retry_delay=timedelta(seconds=10),  # a retry attaches to the batch it already paid for
        execution_timeout=timedelta(hours=1),          # the batch is cancelled when it runs out
        outlets=[ENRICHED],
    )
