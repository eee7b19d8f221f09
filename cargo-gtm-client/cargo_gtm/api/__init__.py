"""Cargo's API by area, as the official client groups it (``api.orchestration``, ``api.segmentation``,
``api.storage``, ``api.billing``, ``api.workspaceManagement``/``userManagement``).

Each area is a mixin of endpoint methods, a few lines each; :class:`~cargo_gtm.CargoClient`
composes them, so every endpoint is a ``CargoClient`` method (``client.list_batches(...)``).
"""

from ._base import ApiArea, wire
from .billing import BillingAPI
from .orchestration import DownloadFormat, OrchestrationAPI
from .segmentation import SegmentationAPI
from .storage import StorageAPI
from .workspace import WorkspaceAPI

__all__ = ["ApiArea", "BillingAPI", "DownloadFormat", "OrchestrationAPI", "SegmentationAPI", "StorageAPI",
           "WorkspaceAPI", "wire"]
