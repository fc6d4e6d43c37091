"""The flask-login glue: every request finds its server-side session by cookie or bearer token.

Bearer tokens (the desktop and mobile apps') count only under ``/api/``; every page needs the
portal's cookie session, so that an app token can never open the admin or setup pages.
"""

from __future__ import annotations

import secrets

from flask import Flask, Request, current_app, g, jsonify, redirect, request, url_for
from flask import session as flask_session
from flask_login import current_user
from werkzeug.wrappers import Response

from app.extensions import login_manager
from app.models import UserSession
from app.sessions import (
    LiveSession,
    SessionUser,
    find_live_app_session,
    find_live_session,
    why_session_ended,
)

APP_TOKEN_APPS = ("desktop", "mobile")
#: The only paths where an ``Authorization: Bearer`` header authenticates.
API_PREFIX = "/api/"


def _secure() -> bool:
    return current_app.config["BASE_URL"].startswith("https://")


def session_cookie_name() -> str:
    """``__Host-`` prefixed on https, so that the cookie is pinned to this host and path /."""
    return "__Host-portal_session" if _secure() else "portal_session"


def binding_cookie_name() -> str:
    return "__Host-sso_binding" if _secure() else "sso_binding"


def set_session_cookie(response: Response, token: str) -> None:
    """Store the session token in the browser: HttpOnly, SameSite=Lax, Secure on https.

    No Max-Age: the server decides when the session ends (sliding 21 days), and a
    browser-session cookie is not a remember-me cookie. Every sign-in comes here, so this is also
    where the CSRF secret is renewed: a token read before the sign-in is worthless after it.
    """
    renew_csrf_secret()
    response.set_cookie(session_cookie_name(), token, httponly=True, secure=_secure(), samesite="Lax", path="/")


def clear_session_cookie(response: Response) -> None:
    """Forget the session token in the browser (sign-out), and renew the CSRF secret."""
    renew_csrf_secret()
    response.delete_cookie(session_cookie_name(), path="/", secure=_secure(), httponly=True, samesite="Lax")


def renew_csrf_secret() -> None:
    """Drop Flask-WTF's CSRF secret (kept in the Flask session cookie) so the next form gets a new one.

    A sign-in or sign-out changes who the browser is: tokens issued before (perhaps planted by
    someone who shared the browser, or read from an old page) must not be accepted after it.
    Only that key goes: flashed messages in the same cookie survive. Marked modified even when the
    request brought no Flask session (a cross-site POST does not carry the SameSite=Lax cookie), so
    that Flask then deletes the browser's cookie, old secret included.
    """
    field_name = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    flask_session.pop(field_name, None)
    flask_session.modified = True
    g.pop(field_name, None)


def browser_binding() -> tuple[str, bool]:
    """This browser's binding value and whether it is new (then ``set_binding_cookie`` it)."""
    value = request.cookies.get(binding_cookie_name())
    if value and 20 <= len(value) <= 100 and value.isascii():
        return value, False
    return secrets.token_urlsafe(32), True


def set_binding_cookie(response: Response, value: str) -> None:
    """Set the browser-binding cookie that ties a SAML response to the browser that asked for it.

    The cookie must come back on the IdP's cross-site POST to the ACS, so it is SameSite=None
    (which browsers accept only with Secure, i.e. on https); on plain http (development) it is
    Lax, which works for the same-site demo IdP.
    """
    response.set_cookie(
        binding_cookie_name(),
        value,
        httponly=True,
        secure=_secure(),
        samesite="None" if _secure() else "Lax",
        path="/",
        max_age=3600,
    )


def bearer_token(req: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is none or it is garbage."""
    header = req.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 200 or not token.isascii():
        return None
    return token.strip()


def current_live_session() -> LiveSession | None:
    """The live session of this request (portal cookie or app bearer token) as plain values, if any."""
    if not current_user.is_authenticated:
        return None
    return getattr(g, "app_session", None) or getattr(g, "user_session", None)


def current_session() -> UserSession | None:
    """The row of this request's live portal session, if any, for the pages that show or end it
    (loaded on first use; the lookup itself builds no ORM objects)."""
    if not current_user.is_authenticated:
        return None
    live: LiveSession | None = getattr(g, "user_session", None)
    return live.record if live is not None else None


def current_app_session() -> LiveSession | None:
    """The desktop or mobile session of this API request made with a bearer token, if any."""
    if not current_user.is_authenticated:
        return None
    return getattr(g, "app_session", None)


def load_user_from_request(req: Request) -> SessionUser | None:
    """flask-login request loader: bearer tokens are app sessions (API only), cookies are portal sessions.

    Outside ``/api/`` an Authorization header is ignored: the page is served as to a browser
    without a session (the sign-in page), whatever token the header carries. Roles are checked on
    every request: a user who lost the role for the session's app is out at once.
    """
    if "Authorization" in req.headers and req.path.startswith(API_PREFIX):
        app_session = find_live_app_session(bearer_token(req), APP_TOKEN_APPS)
        if app_session is None or app_session.app not in app_session.user.apps:
            return None
        g.app_session = app_session
        return app_session.user
    session = find_live_session(req.cookies.get(session_cookie_name()), app_name="portal")
    if session is None or session.app not in session.user.apps:
        return None
    g.user_session = session
    return session.user


def unauthorized() -> Response:
    """Pages send people to the sign-in page; the API answers 401."""
    if request.path.startswith("/api/"):
        return api_unauthorized()
    ended = why_session_ended(request.cookies.get(session_cookie_name()))
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?"), ended=ended))


def api_unauthorized() -> Response:
    """401 for the API, with an RFC 6750 challenge that tells an app what went wrong.

    No credentials: no error code (RFC 6750 3.1). A malformed Authorization header:
    ``invalid_request``. A token that is unknown, expired or revoked: ``invalid_token``, so the
    app knows to sign in again.
    """
    if "Authorization" not in request.headers:
        error, code, message = "unauthorized", None, "Sign in first: no live session."
        challenge = 'Bearer realm="api"'
    elif bearer_token(request) is None:
        error, code = "invalid_request", "AUTH_HEADER_INVALID"
        message = "The Authorization header must be 'Bearer <token>'."
        challenge = 'Bearer realm="api", error="invalid_request"'
    else:
        error, code = "invalid_token", "TOKEN_INVALID"
        message = "The access token is unknown, expired or revoked. Sign in again."
        challenge = 'Bearer realm="api", error="invalid_token"'
    body = {"error": error, "message": message} | ({"code": code} if code else {})
    response = jsonify(body)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = challenge
    return response


def init_app(app: Flask) -> None:
    """Bind flask-login to our server-side sessions (no Flask-session user id, no remember me)."""
    login_manager.init_app(app)
    login_manager.session_protection = None
    login_manager.request_loader(load_user_from_request)
    login_manager.unauthorized_handler(unauthorized)
    app.before_request(_look_up_session_first)


def _look_up_session_first() -> None:
    """Look this request's session up before the view writes anything.

    flask-login loads lazily, on the first touch of ``current_user``; done here instead, the
    session's slide (its own short transaction) never waits on locks that the request itself
    took. Static files need no session (flask-login's request loader still answers if asked).
    """
    if request.endpoint != "static":
        # What flask-login's lazy ``current_user`` would do, without its machinery (the Flask
        # session's user id, remember-me cookies, signals: none of which this app uses).
        g._login_user = load_user_from_request(request) or login_manager.anonymous_user()
