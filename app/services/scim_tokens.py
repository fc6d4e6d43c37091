"""SCIM tokens: the bearer tokens an account's IdP provisions with.

A token is shown once, when it is created; only its SHA-256 is kept (a fast hash is right: the
token is 256 random bits, not a password). An account holds at most ``MAX_LIVE_TOKENS`` live
tokens, so that an admin can rotate: create the new one, paste it into the IdP, revoke the old.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select, update

from app import audit
from app.errors import CodedError
from app.extensions import db
from app.models import Account, AuditEvent, ScimToken
from app.timeutil import utcnow

log = logging.getLogger(__name__)

#: Live tokens per account: one in use and its successor during a rotation.
MAX_LIVE_TOKENS = 2
#: Tokens start with this, so that a leaked one is recognisable (secret scanners, logs).
TOKEN_PREFIX = "scim_"
#: ``last_used_at`` is written at most this often per token.
LAST_USED_INTERVAL = dt.timedelta(seconds=60)
NAME_MAX_LENGTH = 100


class ScimTokenError(CodedError):
    """A token change that cannot be made; the message says why."""


@dataclass(frozen=True)
class NewScimToken:
    """A token just created, with the secret the IdP must keep (shown only this once)."""

    token: str
    row: ScimToken


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def scim_base_url() -> str:
    """The SCIM base URL an IdP is given ("Tenant URL", "SCIM connector base URL")."""
    return current_app.config["BASE_URL"].rstrip("/") + "/scim/v2"


def live_tokens(account_id: int) -> list[ScimToken]:
    return list(
        db.session.scalars(
            select(ScimToken)
            .where(ScimToken.account_id == account_id, ScimToken.revoked_at.is_(None))
            .order_by(ScimToken.created_at, ScimToken.id)
        )
    )


def list_tokens(account_id: int) -> list[ScimToken]:
    """Every token of the account, live ones first, newest first."""
    return list(
        db.session.scalars(
            select(ScimToken)
            .where(ScimToken.account_id == account_id)
            .order_by(ScimToken.revoked_at.is_not(None), ScimToken.created_at.desc(), ScimToken.id.desc())
        )
    )


def create_token(account: Account, *, name: str = "", actor: str | None = None) -> NewScimToken:
    """Create a token for ``account``; refused when it already holds two live ones. The caller commits."""
    name = (name or "").strip() or "SCIM token"
    if len(name) > NAME_MAX_LENGTH or not name.isprintable():
        raise ScimTokenError(
            "SCIM_TOKEN_NAME_INVALID", f"the token name must be printable, {NAME_MAX_LENGTH} characters at most"
        )
    live = db.session.scalar(
        select(func.count()).where(ScimToken.account_id == account.id, ScimToken.revoked_at.is_(None))
    )
    if (live or 0) >= MAX_LIVE_TOKENS:
        raise ScimTokenError(
            "SCIM_TOKEN_LIMIT",
            f"the account already has {MAX_LIVE_TOKENS} live SCIM tokens; revoke one before creating another",
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ScimToken(
        account_id=account.id,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 4],
        created_by=actor,
    )
    db.session.add(row)
    db.session.flush()
    audit.record("scim.token.create", account_id=account.id, actor=actor, details={"token_id": row.id, "name": name})
    return NewScimToken(token=secret, row=row)


def revoke_token(token: ScimToken, *, actor: str | None = None) -> bool:
    """Revoke ``token``; False when it already was. The caller commits."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    audit.record(
        "scim.token.revoke",
        account_id=token.account_id,
        actor=actor,
        details={"token_id": token.id, "name": token.name},
    )
    return True


#: The audit action of a refused SCIM token; counted to rate-limit guessing, like password sign-ins.
AUTH_FAILURE = "scim.auth"


def auth_failures_since(ip: str | None, window_seconds: int) -> int:
    """Refused SCIM tokens from ``ip`` in the last ``window_seconds``."""
    if not ip:
        return 0
    since = utcnow() - dt.timedelta(seconds=window_seconds)
    return (
        db.session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == AUTH_FAILURE,
                AuditEvent.outcome == "failure",
                AuditEvent.created_at >= since,
                AuditEvent.ip == ip,
            )
        )
        or 0
    )


def record_auth_failure(*, has_header: bool) -> None:
    """Audit a refused SCIM request (never the token it carried). The caller commits."""
    audit.record(
        AUTH_FAILURE,
        outcome="failure",
        error_code="SCIM_TOKEN_INVALID" if has_header else "SCIM_TOKEN_MISSING",
        actor="anonymous",
    )


def authenticate(raw: str | None) -> ScimToken | None:
    """The live token ``raw`` names (with its account), noting its use; None for anything else.

    Commits the ``last_used_at`` write itself (at most once a minute), like a session's slide:
    it must land even when the request is then refused.
    """
    if not raw or len(raw) > 200 or not raw.isascii():
        return None
    token = db.session.scalar(
        select(ScimToken).where(ScimToken.token_hash == hash_token(raw.strip()), ScimToken.revoked_at.is_(None))
    )
    if token is None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_INTERVAL:
        db.session.execute(update(ScimToken).where(ScimToken.id == token.id).values(last_used_at=now))
        db.session.commit()
        token.last_used_at = now
    return token
