"""The user-error boundary: errors a user can cause and fix, and how they are shown.

``nasplay``'s commands turn a ``UserError`` into one line on stderr and exit status 2, with no
traceback (``nasplay.cli``). So do the library's ``ValueError``s that validate user input
(a malformed genotype, an unknown op or space): those are raised by validation code with a
message that names the field and the allowed values. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import math
from typing import Any

# The packages whose ``ValueError``s validate what a user gave them (a genotype, an op or space
# name, a block's arguments, a searcher's options): raised by our own checks, they name the field
# and the allowed values. A ValueError raised inside numpy, Keras or TensorFlow is a bug.
VALIDATING_PACKAGES = ("nasplay", "search_space", "cells", "searchers")


class UserError(Exception):
    """A problem with the user's input; the message names it and says how to fix it."""


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is bad input the user can fix: a ``UserError``, a ``FileNotFoundError``
    (a path the user gave), or a ``ValueError`` raised by the project's own validation code."""
    if isinstance(error, (UserError, FileNotFoundError)):
        return True
    if not isinstance(error, ValueError) or error.__traceback__ is None:
        return False
    tb = error.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", ""))
    return module.split(".")[0] in VALIDATING_PACKAGES


def plural(count: int, word: str, many: str | None = None) -> str:
    """``"1 epoch"``, ``"2 epochs"``: a count and its noun, agreeing (``many``: an irregular
    plural)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def first_line(error: BaseException | str) -> str:
    """One line for a message: an exception as ``Type: first line``, a text's first line."""
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(error, BaseException):
        first = lines[0] if lines else ""
        return f"{type(error).__name__}: {first}" if first else type(error).__name__
    return lines[0] if lines else ""


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) folded to one space."""
    return " ".join(str(text).split())


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``, else a ``UserError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_number(name: str, value: Any, positive: bool = True) -> float:
    """``value`` if it is a finite real number, > 0 (``positive``) or >= 0, else a
    ``UserError``."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and math.isfinite(value) and (value > 0 if positive else value >= 0))
    if not ok:
        raise UserError(f"{name} must be a number {'> 0' if positive else '>= 0'}, got {value!r}")
    return value
