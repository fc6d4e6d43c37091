"""Development only: one host name for the portal.

Cookies and every SAML URL belong to ``BASE_URL``'s host, so a browser that opened
``http://127.0.0.1:5000`` while ``BASE_URL`` says ``localhost`` could never finish a sign-in
(its cookies stay on the other host). In development, any other host is sent to the same path
on ``BASE_URL``; production relies on its proxy and ``BASE_URL`` alone.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, redirect, request
from werkzeug.wrappers import Response


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
