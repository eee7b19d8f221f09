"""Endpoint handlers grouped by API domain."""

from __future__ import annotations

from ..routing import Router
from . import batches, billing, orchestration, runs, segmentation, storage, uploads, workspace


def build_router() -> Router:
    """A router with every emulated endpoint registered."""
    router = Router()
    for module in (orchestration, batches, runs, segmentation, storage, billing, workspace, uploads):
        module.register(router)
    return router
