"""The task's output file: every paid batch gives one, whatever values its records hold."""

from __future__ import annotations

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
    from cargo_provider.step import _json_text

    assert [_json_text(v) for v in (None, float("nan"), pd.NA, pd.NaT, "02134", 501, ["a"])] == \
        [None, None, None, None, '"02134"', "501", '["a"]']
