"""Rows of the three export files: batch download, ``runs/download-outputs`` and ``runs/download``.

* Batch download (CARGO-DOCS 1.2): one row per **batch record**, in batch-record order, joined to that record's
  run output for the chosen node. Columns ``_id``, ``_title``, the record's input fields, then the output node's
  fields (``flat``; a key that collides with an input field or ``_id``/``_title`` is written ``output.<key>``)
  or one ``output`` column (``json``). Errored runs keep their input fields with an empty output; rows of
  skipped / filter-stopped / cancelled runs (and of records a cancelled batch never ran) follow the
  ``stopped_rows`` variant.
* ``runs/download-outputs`` (CARGO-DOCS 2.2): one row per run, the nine ``_`` columns + ``input`` (the first
  node's resolved config) + ``output`` (the chosen node's context).
* ``runs/download`` (CARGO-DOCS 3.1): the nine ``_`` columns + one column per node slug holding that
  execution's title.

The chosen node defaults to "the last executed node" (CARGO-DOCS 1.2, 2.2), read per the ``default_output_node``
variant: the release's terminal node (the last node a completing run executes; the default), or each run's last
execution. When a slug names several nodes, a run's value is that of the one it executed last (runContext is
keyed by slug).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .util import iso

if TYPE_CHECKING:
    from .engine import BatchState, RunState
    from .store import Store

RUN_COLUMNS = ["_uuid", "_workspace_uuid", "_workflow_uuid", "_record_id", "_record_title", "_created_at",
               "_finished_at", "_status", "_error_message"]
OUTPUT_COLUMNS = [*RUN_COLUMNS, "input", "output"]
STOPPED = ("skipped", "cancelled")


def node_output(run: RunState, slug: str) -> dict[str, Any] | None:
    """The run's context for ``slug`` (``None`` when that node never succeeded in this run)."""
    data = run.context.get(slug)
    return dict(data) if isinstance(data, dict) else None


def default_output(store: Store, run: RunState) -> dict[str, Any] | None:
    """The output when no ``outputNodeSlug`` is given ("the last executed node", CARGO-DOCS 1.2, 2.2), per the
    ``default_output_node`` variant: ``exit_node`` reads it as the release's terminal node (the last node a
    completing run executes), so a run that never reached it has none; ``last_executed`` reads it per run:
    the data of the run's last execution (none when that execution errored: 1.2's errored rows)."""
    if store.variants["default_output_node"] == "exit_node":
        return node_output(run, store.spec_for_release(run.release_uuid).output_node.slug)
    if not run.executions or run.executions[-1].status != "success":
        return None
    data = run.executions[-1].data
    return dict(data) if isinstance(data, dict) else None


def run_output(store: Store, run: RunState, slug: str | None) -> dict[str, Any] | None:
    """The output of ``run`` for node ``slug`` (``None``: the default node)."""
    return default_output(store, run) if slug is None else node_output(run, slug)


def _stopped(store: Store, run: RunState | None) -> bool:
    """Skipped, cancelled, stopped by a filter node, or never run (a batch cancelled before running)."""
    if run is None or run.status in STOPPED:
        return True
    return run.status == "success" and run.stop_at is not None and len(run.executions) == run.stop_at + 1


def _input_fields(b: BatchState) -> list[str]:
    """The input fields of the batch's records as sent, in first-seen order (``_id``/``_title`` aside)."""
    inputs: dict[str, None] = {}
    for raw in b.inputs:
        inputs.update(dict.fromkeys(k for k in raw if k not in ("_id", "_title")))
    return list(inputs)


def _put_output(row: dict[str, Any], data: dict[str, Any] | None, flat: bool, taken: set[str],
                out_cols: dict[str, None]) -> None:
    """Write the output into ``row``: spread into columns (``flat``; a key colliding with an input field or
    ``_id``/``_title`` becomes ``output.<key>``) or as one ``output`` object."""
    if not flat:
        row["output"] = data
        return
    for key, value in (data or {}).items():
        col = f"output.{key}" if key in taken else key
        out_cols[col] = None
        row[col] = value


def batch_rows(store: Store, b: BatchState, slug: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of a batch download for node ``slug`` (``None``: the default node) under the current
    variants."""
    flat = store.variants["batch_download_output"] == "flat"
    omit_stopped = store.variants["stopped_rows"] == "omitted"
    runs = [store.engine.runs[u] for u in b.run_uuids]
    by_index: list[RunState | None] = list(runs) + [None] * (len(b.records) - len(runs))
    inputs = _input_fields(b)
    taken = {"_id", "_title", *inputs}
    out_cols: dict[str, None] = {}
    rows: list[dict[str, Any]] = []
    for rec, raw, run in zip(b.records, b.inputs, by_index):
        if omit_stopped and _stopped(store, run):
            continue
        row: dict[str, Any] = {"_id": rec["_id"], "_title": run.record_title if run else rec.get("_title")}
        row.update({k: v for k, v in raw.items() if k not in ("_id", "_title")})
        _put_output(row, run_output(store, run, slug) if run is not None else None, flat, taken, out_cols)
        rows.append(row)
    columns = ["_id", "_title", *inputs, *(out_cols if flat else ["output"])]
    return columns, rows


def _run_meta(store: Store, run: RunState, now: float) -> dict[str, Any]:
    return {
        "_uuid": run.uuid, "_workspace_uuid": store.workspace_uuid, "_workflow_uuid": run.workflow_uuid,
        "_record_id": run.record_id, "_record_title": run.record_title, "_created_at": iso(run.created_at),
        "_finished_at": iso(run.finished_at), "_status": store.engine.run_view_status(run, now),
        "_error_message": run.error,
    }


def output_rows(store: Store, runs: list[RunState], slug: str | None, now: float) -> tuple[list[str], list[dict[str, Any]]]:
    """``runs/download-outputs`` rows: run metadata, ``input`` and ``output`` objects (``None`` when absent)."""
    rows = []
    for run in runs:
        row = _run_meta(store, run, now)
        first = run.configs.get(store.spec_for_release(run.release_uuid).nodes[0].slug)
        row["input"] = dict(first) if isinstance(first, dict) else dict(run.input)
        row["output"] = run_output(store, run, slug)
        rows.append(row)
    return list(OUTPUT_COLUMNS), rows


def title_rows(store: Store, runs: list[RunState], slugs: list[str], now: float
               ) -> tuple[list[str], list[dict[str, Any]]]:
    """``runs/download`` rows: run metadata, then each node slug's execution title (the last execution with
    that slug when several nodes share it)."""
    rows = []
    for run in runs:
        row = _run_meta(store, run, now)
        spec = store.spec_for_release(run.release_uuid)
        for ex in run.executions:
            row[spec.nodes[ex.index].slug] = ex.title
        rows.append(row)
    return [*RUN_COLUMNS, *slugs], rows
