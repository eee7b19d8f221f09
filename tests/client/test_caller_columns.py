"""restore_caller_columns: the caller's DataFrame columns back in a tool's output, or the output untouched."""

import datetime as dt

import pandas as pd
from cargo_gtm import to_json_records
from cargo_gtm.download.caller_columns import restore_caller_columns


def _output(sent, statuses, extra="found"):
    frame = pd.DataFrame([{**r, "result": extra} for r in sent])
    frame["_status"] = statuses
    return frame


def test_dropped_rows_among_identical_ones_are_matched_in_order():
    caller = pd.DataFrame({"day": [dt.date(2026, 1, 1), dt.date(2026, 1, 1), dt.date(2026, 1, 2)],
                           "n": pd.array([1, 1, None], dtype="Int64")})
    sent = to_json_records(caller)
    full = _output(sent, ["success", "error", "success"])
    dropped = full.loc[full["_status"] != "error"].reset_index(drop=True)
    out = restore_caller_columns(dropped, sent)
    assert list(out["day"]) == [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]
    assert str(out["n"].dtype) == "Int64" and out["n"].isna().tolist() == [False, True]
    assert list(out["result"]) == ["found", "found"]


def test_a_row_that_matches_no_input_leaves_the_output_as_it_came():
    caller = pd.DataFrame({"when": pd.to_datetime(["2026-01-01", "2026-01-02"])})
    sent = to_json_records(caller)
    odd = _output([{"when": "2027-01-01T00:00:00"}], ["success"])
    assert restore_caller_columns(odd, sent) is odd
    too_many = _output(sent + sent, ["success"] * 4)
    assert restore_caller_columns(too_many, sent) is too_many


def test_the_outputs_own_columns_are_never_taken_from_the_input():
    caller = pd.DataFrame({"domain": ["a.com"], "_status": ["success"], "_id": ["old"]})
    sent = to_json_records(caller)
    frame = pd.DataFrame({"domain": ["a.com"], "_status": ["error"], "_id": ["rec_1"]})
    out = restore_caller_columns(frame, sent)
    assert out.loc[0, "_status"] == "error" and out.loc[0, "_id"] == "rec_1"


def test_records_given_as_dicts_are_returned_as_sent():
    records = [{"day": dt.date(2026, 1, 1)}]
    sent = to_json_records(records)
    frame = _output(sent, ["success"])
    assert restore_caller_columns(frame, sent) is frame
