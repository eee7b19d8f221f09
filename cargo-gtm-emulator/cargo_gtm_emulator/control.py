"""Control plane: make realistic state from outside the emulator's process (moto-style).

Served under the reserved prefix ``/_emulator`` (outside ``/v1``, so no Cargo path can collide), protected by
the same bearer token as the API, never faulted. JSON in, JSON out:

| route | body | effect |
|---|---|---|
| ``GET /_emulator/state`` | | ``{now, creditsUsed, providerCredits, executions, creditsRemaining, variants, faultCounts}`` |
| ``POST /_emulator/clock/advance`` | ``{seconds}`` | move simulated time (manual clock) and process what is due |
| ``POST /_emulator/variants`` | ``{name: value, ...}`` | switch layout variants (400 lists allowed values) |
| ``POST /_emulator/faults`` | ``{preset?, <kind>: p, seed?, ...}`` or ``{next: {target, kind, times?}}`` or ``{clear: true}`` | fault profile / scripted fault |
| ``POST /_emulator/records`` | ``{model, records, snapshot?}`` | upsert records (snapshots the model's segments) → ``{changes}`` |
| ``POST /_emulator/records/remove`` | ``{model, ids, snapshot?}`` | delete records → ``{changes}`` |
| ``POST /_emulator/files`` | ``{rows}`` | register a file for ``kind: "file"`` batches → ``{s3Filename}`` |
| ``POST /_emulator/plays/schedule`` | ``{play, changeKinds?, userUuid?}`` | Cargo's scheduler runs a play → ``{batch}`` |
| ``POST /_emulator/batches`` | ``{userUuid, workflowUuid, data}`` | a batch created by another user → ``{batch}`` |
| ``POST /_emulator/reset`` | | back to the freshly seeded state (clock, variants, faults, request log) |
| ``POST /_emulator/outputs`` | ``{batchUuid, path, format?}`` | serve the file at ``path`` (on the emulator's machine) as the batch's output |
| ``POST /_emulator/redeploy`` | ``{workflow, configs?, addNodes?, position?, description?}`` | deploy a new release → ``{release}`` |
| ``GET /_emulator/batches`` | query ``workflow?``, ``status?`` | the inspection view of batches → ``{batches}`` |
| ``POST /_emulator/failures`` | ``{plan: {key: n or "always"}, workflow?}`` or ``{clear: true}`` | failure plan (records fail their first n runs) → ``{failures}`` |
| ``GET /_emulator/failures`` | | the failure plan → ``{failures}`` |
| ``POST /_emulator/concurrency`` | ``{limit}`` (an integer ≥ 1, or null: none) | the workspace's concurrency limit → ``{concurrencyLimit}`` |
| ``GET /_emulator/concurrency`` | | ``{concurrencyLimit}`` |

The Python equivalents are methods of :class:`~cargo_gtm_emulator.CargoEmulator` and its ``store``; the
command line is ``python -m cargo_gtm_emulator.control`` (or ``dagster-cargo emulator-ctl``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from . import serialize
from .errors import ApiError
from .faults import FaultProfile
from .token_source import add_token_options, read_token

if TYPE_CHECKING:  # the facade as the control plane sees it (importing .emulator would be an import cycle)
    from .host import EmulatorHost as CargoEmulator

PREFIX = "/_emulator"
Action = Callable[["CargoEmulator", dict[str, Any]], dict[str, Any]]


def _state(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    s = emu.store
    with s.lock:
        now = s.sync()
        return {"now": now, "creditsUsed": s.credits_used, "providerCredits": s.provider_credits_used,
                "executions": s.executions_billed, "creditsRemaining": s.credits_remaining,
                "variants": dict(s.variants), "faultCounts": emu.faults.counts,
                "concurrencyLimit": s.concurrency_limit}


def _advance(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    seconds = body.get("seconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        raise ApiError("invalidData", "seconds must be a non-negative number.")
    emu.advance(float(seconds))
    return _state(emu, {})


def _variants(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    try:
        emu.set_variants(**{str(k): str(v) for k, v in body.items()})
    except ValueError as exc:
        raise ApiError("invalidData", str(exc)) from None
    return {"variants": emu.variants}


def _faults(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    try:
        if body.get("clear"):
            emu.faults.clear()
        elif isinstance(body.get("next"), dict):
            nxt = body["next"]
            emu.faults.next(str(nxt["target"]), str(nxt["kind"]), int(nxt.get("times", 1)))
        else:
            params = {k: v for k, v in body.items() if k != "preset"}
            emu.faults.profile = FaultProfile.preset(str(body.get("preset", "none")), **params)
    except (KeyError, TypeError, ValueError) as exc:
        raise ApiError("invalidData", f"Invalid fault request: {exc}") from None
    return {"faultCounts": emu.faults.counts, "pending": emu.faults.pending}


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError("invalidData", "model (slug or uuid) is required.")
    return model


def _upsert(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ApiError("invalidData", "records must be an array of objects.")
    try:
        changes = emu.store.upsert_records(_model(body), records, snapshot=bool(body.get("snapshot", True)))
    except StopIteration:
        raise ApiError("modelNotFound") from None
    return {"changes": changes}


def _remove(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    ids = body.get("ids")
    if not isinstance(ids, list):
        raise ApiError("invalidData", "ids must be an array.")
    try:
        changes = emu.store.remove_records(_model(body), [str(i) for i in ids],
                                           snapshot=bool(body.get("snapshot", True)))
    except StopIteration:
        raise ApiError("modelNotFound") from None
    return {"changes": changes}


def _files(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    rows = body.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ApiError("invalidData", "rows must be an array of objects.")
    return {"s3Filename": emu.store.put_file(rows)}


def _schedule(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    play = body.get("play")
    kinds = tuple(body.get("changeKinds") or ("added", "updated"))
    store = emu.store
    found = store.plays.get(str(play)) or next((p for p in store.plays.values() if p["name"] == play), None)
    if found is None:
        raise ApiError("playNotFound")
    uuid = emu.run_play_schedule(found["name"], kinds, user_uuid=body.get("userUuid"))
    with store.lock:
        return {"batch": serialize.batch(store, store.engine.batches[uuid])}


def _batch_as(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    from .backend.batches import create_batch_from

    user = body.get("userUuid")
    if not isinstance(user, str) or not user:
        raise ApiError("invalidData", "userUuid is required.")
    store = emu.store
    with store.lock:
        now = store.sync()
        batch = create_batch_from(store, {k: v for k, v in body.items() if k != "userUuid"}, now, user_uuid=user)
        return {"batch": serialize.batch(store, batch)}


def _reset(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    emu.reset()
    return _state(emu, {})


def _outputs(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    batch, path, fmt = body.get("batchUuid"), body.get("path"), body.get("format", "csv")
    if not isinstance(batch, str) or not isinstance(path, str) or fmt not in ("csv", "json"):
        raise ApiError("invalidData", "batchUuid and path (strings) are required; format is csv or json.")
    if not os.path.isfile(path):
        raise ApiError("invalidData", f"No file at {path} on the emulator's machine.")
    try:
        emu.attach_output_file(batch, path, fmt)
    except KeyError:
        raise ApiError("batchNotFound") from None
    return {"batchUuid": batch, "path": path, "format": fmt}


def _redeploy(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    workflow = body.get("workflow")
    if not isinstance(workflow, str):
        raise ApiError("invalidData", "workflow (a play or tool name or uuid, or a workflow uuid) is required.")
    try:
        release = emu.redeploy(workflow, configs=body.get("configs"), add_nodes=body.get("addNodes"),
                               position=body.get("position"), description=body.get("description"))
    except KeyError as exc:
        raise ApiError("workflowNotFound", str(exc.args[0])) from None
    return {"release": release}


def _list_batches(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    try:
        found = emu.batches(workflow=body.get("workflow"), status=body.get("status"))
    except KeyError:
        raise ApiError("workflowNotFound") from None
    return {"batches": [dataclasses.asdict(b) for b in found]}


def _failures(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    if body.get("clear"):
        emu.clear_failure_plan()
    plan = body.get("plan")
    if plan is not None and not isinstance(plan, dict):
        raise ApiError("invalidData", "plan must be an object: record id or field=value -> n or \"always\".")
    workflow = body.get("workflow")
    if plan:
        try:
            emu.plan_failures(plan, workflow=None if workflow is None else str(workflow))
        except KeyError:
            raise ApiError("workflowNotFound") from None
        except ValueError as exc:
            raise ApiError("invalidData", str(exc)) from None
    return {"failures": emu.failure_plan}


def _concurrency(emu: CargoEmulator, body: dict[str, Any]) -> dict[str, Any]:
    if "limit" in body:
        limit = body["limit"]
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ApiError("invalidData", "limit must be an integer >= 1, or null for no limit.")
        emu.set_concurrency_limit(limit)
    return {"concurrencyLimit": emu.store.concurrency_limit}


ROUTES: dict[tuple[str, str], Action] = {
    ("GET", "/state"): _state,
    ("POST", "/clock/advance"): _advance,
    ("POST", "/variants"): _variants,
    ("POST", "/faults"): _faults,
    ("POST", "/records"): _upsert,
    ("POST", "/records/remove"): _remove,
    ("POST", "/files"): _files,
    ("POST", "/plays/schedule"): _schedule,
    ("POST", "/batches"): _batch_as,
    ("POST", "/reset"): _reset,
    ("POST", "/outputs"): _outputs,
    ("POST", "/redeploy"): _redeploy,
    ("GET", "/batches"): _list_batches,
    ("POST", "/failures"): _failures,
    ("GET", "/failures"): _failures,
    ("POST", "/concurrency"): _concurrency,
    ("GET", "/concurrency"): _concurrency,
}


def handle(emu: CargoEmulator, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    """Dispatch one control request (``path`` includes the prefix; auth is already checked)."""
    action = ROUTES.get((method, path[len(PREFIX):].rstrip("/") or "/"))
    if action is None:
        return 404, {"errorMessage": f"Route not found: {method} {path}", "reason": "routeNotFound"}
    if body is not None and not isinstance(body, dict):
        return 400, {"errorMessage": "Request body must be a JSON object.", "reason": "invalidData"}
    try:
        return 200, action(emu, body or {})
    except ApiError as err:
        return err.status, err.body()


# ---------------------------------------------------------------------------------------------- CLI
def _cli_request(url: str, token: str, method: str, path: str, body: dict[str, Any] | None) -> int:
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + PREFIX + path, data=data, method=method,
                                 headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - a URL the user gave
            print(resp.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.read().decode(), file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"Cannot reach the emulator at {url}: {exc.reason}", file=sys.stderr)
        return 1


def build_parser(prog: str = "python -m cargo_gtm_emulator.control") -> argparse.ArgumentParser:
    """The control CLI's argument parser."""
    p = argparse.ArgumentParser(prog=prog, description="Change a running Cargo emulator's state.")
    p.add_argument("--url", default="http://127.0.0.1:8765", help="emulator base URL (without /v1)")
    add_token_options(p)
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("state", help="print the emulator's state: clock, credits used and left, variants, fault counts")
    adv = sub.add_parser("advance", help="move a manual clock forward (batches and runs progress by that much)")
    adv.add_argument("seconds", type=float, help="simulated seconds to move forward")
    var = sub.add_parser("variant", help="switch a behaviour the docs leave open to another plausible variant "
                                         "(see EMULATOR.md)")
    var.add_argument("assignments", nargs="+", metavar="NAME=VALUE", help="variant name = value, e.g. "
                                                                        "batch_download_format=json")
    flt = sub.add_parser("faults", help="inject HTTP faults (5xx, timeouts, lost responses) into the next or "
                                         "matching requests, or a preset mix")
    flt.add_argument("json", help='e.g. \'{"preset": "mixed"}\' or \'{"next": {"target": "POST /orchestration/batches", '
                                  '"kind": "server_error"}}\'')
    up = sub.add_parser("upsert-records", help="add or update records of a model (its segments see a change)")
    up.add_argument("model", help="model slug or uuid")
    up.add_argument("records_json", help="JSON array of records (by _id)")
    rm = sub.add_parser("remove-records", help="remove records of a model by _id")
    rm.add_argument("model", help="model slug or uuid")
    rm.add_argument("ids", nargs="+", help="record ids (_id)")
    sch = sub.add_parser("schedule-play", help="run a play the way Cargo's own schedule would (a batch not "
                                               "created through the API)")
    sch.add_argument("play", help="play name or uuid")
    sch.add_argument("--user-uuid", default=None, help="the user the batch is attributed to (default: none)")
    sch.add_argument("--change-kinds", default="added,updated", help="change kinds to enrol (default: %(default)s)")
    bat = sub.add_parser("create-batch-as", help="create a batch as another user would (e.g. from Cargo's UI)")
    bat.add_argument("user_uuid", help="the user creating the batch")
    bat.add_argument("body_json", help='the POST /orchestration/batches body, e.g. \'{"workflowUuid": …, "data": …}\'')
    sub.add_parser("reset", help="back to the freshly seeded state")
    out = sub.add_parser("attach-output", help="serve a file as a batch's output (the file must be on the "
                                               "emulator's machine)")
    out.add_argument("batch_uuid", help="the batch whose download serves the file")
    out.add_argument("path", help="the file to serve")
    out.add_argument("--format", default="csv", choices=("csv", "json"), help="the file's format (default: csv)")
    red = sub.add_parser("redeploy", help="deploy a new release of a play or tool")
    red.add_argument("workflow", help="play or tool name or uuid, or workflow uuid")
    red.add_argument("--configs", default=None, help='JSON: node slug -> config keys, e.g. \'{"score": {"x": 1}}\'')
    red.add_argument("--add-nodes", default=None, help='JSON array of nodes ({slug, kind, actionSlug?, config?})')
    red.add_argument("--description", default=None, help="the new release's description")
    bl = sub.add_parser("batches", help="list batches (inspection view)")
    bl.add_argument("--workflow", default=None, help="only batches of this play or tool (name or uuid)")
    bl.add_argument("--status", default=None, help="only batches with this status, e.g. running")
    fail = sub.add_parser("fail-records", help="failure plan: these records fail their first N runs, then succeed "
                                               "(N=always: every run)")
    fail.add_argument("plan", nargs="*", metavar="KEY=N", help="record id (or field=value) = N or always, e.g. "
                                                              "cmp_0007=2 domain=acme.com=always")
    fail.add_argument("--workflow", default=None, help="only runs of this play or tool (name or uuid)")
    fail.add_argument("--clear", action="store_true", help="forget the plan first")
    conc = sub.add_parser("concurrency", help="show or set the workspace's concurrency limit (creates beyond it get "
                                              "400 concurrencyLimitReached)")
    conc.add_argument("limit", nargs="?", default=None, help="an integer >= 1, or 'none' for no limit; omit to show")
    return p


def _plan(assignments: list[str]) -> dict[str, Any]:
    """``["cmp_0007=2", "domain=acme.com=always"]`` -> ``{"cmp_0007": 2, "domain=acme.com": "always"}``."""
    plan: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.rpartition("=")
        if not sep or not key:
            raise ValueError(f"{item!r}: expected KEY=N or KEY=always")
        plan[key] = value if value == "always" else int(value)
    return plan


def _concurrency_body(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    if args.limit is None:
        return "GET", "/concurrency", None
    return "POST", "/concurrency", {"limit": None if args.limit.lower() == "none" else int(args.limit)}


def _cli_body(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """``(method, path, body)`` of the control request an action stands for."""
    simple: dict[str, Callable[[argparse.Namespace], tuple[str, str, dict[str, Any] | None]]] = {
        "state": lambda a: ("GET", "/state", None),
        "reset": lambda a: ("POST", "/reset", {}),
        "advance": lambda a: ("POST", "/clock/advance", {"seconds": a.seconds}),
        "variant": lambda a: ("POST", "/variants", dict(x.split("=", 1) for x in a.assignments)),
        "faults": lambda a: ("POST", "/faults", json.loads(a.json)),
        "upsert-records": lambda a: ("POST", "/records", {"model": a.model, "records": json.loads(a.records_json)}),
        "remove-records": lambda a: ("POST", "/records/remove", {"model": a.model, "ids": a.ids}),
        "schedule-play": lambda a: ("POST", "/plays/schedule", {
            "play": a.play, "changeKinds": a.change_kinds.split(","), "userUuid": a.user_uuid}),
        "create-batch-as": lambda a: ("POST", "/batches", {**json.loads(a.body_json), "userUuid": a.user_uuid}),
        "attach-output": lambda a: ("POST", "/outputs", {
            "batchUuid": a.batch_uuid, "path": os.path.abspath(a.path), "format": a.format}),
        "redeploy": lambda a: ("POST", "/redeploy", {
            "workflow": a.workflow, "configs": json.loads(a.configs) if a.configs else None,
            "addNodes": json.loads(a.add_nodes) if a.add_nodes else None, "description": a.description}),
        "fail-records": lambda a: ("POST", "/failures", {"plan": _plan(a.plan), "clear": a.clear,
                                                          **({"workflow": a.workflow} if a.workflow else {})}),
        "concurrency": _concurrency_body,
        "batches": lambda a: ("GET", "/batches?" + urlencode(
            {k: v for k, v in (("workflow", a.workflow), ("status", a.status)) if v}), None),
    }
    return simple[args.action](args)


def main(argv: Sequence[str] | None = None, prog: str = "python -m cargo_gtm_emulator.control") -> int:
    """Run the control CLI; returns the exit code."""
    args = build_parser(prog).parse_args(argv)
    try:
        method, path, body = _cli_body(args)
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"Invalid arguments: {exc}", file=sys.stderr)
        return 2
    token = read_token(args)
    if token is None:
        return 2
    return _cli_request(args.url, token, method, path, body)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
