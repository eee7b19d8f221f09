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
from cargo_gtm.errors import CargoError, CargoInputError, CargoNotFoundError
from cargo_gtm.inputs import (
    check_limit,
    check_output_node,
    check_required_fields,
    to_json_records,
    validate_data,
    validate_filter,
)
from cargo_gtm.models import Release

from ..definitions.workspace_data import CargoWorkflowProps

__all__ = ["check_output_node_slug", "check_play_arguments", "check_run_input", "report_unknown_record_ids",
           "unknown_record_ids"]


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
        validate_filter(out["filter"], "filter", columns)  # one path for every check: what the caller wrote
    return out


def check_output_node_slug(client: CargoClient, props: CargoWorkflowProps, slug: str | None,
                           release: Release | None) -> Release | None:
    """``slug`` (the caller's ``output_node_slug``) checked against the deployed release before any batch is
    created: it must name exactly one node. ``release``: the deployed release when already read (else read
    here, only when a slug is given). Returns the release read, or ``release``."""
    if not slug:
        return release
    if release is None:
        try:
            release = client.get_deployed_release(props.workflow_uuid)
        except CargoNotFoundError:  # nothing deployed: Cargo refuses the create itself, before any charge
            return None
    check_output_node(release.nodes, slug, release_uuid=release.uuid, what=f"{props.type} {props.name!r}")
    return release


def check_play_arguments(data: Mapping[str, Any] | None, filter: Mapping[str, Any] | None, limit: int | None,
                         name: str) -> None:
    """``run_play(data=...)`` runs ``data`` as given: a ``filter`` or ``limit`` beside it would be dropped."""
    if data is None:
        return
    dropped = [n for n, v in (("filter", filter), ("limit", limit)) if v is not None]
    if dropped:
        raise CargoInputError(
            f"run_play({name!r}) was given data= and {' and '.join(dropped)}=: the batch runs over data as given, "
            f"so {' and '.join(dropped)} would be dropped silently. Nothing was created: 0 credits spent.",
            hint="put the filter/limit inside data (filter_data(model_uuid, filter, limit=...)), or pass "
            "filter=/limit= without data=.")


def unknown_record_ids(client: CargoClient, data: Mapping[str, Any]) -> list[str] | None:
    """The ids of a ``recordIds`` input that the play's model does not have (Cargo skips them without a
    word: no run, no row), read before the create; None when they cannot be told (not record ids, or Cargo
    would not say)."""
    if data.get("kind") != "recordIds" or not data.get("ids") or not data.get("modelUuid"):
        return None
    ids = [str(i) for i in data["ids"]]
    try:
        records = client.fetch_records(str(data["modelUuid"]), ids)
    except CargoError:
        return None
    if any("_id" not in r for r in records):
        return None  # records without their id: nothing tells which ids matched
    known = {str(r["_id"]) for r in records}
    return [i for i in ids if i not in known]


def report_unknown_record_ids(context: Any, client: CargoClient, props: CargoWorkflowProps,
                              data: Mapping[str, Any]) -> dict[str, Any]:
    """Warn, in the run log, about record ids the play's model does not have (with their count and the first
    few); returns the metadata to record: ``dagster-cargo/unknown_record_ids`` (the count) and
    ``dagster-cargo/unknown_record_ids_sample`` (up to 20 of them). Empty for other input."""
    unknown = unknown_record_ids(client, data)
    if unknown is None:
        return {}
    if unknown:
        sample = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        context.log.warning(
            f"{len(unknown)} of {len(data['ids'])} record ids given to Cargo play {props.name!r} are not records of "
            f"its model ({sample}): Cargo runs no run for them, so they have no row in the output and cost "
            "nothing. Check the ids (they are Cargo record ids, _id) if they were meant to run.")
    return {"dagster-cargo/unknown_record_ids": len(unknown),
            **({"dagster-cargo/unknown_record_ids_sample": ", ".join(unknown[:20])} if unknown else {})}
