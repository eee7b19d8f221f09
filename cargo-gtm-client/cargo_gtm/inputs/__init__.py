"""What a batch or run is given: records, filters, segments, record ids, and their checks before any spend.

The public names for orchestrator layers: import them from ``cargo_gtm.inputs``.
"""

from .filter_check import check_condition, check_filter
from .records import (
    EMPTY_FILTER,
    PLAY_DATA_KINDS,
    TOOL_DATA_KINDS,
    change_data,
    check_limit,
    check_required_fields,
    chunk_records,
    date_window_filter,
    filter_data,
    json_safe,
    play_input,
    record_ids_data,
    records_data,
    segment_data,
    to_json_records,
    validate_data,
    validate_filter,
)

__all__ = ["check_condition", "check_filter", "EMPTY_FILTER", "PLAY_DATA_KINDS", "TOOL_DATA_KINDS", "change_data",
           "check_limit", "check_required_fields", "chunk_records", "date_window_filter", "filter_data", "json_safe",
           "play_input", "record_ids_data", "records_data", "segment_data", "to_json_records", "validate_data",
           "validate_filter"]
