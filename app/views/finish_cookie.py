"""The cookie that binds a verified SAML sign-in to the browser that will finish it.

The ACS answers the IdP's cross-site POST with a 303 to ``/sso/finish`` and sets this cookie on
that answer. SameSite=Lax is enough and is what we want: browsers store a Lax cookie set on a
top-level navigation, and send it on the same-site GET that follows the redirect, never on a
third party's subrequest. A finishing link passed to another browser finds no cookie there.
"""

from __future__ import annotations

from flask import current_app
from werkzeug.wrappers import Response

from app.services.signin import SIGN_IN_RESULT_SECONDS


def _secure() -> bool:
    return bool(current_app.config["BASE_URL"].startswith("https://"))


def finish_cookie_name() -> str:
    """``__Host-`` prefixed on https: pinned to this host and path /."""
    return "__Host-sso_finish" if _secure() else "sso_finish"


def set_finish_cookie(response: Response, secret: str) -> None:
    response.set_cookie(
        finish_cookie_name(),
        secret,
        max_age=SIGN_IN_RESULT_SECONDS,
        httponly=True,
        secure=_secure(),
        samesite="Lax",
        path="/",
    )


def clear_finish_cookie(response: Response) -> None:
    response.delete_cookie(finish_cookie_name(), path="/", secure=_secure(), httponly=True, samesite="Lax")
