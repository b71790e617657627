"""Errors a user can cause and fix (bad path, bad budget, malformed genotype).

The CLI turns a ``UserError`` into one line on stderr and exit status 2, with no traceback;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input; the message names it and says how to fix it."""
