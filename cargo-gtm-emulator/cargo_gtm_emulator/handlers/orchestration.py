"""Workflows, plays, tools and releases (REFERENCE §3.1–3.3, §3.8)."""

from __future__ import annotations

from typing import Any

from .. import serialize
from ..backend import releases
from ..errors import ApiError
from ..routing import Request, Router
from .common import as_bool, as_list, paginate


def list_workflows(req: Request) -> dict[str, Any]:
    """GET /orchestration/workflows/list"""
    return {"workflows": [serialize.workflow(req.store, wf) for wf in req.store.workflows.values()]}


def list_plays(req: Request) -> dict[str, Any]:
    """GET /orchestration/plays/list (isEnabled, modelUuid, segmentUuid, scheduleType)."""
    q = req.query
    enabled = as_bool(q.get("isEnabled"))
    plays = []
    for p in req.store.plays.values():
        if enabled is not None and p["isEnabled"] != enabled:
            continue
        if q.get("modelUuid") and p["modelUuid"] != q["modelUuid"]:
            continue
        if q.get("segmentUuid") and p["segmentUuid"] != q["segmentUuid"]:
            continue
        if q.get("scheduleType") and (p["schedule"] or {}).get("type") != q["scheduleType"]:
            continue
        plays.append(p)
    return {"plays": plays}


def get_play(req: Request) -> dict[str, Any]:
    """GET /orchestration/plays/{uuid}"""
    play = req.store.plays.get(req.params["uuid"])
    if play is None:
        raise ApiError("playNotFound")
    return {"play": play}


def list_tools(req: Request) -> dict[str, Any]:
    """GET /orchestration/tools/list"""
    return {"tools": list(req.store.tools.values())}


def get_tool(req: Request) -> dict[str, Any]:
    """GET /orchestration/tools/{uuid}"""
    tool = req.store.tools.get(req.params["uuid"])
    if tool is None:
        raise ApiError("toolNotFound")
    return {"tool": tool}


def get_release(req: Request) -> dict[str, Any]:
    """GET /orchestration/releases/{uuid}"""
    rel = req.store.releases.get(req.params["uuid"])
    if rel is None:
        raise ApiError("releaseNotFound", "Release not found.")
    return {"release": rel}


def deployed_release(req: Request) -> dict[str, Any]:
    """GET /orchestration/releases/deployed?workflowUuid="""
    wf = req.query.get("workflowUuid")
    if not wf:
        raise ApiError(None, "workflowUuid is required.", status=400)
    if wf not in req.store.deployed_release:
        raise ApiError("releaseNotFound")
    return {"release": req.store.release_for(str(wf))}


def list_releases(req: Request) -> dict[str, Any]:
    """GET /orchestration/releases/list (workflowUuid, userUuid, statuses[], limit, offset); newest first."""
    q = req.query
    statuses = as_list(q.get("statuses"))
    rels = [r for r in req.store.releases.values()
            if (not q.get("workflowUuid") or r["workflowUuid"] == q["workflowUuid"])
            and (not q.get("userUuid") or r["userUuid"] == q["userUuid"])
            and (not statuses or r["status"] in statuses)]
    rels.sort(key=lambda r: r["createdAt"], reverse=True)
    return {"releases": paginate(rels, q)}


def draft_release(req: Request) -> dict[str, Any]:
    """GET /orchestration/releases/draft?workflowUuid="""
    return {"release": releases.draft(req.store, str(req.query.get("workflowUuid") or ""), req.now)}


def update_draft_release(req: Request) -> dict[str, Any]:
    """POST /orchestration/releases/draft/update"""
    return {"release": releases.update_draft(req.store, req.json_obj(), req.now)}


def deploy_draft_release(req: Request) -> dict[str, Any]:
    """POST /orchestration/releases/draft/deploy"""
    return {"release": releases.deploy_draft(req.store, req.json_obj(), req.now)}


def register(router: Router) -> None:
    """Register this module's routes."""
    router.add("GET", "/orchestration/workflows/list", list_workflows)
    router.add("GET", "/orchestration/plays/list", list_plays)
    router.add("GET", "/orchestration/plays/{uuid}", get_play)
    router.add("GET", "/orchestration/tools/list", list_tools)
    router.add("GET", "/orchestration/tools/{uuid}", get_tool)
    router.add("GET", "/orchestration/releases/deployed", deployed_release)
    router.add("GET", "/orchestration/releases/list", list_releases)
    router.add("GET", "/orchestration/releases/draft", draft_release)
    router.add("POST", "/orchestration/releases/draft/update", update_draft_release,
               ("workflowUuid", "parentUuid", "nodes", "testRecords", "formFields", "options"))
    router.add("POST", "/orchestration/releases/draft/deploy", deploy_draft_release,
               ("workflowUuid", "nodes", "formFields", "version", "description", "options"))
    router.add("GET", "/orchestration/releases/{uuid}", get_release)
