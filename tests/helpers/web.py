"""Browsers and sessions for the Flask test client: one place that knows the host, the cookie and
how a CSRF token reaches a browser."""

from __future__ import annotations

import re

from flask import Flask, g
from flask.testing import FlaskClient

from app.extensions import db
from app.models import User
from app.sessions import NewSession, create_session

HOST = "sso.test"
PORTAL_COOKIE = "__Host-portal_session"

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


class FreshRequestClient(FlaskClient):
    """In production every request gets a fresh app context, so a fresh ``g``. The tests keep one
    app context open (for database access), which Flask then reuses for each request: forget what
    flask-login and flask-wtf cached in ``g`` (the user, the session, the CSRF token) so that every
    request authenticates from scratch and renders its own browser's token, as it would."""

    def open(self, *args, **kwargs):
        for name in ("_login_user", "user_session", "app_session", "csrf_token"):
            g.pop(name, None)
        return super().open(*args, **kwargs)


def another_browser(app: Flask) -> FlaskClient:
    """A test client with cookies of its own, as another browser would have, speaking HTTPS to the
    portal's host (the ``client`` fixture is one of these too)."""
    browser = FreshRequestClient(app, app.response_class, use_cookies=True)
    browser.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": HOST})
    return browser


def csrf_from(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of a form on ``path``, read as a browser gets it (see ``FreshRequestClient``)."""
    page = client.get(path).get_data(as_text=True)
    match = _CSRF.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def log_in(client: FlaskClient, user: User) -> None:
    """Give ``client`` a live portal session of ``user``, as a sign-in would."""
    new = create_session(user, app_name="portal", ip="127.0.0.1", user_agent="pytest")
    db.session.commit()
    client.set_cookie(PORTAL_COOKIE, new.token, secure=True)


def app_session(user: User, app_name: str = "desktop") -> NewSession:
    """An app session (bearer token), as the desktop or mobile app holds after its sign-in."""
    new = create_session(user, app_name=app_name, ip="203.0.113.9", user_agent=f"Phone {app_name} 5.1")
    db.session.commit()
    return new


def bearer(token: str) -> dict[str, str]:
    """The header the desktop and mobile apps send with their access token."""
    return {"Authorization": f"Bearer {token}"}
