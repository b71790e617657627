"""The ``nasplay`` command: search, inspect, export, train.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
this file only dispatches, imported lazily so ``nasplay --help`` does not pay for TensorFlow.
Errors the user can fix (``UserError``, ``ValueError`` from validation) become one line on stderr
and exit status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# TensorFlow's C++ start-up chatter (oneDNN, CUDA stubs) is noise to a CLI user; real errors stay.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from nasplay.errors import UserError

# subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "search": ("nasplay.search_cli", "run a cell search on Ray Tune"),
    "inspect": ("nasplay.report", "leaderboard, best cell diagrams and progress plots of runs"),
    "export": ("nasplay.export", "save the best (or a chosen) cell's network as a .keras file"),
    "train": ("nasplay.train_cli", "train a published or found cell (proxy or final training)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; make its message one line like ours."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nasplay", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_module=module)
    return parser


def _version() -> str:
    from nasplay import __version__

    return f"nasplay {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except (UserError, ValueError, FileNotFoundError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"nasplay {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nasplay {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
