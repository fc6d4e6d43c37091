"""Prometheus metrics: sign-ins and refusals, session checks, request latency, database errors.

Under gunicorn every worker is its own process, so ``prometheus_client`` runs in multiprocess
mode: ``PROMETHEUS_MULTIPROC_DIR`` (set by gunicorn.conf.py before anything imports this module)
holds one file per worker, ``/metrics`` sums them, and gunicorn's ``child_exit`` hook marks a dead
worker's files. Without that variable (tests, ``flask run``) the process's own registry is served.

Sign-ins are counted from the audit trail (every sign-in and every refusal already writes an
``signin.*`` event), and only once the transaction that holds the event commits: an attempt the
database never recorded is not counted either.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, Request, Response, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import event
from sqlalchemy.orm import Session

SIGNINS = Counter(
    "sso_signins",
    "Committed sign-in audit events (signin.sso_start, signin.sso, signin.password, signin.app_token), by action, "
    "outcome, refusal code and IdP connection.",
    ["action", "outcome", "code", "connection"],
)
SESSION_CHECKS = Counter(
    "sso_session_checks",
    "Requests that presented a session (bearer token or cookie), by credential and whether it was live.",
    ["credential", "result"],
)
REQUEST_LATENCY = Histogram(
    "sso_http_request_duration_seconds",
    "Time from the first before-request hook to the response, by endpoint and method.",
    ["endpoint", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS = Counter("sso_http_requests", "Responses by endpoint, method and status.", ["endpoint", "method", "status"])
DATABASE_ERRORS = Counter(
    "sso_database_errors", "Requests that failed because the database was unreachable, by error class.", ["kind"]
)

_PENDING_KEY = "metrics_signins"


def audit_recorded(
    action: str, outcome: str, error_code: str | None, connection_id: int | None, session: Session
) -> None:
    """Note a sign-in audit event; it is counted when its transaction commits (see module doc)."""
    if action.startswith("signin."):
        pending = session.info.setdefault(_PENDING_KEY, [])
        pending.append((action, outcome, error_code or "", str(connection_id or "")))


def _count_committed(session: Session) -> None:
    for labels in session.info.pop(_PENDING_KEY, ()):
        SIGNINS.labels(*labels).inc()


def _forget_rolled_back(session: Session, previous_transaction: object) -> None:
    if getattr(previous_transaction, "parent", None) is None:
        session.info.pop(_PENDING_KEY, None)


def database_error(exc: BaseException) -> None:
    DATABASE_ERRORS.labels(type(exc).__name__).inc()


def render() -> tuple[bytes, str]:
    """The exposition text: every worker's values in multiprocess mode, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _child(metric: Counter | Histogram, *labels: str) -> Any:
    """``metric.labels(*labels)``, cached: the label sets are few and this runs on every request."""
    key = (metric, labels)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*labels)
    return child


_CHILDREN: dict[tuple[object, tuple[str, ...]], Any] = {}


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not six
    endpoint = req.endpoint or "unmatched"
    started = g.get("metrics_started")
    if started is not None:
        _child(REQUEST_LATENCY, endpoint, req.method).observe(time.perf_counter() - started)
    _child(REQUESTS, endpoint, req.method, str(response.status_code)).inc()
    user = g.get("_login_user")
    if user is not None:
        _observe_session_check(req, user)
    return response


def _observe_session_check(req: Request, user: Any) -> None:
    """Count a session check: flask-login looked up the credential this request presented."""
    if "Authorization" in req.headers and req.path.startswith("/api/"):  # bearer tokens count only there
        credential = "bearer"
    elif any(name.endswith("portal_session") for name in req.cookies):
        credential = "cookie"
    else:
        return
    _child(SESSION_CHECKS, credential, "live" if user.is_authenticated else "refused").inc()


def init_app(app: Flask) -> None:
    if not event.contains(Session, "after_commit", _count_committed):
        event.listen(Session, "after_commit", _count_committed)
        event.listen(Session, "after_soft_rollback", _forget_rolled_back)
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_observe)
