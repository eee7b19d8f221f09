"""Cargo's storage area (``api.storage.*``): models and datasets (REFERENCE.md section 5)."""

from __future__ import annotations

from ..models import Dataset, Model
from ._base import ApiArea, parse_list

__all__ = ["StorageAPI"]


class StorageAPI(ApiArea):
    """Endpoints under ``/storage``."""

    def list_models(self) -> list[Model]:
        """``GET /storage/models/list``."""
        return parse_list(self._get("/storage/models/list"), "models", Model)

    def get_model(self, uuid: str) -> Model:
        """``GET /storage/models/{uuid}``."""
        return Model.model_validate(self._get(f"/storage/models/{uuid}")["model"])

    def list_datasets(self) -> list[Dataset]:
        """``GET /storage/datasets/list``."""
        return parse_list(self._get("/storage/datasets/list"), "datasets", Dataset)
