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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import dagster as dg
from cargo_gtm import read_all, read_newest
from cargo_gtm.credits import CreditSplit, batch_credit_split
from cargo_gtm.errors import CargoError, CargoInputError, CargoNotFoundError
from cargo_gtm.models import Batch, BatchStatus, Change
from cargo_gtm.watermark import Watermark
from cargo_gtm.watermark import stamp as _stamp

from ..running.metadata import CargoMetadataSet, credits_by_node_metadata
from ..running.resource import CargoResource
from ..running.single_run import change_run_config

__all__ = ["build_cargo_change_sensor", "build_cargo_observation_sensor", "ChangeCursor", "BatchCursor"]

# Dagster's default sensor evaluation timeout is 60 s; leave room for the request round trip.
DEFAULT_TICK_BUDGET_SECONDS = 40.0
PAGE_SIZE = 100
#: pages shorter than this cannot show a list's order: an unordered page of 16 items looks newest first by chance
#: once in 16! (2·10^13), one of 2 items every other time; with smaller pages the sensors read the whole list
MIN_ORDER_EVIDENCE = 16
#: How far (in Cargo's clock) the observation watermark trails the newest batch of the previous tick, so a
#: batch that shows up in the list after later-created ones, or that offset paging skipped once while the list
#: moved, is still found; the UUIDs handled inside that window are kept in the cursor.
LATE_VISIBILITY_SECONDS = 600.0
#: Run tags that name batches a Dagster run created (see ``attempts.py`` and ``CargoResource._tag_run``).
DAGSTER_BATCH_TAG_PREFIXES = ("dagster-cargo/batch.", "dagster-cargo/batch_uuid.")
#: Batches an ambiguous create could not tell apart: possibly Dagster's, adopted by a later attempt.
CANDIDATES_TAG_PREFIX = "dagster-cargo/candidates."


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
        if isinstance(data.get("after"), str):  # cursors of earlier versions stored isoformat()
            data["after"] = _normalise(data["after"])
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})  # type: ignore[arg-type]


@dataclass
class ChangeCursor(Watermark, _JsonCursor):
    """Watermark of handled changes (:class:`cargo_gtm.watermark.Watermark`) stored as the sensor's cursor:
    every change created before ``after`` is handled, and so are the ``seen`` ones created exactly at
    ``after``."""


def _normalise(text: str) -> str:
    """A stored watermark in :func:`_stamp` form (``"0"``/``""`` and unparsable text are kept)."""
    try:
        return _stamp(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return text


def _parse_stamp(stamp: str | None) -> datetime | None:
    """The instant of a :func:`_stamp` (``None`` for ``None``, ``""`` or text that is no instant)."""
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
    except ValueError:
        return None


def _new_changes(cargo: CargoResource, segment_uuid: str, cursor: ChangeCursor, *, everything: bool) -> list[Change]:
    """New changes of the segment, oldest first. Only the newest pages back to the cursor are read when
    ``changes/list`` shows it is served newest first (Cargo documents no order: REFERENCE "Pagination limits";
    each page is checked, see :func:`~cargo_gtm.paging.read_newest`), so a tick costs the same whatever the
    segment's change history; any other order reads the list to the end. ``everything``: read it all (the first
    tick of ``start_from="beginning"``); else, before the first tick, the newest changes are enough."""
    client = cargo.get_client()

    def page(offset: int) -> list[Change]:
        return client.list_changes(segment_uuid=segment_uuid, limit=PAGE_SIZE, offset=offset)

    if everything or PAGE_SIZE < MIN_ORDER_EVIDENCE:
        changes = read_all(page, page_size=PAGE_SIZE, key=lambda c: c.uuid)
    else:
        changes = read_newest(page, page_size=PAGE_SIZE, key=lambda c: c.uuid, created=lambda c: c.created_at,
                              since=_parse_stamp(cursor.after))
    return sorted((c for c in changes if cursor.is_new(c)), key=lambda c: (_stamp(c.created_at), c.uuid))


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
        clock = cargo.get_client().clock
        started = clock.monotonic()
        cursor = ChangeCursor.from_json(context.cursor)
        segment_uuid = _segment_uuid(cargo, segment)
        changes = _new_changes(cargo, segment_uuid, cursor,
                               everything=cursor.after is None and start_from == "beginning")
        if cursor.after is None and start_from == "latest":
            for change in changes:
                cursor.advance(change)
            return dg.SensorResult(run_requests=[], cursor=cursor.to_json(),
                                   skip_reason=dg.SkipReason("Started watching from the latest change."))
        requests: list[dg.RunRequest] = []
        for change in changes:
            if len(requests) >= max_runs_per_tick or clock.monotonic() - started > tick_budget_seconds:
                break
            if _count(change, kinds) > 0:
                requests.append(dg.RunRequest(
                    run_key=f"cargo-change-{change.uuid}",
                    asset_selection=[asset_key],
                    run_config=change_run_config(cargo, play_asset, change.uuid, kinds),
                    tags={"dagster-cargo/change_uuid": change.uuid, "dagster-cargo/segment_uuid": segment_uuid},
                ))
            cursor.advance(change)
        skip = None if requests else dg.SkipReason("No new segment change with records to enrich.")
        return dg.SensorResult(run_requests=requests, cursor=cursor.to_json(), skip_reason=skip)

    return _sensor


@dataclass
class BatchCursor(_JsonCursor):
    """Order-free record of handled batches.

    Attributes:
        after: every batch created before this instant (Cargo's clock) is handled; ``None`` before the
            first tick.
        done: handled batches created at or after ``after`` (UUID -> createdAt; batches finish out of
            creation order, and the list has no documented order).
        high: the newest ``createdAt`` of the previous tick; the next watermark trails it by
            :data:`LATE_VISIBILITY_SECONDS`.
        pending: batches seen unfinished, looked up by UUID if a later listing misses them.
    """

    after: str | None = None
    done: dict[str, str] = field(default_factory=dict)
    high: str | None = None
    pending: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.done, list):  # cursors of earlier versions: a list of UUIDs, instants unknown
            self.done = dict.fromkeys(self.done, "")

    def handled(self, batch: Batch) -> bool:
        """Whether ``batch`` was already handled (reported or deliberately not)."""
        if batch.uuid in self.done:
            return True
        created = _stamp(batch.created_at)
        return self.after is not None and created != "" and created < self.after


def _all_batches(client: Any, workflow_uuids: list[str], after: str | None) -> list[Batch]:
    """The workflows' batches created at or after ``after`` (and maybe older ones); every batch when ``after``
    is unset (the first tick). The list has no documented order and no "created after" filter: only the newest
    pages back to ``after`` are read when it shows it is served newest first (each page checked, see
    :func:`~cargo_gtm.paging.read_newest`), else it is read to the end. Offset paging over a list that moves can
    repeat a batch (deduplicated here) or skip one (found next tick: see :class:`BatchCursor`)."""
    def page(offset: int) -> list[Batch]:
        return client.list_batches(workflow_uuids=workflow_uuids, limit=PAGE_SIZE, offset=offset)

    since = _parse_stamp(after)
    if since is None or PAGE_SIZE < MIN_ORDER_EVIDENCE:
        return read_all(page, page_size=PAGE_SIZE, key=lambda b: b.uuid)
    return read_newest(page, page_size=PAGE_SIZE, key=lambda b: b.uuid, created=lambda b: b.created_at, since=since)


def _with_pending(client: Any, batches: list[Batch], pending: list[str], log: Any) -> list[Batch]:
    """``batches`` plus the unfinished batches of the last tick that this listing did not return."""
    seen = {b.uuid for b in batches}
    out = list(batches)
    for uuid in pending:
        if uuid in seen:
            continue
        try:
            out.append(client.get_batch(uuid))
        except CargoNotFoundError:
            log.warning(f"Cargo batch {uuid}, unfinished at the last tick, no longer exists; not reported.")
    return out


def _minus(stamp: str, seconds: float) -> str:
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return _stamp(moment - timedelta(seconds=seconds))


class _DagsterBatches:
    """Tells the batches Dagster created from the others, asking only when needed (once per tick).

    A batch is Dagster's when a Dagster run's tags name it (``dagster-cargo/batch.<step>``, written as
    soon as the create returns, and ``dagster-cargo/batch_uuid.<op>``), or when its ``userUuid`` is the
    token's user. Cargo's docs show no ``userUuid`` on batches (CARGO-DOCS 7.2): without it only the
    tags count, and a batch this token created outside any Dagster run is reported like any other.
    """

    def __init__(self, instance: dg.DagsterInstance, client: Any, log: Any) -> None:
        self.instance, self.client, self.log = instance, client, log
        self._tagged: tuple[set[str], set[str]] | None = None
        self._user: str | None = None
        self.without_user_uuid = 0

    def _tags(self) -> tuple[set[str], set[str]]:
        if self._tagged is None:
            prefixes = (*DAGSTER_BATCH_TAG_PREFIXES, CANDIDATES_TAG_PREFIX)
            keys = [k for k in self.instance.get_run_tag_keys() if k.startswith(prefixes)]
            created: set[str] = set()
            candidates: set[str] = set()
            for key, values in (self.instance.get_run_tags(tag_keys=keys) if keys else []):
                bucket = candidates if key.startswith(CANDIDATES_TAG_PREFIX) else created
                bucket.update(u.strip() for v in values for u in v.split(",") if u.strip())
            self._tagged = (created, candidates)
        return self._tagged

    def _token_user(self) -> str:
        if self._user is None:
            self._user = self.client.get_current_user().uuid
        return self._user or ""

    def created(self, batch: Batch) -> bool:
        """Whether Dagster created ``batch`` (a possible one is logged and counted as Dagster's)."""
        created, candidates = self._tags()
        if batch.uuid in created:
            return True
        if "user_uuid" not in batch.model_fields_set:
            self.without_user_uuid += 1
        elif batch.user_uuid is not None and batch.user_uuid == self._token_user():
            return True
        if batch.uuid in candidates:
            self.log.warning(
                f"Cargo batch {batch.uuid} is one of the batches an ambiguous create in a Dagster run could not "
                "tell apart (tag dagster-cargo/candidates.*): it may be Dagster's, so it is not reported as run "
                "outside Dagster. If it was not, report it by hand.")
            return True
        return False


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


def _succeeded_runs(client: Any, batch: Batch) -> int:
    """Runs of the batch that ended ``success``: counted (``runs/count``), because ``executedRunsCount`` may or may
    not include skipped runs (CARGO-DOCS 4.4 says success + error); the counters' bound if the count fails."""
    try:
        return int(client.count_runs(workflow_uuid=batch.workflow_uuid, batch_uuid=batch.uuid, statuses=["success"]))
    except CargoError:
        return batch.succeeded_runs_count


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
    succeeded = _succeeded_runs(client, batch)
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


def _observe(context: dg.SensorEvaluationContext, cargo: CargoResource, cursor: BatchCursor, batches: list[Batch],
             keys: dict[str, dg.AssetKey], started: float, budget: float,
             ) -> tuple[list[dg.AssetMaterialization], list[Batch]]:
    """Handle the new finished batches (oldest first): their events, and the batches left for later
    (unfinished, or past the tick budget). Handled ones go to ``cursor.done``."""
    client = cargo.get_client()
    dagster = _DagsterBatches(context.instance, client, context.log)
    slugs: dict[str, dict[str, str]] = {}
    events: list[dg.AssetMaterialization] = []
    later: list[Batch] = []
    for batch in sorted((b for b in batches if not cursor.handled(b)), key=lambda b: (_stamp(b.created_at), b.uuid)):
        if not batch.is_terminal or client.clock.monotonic() - started > budget:
            later.append(batch)
            continue
        cursor.done[batch.uuid] = _stamp(batch.created_at)
        key = keys.get(batch.workflow_uuid)
        if key is None or batch.status != BatchStatus.SUCCESS or dagster.created(batch):
            continue
        if _already_recorded(context.instance, key, batch.uuid):
            continue
        events.append(_observed_event(cargo, batch, key, slugs, context.log))
    if dagster.without_user_uuid:
        context.log.info(
            f"{dagster.without_user_uuid} new Cargo batch(es) carry no userUuid, so Dagster's own batches are "
            "recognised by its run tags only: a batch no Dagster run recorded (one this token created outside "
            "Dagster included) is reported as run outside Dagster.")
    return events, later


def _starting_cursor(stamps: dict[str, str], high: str | None) -> BatchCursor:
    """The first tick's cursor with ``start_from="latest"``: every batch listed now counts as handled."""
    after = _minus(high, LATE_VISIBILITY_SECONDS) if high else ""
    return BatchCursor(after=after, done={u: t for u, t in stamps.items() if not t or t >= after}, high=high)


def _advance(cursor: BatchCursor, stamps: dict[str, str], pending: list[Batch], high: str | None) -> None:
    """Move the cursor past this tick: the watermark trails the previous tick's newest batch by
    :data:`LATE_VISIBILITY_SECONDS` and never passes an unfinished batch; handled UUIDs before it are dropped."""
    cursor.done.update({u: stamps[u] for u in cursor.done if u in stamps})
    cursor.pending = [b.uuid for b in pending]
    after = cursor.after or ""
    bounds = [_stamp(b.created_at) for b in pending if b.created_at is not None]
    if cursor.high:  # a batch created up to LATE_VISIBILITY_SECONDS before the last tick's newest may be late
        bounds.append(_minus(cursor.high, LATE_VISIBILITY_SECONDS))
        cursor.after = max(after, min(bounds))
    cursor.after = cursor.after or ""
    cursor.done = {u: t for u, t in cursor.done.items() if not t or t >= cursor.after}
    cursor.high = high


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
    metadata maps batches to assets.

    Batches Dagster created are skipped: those a Dagster run's tags name (written by the package as
    soon as a create returns) and, when Cargo's batches carry a ``userUuid``, those of the token's own
    user (so use a dedicated token for Dagster). Cargo's docs show no ``userUuid`` on batches; when it is
    absent only the run tags count, every other batch (one this token created outside any Dagster run
    included) is reported, and the tick says so in its log. Failed or cancelled batches advance the
    cursor without an event. With ``start_from="latest"`` the first tick only records a starting point.

    Each tick lists the workflows' batches back to the cursor's watermark: only the newest pages when Cargo
    serves the list newest first (checked page by page), so a tick costs the same whatever the history; the
    whole list in any other order (Cargo documents none) and on the first tick. It reports each new finished
    batch once, whatever the order: the cursor keeps a ``createdAt`` watermark and the UUIDs handled after it
    (:class:`BatchCursor`). A new batch costs one ``runs/metrics`` call (and one release lookup per
    release) for its bill.
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
        client = cargo.get_client()
        started = client.clock.monotonic()
        cursor = BatchCursor.from_json(context.cursor)
        batches = _with_pending(client, _all_batches(client, sorted(keys), cursor.after), cursor.pending, context.log)
        stamps = {b.uuid: _stamp(b.created_at) for b in batches}
        high = max((t for t in stamps.values() if t), default=cursor.high)
        if cursor.after is None and start_from == "latest":
            return dg.SensorResult(cursor=_starting_cursor(stamps, high).to_json(),
                                   skip_reason=dg.SkipReason("Started observing from the latest batch."))
        events, pending = _observe(context, cargo, cursor, batches, keys, started, tick_budget_seconds)
        _advance(cursor, stamps, pending, high)
        skip = None if events else dg.SkipReason("No new Cargo batch ran outside Dagster.")
        return dg.SensorResult(asset_events=events, cursor=cursor.to_json(), skip_reason=skip)

    return _sensor


def build_cargo_unreported_spend_sensor(
    *,
    name: str = "cargo_unreported_spend_sensor",
    minimum_interval_seconds: int = 600,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    resource_key: str = "cargo",
) -> dg.SensorDefinition:
    """Report "unreported spend": Cargo batches Dagster runs paid for that no materialization reported.

    A batch is unreported when every run that recorded it (run tags ``dagster-cargo/batch.*``) ended failed or
    cancelled, e.g. a run killed while waiting whose step was never re-executed (see
    :mod:`dagster_cargo.running.unreported`). Each tick lists them with Cargo's current status and credits: a
    warning per batch not reported by an earlier tick, and the total in the tick's skip reason. It launches
    nothing and cancels nothing: re-execute the failed run to attach to a batch, set ``resume_unreported`` to
    let a new materialization adopt it, or cancel it in Cargo.
    """
    from ..running.unreported import unreported_batches

    @dg.sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=default_status,
               required_resource_keys={resource_key})
    def _sensor(context: dg.SensorEvaluationContext, **resources: Any) -> dg.SensorResult:
        resource: CargoResource = resources.get(resource_key) or getattr(context.resources, resource_key)
        found = unreported_batches(context.instance, resource.get_client())
        seen = set(json.loads(context.cursor)) if context.cursor else set()
        for item in found:
            if item.uuid not in seen:
                context.log.warning(f"Unreported spend: {item.describe()}.")
        total = sum(item.credits for item in found)
        running = sum(1 for item in found if item.batch is not None and not item.batch.is_terminal)
        reason = (f"Unreported spend: {len(found)} batch(es), {total:g} provider credits, {running} still running: "
                  + ", ".join(item.uuid for item in found)) if found else "No unreported spend."
        return dg.SensorResult(skip_reason=reason, cursor=json.dumps(sorted(item.uuid for item in found)))

    return _sensor
