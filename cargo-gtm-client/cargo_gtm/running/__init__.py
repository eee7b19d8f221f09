"""Running things on Cargo: the run handles (start, poll, cancel, settle, fetch outputs), exactly-once
creates (reconcile, proof), waiting, single runs, the clock."""
