"""The ``nasplay`` command: ``dispatch`` (the entry point, ``--verbose``, the user-error boundary)
and one module per subcommand (``search``, ``inspect``, ``export``, ``train``), each turning
flags into settings for the layers below."""

from nasplay.cli.dispatch import main

__all__ = ["main"]
