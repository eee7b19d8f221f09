"""Sensors: enrichment triggered by Cargo segment changes, and observation of Cargo's own runs.

``build_cargo_change_sensor``
    Watches a segment's changes (a Cargo *change* is a snapshot diff: records added, updated,
    removed). Each new change with records of the wanted kinds launches the play asset as a
    ``change`` batch over exactly those records. The cursor is a watermark on the changes'
    ``createdAt`` plus the UUIDs already handled at that instant; every run request also has
    ``run_key = <change uuid>``, so even a lost cursor cannot launch a change twice.

``build_cargo_observation_sensor``
    Reports batches that Cargo ran on its own (play schedules, UI runs) as materializations
    of the play's/tool's asset, with their bill as assets report it (provider credits per node from
    ``runs/metrics``, the execution charge of 0.01 per node execution, the total). Batches created by the token's own user
    (i.e. by Dagster) are left out, and so is any batch already recorded on the asset.

Both stop early to stay within Dagster's sensor time budget and resume from the cursor.
"""

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

import dagster as dg

from .client.errors import CargoError, CargoInputError
from .client.models import Batch, BatchStatus, Change
from .credits import CreditSplit, batch_credit_split
from .metadata import CargoMetadataSet, credits_by_node_metadata
from .resource import CargoResource

__all__ = ["build_cargo_change_sensor", "build_cargo_observation_sensor", "ChangeCursor", "BatchCursor"]

# Dagster's default sensor evaluation timeout is 60 s; leave room for the request round trip.
DEFAULT_TICK_BUDGET_SECONDS = 40.0
PAGE_SIZE = 100


_C = TypeVar("_C", bound="_JsonCursor")


class _JsonCursor:
    """A sensor cursor stored as the JSON object of its dataclass fields (unknown keys ignored)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))  # type: ignore[call-overload]  # subclasses are dataclasses

    @classmethod
    def from_json(cls: type[_C], text: str | None) -> _C:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})  # type: ignore[arg-type]


@dataclass
class ChangeCursor(_JsonCursor):
    """Watermark of handled changes: every change created before ``after`` is handled, and so
    are the ``seen`` ones created exactly at ``after``."""

    after: str | None = None
    seen: list[str] = field(default_factory=list)


    def is_new(self, change: Change) -> bool:
        created = _iso(change.created_at)
        if self.after is None or created > self.after:
            return True
        return created == self.after and change.uuid not in self.seen

    def advance(self, change: Change) -> None:
        created = _iso(change.created_at)
        if self.after is None or created > self.after:
            self.after, self.seen = created, [change.uuid]
        elif created == self.after and change.uuid not in self.seen:
            self.seen.append(change.uuid)


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _new_changes(cargo: CargoResource, segment_uuid: str, cursor: ChangeCursor) -> list[Change]:
    """New changes of the segment, oldest first (the list endpoint is newest first)."""
    client = cargo.get_client()
    found: list[Change] = []
    offset = 0
    while True:
        page = client.list_changes(segment_uuid=segment_uuid, limit=PAGE_SIZE, offset=offset)
        fresh = [c for c in page if cursor.is_new(c)]
        found.extend(fresh)
        if len(page) < PAGE_SIZE or len(fresh) < len(page):
            break
        offset += PAGE_SIZE
    return sorted(found, key=lambda c: (_iso(c.created_at), c.uuid))


def _segment_uuid(cargo: CargoResource, segment: str) -> str:
    segments = cargo.get_client().list_segments()
    for item in segments:
        if segment in (item.uuid, item.name):
            return item.uuid
    names = ", ".join(repr(s.name) for s in segments)
    raise CargoInputError(f"No Cargo segment named or with UUID {segment!r}. Available segments: {names}.")


def _count(change: Change, kinds: Sequence[str]) -> int:
    return sum(int(getattr(change, f"{kind}_records_count", 0)) for kind in kinds)


def build_cargo_change_sensor(
    play_asset: dg.AssetsDefinition,
    segment: str,
    *,
    name: str | None = None,
    change_kinds: Sequence[str] = ("added", "updated"),
    start_from: str = "latest",
    minimum_interval_seconds: int = 60,
    max_runs_per_tick: int = 25,
    tick_budget_seconds: float = DEFAULT_TICK_BUDGET_SECONDS,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    resource_key: str = "cargo",
) -> dg.SensorDefinition:
    """A sensor that enriches the records of each new change of ``segment_uuid`` with a play.

    Args:
        play_asset: a play asset built by :func:`~dagster_cargo.build_cargo_assets_definitions`
            (it takes ``change_uuid``/``change_kinds`` run config).
        segment: name or UUID of the segment to watch (on the play's model); a name is
            resolved at tick time, so loading definitions makes no API call.
        change_kinds: which records of a change to enrol.
        start_from: ``"latest"`` (first tick records the newest change as the starting point
            and launches nothing) or ``"beginning"`` (every existing change is enrolled).
        max_runs_per_tick: at most this many runs per tick; the rest come next tick.
        tick_budget_seconds: stop early past this much time in one tick.

    Example:
        .. code-block:: python

            (score,) = build_cargo_assets_definitions(cargo, selector=["Score inbound companies"])
            sensor = build_cargo_change_sensor(score, "ICP companies", minimum_interval_seconds=300)
    """
    if start_from not in ("latest", "beginning"):
        raise ValueError("start_from must be 'latest' or 'beginning'")
    kinds = list(change_kinds)
    op_name = play_asset.node_def.name
    asset_key = play_asset.key

    @dg.sensor(
        name=name or f"{op_name}_on_segment_changes",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        asset_selection=[asset_key],
        required_resource_keys={resource_key},
        description=f"Runs {asset_key.to_user_string()} over each new change of Cargo segment {segment!r}.",
    )
    def _sensor(context: dg.SensorEvaluationContext, **resources: Any) -> dg.SensorResult:
        cargo: CargoResource = resources.get(resource_key) or getattr(context.resources, resource_key)
        started = time.monotonic()
        cursor = ChangeCursor.from_json(context.cursor)
        segment_uuid = _segment_uuid(cargo, segment)
        changes = _new_changes(cargo, segment_uuid, cursor)
        if cursor.after is None and start_from == "latest":
            for change in changes:
                cursor.advance(change)
            return dg.SensorResult(run_requests=[], cursor=cursor.to_json(),
                                   skip_reason=dg.SkipReason("Started watching from the latest change."))
        requests: list[dg.RunRequest] = []
        for change in changes:
            if len(requests) >= max_runs_per_tick or time.monotonic() - started > tick_budget_seconds:
                break
            if _count(change, kinds) > 0:
                requests.append(dg.RunRequest(
                    run_key=f"cargo-change-{change.uuid}",
                    asset_selection=[asset_key],
                    run_config={"ops": {op_name: {"config": {"change_uuid": change.uuid, "change_kinds": kinds}}}},
                    tags={"dagster-cargo/change_uuid": change.uuid, "dagster-cargo/segment_uuid": segment_uuid},
                ))
            cursor.advance(change)
        skip = None if requests else dg.SkipReason("No new segment change with records to enrich.")
        return dg.SensorResult(run_requests=requests, cursor=cursor.to_json(), skip_reason=skip)

    return _sensor


@dataclass
class BatchCursor(_JsonCursor):
    """Every batch created before ``after`` is terminal and handled; ``done`` lists handled
    batches created at or after it (batches can finish out of creation order)."""

    after: str | None = None
    done: list[str] = field(default_factory=list)



def _batches_since(cargo: CargoResource, workflow_uuids: list[str], after: str | None) -> list[Batch]:
    client = cargo.get_client()
    found: list[Batch] = []
    offset = 0
    while True:
        page = client.list_batches(workflow_uuids=workflow_uuids, limit=PAGE_SIZE, offset=offset)
        fresh = [b for b in page if after is None or _iso(b.created_at) >= after]
        found.extend(fresh)
        if len(page) < PAGE_SIZE or len(fresh) < len(page):
            break
        offset += PAGE_SIZE
    return sorted(found, key=lambda b: (_iso(b.created_at), b.uuid))


def _asset_keys_by_workflow(assets: Sequence[dg.AssetsDefinition | dg.AssetSpec]) -> dict[str, dg.AssetKey]:
    mapping: dict[str, dg.AssetKey] = {}
    for item in assets:
        specs = item.specs if isinstance(item, dg.AssetsDefinition) else [item]
        for spec in specs:
            workflow_uuid = CargoMetadataSet.extract(spec.metadata).workflow_uuid
            if workflow_uuid:
                mapping[workflow_uuid] = spec.key
    return mapping


def _already_recorded(instance: dg.DagsterInstance, key: dg.AssetKey, batch_uuid: str) -> bool:
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return False
    value = event.asset_materialization.metadata.get("dagster-cargo/batch_uuid")
    return getattr(value, "value", value) == batch_uuid


def _release_slugs(client: Any, batch: Batch, cache: dict[str, dict[str, str]]) -> dict[str, str]:
    """Node UUID -> slug of the release the batch ran with (one lookup per release per tick)."""
    release = batch.release_uuid or ""
    if release and release not in cache:
        cache[release] = {n.uuid: n.slug for n in client.get_release(release).nodes}
    return cache.get(release, {})


def _observed_event(cargo: CargoResource, batch: Batch, key: dg.AssetKey, slug_cache: dict[str, dict[str, str]],
                    log: Any) -> dg.AssetMaterialization:
    """The materialization of a batch Cargo ran on its own, billed as assets are: provider credits per
    node (``runs/metrics``, one call), the execution charge (node executions × 0.01) and their total."""
    client = cargo.get_client()
    split: CreditSplit | None
    try:
        split = batch_credit_split(client, batch, _release_slugs(client, batch, slug_cache))
    except CargoError as exc:
        split = None
        log.warning(f"Could not read the node executions of Cargo batch {batch.uuid} (runs/metrics): {exc}. "
                    "Reporting its creditsUsedCount, which leaves out Cargo's execution charge "
                    "(0.01 per node execution).")
    url = cargo.batch_url(batch)
    total = split.total if split is not None else float(batch.credits_used_count)
    succeeded = batch.succeeded_runs_count
    meta = CargoMetadataSet(
        batch_uuid=batch.uuid, batch_status=batch.status.value,
        batch_url=dg.MetadataValue.url(url) if url else None, workflow_uuid=batch.workflow_uuid,
        runs_count=batch.runs_count, executed_runs_count=batch.executed_runs_count,
        failed_runs_count=batch.failed_runs_count, credits_used=round(total, 6),
        provider_credits=round(split.provider, 6) if split is not None else None,
        execution_charge=split.execution_charge if split is not None else None,
        node_executions=split.executions if split is not None else None,
        credits_per_record=round(total / succeeded, 6) if succeeded else None,
        cargo_duration_seconds=batch.duration_seconds,
    )
    extra = credits_by_node_metadata(split.provider_by_node) if split is not None else {}
    kind = {"dagster-cargo/data_kind": batch.data_kind} if batch.data_kind else {}
    return dg.AssetMaterialization(
        asset_key=key,
        description=f"Cargo batch {batch.uuid} ({batch.data_kind or 'input kind not echoed'}) run outside Dagster.",
        metadata={**dict(meta), **extra, "dagster-cargo/observed": True, **kind},
    )


def build_cargo_observation_sensor(
    assets: Sequence[dg.AssetsDefinition | dg.AssetSpec],
    *,
    name: str = "cargo_observation_sensor",
    minimum_interval_seconds: int = 120,
    tick_budget_seconds: float = DEFAULT_TICK_BUDGET_SECONDS,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    resource_key: str = "cargo",
    start_from: str = "latest",
) -> dg.SensorDefinition:
    """Report batches that Cargo ran on its own as materializations of the workflow's asset.

    ``assets`` are Cargo assets or specs (from :func:`~dagster_cargo.load_cargo_asset_specs` or
    :func:`~dagster_cargo.build_cargo_assets_definitions`): their ``dagster-cargo/workflow_uuid``
    metadata maps batches to assets. Batches created by the API token's own user are taken to
    be Dagster's and skipped, so use a dedicated token for Dagster. Failed or cancelled batches
    advance the cursor without an event. With ``start_from="latest"`` the first tick only
    records a starting point.
    """
    keys = _asset_keys_by_workflow(assets)
    if not keys:
        raise ValueError("No Cargo asset among `assets` (no dagster-cargo/workflow_uuid metadata).")

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        required_resource_keys={resource_key},
        description="Records batches that Cargo ran outside Dagster (e.g. play schedules) as materializations.",
    )
    def _sensor(context: dg.SensorEvaluationContext, **resources: Any) -> dg.SensorResult:
        cargo: CargoResource = resources.get(resource_key) or getattr(context.resources, resource_key)
        started = time.monotonic()
        cursor = BatchCursor.from_json(context.cursor)
        batches = _batches_since(cargo, sorted(keys), cursor.after)
        if cursor.after is None and start_from == "latest":
            newest = max((_iso(b.created_at) for b in batches), default="0")
            return dg.SensorResult(cursor=BatchCursor(after=newest, done=[b.uuid for b in batches]).to_json(),
                                   skip_reason=dg.SkipReason("Started observing from the latest batch."))
        dagster_user = cargo.get_client().get_current_user().uuid
        slugs: dict[str, dict[str, str]] = {}
        done = set(cursor.done)
        events: list[dg.AssetMaterialization] = []
        pending_since: str | None = None
        for batch in batches:
            if batch.uuid in done:
                continue
            if not batch.is_terminal or time.monotonic() - started > tick_budget_seconds:
                pending_since = pending_since or _iso(batch.created_at)
                continue
            done.add(batch.uuid)
            key = keys[batch.workflow_uuid]
            if batch.status != BatchStatus.SUCCESS or batch.user_uuid == dagster_user:
                continue
            if _already_recorded(context.instance, key, batch.uuid):
                continue
            events.append(_observed_event(cargo, batch, key, slugs, context.log))
        latest: str | None = max((_iso(b.created_at) for b in batches), default=cursor.after)
        after = pending_since or latest
        keep = [b.uuid for b in batches if b.uuid in done and _iso(b.created_at) >= (after or "")]
        skip = None if events else dg.SkipReason("No new Cargo batch ran outside Dagster.")
        return dg.SensorResult(asset_events=events, cursor=BatchCursor(after=after, done=keep).to_json(),
                               skip_reason=skip)

    return _sensor
