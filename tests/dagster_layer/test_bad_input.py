"""Bad input gets a clear error before any credit is spent (and odd values serialize right)."""

import math

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from cargo_gtm import CargoClient, records_data

from dagster_cargo import CargoResource

from ..conftest import TOKEN, make_resource


@pytest.fixture
def emulator(manual_emulator):
    """This file runs on the emulator's manual clock: simulated time moves as far as the resource waits."""
    return manual_emulator


def run_asset(emu, body, **settings):
    @dg.asset
    def subject(context: dg.AssetExecutionContext, cargo: CargoResource):
        return body(context, cargo).materialize_result()

    cargo = make_resource(emu, **settings)
    return dg.materialize([subject], resources={"cargo": cargo}, raise_on_error=False)


def assert_refused_without_spending(emu, result, *fragments):
    assert not result.success
    text = result.failure_data_for_node("subject").error.to_string()
    for fragment in fragments:
        assert fragment in text
    with CargoClient(TOKEN, base_url=emu.base_url) as c:
        assert c.list_batches() == []
        assert c.get_subscription().subscription_credits_used_count == 0
    assert not [r for r in emu.request_log if r["method"] == "POST" and r["path"] == "/v1/orchestration/batches"]


@pytest.mark.parametrize(
    "body, fragments",
    [
        (lambda ctx, cargo: cargo.run_play(ctx, "Score inbound companys"),
         ["No Cargo play named", "Did you mean: 'Score inbound companies'"]),
        (lambda ctx, cargo: cargo.run_tool(ctx, "Find email", [{"domain": "a.com"}]),
         ["No Cargo tool named", "'Find work email'"]),
        (lambda ctx, cargo: cargo.run_play(ctx, "Score inbound companies", data=records_data([{"domain": "a.com"}])),
         ["does not fit a play", "plays take segment, change, filter or recordIds"]),
        (lambda ctx, cargo: cargo.run_play(ctx, "Score inbound companies",
                                           filter={"conjunction": "and", "groups": []}),
         ["'conjunction'", "Cargo spells it 'conjonction'"]),
        (lambda ctx, cargo: cargo.run_play(ctx, "Score inbound companies", filter={"conjonction": "and", "groups": [
            {"conjunction": "or", "conditions": []}]}),
         ["filter.groups[0]", "Rename the key to 'conjonction'"]),
    ],
    ids=["unknown-play", "unknown-tool", "kind-misfit", "conjunction-top", "conjunction-group"],
)
def test_bad_input_is_refused_before_any_batch(emulator, body, fragments):
    assert_refused_without_spending(emulator, run_asset(emulator, body), *fragments)


def test_pandas_and_numpy_values_are_sent_as_plain_json(emulator):
    frame = pd.DataFrame({
        "domain": ["acme.com", "hooli.com"],
        "company_name": ["Acme", None],
        "employees": [np.int64(120), np.int64(7)],
        "score": [0.5, math.nan],
        "signed_up_at": [pd.Timestamp("2025-01-02T03:04:05Z"), pd.NaT],
        "active": [np.bool_(True), np.bool_(False)],
    })
    result = run_asset(emulator, lambda ctx, cargo: cargo.run_tool(ctx, "Enrich company", frame))
    assert result.success
    (create,) = [r for r in emulator.request_log if r["method"] == "POST" and r["path"] == "/v1/orchestration/batches"]
    assert create["json"]["data"]["records"] == [
        {"domain": "acme.com", "company_name": "Acme", "employees": 120, "score": 0.5,
         "signed_up_at": "2025-01-02T03:04:05+00:00", "active": True},
        {"domain": "hooli.com", "company_name": None, "employees": 7, "score": None,
         "signed_up_at": None, "active": False},
    ]
    assert len(result.output_for_node("subject")) == 2


def test_records_that_carry_an_earlier_outcome_get_this_runs_status(emulator):
    """An earlier Cargo output fed to the next tool carries ``_status``/``_error_message``: the output shows this
    run's outcome there (globex.com's run fails now), never the one the input came with."""
    emulator.plan_failures({"domain=globex.com": "always"})
    upstream = pd.DataFrame({"domain": ["acme.com", "globex.com"], "company_name": ["Acme", "Globex"],
                             "_status": ["success", "success"], "_error_message": [None, None]})
    result = run_asset(emulator, lambda ctx, cargo: cargo.run_tool(ctx, "Enrich company", upstream))
    assert result.success
    out = result.output_for_node("subject")
    (batch,) = emulator.batches()
    assert batch.failed_runs_count == 1
    assert list(out["_status"]) == ["success", "error"]
    assert out["_error_message"].iloc[0] is None and out["_error_message"].iloc[1]
    assert list(out["company_name"]) == ["Acme", "Globex"]  # the other input columns are the caller's


def test_integers_with_a_missing_value_come_back_exact(emulator):
    """An id column with a gap is not turned into floats on its way back: 9007199254740993 stays itself."""
    records = [{"domain": "acme.com", "crm_id": 9007199254740993, "employees": 12},
               {"domain": "globex.com", "crm_id": None, "employees": None}]
    result = run_asset(emulator, lambda ctx, cargo: cargo.run_tool(ctx, "Enrich company", records))
    out = result.output_for_node("subject")
    assert str(out["crm_id"].dtype) == "Int64" and int(out["crm_id"].iloc[0]) == 9007199254740993
    assert out["crm_id"].isna().tolist() == [False, True] and int(out["employees"].iloc[0]) == 12


def _typed_frame():
    """Columns whose JSON form differs from the DataFrame's: tz-aware timestamps, Decimals, dates, a categorical,
    pandas' nullable text and booleans, float32."""
    import datetime as dt
    from decimal import Decimal

    return pd.DataFrame({
        "domain": pd.array(["acme.com", "globex.com", "initech.io", "hooli.com"], dtype="string"),
        "signed_up_at": pd.to_datetime(["2025-01-02T03:04:05.123456789", None, "2025-03-04T00:00:00.5",
                                        "2025-05-06T07:08:09.25"]).tz_localize("Europe/Paris"),
        "arr": [Decimal("1.10"), Decimal("20"), None, Decimal("3.5")],
        "renewal": [dt.date(2026, 1, 31), dt.date(2026, 2, 1), None, dt.date(2026, 3, 1)],
        "tier": pd.Categorical(["gold", "silver", "gold", None]),
        "active": pd.array([True, None, False, True], dtype="boolean"),
        "score": np.array([0.5, 0.25, 1.5, 2.0], dtype="float32"),
    })


@pytest.mark.parametrize("failed_rows", ["keep", "drop"])
def test_the_callers_columns_come_back_as_the_dataframe_held_them(emulator, failed_rows):
    """Sent as JSON (ISO text, numbers, plain values), returned as given: each input column of the output has
    the caller's dtype and values, also when a failed record's row is dropped (rows matched in order)."""
    emulator.plan_failures({"domain=globex.com": "always"})
    given = _typed_frame()
    result = run_asset(emulator, lambda ctx, cargo: cargo.run_tool(ctx, "Enrich company", given),
                       failed_rows=failed_rows)
    assert result.success
    (create,) = [r for r in emulator.request_log if r["method"] == "POST" and r["path"] == "/v1/orchestration/batches"]
    assert create["json"]["data"]["records"][0]["signed_up_at"] == "2025-01-02T03:04:05.123456789+01:00"
    assert create["json"]["data"]["records"][0]["arr"] == 1.1
    out = result.output_for_node("subject")
    kept = [0, 1, 2, 3] if failed_rows == "keep" else [0, 2, 3]
    assert list(out["_status"]) == (["success", "error", "success", "success"] if failed_rows == "keep"
                                    else ["success"] * 3)
    assert "company_name" in out.columns  # the tool's own output is there too
    for column in given.columns:
        assert out[column].dtype == given[column].dtype, column
        expected = given[column].iloc[kept].reset_index(drop=True)
        pd.testing.assert_series_equal(out[column].reset_index(drop=True), expected, check_names=False)
    assert repr(out["arr"].iloc[0]) == "Decimal('1.10')"


def test_a_list_of_dicts_comes_back_as_sent(emulator):
    """Records given as dicts are what was sent: their JSON form (there is no DataFrame dtype to restore)."""
    import datetime as dt

    records = [{"domain": "acme.com", "renewal": dt.date(2026, 1, 31)}]
    result = run_asset(emulator, lambda ctx, cargo: cargo.run_tool(ctx, "Enrich company", records))
    assert list(result.output_for_node("subject")["renewal"]) == ["2026-01-31"]


def test_rows_out_of_the_callers_order_keep_their_own_input_values(emulator, monkeypatch):
    """A stopped run's row missing from the batch file, its run's ``input`` not exactly the record (Cargo gives the
    first node's resolved config): the row is restored at the end, out of the caller's order. Each row keeps its
    own record's values (in their JSON form); no column is put back by position over other records' rows."""
    from cargo_gtm_emulator import exports

    emulator.set_variants(stopped_rows="omitted")
    real = exports.output_rows

    def resolved_config_only(store, runs, slug, now):
        columns, rows = real(store, runs, slug, now)
        for row in rows:
            row["input"] = {k: v for k, v in (row["input"] or {}).items() if k != "crm_id"}
        return columns, rows

    monkeypatch.setattr(exports, "output_rows", resolved_config_only)
    given = pd.DataFrame({"domain": ["acme.com", "gmail.com", "globex.com"], "crm_id": [1, 2, 3]})
    result = run_asset(emulator, lambda ctx, cargo: cargo.run_tool(ctx, "Normalize domain", given))
    out = result.output_for_node("subject")
    assert dict(zip(out["domain"], out["_status"])) == {"acme.com": "success", "gmail.com": "filtered",
                                                        "globex.com": "success"}
    assert dict(zip(out["domain"], out["_title"])) == {d: d for d in given["domain"]}
