"""Compute the fault-suite figures from the outcomes and the emulator's own state, and render them."""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from cargo_gtm_emulator.enrichment import enrich_company

from .jobs import CONCURRENCY, PLAY_NAME, play_filter
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
    credits_spent: float  # provider credits (what the emulator debits per node), before the execution charge
    credits_expected: float  # provider credits, as credits_spent
    token_leaks: int
    searched: dict[str, int]
    missing_rows: int
    faults: dict[str, int]
    wall_seconds: float
    untraceable_batches: int = 0
    wrong_adoptions: int = 0
    unaccounted_records: int = 0
    orphans: list[str] = field(default_factory=list)
    orphan_credits: float = 0.0
    tools: int = 0
    plays: int = 0
    concurrency: int = 1
    earlier_batches: int = 0
    single_runs: int = 0  # materializations that ran as Cargo single runs (their carriers count as batches)
    crashes: list[Any] = field(default_factory=list)
    wrong_details: list[str] = field(default_factory=list)
    unaccounted_details: list[str] = field(default_factory=list)
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
        if round(self.credits_spent - self.credits_expected, 6):
            found.append(f"provider credits spent {self.credits_spent:g} != expected {self.credits_expected:g} "
                         "(one batch per materialization, orphans included)")
        if self.wrong_adoptions:
            found.append(f"{self.wrong_adoptions} batch(es) adopted by the wrong materialization")
        if self.unaccounted_records:
            found.append(f"{self.unaccounted_records} materialization(s) with input records not accounted for")
        bad = [c for c in self.crashes if not c.ok]
        if bad:
            found.append(f"{len(bad)} crash scenario(s) without exactly one batch and a successful re-execution")
        if self.token_leaks:
            found.append(f"{self.token_leaks} token leak(s)")
        if self.missing_rows:
            found.append(f"{self.missing_rows} DataFrame(s) with missing or wrong rows")
        if self.untraceable_batches:
            found.append(f"{self.untraceable_batches} batch(es) not traceable to one materialization")
        if self.materializations and self.succeeded * 2 < self.materializations:
            # zeros over runs that mostly never reached Cargo (a wrong token, an unreachable host) prove nothing
            found.append(f"only {self.succeeded} of {self.materializations} materializations succeeded: the "
                         "figures above say little about exactly-once")
        return found

    def render(self) -> str:
        """The report as a readable plain-text table."""
        problems = self.problems()
        lines = [*self._summary_lines(), *self._detail_lines(), "",
                 "Result: " + ("PASS, every must-be-zero figure is 0" if not problems else "FAIL: " + "; ".join(problems))]
        return "\n".join(lines)

    def _summary_lines(self) -> list[str]:
        """The heading and the table of figures."""
        waste = self.credits_spent - self.credits_expected
        searched = ", ".join(f"{n} {where}" for where, n in sorted(self.searched.items()))
        lines = [
            f"Fault suite: {self.materializations} materializations ({self.tools} of the 'Enrich company' tool, "
            f"{self.plays} of the 'Score inbound companies' play over distinct time windows), {self.concurrency} at "
            f"once (multiprocess executor), fault profile '{self.profile}', seed {self.seed}",
            f"({self.batches} batches created, each traced to its materialization by its content; each workflow had "
            f"{self.earlier_batches} earlier batches; {self.single_runs} materializations ran as single runs, "
            "traced by their runs' carriers)",
            "",
            _row("Materializations succeeded", self.succeeded),
            _row("Failed with a clear error", self.failed_clear),
            _row("Failed with an unclear error", self.failed_unclear, "must be 0"),
            _row("Batches adopted by the wrong materialization", self.wrong_adoptions, "must be 0"),
            _row("Duplicate batches", self.duplicate_batches, "must be 0"),
            _row("Orphan batches (charged, materialization failed)", len(self.orphans),
                 f"{self.orphan_credits:g} provider credits, listed below"),
            _row("Provider credits spent / expected", f"{self.credits_spent:g} / {self.credits_expected:g}",
                 f"wasted {waste:g}, must be 0 (provider credits only: before Cargo's execution charge of "
                 "0.01 per node execution)"),
            _row("Input records not accounted for", self.unaccounted_records, "must be 0"),
            _row("Token leaks", self.token_leaks, "must be 0"),
            _row("DataFrames returned with missing rows", self.missing_rows, "must be 0"),
            _row("Wall time", f"{self.wall_seconds:.1f} s"),
            "",
            "Injected faults: " + ", ".join(f"{k} {v}" for k, v in self.faults.items())
            + f" (total {sum(self.faults.values())})",
            f"Searched for the token: {searched}",
        ]
        if self.untraceable_batches:
            lines.append(_row("Batches not traceable to one materialization", self.untraceable_batches, "must be 0"))
        return lines

    def _detail_lines(self) -> list[str]:
        """Failures, crash scenarios, orphans and the first 10 of each kind of problem."""
        lines: list[str] = []
        if self.failure_kinds:
            lines += ["", "Failures (UUIDs masked):"]
            lines += [f"  {n:>4} x {text}" for n, text in self.failure_kinds]
        if self.crashes:
            lines += ["", "kill -9, then re-execution (exactly 1 batch each):"]
            lines += [f"  {c.point:<16} {c.path:<11} exit {c.child_exit!s:>4}  re-execution "
                      f"{'succeeded' if c.reexecution_succeeded else 'FAILED'}  batches {len(c.batches)}  "
                      f"provider credits {c.credits:g}  rows {c.rows}" + ("" if c.ok else "  <- must be 1 batch, success")
                      for c in self.crashes]
        if self.orphans:
            lines += ["", "Orphan batches (each charged for a materialization that then failed):"]
            lines += [f"  {item}" for item in self.orphans]
        for title, items in (("Unclear errors", [f"#{i}: {t}" for i, t in self.unclear_errors]),
                             ("Wrong adoptions", self.wrong_details),
                             ("Input records not accounted for", self.unaccounted_details),
                             ("Duplicate batches", self.duplicate_details),
                             ("Missing rows", self.missing_rows_details), ("Token leaks", self.leak_samples)):
            if items:
                lines += ["", f"{title}:"] + [f"  {item}" for item in items[:10]]
        return lines


def _row(label: str, value: Any, note: str = "") -> str:
    """One line of the report's table."""
    return f"  {label:<44} {value!s:>13}  {note}".rstrip()


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
    runs = [r for b in batches for r in runs_by_batch.get(b.uuid, [])]
    succeeded = [r for r in runs if r.status == "success"]
    problem = _check_row_domains(frame, runs, succeeded)
    if problem or frame.empty or outcome.kind != "tool" or not succeeded:
        # an empty frame (every run failed by design, or nothing matched) is the complete output; a play's own
        # columns (industry...) come from the model, its output is checked by the rows; a tool whose every run
        # failed (e.g. a one-record input) has input columns and statuses, no output to check
        return problem
    return _check_enrichment(frame, succeeded)


def _check_row_domains(frame: Any, runs: list[Any], succeeded: list[Any]) -> str | None:
    """Why ``frame``'s rows are not one per succeeded run, or (Cargo's documented download) one per record with
    failed runs' output empty, with the runs' domains (``None`` when they are)."""
    if len(frame) not in (len(succeeded), len(runs)):
        return f"{len(frame)} rows for {len(succeeded)} succeeded of {len(runs)} runs"
    if frame.empty:
        return None
    if "domain" not in frame.columns:
        return "no domain column"
    expected = succeeded if len(frame) == len(succeeded) else runs
    if sorted(str(d) for d in frame["domain"]) != sorted(str(r.record.get("domain")) for r in expected):
        return "returned domains differ from the runs' domains"
    return None


def _check_enrichment(frame: Any, succeeded: list[Any]) -> str | None:
    """Why a succeeded run's row of a tool's ``frame`` does not hold the enrichment of its domain (``None``)."""
    columns = [c for c in ENRICH_COLUMNS if c in frame.columns]
    if not columns:
        return "no enrichment column"
    ok = {str(r.record.get("domain")) for r in succeeded}
    for record in frame.to_dict("records"):
        if str(record["domain"]) not in ok:
            continue  # a failed run's row: input only
        want = enrich_company(record["domain"])
        wrong = [c for c in columns if record[c] != want[c]]
        if wrong:
            return f"{record['domain']}: wrong {', '.join(wrong)}"
    return None


def _owners(run: SuiteRun, batches: list[Any]) -> tuple[dict[int, list[Any]], int]:
    """Each suite batch's materialization, from its content: tool batches by their input domains, play batches by
    their filter (a window unique to one materialization). Earlier and crash-scenario batches are left out."""
    windows = {json.dumps(play_filter(*o.window), sort_keys=True): o.index for o in run.outcomes if o.kind == "play"}
    by_mat: dict[int, list[Any]] = defaultdict(list)
    untraceable = 0
    for b in batches:
        if b.uuid in run.earlier or any(str(r.get("domain", "")).startswith("crash") for r in b.records):
            continue
        if b.data.get("kind") == "filter":
            owner = windows.get(json.dumps(b.data.get("filter"), sort_keys=True))
            owners = {owner}
        else:
            owners = {materialization_of(rec.get("domain")) for rec in b.records}
        if len(owners) != 1 or None in owners:
            untraceable += 1
            continue
        by_mat[owners.pop()].append(b)  # type: ignore[index]
    return by_mat, untraceable


def _expected_ids(run: SuiteRun, o: Outcome) -> set[str]:
    """The record ids a play materialization's window selects (the emulator's own filter evaluation)."""
    from cargo_gtm_emulator import filters

    store = run.emulator.store
    model_uuid = store.play_by_name(PLAY_NAME)["modelUuid"]
    with store.lock:
        records = filters.apply(store.model_records(model_uuid), play_filter(*o.window), None, None,
                                segments=store._segment_ids)
    return {str(r["_id"]) for r in records}


def _unaccounted(run: SuiteRun, o: Outcome, used: list[Any]) -> str | None:
    """Why ``o``'s input records are not exactly the records its batches ran (``None`` when they are)."""
    ran = [str(r.get("domain") if o.kind == "tool" else r.get("_id")) for b in used for r in b.records]
    wanted = set(o.domains) if o.kind == "tool" else _expected_ids(run, o)
    if len(ran) != len(set(ran)):
        return "a record ran twice"
    if set(ran) != wanted:
        return f"{len(wanted - set(ran))} input record(s) never ran, {len(set(ran) - wanted)} foreign record(s) ran"
    return None


@dataclass
class _Spend:
    """What the suite's batches cost, and which of them should not exist."""

    expected: float = 0.0
    duplicates: int = 0
    duplicate_details: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    orphan_credits: float = 0.0

    def failed(self, index: int, o: Outcome | None, owned: list[Any]) -> None:
        """A failed (or unknown) materialization's batches: orphans, charged; more than one is a duplicate."""
        for b in owned:
            self.orphans.append(f"#{index} ({o.kind if o else '?'}): batch {b.uuid}, {b.credits:g} provider credits, "
                                f"{len(b.records)} records; the materialization failed: "
                                f"{_mask(o.error) if o else 'unknown'}")
            self.orphan_credits += b.credits
            self.expected += b.credits
        if len(owned) > 1:
            self.duplicates += len(owned) - 1
            self.duplicate_details.append(
                f"materialization #{index}: {len(owned)} batches for one (failed) materialization")

    def succeeded(self, index: int, o: Outcome, owned: list[Any]) -> None:
        """A succeeded materialization's batches: the ones it reported are expected, any other a duplicate."""
        reported = set(o.batch_uuids)
        for b in owned:
            if b.uuid in reported:
                self.expected += b.credits
            else:
                self.duplicates += 1
                self.duplicate_details.append(f"materialization #{index}: batch {b.uuid} ({b.credits:g} provider credits) "
                                              "was paid besides the batch it reported")


def _spend(run: SuiteRun, by_mat: dict[int, list[Any]]) -> _Spend:
    outcomes = {o.index: o for o in run.outcomes}
    spend = _Spend()
    for index, owned in sorted(by_mat.items()):
        o = outcomes.get(index)
        if o is None or not o.succeeded:
            spend.failed(index, o, owned)
        else:
            spend.succeeded(index, o, owned)
    return spend


@dataclass
class _Findings:
    """What the succeeded materializations got wrong: adoptions, rows and input records."""

    wrong_details: list[str] = field(default_factory=list)
    missing_details: list[str] = field(default_factory=list)
    unaccounted_details: list[str] = field(default_factory=list)


def _wrong_adoptions(o: Outcome, owner_of: dict[str, int]) -> list[str]:
    """The batches ``o`` reported that hold another materialization's input (or none's)."""
    return [f"materialization #{o.index} reported batch {u}, which holds "
            f"{'materialization #' + str(owner_of[u]) if u in owner_of else 'no'}'s input"
            for u in o.batch_uuids if owner_of.get(u) != o.index]


def _findings(run: SuiteRun, batches: list[Any], runs_by_batch: dict[str, list[Any]],
              by_mat: dict[int, list[Any]]) -> _Findings:
    owner_of = {b.uuid: index for index, owned in by_mat.items() for b in owned}
    by_uuid = {b.uuid: b for b in batches}
    found = _Findings()
    for o in (o for o in run.outcomes if o.succeeded):
        found.wrong_details += _wrong_adoptions(o, owner_of)
        used = [by_uuid[u] for u in o.batch_uuids if u in by_uuid]
        problem = _check_rows(o, used, runs_by_batch) if used or o.kind == "play" else \
            "no batch reported in the metadata"
        if problem:
            found.missing_details.append(f"materialization #{o.index}: {problem}")
        gap = _unaccounted(run, o, used)
        if gap:
            found.unaccounted_details.append(f"materialization #{o.index} ({o.kind}): {gap}")
    return found


def _emulator_state(run: SuiteRun) -> tuple[list[Any], dict[str, list[Any]]]:
    """The emulator's batches and runs by batch; each outcome's reported single runs add their carriers to its
    batches (a single run, POST /orchestration/runs, is carried by a batch the API never shows: a
    materialization that reported single runs reported their carriers, for tracing, credits and rows alike)."""
    store = run.emulator.store
    with store.lock:
        batches = list(store.engine.batches.values())
        runs_by_batch: dict[str, list[Any]] = defaultdict(list)
        for r in store.engine.runs.values():
            runs_by_batch[r.batch_uuid].append(r)
        carrier = {r.uuid: r.batch_uuid for r in store.engine.runs.values()}
    for outcome in run.outcomes:
        outcome.batch_uuids = [*outcome.batch_uuids, *(carrier[u] for u in outcome.run_uuids if u in carrier
                                                         and carrier[u] not in outcome.batch_uuids)]
    return batches, runs_by_batch


def _search_request_log(run: SuiteRun) -> None:
    """The token in the emulator's request log, or an authorization header sent to the download host: leaks."""
    watch = run.watch
    for entry in list(run.emulator.request_log):
        if entry["path"].startswith("/_files") and "authorization" in {k.lower() for k in entry["headers"]}:
            watch.leaks += 1
            watch.samples.append(f"authorization header sent to the download host: {entry['path']}")
        watch.check("emulator request log entry", repr(entry))


def build_report(run: SuiteRun) -> FaultReport:
    """Trace every batch in the emulator to its materialization by content and compute the figures."""
    settle(run)
    batches, runs_by_batch = _emulator_state(run)
    by_mat, untraceable = _owners(run, batches)
    suite_batches = [b for owned in by_mat.values() for b in owned]
    spend = _spend(run, by_mat)
    found = _findings(run, batches, runs_by_batch, by_mat)
    _search_request_log(run)
    watch = run.watch
    failed = [o for o in run.outcomes if not o.succeeded]
    kinds = Counter(_mask(o.error) for o in failed)
    return FaultReport(
        materializations=len(run.outcomes), seed=run.config.seed, profile=run.config.profile_label(),
        succeeded=len(run.outcomes) - len(failed), failed_clear=sum(o.clear for o in failed),
        failed_unclear=sum(not o.clear for o in failed), duplicate_batches=spend.duplicates,
        batches=len(suite_batches), credits_spent=float(sum(b.credits for b in suite_batches)),
        credits_expected=spend.expected, token_leaks=watch.leaks,
        searched=dict(watch.searched), missing_rows=len(found.missing_details), faults=run.emulator.faults.counts,
        wall_seconds=run.wall_seconds, untraceable_batches=untraceable, wrong_adoptions=len(found.wrong_details),
        unaccounted_records=len(found.unaccounted_details), orphans=spend.orphans,
        orphan_credits=spend.orphan_credits,
        tools=sum(o.kind == "tool" for o in run.outcomes), plays=sum(o.kind == "play" for o in run.outcomes),
        concurrency=CONCURRENCY, earlier_batches=run.config.earlier_batches,
        single_runs=sum(bool(o.run_uuids) for o in run.outcomes), crashes=list(run.crashes),
        failure_kinds=sorted(((n, k) for k, n in kinds.items()), reverse=True),
        unclear_errors=[(o.index, o.error[:400]) for o in failed if not o.clear],
        missing_rows_details=found.missing_details, duplicate_details=spend.duplicate_details,
        leak_samples=list(watch.samples), wrong_details=found.wrong_details,
        unaccounted_details=found.unaccounted_details,
    )
