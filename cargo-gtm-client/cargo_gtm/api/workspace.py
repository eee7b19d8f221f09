"""Cargo's workspace and user area (``api.workspaceManagement.*``, ``api.userManagement.*``; REFERENCE.md 7)."""

from __future__ import annotations

from ..models import User, Workspace
from ._base import ApiArea

__all__ = ["WorkspaceAPI"]


class WorkspaceAPI(ApiArea):
    """Endpoints under ``/workspaceManagement`` and ``/userManagement``."""

    def get_current_user(self) -> User:
        """``GET /userManagement/users/current``: the user the token acts as (sent without the
        workspace header, like the official client)."""
        return User.model_validate(self._get("/userManagement/users/current", without_workspace=True)["user"])

    def get_current_workspace(self) -> Workspace:
        """``GET /workspaceManagement/workspaces/current``."""
        return Workspace.model_validate(self._get("/workspaceManagement/workspaces/current")["workspace"])
