"""The setup wizard's state and who may use it: which accounts and connections a person may
manage, where a connection is in the wizard, and the values its walkthrough shows."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from app.extensions import db
from app.models import Account, IdpConnection, User
from app.models.idp_connection import ENABLED, TESTED
from app.saml import active_encryption_keys, sp_values

#: The staff role: opens the wizard for every account.
STAFF_ROLE = "support"
#: Most accounts listed on the staff's account chooser.
ACCOUNT_CHOOSER_LIMIT = 200


def is_staff(user: User) -> bool:
    """Whether ``user`` is support staff (every account, not only their own)."""
    return STAFF_ROLE in user.role_list


def may_manage(user: User, account_id: int) -> bool:
    """Whether ``user`` may open the SSO setup of ``account_id``: its admins, and staff."""
    return is_staff(user) or ("admin" in user.role_list and user.account_id == account_id)


def manageable_account(user: User, slug: str) -> Account | None:
    """The account ``slug`` if ``user`` may manage it; None otherwise (its existence stays hidden)."""
    account = db.session.scalar(select(Account).where(Account.slug == slug))
    return account if account is not None and may_manage(user, account.id) else None


def manageable_connection(user: User, connection_id: int) -> IdpConnection | None:
    """The connection if ``user`` may manage its account; None otherwise (existence hidden)."""
    connection = db.session.get(IdpConnection, connection_id)
    return connection if connection is not None and may_manage(user, connection.account_id) else None


def accounts_for_staff(search: str) -> tuple[list[Account], dict[int, int]]:
    """The staff's account chooser: accounts by name (filtered by ``search`` on name or slug),
    and how many connections each has."""
    query = select(Account).order_by(Account.name, Account.id).limit(ACCOUNT_CHOOSER_LIMIT)
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(or_(func.lower(Account.name).like(pattern), Account.slug.like(pattern)))
    accounts = list(db.session.scalars(query))
    counts = dict(
        db.session.execute(
            select(IdpConnection.account_id, func.count(IdpConnection.id))
            .where(IdpConnection.account_id.in_([account.id for account in accounts]))
            .group_by(IdpConnection.account_id)
        )
        .tuples()
        .all()
    )
    return accounts, counts


def walkthrough_values(connection: IdpConnection) -> dict[str, str]:
    """This connection's real SP values, as the plugins' placeholders name them."""
    return {
        **sp_values(connection).as_dict(),
        "account_name": connection.account.name,
        "sp_certificate": connection.sp_certificate,
        "sp_encryption_certificate": next(
            (key.certificate for key in active_encryption_keys(connection)),
            "(Turn on assertion encryption for this connection first: its certificate appears here.)",
        ),
    }


def idp_side_complete(connection: IdpConnection) -> bool:
    """Whether the IdP side (entity ID, SSO URL, a certificate) is in, so a test can run."""
    return bool(connection.idp_entity_id and connection.idp_sso_url and connection.certificates)


def wizard_step(connection: IdpConnection) -> str:
    """Where the admin is in the wizard: ``configure``, ``import``, ``test``, ``enable`` or ``live``."""
    if connection.status == ENABLED:
        return "live"
    if not idp_side_complete(connection):
        return "import" if connection.idp_entity_id else "configure"
    if connection.status == TESTED:
        return "enable"
    return "test"
