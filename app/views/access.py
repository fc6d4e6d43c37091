"""Access checks shared by the page blueprints."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort
from flask_login import current_user, login_required


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
