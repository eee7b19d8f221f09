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


_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".json": "json"}


def _read_path(path: Any) -> Any:
    """The records of an ``ObjectStoragePath`` (or a local path / URI string), by suffix, as the file holds them:
    a CSV's cells as their text (a zip code ``02134`` stays ``"02134"``, ``NA`` stays ``"NA"``), JSON values as
    JSON gives them, Parquet values in their Arrow types (an int64 with nulls stays exact)."""
    from airflow.sdk import ObjectStoragePath

    p = path if isinstance(path, ObjectStoragePath) else ObjectStoragePath(str(path))
    kind = _SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise CargoInputError(f"Cannot read records from {p}: unknown suffix {p.suffix.lower()!r}.",
                              hint="use a .parquet, .csv, .json or .jsonl file, or pass the records themselves "
                                   "(a list of dicts, a DataFrame or upstream.output).")
    try:
        with p.open("rb") as handle:
            return _parse(kind, handle)
    except FileNotFoundError as exc:
        raise CargoInputError(f"No file at {p} to read records from.",
                              hint="check the path (a templated one is rendered before this), or pass the records "
                                   "themselves.") from exc
    except ValueError as exc:
        raise CargoInputError(f"Cannot read records from {p} as {kind}: {exc}.",
                              hint=f"check that the file is valid {kind}, or rename it to the suffix it has.") from exc


def _parse(kind: str, handle: Any) -> Any:
    if kind == "parquet":
        import pandas as pd
        import pyarrow.parquet as pq
        from cargo_gtm import to_json_records

        table = pq.read_table(handle)
        index = [c for c in (table.schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)]
        table = table.drop_columns(index)  # pandas' stored index is not a field of the records
        records = to_json_records(table.to_pylist())  # Python values: twice as fast to convert as pandas' scalars
        records.source = table.to_pandas(types_mapper=pd.ArrowDtype)  # the output gets the file's Arrow types back
        return records
    text = handle.read().decode("utf-8-sig")
    if kind == "csv":
        import csv
        import io

        return [dict(row) for row in csv.DictReader(io.StringIO(text, newline=""))]
    if kind == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return _columns_orient_to_records(json.loads(text))


def _columns_orient_to_records(value: Any) -> Any:
    """pandas' default JSON (``df.to_json(path)``: ``{column: {index: value}}``) as its records, values untouched;
    any other JSON as it is (a list of records, or what the core then refuses)."""
    if not (isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values())):
        return value
    index: dict[str, None] = {}
    for column in value.values():
        index.update(dict.fromkeys(column))
    return [{name: column[i] for name, column in value.items() if i in column} for i in index]


def _from_text(text: str) -> Any:
    """An XCom rendered as text by a template (JSON), else a path to read."""
    stripped = text.strip()
    if not stripped:
        raise CargoInputError("records= is an empty string.", hint="pass records=upstream.output (an XComArg), a "
                              "list of dicts, a DataFrame or a file path; a template that rendered to nothing "
                              "found no XCom.")
    if stripped[:1] not in "[{":
        return _read_path(stripped)
    try:
        return json.loads(stripped)
    except ValueError as exc:
        raise CargoInputError(f"records= is text that is not JSON ({exc}): {stripped[:80]!r}.",
                              hint="a template such as \"{{ ti.xcom_pull(...) }}\" renders a Python repr, not JSON: "
                                   "pass records=upstream.output (an XComArg) instead, or set "
                                   "render_template_as_native_obj=True on the DAG.") from exc


def load_records(value: Any) -> list[dict[str, Any]]:
    """Input records, JSON-safe, from XCom values, a DataFrame or an object-storage path. A single dict is refused
    (as by the core): a record is ``[{...}]``, and a dict of columns (``df.to_dict("list")``) is not records."""
    from cargo_gtm import to_json_records

    if value is None:
        return []
    if isinstance(value, str):
        value = _from_text(value)
    elif not isinstance(value, (list, tuple, Mapping)) and hasattr(value, "open") and hasattr(value, "suffix"):
        value = _read_path(value)
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
        if records is None:
            raise CargoInputError(f"Tool {target.name!r} runs over records, and records= is None (not given, or an "
                                  "XCom that holds nothing).", hint="pass records= (a list of dicts, a DataFrame, "
                                  "upstream.output or a file); records=[] runs nothing on purpose.")
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
