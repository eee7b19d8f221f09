"""Attach a retried or re-executed Dagster step to the batch its earlier attempt created.

Three run tags per step attempt, under keys derived from what the step runs (op, asset,
partition, workflow and input):

* ``dagster-cargo/intent.<key>``: written **before** the create request is sent: the
  workflow's batch watermark (the newest ``createdAt`` in Cargo's clock) and the send time;
* ``dagster-cargo/batch.<key>``: the batch UUID, written the moment the create returns;
* ``dagster-cargo/candidates.<key>``: batches that could not be told apart after an ambiguous
  create (none adopted, none created), for the next attempt to resolve.

A later attempt reads them on its *run group*: the run itself (step retries), its parent chain
(``DagsterRun.parent_run_id``, set by the UI, the run-retry daemon, ``execute_job`` with
``ReexecutionOptions`` and the CLI), its root (``DagsterRun.root_run_id``, or the
``dagster/root_run_id`` tag) and every run tagged with that root. A batch tag that is running or
succeeded is attached to. An intent without a batch (the process died around the create) is
resolved by content (:meth:`CargoClient.find_created_batch`): the batch it provably made is
adopted; if it made none, a new one is created; if that cannot be told, the step stops and names
the candidates. A failed or cancelled batch is not reused.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dagster as dg
from cargo_gtm import CargoClient
from cargo_gtm.errors import CargoError, CargoNotFoundError
from cargo_gtm.models import Batch, BatchStatus, Run, RunStatus
from cargo_gtm.running import CargoAmbiguousCreateError, CreateIntent, find_created_run

__all__ = ["attempt_tag_key", "find_reusable_batch", "find_reusable_batches", "remember_batch", "remember_intent",
           "remember_candidates", "run_group", "intent_tag_key", "candidates_tag_key", "RunTagLedger", "run_tag_key",
           "RUN_PREFIX", "RUN_INTENT_PREFIX", "RUN_CANDIDATES_PREFIX", "claimed_elsewhere"]

ROOT_RUN_TAG = "dagster/root_run_id"
PARENT_RUN_TAG = "dagster/parent_run_id"
BATCH_PREFIX = "dagster-cargo/batch."
INTENT_PREFIX = "dagster-cargo/intent."
CANDIDATES_PREFIX = "dagster-cargo/candidates."
RECENT_INTENT_SECONDS = 60.0  # an intent younger than this may still be committing on Cargo's side


def attempt_tag_key(context: Any, workflow_uuid: str, data: Any, *, scope: str | None = None) -> str | None:
    """The run-tag key naming this step's batch, or ``None`` outside a real run.

    ``scope`` names a part of the step (``<op>.<scope>``), so that two batches of one step over the same
    input (e.g. two heal rounds) have different identities."""
    try:
        context.run_id  # noqa: B018 - raises outside a run
        op_name = context.op_def.name
    except Exception:  # direct invocation without a run: nothing to attach to
        return None
    if scope:
        op_name = f"{op_name}.{scope}"
    asset = ""
    try:
        if context.has_assets_def:
            asset = ",".join(sorted(k.to_user_string() for k in context.assets_def.keys))
    except Exception:
        asset = ""
    partition = context.partition_key if getattr(context, "has_partition_key", False) else None
    identity = json.dumps({"op": op_name, "asset": asset, "partition": partition, "workflow": workflow_uuid,
                           "data": data}, sort_keys=True, default=str)
    return BATCH_PREFIX + hashlib.sha1(identity.encode()).hexdigest()[:32]


def intent_tag_key(batch_key: str) -> str:
    return INTENT_PREFIX + batch_key[len(BATCH_PREFIX):]


def candidates_tag_key(batch_key: str) -> str:
    return CANDIDATES_PREFIX + batch_key[len(BATCH_PREFIX):]


def run_group(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[dg.DagsterRun]:
    """This run (fresh), its parent chain, its root and every run tagged with that root."""
    runs: dict[str, dg.DagsterRun] = {}
    current = instance.get_run_by_id(run.run_id) or run  # fresh: tags added during this run
    runs[current.run_id] = current
    parent = current.parent_run_id or current.tags.get(PARENT_RUN_TAG)
    for _ in range(100):  # walk up to the root
        if not parent or parent in runs:
            break
        found = instance.get_run_by_id(parent)
        if found is None:
            break
        runs[found.run_id] = found
        parent = found.parent_run_id or found.tags.get(PARENT_RUN_TAG)
    root = current.root_run_id or current.tags.get(ROOT_RUN_TAG) or current.run_id
    if root not in runs:
        found = instance.get_run_by_id(root)
        if found is not None:
            runs[found.run_id] = found
    for sibling in instance.get_runs(filters=dg.RunsFilter(tags={ROOT_RUN_TAG: root})):
        runs.setdefault(sibling.run_id, sibling)
    return list(runs.values())


def find_reusable_batch(context: Any, client: CargoClient, tag_key: str | None,
                        data: Any = None) -> Batch | None:
    """The batch an earlier attempt of this step created, if it is running or succeeded.

    A status this client does not know yet counts as "maybe still running": the step attaches
    and waits, since an unknown status is never taken as an ending. If the earlier batch cannot
    be read at all (after the client's retries), creating a new one could pay twice, so the step
    stops with a :class:`dagster.Failure` that says what to do instead. A batch Cargo says no
    longer exists (404) is not reused. With ``data``, an intent recorded without a batch is
    resolved by content.
    """
    if tag_key is None:
        return None
    return find_reusable_batches(context, client, [tag_key], [data])[tag_key]


def find_reusable_batches(context: Any, client: CargoClient, tag_keys: list[str | None],
                          datas: list[Any] | None = None) -> dict[str | None, Batch | None]:
    """:func:`find_reusable_batch` for several keys, reading the run group once."""
    found: dict[str | None, Batch | None] = dict.fromkeys(tag_keys)
    if not [k for k in tag_keys if k is not None]:
        return found
    group = run_group(context.instance, context.run)
    data_of = dict(zip(tag_keys, datas or [None] * len(tag_keys)))
    for key in [k for k in tag_keys if k is not None]:
        batch = _reusable(context, client, key, group)
        if batch is None and data_of.get(key) is not None:
            batch = _from_intents(context, client, key, group, data_of[key])
        found[key] = batch
    return found


def _usable_quietly(batch: Batch) -> bool:
    """Running, pending, succeeded or an unknown status: worth attaching to."""
    return batch.status == BatchStatus.SUCCESS or not batch.status.is_known or (
        not batch.is_terminal and batch.status != BatchStatus.CANCELLING)


def _usable(context: Any, batch: Batch) -> bool:
    status = batch.status
    if status == BatchStatus.SUCCESS:
        return True
    if not status.is_known:
        context.log.warning(
            f"Earlier Cargo batch {batch.uuid} reports status {status.value!r}, unknown to this client; "
            "treating it as still running and attaching to it rather than paying for a new batch."
        )
        return True
    if not batch.is_terminal and status != BatchStatus.CANCELLING:
        return True
    context.log.info(f"Earlier Cargo batch {batch.uuid} ended {status.value}; starting a new one.")
    return False


def _reusable(context: Any, client: CargoClient, tag_key: str, group: list[dg.DagsterRun]) -> Batch | None:
    seen: set[str] = set()
    for run in group:
        uuid = run.tags.get(tag_key)
        if not uuid or uuid in seen:
            continue
        seen.add(uuid)
        try:
            batch = client.get_batch(uuid)
        except CargoNotFoundError:
            context.log.info(f"Earlier Cargo batch {uuid} no longer exists; starting a new one.")
            continue
        except CargoError as exc:
            raise dg.Failure(
                description=(
                    f"An earlier attempt of this step created Cargo batch {uuid} (run {run.run_id}), but it "
                    f"could not be read now: {exc}. Creating another batch could pay twice for the same "
                    "records, so this step stops. Next step: re-execute once Cargo answers again (the step "
                    "then attaches to that batch); to pay for a new batch on purpose, launch a new run "
                    "instead of a re-execution."
                ),
                metadata={"cargo/batch_uuid": uuid},
            ) from exc
        if _usable(context, batch):
            return batch
    return None


def _from_intents(context: Any, client: CargoClient, tag_key: str, group: list[dg.DagsterRun],
                  data: Any) -> Batch | None:
    """Resolve intents recorded without a batch (the process died around the create) by content."""
    intents: dict[str, CreateIntent] = {}
    for run in group:
        text = run.tags.get(intent_tag_key(tag_key))
        if text:
            try:
                intent = CreateIntent.from_json(text)
            except (ValueError, KeyError):
                continue
            intents[text] = intent
    if not intents:  # nothing to resolve (a fresh step): no claims to read
        return None
    known = {run.tags[tag_key] for run in group if run.tags.get(tag_key)}  # recorded, and not reusable
    known |= claimed_elsewhere(context.instance, context.run, tag_key)  # twins' batches are never ours
    for intent in sorted(intents.values(), key=lambda i: i.sent_at):
        recent = intent.age_seconds() < RECENT_INTENT_SECONDS
        context.log.info(f"An earlier attempt of this step sent a create for workflow {intent.workflow_uuid} at "
                         f"{intent.sent_at} and recorded no batch (it stopped around the create); checking "
                         "Cargo's batches created since for one holding exactly this input.")
        try:
            batch = client.find_created_batch(data, intent, claimed=lambda: known,
                                              settle_delays=(1.0, 3.0, 6.0) if recent else ())
        except CargoAmbiguousCreateError as exc:
            remember_candidates(context, tag_key, exc.candidates)
            raise dg.Failure(description=f"{exc} (earlier attempt's create, sent {intent.sent_at})",
                             metadata={"dagster-cargo/candidate_batches": ", ".join(exc.candidates)}) from exc
        if batch is None:
            context.log.info("No batch holds this input: the earlier create was never committed; creating it now.")
            continue
        context.log.warning(f"Cargo batch {batch.uuid} holds exactly this step's input and was created after the "
                            "earlier attempt's intent: it is that attempt's batch; attaching to it.")
        remember_batch(context, tag_key, batch)
        if _usable(context, batch):
            return batch
    return None


def remember_batch(context: Any, tag_key: str | None, batch: Batch | Run) -> None:
    """Tag the run with the batch (or single run) this step created, for later attempts."""
    if tag_key is None:
        return
    context.instance.add_run_tags(context.run_id, {tag_key: batch.uuid})


def remember_intent(context: Any, tag_key: str | None, intent: CreateIntent) -> None:
    """Record, before the create is sent, that it is about to be (watermark and send time)."""
    if tag_key is None:
        return
    context.instance.add_run_tags(context.run_id, {intent_tag_key(tag_key): intent.to_json()})


def remember_candidates(context: Any, tag_key: str | None, candidates: list[str]) -> None:
    """Record batches an ambiguous create could not tell apart, for the next attempt and the user."""
    if tag_key is None or not candidates:
        return
    context.instance.add_run_tags(context.run_id, {candidates_tag_key(tag_key): ",".join(candidates)})


# -- single runs: the same ledger, under run keys -------------------------------------------------
RUN_PREFIX = "dagster-cargo/run."
RUN_INTENT_PREFIX = "dagster-cargo/run_intent."
RUN_CANDIDATES_PREFIX = "dagster-cargo/run_candidates."
_USABLE_RUN = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.IDLE, RunStatus.SUCCESS)


def run_tag_key(context: Any, workflow_uuid: str, record: Any, index: int) -> str | None:
    """The run-tag key naming the single run of the ``index``-th record of this step, or ``None`` outside a run."""
    key = attempt_tag_key(context, workflow_uuid, {"single_run": dict(record), "index": index})
    return None if key is None else RUN_PREFIX + key[len(BATCH_PREFIX):]


def _run_sub_key(prefix: str, key: str) -> str:
    return prefix + key[len(RUN_PREFIX):]


def _earlier_run(context: Any, client: CargoClient, key: str, group: list[dg.DagsterRun]) -> Run | None:
    """The run an earlier attempt recorded under ``key``, if pending, running or succeeded."""
    for uuid in dict.fromkeys(r.tags[key] for r in group if r.tags.get(key)):
        try:
            run = client.get_run(uuid)
        except CargoNotFoundError:
            continue
        except CargoError as exc:
            raise dg.Failure(description=(
                f"An earlier attempt of this step created Cargo run {uuid}, but it could not be read now: {exc}. "
                "Creating another could pay twice for the same record, so this step stops. Next step: re-execute "
                "once Cargo answers again (the step then attaches to that run); to pay for a new run on purpose, "
                "launch a new run instead of a re-execution."), metadata={"dagster-cargo/run_uuid": uuid}) from exc
        if run.status in _USABLE_RUN or not run.status.is_known:
            return run
        context.log.info(f"Earlier Cargo run {uuid} ended {run.status.value}; starting a new one.")
    return None


def _run_from_intents(context: Any, client: CargoClient, key: str, group: list[dg.DagsterRun],
                      record: Any) -> Run | None:
    """Resolve single-run intents recorded without a run (the process died around the create) by content."""
    known = {r.tags[key] for r in group if r.tags.get(key)}
    known |= claimed_elsewhere(context.instance, context.run, key)  # twins' runs are never ours
    intent_key = _run_sub_key(RUN_INTENT_PREFIX, key)
    for text in dict.fromkeys(r.tags[intent_key] for r in group if r.tags.get(intent_key)):
        intent = CreateIntent.from_json(text)
        context.log.info(f"An earlier attempt of this step sent a single-run create at {intent.sent_at} and "
                         "recorded no run; checking Cargo's runs created since for one holding this record.")
        try:
            run = find_created_run(client, record, intent, claimed=lambda: known)
        except CargoAmbiguousCreateError as exc:
            remember_candidates(context, key, exc.candidates)
            raise dg.Failure(description=str(exc), metadata={"dagster-cargo/candidate_runs": ", ".join(
                exc.candidates)}) from exc
        if run is not None:
            remember_batch(context, key, run)
            if run.status in _USABLE_RUN:
                return run
    return None


def _reusable_run(context: Any, client: CargoClient, key: str, group: list[dg.DagsterRun], record: Any) -> Run | None:
    return _earlier_run(context, client, key, group) or _run_from_intents(context, client, key, group, record)


def _is_run_key(key: str | None) -> bool:
    return key is not None and key.startswith(RUN_PREFIX)


def _side_key(kind: str, key: str) -> str:
    """The intent or candidates tag key beside a batch or run key."""
    if _is_run_key(key):
        return _run_sub_key(RUN_INTENT_PREFIX if kind == "intent" else RUN_CANDIDATES_PREFIX, key)
    return intent_tag_key(key) if kind == "intent" else candidates_tag_key(key)


def claimed_elsewhere(instance: dg.DagsterInstance, run: dg.DagsterRun, tag_key: str | None) -> set[str]:
    """The batches (a batch key) or single runs (a run key) recorded under ``tag_key`` by runs outside ``run``'s
    group (other materializations of the same step and input: "twins", live or not). Read from the instance
    every run of the deployment shares."""
    if tag_key is None:
        return set()
    values: set[str] = set()
    for _key, found in instance.get_run_tags(tag_keys=[tag_key]):
        values |= set(found)
    if not values:
        return set()
    mine = {r.tags.get(tag_key) for r in run_group(instance, run)}
    return {v for v in values if v and v not in mine}


class RunTagLedger:
    """The :class:`~cargo_gtm.running.handle.ClaimingLedger` of a Dagster step, for its batches and its single
    runs alike: units, intents and candidates are recorded as run tags, and the units of earlier attempts of the
    step are found on the run group (a batch key ``dagster-cargo/batch.<h>``, a single run's
    ``dagster-cargo/run.<h>``); batches and single runs other runs recorded for the same step and input
    ("twins") are claimed: never adopted. Creates of twins are taken in turn
    (:class:`~dagster_cargo.running.turns.Turns`), a batch step's under its batch keys, a single-run step's
    under each record's run key."""

    def __init__(self, context: Any, client: CargoClient, *, resume_unreported: bool = False) -> None:
        self.context = context
        self.client = client
        self.resume_unreported = resume_unreported

    def claimed(self, key: str | None) -> set[str]:
        return claimed_elsewhere(self.context.instance, self.context.run, key)

    def exclusive(self, keys: list[str | None]) -> Any:
        from contextlib import nullcontext

        from .turns import Turns

        real = [k for k in keys if k is not None]  # None: outside a run (direct invocation), nothing to share
        return Turns(self.context, self.client, real) if real else nullcontext()

    def reusable(self, keys: list[str | None], datas: list[Any]) -> dict[str, Any]:
        """Units earlier attempts of this step made, by key: single runs, then batches (and, for a batch key that
        has none, a batch earlier failed runs paid for that nobody reported, when adopting it is asked for)."""
        found = self._reusable_runs([(k, d) for k, d in zip(keys, datas) if _is_run_key(k)])
        batch_keys = [k if not _is_run_key(k) else None for k in keys]
        if any(k is not None for k in batch_keys):
            batches = find_reusable_batches(self.context, self.client, batch_keys, datas)
            found.update({k: b for k, b in batches.items() if k is not None and b is not None})
        found.update(self._adopted([k for k in batch_keys if k is not None and k not in found]))
        return found

    def _adopted(self, keys: list[str]) -> dict[str, Any]:
        """Unreported batches adopted for batch ``keys`` (see :meth:`_unreported`; single runs: not covered yet)."""
        recorded = self._recorded(keys)
        adopted = {key: self._unreported(key) for key in keys if key in recorded}
        return {key: batch for key, batch in adopted.items() if batch is not None}

    def _reusable_runs(self, runs: list[tuple[str | None, Any]]) -> dict[str, Any]:
        """Single runs earlier attempts of this step made, by run key."""
        if not runs:
            return {}
        group = run_group(self.context.instance, self.context.run)
        found: dict[str, Any] = {}
        for key, record in runs:
            run = _reusable_run(self.context, self.client, str(key), group, record)
            if run is not None:
                found[str(key)] = run
        return found

    def _recorded(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` any run of the instance recorded a batch under, in one query (a key no run recorded has
        no unreported batch: a fan-out's fresh keys are not looked up one by one)."""
        recorded: set[str] = set()
        try:
            for start in range(0, len(keys), 500):  # a bounded IN (...) per query
                found = self.context.instance.get_run_tags(tag_keys=keys[start:start + 500])
                recorded.update(key for key, values in found if values)
        except Exception:  # a storage without tag-key filtering: look each key up
            return set(keys)
        return recorded

    def _unreported(self, key: str) -> Batch | None:
        """Say so when earlier failed runs of this step paid for a batch of this input that nobody reported;
        adopt one that is still running or succeeded when ``resume_unreported`` asks (run config or call argument,
        else the run tag, else the resource: :func:`~.unreported.resume_requested`)."""
        from .turns import Turns
        from .unreported import holders_all_failed, resume_requested, unreported_for_key

        context = self.context
        try:
            group = [r.run_id for r in run_group(context.instance, context.run)]
            found = unreported_for_key(context.instance, self.client, key, exclude_runs=group)
        except Exception as exc:  # reporting aid: never fail the step over it
            context.log.debug(f"Could not look for unreported Cargo batches: {exc}")
            return None
        usable = [u for u in found if u.batch is not None and _usable_quietly(u.batch)]
        for item in found:
            context.log.warning(
                f"{item.describe()}. This materialization (a new run, not a re-execution of those) "
                + ("adopts it instead of paying again (resume_unreported)." if item in usable[:1]
                   and resume_requested(context, self.resume_unreported) else
                   "pays for a new batch; launch with run config resume_unreported: true (or the run tag "
                   "dagster-cargo/resume_unreported=true, or resume_unreported=True on the resource) to adopt a "
                   "running or succeeded one, or re-execute the failed run." if item in usable else
                   "pays for a new batch (that one ended "
                   f"{item.status})."))
        if not usable or not resume_requested(context, self.resume_unreported):
            return None
        with Turns(context, self.client, [key]):  # no twin adopts it at the same moment
            for item in usable:
                if holders_all_failed(context.instance, key, item.uuid, context.run_id):
                    remember_batch(context, key, item.batch)  # type: ignore[arg-type]
                    return item.batch
        return None

    def intent(self, key: str | None, intent: CreateIntent) -> None:
        if key is not None:
            self.context.instance.add_run_tags(self.context.run_id, {_side_key("intent", key): intent.to_json()})

    def intents(self, pairs: list[tuple[str | None, CreateIntent]]) -> None:
        """Several intents in one write (a fan-out's creates, all before the first request leaves)."""
        tags = {_side_key("intent", key): intent.to_json() for key, intent in pairs if key is not None}
        if tags:
            self.context.instance.add_run_tags(self.context.run_id, tags)

    def created(self, key: str | None, unit: Any) -> None:
        remember_batch(self.context, key, unit)

    def created_many(self, pairs: list[tuple[str | None, Any]]) -> None:
        """Several created batches in one write (creates of a fan-out that ended together): each write re-stores
        the run with every tag it has, so one write per batch would make a fan-out's cost grow with its square."""
        tags = {key: unit.uuid for key, unit in pairs if key is not None}
        if tags:
            self.context.instance.add_run_tags(self.context.run_id, tags)

    def candidates(self, key: str | None, uuids: list[str]) -> None:
        if key is not None and uuids:
            self.context.instance.add_run_tags(self.context.run_id, {_side_key("candidates", key): ",".join(uuids)})
