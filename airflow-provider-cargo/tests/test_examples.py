"""The example DAGs: all three import cleanly, and the two that run on demand succeed against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_example_dag_imports_without_errors() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "example_dags"))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"cargo_scheduled_tool_enrichment", "cargo_play_over_filter",
                                "cargo_segment_change_enrichment"}
    watcher = bag.get_dag("cargo_segment_change_enrichment")
    assert watcher is not None


@pytest.mark.parametrize("dag_id", ["cargo_scheduled_tool_enrichment", "cargo_play_over_filter"])
def test_example_dag_runs_against_the_emulator(run_dag: Any, cargo_conn: Any, dag_id: str) -> None:
    """dag.test() of the example file as shipped (run-example.sh, the one-command run, is executed by the
    docs test of index.md)."""
    from conftest import write_dag, xcom

    dag = write_dag(dag_id, "pass")
    Path(dag.fileloc).write_text((ROOT / "example_dags" / f"{dag_id}.py").read_text())
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_{dag_id}", dag.fileloc)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag_run = module.dag.test()
    (task_id,) = [t for t in module.dag.task_dict if t not in ("new_signups",)]
    summary = xcom(dag_id, task_id, dag_run.run_id)
    assert len(summary["batch_uuids"]) >= 1 and summary["credits_total"] > 0
    assert summary["records"] == sum(summary["status_counts"].values())
    assert [b.uuid for b in cargo_conn.batches()][-1] == summary["batch_uuids"][-1]
