"""From the wire to the DataFrame or Parquet: streamed bodies, CSV/JSON layouts, per-record outcomes.

The public names for orchestrator layers: import them from ``cargo_gtm.download``.
"""

from .caller_columns import restore_caller_columns
from .outcomes import ERROR_COLUMN, STATUS_COLUMN, first_failure, record_label

__all__ = ["ERROR_COLUMN", "STATUS_COLUMN", "first_failure", "record_label", "restore_caller_columns"]
