"""Creating a batch exactly once: identify a created batch by its content, never by proximity.

A batch spends credits, and ``POST /orchestration/batches`` has no idempotency key. When the
call fails *ambiguously* (a timeout or dropped connection after the request was sent, or a
5xx), the batch may or may not exist, and a process killed while the call was in flight
leaves the same question to the next attempt. So:

1. Before sending, the workflow's newest batches are listed (only the newest page when the
   server lists newest first, checked page by page; every page otherwise, see
   :meth:`~cargo_gtm.CargoClient.list_newest_batches`) and the newest ``createdAt`` among them is
   kept: the *watermark*, in the server's own clock. Any batch this create makes is created at or
   after it. The caller may record the :class:`CreateIntent` (watermark, send time,
   attempt key) somewhere durable before the request leaves (the Dagster layer writes it on
   the run), so a later attempt can reconcile after a crash.
2. After an ambiguous outcome, every batch of the workflow created at or after the
   watermark (listed the same way: the pages back to the watermark) is a *candidate*; each is checked against what was sent:
   ``records``: each run's ``input`` (``runs/download-outputs``) is matched one to one with
   the records sent; ``recordIds``: the runs' record ids equal the ids sent; ``filter``:
   the batch's echoed ``data`` equals what was sent, or (no echo) its runs' record ids
   equal the records the filter selects now; ``segment``/``change``: the echoed ``data``.
   Who created a batch, or where it sits in the list, is never used.
3. Exactly one proven candidate → adopt it. Several, or candidates whose content cannot be
   read yet → stop with :class:`CargoAmbiguousCreateError` naming them (never create
   another). None (after letting the server settle) → the create was not committed, so it
   is safe to send it again.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from ..errors import CargoError, CargoNetworkError, CargoServerError
from ..models import Batch

__all__ = ["CargoAmbiguousCreateError", "CreateIntent", "Match", "create_batch_once", "is_ambiguous",
           "data_matches", "records_match", "newer_than", "LIST_PAGE"]

logger = logging.getLogger("cargo_gtm")

LIST_PAGE = 100  # the one page size used to list a workflow's batches, before and after a create


class CargoAmbiguousCreateError(CargoError):
    """A batch create failed ambiguously and could not be resolved to exactly one batch.

    ``candidates`` are the batches that may be the one sent (none was adopted, none created).
    """

    def __init__(self, message: str, *, candidates: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.candidates = candidates


@dataclass(frozen=True)
class CreateIntent:
    """What is about to be sent, recorded before sending so a later attempt can reconcile: the one intent
    type of batch creates and single-run creates (:mod:`.single_run`, where it is also named ``RunIntent``).

    ``watermark`` is the newest ``createdAt`` (server clock, ISO text) among the workflow's
    batches (or runs) before sending (``None``: it had none); ``at_watermark`` the batches (runs) that
    already existed at that instant or after it (they existed before, so they are never candidates).
    """

    workflow_uuid: str
    sent_at: str
    watermark: str | None
    at_watermark: tuple[str, ...] = ()
    attempt_key: str | None = None

    def age_seconds(self) -> float:
        """Seconds since the intent was recorded (this machine's clock, as ``sent_at`` was written); 0 when
        ``sent_at`` cannot be read."""
        try:
            sent = datetime.fromisoformat(self.sent_at)
        except ValueError:
            return 0.0
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=timezone.utc)
        return (datetime.now(timezone.utc) - sent).total_seconds()

    def to_json(self) -> str:
        return json.dumps({"workflow": self.workflow_uuid, "sent_at": self.sent_at, "watermark": self.watermark,
                           "at_watermark": list(self.at_watermark), "key": self.attempt_key},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CreateIntent:
        raw = json.loads(text)
        known = raw.get("at_watermark") or raw.get("known") or ()  # "known": single-run intents before 0.x
        return cls(workflow_uuid=raw["workflow"], sent_at=raw["sent_at"], watermark=raw.get("watermark"),
                   at_watermark=tuple(known), attempt_key=raw.get("key"))

    @property
    def known(self) -> tuple[str, ...]:
        """The units that existed before sending (:attr:`at_watermark`): never candidates."""
        return self.at_watermark


@dataclass
class Match:
    """The outcome of checking candidates: proven ones, and ones whose content is not readable yet."""

    proven: list[Batch] = field(default_factory=list)
    undecided: list[Batch] = field(default_factory=list)

    @property
    def uuids(self) -> list[str]:
        return [b.uuid for b in [*self.proven, *self.undecided]]


def is_ambiguous(exc: BaseException) -> bool:
    """Whether the request may have been committed although no success response arrived."""
    if isinstance(exc, CargoServerError):
        return True
    return isinstance(exc, CargoNetworkError) and not getattr(exc, "never_sent", False)


def _created(batch: Batch) -> datetime | None:
    return batch.created_at


def watermark_of(batches: Iterable[Batch]) -> tuple[str | None, tuple[str, ...]]:
    """The newest ``createdAt`` of ``batches`` (ISO) and the batches created at that instant."""
    dated = [b for b in batches if b.created_at is not None]
    if not dated:
        return None, ()
    newest = max(b.created_at for b in dated if b.created_at is not None)
    return newest.isoformat(), tuple(sorted(b.uuid for b in dated if b.created_at == newest))


def newer_than(batches: Iterable[Batch], watermark: str | None, at_watermark: Sequence[str] = ()) -> list[Batch]:
    """The batches created at or after ``watermark``, except those that existed at it."""
    if watermark is None:
        return list(batches)
    mark = datetime.fromisoformat(watermark)
    skip = set(at_watermark)
    return [b for b in batches if b.uuid not in skip and (b.created_at is None or b.created_at >= mark)]


def _canon(value: Any) -> Any:
    """A value as JSON would carry it, for comparison (``1`` and ``1.0`` are the same number)."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "[{":
            try:
                return _canon(json.loads(text))
            except ValueError:
                return value
        return value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return None  # an empty CSV/JSON cell read back as NaN
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    return value


def data_matches(stored: Mapping[str, Any], sent: Mapping[str, Any]) -> bool:
    """Whether an echoed batch ``data`` is exactly the ``data`` that was sent.

    Every field sent must be echoed with the same value (the server may add fields, such as a
    change's ``segmentUuid``). Only meaningful when the server echoes ``data`` in full.
    """
    if stored.get("kind") != sent.get("kind"):
        return False
    return all(k in stored and _canon(stored[k]) == _canon(v) for k, v in sent.items() if v is not None)


def _inputs_of(run_input: Any) -> list[dict[str, Any]]:
    """The objects of a run's ``input`` that may hold a record's fields (itself, or one level down)."""
    value = _canon(run_input)
    if not isinstance(value, dict):
        return []
    return [value, *[v for v in value.values() if isinstance(v, dict)]]


def _fits(record: Mapping[str, Any], run_input: list[dict[str, Any]]) -> bool:
    sent = {str(k): _canon(v) for k, v in record.items()}
    for obj in run_input:
        shared = [k for k in sent if k in obj]
        if shared and all(obj[k] == sent[k] for k in shared):
            return True
    return False


def records_match(sent: Sequence[Mapping[str, Any]], run_inputs: Sequence[Any]) -> bool:
    """Whether each run's input is one of the records sent, one to one (a perfect matching)."""
    if len(sent) != len(run_inputs):
        return False
    inputs = [_inputs_of(i) for i in run_inputs]
    if any(not i for i in inputs):
        return False
    # fast path: identical signatures over the fields both sides carry
    used = [False] * len(inputs)
    for record in sorted(sent, key=lambda r: json.dumps(_canon(dict(r)), sort_keys=True, default=str)):
        for j, run_input in enumerate(inputs):
            if not used[j] and _fits(record, run_input):
                used[j] = True
                break
        else:
            return _matching_exists(sent, inputs)
    return True


def _matching_exists(sent: Sequence[Mapping[str, Any]], inputs: list[list[dict[str, Any]]]) -> bool:
    """Bipartite perfect matching (augmenting paths); only when greedy matching got stuck."""
    edges = [[j for j, inp in enumerate(inputs) if _fits(rec, inp)] for rec in sent]
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in edges[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    return all(augment(i, set()) for i in range(len(sent)))


def ids_match(expected: Iterable[Any], run_record_ids: Iterable[Any]) -> bool:
    """Whether the runs' record ids are exactly the ids expected (as multisets of text)."""
    return Counter(str(i) for i in dict.fromkeys(str(x) for x in expected)) == Counter(
        str(i) for i in run_record_ids)


def create_batch_once(
    *,
    send: Callable[[], Batch],
    list_all: Callable[[], list[Batch]],
    check: Callable[[list[Batch]], Match],
    intent: CreateIntent,
    sleep: Callable[[float], None],
    settle_delays: tuple[float, ...] = (1.0, 3.0, 6.0),
    max_sends: int = 2,
    claimed: Callable[[], set[str]] | None = None,
) -> Batch:
    """Send a batch create; on an ambiguous failure reconcile as described in the module doc.

    ``list_all`` lists every batch of the workflow; ``check`` proves candidates by content;
    ``claimed`` returns batches known to belong to other creates (never adopted).
    """
    return send_once(
        send, lambda cause: resolve_created(list_all=list_all, check=check, intent=intent, sleep=sleep,
                                            settle_delays=settle_delays, claimed=claimed, cause=cause),
        what="batch", workflow_uuid=intent.workflow_uuid, max_sends=max_sends)


T = TypeVar("T", bound="_HasUuid")


class _HasUuid(Protocol):
    @property
    def uuid(self) -> str: ...


def send_once(send: Callable[[], T], find: Callable[[CargoError], T | None], *, what: str, workflow_uuid: str,
              max_sends: int = 2) -> T:
    """Send a create that spends credits; after an ambiguous failure (no answer, or 5xx) send it again only
    once ``find(cause)`` has proven by content that nothing was created (it returns the created object when
    something was). Shared by batch creates and single-run creates.
    """
    last_error: CargoError | None = None
    for attempt in range(1, max_sends + 1):
        try:
            return send()
        except (CargoNetworkError, CargoServerError) as exc:
            if not is_ambiguous(exc):
                raise
            logger.warning("Creating a Cargo %s for workflow %s failed ambiguously (%s); reconciling by content.",
                           what, workflow_uuid, type(exc).__name__)
            last_error = exc
        found = find(last_error)
        if found is not None:
            logger.warning("Adopted Cargo %s %s: it was created since this create's watermark with exactly "
                           "this input and no other create has recorded it (claims checked), so it is taken as "
                           "this request's, whose response was lost.", what, found.uuid)
            return found
        if attempt < max_sends:
            logger.warning("No Cargo %s was created by the failed request; sending it again.", what)
    raise CargoAmbiguousCreateError(
        f"Creating a Cargo {what} for workflow {workflow_uuid} failed {max_sends} times ({last_error}) and no "
        f"{what} was created.", hint="check Cargo's status and re-run.",
        candidates=[],
    ) from last_error


def _look(list_all: Callable[[], list[Batch]], check: Callable[[list[Batch]], Match], intent: CreateIntent,
          claimed: Callable[[], set[str]] | None, why: str) -> Match:
    """List the workflow's batches once and check the candidates (created since the watermark, not claimed)."""
    try:
        everything = list_all()
    except CargoError as exc:  # cannot see: do not risk a duplicate
        raise CargoAmbiguousCreateError(
            f"Creating a Cargo batch for workflow {intent.workflow_uuid} may have failed{why} and the workflow's "
            f"batches could not be listed to check whether it was created ({exc}).",
            hint="look at the workflow's batches in Cargo before re-running, to avoid paying twice.",
            candidates=[],
        ) from exc
    others = claimed() if claimed is not None else set()
    candidates = [b for b in newer_than(everything, intent.watermark, intent.at_watermark) if b.uuid not in others]
    return check(candidates) if candidates else Match()


def resolve_created(
    *,
    list_all: Callable[[], list[Batch]],
    check: Callable[[list[Batch]], Match],
    intent: CreateIntent,
    sleep: Callable[[float], None],
    settle_delays: tuple[float, ...] = (1.0, 3.0, 6.0),
    claimed: Callable[[], set[str]] | None = None,
    cause: BaseException | None = None,
) -> Batch | None:
    """The batch ``intent``'s create made, proven by content; ``None`` when it made none.

    Raises :class:`CargoAmbiguousCreateError` (naming the candidates) when several batches
    prove to hold the same content, or some candidate's content cannot be read in time, or
    the workflow's batches cannot be listed.
    """
    workflow_uuid = intent.workflow_uuid
    why = f" ({cause})" if cause is not None else ""
    match = Match()
    delays = [0.0, *settle_delays]
    n = 0
    while n < len(delays):
        sleep(delays[n])
        n += 1
        match = _look(list_all, check, intent, claimed, why)
        if len(match.proven) > 1:
            break
        if len(match.proven) == 1 and not match.undecided:
            return match.proven[0]
        if n == len(delays) and match.undecided and len(delays) <= len(settle_delays) + 1 and settle_delays:
            delays += [10.0, 10.0]  # content still unreadable (runs not started, downloads failing): look longer
        # nothing yet (a create still being processed appears later) or content not readable yet: look again
    if not match.proven and not match.undecided:
        return None
    uuids = match.uuids
    raise CargoAmbiguousCreateError(
        f"Creating a Cargo batch for workflow {workflow_uuid} failed ambiguously{why} and {len(uuids)} batch(es) "
        f"created since may hold this input: {', '.join(uuids)} ({len(match.proven)} proven to hold exactly "
        f"this input, {len(match.undecided)} whose input could not be read yet). None was adopted and none "
        "created; they are recorded on the run.",
        hint="re-execute the step once these batches are running (it re-checks them and attaches to the one "
        "that is provably its own), or cancel the extra ones in Cargo first.",
        candidates=uuids,
    ) from cause
