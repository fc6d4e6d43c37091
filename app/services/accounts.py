"""Account services: create an account, find one by slug, and its "SSO required" switch.

Callers commit. The command line and the setup pages both come here, so an operator and an
admin are held to the same rules.
"""

from __future__ import annotations

from sqlalchemy import select

from app import audit
from app.errors import CodedError
from app.extensions import db
from app.models import Account, IdpConnection
from app.models.idp_connection import ENABLED
from app.services.connection_tests import has_successful_test
from app.services.connections import ConnectionChangeError
from app.sessions import revoke_password_sessions

#: Longest slug the ``accounts.slug`` column holds.
MAX_SLUG_LENGTH = 64


class AccountError(CodedError):
    """An account change that cannot be made; the message says why."""


def normalise_slug(raw: str) -> str:
    """Slugs are compared trimmed and lower-cased, so ``Acme`` and ``acme`` are one account."""
    return raw.strip().lower()


def find_account(slug: str) -> Account | None:
    """The account with this slug (any case, surrounding spaces ignored), or None."""
    return db.session.scalar(select(Account).where(Account.slug == normalise_slug(slug)))


def create_account(slug: str, name: str, *, sso_required: bool = False, actor: str | None = None) -> Account:
    """Add a new account; the slug (letters, digits, dashes) appears in setup URLs and commands.

    Raises ``AccountError`` with ``ACCOUNT_INVALID`` for a malformed slug and ``ACCOUNT_EXISTS``
    when the slug is taken.
    """
    slug = normalise_slug(slug)
    if not slug.replace("-", "").isalnum() or len(slug) > MAX_SLUG_LENGTH:
        raise AccountError(
            "ACCOUNT_INVALID", f"the slug may contain letters, digits and dashes ({MAX_SLUG_LENGTH} at most)"
        )
    if find_account(slug) is not None:
        raise AccountError("ACCOUNT_EXISTS", f"an account {slug!r} already exists")
    account = Account(slug=slug, name=name.strip(), sso_required=sso_required)
    db.session.add(account)
    db.session.flush()
    audit.record(
        "account.create", account_id=account.id, actor=actor, details={"slug": slug, "sso_required": sso_required}
    )
    return account


# --- the account's "SSO required" switch --------------------------------------------------------


def sso_ready_connection(account: Account) -> IdpConnection | None:
    """The account's enabled connection through which a test sign-in fully succeeded, if any."""
    for connection in db.session.scalars(
        select(IdpConnection).where(IdpConnection.account_id == account.id, IdpConnection.status == ENABLED)
    ):
        if has_successful_test(connection):
            return connection
    return None


def set_sso_required(account: Account, required: bool, *, actor: str | None = None) -> int:
    """Switch "SSO required" on (only with a tested, enabled connection) or off (always).

    Switching it on also ends the account's password sessions at once (SSO and app sessions stay):
    "SSO required" must not leave a password sign-in from before the switch alive for 21 more
    days. Returns how many sessions were revoked (0 when nothing changed or when switching off).

    ``flask accounts sso-required SLUG --off`` is the operator's way back if the IdP breaks. The
    refusal is a ``ConnectionChangeError`` (``SSO_NOT_READY``): what is missing is a proven
    connection, and the setup page already handles that class.
    """
    if required and not account.sso_required and sso_ready_connection(account) is None:
        raise ConnectionChangeError(
            "SSO_NOT_READY",
            "SSO can be required only while an enabled connection has passed a test sign-in (a user of this "
            "account signed in through it from the setup pages). Run a test sign-in, enable the connection, then try again.",
        )
    if account.sso_required == required:
        return 0
    account.sso_required = required
    revoked = revoke_password_sessions(account.id, "sso_required", actor=actor) if required else 0
    audit.record(
        "account.sso_required",
        account_id=account.id,
        actor=actor,
        details={"sso_required": required} | ({"password_sessions_revoked": revoked} if required else {}),
    )
    return revoked
