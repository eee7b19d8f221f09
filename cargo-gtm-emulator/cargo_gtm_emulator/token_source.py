"""Where the emulator's CLIs read its token: an environment variable or a file, never the command line
(where ``ps`` shows it to every local user)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

#: the environment variable the token is read from by default
TOKEN_ENV = "CARGO_EMULATOR_TOKEN"
def add_token_options(parser: argparse.ArgumentParser) -> None:
    """``--token-env NAME`` / ``--token-file PATH``: where the emulator's token is read from."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--token-env", default=TOKEN_ENV, metavar="NAME",
                       help=f"environment variable holding the token (default: {TOKEN_ENV})")
    group.add_argument("--token-file", default=None, metavar="PATH",
                       help="file whose first line is the token (instead of --token-env)")


def read_token(args: argparse.Namespace) -> str | None:
    """The token from ``--token-file`` or ``--token-env``; None, with a message saying what to set, when absent."""
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            print(f"Cannot read the token file {args.token_file}: {exc.strerror}", file=sys.stderr)
            return None
        if not token:
            print(f"The token file {args.token_file} is empty.", file=sys.stderr)
        return token or None
    token = os.environ.get(args.token_env, "").strip()
    if not token:
        print(f"Set {args.token_env} to the token the emulator should accept (or pass --token-file PATH).",
              file=sys.stderr)
        return None
    return token
