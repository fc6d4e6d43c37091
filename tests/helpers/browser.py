"""Helpers for the Playwright tests in tests/browser/."""

from __future__ import annotations

from pathlib import Path

#: Debian's chromium (``make browser`` installs it); no browser is ever downloaded.
CHROMIUM = "/usr/bin/chromium"
#: Flags for a headless run in a container or CI (no sandbox, no GPU, no background traffic).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def screenshot(page, name: str) -> Path:
    """Save a screenshot under test-artifacts/screenshots/ (the README shows some of them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def demo_sign_in(page, base_url: str, email: str) -> None:
    """Sign ``email`` in through the demo IdP in a real browser tab (the "any email" form)."""
    page.goto(f"{base_url}/login")
    page.fill("#sso-email", email)
    page.click("[data-testid=sso-submit]")
    page.wait_for_url("**/demo-idp/sso?*")
    page.fill("#other_email", email)
    page.click("[data-testid=demo-signin-other]")
    page.wait_for_url("**/portal/")
