"""Your sessions in a real browser: the exact time on hover is the viewer's own time zone (the
server renders UTC), and "Sign out all other sessions" goes through its confirmation page."""

from __future__ import annotations

import re

import pytest

from app.demo_idp.setup import ensure_demo
from app.extensions import db
from tests.helpers.browser import demo_sign_in, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(live_server):
    with live_server.app.app_context():
        ensure_demo()
        db.session.commit()
    return live_server


def test_local_time_on_hover_and_confirmed_sign_out(demo, browser, new_page):
    other = new_page()
    demo_sign_in(other, demo.url, "alice@demo.example")
    context = browser.new_context(viewport={"width": 1200, "height": 900}, timezone_id="Asia/Tokyo", locale="en-US")
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        demo_sign_in(page, demo.url, "alice@demo.example")
        page.click("[data-testid=nav-my-sessions]")
        page.wait_for_url("**/me/sessions")
        first = page.locator("time[data-local-time]").first
        assert first.text_content() == "just now"
        # Rewritten by js/localtime.js from the datetime attribute: Tokyo is UTC+9, no "UTC" left.
        title = first.get_attribute("title")
        assert "GMT+9" in title and "UTC" not in title, title
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first.get_attribute("datetime"))
        screenshot(page, "40-your-sessions")

        page.click("[data-testid=sign-out-others]")
        page.wait_for_selector("[data-testid=confirm-sign-out-others]")
        assert page.text_content("[data-testid=confirm-consequence]").strip() == (
            "You will be signed out of 1 other session on 1 device; this session stays signed in."
        )
        screenshot(page, "41-confirm-sign-out-others")
        page.click("[data-testid=confirm]")
        page.wait_for_selector("text=Signed out 1 other session.")
        assert page.locator("[data-testid=my-session]").count() == 1

        other.click("[data-testid=nav-my-sessions]")
        other.wait_for_url(lambda url: "/login" in url)
    finally:
        context.close()
