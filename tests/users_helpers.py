"""Helpers for the users, import, support and "your sessions" tests: more browsers, sign-ins through
the test IdP, CSRF tokens read from the page, and the audit trail."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import AuditEvent, IdpConnection, User
from app.saml.urls import sp_values
from app.sessions import NewSession, create_session
from tests.conftest import FreshRequestClient, post_acs, start_sso
from tests.saml_idp import TestIdP

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def another_browser(app: Flask) -> FlaskClient:
    """A second test client: its own cookies, as another browser would have."""
    app.test_client_class = FreshRequestClient
    browser = app.test_client()
    browser.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "sso.test"})
    return browser


def sso_sign_in(client: FlaskClient, idp: TestIdP, connection: IdpConnection, email: str) -> None:
    """The whole SP-initiated SAML sign-in for ``email`` in ``client``; it must succeed."""
    request_id = start_sso(client, email)
    response = post_acs(
        client, connection, idp.response(sp_values(connection).as_dict(), email=email, request_id=request_id)
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def app_session(user: User, app_name: str = "desktop") -> NewSession:
    """An app session (bearer token), as the desktop or mobile app holds after its sign-in."""
    new = create_session(user, app_name=app_name, ip="203.0.113.9", user_agent=f"Phone {app_name} 5.1")
    db.session.commit()
    return new


def csrf_from(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form on ``path``, read as a browser would (see ``FreshRequestClient``)."""
    page = client.get(path).get_data(as_text=True)
    match = _CSRF.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def events(action: str) -> list[AuditEvent]:
    return db.session.query(AuditEvent).filter_by(action=action).order_by(AuditEvent.id).all()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def demo_sign_in(page, base_url: str, email: str) -> None:
    """Sign ``email`` in through the demo IdP in a real browser tab (the "any email" form)."""
    page.goto(f"{base_url}/login")
    page.fill("#sso-email", email)
    page.click("[data-testid=sso-submit]")
    page.wait_for_url("**/demo-idp/sso?*")
    page.fill("#other_email", email)
    page.click("[data-testid=demo-signin-other]")
    page.wait_for_url("**/portal/")
