"""A plain Python client for Cargo's REST API: httpx + pydantic, no Dagster import.

Usable on its own:

.. code-block:: python

    from cargo_gtm import CargoClient, records_data

    with CargoClient(api_token="...") as cargo:
        tool = cargo.find_tool("Enrich company")
        batch = cargo.create_batch(tool.workflow_uuid, records_data([{"domain": "acme.com"}]))
        batch = cargo.wait_for_batch(batch.uuid)
        frame = cargo.download_batch_dataframe(batch.uuid)
"""

from .client import CargoClient
from .download.dataframe import download_dataframe, frame_from_bytes
from .download.parquet import ParquetResult, download_to_parquet
from .errors import (
    CargoAPIError,
    CargoAuthError,
    CargoBatchCancelledError,
    CargoBatchError,
    CargoBatchFailedError,
    CargoConcurrencyLimitError,
    CargoConfigError,
    CargoCreditsError,
    CargoDownloadError,
    CargoError,
    CargoInputError,
    CargoNetworkError,
    CargoNotFoundError,
    CargoRateLimitError,
    CargoRequestError,
    CargoServerError,
    CargoWaitTimeoutError,
)
from .inputs.records import (
    EMPTY_FILTER,
    change_data,
    filter_data,
    json_safe,
    record_ids_data,
    records_data,
    segment_data,
    to_json_records,
    validate_data,
    validate_filter,
)
from .models import *  # noqa: F403
from .models import __all__ as _models_all
from .paging import read_all
from .query import serialize_params
from .running.busy import BusyPolicy
from .running.progress import ProgressBar
from .running.reconcile import CargoAmbiguousCreateError
from .running.waiting import BatchProgress, raise_for_batch, wait_for_batches
from .transport import DEFAULT_BASE_URL, RetryPolicy

__all__ = [
    "CargoClient", "BusyPolicy", "ProgressBar", "RetryPolicy", "DEFAULT_BASE_URL", "BatchProgress", "wait_for_batches", "raise_for_batch",
    "download_dataframe", "frame_from_bytes", "serialize_params", "read_all", "ParquetResult", "download_to_parquet",
    "EMPTY_FILTER", "change_data", "filter_data", "json_safe", "record_ids_data", "records_data",
    "segment_data", "to_json_records", "validate_data", "validate_filter",
    "CargoAPIError", "CargoAmbiguousCreateError", "CargoAuthError", "CargoBatchCancelledError", "CargoBatchError",
    "CargoBatchFailedError", "CargoConcurrencyLimitError", "CargoConfigError", "CargoCreditsError", "CargoDownloadError", "CargoError",
    "CargoInputError", "CargoNetworkError", "CargoNotFoundError", "CargoRateLimitError",
    "CargoRequestError", "CargoServerError", "CargoWaitTimeoutError",
    *_models_all,
]
