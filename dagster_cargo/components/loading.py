"""When loading definitions may call Cargo to refresh the workspace snapshot.

Dagster refreshes a state-backed component's snapshot on load whenever ``DAGSTER_IS_DEV_CLI`` is set
(``refresh_if_dev``). ``dg`` sets that variable for *every* subcommand, so ``dg check defs`` and
``dg list defs`` would call Cargo (3 calls) despite a stored snapshot, and fail when Cargo is unreachable.
Here the snapshot is refreshed on load only by the code server of ``dg dev`` / ``dagster dev``:

* ``dg check defs`` (and ``dagster definitions validate``) set ``DAGSTER_IS_DEFS_VALIDATION_CLI``: never;
* ``dg list defs`` and other ``dg`` subcommands load definitions inside the ``dg`` process itself: never;
* ``dg utils refresh-defs-state`` refreshes explicitly (it does not go through this);
* the code server that ``dg dev`` / ``dagster dev`` starts is a child process with ``DAGSTER_IS_DEV_CLI``: yes
  (and it falls back to the stored snapshot when Cargo cannot be reached).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["refreshes_on_load"]


def _in_dg_cli_process() -> bool:
    """Whether this process is the ``dg`` command itself (not a server it started)."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    return Path(argv0).name in ("dg", "dg.exe") or "dagster_dg_cli" in argv0


def refreshes_on_load() -> bool:
    """Whether a definitions load in this process may refresh the Cargo snapshot (see the module doc)."""
    if not os.environ.get("DAGSTER_IS_DEV_CLI"):
        return False
    if os.environ.get("DAGSTER_IS_DEFS_VALIDATION_CLI"):
        return False
    return not _in_dg_cli_process()
