"""Accounts as the support console lists them: user counts and SSO status."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select

from app.extensions import db
from app.models import Account, IdpConnection, User
from app.models.idp_connection import ENABLED
from app.models.user import ACTIVE
from app.services.listing import PAGE_SIZE

# --- accounts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    """An account with its user counts and how its users sign in."""

    account: Account
    users: int
    active_users: int
    #: Statuses of its IdP connections (``enabled``, ``tested``, ``draft``), one per connection.
    connection_statuses: tuple[str, ...]

    @property
    def sso_enabled(self) -> bool:
        return ENABLED in self.connection_statuses


def list_accounts(
    search: str = "", *, after: str | None = None, limit: int = PAGE_SIZE
) -> tuple[list[AccountRow], str | None]:
    """Accounts by slug (keyset on the unique slug), with counts in two grouped queries."""
    query = select(Account).order_by(Account.slug).limit(limit + 1)
    search = search.strip().lower()[:100]
    if search:
        query = query.where(
            or_(
                Account.slug.contains(search, autoescape=True),
                func.lower(Account.name).contains(search, autoescape=True),
            )
        )
    if after:
        query = query.where(Account.slug > after[:64])
    accounts = list(db.session.scalars(query))
    more = len(accounts) > limit
    accounts = accounts[:limit]
    ids = [account.id for account in accounts]
    counts: dict[int, tuple[int, int]] = {}
    statuses: dict[int, list[str]] = {}
    if ids:
        for account_id, total, active in db.session.execute(
            select(User.account_id, func.count(User.id), func.count(User.id).filter(User.status == ACTIVE))
            .where(User.account_id.in_(ids))
            .group_by(User.account_id)
        ):
            counts[account_id] = (total, active)
        for account_id, status in db.session.execute(
            select(IdpConnection.account_id, IdpConnection.status).where(IdpConnection.account_id.in_(ids))
        ):
            statuses.setdefault(account_id, []).append(status)
    rows = [
        AccountRow(account, *counts.get(account.id, (0, 0)), tuple(sorted(statuses.get(account.id, []))))
        for account in accounts
    ]
    return rows, accounts[-1].slug if more else None
