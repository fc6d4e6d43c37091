"""Desktop and mobile app sign-in (RFC 8252 with PKCE): authorization requests and one-time codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.timeutil import utcnow


class AppAuthorizationRequest(Model):
    """An app's checked request to sign a user in, waiting for the SAML sign-in it started.

    The pending AuthnRequest names it in its ``purpose`` (``app:<id>``); the ACS reads it back to
    know where to send the code. Deleted when the sign-in ends, either way.
    """

    __tablename__ = "app_authorization_requests"

    #: Random, URL-safe.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``desktop`` or ``mobile``.
    app: Mapped[str] = mapped_column(String(20))
    #: Checked against the allowed redirect URIs before it was stored; the code goes only here.
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    #: PKCE S256 challenge: BASE64URL(SHA-256(code_verifier)).
    code_challenge: Mapped[str] = mapped_column(String(128))
    #: The app's opaque value, returned unchanged with the code (CSRF protection for the app).
    state: Mapped[str] = mapped_column(String(512))
    login_hint: Mapped[str | None] = mapped_column(String(320), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class AppAuthorizationCode(Model):
    """A one-time code given to an app after sign-in, exchanged once for an app session."""

    __tablename__ = "app_authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 (hex) of the code; the code itself is never stored.
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    app: Mapped[str] = mapped_column(String(20))
    #: The exchange must present exactly this redirect URI (RFC 6749 4.1.3).
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    code_challenge: Mapped[str] = mapped_column(String(128))
    #: The SAML sign-in behind the code, copied onto the app session.
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("idp_connections.id", ondelete="SET NULL"), nullable=True
    )
    saml_name_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    saml_session_index: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    #: Set by the first exchange attempt: a code is spent once presented, whatever the outcome.
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: The session the code was exchanged for, revoked if the code is ever presented again.
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True)
