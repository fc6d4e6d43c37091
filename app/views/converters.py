"""URL converters shared by every blueprint."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter, Map

from app.models import MAX_ID


class IdConverter(IntegerConverter):
    """``<id:name>``: a database id, 1 to ``MAX_ID``. Anything else does not match the route,
    so a 20-digit id is a 404 like any unknown id, never a database error (a 500)."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)
