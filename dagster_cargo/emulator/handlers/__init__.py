"""Endpoint handlers grouped by API domain."""

from __future__ import annotations

from ..server import Router
from . import batches, billing, orchestration, runs, segmentation, storage, workspace


def build_router() -> Router:
    """A router with every emulated endpoint registered."""
    router = Router()
    for module in (orchestration, batches, runs, segmentation, storage, billing, workspace):
        module.register(router)
    return router
