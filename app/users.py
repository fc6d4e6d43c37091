"""User services: creation, email normalisation, and the one deactivate/delete hook.

Every path that deactivates or deletes a user (command line, admin pages, CSV import) calls
``deactivate_user`` or ``delete_user``, which revoke all of the user's sessions in the same
transaction: their next request anywhere is refused.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from werkzeug.security import generate_password_hash

from app import audit
from app.extensions import db
from app.models import Account, User, UserSession
from app.models.user import ACTIVE, DEACTIVATED
from app.sessions import revoke_sessions_for_user

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class UserError(ValueError):
    """A user change that cannot be made; the message says why."""


def normalise_email(raw: str) -> str:
    """Trim and lower-case the ASCII letters only.

    ``str.lower`` would fold look-alikes into ASCII (the Kelvin sign U+212A becomes ``k``), letting
    a crafted IdP address match someone else's; non-ASCII characters are left exactly as they are,
    so they never equal an ASCII address.
    """
    return raw.strip().translate(_ASCII_LOWER)


def check_email(raw: str) -> str:
    """Return the normalised email, or raise UserError when it is not a valid address."""
    email = normalise_email(raw)
    try:
        validate_email(email, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        raise UserError(f"{email!r} is not a valid email address: {exc}") from None
    return email


def find_user_by_email(email: str) -> User | None:
    """Look a user up by normalised email (unique across all accounts)."""
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(
    account: Account,
    email: str,
    *,
    roles: list[str],
    name: str = "",
    password: str | None = None,
    actor: str | None = None,
) -> User:
    """Create a user in ``account``. The caller commits."""
    email = check_email(email)
    if find_user_by_email(email) is not None:
        raise UserError(f"a user with the email {email} already exists")
    user = User(
        account_id=account.id,
        email=email,
        name=name.strip(),
        roles=",".join(sorted(set(roles))),
        status=ACTIVE,
        password_hash=generate_password_hash(password) if password else None,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.create",
        account_id=account.id,
        subject_email=email,
        actor=actor,
        details={"roles": user.role_list, "name": user.name},
    )
    return user


def deactivate_user(user: User, *, actor: str | None = None, reason: str = "user_deactivated") -> int:
    """Deactivate ``user`` and revoke all their sessions; returns how many were revoked."""
    user.status = DEACTIVATED
    revoked = revoke_sessions_for_user(user.id, reason)
    audit.record(
        "user.deactivate",
        account_id=user.account_id,
        subject_email=user.email,
        actor=actor,
        details={"sessions_revoked": revoked},
    )
    return revoked


def reactivate_user(user: User, *, actor: str | None = None) -> None:
    """Let a deactivated user sign in again (their old sessions stay revoked)."""
    user.status = ACTIVE
    audit.record("user.reactivate", account_id=user.account_id, subject_email=user.email, actor=actor)


def delete_user(user: User, *, actor: str | None = None) -> int:
    """Delete ``user``; their sessions are revoked first and kept, detached, for the record."""
    revoked = revoke_sessions_for_user(user.id, "user_deleted")
    db.session.execute(
        update(UserSession).where(UserSession.user_id == user.id).values(user_id=None)
    )
    audit.record(
        "user.delete",
        account_id=user.account_id,
        subject_email=user.email,
        actor=actor,
        details={"sessions_revoked": revoked},
    )
    db.session.delete(user)
    return revoked
