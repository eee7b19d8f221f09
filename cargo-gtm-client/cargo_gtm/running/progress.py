"""A progress display for waiting on batches from a terminal or a notebook.

Example:
    >>> import io
    >>> from cargo_gtm.models import Batch
    >>> out = io.StringIO()
    >>> bar = ProgressBar(stream=out, interactive=False)
    >>> b = Batch.model_validate({"uuid": "b1", "workflowUuid": "w", "status": "running",
    ...                          "runsCount": 4, "executedRunsCount": 1, "creditsUsedCount": 2})
    >>> bar(BatchProgress(batch=b, elapsed=3.0, polls=1))
    >>> print(out.getvalue().strip())
    b1 [#######.....................]  25% 1/4 runs, 0 failed, 2 provider credits, running, 3s
"""

from __future__ import annotations

import sys
from typing import IO

from .waiting import BatchProgress

__all__ = ["ProgressBar"]


class ProgressBar:
    """An ``on_progress`` callback drawing one bar per batch.

    On a terminal (or in a Jupyter kernel) the bar is redrawn in place; elsewhere (logs, CI)
    a line is printed only when the status changes or progress moves by 10 points.
    """

    def __init__(self, stream: IO[str] | None = None, width: int = 28, interactive: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        if interactive is None:
            interactive = bool(getattr(self.stream, "isatty", lambda: False)()) or "ipykernel" in sys.modules
        self.interactive = interactive
        self._last: dict[str, tuple[str, int]] = {}

    def __call__(self, progress: BatchProgress) -> None:
        b = progress.batch
        fraction = progress.fraction or 0.0
        filled = int(round(fraction * self.width))
        status = b.status.value if b.status.is_known else f"{b.status.value}?"
        line = (
            f"{b.uuid} [{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:3.0f}% "
            f"{b.executed_runs_count}/{b.runs_count} runs, {b.failed_runs_count} failed, "
            f"{b.credits_used_count:g} provider credits, {status}, {progress.elapsed:.0f}s"
        )
        if self.interactive:
            end = "\n" if b.is_terminal else ""
            self.stream.write(f"\r{line}{end}")
            self.stream.flush()
            return
        decile = int(fraction * 10)
        if self._last.get(b.uuid) != (status, decile) or b.is_terminal:
            self.stream.write(line + "\n")
            self._last[b.uuid] = (status, decile)
