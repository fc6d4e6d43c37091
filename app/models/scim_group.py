"""The ScimGroup model."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.timeutil import utcnow


class ScimGroup(Model):
    """A group the account's IdP pushed over SCIM. Its name may map to a role (``ScimGroupRole``)."""

    __tablename__ = "scim_groups"
    __table_args__ = (Index("ix_scim_groups_account_id_display_name", "account_id", "display_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(256))
    #: The IdP's own identifier of the group (Entra's object ID), as it sent it.
    external_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
