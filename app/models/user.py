"""The User model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.account import Account
from app.roles import apps_for_roles
from app.timeutil import utcnow

ACTIVE = "active"
DEACTIVATED = "deactivated"

#: Where a user came from: the admin pages or the command line, a CSV import, the IdP over SCIM.
SOURCE_ADMIN, SOURCE_CSV, SOURCE_SCIM = "admin", "csv", "scim"


class User(UserMixin, Model):
    """A person of one account. Created by admins, a CSV import or the IdP's SCIM provisioning;
    never by a sign-in."""

    __tablename__ = "users"
    #: SCIM looks users up by the IdP's identifier within one account (Entra's object ID).
    __table_args__ = (Index("ix_users_account_id_external_id", "account_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    #: Normalised (trimmed, lower-cased) and unique across the whole system.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    #: Comma-separated role names, sorted (``admin,agent``); see ``app.roles``.
    roles: Mapped[str] = mapped_column(String(200), default="")
    #: ``active`` or ``deactivated``.
    status: Mapped[str] = mapped_column(String(20), default=ACTIVE, index=True)
    #: Werkzeug scrypt hash; empty for users who only sign in through SSO.
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    #: ``admin``, ``csv`` or ``scim``; a ``scim`` user is kept by the IdP, which overwrites manual changes.
    source: Mapped[str] = mapped_column(String(10), default=SOURCE_ADMIN, server_default=SOURCE_ADMIN)
    #: The IdP's identifier of the user (SCIM ``externalId``), as sent.
    external_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    #: When SCIM last changed the user.
    scim_updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: The customer roles the IdP gave through the ``roles`` attribute (comma-separated); the user's
    #: ``roles`` add those of their groups. Null until SCIM manages the user.
    scim_roles: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: Profile attributes the IdP sent that the product does not use (name parts, display name,
    #: emails), returned as sent so that the IdP sees no drift and does not resend them.
    scim_profile: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    account: Mapped[Account] = relationship()

    @property
    def role_list(self) -> list[str]:
        """The user's roles as a list."""
        return [role for role in self.roles.split(",") if role]

    @property
    def apps(self) -> frozenset[str]:
        """The apps this user's roles open."""
        return apps_for_roles(self.role_list)

    @property
    def is_active(self) -> bool:  # flask-login reads this
        return self.status == ACTIVE

    def __repr__(self) -> str:
        return f"<User {self.email}>"
