"""User services: creation, email normalisation, and the one deactivate/delete hook.

Every path that deactivates or deletes a user (command line, admin pages, CSV import) calls
``deactivate_user`` or ``delete_user``, which revoke all of the user's sessions in the same
transaction: their next request anywhere is refused.
"""

from __future__ import annotations

import functools
import re

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from werkzeug.security import generate_password_hash

from app import audit
from app.errors import CodedError
from app.extensions import db
from app.models import Account, User, UserSession
from app.models.user import ACTIVE, DEACTIVATED
from app.roles import STAFF_ROLES, apps_for_roles
from app.sessions import revoke_sessions_for_user

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class UserError(CodedError):
    """A user change that cannot be made; the message says why."""


#: An email that cannot be given to a user of this account: it belongs to another account (emails
#: are unique across the system), or it is otherwise unusable. One code and one sentence for every
#: such case, so that an admin cannot learn which addresses other customers have.
EMAIL_UNAVAILABLE = "EMAIL_UNAVAILABLE"
EMAIL_UNAVAILABLE_MESSAGE = "this email cannot be used here"


def normalise_email(raw: str) -> str:
    """Trim and lower-case the ASCII letters only.

    ``str.lower`` would fold look-alikes into ASCII (the Kelvin sign U+212A becomes ``k``), letting
    a crafted IdP address match someone else's; non-ASCII characters are left exactly as they are,
    so they never equal an ASCII address.
    """
    # NUL can be in no address, and PostgreSQL cannot store or even compare it: it becomes U+FFFD,
    # which matches nobody either.
    text = raw.strip().replace("\x00", "\ufffd")
    # For ASCII text ``lower`` changes exactly A-Z, and is several times faster (CSV imports).
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


#: RFC 5322 dot-atom of ASCII characters: a local part that email-validator accepts as it is.
_PLAIN_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
#: An ASCII host name without Punycode, which email-validator returns unchanged when it is valid.
_PLAIN_DOMAIN = re.compile(r"[a-z0-9.-]+")
#: Longest address, in octets (RFC 5321 via email-validator).
EMAIL_MAX_LENGTH = 254


def _validate(email: str) -> None:
    validate_email(email, check_deliverability=False, globally_deliverable=False)


@functools.lru_cache(maxsize=4096)
def _domain_is_valid(domain: str) -> bool:
    """Whether email-validator accepts ``domain``; its verdict depends on the domain alone.

    An import of 100,000 users checks a handful of domains 100,000 times: the domain check is the
    costly part of email-validator (Unicode tables, IDNA), so its answer is remembered.
    """
    try:
        _validate(f"x@{domain}")
    except EmailNotValidError:
        return False
    return True


def check_email(raw: str) -> str:
    """Return the normalised email, or raise UserError when it is not a valid address.

    Plain ASCII addresses (a dot-atom local part, a host name without Punycode, 254 octets at
    most) take a fast path with the same verdict; everything else, and every refusal with its
    message, goes through email-validator itself.
    """
    email = normalise_email(raw)
    if "\ufffd" in email or _CONTROL_CHARACTERS.search(email):
        raise UserError("EMAIL_INVALID", f"{email!r} is not a valid email address: it contains control characters")
    local, _at, domain = email.rpartition("@")
    if (
        len(email) <= EMAIL_MAX_LENGTH
        and _PLAIN_LOCAL.fullmatch(local)
        and _PLAIN_DOMAIN.fullmatch(domain)
        and "xn--" not in domain
        and _domain_is_valid(domain)
    ):
        return email
    try:
        _validate(email)
    except EmailNotValidError as exc:
        raise UserError("EMAIL_INVALID", f"{email!r} is not a valid email address: {exc}") from None
    return email


#: The ``users.name`` column's length.
NAME_MAX_LENGTH = 200
#: C0 and C1 control characters (NUL, escape, DEL ...).
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")


def check_name(raw: str) -> str:
    """Return the trimmed display name, or raise UserError.

    Control characters are refused: PostgreSQL cannot store NUL in text, and the others garble
    pages and exports.
    """
    name = raw.strip()
    if len(name) > NAME_MAX_LENGTH:
        raise UserError("NAME_INVALID", f"the name has {len(name)} characters; {NAME_MAX_LENGTH} at most")
    if _CONTROL_CHARACTERS.search(name):
        raise UserError("NAME_INVALID", "the name contains control characters")
    return name


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
    """Create a user in ``account``. The caller commits.

    An email already used in this account says so (``USER_EXISTS``); one used in another account
    gets the neutral ``EMAIL_UNAVAILABLE``, which tells nothing about other customers.
    """
    email = check_email(email)
    name = check_name(name)
    existing = find_user_by_email(email)
    if existing is not None and existing.account_id == account.id:
        raise UserError("USER_EXISTS", f"already a user of this account: {email}")
    if existing is not None:
        raise UserError(EMAIL_UNAVAILABLE, EMAIL_UNAVAILABLE_MESSAGE)
    user = User(
        account_id=account.id,
        email=email,
        name=name,
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


def update_user(user: User, *, name: str, roles: list[str], actor: str | None = None) -> bool:
    """Set a user's name and customer roles; returns False when nothing changed. The caller commits.

    Staff roles are kept as they are: only the command line gives or takes them, never an
    account's admin or an import. Losing a role ends the sessions of the apps it opened and the
    remaining roles do not (admin to agent: portal sessions end, desktop and mobile stay), so that
    giving the role back later does not revive them.
    """
    name = check_name(name)
    staff = {role for role in user.role_list if role in STAFF_ROLES}
    new_roles = ",".join(sorted(set(roles) | staff))
    if name == user.name and new_roles == user.roles:
        return False
    before = {"name": user.name, "roles": user.role_list}
    lost_apps = apps_for_roles(user.role_list) - apps_for_roles(new_roles.split(","))
    user.name, user.roles = name, new_roles
    audit.record(
        "user.update",
        account_id=user.account_id,
        subject_email=user.email,
        actor=actor,
        details={"before": before, "after": {"name": user.name, "roles": user.role_list}},
    )
    if lost_apps:
        revoke_sessions_for_user(user, "role_removed", actor=actor, apps=lost_apps)
    return True


def deactivate_user(user: User, *, actor: str | None = None, reason: str = "user_deactivated") -> int:
    """Deactivate ``user`` and revoke all their sessions; returns how many were revoked."""
    user.status = DEACTIVATED
    revoked = revoke_sessions_for_user(user, reason, actor=actor)
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
    revoked = revoke_sessions_for_user(user, "user_deleted", actor=actor)
    db.session.execute(update(UserSession).where(UserSession.user_id == user.id).values(user_id=None))
    audit.record(
        "user.delete",
        account_id=user.account_id,
        subject_email=user.email,
        actor=actor,
        details={"sessions_revoked": revoked},
    )
    db.session.delete(user)
    return revoked
