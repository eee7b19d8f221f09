"""Watch everything the suite produces for the API token: log records, output, texts.

:class:`LeakWatch` counts what it searched (so "0 leaks" is never vacuous) and keeps a
few samples of every leak found, with the secret masked.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

WATCHED_LOGGERS = ("dagster_cargo", "cargo_gtm", "httpx", "httpcore")


@dataclass
class LeakWatch:
    """Searches texts for ``secret`` and tallies where it looked and what it found."""

    secret: str
    leaks: int = 0
    searched: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)

    def check(self, where: str, text: str) -> bool:
        """Search ``text`` (from ``where``, e.g. ``"log record"``); True when the secret is in it."""
        self.searched[where] = self.searched.get(where, 0) + 1
        if self.secret not in text:
            return False
        self.leaks += 1
        if len(self.samples) < 5:
            at = text.index(self.secret)
            snippet = text[max(0, at - 120): at + len(self.secret) + 40].replace(self.secret, "<TOKEN>")
            self.samples.append(f"{where}: …{snippet}…")
        return True


class _LeakHandler(logging.Handler):
    def __init__(self, watch: LeakWatch) -> None:
        super().__init__(level=logging.DEBUG)
        self.watch = watch
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            text += " " + repr(record.args) + " " + repr(record.msg)
        except Exception as exc:  # a record that cannot be formatted is itself worth seeing
            text = f"unformattable record {record.name}: {exc!r} {record.msg!r} {record.args!r}"
        self.watch.check("log record", text)


@contextlib.contextmanager
def watch_logs(watch: LeakWatch) -> Iterator[None]:
    """Capture ``dagster_cargo``, ``cargo_gtm``, ``httpx`` and ``httpcore`` logging at DEBUG into ``watch``."""
    handler = _LeakHandler(watch)
    saved = []
    for name in WATCHED_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


class OutputCapture:
    """stdout/stderr of the process (file descriptors 1 and 2 and ``sys.stdout``/``sys.stderr``)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._buffer = io.StringIO()
        self._saved_fds: list[int] = []
        self.text = ""

    def write_original(self, text: str) -> None:
        """Write to the real stderr while capturing (progress lines)."""
        fd = self._saved_fds[1] if self._saved_fds else 2
        os.write(fd, text.encode())

    @contextlib.contextmanager
    def capturing(self) -> Iterator[OutputCapture]:
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved_fds = [os.dup(1), os.dup(2)]
        os.dup2(self._file.fileno(), 1)
        os.dup2(self._file.fileno(), 2)
        try:
            with contextlib.redirect_stdout(self._buffer), contextlib.redirect_stderr(self._buffer):
                yield self
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(self._saved_fds[0], 1)
            os.dup2(self._saved_fds[1], 2)
            for fd in self._saved_fds:
                os.close(fd)
            self._saved_fds = []
            self._file.seek(0)
            self.text = self._file.read().decode("utf-8", "replace") + self._buffer.getvalue()
            self._file.close()
