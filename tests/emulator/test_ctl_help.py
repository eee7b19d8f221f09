"""Issue 21 item 3: every ``cargo-emulator ctl`` subcommand, and every argument of each, says what it does."""

import argparse

from cargo_gtm_emulator.control import build_parser


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_every_ctl_subcommand_has_a_description():
    sub = _subparsers(build_parser())
    described = {a.dest: a.help for a in sub._choices_actions}
    assert len(sub.choices) >= 13
    missing = sorted(name for name in sub.choices if not described.get(name))
    assert missing == []


def test_every_ctl_argument_has_help():
    sub = _subparsers(build_parser())
    missing = [f"{name} {action.dest}" for name, parser in sub.choices.items() for action in parser._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert missing == []
