"""Example Dagster project for dagster-cargo.

* ``python -m example_project`` materializes every asset once against an in-process
  Cargo emulator and prints the enriched DataFrames and the credits each asset used.
* ``dg dev -m example_project.definitions`` serves the same assets in the UI; without
  ``CARGO_API_TOKEN`` it starts (or reuses) an emulator process on ``CARGO_EMULATOR_PORT``.
"""
