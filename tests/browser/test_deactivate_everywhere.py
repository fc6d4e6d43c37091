"""An admin deactivates a user who is signed in in another browser: that browser's next click lands
on the sign-in page (DESIGN rule 4, through real pages, a real IdP round trip and chromium)."""

from __future__ import annotations

import pytest

from app.demo_idp.setup import ensure_demo
from app.extensions import db
from app.services.users import create_user
from tests.helpers.browser import demo_sign_in, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(live_server):
    """The demo account, plus Erin, a second admin who will be deactivated."""
    with live_server.app.app_context():
        connection = ensure_demo()
        create_user(connection.account, "erin@demo.example", roles=["admin", "agent"], name="Erin Example")
        db.session.commit()
    return live_server


def test_deactivated_user_is_signed_out_at_their_next_click(demo, new_page, page):
    erin = new_page()
    demo_sign_in(erin, demo.url, "erin@demo.example")
    assert erin.text_content("[data-testid=portal-email]") == "erin@demo.example"

    demo_sign_in(page, demo.url, "alice@demo.example")
    page.click("[data-testid=nav-users]")
    page.wait_for_url("**/admin/users")
    page.fill("[data-testid=user-search]", "erin")
    page.click("[data-testid=user-filter-submit]")
    page.click("[data-testid=user-row][data-email='erin@demo.example'] a")
    assert page.text_content("[data-testid=live-sessions]").strip() == "1 session"
    page.click("[data-testid=deactivate]")
    page.wait_for_selector("[data-testid=confirm-deactivate]")
    screenshot(page, "20-admin-confirm-deactivate")
    page.click("[data-testid=confirm]")
    page.wait_for_selector("text=1 session signed out everywhere")
    assert page.text_content("[data-testid=user-status]").strip() == "deactivated"
    screenshot(page, "21-admin-user-deactivated")

    erin.click("[data-testid=nav-my-sessions]")
    erin.wait_for_url(lambda url: "/login?next=" in url)
    assert erin.locator("[data-testid=sso-form]").is_visible()
    screenshot(erin, "22-deactivated-user-back-at-sign-in")

    erin.fill("#sso-email", "erin@demo.example")
    erin.click("[data-testid=sso-submit]")
    erin.fill("#other_email", "erin@demo.example")
    erin.click("[data-testid=demo-signin-other]")
    erin.wait_for_selector("[data-testid=error-code]")
    assert erin.text_content("[data-testid=error-code]") == "USER_DEACTIVATED"
