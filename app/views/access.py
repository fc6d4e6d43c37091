"""Access checks shared by the page blueprints."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, render_template, request
from flask_login import current_user, login_required

from app.extensions import db
from app.services.setup_wizard import ReadOnlyAccessError, record_refused_change

#: Methods that only read: every other method changes something and needs the right to change.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def app_access_required(app_name: str) -> Callable:
    """Require a live session whose user (still) holds a role for ``app_name``.

    Roles are re-checked on every request: removing a role takes effect at once.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if app_name not in current_user.apps:
                abort(403, "Your user does not have a role for this app (NO_ROLE_FOR_APP).")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def role_required(*roles: str) -> Callable:
    """Require a portal session whose user holds one of ``roles``."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not set(roles) & set(current_user.role_list):
                abort(403, f"This page needs the role {' or '.join(roles)}.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def refuse_read_only(err: ReadOnlyAccessError) -> tuple[str, int]:
    """Answer a refused change (``STAFF_READ_ONLY``): roll back, audit it, 403 with the code.

    Registered as the error handler of the blueprints whose pages staff may read but not change.
    """
    db.session.rollback()
    record_refused_change(current_user, err, method=request.method, path=request.path, endpoint=request.endpoint or "")
    db.session.commit()
    return render_template(
        "errors/http.html",
        status=err.status,
        code=err.code,
        title="You can read this, not change it",
        message=err.message,
    ), err.status
