"""One B3/B4 measurement in a fresh process: ``python -m benchmarks._download_child MODE ...``.

Prints one JSON line: ``wall`` (seconds, the measured call only), ``cpu`` (user+sys seconds of the
call, all threads), ``rss_imports`` (peak RSS once the libraries are imported, before any data),
``rss_peak`` (peak RSS at the end: ``VmHWM``, the whole process; not ``ru_maxrss``, which Linux carries
over from the parent), ``frame_bytes``
(``df.memory_usage(deep=True).sum()``) and what was read or written.

A first argument ``pool=NAME`` sets ``ARROW_DEFAULT_MEMORY_POOL`` (``mimalloc``, ``jemalloc``, ``system``)
before pyarrow is imported.

Modes:
  ours URL_BASE TOKEN BATCH [ROWS] CargoClient.download_batch_dataframe (pyarrow path when installed), the whole
                                   user path: batch + release + run statuses (runs/count) + file + _status column,
                                   ROWS = the records the served file accounts for (the attached file's rows)
  local_gz PATH                    pandas.read_csv(PATH.gz, engine="pyarrow") (pandas gunzips, pyarrow parses)
  local_json PATH                  pandas.read_json(PATH) (a JSON array of row objects)
  local_ndjson PATH                pandas.read_json(PATH, lines=True)
  local_output_csv PATH            pandas.read_csv(PATH, engine="pyarrow") + json_normalize of its output column
  pandas_path URL                  download_dataframe(url, engine="pandas"): the fallback without pyarrow
  local_arrow PATH                 pandas.read_csv(PATH, engine="pyarrow"): pandas' own pyarrow engine (its chunker
                                   does not read line ends inside quoted values across blocks: reported only)
  local_arrow_nl PATH              pyarrow.csv.read_csv(PATH, newlines_in_values=True).to_pandas(): the B3
                                   baseline, reading quoted line ends as ours must (.gz paths are gunzipped)
  local_arrow_nl_arrowdtype PATH   the same, .to_pandas(types_mapper=pd.ArrowDtype)
  ours_arrowdtype URL_BASE TOKEN BATCH [ROWS]  ours with dtype_backend="pyarrow"
  naive_url URL                    pandas.read_csv(URL): the naive baseline
  parquet URL_BASE TOKEN BATCH OUT ROWS   CargoClient.download_batch_to_parquet
  df_parquet URL_BASE TOKEN BATCH OUT     download_batch_dataframe + DataFrame.to_parquet (B4 baseline)
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _user_sys() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _peak() -> int:
    from benchmarks._report import peak_rss_hwm_bytes

    return peak_rss_hwm_bytes()


def _frame_facts(frame: Any) -> dict[str, Any]:
    kinds = [getattr(dtype, "kind", "O") for dtype in frame.dtypes]
    return {"rows": len(frame), "columns": len(frame.columns), "frame_bytes": int(frame.memory_usage(deep=True).sum()),
            "numeric_columns": sum(k in "iuf" for k in kinds), "datetime_columns": sum(k == "M" for k in kinds),
            "bool_columns": sum(k == "b" for k in kinds)}


def main(argv: list[str]) -> dict[str, Any]:
    if argv and argv[0].startswith("pool="):
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = argv[0].split("=", 1)[1]
        argv = argv[1:]
    import pandas as pd
    import pyarrow  # noqa: F401  - imported before measuring, like every library below
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    from cargo_gtm import CargoClient
    from cargo_gtm.download.dataframe import download_dataframe

    mode, args = argv[0], argv[1:]
    out: dict[str, Any] = {"mode": mode, "rss_imports": _peak(),
                           "pool": pyarrow.default_memory_pool().backend_name}
    client = (CargoClient(args[1], base_url=args[0]) if mode in ("ours", "ours_arrowdtype", "parquet", "df_parquet")
              else None)
    (user0, sys0), cpu0, t0 = _user_sys(), _cpu(), time.perf_counter()
    if mode in ("ours", "ours_arrowdtype"):
        assert client is not None
        frame = client.download_batch_dataframe(args[2], expected_rows=int(args[3]) if len(args) > 3 else None,
                                                dtype_backend="pyarrow" if mode == "ours_arrowdtype" else "numpy")
    elif mode in ("local_arrow_nl", "local_arrow_nl_arrowdtype"):
        table = pyarrow.csv.read_csv(args[0], parse_options=pyarrow.csv.ParseOptions(newlines_in_values=True))
        frame = table.to_pandas(types_mapper=pd.ArrowDtype if mode.endswith("arrowdtype") else None)
        del table
    elif mode == "local_gz":
        frame = pd.read_csv(args[0], engine="pyarrow")
    elif mode == "local_json":
        frame = pd.read_json(args[0])
    elif mode == "local_ndjson":
        frame = pd.read_json(args[0], lines=True)
    elif mode == "local_output_csv":
        raw = pd.read_csv(args[0], engine="pyarrow")
        spread = pd.json_normalize([json.loads(v) if isinstance(v, str) else {} for v in raw.pop("output")])
        frame = pd.concat([raw, spread], axis=1)
    elif mode == "pandas_path":
        frame = download_dataframe(args[0], engine="pandas")
    elif mode == "local_arrow":
        frame = pd.read_csv(args[0], engine="pyarrow")
    elif mode == "naive_url":
        frame = pd.read_csv(args[0])
    elif mode == "parquet":
        assert client is not None
        result = client.download_batch_to_parquet(args[2], args[3], expected_rows=int(args[4]))
        wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
        user, system = _user_sys()
        out.update(user=user - user0, sys=system - sys0)
        metadata = pyarrow.parquet.ParquetFile(result.path).metadata
        return {**out, "wall": wall, "cpu": cpu, "rss_peak": _peak(), "rows": result.rows,
                "rows_in_file": metadata.num_rows, "row_groups": metadata.num_row_groups,
                "bytes": result.bytes_downloaded, "restarts": result.restarts}
    elif mode == "df_parquet":
        assert client is not None
        frame = client.download_batch_dataframe(args[2], statuses=False)  # the file's rows, as the Parquet path
        frame.to_parquet(args[3])
    else:
        raise SystemExit(f"unknown mode {mode}")
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    user, system = _user_sys()
    out.update(user=user - user0, sys=system - sys0)
    if client is not None:
        client.close()
    return {**out, "wall": wall, "cpu": cpu, "rss_peak": _peak(), **_frame_facts(frame)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
