"""Observability: a request id on every request and log line, and Prometheus metrics.

Wiring only; the metrics themselves live in :mod:`app.observability.metrics`, the request id in
:mod:`app.observability.request_id`. Nothing here touches the database.
"""

from __future__ import annotations

from flask import Flask

from app.observability import metrics, request_id


def init_app(app: Flask) -> None:
    """Give every request an id (first, so every later log line has it) and record its metrics."""
    request_id.init_app(app)
    metrics.init_app(app)
