"""Unreported spend: Cargo batches a Dagster run paid for that no materialization reported.

A step records each batch it creates (or adopts) as a run tag the moment it exists
(``dagster-cargo/batch.<key>``, see :mod:`.attempts`). A batch is *reported* once a run that recorded it
succeeded (its materialization carries the batch). When every run that recorded a batch ended without success
(killed, failed, cancelled), the batch was paid for and nobody reported it: a re-execution of that run attaches
to it, but a *new* materialization of the asset does not (a new run is a new request, and paying for it is what
was asked). Such a new materialization says so in its log; with ``resume_unreported=True`` it adopts the batch
instead, when the batch is still running or succeeded, was made for the same step and input, and no live or
successful run holds it. ``resume_unreported`` is set per materialization (run config of a workspace asset, or
the argument of ``run_tool``/``run_play``/``run_workflow``), per run (the run tag
``dagster-cargo/resume_unreported=true|false``) or for every run (the resource's field); the most specific wins.
:func:`build_cargo_unreported_spend_sensor` (in ``definitions.sensors``) reports them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import dagster as dg
from cargo_gtm import CargoClient
from cargo_gtm.errors import CargoError, CargoNotFoundError
from cargo_gtm.models import Batch

__all__ = ["RESUME_TAG", "UnreportedBatch", "resume_for_this_step", "resume_requested", "unreported_batches",
           "unreported_for_key"]

BATCH_PREFIX = "dagster-cargo/batch."
RESUME_TAG = "dagster-cargo/resume_unreported"
_FAILED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@dataclass(frozen=True)
class UnreportedBatch:
    """A batch recorded only by runs that ended without success: paid for, reported by no materialization."""

    uuid: str
    tag_key: str
    run_ids: tuple[str, ...]  # the failed runs that recorded it
    asset: str | None  # the asset key of the step (from the runs' asset selection), when known
    batch: Batch | None  # Cargo's view now (None: it could not be read)

    @property
    def status(self) -> str:
        return self.batch.status.value if self.batch is not None else "unknown"

    @property
    def credits(self) -> float:
        """Provider credits Cargo reports so far (``creditsUsedCount``; the execution charge comes on top)."""
        return float(self.batch.credits_used_count) if self.batch is not None else 0.0

    def describe(self) -> str:
        what = f" of asset {self.asset}" if self.asset else ""
        return (f"Cargo batch {self.uuid}{what} ({self.status}, {self.credits:g} provider credits so far) was created "
                f"by run(s) {', '.join(self.run_ids)}, which failed: no materialization reported it")


#: The per-materialization choice (run config ``resume_unreported``, or ``run_tool(..., resume_unreported=)``)
#: while the resource runs that step: set by :func:`resume_for_this_step`, read by :func:`resume_requested`.
_PER_STEP: ContextVar[bool | None] = ContextVar("dagster_cargo_resume_unreported", default=None)
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


@contextmanager
def resume_for_this_step(value: bool | None) -> Iterator[None]:
    """Within the block, ``value`` (when not None) decides whether unreported batches are adopted, over the run
    tag and the resource's field."""
    token = _PER_STEP.set(value)
    try:
        yield
    finally:
        _PER_STEP.reset(token)


def resume_requested(context: Any, resource_flag: bool) -> bool:
    """Whether adopting unreported batches was asked for. The most specific setting wins: the materialization's
    (run config ``resume_unreported``, or the argument of ``run_tool``/``run_play``/``run_workflow``), then the
    run tag ``dagster-cargo/resume_unreported`` (true/false), then the resource's field."""
    per_step = _PER_STEP.get()
    if per_step is not None:
        return per_step
    try:
        tag = str(context.run.tags.get(RESUME_TAG, "")).strip().lower()
    except Exception:
        tag = ""
    if tag in _TRUE or tag in _FALSE:
        return tag in _TRUE
    return bool(resource_flag)


def _holders(instance: dg.DagsterInstance, tag_key: str, uuid: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags={tag_key: uuid})))


def _asset_of(runs: Iterable[dg.DagsterRun]) -> str | None:
    for run in runs:
        selection = getattr(run, "asset_selection", None)
        if selection:
            return ",".join(sorted(k.to_user_string() for k in selection))
    return None


def unreported_for_key(instance: dg.DagsterInstance, client: CargoClient | None, tag_key: str,
                       exclude_runs: Iterable[str] = ()) -> list[UnreportedBatch]:
    """The unreported batches recorded under one attempt key (runs in ``exclude_runs`` are not holders).

    Two run queries whatever the history: the failed runs holding any batch of the key, then the other runs
    holding those batches (a batch also held by a live or successful run is not unreported)."""
    skip = set(exclude_runs)
    values: set[str] = set()
    for _key, found in instance.get_run_tags(tag_keys=[tag_key]):
        values |= set(found)
    if not values:
        return []
    failed = [r for r in instance.get_runs(filters=dg.RunsFilter(tags={tag_key: sorted(values)},
                                                                 statuses=sorted(_FAILED, key=str)))
              if r.run_id not in skip]
    held_by_failed: dict[str, list[dg.DagsterRun]] = {}
    for run in failed:
        held_by_failed.setdefault(run.tags[tag_key], []).append(run)
    if not held_by_failed:
        return []
    others = [r for r in instance.get_runs(filters=dg.RunsFilter(tags={tag_key: sorted(held_by_failed)}))
              if r.run_id not in skip and r.status not in _FAILED]
    taken = {r.tags[tag_key] for r in others}
    return [UnreportedBatch(uuid=uuid, tag_key=tag_key, run_ids=tuple(r.run_id for r in runs), asset=_asset_of(runs),
                            batch=_read(client, uuid))
            for uuid, runs in sorted(held_by_failed.items()) if uuid not in taken]


def _read(client: CargoClient | None, uuid: str) -> Batch | None:
    if client is None:
        return None
    try:
        return client.get_batch(uuid)
    except CargoNotFoundError:
        return None
    except CargoError:
        return None


def unreported_batches(instance: dg.DagsterInstance, client: CargoClient | None = None) -> list[UnreportedBatch]:
    """Every unreported batch the instance knows of (each read from Cargo when ``client`` is given)."""
    keys = [k for k in instance.get_run_tag_keys() if k.startswith(BATCH_PREFIX)]
    out: list[UnreportedBatch] = []
    for key in keys:
        out.extend(unreported_for_key(instance, client, key))
    return out


def holders_all_failed(instance: dg.DagsterInstance, tag_key: str, uuid: str, me: str) -> bool:
    """Whether every run (other than ``me``) recording ``uuid`` under ``tag_key`` ended without success."""
    others = [r for r in _holders(instance, tag_key, uuid) if r.run_id != me]
    return bool(others) and all(r.status in _FAILED for r in others)

