"""``DataError``: a data source that cannot be read, or a subset or batch it cannot supply.

A module of its own so that the modules that raise it (``nasplay.data`` for sources and subsets,
``nasplay.data.decode`` for image files, ``nasplay.data.pipeline`` for batches) need not import each
other; ``nasplay.data.DataError`` is the name to use.
"""

from __future__ import annotations

from nasplay.errors import UserError


class DataError(UserError, ValueError):
    """A data source that cannot be read or a subset it cannot supply; the message is one line."""
