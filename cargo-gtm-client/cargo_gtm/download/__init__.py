"""From the wire to the DataFrame or Parquet: streamed bodies, CSV/JSON layouts, per-record outcomes."""
