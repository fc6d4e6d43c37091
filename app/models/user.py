"""The User model."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.account import Account
from app.roles import apps_for_roles
from app.timeutil import utcnow

ACTIVE = "active"
DEACTIVATED = "deactivated"


class User(UserMixin, Model):
    """A person of one account. Created by admins or CSV import, never by the IdP."""

    __tablename__ = "users"

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
