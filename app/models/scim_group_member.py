"""The ScimGroupMember model."""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model


class ScimGroupMember(Model):
    """A user's membership of a SCIM group, as the IdP last said it."""

    __tablename__ = "scim_group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("scim_groups.id", ondelete="CASCADE"), primary_key=True)
    #: Indexed: a user's groups decide their roles, and are read on every SCIM change to the user.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
