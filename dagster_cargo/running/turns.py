"""Twins take turns: two live runs never send a create for the same step and input at the same moment.

Two materializations of one asset over the same input ("twins") send identical batch creates (or identical
single-run creates, one per record). Content cannot tell their batches (runs) apart, so if one create fails
ambiguously, the batch the other one made looks exactly like the one it might have made. Claims (batches and
runs recorded by other runs are never adopted) solve most of it, but not the moment between a twin's batch
being committed and the twin recording it. So the creates of twins take turns: while a run holds its turn for
a key, no other live run sends a create under that key. Inside a turn, a batch (run) created since the
watermark with exactly this input and recorded by no other run can only be this create's own.

The turns are kept in run tags (``dagster-cargo/turn.<h>`` for a batch key, ``dagster-cargo/turn.run.<h>`` for
a single run's), readable by every run of the deployment, one
tag per run (each run writes only its own): Lamport's bakery algorithm, which needs no compare-and-set, only
registers that each participant writes and everyone reads. A run takes a ticket one higher than any it sees,
then waits while another live run is choosing its ticket or holds a lower one (ties broken by run id). Runs
that ended (crashed, failed, succeeded) are ignored, so a killed twin never blocks the others. A live run that
holds its turn longer than :data:`TURN_WAIT_SECONDS` is waited out with a warning: claims and the content
check still apply, so this weakens only the guarantee against the narrow race above.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from cargo_gtm import CargoClient

__all__ = ["Turns", "TURN_PREFIX", "TURN_WAIT_SECONDS"]

TURN_PREFIX = "dagster-cargo/turn."
BATCH_PREFIX = "dagster-cargo/batch."
RUN_PREFIX = "dagster-cargo/run."
TURN_WAIT_SECONDS = 300.0
TURN_POLL_SECONDS = 0.2
DONE = "done"
_ENDED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def turn_tag_key(key: str) -> str:
    """``dagster-cargo/turn.<h>`` for a batch key ``dagster-cargo/batch.<h>``, ``dagster-cargo/turn.run.<h>`` for a
    single run's ``dagster-cargo/run.<h>``."""
    for prefix, kind in ((BATCH_PREFIX, ""), (RUN_PREFIX, "run.")):
        if key.startswith(prefix):
            return TURN_PREFIX + kind + key[len(prefix):]
    return TURN_PREFIX + key


def _unit(tag: str) -> str:
    return "single run" if tag.startswith(TURN_PREFIX + "run.") else "batch"


def _parse(value: str) -> tuple[str, int | None, str] | None:
    """``c:<run>`` (choosing) → ("c", None, run); ``t:<n>:<run>`` (ticket) → ("t", n, run); else None."""
    if value.startswith("c:"):
        return "c", None, value[2:]
    if value.startswith("t:"):
        number, _, run_id = value[2:].partition(":")
        if number.isdigit() and run_id:
            return "t", int(number), run_id
    return None


class Turns:
    """A context manager: the turn of this run for ``keys``, all taken together (one ticket number under every key,
    three writes whatever their number: a fan-out of 200 batches takes its turns as fast as one batch)."""

    def __init__(self, context: Any, client: CargoClient, keys: list[str], *,
                 wait_seconds: float = TURN_WAIT_SECONDS) -> None:
        self.context = context
        self.client = client
        self.tags = sorted({turn_tag_key(k) for k in keys})
        self.wait_seconds = wait_seconds
        self.run_id: str = context.run_id
        self.held: list[str] = []

    def __enter__(self) -> Turns:
        try:
            self._take(self.tags)
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    # ---------------------------------------------------------------------------------------------------
    def _write(self, tags: list[str], value: str) -> None:
        """One write of ``value`` under every tag of ``tags`` (a fan-out's turns cost one write, not one per batch:
        each write re-reads and re-stores the run with every tag it has so far)."""
        if tags:
            self.context.instance.add_run_tags(self.run_id, dict.fromkeys(tags, value))

    def _others(self, tags: list[str]) -> list[tuple[str, int | None, str]]:
        """Other live runs' entries under any of ``tags``: (state, ticket, run id), read in a query per 500 tags."""
        parsed: list[tuple[str, int | None, str]] = []
        for start in range(0, len(tags), 500):  # a bounded IN (...) per query
            for _key, values in self.context.instance.get_run_tags(tag_keys=tags[start:start + 500]):
                parsed.extend(p for p in (_parse(v) for v in values) if p is not None and p[2] != self.run_id)
        if not parsed:
            return []
        runs = self.context.instance.get_runs(filters=dg.RunsFilter(run_ids=sorted({p[2] for p in parsed})))
        live = {r.run_id for r in runs if r.status not in _ENDED}
        return [p for p in parsed if p[2] in live]

    def _take(self, tags: list[str]) -> None:
        """The bakery over every tag at once: one ticket number for all of them (one higher than any other live
        run's under any of them), so that the order of two runs, ``(number, run id)``, is the same under every
        tag they share and no two runs can each wait for the other."""
        self._write(tags, f"c:{self.run_id}")
        self.held = list(tags)  # written: released even if what follows fails
        number = 1 + max((p[1] or 0 for p in self._others(tags)), default=0)
        self._write(tags, f"t:{number}:{self.run_id}")
        mine = (number, self.run_id)
        clock = self.client.clock
        started = clock.monotonic()
        said = False
        while True:
            ahead = [p for p in self._others(tags) if p[0] == "c" or (p[1], p[2]) < mine]
            if not ahead:
                return
            if not said:
                said = True
                self.context.log.info(
                    f"Another run ({', '.join(sorted({p[2] for p in ahead}))}) is creating a Cargo {_unit(tag)} for this "
                    "same step and input right now; waiting for its create to be recorded, so that the two "
                    "never share a batch.")
            if clock.monotonic() - started >= self.wait_seconds:
                self.context.log.warning(
                    f"Run(s) {', '.join(sorted({p[2] for p in ahead}))} held their turn to create a Cargo {_unit(tag)} "
                    f"for this step and input for over {self.wait_seconds:g}s; going ahead. What they recorded "
                    "are still never adopted by this run.")
                return
            self.client.sleep(TURN_POLL_SECONDS)

    def _release(self) -> None:
        try:
            self._write(self.held, DONE)
        except Exception as exc:  # an unreleased turn of a run that then ends is ignored anyway
            self.context.log.debug(f"Could not release the create turns {', '.join(self.held)}: {exc}")
        self.held = []
