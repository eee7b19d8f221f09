"""The task's output file: every paid batch gives one, whatever values its records hold."""

from __future__ import annotations

import pytest
from test_exactly_once import context, operator


def test_values_parquet_cannot_type_are_written_as_json_text_not_lost_after_paying(cargo_conn, store,
                                                                                   tmp_path) -> None:
    """Text and numbers in one column, text and lists, empty objects: the batch is paid, so the file is written,
    those columns as JSON text, named in the summary."""
    import json

    import pandas as pd

    records = [{"domain": "acme.com", "zip": "02134", "tags": "vip", "meta": {}},
               {"domain": "globex.com", "zip": 501, "tags": ["a", "b"], "meta": {}}]
    summary = operator(tmp_path, records=records).execute(context(store))
    assert sorted(summary["json_text_columns"]) == ["meta", "tags", "zip"]
    frame = pd.read_parquet(summary["uri"].removeprefix("file://"))
    assert [json.loads(v) for v in frame["zip"]] == ["02134", 501]
    assert [json.loads(v) for v in frame["tags"]] == ["vip", ["a", "b"]]
    assert list(frame["domain"]) == ["acme.com", "globex.com"] and list(frame["_status"]) == ["success", "success"]
    assert len(cargo_conn.batches()) == 1


def test_a_missing_value_in_a_column_written_as_json_text_stays_missing() -> None:
    import pandas as pd
    from cargo_provider.outputs import json_text

    assert [json_text(v) for v in (None, float("nan"), pd.NA, pd.NaT, "02134", 501, ["a"])] == \
        [None, None, None, None, '"02134"', "501", '["a"]']


def test_a_parquet_inputs_columns_keep_their_types_in_the_output(cargo_conn, store, tmp_path) -> None:
    """Sent as JSON (ISO text, numbers), written back in the file's own Arrow types: timestamps, decimals, dates
    and an int64 with a null are not turned into their JSON form in the output Parquet, also when a failed
    record's row is dropped."""
    import datetime as dt
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    given = pa.table({
        "domain": ["acme.com", "globex.com", "initech.io"],
        "signed_up_at": pa.array([dt.datetime(2025, 1, 2, 3, 4, 5, 123456), None, dt.datetime(2025, 3, 1)],
                                 pa.timestamp("us", tz="Europe/Paris")),
        "arr": pa.array([Decimal("1.10"), Decimal("20.00"), None], pa.decimal128(10, 2)),
        "renewal": pa.array([dt.date(2026, 1, 31), None, dt.date(2026, 3, 1)]),
        "crm_id": pa.array([9007199254740993, None, 7], pa.int64()),
    })
    pq.write_table(given, tmp_path / "in.parquet")
    cargo_conn.plan_failures({"domain=globex.com": "always"})
    summary = operator(tmp_path, records=str(tmp_path / "in.parquet"), failed_rows="drop").execute(context(store))
    (create,) = [r for r in cargo_conn.request_log if r["method"] == "POST" and r["path"] == "/v1/orchestration/batches"]
    assert create["json"]["data"]["records"][0]["signed_up_at"] == "2025-01-02T04:04:05.123456+01:00"  # stored in UTC
    out = pq.read_table(summary["uri"].removeprefix("file://"))
    for name in given.column_names:
        assert out.schema.field(name).type == given.schema.field(name).type, name
        assert out.column(name).to_pylist() == given.take([0, 2]).column(name).to_pylist(), name
    assert out.column("_status").to_pylist() == ["success", "success"] and summary["json_text_columns"] == []


def test_dropping_failed_rows_without_heal_rounds_warns_of_no_healing(cargo_conn, store, tmp_path, capfd) -> None:
    """failed_rows='drop' and no retry_failed: the drop is said once; nothing speaks of healing."""
    cargo_conn.plan_failures({"domain=globex.com": "always"})
    summary = operator(tmp_path, failed_rows="drop").execute(context(store))
    assert (summary["records"], summary["rows"], summary["heal_rounds"]) == (2, 1, 0)
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert "their rows were dropped" in text and "heal" not in text.lower(), text


@pytest.mark.parametrize("kind", ["sparse", "mixed-categorical"])
def test_an_input_column_parquet_cannot_write_as_given_is_written_as_it_was_sent(cargo_conn, store, tmp_path,
                                                                                 kind) -> None:
    """Parquet cannot write sparse data, nor categories of mixed types. The batch is paid: the output file is
    written, such a column in the form it was sent in (JSON text when Parquet cannot type that either, named in
    the summary)."""
    import pandas as pd

    column = pd.arrays.SparseArray([0, 1]) if kind == "sparse" else pd.Categorical([1, "gold"])
    given = pd.DataFrame({"domain": ["acme.com", "globex.com"], "x": column})
    summary = operator(tmp_path, records=given).execute(context(store))
    out = pd.read_parquet(summary["uri"].removeprefix("file://"))
    assert len(cargo_conn.batches()) == 1
    if kind == "sparse":
        assert list(out["x"]) == [0, 1] and summary["json_text_columns"] == []
    else:
        assert list(out["x"]) == ["1", '"gold"'] and summary["json_text_columns"] == ["x"]
