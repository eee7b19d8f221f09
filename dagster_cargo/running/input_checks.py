"""Everything about a batch's input that can be checked before a credit is spent, in one place.

:meth:`CargoResource.run_workflow` calls :func:`check_run_input` for every play and tool run
(assets, ops, ``run_play``/``run_tool``): data kind, ``limit``, the filter against the play's
model (columns fetched once per client), records that JSON carries exactly, and the tool's
required form fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cargo_gtm import CargoClient
from cargo_gtm.errors import CargoInputError
from cargo_gtm.inputs import check_limit, check_required_fields, to_json_records, validate_data, validate_filter

from ..definitions.workspace_data import CargoWorkflowProps

__all__ = ["check_run_input"]


def check_run_input(client: CargoClient, props: CargoWorkflowProps, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` checked (a :class:`CargoInputError` says what to change), with records in exact JSON form."""
    if not isinstance(data, Mapping):
        raise CargoInputError(f"Batch data must be a mapping with a 'kind', not a {type(data).__name__}.")
    validate_data(data, workflow_type=props.type)
    out = dict(data)
    if out.get("limit") is not None:
        out["limit"] = check_limit(out["limit"])
    kind = out.get("kind")
    if kind == "records":
        records = out.get("records")
        if records is None or isinstance(records, (str, bytes, Mapping)) or not hasattr(records, "__iter__"):
            raise CargoInputError("Batch data of kind 'records' needs 'records', a list of dicts. Next step: pass "
                                  "records_data([...]) or a DataFrame to run_tool.")
        out["records"] = to_json_records(records)
        if out["records"] and props.type == "tool":
            required = props.required_form_field_slugs
            if required is None:
                required = client.required_form_fields(props.workflow_uuid)
            check_required_fields(out["records"], required, what=f"tool {props.name!r}")
    if kind == "filter" and out.get("filter") is not None:
        model_uuid = out.get("modelUuid") or props.model_uuid
        columns = props.model_columns
        if columns is None and model_uuid:
            columns = client.model_columns(str(model_uuid))
        validate_filter(out["filter"], "data.filter", columns)
    return out
