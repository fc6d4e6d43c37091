"""Single Logout both ways in a real browser, through the demo IdP (which sends and answers
LogoutRequests)."""

from __future__ import annotations

import pytest

from app.demo_idp.setup import ensure_demo
from app.extensions import db
from tests.helpers.browser import screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(live_server):
    with live_server.app.app_context():
        ensure_demo()
        db.session.commit()
    return live_server


def _sign_in_alice(page, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#sso-email", "alice@demo.example")
    page.click("[data-testid=sso-submit]")
    page.wait_for_url("**/demo-idp/sso?*")
    page.click("[data-testid=demo-signin-alice]")
    page.wait_for_url("**/portal/")


def test_signing_out_at_the_idp_signs_the_portal_tab_out(demo, new_page):
    portal = new_page()
    _sign_in_alice(portal, demo.url)
    idp_tab = portal.context.new_page()
    idp_tab.goto(f"{demo.url}/demo-idp/")
    assert "alice@demo.example" in idp_tab.text_content("[data-testid=demo-idp-status]")
    idp_tab.click("[data-testid=demo-idp-logout]")
    idp_tab.wait_for_url("**/demo-idp/slo?*")
    assert "portal confirmed" in idp_tab.text_content("[data-testid=demo-idp-notice]")
    screenshot(idp_tab, "slo-01-idp-signed-out")
    # The portal tab, on its next click, is signed out.
    portal.reload()
    assert "/login?next=/portal/" in portal.url


def test_signing_out_in_the_portal_ends_the_idp_session(demo, new_page):
    portal = new_page()
    _sign_in_alice(portal, demo.url)
    portal.click("[data-testid=logout]")
    portal.wait_for_url("**/login")
    assert "signed out here and at" in portal.content()
    screenshot(portal, "slo-02-portal-signed-out")
    portal.goto(f"{demo.url}/demo-idp/")
    assert "Nobody is signed in" in portal.text_content("[data-testid=demo-idp-status]")
    portal.goto(f"{demo.url}/portal/")
    assert "/login" in portal.url
