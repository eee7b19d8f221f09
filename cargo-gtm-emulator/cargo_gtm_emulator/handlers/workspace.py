"""Current workspace and user (REFERENCE §7.1)."""

from __future__ import annotations

from typing import Any

from ..routing import Request, Router


def current_workspace(req: Request) -> dict[str, Any]:
    """GET /workspaceManagement/workspaces/current"""
    return {"workspace": req.store.workspace}


def list_workspaces(req: Request) -> dict[str, Any]:
    """GET /workspaceManagement/workspaces/list"""
    return {"workspaces": [req.store.workspace]}


def current_workspace_user(req: Request) -> dict[str, Any]:
    """GET /workspaceManagement/users/current → WorkspaceUser (User + workspaceUuid, permissions, role)."""
    s = req.store
    return {"user": {**s.user, "workspaceUuid": s.workspace_uuid, "permissions": s.role["permissions"],
                     "role": s.role}}


def current_user(req: Request) -> dict[str, Any]:
    """GET /userManagement/users/current → bare User."""
    return {"user": req.store.user}


def register(router: Router) -> None:
    """Register this module's routes."""
    router.add("GET", "/workspaceManagement/workspaces/current", current_workspace)
    router.add("GET", "/workspaceManagement/workspaces/list", list_workspaces)
    router.add("GET", "/workspaceManagement/users/current", current_workspace_user)
    router.add("GET", "/userManagement/users/current", current_user)
