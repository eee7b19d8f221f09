"""Compute the fault-suite figures from the outcomes and the emulator's own state, and render them."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..emulator.enrichment import enrich_company
from .runner import UUID, Outcome, SuiteRun, materialization_of

ENRICH_COLUMNS = ("industry", "employee_range", "revenue_band", "linkedin_url", "hq_country")


@dataclass
class FaultReport:
    """The figures of one fault-suite run. :meth:`problems` lists the must-be-zero figures that are not."""

    materializations: int
    seed: int
    profile: str
    succeeded: int
    failed_clear: int
    failed_unclear: int
    duplicate_batches: int
    batches: int
    credits_spent: float
    credits_expected: float
    token_leaks: int
    searched: dict[str, int]
    missing_rows: int
    faults: dict[str, int]
    wall_seconds: float
    untraceable_batches: int = 0
    failure_kinds: list[tuple[int, str]] = field(default_factory=list)
    unclear_errors: list[tuple[int, str]] = field(default_factory=list)
    missing_rows_details: list[str] = field(default_factory=list)
    duplicate_details: list[str] = field(default_factory=list)
    leak_samples: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every must-be-zero figure that is not zero, as a sentence."""
        found = []
        if self.failed_unclear:
            found.append(f"{self.failed_unclear} failure(s) with an unclear error")
        if self.duplicate_batches:
            found.append(f"{self.duplicate_batches} duplicate batch(es)")
        if self.credits_spent != self.credits_expected:
            found.append(f"credits spent {self.credits_spent:g} != expected {self.credits_expected:g}")
        if self.token_leaks:
            found.append(f"{self.token_leaks} token leak(s)")
        if self.missing_rows:
            found.append(f"{self.missing_rows} DataFrame(s) with missing or wrong rows")
        if self.untraceable_batches:
            found.append(f"{self.untraceable_batches} batch(es) not traceable to one materialization")
        return found

    def render(self) -> str:
        """The report as a readable plain-text table."""
        def row(label: str, value: Any, note: str = "") -> str:
            return f"  {label:<44} {value!s:>13}  {note}".rstrip()

        waste = self.credits_spent - self.credits_expected
        searched = ", ".join(f"{n} {where}" for where, n in sorted(self.searched.items()))
        lines = [
            f"Fault suite: {self.materializations} materializations of the 'Enrich company' tool asset, "
            f"fault profile '{self.profile}', seed {self.seed}",
            f"({self.batches} batches created, each traced to its materialization by its input domains)",
            "",
            row("Materializations succeeded", self.succeeded),
            row("Failed with a clear error", self.failed_clear),
            row("Failed with an unclear error", self.failed_unclear, "must be 0"),
            row("Duplicate batches", self.duplicate_batches, "must be 0"),
            row("Credits spent / expected", f"{self.credits_spent:g} / {self.credits_expected:g}",
                f"wasted {waste:g}, must be 0"),
            row("Token leaks", self.token_leaks, "must be 0"),
            row("DataFrames returned with missing rows", self.missing_rows, "must be 0"),
            row("Wall time", f"{self.wall_seconds:.1f} s"),
            "",
            "Injected faults: " + ", ".join(f"{k} {v}" for k, v in self.faults.items())
            + f" (total {sum(self.faults.values())})",
            f"Searched for the token: {searched}",
        ]
        if self.untraceable_batches:
            lines.append(row("Batches not traceable to one materialization", self.untraceable_batches, "must be 0"))
        if self.failure_kinds:
            lines += ["", "Failures (UUIDs masked):"]
            lines += [f"  {n:>4} x {text}" for n, text in self.failure_kinds]
        for title, items in (("Unclear errors", [f"#{i}: {t}" for i, t in self.unclear_errors]),
                             ("Duplicate batches", self.duplicate_details),
                             ("Missing rows", self.missing_rows_details), ("Token leaks", self.leak_samples)):
            if items:
                lines += ["", f"{title}:"] + [f"  {item}" for item in items[:10]]
        lines += ["", "Result: " + ("PASS, every must-be-zero figure is 0" if not self.problems()
                                    else "FAIL: " + "; ".join(self.problems()))]
        return "\n".join(lines)


def settle(run: SuiteRun, timeout: float = 10.0) -> None:
    """Let batches left running (e.g. by a failed wait) finish, so their credits are counted."""
    store = run.emulator.store
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store.sync()
        with store.lock:
            if all(b.finished for b in store.engine.batches.values()):
                return
        time.sleep(0.05)


def _mask(text: str) -> str:
    text = UUID.sub("<uuid>", text.splitlines()[0] if text else "")
    return re.sub(r"\d+(\.\d+)?s\b", "<n>s", text)[:260]


def _check_rows(outcome: Outcome, batches: list[Any], runs_by_batch: dict[str, list[Any]]) -> str | None:
    """Why ``outcome``'s DataFrame is not exactly its batches' succeeded runs (``None`` when it is)."""
    frame = outcome.frame
    if frame is None:
        return "no DataFrame returned"
    succeeded = [r for b in batches for r in runs_by_batch.get(b.uuid, []) if r.status == "success"]
    if len(frame) != len(succeeded):
        return f"{len(frame)} rows for {len(succeeded)} succeeded runs"
    if "domain" not in frame.columns:
        return "no domain column"
    expected_domains = sorted(str(r.record.get("domain")) for r in succeeded)
    if sorted(str(d) for d in frame["domain"]) != expected_domains:
        return "returned domains differ from the succeeded runs' domains"
    if frame.empty:  # every run failed by design: an empty frame is the complete output
        return None
    columns = [c for c in ENRICH_COLUMNS if c in frame.columns]
    if not columns:
        return "no enrichment column"
    for record in frame.to_dict("records"):
        want = enrich_company(record["domain"])
        wrong = [c for c in columns if record[c] != want[c]]
        if wrong:
            return f"{record['domain']}: wrong {', '.join(wrong)}"
    return None


def build_report(run: SuiteRun) -> FaultReport:
    """Trace every batch in the emulator to its materialization and compute the figures."""
    settle(run)
    store = run.emulator.store
    with store.lock:
        batches = list(store.engine.batches.values())
        runs_by_batch: dict[str, list[Any]] = defaultdict(list)
        for r in store.engine.runs.values():
            runs_by_batch[r.batch_uuid].append(r)
        credits_spent = float(store.credits_used)
    by_mat: dict[int, list[Any]] = defaultdict(list)
    untraceable = 0
    for b in batches:
        owners = {materialization_of(rec.get("domain")) for rec in b.records}
        if len(owners) != 1 or None in owners:
            untraceable += 1
            continue
        by_mat[owners.pop()].append(b)  # type: ignore[index]

    outcomes = {o.index: o for o in run.outcomes}
    duplicates, expected, dup_details = 0, 0.0, []
    for index, owned in sorted(by_mat.items()):
        groups: dict[frozenset[str], list[Any]] = defaultdict(list)
        for b in sorted(owned, key=lambda b: b.seq):
            groups[frozenset(str(rec.get("domain")) for rec in b.records)].append(b)
        reported = set(outcomes[index].batch_uuids) if index in outcomes else set()
        for group in groups.values():
            chosen = next((b for b in group if b.uuid in reported), group[0])
            expected += chosen.credits
            if len(group) > 1:
                duplicates += len(group) - 1
                dup_details.append(f"materialization #{index}: batches {', '.join(b.uuid for b in group)} "
                                   f"for the same records ({sum(b.credits for b in group)} credits)")

    missing, missing_details = 0, []
    by_uuid = {b.uuid: b for b in batches}
    for o in run.outcomes:
        if not o.succeeded:
            continue
        used = [by_uuid[u] for u in o.batch_uuids if u in by_uuid]
        problem = _check_rows(o, used, runs_by_batch) if used else "no batch reported in the metadata"
        if problem:
            missing += 1
            missing_details.append(f"materialization #{o.index}: {problem}")

    watch = run.watch
    for entry in list(run.emulator.request_log):
        if entry["path"].startswith("/_files") and "authorization" in {k.lower() for k in entry["headers"]}:
            watch.leaks += 1
            watch.samples.append(f"authorization header sent to the download host: {entry['path']}")
        watch.check("emulator request log entry", repr(entry))

    failed = [o for o in run.outcomes if not o.succeeded]
    kinds = Counter(_mask(o.error) for o in failed)
    return FaultReport(
        materializations=len(run.outcomes), seed=run.config.seed, profile=run.config.profile_label(),
        succeeded=len(run.outcomes) - len(failed), failed_clear=sum(o.clear for o in failed),
        failed_unclear=sum(not o.clear for o in failed), duplicate_batches=duplicates, batches=len(batches),
        credits_spent=credits_spent, credits_expected=expected, token_leaks=watch.leaks,
        searched=dict(watch.searched), missing_rows=missing, faults=run.emulator.faults.counts,
        wall_seconds=run.wall_seconds, untraceable_batches=untraceable,
        failure_kinds=sorted(((n, k) for k, n in kinds.items()), reverse=True),
        unclear_errors=[(o.index, o.error[:400]) for o in failed if not o.clear],
        missing_rows_details=missing_details, duplicate_details=dup_details, leak_samples=list(watch.samples),
    )
