"""The ``nasplay`` command: search, inspect, export, train.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
this file only dispatches, imported lazily so ``nasplay --help`` does not pay for TensorFlow.
The user-error boundary is here, once (``nasplay.errors.is_user_error``): bad input becomes one
line on stderr and exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from nasplay.errors import is_user_error, one_line

# subcommand -> (module, one-line help, an example)
SUBCOMMANDS = {
    "search": ("nasplay.cli.search", "run a cell search on Ray Tune",
               "nasplay search --searcher evolution --space nasnet --trials 20 --run-dir runs/evo "
               "--data cifar10"),
    "inspect": ("nasplay.cli.inspect", "leaderboard, best cell diagrams and progress plots of runs",
                "nasplay inspect runs/evo --top 10"),
    "export": ("nasplay.cli.export", "save the best (or a chosen) cell's network as a .keras file",
               "nasplay export runs/evo"),
    "train": ("nasplay.cli.train", "train a published or found cell (proxy or final training)",
              "nasplay train --genotype runs/evo --out runs/evo-train"),
}


# commands that build Keras models in this process: their framework starts quietly up front
KERAS_COMMANDS = ("export", "train")


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; make its message one line like ours."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def overview() -> str:
    """What ``nasplay`` alone prints: the commands, one example each."""
    lines = ["usage: nasplay COMMAND [options]   (nasplay COMMAND --help for its options)", "",
             "commands:"]
    for name, (_, help_text, example) in SUBCOMMANDS.items():
        lines += [f"  {name:<8} {help_text}", f"           e.g. {example}"]
    return "\n".join(lines)


def plain(text: str) -> str:
    """A docstring's text as help shows it: no reStructuredText double backticks."""
    return text.replace("``", "")


def build_parser() -> argparse.ArgumentParser:
    # RawDescriptionHelpFormatter: argparse leaves the description and the examples as written,
    # so an example stays whole on its own line (re-wrapped, it broke mid-flag: "--run-" / "dir")
    parser = _Parser(prog="nasplay", description=plain(__doc__.splitlines()[0]),
                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=overview())
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name, (module_name, help_text, example) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text,
                                    formatter_class=argparse.RawDescriptionHelpFormatter,
                                    epilog=f"example:\n  {example}")
        module = importlib.import_module(module_name)
        module.add_arguments(sub_parser)
        sub_parser.add_argument("--verbose", action="store_true",
                                help="show the frameworks' start-up logs (TensorFlow, Ray)")
        sub_parser.set_defaults(_module=module)
    return parser


def _version() -> str:
    from nasplay import __version__

    return f"nasplay {__version__}"


def _quiet_start() -> None:
    """TensorFlow's C++ start-up lines and Ray's warnings off (``nasplay.runtime.quiet``); the
    environment carries it to the Ray workers this process starts."""
    from nasplay.runtime import quiet

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ[quiet.QUIET_ENV] = "1"
    quiet.quiet_imports()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(overview())
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        print(overview())
        return 0
    if not args.verbose:
        _quiet_start()
    try:
        if hasattr(args._module, "prepare"):   # what must precede Keras (train: the backend)
            args._module.prepare(args)
        if args.command in KERAS_COMMANDS:
            from nasplay.runtime import quiet

            quiet.start_keras(quiet.find_devices)
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"nasplay {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not is_user_error(exc):
            raise
        message = one_line(exc) or type(exc).__name__
        print(f"nasplay {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
