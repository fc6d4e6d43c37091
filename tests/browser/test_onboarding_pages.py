"""In a real browser: a new admin's home shows the checklist and leads into the wizard; Salesforce's
walkthrough asks for a setup path (a plain link), then shows that path's XML files, which copy and
download. Both pages fit a phone (390 px) and a desktop (1280 px) without sideways scrolling.
Screenshots: test-artifacts/screenshots/onboarding-*.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import Account
from app.services.users import create_user
from tests.helpers.browser import screenshot

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
ADMIN = "sam@sf-co.example"


@pytest.fixture
def sf_co(live_server):
    with live_server.app.app_context():
        account = Account(slug="sf-co", name="SF Co", sso_required=False)
        db.session.add(account)
        db.session.flush()
        create_user(account, ADMIN, roles=["admin"], name="Sam Admin", password=PASSWORD, actor="test")
        db.session.commit()
    return live_server


def _fits(page, name: str) -> None:
    """No horizontal scrolling at phone or desktop width; a screenshot of each."""
    for width, label in ((390, "phone"), (1280, "desktop")):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (name, width)
        screenshot(page, f"{name}-{label}")


def test_new_admin_follows_the_checklist_into_salesforces_external_client_app_path(sf_co, page):
    url = sf_co.url
    page.goto(f"{url}/login")
    page.click("text=Sign in with a password")
    page.fill("#pw-email", ADMIN)
    page.fill("#pw-password", PASSWORD)
    page.click("[data-testid=password-form] button[type=submit]")
    page.wait_for_url("**/portal/")

    expect(page.locator("[data-testid=checklist-progress]")).to_have_text("0 of 4 done.")
    expect(page.locator("[data-testid=item-connect] [data-testid=item-state]")).to_have_text("To do")
    expect(page.locator("[data-testid=user-count]")).to_have_text("1 active user")
    assert "Home: set up SF Co" in page.title()
    _fits(page, "onboarding-01-home")

    page.click("[data-testid=next-connect]")
    page.wait_for_url("**/connections/new")
    page.check("[data-testid=provider-salesforce]")
    page.click("[data-testid=create-connection]")
    page.wait_for_url("**/walkthrough")
    expect(page.locator("[data-testid=step]")).to_have_count(2)
    expect(page.locator("[data-testid=path-needed]")).to_be_visible()
    _fits(page, "onboarding-02-salesforce-choose")

    page.click("[data-testid=path-external-client-app]")
    page.wait_for_url("**/walkthrough#path-choice")  # the choice is kept on the connection
    expect(page.locator("[data-testid=path-external-client-app]")).to_have_attribute("aria-current", "true")
    expect(page.locator("[data-testid=step]")).to_have_count(5)
    connection_id = page.url.split("/connections/")[1].split("/")[0]
    acs_url = f"{url}/saml/{connection_id}/acs"

    xml_block = page.locator("textarea").nth(2)
    assert f"<acsUrl>{acs_url}</acsUrl>" in xml_block.input_value()
    copy_button = page.locator(f"button[data-copy='#{xml_block.get_attribute('id')}']")
    copy_button.click()
    expect(copy_button).to_have_text("Copied")

    with page.expect_download() as download_info:
        page.locator("[data-testid=file-download]").nth(2).click()
    download = download_info.value
    assert download.suggested_filename == "PhoneSystemSSO.ecaSamlPlcy-meta.xml"
    with open(download.path(), encoding="utf-8") as saved:
        assert saved.read() == xml_block.input_value()
    _fits(page, "onboarding-03-salesforce-external-client-app")

    # Back home: the connection is a draft whose next step is these very steps.
    page.goto(f"{url}/portal/")
    expect(page.locator("[data-testid=item-connect]")).to_have_attribute("data-status", "draft")
    expect(page.locator("[data-testid=next-connect]")).to_have_text("Next: follow the Salesforce setup steps")
    _fits(page, "onboarding-04-home-draft")
