"""examples/desktop_client.py end to end: the client listens on loopback, chromium signs in at the
demo IdP, the client exchanges the code and prints /api/v1/me."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.demo_idp.setup import ensure_demo
from app.extensions import db
from tests.helpers.browser import screenshot

pytestmark = pytest.mark.browser

CLIENT = Path(__file__).resolve().parents[2] / "examples" / "desktop_client.py"
AUTHORIZE_URL = re.compile(r"(http://127\.0\.0\.1:\d+/sso/app/authorize\?\S+)")


@pytest.fixture
def demo(live_server):
    with live_server.app.app_context():
        ensure_demo()
        db.session.commit()
    return live_server


@pytest.fixture
def desktop_client(demo):
    """Start the example client without a browser; return (process, the address it asks to open).

    The process is always reaped, whatever the test does."""
    processes: list[subprocess.Popen] = []

    def start(*extra: str) -> tuple[subprocess.Popen, str]:
        process = subprocess.Popen(
            [sys.executable, str(CLIENT), "--portal", demo.url, "--no-browser", "--timeout", "60", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            match = AUTHORIZE_URL.search(line)
            if match:
                return process, match.group(1)
        raise AssertionError("the client printed no authorize address")

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate()


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    """Wait for the client to end; return its exit status, stdout and the rest of its stderr."""
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def test_desktop_client_signs_in_through_the_browser(desktop_client, page):
    process, url = desktop_client()
    page.goto(url)
    # No --email: the portal asks which work email, then goes to the IdP.
    page.wait_for_selector("[data-testid=app-email-form]")
    screenshot(page, "app-01-email")
    page.fill("#app-login-hint", "alice@demo.example")
    page.click("[data-testid=app-email-submit]")
    page.wait_for_url("**/demo-idp/sso?*")
    page.click("[data-testid=demo-signin-alice]")
    page.wait_for_url("http://127.0.0.1:*/callback?*")
    assert "return to the app" in page.text_content("#done")
    screenshot(page, "app-02-back-to-the-app")
    status, out, err = finish(process)
    assert status == 0, err
    me = json.loads(out)
    assert me["email"] == "alice@demo.example"
    assert me["app"] == "desktop"
    assert me["account"] == "demo"
    assert "access_token" not in out


def test_desktop_client_reports_a_refusal(desktop_client, page):
    process, url = desktop_client("--email", "carol@demo.example")
    page.goto(url)
    # The email comes from the app; the person still presses Continue (a link starts nothing).
    assert page.input_value("#app-login-hint") == "carol@demo.example"
    page.click("[data-testid=app-email-submit]")
    page.wait_for_url("**/demo-idp/sso?*")
    page.click("[data-testid=demo-signin-carol]")
    page.wait_for_url("http://127.0.0.1:*/callback?*")
    status, out, err = finish(process)
    assert status == 1
    assert out == ""
    assert "access_denied (USER_DEACTIVATED)" in err
