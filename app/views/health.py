"""Probes and metrics for the platform around the app: ``/healthz``, ``/readyz``, ``/metrics``.

``/healthz`` says the process answers (a liveness probe restarts a worker that does not); it never
touches the database, so a database outage does not get every worker restarted. ``/readyz`` says
this instance can serve: the database answers and its schema is at least at this release's
migration head (a load balancer sends no traffic to an instance that would fail, e.g. during a
deploy before ``flask db upgrade``). ``/metrics`` is Prometheus's, and closed unless configured.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging

from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import NotFound

from app.extensions import db
from app.observability import metrics
from app.views.errors import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS
from config import BASE_DIR

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@functools.cache
def migrations() -> tuple[frozenset[str], frozenset[str]]:
    """(head revisions, every known revision) of the code, read once per process: they change
    only with a deploy."""
    script = ScriptDirectory(str(BASE_DIR / "migrations"))
    return frozenset(script.get_heads()), frozenset(rev.revision for rev in script.walk_revisions())


def _not_ready(code: str, status: str, **facts: object) -> Response:
    response = jsonify(status=status, code=code, **facts)
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive and answers. No database: see the module docstring."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """200 when the database answers and is migrated at least to the code's head, else 503.

    A database *behind* the code (a revision this code knows, but not its head) is not ready:
    ``flask db upgrade`` has not run yet. A database *ahead* (a revision this code does not know)
    is ready: a rolling deploy migrated it for the next release while this one still serves, which
    is why migrations must stay compatible with the release before them.
    """
    try:
        with db.engine.connect() as connection:
            migrated = inspect(connection).has_table("alembic_version")
            current = frozenset(
                connection.execute(text("SELECT version_num FROM alembic_version")).scalars() if migrated else ()
            )
    except SQLAlchemyError as exc:
        metrics.database_error(exc)
        log.warning("readyz: database unavailable: %s", type(exc).__name__)
        return _not_ready(DATABASE_UNAVAILABLE, "unavailable")
    heads, known = migrations()
    if current == heads:
        return jsonify(status="ready", migration=sorted(current))
    if current and not current & known:
        return jsonify(status="ready", migration=sorted(current), note="the database is ahead of this release")
    log.warning("readyz: database at %s, this release needs %s", sorted(current), sorted(heads))
    return _not_ready("MIGRATIONS_PENDING", "migrating", database=sorted(current), expected=sorted(heads))


def _scraper_allowed() -> bool:
    """A bearer METRICS_TOKEN or a client in METRICS_ALLOW_NETWORKS; neither configured: no one."""
    token = current_app.config["METRICS_TOKEN"]
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
        return True
    networks = current_app.config["METRICS_ALLOW_NETWORKS"]
    if not networks or not request.remote_addr:
        return False
    try:
        client = ipaddress.ip_address(request.remote_addr)
    except ValueError:
        return False
    return any(client in ipaddress.ip_network(network, strict=False) for network in networks)


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus exposition. A 404 (not 401/403) to anyone else: the endpoint does not say it exists."""
    if not current_app.config["METRICS_ENABLED"] or not _scraper_allowed():
        raise NotFound()
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)
