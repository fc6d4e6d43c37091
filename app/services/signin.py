"""Who gets in: match a verified IdP identity to a product user and check their access.

Rules 1 and 2 of DESIGN.md: the email is matched within the account that owns the connection
only, and the user must be active and hold a role for the app.
"""

from __future__ import annotations

from sqlalchemy import select

from app.errors import SignInError
from app.extensions import db
from app.models import IdpConnection, User
from app.models.idp_connection import ENABLED
from app.models.user import ACTIVE
from app.saml.core import VerifiedAssertion, email_attributes_for
from app.services.users import find_user_by_email, normalise_email

EMAIL_NAMEID_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"


def email_from_assertion(assertion: VerifiedAssertion) -> str:
    """The email the IdP vouches for: the first named attribute with a value, else the NameID.

    The NameID is used only when it looks like an email address (emailAddress format, or an
    unspecified one containing ``@``): a persistent or transient ID is never an email.
    """
    for name in email_attributes_for(assertion.connection):
        for value in assertion.attributes.get(name, []):
            if value and value.strip():
                return normalise_email(value)
    name_id = (assertion.name_id or "").strip()
    nameid_is_email = assertion.name_id_format in (None, EMAIL_NAMEID_FORMAT) or (
        assertion.name_id_format or ""
    ).endswith(":unspecified")
    if name_id and "@" in name_id and nameid_is_email:
        return normalise_email(name_id)
    raise SignInError(
        "SAML_NO_EMAIL", "neither an email attribute nor an email NameID", connection_id=assertion.connection.id
    )


def match_user(account_id: int, email: str) -> User | None:
    """The user with ``email`` inside ``account_id``, or None (other accounts are never searched)."""
    return db.session.scalar(select(User).where(User.account_id == account_id, User.email == email))


def authorize(account_id: int, email: str, app_name: str) -> User:
    """Return the user allowed into ``app_name``, or raise the refusal with its code."""
    user = match_user(account_id, email)
    if user is None:
        raise SignInError("USER_NOT_FOUND", f"no user {email!r} in account {account_id}", email=email)
    if user.status != ACTIVE:
        raise SignInError("USER_DEACTIVATED", f"user {email} is {user.status}", email=email)
    if app_name not in user.apps:
        raise SignInError("NO_ROLE_FOR_APP", f"roles {user.role_list} do not open {app_name}", email=email)
    return user


def connection_for_email(email: str) -> tuple[User | None, IdpConnection]:
    """Find the enabled IdP connection of the account that owns ``email``.

    Raises SSO_NOT_CONFIGURED both for an unknown email and for an account without SSO, so the
    answer does not tell a stranger which addresses exist.
    """
    user = find_user_by_email(email)
    if user is None:
        raise SignInError("SSO_NOT_CONFIGURED", "no user with this email", email=normalise_email(email))
    connection = db.session.scalar(
        select(IdpConnection)
        .where(IdpConnection.account_id == user.account_id, IdpConnection.status == ENABLED)
        .order_by(IdpConnection.updated_at.desc(), IdpConnection.id.desc())
        .limit(1)
    )
    if connection is None:
        raise SignInError(
            "SSO_NOT_CONFIGURED",
            "the account has no enabled IdP connection",
            email=user.email,
            account_id=user.account_id,
        )
    return user, connection
