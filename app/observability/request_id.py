"""The request id: taken from ``X-Request-ID`` when a proxy sent a sane one, generated otherwise,
echoed in the response and added to every log record (``%(request_id)s``).

A proxy's id lets one request be followed from the TLS terminator through gunicorn's access log
to the application's log lines. The header comes from the client side, so it is only accepted
when it is short and made of harmless characters: anything else would let a client forge log
lines or fill the log.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:@+=-]{1,128}")
#: What log records made outside a request carry.
NO_REQUEST = "-"


def sanitize(value: str | None) -> str:
    """The incoming id when it is sane, else a fresh random one (never an echo of garbage)."""
    if value and _SANE.fullmatch(value):
        return value
    return uuid.uuid4().hex


def current_request_id() -> str:
    """This request's id, or ``-`` outside a request (start-up, CLI commands)."""
    if has_request_context():
        return g.get("request_id", NO_REQUEST)
    return NO_REQUEST


def install_log_record_factory() -> None:
    """Add ``request_id`` to every log record, whatever logger or handler made it.

    A record factory rather than a handler filter: gunicorn's and the app's handlers both format
    with ``%(request_id)s``, and a record from any library must never fail to format.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = current_request_id()
        return record

    factory.adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _assign() -> None:
    g.request_id = sanitize(request.headers.get(HEADER))


def _echo(response: Response) -> Response:
    response.headers[HEADER] = g.get("request_id") or sanitize(None)
    return response


def init_app(app: Flask) -> None:
    install_log_record_factory()
    # First of all before-request functions, so that CSRF refusals and the like log with the id.
    app.before_request_funcs.setdefault(None, []).insert(0, _assign)
    app.after_request(_echo)
