"""Issue 9 item 2 in a real browser, with the IdP on another site than the portal.

The portal is served as ``http://localhost:PORT`` (its BASE_URL); the IdP is a small page on
``http://127.0.0.1:OTHER`` that signs a response with the tests' IdP key and posts it to the ACS
with an auto-submitting form, as every HTTP-POST binding IdP does. That POST is cross-site, so
Chromium leaves the portal's SameSite=Lax cookies out of it: only the same-site ``/sso/finish``
that the ACS redirects to can see who the browser is signed in as.
"""

from __future__ import annotations

import html
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from app.demo_idp.idp import decode_authn_request
from app.extensions import db
from app.models import Account, UserSession
from app.roles import parse_roles
from app.saml.certs import certificate_info
from app.saml.urls import sp_values
from app.services.connections import add_certificates, create_connection
from app.services.users import create_user
from config import TestingConfig
from tests.helpers.browser import screenshot
from tests.saml_idp import TestIdP

pytestmark = pytest.mark.browser

ALICE = "alice@cross.example"
BOB = "bob@cross.example"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def portal(app: Flask) -> Iterator[tuple[str, Flask]]:
    """The portal on ``http://localhost:PORT``, sharing the tests' database."""
    port = _free_port()
    url = f"http://localhost:{port}"
    config = type(
        "CrossSiteConfig",
        (TestingConfig,),
        {"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "BASE_URL": url, "TESTING": False},
    )
    portal_app = create_app(config)
    server = make_server("127.0.0.1", port, portal_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url, portal_app
    server.shutdown()
    with portal_app.app_context():
        db.engine.dispose()


@dataclass
class CrossSiteIdP:
    """The IdP's pages on 127.0.0.1: ``/sso`` answers an AuthnRequest, ``/launch?email=`` starts an
    IdP-initiated sign-in (an app tile). Both sign in whoever ``signed_in_as`` names."""

    signer: TestIdP
    sp: dict[str, str] = field(default_factory=dict)
    signed_in_as: str = ALICE
    url: str = ""

    def page_for(self, path: str, query: dict[str, list[str]]) -> str:
        if path == "/sso":
            request_id = decode_authn_request(query["SAMLRequest"][0]).get("ID")
            relay_state = ""
        else:
            request_id = None
            relay_state = query.get("relay", [""])[0]
        saml = self.signer.response(self.sp, email=query.get("email", [self.signed_in_as])[0], request_id=request_id)
        return (
            "<!doctype html><html><body onload='document.forms[0].submit()'>"
            f"<form method='post' action='{html.escape(self.sp['acs_url'])}'>"
            f"<input type='hidden' name='SAMLResponse' value='{saml}'>"
            f"<input type='hidden' name='RelayState' value='{html.escape(relay_state)}'>"
            "<noscript><button>Continue</button></noscript></form></body></html>"
        )


@pytest.fixture
def idp_site(idp: TestIdP) -> Iterator[CrossSiteIdP]:
    site = CrossSiteIdP(idp)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            body = site.page_for(parts.path, parse_qs(parts.query)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()


@pytest.fixture
def cross_site(portal, idp_site, idp) -> tuple[str, CrossSiteIdP]:
    """An account whose IdP lives on the other site, with Alice and Bob (both admins)."""
    url, portal_app = portal
    with portal_app.app_context():
        account = Account(slug="cross", name="Cross Site Co")
        db.session.add(account)
        db.session.flush()
        connection = create_connection(account, "generic")
        connection.idp_entity_id = idp.entity_id
        connection.idp_sso_url = f"{idp_site.url}/sso"
        add_certificates(connection, [certificate_info(idp.cert_pem)])
        connection.status = "enabled"
        connection.allow_idp_initiated = True
        for email in (ALICE, BOB):
            create_user(account, email, roles=parse_roles("admin"), name=email.split("@")[0].title())
        db.session.commit()
        idp_site.sp = sp_values(connection).as_dict()
    assert idp_site.sp["acs_url"].startswith("http://localhost:")
    return url, idp_site


def _sign_in_from_the_portal(page, url: str, idp_site: CrossSiteIdP, email: str) -> None:
    """SP-initiated: the sign-in page's form, the IdP on the other site, back through the ACS."""
    idp_site.signed_in_as = email
    page.goto(f"{url}/login")
    page.fill("#sso-email", email)
    page.click("[data-testid=sso-submit]")
    page.wait_for_url(f"{url}/portal/")


def _me(page, url: str) -> str | None:
    answer = page.request.get(f"{url}/api/v1/me")
    return answer.json()["email"] if answer.ok else None


def _live_sessions_of(email: str, portal_app: Flask) -> list[UserSession]:
    with portal_app.app_context():
        sessions = db.session.query(UserSession).all()
        result = [s for s in sessions if s.user is not None and s.user.email == email and s.is_live()]
        db.session.remove()
        return result


def test_idp_initiated_response_for_someone_else_is_refused_and_a_fresh_sign_in_replaces_the_session(
    portal, cross_site, page
):
    url, idp_site = cross_site
    _, portal_app = portal

    # Alice signs in from the portal: the IdP's POST is cross-site, the finish is same-site.
    _sign_in_from_the_portal(page, url, idp_site, ALICE)
    assert _me(page, url) == ALICE
    (alice_session,) = _live_sessions_of(ALICE, portal_app)

    # An IdP-initiated response for Bob lands in Alice's browser (another tab, an attacker's page
    # that starts the IdP's app tile...): refused, Alice stays signed in.
    page.goto(f"{idp_site.url}/launch?email={BOB}")
    page.wait_for_selector("[data-testid=error-code]")
    assert urlsplit(page.url).path == "/sso/finish"
    assert page.text_content("[data-testid=error-code]") == "SAML_SESSION_CONFLICT"
    assert page.locator("[data-testid=conflict-logout]").is_visible()
    screenshot(page, "40-cross-site-session-conflict")
    assert _me(page, url) == ALICE
    assert [s.id for s in _live_sessions_of(ALICE, portal_app)] == [alice_session.id]
    assert _live_sessions_of(BOB, portal_app) == []

    # A fresh SP-initiated sign-in (Bob at the keyboard) revokes the old session of this browser.
    _sign_in_from_the_portal(page, url, idp_site, BOB)
    assert _me(page, url) == BOB
    assert _live_sessions_of(ALICE, portal_app) == []
    with portal_app.app_context():
        old = db.session.get(UserSession, alice_session.id)
        assert old is not None and old.revoked_reason == "replaced_at_signin"
        db.session.remove()

    # "Sign out first" on the conflict page signs Bob out; nobody is signed in after it.
    page.goto(f"{idp_site.url}/launch?email={ALICE}")
    page.wait_for_selector("[data-testid=conflict-logout]")
    page.click("[data-testid=conflict-logout]")
    page.wait_for_url(f"{url}/login")
    assert _me(page, url) is None
    assert _live_sessions_of(ALICE, portal_app) == [] and _live_sessions_of(BOB, portal_app) == []


def test_idp_initiated_sign_in_from_the_other_site_works_in_a_fresh_browser(portal, cross_site, page):
    url, idp_site = cross_site
    page.goto(f"{idp_site.url}/launch?email={ALICE}&relay=/portal/")
    page.wait_for_url(f"{url}/portal/")
    assert _me(page, url) == ALICE
