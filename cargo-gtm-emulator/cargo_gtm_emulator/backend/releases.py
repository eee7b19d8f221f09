"""Releases: the draft of a workflow, its update, and deploying it as the new deployed release
(REFERENCE §3.8). Batches keep the release they were created with (CARGO-DOCS 14.2, GLOSSARY: "Runs and
batches execute against a specific release"); only new batches and runs use the new one.

How a deployed node list becomes something the emulator can execute (see EMULATOR.md, "Redeploys"):
nodes run in the order they are listed; a node whose ``slug`` exists in the workflow's current definition
keeps that node's behaviour (its ``config`` is stored, never interpreted); a new node with the ``actionSlug``
of any seeded node behaves like it; any other new node is a free pass-through whose output is its ``config``.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from ..errors import ApiError
from ..store import Store
from ..util import iso
from ..workflows import NodeSpec, WorkflowSpec

NODE_KINDS = ("native", "connector", "tool", "agent")


def _workflow(store: Store, body: dict[str, Any]) -> str:
    wf = body.get("workflowUuid")
    if not isinstance(wf, str) or wf not in store.workflows:
        raise ApiError("workflowNotFound")
    return wf


def draft(store: Store, workflow_uuid: str, now: float) -> dict[str, Any]:
    """The workflow's draft release, created on first use as a copy of the deployed one."""
    if workflow_uuid not in store.workflows:
        raise ApiError("workflowNotFound")
    existing = store.drafts.get(workflow_uuid)
    if existing is not None:
        return store.releases[existing]
    deployed = store.release_for(workflow_uuid)
    uuid = store.ids.uuid()
    store.releases[uuid] = {
        **copy.deepcopy(deployed), "uuid": uuid, "parentUuid": deployed["uuid"], "status": "draft",
        "version": None, "description": None, "userUuid": store.user_uuid, "deployedAt": None,
        "createdAt": iso(now), "updatedAt": iso(now), "deletedAt": None,
    }
    store.drafts[workflow_uuid] = uuid
    return store.releases[uuid]


def update_draft(store: Store, body: dict[str, Any], now: float) -> dict[str, Any]:
    """``POST /orchestration/releases/draft/update``: replace the given parts of the draft."""
    wf = _workflow(store, body)
    rel = draft(store, wf, now)
    parent = body.get("parentUuid")
    if parent is not None and store.releases.get(str(parent), {}).get("workflowUuid") != wf:
        raise ApiError("invalidParent")
    if body.get("nodes") is not None:
        rel["nodes"] = _normalize_nodes(store, body["nodes"], "failedToReconciliateNodes")
    for key in ("testRecords", "formFields", "parentUuid"):
        if key in body:
            rel[key] = copy.deepcopy(body[key])
    rel["updatedAt"] = iso(now)
    return rel


def deploy_draft(store: Store, body: dict[str, Any], now: float) -> dict[str, Any]:
    """``POST /orchestration/releases/draft/deploy``: the draft, with ``nodes`` and ``formFields``, becomes
    the deployed release; the previous one is archived. ``version`` is assigned by the platform (one more
    than the previous deployed version); a ``version`` in the body is ignored (REFERENCE §3.8 [skills])."""
    wf = _workflow(store, body)
    if "nodes" not in body or "formFields" not in body:
        raise ApiError(None, "nodes and formFields are required.", status=400)
    description = body.get("description")
    return deploy(store, wf, body["nodes"], body["formFields"], description if isinstance(description, str)
                  else None, now)


def deploy(store: Store, workflow_uuid: str, nodes: Any, form_fields: Any, description: str | None,
           now: float) -> dict[str, Any]:
    """Deploy ``nodes`` as the workflow's new release (shared by the endpoint and ``emu.redeploy``)."""
    wire = _normalize_nodes(store, nodes, "draftReleaseNodesAreInvalid")
    old = store.release_for(workflow_uuid)
    current = store.spec_for(workflow_uuid)
    if current.kind == "tool" and not form_fields:
        raise ApiError("toolReleaseRequiresFormFields")
    spec = _spec(store, current, wire, form_fields)
    rel = draft(store, workflow_uuid, now)
    rel.update({
        "nodes": wire, "formFields": copy.deepcopy(form_fields), "status": "deployed",
        "version": str(_version(old) + 1), "description": description, "deployedAt": iso(now),
        "updatedAt": iso(now), "parentUuid": old["uuid"],
    })
    old["status"], old["updatedAt"] = "archived", iso(now)
    del store.drafts[workflow_uuid]
    store.release_specs.setdefault(old["uuid"], current)  # batches of the old release keep running it
    store.deployed_release[workflow_uuid] = rel["uuid"]
    store.specs[workflow_uuid] = spec
    store.release_specs[rel["uuid"]] = spec
    _refresh_workflow(store, workflow_uuid, wire, now)
    return rel


def _version(release: dict[str, Any]) -> int:
    try:
        return int(release.get("version") or 0)
    except ValueError:
        return 0


def _normalize_nodes(store: Store, nodes: Any, reason: str) -> list[dict[str, Any]]:
    """Check a node list and fill what the emulator needs: ``uuid``, ``config``, a linear ``childrenUuids``
    when absent, a connector node's ``connectorUuid`` from the workspace's connector for its integration."""
    if not isinstance(nodes, list) or not nodes:
        raise ApiError(reason)
    out = []
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("slug"), str) or not node["slug"] \
                or node.get("kind") not in NODE_KINDS:
            raise ApiError(reason)
        out.append({**copy.deepcopy(node), "uuid": node.get("uuid") or store.ids.uuid()})
    for i, node in enumerate(out):
        _fill_node(store, node, out[i + 1]["uuid"] if i + 1 < len(out) else None)
    return out


def _fill_node(store: Store, node: dict[str, Any], next_uuid: str | None) -> None:
    """Defaults of one deployed node: ``name``, ``config``, links to the next node in the list (the emulator
    runs the list in order), a connector's ``connectorUuid``."""
    node.setdefault("name", node["slug"])
    node.setdefault("config", {})
    node.setdefault("childrenUuids", [next_uuid] if next_uuid else [])
    if node.get("fallbackOnFailure") and next_uuid:
        node.setdefault("fallbackChildUuid", next_uuid)
    if node["kind"] == "connector" and not node.get("connectorUuid"):
        node["connectorUuid"] = next((c["uuid"] for c in store.connectors.values()
                                      if c.get("integrationSlug") == node.get("integrationSlug")), None)


def _passthrough(config: dict[str, Any]) -> Any:
    def compute(record: dict[str, Any], context: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        return dict(record), copy.deepcopy(config)
    return compute


def _same_node(current: WorkflowSpec, node: dict[str, Any], seen: dict[tuple[str, str], int]) -> NodeSpec | None:
    """The current node this deployed node keeps: the n-th one with its slug **and kind** (slugs repeat, also
    across kinds: CARGO-DOCS 1.6, 15.4), n counting this node's earlier namesakes in the list."""
    key = (str(node["slug"]), str(node["kind"]))
    n = seen.get(key, 0)
    seen[key] = n + 1
    same = [c for c in current.nodes if (c.slug, c.kind) == key]
    return same[min(n, len(same) - 1)] if same else None


def _node_spec(store: Store, current: WorkflowSpec, node: dict[str, Any], seen: dict[tuple[str, str], int]
               ) -> NodeSpec:
    same = _same_node(current, node, seen)
    fallback = bool(node.get("fallbackOnFailure"))
    if same is not None:
        return replace(same, name=str(node.get("name") or same.name), fallback_on_failure=fallback)
    action = node.get("actionSlug")
    for spec in store.specs.values():
        like = next((n for n in spec.nodes if n.action_slug == action and n.kind == node["kind"]), None)
        if like is not None:
            return replace(like, slug=node["slug"], name=str(node.get("name") or like.name),
                           fallback_on_failure=fallback)
    return NodeSpec(slug=node["slug"], name=str(node.get("name") or node["slug"]), kind=str(node["kind"]),
                    action_slug=str(action or "passthrough"), compute=_passthrough(node.get("config") or {}),
                    integration_slug=node.get("integrationSlug"), fallback_on_failure=fallback)


def _spec(store: Store, current: WorkflowSpec, wire: list[dict[str, Any]], form_fields: Any) -> WorkflowSpec:
    fields = form_fields if current.kind == "tool" and isinstance(form_fields, list) else current.form_fields
    seen: dict[tuple[str, str], int] = {}
    return replace(current, nodes=[_node_spec(store, current, n, seen) for n in wire], form_fields=list(fields))


def _refresh_workflow(store: Store, workflow_uuid: str, wire: list[dict[str, Any]], now: float) -> None:
    tree: list[dict[str, Any]] = []
    for node in reversed(wire):
        wn = {"uuid": node["uuid"], "slug": node["slug"], "name": node["name"], "isArchived": False,
              "nodes": tree, "kind": node["kind"]}
        if node["kind"] in ("tool", "agent"):  # no actionSlug (CARGO-DOCS 15.4)
            wn.update({k: node[k] for k in ("toolUuid", "agentUuid") if k in node})
        else:
            wn["actionSlug"] = node.get("actionSlug")
        if node["kind"] == "connector":
            wn["integrationSlug"] = node.get("integrationSlug")
            wn["connectorUuid"] = node.get("connectorUuid")
        tree = [wn]
    store.workflows[workflow_uuid]["nodes"] = tree
    store.workflows[workflow_uuid]["updatedAt"] = iso(now)


def redeploy(store: Store, workflow_uuid: str, now: float, *, configs: dict[str, dict[str, Any]] | None = None,
             add_nodes: list[dict[str, Any]] | None = None, position: int | None = None,
             description: str | None = None) -> dict[str, Any]:
    """What a user editing the workflow in Cargo does: take the deployed nodes, merge ``configs`` (slug ->
    config keys) into them, insert ``add_nodes`` at ``position`` (default: at the end), and deploy."""
    nodes = copy.deepcopy(store.release_for(workflow_uuid)["nodes"])
    for slug, cfg in (configs or {}).items():
        target = next((n for n in nodes if n["slug"] == slug), None)
        if target is None:
            raise KeyError(f"no node {slug!r} in the deployed release")
        target["config"] = {**(target.get("config") or {}), **cfg}
    index = len(nodes) if position is None else position
    nodes[index:index] = [dict(n) for n in (add_nodes or [])]
    for node in nodes:
        node.pop("childrenUuids", None)  # re-linked in list order
        node.pop("fallbackChildUuid", None)
    form_fields = store.release_for(workflow_uuid)["formFields"]
    return deploy(store, workflow_uuid, nodes, form_fields,
                  description or f"Redeployed in the emulator at {iso(now)}", now)
