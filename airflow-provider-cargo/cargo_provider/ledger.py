"""Exactly once across worker crashes: the batches of a task instance, recorded in Airflow's task state store.

Airflow 3.3 keeps a key/value store per task instance (``context["task_state_store"]``, scoped to the DAG
run, task and map index) that survives retries. :class:`TaskStateLedger` is the core's
:class:`~cargo_gtm.running.handle.Ledger` on top of it:

* ``cargo.intent.<key>`` is written **before** a create request leaves: the workflow's batch watermark in
  Cargo's clock and the send time (:class:`~cargo_gtm.running.reconcile.CreateIntent`);
* ``cargo.batch.<key>`` is written the moment Cargo returns the new batch;
* ``cargo.candidates.<key>``: batches an ambiguous create could not tell apart (none adopted, none created).

``<key>`` names what the task runs (workflow, input, heal round), so one task may run several batches.

A later try reads them back. A recorded batch that is pending, running or succeeded is attached to; one
that failed, was cancelled or is cancelling is never reused. An intent with no batch (the process died
between sending and saving the uuid) is resolved **only by the core's content proof**
(:meth:`CargoClient.find_created_batch`): the batch that provably holds this input is adopted, none means
the create never committed and it is sent again, several (or unreadable content) stop the task and name
them. Proximity in time, or who created a batch, is never used.

**Clearing** a task in Airflow 3.3 keeps its task state store rows (retries and clears share them). A
cleared task must start afresh, so every value carries the task's *clear generation*,
``max_tries - retries``, the same number Airflow uses to find the first try after a clear: a clear raises
it, a retry does not. Values of an earlier generation are ignored, and a batch of an earlier generation that
is still running is cancelled before the new one is created.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from airflow.exceptions import AirflowException
from cargo_gtm.errors import CargoError, CargoNotFoundError
from cargo_gtm.models import Batch, BatchStatus
from cargo_gtm.running.reconcile import CargoAmbiguousCreateError, CreateIntent

__all__ = ["TaskStateLedger", "attempt_key", "clear_generation", "MemoryStore"]

log = logging.getLogger(__name__)

BATCH = "cargo.batch."
OWNED = "cargo.batches"  # every batch recorded by this clear generation (to recognise a stale trigger event)
INTENT = "cargo.intent."
PRIOR = "cargo.prior_spent."  # per try: credits earlier tries paid for batches never reused
RAMP = "cargo.ramp_sizes"  # the records each ramp round ran, in order (the same rounds on every try)
SHARED = "cargo.shared"  # batches another run started that this task waits on (a segment change enrolled once)
CANDIDATES = "cargo.candidates."
#: an intent younger than this may still be committing on Cargo's side: look a little longer
RECENT_INTENT_SECONDS = 60.0


def attempt_key(workflow_uuid: str, data: Mapping[str, Any], scope: str | None = None) -> str:
    """The name of one batch of a task: its workflow, its input and (heal rounds) its scope."""
    identity = json.dumps({"workflow": workflow_uuid, "data": data, "scope": scope}, sort_keys=True, default=str)
    return hashlib.sha1(identity.encode()).hexdigest()[:24]


def clear_generation(context: Mapping[str, Any]) -> int:
    """``max_tries - retries``: raised by a clear, unchanged by retries (Airflow's own "first try" rule)."""
    ti = context.get("ti")
    task = context.get("task") or getattr(ti, "task", None)
    max_tries = int(getattr(ti, "max_tries", 0) or 0)
    retries = int(getattr(task, "retries", 0) or 0)
    return max_tries - retries


class MemoryStore:
    """A dict with the task state store's ``get``/``set``/``delete`` (tests, and runs without a store)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def _usable(batch: Batch) -> bool:
    """Attach to a batch that may still succeed: pending, running, succeeded, or a status not known yet."""
    if not batch.status.is_known:
        log.warning("Earlier Cargo batch %s reports status %r, unknown to this client; treating it as still "
                    "running and attaching to it rather than paying for a new batch.", batch.uuid, batch.status.value)
        return True
    if batch.status == BatchStatus.SUCCESS:
        return True
    return not batch.is_terminal and batch.status != BatchStatus.CANCELLING


class TaskStateLedger:
    """The core's ``Ledger`` protocol over Airflow's ``task_state_store`` (see the module docstring)."""

    def __init__(self, store: Any, client: Any, *, generation: int = 0, logger: Any = None) -> None:
        self.store = store
        self.client = client
        self.generation = generation
        self.log = logger or log
        self._searched: set[str] = set()  # intents whose batch this try looked for in Cargo and did not find

    # -- reading -----------------------------------------------------------------------------
    def _read(self, key: str) -> Any:
        raw = self.store.get(key)
        if not isinstance(raw, Mapping) or raw.get("gen") != self.generation:
            return None
        return raw.get("value")

    def _stale(self, key: str) -> Any:
        raw = self.store.get(key)
        if isinstance(raw, Mapping) and raw.get("gen") != self.generation:
            return raw.get("value")
        return None

    def _write(self, key: str, value: Any) -> None:
        from datetime import timedelta

        try:  # kept until the DAG run is deleted: a retry may come long after (see the docs' guarantees)
            from airflow.sdk.execution_time.context import NEVER_EXPIRE
            self.store.set(key, {"gen": self.generation, "value": value}, retention=NEVER_EXPIRE)
        except ImportError:  # pragma: no cover - older task SDKs
            self.store.set(key, {"gen": self.generation, "value": value}, retention=timedelta(days=365))

    def recorded(self, key: str) -> list[str]:
        """The batch uuids recorded for ``key`` in this generation."""
        value = self._read(BATCH + key)
        return [value] if isinstance(value, str) else list(value or [])

    def remember_prior_spent(self, try_number: int, credits: float) -> None:
        """Keep what earlier tries spent, as read at this try's first start (see :meth:`prior_spent`)."""
        self._write(f"{PRIOR}{try_number}", credits)

    def prior_spent(self, try_number: int) -> float | None:
        """What earlier tries spent, as this try read it at its first start; None before that."""
        value = self._read(f"{PRIOR}{try_number}")
        return float(value) if isinstance(value, (int, float)) else None

    def ramp_sizes(self) -> list[int]:
        """The size of each ramp round a try of this generation started, in order (see :mod:`cargo_provider.ramp`)."""
        value = self._read(RAMP)
        return [int(v) for v in value] if isinstance(value, list) else []

    def remember_ramp_size(self, n: int, size: int) -> None:
        """Keep round ``n``'s size before it starts: later tries run the same rounds, and attach to their batches.
        A round already kept stays as it is."""
        sizes = self.ramp_sizes()
        if n >= len(sizes):
            self._write(RAMP, [*sizes, size])

    def intended(self, key: str) -> bool:
        """Whether a try of this generation recorded a create intent for ``key``."""
        return self._read(INTENT + key) is not None

    def may_attach(self, key: str, data: Mapping[str, Any]) -> bool:
        """Whether a try of this generation left a batch for ``key`` that this one will attach to: one recorded that
        may still succeed, or the one an earlier try's create intent made (looked for in Cargo now, and recorded
        when found, so that the start attaches to it)."""
        uuids = self.recorded(key)
        if any(batch is not None and _usable(batch) for batch in map(self._read_batch, uuids)):
            return True
        return self.intended(key) and self._from_intent(key, data) is not None

    def usable_recorded(self, key: str) -> list[Batch]:
        """The batches recorded for ``key`` that may still succeed, as Cargo has them now."""
        found = [self._read_batch(uuid) for uuid in self.recorded(key)]
        return [b for b in found if b is not None and _usable(b)]

    def dead_owned(self) -> list[Batch]:
        """The batches this generation recorded that are never reused (cancelled, cancelling, failed): what earlier
        tries paid for and a retry does not attach to."""
        found = [self._read_batch(uuid) for uuid in sorted(self.owned())]
        return [b for b in found if b is not None and not _usable(b)]

    def _read_batch(self, uuid: str) -> Batch | None:
        try:
            return self.client.get_batch(uuid)
        except CargoNotFoundError:
            return None
        except CargoError as exc:
            raise AirflowException(
                f"An earlier try of this task created Cargo batch {uuid}, but it could not be read now: {exc}. "
                "Without it this try can neither attach to it nor keep the credit budget. Next step: let the task "
                "retry once Cargo answers again.") from exc

    # -- Ledger protocol ---------------------------------------------------------------------
    def reusable(self, keys: list[str | None], datas: list[Mapping[str, Any]]) -> dict[str, Batch]:
        found: dict[str, Batch] = {}
        for key, data in zip(keys, datas):
            if key is None:
                continue
            self._cancel_stale(key)
            batch = self._recorded_batch(key)
            if batch is None:
                batch = self._from_intent(key, data)
            if batch is not None:
                found[key] = batch
        return found

    def intent(self, key: str | None, intent: CreateIntent) -> None:
        if key is not None:
            self._write(INTENT + key, intent.to_json())

    def created(self, key: str | None, batch: Batch) -> None:
        if key is not None:
            self._write(BATCH + key, batch.uuid)
            self._write(OWNED, sorted(self.owned() | {batch.uuid}))

    def shared_with(self, key: str, batch: Batch) -> None:
        """Record ``batch``, started by another run, as what ``key`` waits on: attached to on resume and retry like
        this task's own, never cancelled by it."""
        self._write(BATCH + key, batch.uuid)
        self._write(SHARED, sorted(self.shared() | {batch.uuid}))

    def shared(self) -> set[str]:
        """The batches this generation waits on that another run started (see :meth:`shared_with`)."""
        return set(self._read(SHARED) or [])

    def owned(self) -> set[str]:
        """Every batch this clear generation of the task recorded (all keys, all heal rounds)."""
        return set(self._read(OWNED) or [])

    def candidates(self, key: str | None, uuids: list[str]) -> None:
        if key is not None and uuids:
            self._write(CANDIDATES + key, list(uuids))

    # -- resolution --------------------------------------------------------------------------
    def _recorded_batch(self, key: str) -> Batch | None:
        for uuid in self.recorded(key):
            try:
                batch = self.client.get_batch(uuid)
            except CargoNotFoundError:
                self.log.info("Earlier Cargo batch %s no longer exists; starting a new one.", uuid)
                continue
            except CargoError as exc:
                raise AirflowException(
                    f"An earlier try of this task created Cargo batch {uuid}, but it could not be read now: {exc}. "
                    "Creating another batch could pay twice for the same records, so this try stops. Next step: "
                    "let the task retry once Cargo answers again (it then attaches to that batch); to pay for a "
                    "new batch on purpose, clear the task.") from exc
            if _usable(batch):
                self.log.info("Attaching to Cargo batch %s (%s), created by an earlier try of this task, instead "
                              "of starting a new one.", batch.uuid, batch.status.value)
                return batch
            self.log.info("Earlier Cargo batch %s ended %s; it is never reused: starting a new one.", batch.uuid,
                          batch.status.value)
        return None

    def _from_intent(self, key: str, data: Mapping[str, Any]) -> Batch | None:
        text = self._read(INTENT + key)
        if not isinstance(text, str) or text in self._searched:  # searched already (the checks before the start)
            return None
        try:
            intent = CreateIntent.from_json(text)
        except (ValueError, KeyError):
            return None
        known = set(self.recorded(key))
        self.log.info("An earlier try sent a create for workflow %s at %s and recorded no batch (it stopped around "
                      "the create); checking Cargo's batches created since for one holding exactly this input.",
                      intent.workflow_uuid, intent.sent_at)
        recent = intent.age_seconds() < RECENT_INTENT_SECONDS
        try:
            batch = self.client.find_created_batch(data, intent, claimed=lambda: known,
                                                   settle_delays=(1.0, 3.0, 6.0) if recent else ())
        except CargoAmbiguousCreateError as exc:
            self.candidates(key, exc.candidates)
            raise AirflowException(f"{exc} (earlier try's create, sent {intent.sent_at}; the Next step above applies)"
                                   ) from exc
        if batch is None:
            self.log.info("No Cargo batch holds this input: the earlier create never committed; creating it now.")
            self._searched.add(text)
            return None
        self.log.warning("Cargo batch %s holds exactly this task's input and was created after the earlier try's "
                         "intent: it is that try's batch; attaching to it.", batch.uuid)
        self.created(key, batch)
        return batch if _usable(batch) else None

    def cancel_earlier_generation(self) -> None:
        """Every batch the task recorded before it was cleared that is still running is cancelled, whatever its
        input (a cleared task may run another input, or be refused before it creates anything)."""
        spared = set(self._stale(SHARED) or [])
        for uuid in self._stale(OWNED) or []:
            if uuid not in spared:
                self._cancel_if_running(uuid)

    def _cancel_stale(self, key: str) -> None:
        """A batch of an earlier clear generation that is still running is cancelled (the task was cleared)."""
        value = self._stale(BATCH + key)
        spared = set(self._stale(SHARED) or []) | self.shared()
        for uuid in [value] if isinstance(value, str) else list(value or []):
            if uuid not in spared:
                self._cancel_if_running(uuid)

    def _cancel_if_running(self, uuid: str) -> None:
        try:
            batch = self.client.get_batch(uuid)
            if not batch.is_terminal and batch.status != BatchStatus.CANCELLING:
                self.client.cancel_batch(uuid)
                self.log.warning("Cancelled Cargo batch %s: it belongs to this task's run from before it was "
                                 "cleared, and a cleared task starts a fresh batch.", uuid)
        except CargoNotFoundError:
            return
        except CargoError as exc:
            self.log.warning("Could not check or cancel Cargo batch %s from before the task was cleared: %s. Cancel "
                             "it in Cargo if it is still running.", uuid, exc)


