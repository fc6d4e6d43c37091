"""An account's users as its admins list them: search, role and status filters, pages by email."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, func, or_, select

from app.extensions import db
from app.models import User, UserSession
from app.models.user import ACTIVE, DEACTIVATED
from app.roles import CUSTOMER_ROLES
from app.services.listing import PAGE_SIZE, choice

USER_STATUSES = (ACTIVE, DEACTIVATED)


# --- an account's users (admin pages) --------------------------------------------------------


@dataclass(frozen=True)
class UserFilters:
    """Search and filters of an admin's user list."""

    #: Part of an email or a name.
    search: str = ""
    role: str = ""
    status: str = ""

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> UserFilters:
        return cls(
            search=(args.get("q") or "").strip()[:100],
            role=choice(args, "role", tuple(CUSTOMER_ROLES), "FILTER_ROLE_INVALID"),
            status=choice(args, "status", USER_STATUSES, "FILTER_STATUS_INVALID"),
        )

    def as_args(self) -> dict[str, str]:
        values = {"q": self.search, "role": self.role, "status": self.status}
        return {key: value for key, value in values.items() if value}


@dataclass
class UserList:
    """A page of users by email, the number matching in all, and the neighbouring pages' cursors."""

    users: list[User]
    total: int
    #: The last email of this page, when a next page exists.
    next_after: str | None
    #: The first email of this page, when a previous page exists.
    previous_before: str | None
    #: User id -> when they last signed in (their newest session), for the users who ever did
    #: and whose sessions are still kept (``flask sessions purge`` removes long-ended ones).
    last_sign_in: dict[int, dt.datetime] = field(default_factory=dict)


def last_sign_ins(user_ids: list[int]) -> dict[int, dt.datetime]:
    """When each user last signed in (web or app): one grouped query for a whole page, read from
    the ``(user_id, created_at, ...)`` index, not one per user."""
    if not user_ids:
        return {}
    rows = db.session.execute(
        select(UserSession.user_id, func.max(UserSession.created_at))
        .where(UserSession.user_id.in_(user_ids))
        .group_by(UserSession.user_id)
    ).tuples()
    return {user_id: at for user_id, at in rows if user_id is not None}


def _has_role(role: str) -> ColumnElement[bool]:
    """``roles`` holds sorted, comma-separated names: match the whole name, never a part of one."""
    return or_(
        User.roles == role,
        User.roles.startswith(f"{role},", autoescape=True),
        User.roles.endswith(f",{role}", autoescape=True),
        User.roles.contains(f",{role},", autoescape=True),
    )


def list_users(
    account_id: int,
    filters: UserFilters,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = PAGE_SIZE,
) -> UserList:
    """The users of one account, by email (keyset on the unique email), one page."""
    query = select(User).where(User.account_id == account_id)
    if filters.search:
        needle = filters.search.lower()
        query = query.where(
            or_(User.email.contains(needle, autoescape=True), func.lower(User.name).contains(needle, autoescape=True))
        )
    if filters.role:
        query = query.where(_has_role(filters.role))
    if filters.status:
        query = query.where(User.status == filters.status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if before:
        users = list(
            db.session.scalars(query.where(User.email < before[:320]).order_by(User.email.desc()).limit(limit + 1))
        )
        more_before = len(users) > limit
        users = list(reversed(users[:limit]))
        return UserList(
            users,
            total,
            users[-1].email if users else None,
            users[0].email if more_before and users else None,
            last_sign_ins([user.id for user in users]),
        )
    if after:
        query = query.where(User.email > after[:320])
    users = list(db.session.scalars(query.order_by(User.email).limit(limit + 1)))
    more_after = len(users) > limit
    users = users[:limit]
    return UserList(
        users,
        total,
        users[-1].email if more_after else None,
        users[0].email if after and users else None,
        last_sign_ins([user.id for user in users]),
    )
