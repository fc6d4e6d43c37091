"""Sign-in: who gets in, and finishing a web sign-in (SSO or password).

Rules 1 and 2 of DESIGN.md: the email is matched within the account that owns the connection
only, and the user must be active and hold a role for the app. Desktop and mobile sign-ins finish
in ``app.services.native_apps``, which uses the same matching.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from werkzeug.security import check_password_hash

from app import audit
from app.errors import SignInError
from app.extensions import db
from app.models import IdpConnection, User, UserSession
from app.models.idp_connection import ENABLED
from app.models.user import ACTIVE
from app.redirects import safe_next_path
from app.saml import VerifiedAssertion, resolve_options, start_login
from app.services.users import find_user_by_email, normalise_email
from app.sessions import NewSession, create_session, revoke_session

EMAIL_NAMEID_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"


def email_from_assertion(assertion: VerifiedAssertion) -> str:
    """The email the IdP vouches for: the first named attribute with a value, else the NameID.

    The NameID is used only when it looks like an email address (emailAddress format, or an
    unspecified one containing ``@``): a persistent or transient ID is never an email.
    """
    for name in resolve_options(assertion.connection).email_attributes:
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


# --- a web sign-in ------------------------------------------------------------------------------


def start_sso(email: str, *, app_name: str, next_path: str, browser_binding: str) -> str:
    """Find the IdP of the account that owns ``email`` and return the URL that starts the
    sign-in there (an AuthnRequest bound to this browser). The caller commits."""
    if app_name != "portal":
        raise SignInError("UNKNOWN_APP", f"app {app_name[:40]!r} cannot start at /sso/start")
    if not email.strip():
        raise SignInError("SSO_NOT_CONFIGURED", "no email given")
    _user, connection = connection_for_email(email)
    location = start_login(connection, app_name=app_name, next_path=next_path, browser_binding=browser_binding)
    audit.record(
        "signin.sso_start",
        account_id=connection.account_id,
        connection_id=connection.id,
        subject_email=normalise_email(email),
    )
    return location


# --- finishing a web sign-in ------------------------------------------------------------------


@dataclass(frozen=True)
class WebSignIn:
    """A finished web sign-in: the new session's token for the cookie, and where to go next."""

    token: str
    next_path: str


def finish_sso_sign_in(
    verified: VerifiedAssertion,
    *,
    current: UserSession | None,
    relay_state: str | None,
    ip: str | None,
    user_agent: str | None,
) -> WebSignIn:
    """Match the IdP's person to a user, replace this browser's session, and audit the sign-in.

    ``current`` is the live portal session this browser already has. An IdP-initiated response
    never switches a browser signed in as one person to another (``SAML_SESSION_CONFLICT``); any
    other sign-in revokes the old session, so that a sign-in always starts a fresh token. The
    caller commits.
    """
    connection = verified.connection
    email = email_from_assertion(verified)
    try:
        user = authorize(connection.account_id, email, verified.app)
    except SignInError as err:
        err.context.setdefault("account_id", connection.account_id)
        err.context.setdefault("name_id", verified.name_id)
        raise
    if current is not None:
        if verified.request_id is None and current.user_id != user.id:
            raise SignInError(
                "SAML_SESSION_CONFLICT",
                f"IdP-initiated response for {user.email} while {current.user_id} is signed in",
                email=user.email,
                account_id=connection.account_id,
            )
        revoke_session(current, "replaced_at_signin")
    new = create_session(
        user,
        app_name=verified.app,
        ip=ip,
        user_agent=user_agent,
        connection_id=connection.id,
        name_id=verified.name_id,
        session_index=verified.session_index,
    )
    audit.record(
        "signin.sso",
        account_id=connection.account_id,
        connection_id=connection.id,
        subject_email=user.email,
        details={"app": verified.app, "idp_initiated": verified.request_id is None},
    )
    # An IdP-initiated sign-in may say where to go in RelayState; it is checked like any `next`.
    next_path = verified.next_path if verified.request_id else relay_state
    return WebSignIn(new.token, safe_next_path(next_path))


#: Checked against when the email is unknown, so that both paths cost one scrypt.
_DUMMY_HASH = "scrypt:32768:8:1$mKfPq0dX7l4xyzAb$" + "0" * 128


def password_sign_in(
    email: str,
    password: str,
    *,
    current: UserSession | None,
    ip: str | None,
    user_agent: str | None,
) -> NewSession:
    """Sign in with email and password, where the account allows it (rate limits: DOORS in
    ``app.services.rate_limits``, applied before this runs).

    The password is checked (one scrypt) even for an unknown email, so that timing does not tell
    who exists. A sign-in revokes the session this browser already had. The caller commits.
    """
    email = normalise_email(email)
    user = find_user_by_email(email)
    known_hash = user.password_hash if user and user.password_hash else None
    password_ok = check_password_hash(known_hash or _DUMMY_HASH, password) and known_hash
    if user is None or not password_ok:
        raise SignInError("INVALID_CREDENTIALS", "wrong email or password", email=email)
    if user.account.sso_required:
        raise SignInError("SSO_REQUIRED", "the account requires SSO", email=email, account_id=user.account_id)
    authorize(user.account_id, user.email, "portal")
    if current is not None:
        revoke_session(current, "replaced_at_signin")
    new = create_session(user, app_name="portal", ip=ip, user_agent=user_agent)
    audit.record("signin.password", account_id=user.account_id, subject_email=user.email)
    return new
