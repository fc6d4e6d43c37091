"""The ScimToken model."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.account import Account
from app.timeutil import utcnow


class ScimToken(Model):
    """A bearer token an account's IdP uses to provision users over SCIM.

    The IdP holds the token; only its SHA-256 is kept, as for sessions. An account holds at most
    two live tokens, so that a new one can be set in the IdP before the old one is revoked.
    """

    __tablename__ = "scim_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    #: What the admin called it ("Okta"); the actor of every audit event the token causes.
    name: Mapped[str] = mapped_column(String(100))
    #: SHA-256 (hex) of the token the IdP holds.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The token's first characters, so that an admin can tell two tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    #: Who created it (an admin's email, or ``cli``).
    created_by: Mapped[str | None] = mapped_column(String(320), nullable=True)
    #: Written at most once a minute, so that a busy IdP does not write on every request.
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    account: Mapped[Account] = relationship()

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None
