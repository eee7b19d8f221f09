"""The query string must be byte-identical to the official client's (REFERENCE §2.4)."""

import pytest
from cargo_gtm.query import js_string, serialize_params


def test_reference_example_arrays_and_scalars():
    params = {
        "workflowUuids": ["a", "b"], "statuses": ["running", "success"], "hasRuns": True,
        "limit": 20, "offset": 0, "releaseUuid": None,
    }
    assert serialize_params(params) == (
        "?workflowUuids%5B%5D=a&workflowUuids%5B%5D=b&statuses%5B%5D=running"
        "&statuses%5B%5D=success&hasRuns=true&limit=20&offset=0"
    )


def test_reference_example_dates_keep_colons():
    params = {"from": "2025-01-01T00:00:00Z", "to": "2025-01-31", "groupBy": "workflow_uuid", "unit": "billing.credits"}
    assert serialize_params(params) == "?from=2025-01-01T00:00:00Z&to=2025-01-31&groupBy=workflow_uuid&unit=billing.credits"


def test_reference_example_nested_filter_is_indexed():
    params = {"filter": {"conjonction": "and", "groups": [
        {"conjonction": "or", "conditions": [{"kind": "string", "values": ["a b", "c+d"]}]}]}}
    assert serialize_params(params) == (
        "?filter%5Bconjonction%5D=and&filter%5Bgroups%5D%5B0%5D%5Bconjonction%5D=or"
        "&filter%5Bgroups%5D%5B0%5D%5Bconditions%5D%5B0%5D%5Bkind%5D=string"
        "&filter%5Bgroups%5D%5B0%5D%5Bconditions%5D%5B0%5D%5Bvalues%5D%5B0%5D=a+b"
        "&filter%5Bgroups%5D%5B0%5D%5Bconditions%5D%5B0%5D%5Bvalues%5D%5B1%5D=c%2Bd"
    )


def test_empty_and_null_emit_nothing():
    assert serialize_params({}) == ""
    assert serialize_params({"a": None, "b": []}) == ""
    assert serialize_params({"ids": ["x", None, "y"]}) == "?ids%5B%5D=x&ids%5B%5D=y"
    assert serialize_params({"f": {"v": ["x", None, "y"]}}) == "?f%5Bv%5D%5B0%5D=x&f%5Bv%5D%5B2%5D=y"


@pytest.mark.parametrize(
    "raw, encoded",
    [("a@b.com", "a%40b.com"), ("x/y", "x%2Fy"), ("it's (ok)!*~", "it's+(ok)!*~"), ("a$b,c:d", "a$b,c:d"),
     ("é", "%C3%A9")],
)
def test_encoding_matches_encode_uri_component_plus_axios_exceptions(raw, encoded):
    assert serialize_params({"q": raw}) == f"?q={encoded}"


def test_js_string_numbers():
    assert js_string(20.0) == "20"
    assert js_string(1.5) == "1.5"
    assert js_string(False) == "false"
