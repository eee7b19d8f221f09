"""Heal rounds' rows: which records to run again and how their new rows replace the failed ones.

Cargo's docs tell users to check ``failedRunsCount``, take the failed records and start a new batch over just
those (CARGO-DOCS 13.2): a tool's records as they were sent (a subset of its ``records``), a play's record ids
(a ``recordIds`` batch). Every orchestrator layer runs each round through the one run path (a step over the
round's batches); what is framework-free about healing lives here, once:

* :meth:`HealRows.pending`: the rows still ``_status == "error"`` and not given up;
* :meth:`HealRows.round_data`: each retry batch's ``data`` with the row positions it re-runs (a tool's records
  chunked like any input, a play's ids by ``max_records``);
* :meth:`HealRows.merge`: the round's rows put in place of the failed ones, so each input record is there
  exactly once, in input order, with its final status. A record Cargo skips on the retry (a play that runs a
  record only once) or that the round returned no row for keeps its error row and is given up (never retried
  again, never paid again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..download import STATUS_COLUMN
from ..inputs import chunk_records

if TYPE_CHECKING:
    import pandas as pd

    from .step import StepLog

__all__ = ["HealRows", "RoundPart"]

#: One retry batch: its ``data`` and the row positions (of the merged rows) it re-runs.
RoundPart = tuple[dict[str, Any], list[int]]


class HealRows:
    """The merged rows of a step and its heal rounds (index = input position), and the failed ones.

    :param frame: the first round's rows, failed rows kept (``failed_rows="keep"``).
    :param records: a tool's input as sent, aligned with the rows (row ``i`` came from ``records[i]``);
        ``None`` for a play.
    :param model_uuid: a play's model (its failed records are re-run by ``_id``).
    :param what: how the log names the workflow ("the tool 'Enrich company'").
    """

    def __init__(self, frame: pd.DataFrame, *, records: Sequence[Mapping[str, Any] | None] | None = None,
                 model_uuid: str | None = None, log: StepLog, what: str = "the workflow") -> None:
        self.frame = frame.reset_index(drop=True)
        self.records, self.model_uuid, self.log, self.what = records, model_uuid, log, what
        if records is not None and len(records) != len(self.frame):  # rows no longer align with the input
            log.warning(f"Not healing: {len(self.frame)} rows for {len(records)} input records, so the failed "
                        "rows cannot be matched to the records to send again.")
            self.records, self.model_uuid = [None] * len(self.frame), None
        self.given_up: set[int] = set()
        self.originally_failed = self.errors()

    def errors(self) -> list[int]:
        """Positions of the rows whose record failed."""
        if STATUS_COLUMN not in self.frame.columns:
            return []
        return [int(i) for i in self.frame.index[self.frame[STATUS_COLUMN] == "error"]]

    def pending(self) -> list[int]:
        """Positions a next round would re-run: failed and not given up."""
        return [p for p in self.errors() if p not in self.given_up]

    def healed(self) -> int:
        """How many of the originally failed records no longer have an error row."""
        if STATUS_COLUMN not in self.frame.columns:
            return 0
        return sum(1 for p in self.originally_failed if self.frame[STATUS_COLUMN].iat[p] != "error")

    def round_data(self, positions: list[int], *, max_records: int, max_bytes: int) -> list[RoundPart]:
        """The retry batches of ``positions``; empty (with a warning) when they cannot be sent again."""
        if self.records is not None:
            return self._record_parts(positions, max_records, max_bytes)
        if self.model_uuid is None or "_id" not in self.frame.columns:
            self.log.warning(f"Not healing the {len(positions)} failed records of {self.what}: only a tool's "
                             "records or a play's record ids can be run again.")
            return []
        ids = self.frame["_id"].astype(str)
        by_id: dict[str, list[int]] = {}
        for p in positions:
            by_id.setdefault(ids.iat[p], []).append(p)
        keys, size = list(by_id), max(1, max_records)
        return [({"kind": "recordIds", "modelUuid": self.model_uuid, "ids": keys[i:i + size]},
                 [p for k in keys[i:i + size] for p in by_id[k]]) for i in range(0, len(keys), size)]

    def _record_parts(self, positions: list[int], max_records: int, max_bytes: int) -> list[RoundPart]:
        assert self.records is not None
        chosen = [self.records[p] for p in positions]
        if any(rec is None for rec in chosen):
            self.log.warning("Not healing: the input of some failed records is unknown.")
            return []
        parts, start = [], 0
        for chunk in chunk_records([rec for rec in chosen if rec is not None], max_records=max_records,
                                   max_bytes=max_bytes):
            parts.append(({"kind": "records", "records": list(chunk)}, positions[start:start + len(chunk)]))
            start += len(chunk)
        return parts

    def merge(self, retry: pd.DataFrame, positions: list[int]) -> None:
        """Put a round's rows (``retry``, for the records at ``positions``) in place of the failed ones."""
        import pandas as pd

        retry = retry.reset_index(drop=True)
        pairs = self._pairs(retry, positions)
        statuses = retry[STATUS_COLUMN] if STATUS_COLUMN in retry.columns else pd.Series("success", index=retry.index)
        skipped = [p for p, j in pairs if statuses.iat[j] == "skipped"]
        if skipped:
            self.log.warning(f"Cargo skipped the re-run of {len(skipped)} failed records (a play that runs a record "
                             "only once skips records that already ran): they keep their error row and are not "
                             "retried again.")
            self.given_up.update(skipped)
        pairs = [(p, j) for p, j in pairs if statuses.iat[j] != "skipped"]
        if not pairs:
            return
        rows = retry.iloc[[j for _, j in pairs]].copy()
        rows.index = pd.Index([p for p, _ in pairs])
        kept = self.frame.drop(index=rows.index)
        merged = pd.concat([kept, rows]) if len(kept) else rows.reindex(columns=self.frame.columns.union(
            rows.columns, sort=False))
        self.frame = _keep_exact_integers(merged.sort_index(), self.frame)

    def _pairs(self, retry: pd.DataFrame, positions: list[int]) -> list[tuple[int, int]]:
        """(row position, retry row) pairs: a tool's retry rows are in the order of ``positions``; a play's are
        matched by record id. A record without a retry row is given up."""
        if self.records is not None:
            if len(retry) == len(positions):
                return list(zip(positions, range(len(retry))))
            self.log.warning(f"The retry batches returned {len(retry)} rows for {len(positions)} records: their "
                             "rows are not merged, the records stay flagged _status='error'.")
            self.given_up.update(positions)
            return []
        where = {rid: j for j, rid in enumerate(retry["_id"].astype(str))} if "_id" in retry.columns else {}
        ids = self.frame["_id"].astype(str)
        self.given_up.update(p for p in positions if ids.iat[p] not in where)
        return [(p, where[ids.iat[p]]) for p in positions if ids.iat[p] in where]


def _keep_exact_integers(merged: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    """A column that was nullable ``Int64`` (integers with gaps, as the caller sent them) stays so after a round's
    rows are merged in (a round of only gaps has an object column, and concatenating would leave objects)."""
    for column, dtype in before.dtypes.items():
        if str(dtype) == "Int64" and column in merged.columns and str(merged[column].dtype) != "Int64":
            try:
                merged[column] = merged[column].astype("Int64")
            except (TypeError, ValueError):  # a round brought other values: kept as they are
                pass
    return merged
