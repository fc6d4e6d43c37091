"""Refusal pages and handlers: a clear page with a stable code, an audit event, never a 500."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app import audit
from app.errors import SignInError
from app.extensions import db
from app.services import rate_limits

log = logging.getLogger(__name__)


def refuse(
    err: SignInError,
    *,
    action: str,
    account_id: int | None = None,
    connection_id: int | None = None,
    template: str = "errors/signin.html",
    **page: object,
) -> tuple[str, int]:
    """Roll back whatever the failed attempt started, audit the refusal, show the error page."""
    db.session.rollback()
    record_refusal(err, action=action, account_id=account_id, connection_id=connection_id)
    db.session.commit()
    return render_template(template, code=err.code, message=err.message, **page), err.status


def record_refusal(
    err: SignInError, *, action: str, account_id: int | None = None, connection_id: int | None = None
) -> None:
    """Add the audit event of a refused sign-in (code, reason, context). The caller commits.

    Identical anonymous refusals (same action, code, address, email, account and connection)
    within a minute fold into the minute's first event, whose ``details.count`` says how many
    there were: a flood writes a row a minute, not one per request. The request is marked
    refused, so that doors counting refusals keep its rate-limit place.
    """
    g.refusal_recorded = True
    context = dict(err.context)
    account_id = account_id or context.pop("account_id", None)
    connection_id = connection_id or context.pop("connection_id", None)
    email = context.pop("email", None)
    context.pop("account_id", None)
    context.pop("connection_id", None)
    if not current_user.is_authenticated:
        signature = "|".join(
            str(part) for part in (action, err.code, request.remote_addr, email, account_id, connection_id)
        )
        try:
            count, since = rate_limits.count_repeat(signature)
        except rate_limits.StoreUnavailable:
            count, since = 1, None  # no fold: the event is written in full
        if (
            since is not None
            and count > 1
            and audit.fold_repeat(
                action,
                error_code=err.code,
                subject_email=email,
                account_id=account_id,
                connection_id=connection_id,
                since=since,
                count=count,
            )
        ):
            return
    audit.record(
        action,
        outcome="failure",
        error_code=err.code,
        account_id=account_id,
        connection_id=connection_id,
        subject_email=email,
        details={
            "reason": err.detail[:2000],
            "user_agent": (request.user_agent.string or "")[:300],
            **{key: str(value)[:300] for key, value in context.items()},
        },
    )


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def handle_http_error(exc: HTTPException) -> tuple[str | Response, int]:
    """Framework errors (404, 405, 413, ...) as our page, or JSON under /api/."""
    status = exc.code or 500
    code = f"HTTP_{status}"
    if status == 413:
        limit = request.max_content_length or 0
        code, exc.description = "REQUEST_TOO_LARGE", f"Requests here may carry at most {limit // 1024:,} KB."
    if _wants_json():
        return jsonify(error=code, message=exc.description), status
    return render_template(
        "errors/http.html", status=status, code=code, title=exc.name, message=exc.description
    ), status


def handle_csrf_error(exc: CSRFError) -> tuple[str, int]:
    """A missing or stale CSRF token: say so plainly; nothing was changed."""
    return render_template(
        "errors/http.html",
        status=400,
        code="CSRF_FAILED",
        title="This form has expired",
        message="Nothing was changed. Go back, reload the page and submit the form again.",
    ), 400


def handle_unexpected(exc: Exception) -> tuple[str | Response, int]:
    """Last resort: log it, roll back, answer 500 without details."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    if _wants_json():
        return jsonify(error="INTERNAL_ERROR", message="Something went wrong on our side."), 500
    return render_template(
        "errors/http.html",
        status=500,
        code="INTERNAL_ERROR",
        title="Something went wrong",
        message="Something went wrong on our side. Please try again.",
    ), 500


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
