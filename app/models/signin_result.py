"""A verified SAML sign-in waiting for its same-site finishing request."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.timeutil import utcnow


class SignInResult(Model):
    """What the ACS verified, kept for the finishing request (``GET /sso/finish``).

    The IdP's POST to the ACS is cross-site, so it arrives without the portal's SameSite=Lax
    session cookie: the ACS cannot see who this browser is signed in as. It validates the
    response and stores this row; the browser then follows a 303 to a same-site URL that carries
    the portal's cookies, where the session decision is taken and the row is claimed (deleted).
    Short-lived and single-use; bound to the browser by a cookie the ACS sets.
    """

    __tablename__ = "signin_results"

    #: SHA-256 (hex) of the one-time token in the finishing URL; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: SHA-256 of the random value of the finishing cookie the ACS set on this browser.
    browser_binding_hash: Mapped[str] = mapped_column(String(64))
    #: SHA-256 of the browser-binding cookie the AuthnRequest was started with (SP-initiated
    #: only): checked at the finishing request when the cross-site POST did not carry it.
    request_binding_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("idp_connections.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: The email the IdP vouched for (normalised), as matched to ``user_id``.
    email: Mapped[str] = mapped_column(String(320))
    saml_name_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    saml_session_index: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    #: The app the sign-in is for (``portal``).
    app: Mapped[str] = mapped_column(String(20))
    #: The AuthnRequest this answered; None for an IdP-initiated response.
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: Where to go afterwards: a checked path on this site.
    next_path: Mapped[str] = mapped_column(Text, default="/")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
