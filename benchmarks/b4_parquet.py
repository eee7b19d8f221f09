"""B4: an output beyond memory, 10,000,000 rows × 20 columns, streamed to Parquet.

The emulator (this process) serves a pre-generated Cargo-like CSV (~3.2 GB) as a finished batch's
output; ``CargoClient.download_batch_to_parquet`` runs in a fresh child process
(``benchmarks._download_child``) whose own peak RSS (``VmHWM``) is the figure. The same download
of a tenth of the rows shows that peak RSS does not grow with the output. Baseline, measured in the
same run: ``download_batch_dataframe`` + ``DataFrame.to_parquet`` (the whole output in memory),
skipped with a note when the machine lacks the memory for it.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from ._download_data import write_csv
from ._report import Row, fmt, proc_kib, run_child
from .b3_download import TOKEN, start_emulator_with_output

CHILD = "benchmarks._download_child"
MIB, GIB = 2**20, 2**30
BOUND = 1.5 * GIB


def _available_memory() -> int:
    """MemAvailable from /proc/meminfo (bytes); 0 if unknown."""
    return proc_kib("/proc/meminfo", "MemAvailable") or 0


def _head(source: str, target: str, rows: int) -> None:
    """Copy the header and the first ``rows`` rows of a CSV without quoted newlines (ours has none)."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        for _ in range(rows + 1):
            dst.write(src.readline())


def measure(rows: int, workdir: str) -> dict[str, Any]:
    path = os.path.join(workdir, "b4_output.csv")
    started = time.perf_counter()
    size = write_csv(path, rows, seed=4)
    generated = time.perf_counter() - started
    small_rows = rows // 10
    small = os.path.join(workdir, "b4_small.csv")
    _head(path, small, small_rows)
    out: dict[str, Any] = {"rows": rows, "bytes": size, "generated": generated, "small_rows": small_rows}
    emu, client, uuid = start_emulator_with_output(path)
    try:
        from cargo_gtm import records_data

        tool = emu.store.tool_by_name("Enrich company")
        small_uuid = client.create_batch(str(tool["workflowUuid"]), records_data([{"domain": "small.example"}])).uuid
        emu.advance(600)
        emu.attach_output_file(small_uuid, small)
        out["small"] = run_child(CHILD, "parquet", emu.base_url, TOKEN, small_uuid,
                                 os.path.join(workdir, "small.parquet"), str(small_rows))
        out["ours"] = run_child(CHILD, "parquet", emu.base_url, TOKEN, uuid, os.path.join(workdir, "ours.parquet"),
                                str(rows), timeout=3600)
        out["parquet_bytes"] = os.path.getsize(os.path.join(workdir, "ours.parquet"))
        need = 3 * size + 2 * GIB  # text + typed frame + Arrow copy for to_parquet, with margin
        available = _available_memory()
        out["available"] = available
        if available and available < need:
            out["baseline"] = None
            out["baseline_skipped"] = (f"skipped: {available / GIB:.1f} GiB available, the in-memory baseline "
                                       f"needs about {need / GIB:.1f} GiB")
        else:
            try:
                out["baseline"] = run_child(CHILD, "df_parquet", emu.base_url, TOKEN, uuid,
                                            os.path.join(workdir, "baseline.parquet"), timeout=3600)
            except RuntimeError as exc:  # e.g. killed for lack of memory: that is the finding
                out["baseline"] = None
                out["baseline_skipped"] = f"failed: {str(exc).splitlines()[0][:200]}"
    finally:
        client.close()
        emu.stop()
    return out


def run(quick: bool) -> list[Row]:
    rows = 200_000 if quick else 10_000_000
    with tempfile.TemporaryDirectory(prefix="b4-") as workdir:
        m = measure(rows, workdir)
    ours, small, base, size = m["ours"], m["small"], m.get("baseline"), m["bytes"]
    smoke = "quick run: a smoke test of the harness, too small to judge the goal. " if quick else ""
    judge = (lambda ok: None) if quick else (lambda ok: ok)
    rate = lambda r: size / 1e6 / r["wall"]
    base_rss = fmt(base["rss_peak"] / MIB, "MiB", 0) + " (DataFrame + to_parquet)" if base else m["baseline_skipped"]
    base_rate = fmt(rate(base), "MB/s", 0) + " (DataFrame + to_parquet)" if base else m["baseline_skipped"]
    shape = f"{rows:,} rows × 20 cols, {size / 1e9:,.2f} GB CSV"
    return [
        Row("B4", "download → Parquet: peak RSS", fmt(ours["rss_peak"] / MIB, "MiB", 0), base_rss,
            fmt(ours["rss_peak"] / GIB, "GiB"), "<= 1.5 GiB", judge(ours["rss_peak"] <= BOUND),
            note=(f"{smoke}{shape}; CargoClient.download_batch_to_parquet in a fresh process, VmHWM (imports "
                  f"included: {ours['rss_imports'] / MIB:,.0f} MiB before any data). Peak RSS is bounded by the "
                  f"row group (250,000 rows), not the output: {small['rss_peak'] / MIB:,.0f} MiB for "
                  f"{m['small_rows']:,} rows, {ours['rss_peak'] / MIB:,.0f} MiB for {rows:,}. "
                  + (f"Baseline holds the whole DataFrame ({base['frame_bytes'] / GIB:.2f} GiB) plus its "
                     f"Arrow copy." if base else ""))),
        Row("B4", "download → Parquet: throughput", fmt(rate(ours), "MB/s", 0), base_rate,
            fmt(rate(ours) / rate(base)) if base else "",
            note=(f"{smoke}ours {ours['rows'] / ours['wall']:,.0f} rows/s, {ours['wall']:.1f} s "
                  f"(CPU {ours['cpu']:.1f} s), {ours['row_groups']} row groups, Parquet {m['parquet_bytes'] / 1e9:.2f} "
                  f"GB (snappy)" + (f"; baseline {base['wall']:.1f} s (CPU {base['cpu']:.1f} s)" if base else "")
                  + f". CSV generated in {m['generated']:.0f} s")),
        Row("B4", "rows written == rows served", f"{ours['rows_in_file']:,} (file metadata)", f"{rows:,} served",
            "", "equal", ours["rows_in_file"] == ours["rows"] == rows,
            note=f"{smoke}download_batch_to_parquet(expected_rows={rows:,}); type restarts: {ours['restarts']}"),
    ]


if __name__ == "__main__":
    import sys

    from ._report import render

    print(render(run(quick="--quick" in sys.argv)))
