"""``dag.test()`` against the emulator (real loopback HTTP, manual clock): the operator end to end, deferred
(the trigger runs inline) and not."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import billed, xcom


@pytest.mark.parametrize("deferrable", [False, True], ids=["in-worker", "deferred"])
def test_tool_over_records_writes_parquet_xcom_and_asset_extra(run_dag, cargo_conn, deferrable) -> None:
    emu = cargo_conn
    dag_id = f"tool_records_{int(deferrable)}"
    dag_run, states = run_dag(dag_id, f"""
        CargoRunOperator(task_id="enrich", tool="Enrich company", deferrable={deferrable},
                         records=[{{"domain": "acme.com"}}, {{"domain": "globex.com"}}, {{"domain": "initech.io"}}],
                         outlets=[Asset("cargo_enriched_{int(deferrable)}")])
    """)
    assert states == {"enrich": "success"}
    summary = xcom(dag_id, "enrich", dag_run.run_id)
    batches = emu.batches()
    assert len(batches) == 1 and summary["batch_uuids"] == [batches[0].uuid]
    assert summary["records"] == 3 and summary["rows"] == 3
    assert summary["status_counts"]["success"] == 3
    assert summary["credits_total"] == billed(emu) == pytest.approx(summary["credits_provider"] +
                                                                   0.01 * summary["node_executions"])
    frame = pd.read_parquet(summary["uri"].removeprefix("file://"))
    assert len(frame) == 3 and (frame["_status"] == "success").all()
    assert TOKEN_NOT_IN(summary)
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        event = (session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                 .filter(AssetModel.name == f"cargo_enriched_{int(deferrable)}").one())
        assert event.extra["batch_uuids"] == summary["batch_uuids"]
        assert event.extra["credits_total"] == summary["credits_total"]


def TOKEN_NOT_IN(value: object) -> bool:
    from conftest import TOKEN

    return TOKEN not in repr(value)


def test_play_over_a_filter_deferred(run_dag, cargo_conn) -> None:
    dag_id = "play_filter"
    dag_run, states = run_dag(dag_id, """
        CargoRunOperator(task_id="score", play="Score inbound companies", deferrable=True, limit=5,
                         filter={"conjonction": "and", "groups": [{"conjonction": "and", "conditions": [
                             {"kind": "string", "columnSlug": "country", "operator": "is", "values": ["US"]}]}]})
    """)
    assert states == {"score": "success"}, states
    summary = xcom(dag_id, "score", dag_run.run_id)
    batch = cargo_conn.batches()[0]
    assert batch.data_kind == "filter" and summary["batch_uuids"] == [batch.uuid]
    assert summary["rows"] == batch.runs_count > 0


def test_records_from_upstream_xcom_and_from_object_storage(run_dag, cargo_conn, tmp_path) -> None:
    pd.DataFrame([{"domain": "umbrella.com"}, {"domain": "hooli.com"}]).to_csv(tmp_path / "in.csv", index=False)
    dag_id = "records_sources"
    dag_run, states = run_dag(dag_id, f"""
        @task
        def extract():
            return [{{"domain": "acme.com"}}]

        CargoRunOperator(task_id="from_xcom", tool="Enrich company", records=extract(), deferrable=False)
        CargoRunOperator(task_id="from_path", tool="Enrich company", deferrable=False,
                         records=ObjectStoragePath("file://{tmp_path}/in.csv"),
                         output_path="file://{tmp_path}/out/enriched.parquet")
    """)
    assert states == {"extract": "success", "from_xcom": "success", "from_path": "success"}
    assert xcom(dag_id, "from_xcom", dag_run.run_id)["records"] == 1
    out = xcom(dag_id, "from_path", dag_run.run_id)
    assert out["records"] == 2 and out["uri"] == f"file://{tmp_path}/out/enriched.parquet"
    assert sorted(pd.read_parquet(tmp_path / "out" / "enriched.parquet")["domain"]) == ["hooli.com", "umbrella.com"]


@pytest.mark.parametrize("deferrable", [False, True], ids=["in-worker", "deferred"])
def test_retry_failed_heals_only_the_failed_records(run_dag, cargo_conn, deferrable) -> None:
    emu = cargo_conn
    emu.plan_failures({"domain=globex.com": 1})  # fails its first run, then succeeds
    dag_id = f"heal_{int(deferrable)}"
    dag_run, states = run_dag(dag_id, f"""
        CargoRunOperator(task_id="enrich", tool="Enrich company", retry_failed=1, deferrable={deferrable},
                         records=[{{"domain": "acme.com"}}, {{"domain": "globex.com"}}])
    """)
    assert states == {"enrich": "success"}
    summary = xcom(dag_id, "enrich", dag_run.run_id)
    batches = emu.batches()
    assert len(batches) == 2 and [len(b.inputs) for b in batches] == [2, 1]
    assert summary["heal_rounds"] == 1 and summary["batch_uuids"] == [b.uuid for b in batches]
    assert summary["status_counts"]["success"] == 2 and summary["status_counts"]["error"] == 0
    assert summary["credits_total"] == billed(emu)


def test_failed_rows_fail_names_the_batch(run_dag, cargo_conn) -> None:
    cargo_conn.plan_failures({"domain=globex.com": "always"})
    _, states = run_dag("failed_rows_fail", """
        CargoRunOperator(task_id="enrich", tool="Enrich company", failed_rows="fail", deferrable=False,
                         records=[{"domain": "acme.com"}, {"domain": "globex.com"}])
    """)
    assert states == {"enrich": "failed"}


def test_a_credit_budget_with_nothing_to_estimate_from_ramps_and_stops_within_it(run_dag, cargo_conn) -> None:
    """The tool never ran: no estimate. A first round of 1 record (2.02 credits) shows the next record would take
    the spend over the budget of 3: the task fails with the figures, the other 39 records never sent."""
    from conftest import billed

    records = ", ".join(f'{{"domain": "d{i}.com"}}' for i in range(40))
    _, states = run_dag("over_budget", f"""
        CargoRunOperator(task_id="enrich", tool="Enrich company", credit_budget=3, deferrable=True,
                         records=[{records}])
    """)
    assert states == {"enrich": "failed"}
    (batch,) = cargo_conn.batches()
    assert batch.status == "success" and batch.runs_count == 1
    assert 0 < billed(cargo_conn) <= 3


def test_empty_input_creates_no_batch(run_dag, cargo_conn) -> None:
    dag_run, states = run_dag("empty_input", """
        CargoRunOperator(task_id="enrich", tool="Enrich company", records=[], deferrable=True)
    """)
    assert states == {"enrich": "success"}
    assert cargo_conn.batches() == []
    assert xcom("empty_input", "enrich", dag_run.run_id)["batch_uuids"] == []


def test_failed_rows_drop_removes_the_rows_but_counts_them(run_dag, cargo_conn) -> None:
    cargo_conn.plan_failures({"domain=globex.com": "always"})
    dag_run, states = run_dag("failed_rows_drop", """
        CargoRunOperator(task_id="enrich", tool="Enrich company", failed_rows="drop", deferrable=True,
                         records=[{"domain": "acme.com"}, {"domain": "globex.com"}])
    """)
    assert states == {"enrich": "success"}
    summary = xcom("failed_rows_drop", "enrich", dag_run.run_id)
    assert summary["records"] == 2 and summary["rows"] == 1
    assert summary["status_counts"]["error"] == 1 and summary["status_counts"]["success"] == 1
    assert list(pd.read_parquet(summary["uri"].removeprefix("file://"))["domain"]) == ["acme.com"]


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferred"])
def test_batch_sensor_waits_for_a_batch_started_elsewhere(run_dag, cargo_conn, deferrable) -> None:
    from cargo_gtm import CargoClient, records_data
    from conftest import TOKEN

    with CargoClient(TOKEN, base_url=cargo_conn.base_url) as client:
        batch = client.create_batch(client.find_tool("Enrich company").workflow_uuid,
                                    records_data([{"domain": "acme.com"}]))
    if not deferrable:  # poke mode sleeps in real time: let the batch end first (the trigger moves the clock)
        cargo_conn.advance(60)
    _, states = run_dag(f"sensor_{int(deferrable)}", f"""
        from cargo_provider.sensors.cargo import CargoBatchSensor
        CargoBatchSensor(task_id="wait", batch_uuid={batch.uuid!r}, deferrable={deferrable}, poke_interval=1,
                         mode="poke", timeout=600)
    """)
    assert states == {"wait": "success"}
    assert [b.status for b in cargo_conn.batches()] == ["success"]
