"""From the wire to the DataFrame or Parquet: streamed bodies, CSV/JSON layouts, per-record outcomes.

The public names for orchestrator layers: import them from ``cargo_gtm.download``.
"""

from .outcomes import ERROR_COLUMN, STATUS_COLUMN

__all__ = ["ERROR_COLUMN", "STATUS_COLUMN"]
