"""Sign-in: who gets in, and finishing a web sign-in (SSO or password).

Rules 1 and 2 of DESIGN.md: the email is matched within the account that owns the connection
only, and the user must be active and hold a role for the app. Desktop and mobile sign-ins finish
in ``app.services.native_apps``, which uses the same matching.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from sqlalchemy import Row, Table, bindparam, delete, select
from werkzeug.security import check_password_hash

from app import audit
from app.errors import SignInError
from app.extensions import db
from app.models import IdpConnection, SignInResult, User, UserSession
from app.models.idp_connection import ENABLED
from app.models.user import ACTIVE
from app.redirects import safe_next_path
from app.roles import apps_for_roles
from app.saml import VerifiedAssertion, driver, resolve_options, start_login
from app.services.users import find_user_by_email, normalise_email
from app.sessions import NewSession, create_session, revoke_session, start_session
from app.timeutil import utcnow

EMAIL_NAMEID_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"


def email_from_assertion(assertion: VerifiedAssertion) -> str:
    """The email the IdP vouches for: the first named attribute with a value, else the NameID.

    An attribute that carries more than one value (two ``Attribute`` elements of that name, or
    two values in one) is ambiguous and refused (``SAML_EMAIL_AMBIGUOUS``): taking the first
    would let whatever the IdP put first decide who signs in. The NameID is used only when it
    looks like an email address (emailAddress format, or an unspecified one containing ``@``):
    a persistent or transient ID is never an email.
    """
    for name in resolve_options(assertion.connection).email_attributes:
        values = [value.strip() for value in assertion.attributes.get(name, []) if value and value.strip()]
        if len(values) > 1:
            raise SignInError(
                "SAML_EMAIL_AMBIGUOUS",
                f"attribute {name[:100]!r} carries {len(values)} values",
                connection_id=assertion.connection.id,
                name_id=assertion.name_id,
            )
        if values:
            return normalise_email(values[0])
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


def _check_access(account_id: int, email: str, app_name: str, found: User | UserAccess | None) -> None:
    """Rule 2, in one place for both lookups below: raise the refusal with its code, if any."""
    if found is None:
        raise SignInError("USER_NOT_FOUND", f"no user {email!r} in account {account_id}", email=email, app=app_name)
    if found.status != ACTIVE:
        raise SignInError("USER_DEACTIVATED", f"user {email} is {found.status}", email=email, app=app_name)
    roles = [role for role in found.roles.split(",") if role]
    if app_name not in apps_for_roles(roles):
        raise SignInError("NO_ROLE_FOR_APP", f"roles {roles} do not open {app_name}", email=email, app=app_name)


def authorize(account_id: int, email: str, app_name: str) -> User:
    """Return the user allowed into ``app_name``, or raise the refusal with its code."""
    user = match_user(account_id, email)
    _check_access(account_id, email, app_name, user)
    return cast(User, user)  # a missing one was refused


_USERS = cast(Table, User.__table__)
#: Built once: who a sign-in names, as plain values (no ORM object to build).
_SELECT_USER_ACCESS = select(_USERS.c.id, _USERS.c.account_id, _USERS.c.email, _USERS.c.status, _USERS.c.roles).where(
    _USERS.c.account_id == bindparam("account_id"), _USERS.c.email == bindparam("email")
)


class UserAccess(NamedTuple):
    """Who a sign-in names, as plain values (the columns of ``_SELECT_USER_ACCESS``)."""

    id: int
    account_id: int
    email: str
    status: str
    roles: str


def authorize_values(account_id: int, email: str, app_name: str) -> UserAccess:
    """``authorize`` for callers that need only the user's ``id``, ``account_id`` and ``email``:
    the same rule and refusals, read as one plain row (the ACS and the finishing request)."""
    rows, _count = driver.execute(_SELECT_USER_ACCESS, {"account_id": account_id, "email": email})
    found = UserAccess(*rows[0]) if rows else None
    _check_access(account_id, email, app_name, found)
    return cast(UserAccess, found)  # a missing one was refused


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


# --- finishing a web sign-in: recorded at the ACS, decided on a same-site request -------------

#: How long a verified sign-in waits for its finishing request (a redirect the browser follows
#: at once; two minutes leave room for a slow network, not for a link passed around).
SIGN_IN_RESULT_SECONDS = 120
#: Tokens and cookie values are 43 characters (32 random bytes); anything much longer is not ours.
_TOKEN_MAX_LENGTH = 100


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class RecordedSignIn:
    """A verified sign-in stored for its finishing request: the one-time token for the finishing
    URL, and the secret for the cookie that binds it to this browser (both shown once)."""

    token: str
    browser_secret: str


_RESULTS = cast(Table, SignInResult.__table__)
#: Built once: the ACS stores a verified sign-in with one Core INSERT (every column named, so that
#: its one compiled form fits every execution).
_INSERT_RESULT = _RESULTS.insert().values({column.key: bindparam(column.key) for column in _RESULTS.c})


def record_sign_in_result(verified: VerifiedAssertion, *, relay_state: str | None) -> RecordedSignIn:
    """At the ACS: match the IdP's person to a user and store the result for the finishing request.

    The IdP's POST is cross-site, so it carries none of the portal's SameSite=Lax cookies: who
    this browser is signed in as is unknown here, and the session decision waits for the
    same-site finishing request (``finish_sso_sign_in``). Refusals that need no session (no
    such user, deactivated, no role) are raised here, before anything is added. The caller
    commits, with the replay entry and the consumed pending request, in one transaction.
    """
    connection = verified.connection
    email = email_from_assertion(verified)
    try:
        user = authorize_values(connection.account_id, email, verified.app)
    except SignInError as err:
        err.context.setdefault("account_id", connection.account_id)
        err.context.setdefault("name_id", verified.name_id)
        raise
    now = utcnow()
    # Results nobody came back for are few (each needs a valid signed response): `flask sessions
    # purge` deletes them, not every sign-in.
    token, browser_secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    # An IdP-initiated sign-in may say where to go in RelayState; it is checked like any `next`.
    next_path = safe_next_path(verified.next_path if verified.request_id else relay_state)
    driver.execute(
        _INSERT_RESULT,
        {
            "token_hash": _sha256(token),
            "browser_binding_hash": _sha256(browser_secret),
            "request_binding_hash": verified.request_binding_hash,
            "connection_id": connection.id,
            "user_id": user.id,
            "email": user.email,
            "saml_name_id": verified.name_id,
            "saml_session_index": verified.session_index,
            "app": verified.app,
            "request_id": verified.request_id,
            "next_path": next_path,
            "created_at": now,
            "expires_at": now + dt.timedelta(seconds=SIGN_IN_RESULT_SECONDS),
        },
    )
    return RecordedSignIn(token, browser_secret)


@dataclass(frozen=True)
class WebSignIn:
    """A finished web sign-in: the new session's token for the cookie, and where to go next."""

    token: str
    next_path: str


#: Built once: the claim reads the stored result as it deletes it (one statement, plain values).
_CLAIM_RESULT = delete(_RESULTS).where(_RESULTS.c.token_hash == bindparam("token_hash")).returning(*_RESULTS.c)
_CONNECTION_ACCOUNT = select(IdpConnection.account_id).where(IdpConnection.id == bindparam("connection_id"))


def _claim(token: str | None) -> Row[Any]:
    """Take the stored result named by ``token`` out of the table: one request gets it, in any
    worker (the DELETE is the claim; a second one waits for the first and finds nothing)."""
    if not token or len(token) > _TOKEN_MAX_LENGTH or not token.isascii():
        raise SignInError("SIGNIN_FINISH_INVALID", "no or malformed finishing token")
    result = db.session.execute(_CLAIM_RESULT, {"token_hash": _sha256(token)}).first()
    if result is None:
        raise SignInError("SIGNIN_FINISH_INVALID", "unknown or already used finishing token")
    return result


def finish_sso_sign_in(
    token: str | None,
    *,
    browser_secret: str | None,
    browser_binding: str | None,
    current: UserSession | None,
    ip: str | None,
    user_agent: str | None,
) -> WebSignIn:
    """At the same-site finishing request: claim the stored result, check that this is the browser
    the ACS answered, then replace this browser's session and audit the sign-in.

    ``current`` is the live portal session this browser already has (its cookie comes with this
    request, unlike with the IdP's POST). An IdP-initiated response never switches a browser
    signed in as one person to another (``SAML_SESSION_CONFLICT``: that person's session stays);
    any other sign-in revokes the old session, so that a sign-in always starts a fresh token.
    The result is used up either way: the caller commits, on a refusal too.
    """
    result = _claim(token)
    context: dict[str, Any] = {"connection_id": result.connection_id, "email": result.email}
    if result.expires_at <= utcnow():
        raise SignInError("SIGNIN_FINISH_INVALID", "the sign-in result has expired", **context)
    if not browser_secret or not secrets.compare_digest(result.browser_binding_hash, _sha256(browser_secret)):
        raise SignInError("SIGNIN_FINISH_INVALID", "the finishing cookie is missing or belongs to another", **context)
    if result.request_binding_hash is not None and (
        not browser_binding or not secrets.compare_digest(result.request_binding_hash, _sha256(browser_binding))
    ):
        raise SignInError(
            "SAML_IN_RESPONSE_TO_MISMATCH", "the response arrived in another browser than the request", **context
        )
    account_id = db.session.scalar(_CONNECTION_ACCOUNT, {"connection_id": result.connection_id})
    if account_id is None:  # deleted in the seconds between the ACS and here
        raise SignInError("CONNECTION_NOT_FOUND", f"no connection {result.connection_id}", **context)
    context["account_id"] = account_id
    # Checked again: the user may have been deactivated, or lost the role, since the ACS.
    user = authorize_values(account_id, result.email, result.app)
    if current is not None:
        if result.request_id is None and current.user_id != user.id:
            raise SignInError(
                "SAML_SESSION_CONFLICT",
                f"IdP-initiated response for {user.email} while user {current.user_id} is signed in",
                **context,
            )
        revoke_session(current, "replaced_at_signin")
    token = start_session(
        user,
        app_name=result.app,
        ip=ip,
        user_agent=user_agent,
        connection_id=result.connection_id,
        name_id=result.saml_name_id,
        session_index=result.saml_session_index,
        signin_method="sso",
    )
    audit.record(
        "signin.sso",
        account_id=account_id,
        connection_id=result.connection_id,
        subject_email=user.email,
        details={"app": result.app, "idp_initiated": result.request_id is None},
    )
    return WebSignIn(token, result.next_path)


#: Checked against when the email is unknown, so that both paths cost one scrypt.
_DUMMY_HASH = "scrypt:32768:8:1$mKfPq0dX7l4xyzAb$" + "0" * 128


def _password_refusal(user: User) -> str | None:
    """Why ``user`` may not use the password form at all, or None (the real reason, for the audit)."""
    if user.account.sso_required:
        return "SSO_REQUIRED"
    if user.status != ACTIVE:
        return "USER_DEACTIVATED"
    if "portal" not in user.apps:
        return "NO_ROLE_FOR_APP"
    return None


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

    No password oracle: an unknown email, a wrong password, and a right password of a user who may
    not use this form (SSO required, deactivated, no portal role) get the same answer
    (``INVALID_CREDENTIALS``) after the same work: one scrypt, one failure counted. The real
    reason goes only to the audit event. A sign-in revokes the session this browser already had.
    The caller commits.
    """
    email = normalise_email(email)
    user = find_user_by_email(email)
    known_hash = user.password_hash if user and user.password_hash else None
    password_ok = bool(check_password_hash(known_hash or _DUMMY_HASH, password) and known_hash)
    refusal = _password_refusal(user) if user is not None else "UNKNOWN_EMAIL"
    if user is None or not password_ok or refusal is not None:
        reason = refusal if user is None or password_ok else "WRONG_PASSWORD"
        raise SignInError(
            "INVALID_CREDENTIALS",
            f"password sign-in refused: {reason}",
            email=email,
            refused_because=reason,
            **({"account_id": user.account_id} if user is not None else {}),
        )
    if current is not None:
        revoke_session(current, "replaced_at_signin")
    new = create_session(user, app_name="portal", ip=ip, user_agent=user_agent, signin_method="password")
    audit.record("signin.password", account_id=user.account_id, subject_email=user.email)
    return new
