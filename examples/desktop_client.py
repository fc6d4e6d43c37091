#!/usr/bin/env python3
"""A small desktop client that signs in through the portal's SSO, as a real desktop app would.

It runs the loopback flow of RFC 8252 (OAuth 2.0 for Native Apps) with PKCE (RFC 7636):

1. make a random PKCE verifier and state, and listen on 127.0.0.1 on a random free port;
2. open the system browser at /sso/app/authorize (the portal shows the work email, filled in
   from --email, with a "Continue" button, then runs the SAML sign-in);
3. receive the browser back on http://127.0.0.1:{port}/callback with a one-time code;
4. check the state, exchange the code (with the verifier) at POST /api/v1/token;
5. call GET /api/v1/me with the bearer token and print its JSON.

Only the standard library is used. Example:

    python examples/desktop_client.py --portal http://localhost:5000 --email alice@demo.example
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import secrets
import sys
import time
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import Request, urlopen

log = logging.getLogger("desktop_client")

CALLBACK_PATH = "/callback"
DONE_PAGE = b"""<!doctype html><html lang="en"><meta charset="utf-8"><title>Signed in</title>
<body><p id="done">You can close this window and return to the app.</p></body></html>"""


class SignInFailed(Exception):
    """The sign-in did not complete; the message says why."""


class CallbackHandler(BaseHTTPRequestHandler):
    """Receives the browser's one request to the callback path and keeps its query."""

    server: CallbackServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH:  # e.g. the browser asking for /favicon.ico
            self.send_error(404)
            return
        self.server.answer = {key: values[0] for key, values in parse_qs(parts.query).items()}
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(DONE_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("callback server: " + format, *args)


class CallbackServer(HTTPServer):
    """A loopback HTTP server on a port the system picks (RFC 8252 7.3)."""

    answer: dict[str, str] | None = None

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CallbackHandler)
        self.timeout = 1

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{CALLBACK_PATH}"

    def wait_for_answer(self, seconds: float) -> dict[str, str]:
        deadline = time.monotonic() + seconds
        while self.answer is None:
            if time.monotonic() > deadline:
                raise SignInFailed(f"no answer from the browser within {seconds:.0f} seconds")
            self.handle_request()
        return self.answer


def pkce_pair() -> tuple[str, str]:
    """A fresh code verifier and its S256 challenge (RFC 7636 4.1 and 4.2)."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return verifier, challenge


def call_json(url: str, *, form: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> dict:
    """GET ``url`` (POST ``form``, form-encoded); return the JSON answer, or raise SignInFailed
    with the server's error."""
    data = urlencode(form).encode() if form is not None else None
    headers = {**(headers or {}), **({"Content-Type": "application/x-www-form-urlencoded"} if form else {})}
    # main() accepts only http:// and https:// portal addresses.
    request = Request(url, data=data, headers=headers)  # noqa: S310
    try:
        with urlopen(request, timeout=30) as response:  # noqa: S310
            return json.load(response)
    except HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")
        raise SignInFailed(f"{request.get_method()} {url}: HTTP {exc.code} {body}") from None


def sign_in(portal: str, email: str | None, open_browser: bool, timeout: float) -> dict:
    """Run the whole flow; return what GET /api/v1/me says about the new session."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    with CallbackServer() as server:
        params = {
            "app": "desktop",
            "redirect_uri": server.redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
        }
        if email:
            params["login_hint"] = email
        authorize_url = f"{portal}/sso/app/authorize?{urlencode(params)}"
        log.info("Open this address in your browser to sign in: %s", authorize_url)
        if open_browser:
            webbrowser.open(authorize_url)
        answer = server.wait_for_answer(timeout)

    # The state proves that this answer belongs to the sign-in we started (not one an attacker started).
    if not secrets.compare_digest(answer.get("state", ""), state):
        raise SignInFailed("the answer's state does not match: ignoring it")
    if "error" in answer:
        raise SignInFailed(f"sign-in refused: {answer['error']} ({answer.get('error_description', '')})")

    token = call_json(
        f"{portal}/api/v1/token",
        form={
            "grant_type": "authorization_code",
            "code": answer.get("code", ""),
            "redirect_uri": server.redirect_uri,
            "code_verifier": verifier,
            "client_id": "desktop",
        },
    )
    log.info(
        "Signed in as %s; the session lasts until %s unless used again.", token["user"]["email"], token["expires_at"]
    )
    # A real app keeps token["access_token"] in the system's keychain and sends it on every call.
    return call_json(f"{portal}/api/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portal", default="http://localhost:5000", help="the portal's address")
    parser.add_argument("--email", help="your work email (else the portal asks for it)")
    parser.add_argument("--no-browser", action="store_true", help="only print the address to open")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the browser")
    args = parser.parse_args(argv)
    if not args.portal.startswith(("http://", "https://")):
        parser.error("--portal must start with http:// or https://")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        me = sign_in(args.portal.rstrip("/"), args.email, not args.no_browser, args.timeout)
    except SignInFailed as exc:
        log.error("Sign-in failed: %s", exc)
        return 1
    print(json.dumps(me, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
