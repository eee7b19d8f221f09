"""The example's background Cargo emulator: ``python -m example_project.emulator_process``.

Reads its token from ``CARGO_EMULATOR_TOKEN`` (never from its command line, where ``ps`` would
show it) and stops when ``--parent-pid`` (the code server that started it) is gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from cargo_gtm_emulator import CargoEmulator

_STARTED_BY = os.getppid()


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs. When it is the process that started this one, its exit shows at once as this one
    being reparented, even while the exited parent waits, a zombie, for its own parent to reap it (``kill(pid, 0)``
    still succeeds on a zombie)."""
    if pid == _STARTED_BY and os.getppid() != pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--parent-pid", type=int, default=None, help="stop when this process is gone")
    args = parser.parse_args(argv)
    token = os.environ.get("CARGO_EMULATOR_TOKEN")
    if not token:
        print("Set CARGO_EMULATOR_TOKEN to the token the emulator should accept.", file=sys.stderr)
        return 2
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    with CargoEmulator(token=token, speed=args.speed, seed=args.seed, port=args.port) as emu:
        print(f"Cargo emulator ready at {emu.base_url}", flush=True)
        while not stopping.wait(0.25):  # a quarter second: Ctrl-C on `dg dev` stops everything within 10 s
            if args.parent_pid is not None and not _alive(args.parent_pid):
                print(f"Process {args.parent_pid} stopped; stopping the emulator.", flush=True)
                break
    print("Cargo emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
