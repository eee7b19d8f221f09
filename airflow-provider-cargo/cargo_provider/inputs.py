"""What a ``CargoRunOperator`` runs: the workflow (play, tool or workflow) and its batch input.

Records come from XCom (a list of dicts or a DataFrame, e.g. ``upstream.output``) or from an
``ObjectStoragePath`` (Parquet, CSV, JSON or JSON Lines, by suffix); a play takes a filter (Cargo's
``conjonction`` groups), a segment, record ids or a segment change. The input is checked locally with the
core's rules before anything can be spent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cargo_gtm.errors import CargoInputError

__all__ = ["Target", "resolve_target", "build_data", "load_records"]


@dataclass(frozen=True)
class Target:
    """A workflow to run: its uuid, what it is (``play``/``tool``/``workflow``), its name and (play) model."""

    workflow_uuid: str
    type: str
    name: str
    model_uuid: str | None = None


def resolve_target(client: Any, *, play: str | None = None, tool: str | None = None,
                   workflow: str | None = None) -> Target:
    """The one workflow named by ``play``, ``tool`` or ``workflow`` (a name or UUID; a workflow by UUID)."""
    given = [name for name, value in (("play", play), ("tool", tool), ("workflow", workflow)) if value]
    if len(given) != 1:
        raise CargoInputError(f"CargoRunOperator needs exactly one of play=, tool= or workflow=; got {given or 'none'}.",
                              hint="name the play or tool (name or UUID), or pass a workflow UUID.")
    if play:
        p = client.find_play(play)
        return Target(p.workflow_uuid, "play", p.name, getattr(p, "model_uuid", None))
    if tool:
        t = client.find_tool(tool)
        return Target(t.workflow_uuid, "tool", t.name)
    for p in client.list_plays():
        if p.workflow_uuid == workflow:
            return Target(p.workflow_uuid, "play", p.name, getattr(p, "model_uuid", None))
    for t in client.list_tools():
        if t.workflow_uuid == workflow:
            return Target(t.workflow_uuid, "tool", t.name)
    raise CargoInputError(f"No Cargo play or tool has workflow UUID {workflow!r}.",
                          hint="pass the workflowUuid shown on the play's or tool's page, or use play=/tool= by name.")


def _read_path(path: Any) -> Any:
    """A DataFrame from an ``ObjectStoragePath`` (or a local path / URI string), by suffix."""
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

    p = path if isinstance(path, ObjectStoragePath) else ObjectStoragePath(str(path))
    suffix = p.suffix.lower()
    with p.open("rb") as handle:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(handle)
        if suffix == ".csv":
            return pd.read_csv(handle)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(handle, lines=True)
        if suffix == ".json":
            return pd.read_json(handle)
    raise CargoInputError(f"Cannot read records from {p}: unknown suffix {suffix!r}.",
                          hint="use a .parquet, .csv, .json or .jsonl file.")


def load_records(value: Any) -> list[dict[str, Any]]:
    """Input records, JSON-safe, from XCom values, a DataFrame or an object-storage path."""
    from cargo_gtm import to_json_records

    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "[{":  # an XCom rendered as text by a template
            value = json.loads(text)
        else:
            value = _read_path(text)
    elif not isinstance(value, (list, tuple, Mapping)) and hasattr(value, "open") and hasattr(value, "suffix"):
        value = _read_path(value)
    if isinstance(value, Mapping):
        value = [value]
    return to_json_records(value)


def build_data(target: Target, *, records: Any = None, filter: Mapping[str, Any] | None = None,
               limit: int | None = None, segment: str | None = None, record_ids: Sequence[str] | None = None,
               change: str | None = None, change_kinds: Sequence[str] = ("added", "updated"),
               client: Any = None) -> dict[str, Any]:
    """The batch ``data`` for ``target`` (a tool takes records; a play a filter, segment, ids or change)."""
    from cargo_gtm import records_data
    from cargo_gtm.inputs.records import play_input

    if target.type == "tool":
        if any(v is not None for v in (filter, segment, record_ids, change)):
            raise CargoInputError(f"Tool {target.name!r} takes records only (records=...), not a filter, segment, "
                                  "record ids or change.", hint="pass records=, or run a play for the others.")
        return records_data(load_records(records))
    if records is not None:
        raise CargoInputError(f"Play {target.name!r} runs over its model's records: give filter=, segment=, "
                              "record_ids= or change=, not records=.", hint="run a tool over inline records.")
    segment_uuid = _segment_uuid(client, segment) if segment else None
    return play_input(target.model_uuid, change_uuid=change, change_kinds=change_kinds, segment_uuid=segment_uuid,
                      record_ids=record_ids, filter=filter, limit=limit, play_name=target.name)


def _segment_uuid(client: Any, segment: str) -> str:
    segments = client.list_segments()
    for item in segments:
        if segment in (item.uuid, item.name):
            return str(item.uuid)
    names = ", ".join(repr(s.name) for s in segments)
    raise CargoInputError(f"No Cargo segment named or with UUID {segment!r}. Available segments: {names}.",
                          hint="spell the segment's name exactly, or pass its UUID.")
