"""What happened to each record of a batch, joined onto the batch download's rows.

Why two sources
---------------
The **batch download** (``POST /orchestration/batches/{uuid}/download``) is the batch's own export: one row
per *batch record*, in batch-record order, holding the record's input fields as sent and the output node's
data (CARGO-DOCS 1.2). It is the only export that keeps a tool's rows in the caller's order, and its flat CSV
streams fast. It carries no run status, and Cargo does not document how it shows skipped or filter-stopped
records (1.3): they may have empty outputs, or be missing.

``runs/download-outputs`` (CARGO-DOCS 2.1-2.2) is the canonical per-*run* export: ``_record_id``,
``_status``, ``_error_message`` and ``input`` on every row. It is capped at 10,000 runs per file, its rows
are runs (not batch records, and in no documented order), and its ``input`` is the first node's resolved
config, not necessarily the record's fields.

So rows come from the batch download, and statuses from ``runs/download-outputs`` asked **only for the runs
that did not simply succeed** (``statuses`` = every other run status; plus, when the batch's release has
``filter`` nodes, the runs a filter stopped, found with an ``executionsFilter``: the filter node executed
and its next node did not). In the usual case of a healthy batch that is one ``runs/count`` call and no
extra file. A record missing from the batch file is restored from its run's row, so every input record is
accounted for whatever the layout.

The status column
-----------------
``_status`` (Cargo's own column name in run exports) is one of:

* ``success``: the run finished; its output columns hold the output node's data. When a node with
  ``fallbackOnFailure`` failed and the run carried on (CARGO-DOCS 4.5), ``_error_message`` says which node
  failed and why: the output may lack what that node would have added;
* ``error``: the run failed; ``_error_message`` says why (Cargo's ``errorMessage``); output columns empty;
* ``filtered``: a ``filter`` node evaluated false and stopped the run on purpose (CARGO-DOCS 4.2, "not an
  error"), whatever status Cargo gave the run (``success`` or ``skipped``);
* ``skipped``: Cargo skipped the record (e.g. dedupe, ``checkToSkipRuns``, CARGO-DOCS 4.1);
* ``cancelled``: the run was cancelled.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import CargoInputError

__all__ = [
    "STATUS_COLUMN", "ERROR_COLUMN", "STATUSES", "NOT_SUCCEEDED", "RunOutcome", "filter_stop_filter",
    "outcome_from_row", "apply_outcomes", "check_output_slug", "align_inputs", "default_output_slug",
    "fallback_failure_filter", "fallback_outcome",
]

STATUS_COLUMN = "_status"
ERROR_COLUMN = "_error_message"
#: the columns every output row gets from Cargo and from its run's outcome, whatever the input held
OUTPUT_COLUMNS = ("_id", "_title", STATUS_COLUMN, ERROR_COLUMN)
#: Values of the ``_status`` column.
STATUSES = ("success", "error", "filtered", "skipped", "cancelled")
#: Run statuses other than ``success`` (REFERENCE 9.2): the runs whose rows need more than the batch file.
NOT_SUCCEEDED = ("idle", "pending", "running", "error", "cancelling", "cancelled", "skipped")


@dataclass(frozen=True)
class RunOutcome:
    """One run that did not simply succeed: its record, status and error (from ``runs/download-outputs``)."""

    record_id: str
    record_title: str | None
    status: str
    error: str | None = None
    input: dict[str, Any] = field(default_factory=dict)
    run_uuid: str | None = None


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return None
    return str(value)


def outcome_from_row(row: Mapping[str, Any], *, filtered: bool = False) -> RunOutcome:
    """A :class:`RunOutcome` from a ``runs/download-outputs`` row (JSON objects, or CSV with JSON text)."""
    raw_input = row.get("input")
    if isinstance(raw_input, str) and raw_input.strip().startswith("{"):
        try:
            raw_input = json.loads(raw_input)
        except ValueError:
            raw_input = None
    status = _text(row.get("_status")) or "unknown"
    if filtered:
        status = "filtered"
    elif status == "cancelling":
        status = "cancelled"
    return RunOutcome(
        record_id=str(row.get("_record_id")),
        record_title=_text(row.get("_record_title")),
        status=status,
        error=_text(row.get("_error_message")),
        input=dict(raw_input) if isinstance(raw_input, dict) else {},
        run_uuid=_text(row.get("_uuid")),
    )


def filter_stop_filter(nodes: Sequence[Any]) -> dict[str, Any] | None:
    """An ``executionsFilter`` (REFERENCE 9.13) matching runs stopped by a ``filter`` node, or None when the
    release has none: for some filter node, its execution succeeded and its next node has no execution."""
    by_uuid = {n.uuid: n for n in nodes}
    groups = []
    for node in nodes:
        if (node.action_slug or "") != "filter":
            continue
        child = next((by_uuid[c] for c in node.children_uuids if c and c in by_uuid), None)
        if child is None:
            continue
        groups.append({"conjonction": "and", "conditions": [
            {"kind": "node", "nodeSlug": node.slug, "status": "success"},
            {"kind": "node", "nodeSlug": child.slug, "status": "absent"},
        ]})
    return {"conjonction": "or", "groups": groups} if groups else None


def check_output_slug(nodes: Sequence[Any], slug: str, release_uuid: str, batch_uuid: str) -> None:
    """Raise a clear :class:`CargoInputError` when ``slug`` names no node, or several, of the batch's release.

    Slugs repeat across node kinds too (an ``agent`` and a ``variables`` node both slugged ``classify``,
    CARGO-DOCS 15.4); a run keeps one context entry per slug, and which node's data Cargo exports for such a
    slug is not documented, so a repeated slug is refused whatever the kinds, naming each node and its kind.
    """
    matches = [n for n in nodes if n.slug == slug]
    if len(matches) == 1:
        return
    if not matches:
        available = ", ".join(sorted({n.slug for n in nodes})) or "none"
        raise CargoInputError(
            f"Output node {slug!r} is not a node of release {release_uuid} (the release batch {batch_uuid} ran). "
            f"Node slugs: {available}.", hint="pass one of them as output_node_slug, or none for Cargo's "
            "default (the last executed node).")
    names = ", ".join(_describe(n) for n in matches)
    raise CargoInputError(
        f"Output node slug {slug!r} matches {len(matches)} nodes of release {release_uuid} ({names}): node slugs "
        "are not unique in Cargo, and which one Cargo would export is not documented.", hint="give the node "
        "you want a unique slug in Cargo and redeploy, or pass no output_node_slug for Cargo's default (the last "
        "executed node).")


def _describe(node: Any) -> str:
    label = getattr(node, "label", None)
    return label() if callable(label) else repr(node.name or node.uuid)


def default_output_slug(nodes: Sequence[Any]) -> str | None:
    """The slug to ask for when the caller names no output node: the release's exit node (where every run
    that completes ends), when the graph has exactly one leaf and no other node shares its slug; else None
    (leave the choice to Cargo).

    Cargo's default is "the last executed node" (CARGO-DOCS 1.2, 2.3): for a completed run that is the exit
    node, but read per run it is the node where a stopped or cancelled run ended (a filter's ``{result:
    false}``). Naming the exit node gives the same rows whichever reading the server has.
    """
    leaves = [n for n in nodes if not any(c for c in n.children_uuids)]
    if len(leaves) != 1 or sum(n.slug == leaves[0].slug for n in nodes) != 1:
        return None
    return str(leaves[0].slug)


def fallback_failure_filter(nodes: Sequence[Any]) -> dict[str, Any] | None:
    """An ``executionsFilter`` matching runs in which a node with ``fallbackOnFailure`` failed (CARGO-DOCS 4.5:
    the run carried on and may have ended ``success``); None when the release has no such node."""
    slugs = list(dict.fromkeys(n.slug for n in nodes if getattr(n, "fallback_on_failure", False)))
    if not slugs:
        return None
    return {"conjonction": "or", "groups": [{"conjonction": "and", "conditions": [
        {"kind": "node", "nodeSlug": slug, "status": "error"}]} for slug in slugs]}


def fallback_outcome(run: Any, nodes: Sequence[Any], record_input: Mapping[str, Any] | None = None
                     ) -> RunOutcome | None:
    """The outcome of a ``success`` run in which a ``fallbackOnFailure`` node failed: status ``success`` (the run
    did finish; its output node ran), ``error`` = which node failed and why, so the row is not mistaken for a
    provider result. None when no such node failed."""
    fallback_uuids = {n.uuid for n in nodes if getattr(n, "fallback_on_failure", False)}
    failed = [e for e in run.executions if str(e.status) == "error" and e.node_uuid in fallback_uuids]
    if not failed or str(getattr(run.status, "value", run.status)) != "success":
        return None
    detail = "; ".join(f"{e.node_slug} ({e.node_kind or 'node'}): {e.error_message or 'failed'}" for e in failed)
    return RunOutcome(record_id=str(run.record_id), record_title=run.record_title, status="success",
                      error=f"node failed, run continued (fallbackOnFailure): {detail}",
                      input=dict(record_input or {}), run_uuid=run.uuid)


def _key(record: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in record.items() if k not in ("_id", "_title")}, sort_keys=True, default=str)


def apply_outcomes(frame: Any, outcomes: Sequence[RunOutcome],
                   records: Sequence[Mapping[str, Any]] | None = None) -> tuple[Any, list[str]]:
    """Add ``_status`` / ``_error_message`` to a batch download's rows and restore rows it left out.

    ``outcomes`` are the runs that did not simply succeed; every other row is ``success``. An outcome is
    matched to a row by record id (``_id`` = the run's ``_record_id``; the n-th run of a repeated id to the
    n-th row with it). An outcome with no row left is a record the file omitted: its row is rebuilt from the
    run (``_id``, ``_title`` and its ``input`` fields). With ``records`` (a tool's input, as sent), rows are
    put back in the caller's order: restored rows go where their input record was.

    Returns the frame (``RangeIndex``; ``frame`` itself gets the two columns) and notes on anything that could
    not be placed exactly.
    """
    import pandas as pd

    notes: list[str] = []
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0:
        frame = frame.reset_index(drop=True)
    out, restored = _mark_rows(frame, outcomes)
    if not restored:
        return out, notes
    extra = pd.DataFrame.from_records([{**row, STATUS_COLUMN: o.status, ERROR_COLUMN: o.error}
                                       for o, row in restored])
    extra_columns = [c for c in extra.columns if c not in out.columns]
    if extra_columns and len(out):
        notes.append(f"rows restored from runs brought columns the batch file lacked: {extra_columns}")
    combined = pd.concat([out, extra], ignore_index=True) if len(out) else extra.reindex(
        columns=list(dict.fromkeys([*out.columns, *extra.columns])))
    if records is None:
        return combined, notes
    order = _caller_order(len(out), [o for o, _ in restored], records)
    if order is None:
        notes.append("rows restored from runs could not all be matched to input records; they are at the end")
        return combined, notes
    return combined.iloc[order].reset_index(drop=True), notes


def _free_rows(frame: Any, outcomes: Sequence[RunOutcome]) -> dict[str, list[int]]:
    """Record id → positions of the rows with that ``_id``, for the (few) ids of runs that did not simply succeed."""
    import numpy as np

    free: dict[str, list[int]] = {}
    wanted = {o.record_id for o in outcomes}
    if wanted and "_id" in frame.columns:
        ids = frame["_id"].astype(str)
        for position in np.flatnonzero(ids.isin(wanted).to_numpy()):
            free.setdefault(ids.iat[int(position)], []).append(int(position))
    return free


def _mark_rows(frame: Any, outcomes: Sequence[RunOutcome]) -> tuple[Any, list[tuple[RunOutcome, dict[str, Any]]]]:
    """``frame`` with the status columns (each outcome on its record's next free row), and the outcomes
    left without a row, each with the row rebuilt from its run."""
    import numpy as np
    import pandas as pd

    statuses = pd.Series("success", index=frame.index, dtype="str")
    errors = pd.Series(np.full(len(frame), None, dtype=object), index=frame.index, dtype=object)
    free = _free_rows(frame, outcomes)
    restored: list[tuple[RunOutcome, dict[str, Any]]] = []
    for outcome in outcomes:
        slots = free.get(outcome.record_id)
        if slots:
            i = slots.pop(0)
            statuses.iat[i], errors.iat[i] = outcome.status, outcome.error
            continue
        row: dict[str, Any] = {"_id": outcome.record_id, "_title": outcome.record_title}
        row.update({k: v for k, v in outcome.input.items() if k not in ("_id", "_title")})
        restored.append((outcome, row))
    # a fresh download: columns are added in place, not to a copy of a possibly huge frame
    frame[STATUS_COLUMN] = statuses
    frame[ERROR_COLUMN] = errors
    return frame, restored


def _caller_order(present: int, restored: Sequence[RunOutcome], records: Sequence[Mapping[str, Any]]
                  ) -> list[int] | None:
    """Positions putting ``present`` file rows (in batch order) and restored rows back in the caller's order:
    ``order[k]`` = index in the combined frame of the caller's k-th record; None if it can't be done exactly."""
    if present + len(restored) != len(records):
        return None
    slots: dict[str, list[int]] = {}
    for k, record in enumerate(records):
        slots.setdefault(_key(record), []).append(k)
    place: dict[int, int] = {}  # caller index -> combined index
    for j, outcome in enumerate(restored):
        candidates = slots.get(_key(outcome.input))
        if not candidates:
            return None
        place[candidates.pop()] = present + j
    rest = iter(range(present))
    return [place[k] if k in place else next(rest) for k in range(len(records))]


def align_inputs(frame: Any, records: Sequence[Mapping[str, Any]]) -> Any:
    """Put the caller's own input values back in a tool's rows (already in the caller's order).

    The file carries the input fields as text the parser had to type again (a zip code ``"02139"`` read
    as the number 2139); the caller's records are what was sent. Columns the caller sent replace the
    file's columns of the same name, with the caller's values and JSON types; their position is kept.
    The output's own columns (:data:`OUTPUT_COLUMNS`: Cargo's record id and title, this run's ``_status`` and
    ``_error_message``) are never replaced: records that carry them (an earlier Cargo output fed to the next
    tool) get this run's outcome there, not the one they came with.
    """

    if len(frame) != len(records):
        return frame
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(k for k in record if k not in OUTPUT_COLUMNS))
    if not keys:
        return frame
    out = frame
    for key in keys:
        if key in out.columns:
            out[key] = _caller_column([r.get(key) for r in records], out.index)
    return out


def _caller_column(values: list[Any], index: Any) -> Any:
    """The caller's values of one column as pandas holds them best without changing them: integers with missing
    values as nullable ``Int64`` (not float64, which turns 9007199254740993 into 9007199254740992.0), integers
    beyond int64 as objects, the rest as pandas infers (text, floats, booleans, mixed values as objects)."""
    import pandas as pd

    ints = [v for v in values if type(v) is int]
    if any(not -(2**63) <= v < 2**63 for v in ints):
        return pd.Series(values, index=index, dtype=object).to_numpy()
    if ints and None in values and len(ints) + values.count(None) == len(values):
        return pd.array(values, dtype="Int64")
    return pd.Series(values, index=index).to_numpy()


#: input columns that name a record best in a log line, in order
_LABEL_COLUMNS = ("domain", "email", "linkedin_url", "name", "company_name")


def record_label(frame: Any, position: int) -> str:
    """Row ``position`` of an output frame named by its input, for a log line: a ``domain``/``email``/``name``
    column, else its first input column, else its record title, e.g. ``domain='acme.com'``; never Cargo's
    opaque record id alone."""
    row = frame.iloc[position]
    columns = [c for c in _LABEL_COLUMNS if c in frame.columns]
    columns += [c for c in frame.columns if not str(c).startswith("_") and c not in columns]
    columns += ["_title"] if "_title" in frame.columns else []
    for column in columns:
        value = row[column]
        if isinstance(value, str) and value or isinstance(value, numbers.Real) and value == value:  # not NaN
            name = "title" if column == "_title" else str(column)
            return f"{name}={value.item() if hasattr(value, 'item') else value!r}"
    return f"_id={row['_id']!r}" if "_id" in frame.columns else "a record"


def first_failure(frame: Any, error_column: str, first_row: int = 0) -> str:
    """`` (first: domain='a.com', input row 3: "<Cargo's error>")`` for the first failed row, or nothing.
    ``first_row``: the input row of the frame's first row (a ramp round's rows are a slice of the input)."""
    failed = frame.index[frame[STATUS_COLUMN] == "error"]
    if not len(failed):
        return ""
    position = int(frame.index.get_loc(failed[0]))
    error = frame[error_column].iloc[position] if error_column in frame.columns else None
    reason = f': "{error}"' if isinstance(error, str) and error else ""
    return f" (first: {record_label(frame, position)}, input row {position + first_row}{reason})"
