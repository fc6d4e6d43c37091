"""A staff member finds a session by the user's email and revokes it; the user's next click lands
on the sign-in page."""

from __future__ import annotations

import pytest

from app.demo_idp.setup import ensure_demo
from app.extensions import db
from app.services.users import create_user
from tests.helpers.browser import demo_sign_in, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(live_server):
    """The demo account, plus Sam from support (the demo IdP signs Sam in too)."""
    with live_server.app.app_context():
        connection = ensure_demo()
        create_user(connection.account, "sam@demo.example", roles=["support"], name="Sam Support")
        db.session.commit()
    return live_server


def test_staff_finds_a_session_by_email_and_revokes_it(demo, new_page, page):
    alice = new_page()
    demo_sign_in(alice, demo.url, "alice@demo.example")

    demo_sign_in(page, demo.url, "sam@demo.example")
    page.click("[data-testid=nav-support]")
    page.wait_for_url("**/support/sessions")
    page.fill("[data-testid=filter-email]", "alice@demo.example")
    page.select_option("[data-testid=filter-state]", "active")
    page.click("[data-testid=filter-submit]")
    page.wait_for_url("**/support/sessions?*email=alice%40demo.example*")
    rows = page.locator("[data-testid=session-row]")
    assert rows.count() == 1
    screenshot(page, "30-support-sessions-by-email")
    rows.first.locator("[data-testid=session-link]").click()
    assert page.text_content("[data-testid=detail-email]").strip() == "alice@demo.example"
    screenshot(page, "31-support-session-detail")
    page.click("[data-testid=revoke-session]")
    page.wait_for_selector("[data-testid=confirm-revoke-session]")
    assert "will be signed out at once" in page.text_content("[data-testid=confirm-consequence]")
    page.click("[data-testid=confirm]")
    page.wait_for_selector("text=is revoked: its next request is refused")
    assert page.get_attribute("[data-testid=session-state]", "data-state") == "revoked"
    assert "revoked_by_support" in page.text_content("[data-testid=detail-revoked]")
    screenshot(page, "32-support-session-revoked")

    alice.click("[data-testid=nav-users]")
    alice.wait_for_url(lambda url: "/login?next=" in url)
    assert alice.locator("[data-testid=sso-form]").is_visible()

    page.click("[data-testid=support-audit]")
    page.fill("[data-testid=audit-action]", "session.revoke")
    page.click("[data-testid=audit-submit]")
    assert page.locator("[data-testid=audit-row][data-action='session.revoke']").count() == 1
