"""One run path: the Dagster layer adapts the core's step loop (``cargo_gtm.running.StepDriver``) for batches,
single runs and heal rounds, and never re-implements attaching, waiting, cancelling, ``failed_rows``, the budget
or the metadata. Records are made JSON-safe exactly once on their way from ``run_tool`` to the create."""

import re
from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_cargo import CargoResource

from ..conftest import make_resource

PACKAGE = Path(__file__).resolve().parents[2] / "dagster_cargo"

#: what running a step is made of; only the core's step loop and handles may call these
PRIMITIVES = {
    "creating": r"\.create_(batch|batches|run)\(|create_run_once\(",
    "attaching": r"find_created_(batch|run)\(|find_reusable_batch\(",
    "waiting": r"wait_for_(batch|batches|run)\(|\.poll\(\)|BatchPoller\(",
    "cancelling": r"\.cancel_(batch|runs)\(|cancel_run\(",
    "failed_rows": r"failed_rows *== *['\"](fail|drop)['\"]",
    "budget": r"CreditBudget\(|\.overrun\(",
    "metadata": r"def (_metadata|batch_metadata)\(|CargoMetadataSet\(\s*batch_status",
}
#: where the layer legitimately touches them: the run-tag ledger resolves earlier attempts; the metadata module
#: keeps ``batch_metadata`` as a thin wrapper of the core builder; the segment sensor reports batches Cargo ran
#: on its own (no step).
ALLOWED = {("attaching", "running/attempts.py"), ("metadata", "running/metadata.py"),
           ("metadata", "definitions/sensors.py")}


def test_the_dagster_layer_has_no_second_implementation_of_a_step() -> None:
    found = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        rel = str(path.relative_to(PACKAGE))
        for what, pattern in PRIMITIVES.items():
            if (what, rel) not in ALLOWED and re.search(pattern, text):
                found.append(f"{rel}: {what}")
    assert found == []


def test_records_are_made_json_safe_exactly_once(manual_emulator, monkeypatch):
    import cargo_gtm.inputs.records as records_module

    calls = []
    real = records_module._record
    monkeypatch.setattr(records_module, "_record", lambda row, i: calls.append(i) or real(row, i))
    rows = pd.DataFrame({"domain": [f"j{i}.example" for i in range(3)], "company_name": ["A", "B", "C"]})

    @dg.asset
    def enriched(context: dg.AssetExecutionContext, cargo: CargoResource) -> dg.MaterializeResult:
        return cargo.run_tool(context, "Enrich company", rows).materialize_result()

    result = dg.materialize([enriched], resources={"cargo": make_resource(manual_emulator)})
    assert result.success and result.output_for_node("enriched")["domain"].tolist() == rows["domain"].tolist()
    assert calls == [0, 1, 2]  # three records, each converted once (three times each at layout-v1)
