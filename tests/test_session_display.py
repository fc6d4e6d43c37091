"""Sessions people can read: device and browser from the user agent, our apps by name, how the user
signed in, and relative times with the exact time on hover."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from app.extensions import db
from app.formatting import plural
from app.models import UserSession
from app.services.connections import delete_connection
from app.services.session_display import device_label, relative_time
from app.sessions import create_session
from app.timeutil import utcnow
from tests.helpers.web import another_browser, app_session, log_in

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1"
)


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        (CHROME_MAC, "Chrome on macOS"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.1 Mobile/15E148 Safari/604.1",
            "Safari on iPad",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.1 Safari/605.1.15",
            "Safari on macOS",
        ),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox on Windows"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.6099.144 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
            "Chrome on iPhone",
        ),
        ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox on Linux"),
        (
            "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            "Samsung Internet on Android",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36",
            "Chrome on ChromeOS",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 "
            "Safari/537.36",
            "Chrome on Linux",
        ),
        ("pytest", "Unknown device"),
        ("", "Unknown device"),
        (None, "Unknown device"),
        ("\x00" * 600, "Unknown device"),
    ],
)
def test_browsers_are_named_as_people_name_them(user_agent, label):
    assert device_label(user_agent, "portal") == label


@pytest.mark.parametrize(
    ("user_agent", "app_name", "label"),
    [
        ("PhonePortalDesktop/2.3.1 (Windows NT 10.0; Win64; x64)", "desktop", "Desktop app on Windows"),
        ("PhonePortalDesktop/2.3.1 (Macintosh; Intel Mac OS X 14_1)", "desktop", "Desktop app on macOS"),
        # An Electron shell sends a whole browser user agent: it is still our desktop app.
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) PhonePortal/2.3.1 "
            "Chrome/120.0.6099.291 Electron/28.2.0 Safari/537.36",
            "desktop",
            "Desktop app on Windows",
        ),
        ("PhonePortal/5.1 (iPhone; iOS 17.1)", "mobile", "Mobile app on iPhone"),
        ("PhonePortal/5.1 (Linux; Android 14; Pixel 8) okhttp/4.12.0", "mobile", "Mobile app on Android"),
        ("okhttp/4.12.0", "mobile", "Mobile app"),
        ("Phone desktop 5.1", "desktop", "Desktop app"),  # the tests' app user agent (tests/helpers/web.py)
        (None, "mobile", "Mobile app"),
    ],
)
def test_our_apps_are_named_by_the_session_not_the_user_agent(user_agent, app_name, label):
    assert device_label(user_agent, app_name) == label


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (5, "just now"),
        (60, "1 minute ago"),
        (119, "1 minute ago"),
        (120, "2 minutes ago"),
        (3600, "1 hour ago"),
        (3 * 3600 + 59, "3 hours ago"),
        (86400, "1 day ago"),
        (8 * 86400, "1 week ago"),
        (45 * 86400, "1 month ago"),
        (800 * 86400, "2 years ago"),
        (-21 * 86400, "in 3 weeks"),
        (-30, "in less than a minute"),
    ],
)
def test_relative_times_have_the_right_plural(seconds, words):
    now = dt.datetime(2026, 12, 1, 12, 0, 0)
    assert relative_time(now - dt.timedelta(seconds=seconds), now) == words


def test_counts_are_formatted_and_agree_with_the_noun():
    assert plural(1, "session") == "1 session"
    assert plural(0, "session") == "0 sessions"
    assert plural(1234, "device") == "1,234 devices"
    assert plural(2, "other live token") == "2 other live tokens"


def _cells(html: str, session_id: int, testid: str) -> str:
    row = re.search(rf'data-session-id="{session_id}".*?</tr>', html, re.DOTALL)
    assert row, f"no row for session {session_id}"
    cell = re.search(rf'data-testid="{testid}">(.*?)</td>', row.group(0), re.DOTALL)
    assert cell, row.group(0)
    return re.sub(r"<[^>]+>", "", cell.group(1)).strip()


def test_your_sessions_show_device_method_and_local_times(app, client, acme, sign_in):
    """A real SSO sign-in says "SSO via <connection>"; a password one "Password"; the apps by name."""
    acme["connection"].name = "Okta"
    db.session.commit()
    assert sign_in(acme["connection"], "admin@acme.example").status_code == 302
    sso = db.session.query(UserSession).filter_by(user_id=acme["admin"].id).one()
    assert sso.signin_method == "sso"
    password = create_session(acme["admin"], app_name="portal", ip=None, user_agent=CHROME_MAC)
    desktop = create_session(
        acme["admin"],
        app_name="desktop",
        ip=None,
        user_agent="PhonePortalDesktop/2.3.1 (Windows NT 10.0; Win64; x64)",
        connection_id=acme["connection"].id,
    )
    mobile = app_session(acme["admin"], "mobile")
    password.session.last_used_at = utcnow() - dt.timedelta(hours=3, minutes=5)
    db.session.commit()

    html = client.get("/me/sessions").get_data(as_text=True)
    assert _cells(html, sso.id, "session-method") == "SSO via Okta"
    assert _cells(html, password.session.id, "session-method") == "Password"
    assert _cells(html, password.session.id, "session-device") == "Chrome on macOS"
    assert _cells(html, desktop.session.id, "session-device") == "Desktop app on Windows"
    assert _cells(html, desktop.session.id, "session-method") == "Desktop app (SSO via Okta)"
    assert _cells(html, mobile.session.id, "session-method") == "Mobile app"

    used = password.session.last_used_at
    assert (
        f'<time datetime="{used.isoformat(timespec="seconds")}Z" title="{used:%Y-%m-%d %H:%M:%S} UTC" '
        f'data-local-time data-testid="ago">3 hours ago</time>'
    ) in html
    assert 'src="/static/js/localtime.js"' in html
    with another_browser(app).get("/static/js/localtime.js") as script:
        assert script.status_code == 200
        assert b"data-local-time" in script.data and b"Intl.DateTimeFormat" in script.data
    assert html.count("<h1") == 1 and "<title>Your sessions" in html


def test_an_sso_session_still_says_sso_after_its_connection_is_deleted(client, acme, make_connection):
    other = make_connection(acme["account"], status="draft")
    new = create_session(acme["admin"], app_name="portal", ip=None, user_agent=None, connection_id=other.id)
    db.session.commit()
    delete_connection(other)
    db.session.commit()
    db.session.refresh(new.session)
    assert new.session.connection_id is None and new.session.signin_method == "sso"
    log_in(client, acme["admin"])
    html = client.get("/me/sessions").get_data(as_text=True)
    assert _cells(html, new.session.id, "session-method") == "SSO (connection since deleted)"


def test_support_pages_show_utc_times_and_readable_sessions(app, acme, make_account, make_user):
    staff_account = make_account("phoneco", "Phone Co (staff)")
    staff_user = make_user(staff_account, "helpdesk@phoneco.example", "support")
    browse = another_browser(app)
    log_in(browse, staff_user)
    new = create_session(
        acme["agent"], app_name="portal", ip=None, user_agent=SAFARI_IPHONE, connection_id=acme["connection"].id
    )
    db.session.commit()
    html = browse.get("/support/sessions", query_string={"email": "agent@"}).get_data(as_text=True)
    assert _cells(html, new.session.id, "session-device") == "Safari on iPhone"
    assert _cells(html, new.session.id, "session-method") == f"SSO via {acme['connection'].name}"
    # UTC on hover in support: no local rewriting.
    assert 'data-testid="ago">just now</time>' in html and "data-local-time" not in html
    detail = browse.get(f"/support/sessions/{new.session.id}").get_data(as_text=True)
    assert 'data-testid="detail-device">Safari on iPhone' in detail
    assert f'data-testid="detail-method">SSO via {acme["connection"].name}' in detail
    assert f"{new.session.created_at:%Y-%m-%d %H:%M:%S} UTC" in detail
