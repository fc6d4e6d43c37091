"""The setup wizard's state and who may use it: which accounts and connections a person may
read or change, where a connection is in the wizard, and the values its walkthrough shows.

Reading and changing are two rights. An account's admins have both for their own account. Staff
(role ``support``) read every account's SSO setup (connections, certificates, diagnostics, test
results, walkthroughs) but change none of it, nor another account's users: connecting a
customer's account to an IdP, or giving a role, decides who signs in there, and staff never decide
that (the operator's ``flask`` commands are the way to act for a customer). A staff member who is
also an admin of their own account keeps those admin rights there.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from app import audit
from app.errors import CodedError
from app.extensions import db
from app.models import Account, IdpConnection
from app.models.idp_connection import ENABLED, TESTED
from app.roles import Actor
from app.saml import active_encryption_keys, sp_values

#: The staff role: opens the wizard for every account.
STAFF_ROLE = "support"
#: Most accounts listed on the staff's account chooser.
ACCOUNT_CHOOSER_LIMIT = 200


def is_staff(user: Actor) -> bool:
    """Whether ``user`` is support staff (every account, not only their own)."""
    return STAFF_ROLE in user.role_list


#: The stable code of a change refused because the person may only read.
READ_ONLY_CODE = "STAFF_READ_ONLY"


class ReadOnlyAccessError(CodedError):
    """A person who may read an account's setup or users tried to change them (staff, mostly)."""

    status = 403

    def __init__(self, account_id: int | None) -> None:
        super().__init__(
            READ_ONLY_CODE,
            "Support staff can read this account's single sign-on setup but not change it, nor its users. "
            "Nothing was changed. The account's admins make these changes (or the operator, from the command line).",
        )
        self.account_id = account_id


def may_change(user: Actor, account_id: int) -> bool:
    """Whether ``user`` may change the SSO setup and users of ``account_id``: its own admins only."""
    return "admin" in user.role_list and user.account_id == account_id


def may_read(user: Actor, account_id: int) -> bool:
    """Whether ``user`` may open the SSO setup of ``account_id``: its admins, and staff (read only)."""
    return is_staff(user) or may_change(user, account_id)


def require_change(user: Actor, account_id: int | None) -> None:
    """Raise ``ReadOnlyAccessError`` unless ``user`` may change ``account_id``'s setup and users."""
    if account_id is None or not may_change(user, account_id):
        raise ReadOnlyAccessError(account_id)


def record_refused_change(user: Actor, err: ReadOnlyAccessError, *, method: str, path: str, endpoint: str) -> None:
    """Audit a refused change (who, which account, which route); the caller commits."""
    audit.record(
        "access.refused",
        outcome="failure",
        error_code=err.code,
        account_id=err.account_id,
        actor=user.email,
        details={"method": method, "path": path[:300], "endpoint": endpoint},
    )


def readable_account(user: Actor, slug: str) -> Account | None:
    """The account ``slug`` if ``user`` may read its setup; None otherwise (its existence stays hidden)."""
    account = db.session.scalar(select(Account).where(Account.slug == slug))
    return account if account is not None and may_read(user, account.id) else None


def readable_connection(user: Actor, connection_id: int) -> IdpConnection | None:
    """The connection if ``user`` may read its account's setup; None otherwise (existence hidden)."""
    connection = db.session.get(IdpConnection, connection_id)
    return connection if connection is not None and may_read(user, connection.account_id) else None


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


#: The contact email in a walkthrough file read by someone outside the account (staff).
CONTACT_EMAIL_PLACEHOLDER = "(your admin email address)"


def walkthrough_values(connection: IdpConnection, reader: Actor) -> dict[str, str]:
    """This connection's real SP values, as the plugins' placeholders name them, and the email of
    the admin ``reader`` (the contact Salesforce's files ask for); staff reading another account's
    walkthrough see a placeholder instead of their own address."""
    return {
        "admin_email": reader.email if reader.account_id == connection.account_id else CONTACT_EMAIL_PLACEHOLDER,
        **sp_values(connection).as_dict(),
        "account_name": connection.account.name,
        "sp_certificate": connection.sp_certificate,
        "sp_encryption_certificate": next(
            (key.certificate for key in active_encryption_keys(connection)),
            "(Turn on assertion encryption for this connection first: its certificate appears here.)",
        ),
    }


def idp_side_complete(connection: IdpConnection) -> bool:
    """Whether the IdP side (entity ID, an http(s) SSO URL, a certificate) is in, so a test can run."""
    sso_url = connection.idp_sso_url.lower()
    return bool(connection.idp_entity_id and sso_url.startswith(("https://", "http://")) and connection.certificates)


def wizard_step(connection: IdpConnection) -> str:
    """Where the admin is in the wizard: ``configure``, ``import``, ``test``, ``enable`` or ``live``."""
    if connection.status == ENABLED:
        return "live"
    if not idp_side_complete(connection):
        return "import" if connection.idp_entity_id else "configure"
    if connection.status == TESTED:
        return "enable"
    return "test"
