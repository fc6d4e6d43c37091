"""The ScimGroupRole model."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model


class ScimGroupRole(Model):
    """One account's rule "members of the IdP group NAME get role ROLE".

    Keyed by the group's name, not its row: an admin sets the mapping before the IdP pushes the
    group, and a group the IdP deletes and pushes again keeps its role.
    """

    __tablename__ = "scim_group_roles"
    __table_args__ = (UniqueConstraint("account_id", "group_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    #: The group's name as the admin typed it.
    group_name: Mapped[str] = mapped_column(String(256))
    #: The name trimmed and case-folded: "Sales Admins" and "sales admins" are one group.
    group_key: Mapped[str] = mapped_column(String(256))
    #: A customer role (``admin`` or ``agent``).
    role: Mapped[str] = mapped_column(String(20))
