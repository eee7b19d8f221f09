"""B3: a batch output (20 columns) downloaded into a DataFrame over loopback, at 100k, 1M and 4M rows.

The emulator (this process) serves a pre-generated Cargo-like CSV as a finished batch's output
(``CargoEmulator.attach_output_file``: presigned URL, streamed from disk with ``Content-Length``).
Every measurement runs in a fresh child process (``benchmarks._download_child``) so its peak RSS is its
own; libraries are imported before the clock starts. Ours and the baseline run in turn (A B A B …) and
each ratio is taken pair by pair; the figure is the **median of the pairs** with its [min–max] spread.

Like-for-like: both sides run on the same allocator (``ARROW_DEFAULT_MEMORY_POOL=jemalloc``, what ours
picks by itself) and both read line ends inside quoted values, as a Cargo output may hold them:

* ours: ``CargoClient.download_batch_dataframe``, the whole user path (batch + release + run statuses
  (``runs/count``) + URL + streamed GET + parse + typing + ``_status``/``_error_message`` columns);
* baseline (the limit): ``pyarrow.csv.read_csv(local copy, newlines_in_values=True).to_pandas()`` on the same
  bytes, with no network at all: what a competent user gets from pyarrow once the file is on disk;
* ``dtype_backend="pyarrow"`` (ArrowDtype columns), against the same baseline with
  ``to_pandas(types_mapper=pd.ArrowDtype)``.

Layouts (Cargo's docs leave the batch file's layout open, so the client reads every one): the same rows
served as a gzipped CSV file, a JSON array, NDJSON, and a CSV whose output is one JSON ``output`` column;
each against its own local baseline (the same bytes from disk).
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from ._download_data import write_csv
from ._report import Row, median, run_child, spread

TOKEN = "bench-b3-token"
CHILD = "benchmarks._download_child"
MIB = 2**20
POOL = "pool=jemalloc"

INPUT_COLUMNS = ["_id", "_title", "domain"]
#: Rows of the layout comparison (JSON parses at a few MB/s in any Python reader: 1,000,000 rows would take minutes).
LAYOUT_ROWS = 200_000


def write_layouts(csv_path: str, workdir: str) -> dict[str, tuple[str, str, str]]:
    """The other layouts of ``csv_path``'s rows: name -> (file, emulator fmt, baseline mode)."""
    import gzip
    import shutil

    import pyarrow.csv as pacsv

    frame = pacsv.read_csv(csv_path).to_pandas()
    out: dict[str, tuple[str, str, str]] = {}
    gz = os.path.join(workdir, "b3_output.csv.gz")
    with open(csv_path, "rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    out["CSV, gzip file"] = (gz, "csv", "local_arrow_nl")
    for name, lines, mode in (("JSON array", False, "local_json"), ("NDJSON", True, "local_ndjson")):
        path = os.path.join(workdir, f"b3_output.{'ndjson' if lines else 'json'}")
        frame.to_json(path, orient="records", lines=lines, date_format="iso", date_unit="ms")
        out[name] = (path, "json", mode)
    outputs = frame.drop(columns=INPUT_COLUMNS).to_json(orient="records", lines=True, date_format="iso",
                                                        date_unit="ms").splitlines()
    nested = frame[INPUT_COLUMNS].assign(output=outputs)
    path = os.path.join(workdir, "b3_output_column.csv")
    nested.to_csv(path, index=False)
    out["CSV, one JSON output column"] = (path, "csv", "local_output_csv")
    return out


def attach(emu: Any, client: Any, path: str, fmt: str) -> str:
    """A finished batch of the emulator whose output file is ``path``."""
    from cargo_gtm import records_data

    tool = emu.store.tool_by_name("Enrich company")
    batch = client.create_batch(str(tool["workflowUuid"]), records_data([{"domain": f"{os.path.basename(path)}.example"}]))
    emu.advance(600)
    emu.attach_output_file(batch.uuid, path, fmt)
    return batch.uuid


def measure_layouts(csv_path: str, rows: int, repeats: int, workdir: str) -> dict[str, dict[str, Any]]:
    """Each layout's runs (ours, and its local baseline), interleaved."""
    layouts = write_layouts(csv_path, workdir)
    emu, client, _ = start_emulator_with_output(csv_path)
    results: dict[str, dict[str, Any]] = {}
    try:
        uuids = {name: attach(emu, client, path, fmt) for name, (path, fmt, _) in layouts.items()}
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {name: {"ours": [], "local": []} for name in layouts}
        for _ in range(repeats):
            for name, (path, _, mode) in layouts.items():
                runs[name]["ours"].append(run_child(CHILD, POOL, "ours", emu.base_url, TOKEN, uuids[name],
                                                    str(rows)))
                runs[name]["local"].append(run_child(CHILD, POOL, mode, path))
        for name, pair in runs.items():
            results[name] = {**pair, "bytes": os.path.getsize(layouts[name][0])}
    finally:
        client.close()
        emu.stop()
    return results


def start_emulator_with_output(path: str) -> tuple[Any, Any, str]:
    """An emulator (manual clock) with one finished batch whose output is the file at ``path``."""
    from cargo_gtm import CargoClient, records_data
    from cargo_gtm_emulator import CargoEmulator

    emu = CargoEmulator(token=TOKEN, clock="manual", run_failure_rate=0.0).start()
    client = CargoClient(TOKEN, base_url=emu.base_url)
    tool = emu.store.tool_by_name("Enrich company")
    batch = client.create_batch(str(tool["workflowUuid"]), records_data([{"domain": "bench.example"}]))
    emu.advance(600)
    emu.attach_output_file(batch.uuid, path)
    return emu, client, batch.uuid


MODES = {"ours": "local_arrow_nl", "ours_arrowdtype": "local_arrow_nl_arrowdtype"}


def measure(rows: int, repeats: int, workdir: str) -> dict[str, Any]:
    """Generate ``rows`` rows, serve them and run each pair ``repeats`` times, in turn."""
    path = os.path.join(workdir, f"b3_output_{rows}.csv")
    started = time.perf_counter()
    size = write_csv(path, rows)
    generated = time.perf_counter() - started
    emu, client, uuid = start_emulator_with_output(path)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for pair in MODES.items() for mode in pair}
    try:
        for _ in range(repeats):
            for ours, base in MODES.items():
                runs[ours].append(run_child(CHILD, POOL, ours, emu.base_url, TOKEN, uuid, str(rows)))
                runs[base].append(run_child(CHILD, POOL, base, path))
    finally:
        client.close()
        emu.stop()
        os.unlink(path)
    return {"runs": runs, "rows": rows, "bytes": size, "generated": generated, "repeats": repeats}


def _ratios(ours: list[dict[str, Any]], base: list[dict[str, Any]], key: str = "wall") -> list[float]:
    """baseline ÷ ours, pair by pair (above 1: ours is faster)."""
    return [b[key] / o[key] for o, b in zip(ours, base, strict=True)]


#: B3's goals: ours ÷ the limit (pyarrow on a local copy), by rows (fixed costs dominate at 100k).
GOALS = {100_000: 0.6, 1_000_000: 0.85, 4_000_000: 0.85}
RSS_GOAL = 2.5


def _walls(runs: list[dict[str, Any]]) -> str:
    return "/".join(f"{r['wall']:.2f}" for r in runs)


def _size_rows(m: dict[str, Any], judge: bool, smoke: str) -> list[Row]:
    rows, size, runs = m["rows"], m["bytes"], m["runs"]
    goal = GOALS.get(rows)
    out = []
    for ours, base in MODES.items():
        o, b = runs[ours], runs[base]
        for r in (*o, *b):
            assert r["rows"] == rows, (ours, r["rows"], rows)
        ratios = _ratios(o, b)
        cpu = _ratios(o, b, "cpu")
        arrow = ours == "ours_arrowdtype"
        met = median(ratios) >= goal if goal is not None and judge and not arrow else None
        out.append(Row(
            "B3", f"download → DataFrame, {rows:,} rows{', ArrowDtype' if arrow else ''}",
            f"{size / 1e6 / median([r['wall'] for r in o]):,.0f} MB/s",
            f"{size / 1e6 / median([r['wall'] for r in b]):,.0f} MB/s (pyarrow read_csv local{', ArrowDtype' if arrow else ''})",
            spread(ratios), f">= {goal}" if goal is not None and not arrow else "", met,
            note=(f"{smoke}{size / 1e6:,.0f} MB CSV; median of {len(ratios)} pairs, ratio = baseline wall ÷ ours "
                  f"(walls ours {_walls(o)} s, baseline {_walls(b)} s); CPU (user+sys) ratio {spread(cpu)}; "
                  f"typed numeric/datetime/bool ours {o[0]['numeric_columns']}/{o[0]['datetime_columns']}/"
                  f"{o[0]['bool_columns']}, baseline {b[0]['numeric_columns']}/{b[0]['datetime_columns']}/"
                  f"{b[0]['bool_columns']}")))
    o = runs["ours"]
    peaks = [r["rss_peak"] / r["frame_bytes"] for r in o]
    base_peaks = [r["rss_peak"] / r["frame_bytes"] for r in runs["local_arrow_nl"]]
    out.append(Row(
        "B3", f"peak RSS ÷ DataFrame memory, {rows:,} rows", f"{max(peaks):.2f}×", f"{max(base_peaks):.2f}×",
        f"{max(peaks):.2f}", f"<= {RSS_GOAL}", (max(peaks) <= RSS_GOAL) if judge and rows >= 1_000_000 else None,
        note=(f"{smoke}worst of {len(peaks)} runs: absolute peak RSS of the child (VmHWM, imports included: "
              f"{max(r['rss_peak'] for r in o) / MIB:,.0f} MiB) ÷ df.memory_usage(deep=True) "
              f"({o[0]['frame_bytes'] / MIB:,.0f} MiB)")))
    return out


def _layout_rows(layouts: dict[str, dict[str, Any]], rows: int, smoke: str) -> list[Row]:
    baselines = {"CSV, gzip file": "pyarrow read_csv(local .gz)", "JSON array": "read_json(local)",
                 "NDJSON": "read_json(local, lines=True)",
                 "CSV, one JSON output column": "read_csv(local, pyarrow) + json_normalize"}
    out = []
    for name, r in layouts.items():
        ours, local = r["ours"], r["local"]
        for o, b in zip(ours, local, strict=True):
            assert o["rows"] == rows == b["rows"], (name, o["rows"], b["rows"])
        out.append(Row(
            "B3", f"layout: {name}", f"{rows / median([o['wall'] for o in ours]):,.0f} rows/s",
            f"{rows / median([b['wall'] for b in local]):,.0f} rows/s ({baselines[name]})",
            spread(_ratios(ours, local)),
            note=(f"{smoke}{rows:,} rows, {r['bytes'] / 1e6:,.0f} MB file served by the emulator; median of "
                  f"{len(ours)} pairs; peak RSS ours {max(o['rss_peak'] for o in ours) / MIB:,.0f} MiB, baseline "
                  f"{max(b['rss_peak'] for b in local) / MIB:,.0f} MiB")))
    return out


def run(quick: bool) -> list[Row]:
    sizes = {20_000: 1} if quick else {100_000: 5, 1_000_000: 3, 4_000_000: 3}
    if os.environ.get("B3_SIZES"):  # e.g. B3_SIZES=1000000:5 for one size
        sizes = {int(a): int(b) for a, b in (item.split(":") for item in os.environ["B3_SIZES"].split(","))}
    smoke = "quick run: a smoke test of the harness, too small to judge the goal. " if quick else ""
    out: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="b3-") as workdir:
        for rows, repeats in sizes.items():
            out += _size_rows(measure(rows, repeats, workdir), not quick, smoke)
        layout_rows = 20_000 if quick else LAYOUT_ROWS
        layout_csv = os.path.join(workdir, "b3_layouts.csv")
        write_csv(layout_csv, layout_rows, seed=1)
        out += _layout_rows(measure_layouts(layout_csv, layout_rows, 1 if quick else 3, workdir), layout_rows, smoke)
    return out


if __name__ == "__main__":
    import sys

    from ._report import render

    print(render(run(quick="--quick" in sys.argv)))
