"""Counts in words, the same on every page, flash message and command: "1 session", "20,000 users".

One helper for all of them, so that no message says "session(s)" and every count over 999 gets
its thousands separator. The templates use the same functions as the ``plural`` and ``thousands``
filters (``app.views.formatting``).
"""

from __future__ import annotations


def thousands(count: int) -> str:
    """``20000`` is "20,000"."""
    return f"{count:,}"


def plural(count: int, singular: str, plural_form: str = "") -> str:
    """``plural(20000, "user")`` is "20,000 users", ``plural(1, "user")`` "1 user".

    ``plural_form`` is for nouns that do not take an s ("1 entry", "2 entries").
    """
    return f"{thousands(count)} {singular if count == 1 else (plural_form or singular + 's')}"
