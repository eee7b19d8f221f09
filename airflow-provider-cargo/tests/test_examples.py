"""The example DAGs: all three import cleanly, and the documented one-command run (run-example.sh, which
runs `airflow dags test` against a freshly started emulator) succeeds for the two that run on demand."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

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
def test_run_example_runs_the_dag_end_to_end(dag_id: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    done = subprocess.run([str(ROOT / "run-example.sh"), dag_id], capture_output=True, text=True, env=env,
                          timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    start = re.search(r"^\w+: \{$", done.stdout, re.M)
    assert start is not None, done.stdout[-2000:]
    summary, _ = json.JSONDecoder().raw_decode(done.stdout, start.end() - 1)
    assert len(summary["batch_uuids"]) >= 1 and summary["credits_total"] > 0
    assert summary["records"] == sum(summary["status_counts"].values())
    assert "state=success" in done.stdout + done.stderr
