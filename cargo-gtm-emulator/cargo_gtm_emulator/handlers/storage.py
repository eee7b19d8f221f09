"""Storage models and datasets (REFERENCE §5.1–5.2)."""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..routing import Request, Router


def list_models(req: Request) -> dict[str, Any]:
    """GET /storage/models/list"""
    return {"models": list(req.store.models.values())}


def get_model(req: Request) -> dict[str, Any]:
    """GET /storage/models/{uuid}"""
    model = req.store.models.get(req.params["uuid"])
    if model is None:
        raise ApiError("modelNotFound")
    return {"model": model}


def list_datasets(req: Request) -> dict[str, Any]:
    """GET /storage/datasets/list"""
    return {"datasets": list(req.store.datasets.values())}


def get_dataset(req: Request) -> dict[str, Any]:
    """GET /storage/datasets/{uuid}"""
    ds = req.store.datasets.get(req.params["uuid"])
    if ds is None:
        raise ApiError("datasetNotFound")
    return {"dataset": ds}


def register(router: Router) -> None:
    """Register this module's routes."""
    router.add("GET", "/storage/models/list", list_models)
    router.add("GET", "/storage/models/{uuid}", get_model)
    router.add("GET", "/storage/datasets/list", list_datasets)
    router.add("GET", "/storage/datasets/{uuid}", get_dataset)
