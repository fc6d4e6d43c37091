"""Helpers of the SCIM tests: a token for an account, and requests the way an IdP sends them."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from app.extensions import db
from app.models import Account
from app.services.scim_tokens import create_token

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def new_token(account: Account, name: str = "Okta") -> str:
    token = create_token(account, name=name, actor="test").token
    db.session.commit()
    return token


class Idp:
    """An IdP's SCIM client: the token in every request, JSON bodies as ``application/scim+json``."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": SCIM_JSON}

    def get(self, path: str, **query: Any):
        return self.client.get(f"/scim/v2{path}", query_string=query, headers=self._headers())

    def send(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None):
        data = raw if raw is not None else (None if body is None else __import__("json").dumps(body))
        return self.client.open(
            f"/scim/v2{path}", method=method, data=data, content_type=SCIM_JSON, headers=self._headers()
        )

    def post(self, path: str, body: Any):
        return self.send("POST", path, body)

    def put(self, path: str, body: Any):
        return self.send("PUT", path, body)

    def patch(self, path: str, operations: list[dict[str, Any]]):
        return self.send("PATCH", path, {"schemas": [PATCH_SCHEMA], "Operations": operations})

    def delete(self, path: str):
        return self.send("DELETE", path)


def user_body(email: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "userName": email,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "active": True,
    }
    body.update(extra)
    return body


def open_sessions(user) -> tuple[str, str]:
    """A portal (browser cookie) session and a desktop (bearer token) session for ``user``."""
    from app.sessions import create_session

    web = create_session(user, app_name="portal", ip="198.51.100.7", user_agent="Firefox").token
    desktop = create_session(user, app_name="desktop", ip="198.51.100.7", user_agent="Desktop/1.0").token
    db.session.commit()
    return web, desktop


def portal_status(client: FlaskClient, web_token: str) -> int:
    """What a browser holding ``web_token`` gets from the portal home (200 signed in, 302 to sign-in)."""
    client.set_cookie("__Host-portal_session", web_token)
    try:
        return client.get("/portal/").status_code
    finally:
        client.delete_cookie("__Host-portal_session")


def desktop_status(client: FlaskClient, desktop_token: str) -> int:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {desktop_token}"}).status_code
