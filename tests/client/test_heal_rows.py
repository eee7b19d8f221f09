"""The core's heal rows (cargo_gtm.running.HealRows): what a heal round sends again and how its rows merge.

Both orchestrator layers (Dagster's heal rounds, the Airflow operator's ``retry_failed``) use these; the
end-to-end behaviour against the emulator is tested in tests/dagster_layer/test_heal.py and the provider's
dag tests."""

from __future__ import annotations

import pandas as pd
from cargo_gtm.running import HealRows


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)


def _tool_rows(statuses: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"domain": [f"d{i}.com" for i in range(len(statuses))], "_status": statuses,
                         "score": [1 if s == "success" else None for s in statuses]})


def test_a_tools_failed_records_are_sent_again_as_sent_chunked_and_merged_in_input_order():
    records = [{"domain": f"d{i}.com", "n": i} for i in range(6)]
    rows = HealRows(_tool_rows(["success", "error", "success", "error", "error", "success"]), records=records,
                    log=_Log())
    assert rows.pending() == [1, 3, 4]
    parts = rows.round_data(rows.pending(), max_records=2, max_bytes=1 << 20)
    assert parts == [({"kind": "records", "records": [records[1], records[3]]}, [1, 3]),
                     ({"kind": "records", "records": [records[4]]}, [4])]
    retry = pd.DataFrame({"domain": ["d1.com", "d3.com", "d4.com"], "_status": ["success", "error", "success"],
                          "score": [7, None, 9]})
    rows.merge(retry, [1, 3, 4])
    assert rows.frame["domain"].tolist() == [f"d{i}.com" for i in range(6)]
    assert rows.frame["_status"].tolist() == ["success", "success", "success", "error", "success", "success"]
    assert rows.frame["score"].tolist()[1] == 7 and rows.frame["score"].tolist()[4] == 9
    assert rows.healed() == 2 and rows.pending() == [3]


def test_a_plays_failed_records_are_sent_again_by_id_and_a_skipped_or_missing_one_is_given_up():
    frame = pd.DataFrame({"_id": ["a", "b", "c", "d"], "_status": ["error", "success", "error", "error"]})
    log = _Log()
    rows = HealRows(frame, model_uuid="m-1", log=log)
    assert rows.round_data(rows.pending(), max_records=500, max_bytes=1 << 20) == [
        ({"kind": "recordIds", "modelUuid": "m-1", "ids": ["a", "c", "d"]}, [0, 2, 3])]
    retry = pd.DataFrame({"_id": ["c", "a"], "_status": ["skipped", "success"]})  # d: no row at all
    rows.merge(retry, [0, 2, 3])
    assert rows.frame["_status"].tolist() == ["success", "success", "error", "error"]
    assert rows.pending() == []  # c was skipped by Cargo, d came back with no row: neither is paid for again
    assert rows.given_up == {2, 3}
    assert any("skipped the re-run of 1 failed records" in w for w in log.warnings)


def test_rows_that_no_longer_align_with_the_input_are_not_healed():
    log = _Log()
    rows = HealRows(_tool_rows(["error", "success"]), records=[{"domain": "d0.com"}], log=log)
    assert rows.round_data(rows.pending(), max_records=10, max_bytes=1 << 20) == []
    assert "2 rows for 1 input records" in log.warnings[0]


def test_a_retry_that_returns_another_row_count_is_not_merged():
    log = _Log()
    records = [{"domain": "d0.com"}, {"domain": "d1.com"}]
    rows = HealRows(_tool_rows(["error", "error"]), records=records, log=log)
    rows.merge(_tool_rows(["success"]), [0, 1])
    assert rows.frame["_status"].tolist() == ["error", "error"] and rows.pending() == []
    assert "returned 1 rows for 2 records" in log.warnings[-1]


def test_an_integer_column_with_gaps_stays_exact_integers_after_a_round_of_only_gaps():
    big = 9007199254740993
    frame = pd.DataFrame({"domain": ["d0.com", "d1.com", "d2.com"], "n": pd.array([big, None, 5], dtype="Int64"),
                          "_status": ["success", "error", "success"]})
    rows = HealRows(frame, records=[{"domain": "d0.com", "n": big}, {"domain": "d1.com", "n": None},
                                    {"domain": "d2.com", "n": 5}], log=_Log())
    rows.merge(pd.DataFrame({"domain": ["d1.com"], "n": pd.Series([None], dtype=object), "_status": ["success"]}),
               [1])
    assert str(rows.frame["n"].dtype) == "Int64" and int(rows.frame["n"].iloc[0]) == big
    assert rows.frame["n"].isna().tolist() == [False, True, False] and rows.frame["_status"].tolist() == ["success"] * 3
