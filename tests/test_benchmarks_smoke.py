"""A smoke run of the benchmark harness (``--quick``): every benchmark runs and reports a figure
next to a baseline. Timings are never asserted here; they belong to ``python -m benchmarks``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: run on its own, beside all the others: B3 (downloads) alone takes about as long as the rest together, so the
#: two halves run at once and the suite's longest test takes half as long
ALONE = "B3"


def test_quick_benchmark_run_reports_every_figure_beside_its_baseline(tmp_path):
    from benchmarks.__main__ import BENCHES

    halves = [ALONE, ",".join(name for name in BENCHES if name != ALONE)]
    outs = [tmp_path / f"rows{i}.json" for i in range(len(halves))]
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks", "--quick", "--only", only, "--json", str(out)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for only, out in zip(halves, outs)]
    try:
        done = [proc.communicate(timeout=600) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    rows = []
    for proc, (stdout, stderr), out in zip(procs, done, outs):
        assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
        assert "== all figures" in stdout and "| bench |" in stdout
        rows += json.loads(out.read_text())
    assert {r["bench"] for r in rows} == {"B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8"}
    for row in rows:
        assert row["ours"] and row["baseline"], row  # every figure has its same-run baseline
    by_metric = {(r["bench"], r["metric"]): r for r in rows}
    reload_calls = [r for (b, m), r in by_metric.items() if b == "B5" and "reload" in m and "API calls" in m]
    assert reload_calls and all(r["ours"].strip() == "0" for r in reload_calls)
