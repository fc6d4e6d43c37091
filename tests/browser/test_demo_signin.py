"""The newcomer's path in a real browser: sign-in page, demo IdP, Account Portal, sign out."""

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


def test_demo_admin_signs_in_and_out(demo, page):
    page.goto(f"{demo.url}/login")
    screenshot(page, "01-login")
    page.fill("#sso-email", "alice@demo.example")
    page.click("[data-testid=sso-submit]")
    page.wait_for_url("**/demo-idp/sso?*")
    screenshot(page, "02-demo-idp")
    page.click("[data-testid=demo-signin-alice]")
    page.wait_for_url("**/portal/")
    assert page.text_content("[data-testid=portal-email]") == "alice@demo.example"
    screenshot(page, "03-portal")
    page.click("[data-testid=logout]")
    page.wait_for_url("**/login")
    page.goto(f"{demo.url}/portal/")
    assert "/login" in page.url


def test_demo_agent_is_refused_with_a_code(demo, page):
    page.goto(f"{demo.url}/login")
    page.fill("#sso-email", "bob@demo.example")
    page.click("[data-testid=sso-submit]")
    page.click("[data-testid=demo-signin-bob]")
    page.wait_for_selector("[data-testid=error-code]")
    assert page.text_content("[data-testid=error-code]") == "NO_ROLE_FOR_APP"
    screenshot(page, "04-refused")
