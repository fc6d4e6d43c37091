"""Sessions in words people read: "Chrome on macOS", "Desktop app on Windows", "SSO via Okta",
"3 hours ago", "3 open sessions on 2 devices".

The user agent is read with ``ua-parser`` (the uap-core rules, kept up to date upstream), never with
our own regular expressions: browsers change their strings every few months. Our own desktop and
mobile apps are known by the session's ``app`` column, not by their user agent (the token exchange
is an HTTP client of the app's choosing); the user agent only adds the operating system.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from ua_parser import parse

from app.formatting import plural
from app.models import UserSession
from app.timeutil import utcnow

#: How a session began, as ``UserSession.signin_method`` records it.
SSO = "sso"
PASSWORD = "password"

#: ua-parser's operating system families, as people name them.
_OS_NAMES = {
    "Mac OS X": "macOS",
    "Windows": "Windows",
    "Linux": "Linux",
    "Ubuntu": "Linux",
    "Fedora": "Linux",
    "Chrome OS": "ChromeOS",
    "Android": "Android",
}
#: ua-parser's browser families whose mobile or embedded variant people call by the browser's name.
_BROWSER_NAMES = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Samsung Internet": "Samsung Internet",
    "Opera Mobile": "Opera",
    "HeadlessChrome": "Chrome",
}
#: The apps' own names for a session's ``app``.
APP_NAMES = {"desktop": "Desktop app", "mobile": "Mobile app"}
UNKNOWN_DEVICE = "Unknown device"


@functools.lru_cache(maxsize=2048)
def _parsed(user_agent: str) -> tuple[str | None, str | None, str | None]:
    """(browser, operating system, device) families, cached: a page lists the same few strings."""
    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent else None
    os = result.os.family if result.os else None
    device = result.device.family if result.device else None
    return browser, os, device


def _os_name(os: str | None, device: str | None) -> str | None:
    """The platform as people say it: "iPhone" and "iPad" rather than iOS, "macOS" not Mac OS X."""
    if os == "iOS" or (os is None and device in ("iPhone", "iPad")):
        return device if device in ("iPhone", "iPad") else "iOS"
    if os is None or os == "Other":
        return None
    return _OS_NAMES.get(os, os)


def device_label(user_agent: str | None, app: str) -> str:
    """What someone calls the device and program of a session: "Chrome on macOS", "Safari on
    iPhone", "Desktop app on Windows"; "Unknown device" when the user agent says nothing useful."""
    browser, os, device = _parsed(user_agent[:512]) if user_agent else (None, None, None)
    platform = _os_name(os, device)
    if app in APP_NAMES:
        return f"{APP_NAMES[app]} on {platform}" if platform else APP_NAMES[app]
    if browser in (None, "Other"):
        return f"Browser on {platform}" if platform else UNKNOWN_DEVICE
    name = _BROWSER_NAMES.get(browser, browser)
    return f"{name} on {platform}" if platform else name


def signin_method_label(session: UserSession, connection_name: str | None) -> str:
    """How the session began: "SSO via Okta", "Password", "Desktop app (SSO via Okta)".

    ``connection_name`` is the IdP connection's display name, None once it was deleted (the
    session then still says SSO: ``signin_method`` remembers it, unlike ``connection_id``).
    """
    method = session.signin_method or (SSO if session.connection_id is not None else PASSWORD)
    if method == SSO:
        words = f"SSO via {connection_name}" if connection_name else "SSO (connection since deleted)"
    else:
        words = "Password"
    if session.app in APP_NAMES:
        return f"{APP_NAMES[session.app]} ({words})" if method == SSO else APP_NAMES[session.app]
    return words


# --- numbers and times ------------------------------------------------------------------------


_UNITS = (
    (365 * 86400, "year"),
    (30 * 86400, "month"),
    (7 * 86400, "week"),
    (86400, "day"),
    (3600, "hour"),
)


def relative_time(value: dt.datetime, now: dt.datetime | None = None) -> str:
    """ "3 hours ago", "in 20 days", "just now": ``value`` (naive UTC) from ``now``'s point of view,
    in the largest whole unit (rounded down, as people say "an hour ago" until it is two)."""
    now = now or utcnow()
    seconds = (now - value).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        return "just now" if not future else "in less than a minute"
    amount = plural(int(seconds // 60), "minute")
    for size, unit in _UNITS:
        if seconds >= size:
            amount = plural(int(seconds // size), unit)
            break
    return f"in {amount}" if future else f"{amount} ago"


def exact_utc(value: dt.datetime) -> str:
    """The exact time, for the title of a relative one: "2026-12-01 18:30:05 UTC"."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class SessionView:
    """One session with the words a page shows for it."""

    session: UserSession
    device: str
    method: str


def describe_sessions(sessions: list[UserSession], connection_names: dict[int, str]) -> list[SessionView]:
    """Each session with its device and sign-in method (``connection_names``: id -> display name)."""
    return [
        SessionView(
            s,
            device_label(s.user_agent, s.app),
            signin_method_label(s, connection_names.get(s.connection_id) if s.connection_id else None),
        )
        for s in sessions
    ]


def devices_of(user_agents: list[str | None]) -> int:
    """How many devices a set of sessions is on: distinct user agents (sessions without one count
    as one device). Two laptops with the same browser count as one: we cannot tell them apart."""
    return len(set(user_agents))
