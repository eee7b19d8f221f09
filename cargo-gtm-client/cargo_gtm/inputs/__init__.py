"""What a batch or run is given: records, filters, segments, record ids, and their checks before any spend."""
