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
