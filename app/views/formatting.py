"""The template side of ``app.formatting``: its helpers as filters on every page."""

from __future__ import annotations

from flask import Flask

from app.formatting import plural, thousands
from app.services.session_display import exact_utc, relative_time


def init_app(app: Flask) -> None:
    """``{{ n|plural("session") }}`` ("3 sessions"), ``{{ n|thousands }}`` ("20,000"), and the
    filters behind the ``ago`` macro (a relative time with the exact one on hover)."""
    app.add_template_filter(plural)
    app.add_template_filter(thousands)
    app.add_template_filter(relative_time)
    app.add_template_filter(exact_utc)
