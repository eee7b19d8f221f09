"""Every output-file layout Cargo may serve parses to the same DataFrame; text that looks missing stays text.

Synthetic bytes, no server: CSV / JSON array / NDJSON, plain / gzip, spread columns / one ``output`` column.
The HTTP side (gzip as a ``.gz`` file or ``Content-Encoding``, truncation) is tested through ``download_dataframe``
with an ``httpx.MockTransport`` serving the exact bytes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from typing import Any

import httpx
import pandas as pd
import pytest
from cargo_gtm.download.dataframe import download_dataframe, frame_from_bytes
from cargo_gtm.download.layout import is_object_column, json_rows, spread_output
from cargo_gtm.errors import CargoDownloadError

NA_LOOKING = ["None", "NA", "null", "N/A", "nan", "NaN", "#N/A", "n/a", "NULL", "-nan", "-NaN", "#N/A N/A", "#NA",
              "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN", "<NA>", "none", "Null", "NAN", "inf", "-inf", "Infinity"]

INPUTS = [{"_id": f"r{i}", "_title": f"T{i}", "domain": f"d{i}.example", "name": value}
          for i, value in enumerate(NA_LOOKING)]
OUTPUTS = [{"country": value, "employees": 10 + i, "score": 0.5 * i, "verified": i % 2 == 0, "domain": "x"}
           for i, value in enumerate(NA_LOOKING)]


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c)
            cells.append("" if v is None else json.dumps(v, separators=(",", ":")) if isinstance(v, dict)
                         else ("true" if v is True else "false" if v is False else v))
        writer.writerow(cells)
    return buf.getvalue().encode()


def _flat_rows() -> tuple[list[str], list[dict[str, Any]]]:
    rows = []
    for inp, out in zip(INPUTS, OUTPUTS):
        row = dict(inp)
        row.update({("output.domain" if k == "domain" else k): v for k, v in out.items()})
        rows.append(row)
    return ["_id", "_title", "domain", "name", "country", "employees", "score", "verified", "output.domain"], rows


def _nested_rows() -> list[dict[str, Any]]:
    return [{**inp, "output": out} for inp, out in zip(INPUTS, OUTPUTS)]


def _layouts() -> dict[str, tuple[bytes, str]]:
    columns, flat = _flat_rows()
    nested = _nested_rows()
    return {
        "csv-flat": (_csv(columns, flat), "csv"),
        "csv-output-json": (_csv(["_id", "_title", "domain", "name", "output"], nested), "csv"),
        "json-array-flat": (json.dumps(flat).encode(), "json"),
        "json-array-nested": (json.dumps(nested).encode(), "json"),
        "ndjson-flat": ("\n".join(json.dumps(r) for r in flat).encode() + b"\n", "json"),
        "ndjson-nested": ("\n".join(json.dumps(r) for r in nested).encode(), "json"),
    }


def _normalize(frame: pd.DataFrame) -> pd.DataFrame:
    return spread_output(frame) if is_object_column(frame) else frame


@pytest.mark.parametrize("engine", ["pyarrow", "pandas"])
@pytest.mark.parametrize("layout", list(_layouts()))
def test_every_layout_gives_the_same_frame_and_keeps_na_looking_text(layout: str, engine: str) -> None:
    data, fmt = _layouts()[layout]
    frame = _normalize(frame_from_bytes(data, fmt, engine=engine))  # type: ignore[arg-type]
    assert list(frame.columns) == ["_id", "_title", "domain", "name", "country", "employees", "score", "verified",
                                   "output.domain"]
    assert len(frame) == len(NA_LOOKING)
    # input and output text that merely looks missing comes back as the same strings
    assert frame["name"].tolist() == NA_LOOKING
    assert frame["country"].tolist() == NA_LOOKING
    assert not frame["name"].isna().any() and not frame["country"].isna().any()
    # typed columns: output objects spread into numbers and booleans
    assert frame["employees"].dtype == "int64" and frame["employees"].tolist() == [10 + i for i in range(len(OUTPUTS))]
    assert frame["score"].dtype == "float64"
    assert frame["verified"].dtype == "bool"
    # an output key equal to an input field is kept beside it, never overwriting it
    assert frame["domain"][1] == "d1.example" and frame["output.domain"][1] == "x"


def test_only_an_empty_cell_is_missing_in_csv() -> None:
    data = b"a,b,c\nNone,,1\nNA,x,\n"
    for engine in ("pyarrow", "pandas"):
        frame = frame_from_bytes(data, "csv", engine=engine)  # type: ignore[arg-type]
        assert frame["a"].tolist() == ["None", "NA"]
        assert pd.isna(frame["b"][0]) and frame["b"][1] == "x"
        assert frame["c"][0] == 1 and pd.isna(frame["c"][1])


def test_nan_and_inf_text_among_numbers_keeps_the_column_text() -> None:
    data = b"n\n1.5\nnan\n2\n"
    for engine in ("pyarrow", "pandas"):
        frame = frame_from_bytes(data, "csv", engine=engine)  # type: ignore[arg-type]
        assert frame["n"].tolist() == ["1.5", "nan", "2"], engine


def test_missing_outputs_of_errored_rows_spread_as_missing_cells() -> None:
    rows = [{"_id": "a", "x": 1, "output": {"y": "None"}}, {"_id": "b", "x": 2, "output": None}]
    frame = _normalize(frame_from_bytes(json.dumps(rows).encode(), "json"))
    assert frame["y"][0] == "None" and pd.isna(frame["y"][1])
    csv_frame = _normalize(frame_from_bytes(b'_id,x,output\na,1,"{""y"":""None""}"\nb,2,\n', "csv"))
    assert csv_frame["y"][0] == "None" and pd.isna(csv_frame["y"][1])


def test_an_input_field_named_output_with_plain_text_is_not_spread() -> None:
    frame = frame_from_bytes(b"_id,output,z\na,hello,1\n", "csv")
    assert not is_object_column(frame)


def test_json_rows_reads_arrays_ndjson_and_a_bom() -> None:
    assert json_rows(b'\xef\xbb\xbf[{"a": 1}]') == [{"a": 1}]
    assert json_rows(b'{"a": 1}\n\n{"a": 2}\n') == [{"a": 1}, {"a": 2}]
    assert json_rows(b"  ") == []
    with pytest.raises(ValueError):
        json_rows(b"[1, 2]")


# ------------------------------------------------------------------------------ over HTTP (exact bytes)
def _serve(body: bytes, headers: dict[str, str]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(body), headers=headers)

    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("mode", ["off", "file", "transport"])
@pytest.mark.parametrize("layout", ["csv-flat", "csv-output-json", "ndjson-nested", "json-array-flat"])
def test_gzip_as_file_or_content_encoding(layout: str, mode: str) -> None:
    data, fmt = _layouts()[layout]
    body = data if mode == "off" else gzip.compress(data)
    headers = {"content-length": str(len(body))}
    if mode == "transport":
        headers["content-encoding"] = "gzip"
    with _serve(body, headers) as http:
        frame = _normalize(download_dataframe("https://files.example/out", format=fmt, http=http))  # type: ignore[arg-type]
    assert frame["name"].tolist() == NA_LOOKING and len(frame.columns) == 9


@pytest.mark.parametrize("mode", ["file", "transport"])
def test_truncated_gzip_is_detected_even_without_content_length(mode: str) -> None:
    data, _ = _layouts()["csv-flat"]
    body = gzip.compress(data)[:-12]  # the trailer (and a bit) is missing
    headers = {"content-encoding": "gzip"} if mode == "transport" else {}
    with _serve(body, headers) as http, pytest.raises(CargoDownloadError, match="truncated"):
        download_dataframe("https://files.example/out", format="csv", http=http, batch_uuid="b-9")


def test_truncated_gzip_body_shorter_than_content_length() -> None:
    data, _ = _layouts()["csv-flat"]
    full = gzip.compress(data)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(full[: len(full) // 2]), headers={"content-length": str(len(full))})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http, \
            pytest.raises(CargoDownloadError, match="truncated"):
        download_dataframe("https://files.example/out", format="csv", http=http)


# ------------------------------------------------------------------------------ statuses joined onto rows
def test_outcomes_flag_rows_and_restore_omitted_records_in_caller_order() -> None:
    from cargo_gtm.download.outcomes import RunOutcome, apply_outcomes

    records = [{"domain": "a.com"}, {"domain": "b.com"}, {"domain": "a.com"}, {"domain": "c.com"}]
    # the file omitted b.com (skipped); a.com appears twice with the same record id
    frame = pd.DataFrame({"_id": ["ra", "ra", "rc"], "_title": ["a", "a", "c"], "domain": ["a.com", "a.com", "c.com"],
                          "score": [1.0, None, 3.0]})
    outcomes = [RunOutcome("ra", "a", "error", "Provider timeout", {"domain": "a.com"}),
                RunOutcome("rb", "b", "skipped", None, {"domain": "b.com"})]
    out, notes = apply_outcomes(frame, outcomes, records)
    assert notes == []
    assert out["domain"].tolist() == ["a.com", "b.com", "a.com", "c.com"]
    assert out["_status"].tolist() == ["error", "skipped", "success", "success"]
    assert out["_error_message"].tolist()[0] == "Provider timeout" and out["_error_message"][3] is None
    assert out["_id"].tolist() == ["ra", "rb", "ra", "rc"]


def test_outcomes_without_records_append_restored_rows() -> None:
    from cargo_gtm.download.outcomes import RunOutcome, apply_outcomes

    frame = pd.DataFrame({"_id": ["r1"], "_title": ["one"], "x": [1]})
    out, _ = apply_outcomes(frame, [RunOutcome("r2", "two", "filtered", None, {"x": 2})])
    assert out["_id"].tolist() == ["r1", "r2"] and out["_status"].tolist() == ["success", "filtered"]
    assert out["x"].tolist() == [1, 2]


def test_a_slug_naming_several_nodes_is_a_clear_error() -> None:
    from cargo_gtm.download.outcomes import check_output_slug
    from cargo_gtm.errors import CargoInputError
    from cargo_gtm.models import Node

    nodes = [Node(uuid="n1", slug="variables", kind="native", name="First"),
             Node(uuid="n2", slug="variables", kind="native", name="Second"),
             Node(uuid="n3", slug="end", kind="native")]
    check_output_slug(nodes, "end", "rel-1", "b-1")
    with pytest.raises(CargoInputError, match="matches 2 nodes"):
        check_output_slug(nodes, "variables", "rel-1", "b-1")
    with pytest.raises(CargoInputError, match="not a node of release rel-1"):
        check_output_slug(nodes, "nope", "rel-1", "b-1")


def test_filter_stop_filter_names_the_filter_and_its_next_node() -> None:
    from cargo_gtm.download.outcomes import filter_stop_filter
    from cargo_gtm.models import Node

    nodes = [Node(uuid="s", slug="start", kind="native", action_slug="start", children_uuids=["f"]),
             Node(uuid="f", slug="big_enough", kind="native", action_slug="filter", children_uuids=["e"]),
             Node(uuid="e", slug="end", kind="native", action_slug="end")]
    flt = filter_stop_filter(nodes)
    assert flt == {"conjonction": "or", "groups": [{"conjonction": "and", "conditions": [
        {"kind": "node", "nodeSlug": "big_enough", "status": "success"},
        {"kind": "node", "nodeSlug": "end", "status": "absent"}]}]}
    assert filter_stop_filter(nodes[:1]) is None


def test_a_json_batch_file_lands_in_parquet_spread(tmp_path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    from cargo_gtm.download.parquet import write_parquet_from_url

    data, _ = _layouts()["ndjson-nested"]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(gzip.compress(data)))

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        result = write_parquet_from_url("https://files.example/out", tmp_path / "out.parquet", http=http,
                                        expected_rows=len(NA_LOOKING))
    table = pq.read_table(result.path).to_pandas()
    assert result.rows == len(NA_LOOKING) and table["country"].tolist() == NA_LOOKING
    assert table["employees"].dtype == "int64"
