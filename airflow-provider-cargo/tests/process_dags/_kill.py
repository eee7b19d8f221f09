"""Fault injection for the real-process tests: the first try of a task kills its own process with SIGKILL
(kill -9: nothing runs after it, no handler, no cancel) right after Cargo created its batch, before or just
after the batch's uuid is saved in the task state store. A marker file makes it fire once per DAG."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any


def kill_once_around_the_save(dag_id: str, where: str) -> None:
    from cargo_provider.ledger import TaskStateLedger

    original = TaskStateLedger.created
    marker = Path(os.environ["CARGO_TEST_MARKERS"]) / dag_id

    def created(self: Any, key: Any, batch: Any) -> None:
        if marker.exists():
            return original(self, key, batch)
        marker.write_text(batch.uuid)
        if where == "after-save":
            original(self, key, batch)
        os.kill(os.getpid(), signal.SIGKILL)

    TaskStateLedger.created = created  # type: ignore[method-assign]
