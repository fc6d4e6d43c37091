"""Refusal pages and handlers: a clear page with a stable code, an audit event, never a 500."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from app import audit
from app.errors import SignInError
from app.extensions import db
from app.observability import metrics
from app.services import rate_limits
from app.views.hosts import address_hint

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
    page.setdefault("address_hint", address_hint(err.code))
    return render_template(template, code=err.code, message=err.message, **page), err.status


def record_refusal(
    err: SignInError, *, action: str, account_id: int | None = None, connection_id: int | None = None
) -> None:
    """Add the audit event of a refused sign-in (code, reason, context). The caller commits.

    Identical anonymous refusals (same action, code, address, email, account, connection and reason)
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
            str(part) for part in (action, err.code, request.remote_addr, email, account_id, connection_id, err.detail)
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
                reason=err.detail[:2000],
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
    return request.path.startswith(("/api/", "/scim/"))


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
    discard_session()
    if _wants_json():
        return jsonify(error="INTERNAL_ERROR", message="Something went wrong on our side."), 500
    return render_template(
        "errors/http.html",
        status=500,
        code="INTERNAL_ERROR",
        title="Something went wrong",
        message="Something went wrong on our side. Please try again.",
    ), 500


#: Seconds a client is asked to wait after a 503: a PostgreSQL restart or fail-over takes a few.
RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"


def discard_session() -> None:
    """Roll back the request's database session without ever raising.

    On a dead connection the rollback itself can fail; the pool then invalidates the connection
    (the pool replaces it on next checkout), so closing the session is all that is left.
    """
    try:
        db.session.rollback()
    except SQLAlchemyError as exc:
        log.debug("rollback after a database error failed too: %s", type(exc).__name__)
        try:
            db.session.close()
        except SQLAlchemyError:
            log.debug("closing the session after a database error failed too")


def database_unavailable_response() -> Response:
    """503 with Retry-After and the stable code: JSON for the API and SCIM, a page for browsers.

    The page does not extend the base layout, which reads ``current_user`` and so the database.
    """
    message = "The service is briefly unavailable. Nothing was lost; please try again in a few seconds."
    if _wants_json():
        response = jsonify(error=DATABASE_UNAVAILABLE, message=message)
    else:
        # Straight from the Jinja environment: render_template would run flask-login's context
        # processor, which loads current_user, i.e. queries the database that is down.
        page = current_app.jinja_env.get_template("errors/unavailable.html")
        response = Response(page.render(code=DATABASE_UNAVAILABLE, message=message), mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def handle_database_unavailable(exc: SQLAlchemyError) -> Response:
    """The database cannot be reached (restart, fail-over, network cut): a 503, one log line.

    No traceback: an outage makes every request fail the same way, and the line says which.
    """
    discard_session()
    metrics.database_error(exc)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    log.warning(
        "database unavailable, answered 503 to %s %s: %s: %s",
        request.method,
        request.path,
        type(exc).__name__,
        reason[0][:200] if reason else "",
    )
    return database_unavailable_response()


def close_session_quietly(_exc: BaseException | None) -> None:
    """End the request's database session without letting a dead connection turn it into a 500.

    Flask-SQLAlchemy's own teardown closes the session too, which rolls back; when the database
    went away after the response was built, that rollback raises and the WSGI server answers 500
    in place of the finished response. Whatever was committed is safe; nothing else mattered.
    Runs before Flask-SQLAlchemy's (teardown functions run in reverse order of registration), which
    then finds nothing left to close.
    """
    try:
        db.session.remove()
    except SQLAlchemyError as exc:
        metrics.database_error(exc)
        log.info("database connection lost while closing the request's session: %s", type(exc).__name__)
        try:
            db.session.remove()
        except SQLAlchemyError:
            db.session.registry.clear()


def handle_dbapi_error(exc: DBAPIError) -> tuple[str | Response, int] | Response:
    """A driver error that dropped its connection is an outage; any other is a bug (500)."""
    if exc.connection_invalidated:
        return handle_database_unavailable(exc)
    return handle_unexpected(exc)


def refuse_nul_in_query() -> tuple[str | Response, int] | None:
    """Refuse a query-string field carrying NUL before any view reads it.

    No text we keep or look up can hold one, and PostgreSQL cannot even compare it: a NUL reaching
    a filter or a lookup is a driver error (a 500) on PostgreSQL and a silent mismatch on SQLite.
    One check here covers every route's query string, present and future. Bodies are left to the
    views: each sets its own size limit before parsing, and their fields are validated there. SCIM
    is left out too: its clients expect SCIM's own error body, and its filter parser refuses a NUL
    as an invalid filter.
    """
    if request.path.startswith("/scim/"):
        return None
    fields = request.args.items(multi=True)
    named = sorted({key.replace("\x00", "\ufffd") for key, value in fields if "\x00" in key or "\x00" in value})
    if not named:
        return None
    err = SignInError("REQUEST_NUL_CHARACTER", f"NUL in {', '.join(named)[:200]}")
    discard_session()
    record_refusal(err, action="request.refused")
    db.session.commit()
    if _wants_json():
        return jsonify(error=err.code, message=err.message), err.status
    return render_template(
        "errors/http.html",
        status=err.status,
        code=err.code,
        title="This request could not be read",
        message=err.message,
    ), err.status


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul_in_query)
    # Flask picks the handler of the closest class, so these win over ``Exception``.
    for outage in (OperationalError, InterfaceError, DisconnectionError):
        app.register_error_handler(outage, handle_database_unavailable)
    app.register_error_handler(DBAPIError, handle_dbapi_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
    app.teardown_appcontext(close_session_quietly)
