"""Local input validation and JSON-safe conversion."""

import math

import numpy as np
import pandas as pd
import pytest
from cargo_gtm import CargoInputError, change_data, filter_data, to_json_records, validate_data


def test_conjunction_misspelling_is_rejected_at_every_level():
    with pytest.raises(CargoInputError, match="conjonction"):
        filter_data("m", {"conjunction": "and", "groups": []})
    with pytest.raises(CargoInputError, match=r"groups\[0\]"):
        filter_data("m", {"conjonction": "and", "groups": [{"conjunction": "or", "conditions": []}]})


def test_data_kind_must_fit_workflow_type():
    with pytest.raises(CargoInputError, match="plays take segment"):
        validate_data({"kind": "records", "records": []}, workflow_type="play")
    with pytest.raises(CargoInputError, match="tools take records"):
        validate_data({"kind": "filter", "modelUuid": "m"}, workflow_type="tool")
    validate_data({"kind": "filter", "modelUuid": "m"}, workflow_type="play")


def test_change_kinds_checked():
    assert change_data("c", ["added"]) == {"kind": "change", "changeUuid": "c", "changeKinds": ["added"]}
    with pytest.raises(CargoInputError):
        change_data("c", ["new"])


def test_dataframe_values_become_json_safe():
    frame = pd.DataFrame({
        "n": [np.int64(3), np.int64(4)],
        "f": [1.5, math.nan],
        "t": [pd.Timestamp("2025-01-02T03:04:05Z"), pd.NaT],
        "s": ["a", None],
        "b": [np.bool_(True), np.bool_(False)],
    })
    rows = to_json_records(frame)
    assert rows == [
        {"n": 3, "f": 1.5, "t": "2025-01-02T03:04:05+00:00", "s": "a", "b": True},
        {"n": 4, "f": None, "t": None, "s": None, "b": False},
    ]
    assert type(rows[0]["n"]) is int and type(rows[0]["b"]) is bool


def _chunks_one_record_at_a_time(records, max_records, max_bytes):
    """The split chunk_records must make: records in order, a new chunk when the next one would pass either limit
    (a record's size is its compact JSON + 1)."""
    import json

    chunks, current, size = [], [], 0
    for record in records:
        record_bytes = len(json.dumps(record, separators=(",", ":"), default=str)) + 1
        if current and (len(current) >= max_records or size + record_bytes > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append(record)
        size += record_bytes
    return chunks + ([current] if current else [])


def test_chunks_are_those_of_a_record_by_record_split_whichever_limit_binds():
    """chunk_records encodes a full chunk at once when it fits (a fan-out of 40,000 records: 18 ms, not 88 ms); the
    chunks must be exactly those of the record-by-record split, whether the record or the byte limit binds."""
    import random

    from cargo_gtm.inputs.records import chunk_records

    rng = random.Random(7)
    for _ in range(500):
        records = [{"k": "x" * rng.randint(0, 40), "n": rng.randint(0, 10 ** rng.randint(0, 6))}
                   for _ in range(rng.randint(0, 60))]
        max_records, max_bytes = rng.randint(1, 12), rng.randint(60, 300)
        assert chunk_records(records, max_records=max_records, max_bytes=max_bytes) == \
            _chunks_one_record_at_a_time(records, max_records, max_bytes)
    big = [{"k": "x"}, {"k": "y" * 500}]
    with pytest.raises(CargoInputError, match="Input record 1 is 509 bytes"):
        chunk_records(big, max_records=10, max_bytes=100)


def test_a_dataframe_becomes_the_records_to_dict_would_give_for_every_dtype():
    """to_json_records reads a DataFrame column by column (a quarter of to_dict's time); the records it makes must be
    exactly those to_dict(orient="records") would give, once JSON-safe, for every kind of column, missing values
    included, and a value JSON cannot carry must fail with the same message."""
    import datetime as dt
    import decimal

    from cargo_gtm.inputs.records import _record

    frame = pd.DataFrame({
        "i": [1, 2, 3], "f": [1.5, np.nan, 3.0], "b": [True, False, True], "u8": np.array([1, 2, 3], dtype="uint8"),
        "f32": np.array([1.5, 2.5, np.nan], dtype="float32"), "d": pd.to_datetime(["2025-01-01", None, "2025-01-03"]),
        "tz": pd.to_datetime(["2025-01-01", "2025-01-02", None]).tz_localize("UTC"),
        "cat": pd.Categorical(["a", None, "b"]), "obj": [np.int64(3), "x", None],
        "I64": pd.array([1, None, 3], dtype="Int64"), "F64": pd.array([1.5, None, 2.0], dtype="Float64"),
        "bool_na": pd.array([True, None, False], dtype="boolean"),
        "sp": pd.array(["a", None, "c"], dtype="string[python]"), "sa": pd.array(["a", None, "c"], dtype="string[pyarrow]"),
        "s": ["a", None, "c"], "dec": [decimal.Decimal("1.5"), None, decimal.Decimal("2")], "lst": [[1], [2, 3], []],
        "date": [dt.date(2025, 1, 1), None, dt.date(2025, 1, 2)], "nested": [{"a": np.int64(1)}, {"b": pd.NA}, None],
    })
    expected = [_record(row, i) for i, row in enumerate(frame.to_dict(orient="records"))]
    got = to_json_records(frame)
    assert [{k: (type(v), repr(v)) for k, v in row.items()} for row in got] == \
        [{k: (type(v), repr(v)) for k, v in row.items()} for row in expected]
    assert to_json_records(pd.DataFrame(index=range(2))) == [{}, {}]  # rows without columns are still rows
    with pytest.raises(CargoInputError, match=r"Input record 0, column 'x': is a Timedelta"):
        to_json_records(pd.DataFrame({"x": pd.to_timedelta([1], unit="s")}))
