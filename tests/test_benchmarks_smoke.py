"""A smoke run of the benchmark harness (``--quick``): every benchmark runs and reports a figure
next to a baseline. Timings are never asserted here; they belong to ``python -m benchmarks``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_run_reports_every_figure_beside_its_baseline(tmp_path):
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert {r["bench"] for r in rows} == {"B1", "B2", "B3", "B4", "B5", "B6", "B7"}
    for row in rows:
        assert row["ours"] and row["baseline"], row  # every figure has its same-run baseline
    by_metric = {(r["bench"], r["metric"]): r for r in rows}
    reload_calls = [r for (b, m), r in by_metric.items() if b == "B5" and "reload" in m and "API calls" in m]
    assert reload_calls and all(r["ours"].strip() == "0" for r in reload_calls)
    assert "== all figures" in proc.stdout and "| bench |" in proc.stdout
