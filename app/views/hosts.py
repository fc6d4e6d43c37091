"""Development only: one host name for the portal.

Cookies and every SAML URL belong to ``BASE_URL``'s host, so a browser that opened
``http://127.0.0.1:5000`` while ``BASE_URL`` says ``localhost`` could never finish a sign-in
(its cookies stay on the other host). In development, any other host is sent to the same path
on ``BASE_URL``; production relies on its proxy and ``BASE_URL`` alone. Wherever a sign-in still
fails that way (no redirect, or an IdP posting to another host), its refusal page says which
address to use (``address_hint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, current_app, redirect, request
from werkzeug.wrappers import Response

from app.sessions.web import binding_cookie_name

#: Refusals a browser meets when a sign-in crossed from one host to another: the cookies that bind
#: it (the binding cookie of ``/sso/start``, the finishing cookie of the ACS) stay with the host
#: that set them.
HOST_SENSITIVE_CODES = frozenset({"SAML_IN_RESPONSE_TO_MISMATCH", "SIGNIN_FINISH_INVALID"})


@dataclass(frozen=True)
class AddressHint:
    """Which address to use, for a sign-in refused because the browser changed hosts on the way."""

    #: The portal's address (``BASE_URL``) and its sign-in page.
    base_url: str
    login_url: str
    #: The other address this page was opened at; None when it is the right one and only the
    #: missing binding cookie says the sign-in started elsewhere.
    here: str | None


def address_hint(code: str) -> AddressHint | None:
    """Say which address to use when a sign-in failed because the browser came back on another
    host than the one it started on (``127.0.0.1`` and ``localhost`` are two hosts to a browser).

    Only for the refusals a lost cookie causes (``HOST_SENSITIVE_CODES``): on another host than
    ``BASE_URL``'s, the page names both; on the right host without this browser's binding cookie,
    the sign-in was started at another address (or in another browser), so it names this one.
    """
    if code not in HOST_SENSITIVE_CODES:
        return None
    base_url = current_app.config["BASE_URL"].rstrip("/")
    login_url = f"{base_url}/login"
    if request.host.lower() != urlsplit(base_url).netloc.lower():
        return AddressHint(base_url, login_url, f"{request.scheme}://{request.host}")
    if binding_cookie_name() not in request.cookies:
        return AddressHint(base_url, login_url, None)
    return None


def _to_base_url_host() -> Response | None:
    base = urlsplit(current_app.config["BASE_URL"])
    if request.host.lower() == base.netloc.lower():
        return None
    target = f"{base.scheme}://{base.netloc}{request.full_path.rstrip('?')}"
    # 308 keeps the method and body, so a form posted to the wrong host still arrives.
    return redirect(target, code=308)


def init_app(app: Flask) -> None:
    """Register the redirect when the settings ask for it (``CANONICAL_HOST_REDIRECT``)."""
    if app.config.get("CANONICAL_HOST_REDIRECT"):
        app.before_request(_to_base_url_host)
