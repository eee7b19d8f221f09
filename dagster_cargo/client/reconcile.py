"""Creating a batch exactly once, even when the response to the create call is lost.

A batch spends credits, and ``POST /orchestration/batches`` has no idempotency key. When the
call fails *ambiguously* (a timeout or dropped connection after the request was sent, or a
5xx), the batch may or may not exist. Blindly retrying could start a second, paid batch;
giving up could leave an orphan batch running. So:

1. before creating, remember which batches of the workflow already exist (one list call);
2. on an ambiguous failure, list the workflow's batches again and look for *new* ones created
   by the token's own user whose stored input matches what was sent;
3. exactly one match → that is our batch: adopt it. Several → stop with an error naming them
   (never create another). None, after waiting for the server to settle → the create was
   not committed, so it is safe to send it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from .errors import CargoError, CargoNetworkError, CargoServerError
from .models import Batch

__all__ = ["CargoAmbiguousCreateError", "create_batch_once", "is_ambiguous", "data_matches"]

logger = logging.getLogger("dagster_cargo.client")

# identity fields of a batch's input; filters/sorts are not compared because a server may
# normalize them, and a false "no match" would lead to a second, paid batch
_IDENTITY_FIELDS = ("modelUuid", "segmentUuid", "changeUuid", "ids")


class CargoAmbiguousCreateError(CargoError):
    """A batch create failed ambiguously and could not be resolved to exactly one batch."""

    def __init__(self, message: str, *, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


def is_ambiguous(exc: BaseException) -> bool:
    """Whether the request may have been committed although no success response arrived."""
    if isinstance(exc, CargoServerError):
        return True
    return isinstance(exc, CargoNetworkError) and not getattr(exc, "never_sent", False)


def data_matches(stored: Mapping[str, Any], sent: Mapping[str, Any]) -> bool:
    """Whether a batch's stored ``data`` can be the input that was sent.

    Compares the kind and the identity fields (model, segment, change, record ids). Inline
    ``records``/``form`` data is stored as a file (``s3Filename``), so only the kind can be
    compared; several candidates then stop the create instead of guessing.
    """
    if stored.get("kind") != sent.get("kind"):
        return False
    return all(stored.get(k) == sent[k] for k in _IDENTITY_FIELDS if k in sent)


def create_batch_once(
    *,
    send: Callable[[], Batch],
    list_recent: Callable[[], list[Batch]],
    current_user_uuid: Callable[[], str | None],
    data: Mapping[str, Any],
    workflow_uuid: str,
    sleep: Callable[[float], None],
    settle_delays: tuple[float, ...] = (1.0, 3.0, 6.0),
    max_sends: int = 2,
    before: set[str] | None = None,
    siblings: Callable[[], set[str]] | None = None,
) -> Batch:
    """Send a batch create; on an ambiguous failure reconcile as described in the module doc.

    For several creates of one workflow at once (:meth:`CargoClient.create_batches`),
    ``before`` is the snapshot taken once for all of them and ``siblings`` returns the
    batches the other creates are known to have made, which are never adopted here.
    """
    if before is None:
        before = {b.uuid for b in list_recent()}
    me = current_user_uuid()
    for attempt in range(1, max_sends + 1):
        try:
            return send()
        except (CargoNetworkError, CargoServerError) as exc:
            if not is_ambiguous(exc):
                raise
            logger.warning("Creating a Cargo batch for workflow %s failed ambiguously (%s); reconciling.",
                           workflow_uuid, type(exc).__name__)
            last_error: CargoError = exc
        delays = (0.0, *settle_delays)
        for n, delay in enumerate(delays):
            sleep(delay)
            try:
                recent = list_recent()
            except CargoError as exc:  # cannot see: do not risk a duplicate
                raise CargoAmbiguousCreateError(
                    f"Creating a Cargo batch for workflow {workflow_uuid} failed ({last_error}) and the "
                    f"workflow's batches could not be listed to check whether it was created ({exc}). "
                    "Next step: look at the workflow's batches in Cargo before re-running, to avoid paying twice.",
                    candidates=[],
                ) from exc
            mine = siblings() if siblings is not None else set()
            new = [b for b in recent if b.uuid not in before and b.uuid not in mine
                   and (me is None or b.user_uuid == me) and data_matches(b.data, data)]
            if len(new) == 1:
                logger.warning("Adopted Cargo batch %s: it was created although the response was lost.",
                               new[0].uuid)
                return new[0]
            if len(new) > 1 and siblings is not None and n < len(delays) - 1:
                continue  # concurrent sibling creates may still be answering: look again once they have
            if len(new) > 1:
                uuids = [b.uuid for b in new]
                raise CargoAmbiguousCreateError(
                    f"Creating a Cargo batch for workflow {workflow_uuid} failed ambiguously ({last_error}) "
                    f"and {len(new)} matching new batches exist: {', '.join(uuids)}. None was adopted and "
                    "none created. Next step: cancel the extra ones in Cargo, then re-run.",
                    candidates=uuids,
                ) from last_error
        if attempt < max_sends:
            logger.warning("No Cargo batch was created by the failed request; sending it again.")
    raise CargoAmbiguousCreateError(
        f"Creating a Cargo batch for workflow {workflow_uuid} failed {max_sends} times ({last_error}) and no "
        "batch was created. Next step: check Cargo's status and re-run.",
        candidates=[],
    ) from last_error
