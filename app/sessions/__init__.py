"""Server-side sessions: create, look up, slide, revoke.

The client (browser cookie or app bearer token) holds only a random token; the database holds its
SHA-256. Every request looks the session up, so a revocation is seen by every worker at once.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from flask import current_app
from sqlalchemy import ColumnElement, CursorResult, DateTime, Row, Select, Table, and_, bindparam, select, update
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from app import audit
from app.extensions import db
from app.models import Account, User, UserSession
from app.models.user import ACTIVE
from app.roles import apps_for_roles
from app.timeutil import utcnow

#: 256 bits of randomness, URL-safe.
TOKEN_BYTES = 32


def hash_token(token: str) -> str:
    """SHA-256 of a session token (a fast hash is right: the token is random, not a password)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewSession:
    """A session just created, with the token the client must keep (shown only once)."""

    token: str
    session: UserSession


def _lifetime() -> dt.timedelta:
    return dt.timedelta(days=current_app.config["SESSION_LIFETIME_DAYS"])


def _session_values(
    user: User | Row[Any],
    token: str,
    *,
    app_name: str,
    ip: str | None,
    user_agent: str | None,
    connection_id: int | None,
    name_id: str | None,
    session_index: str | None,
    signin_method: str | None,
) -> dict[str, Any]:
    now = utcnow()
    return {
        "token_hash": hash_token(token),
        "user_id": user.id,
        "account_id": user.account_id,
        "app": app_name,
        "created_at": now,
        "last_used_at": now,
        "expires_at": now + _lifetime(),
        "ip": ip,
        "user_agent": (user_agent or "")[:512] or None,
        "connection_id": connection_id,
        "signin_method": signin_method or ("sso" if connection_id is not None else "password"),
        "saml_name_id": name_id,
        "saml_session_index": session_index,
    }


def create_session(
    user: User | Row[Any],
    *,
    app_name: str,
    ip: str | None,
    user_agent: str | None,
    connection_id: int | None = None,
    name_id: str | None = None,
    session_index: str | None = None,
    signin_method: str | None = None,
) -> NewSession:
    """Start a session for ``user`` (a ``User``, or a row with its ``id`` and ``account_id``)
    with a fresh random token. The caller commits.

    ``signin_method`` (``sso`` or ``password``) defaults to what ``connection_id`` says.
    """
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session = UserSession(
        **_session_values(
            user,
            token,
            app_name=app_name,
            ip=ip,
            user_agent=user_agent,
            connection_id=connection_id,
            name_id=name_id,
            session_index=session_index,
            signin_method=signin_method,
        )
    )
    db.session.add(session)
    return NewSession(token=token, session=session)


#: Built once: the web sign-in's session row.
_INSERT_SESSION = cast(Table, UserSession.__table__).insert()


def start_session(
    user: User | Row[Any],
    *,
    app_name: str,
    ip: str | None,
    user_agent: str | None,
    connection_id: int | None = None,
    name_id: str | None = None,
    session_index: str | None = None,
    signin_method: str | None = None,
) -> str:
    """``create_session`` for callers that need only the token (the web sign-in's finishing
    request): the same row, written by one Core INSERT, without an ORM object for the unit of
    work to sort at the commit. Returns the token. The caller commits."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    db.session.execute(
        _INSERT_SESSION,
        _session_values(
            user,
            token,
            app_name=app_name,
            ip=ip,
            user_agent=user_agent,
            connection_id=connection_id,
            name_id=name_id,
            session_index=session_index,
            signin_method=signin_method,
        ),
    )
    return token


def find_live_session(token: str | None, *, app_name: str | None = None) -> UserSession | None:
    """Return the live session for ``token`` (and its active user), sliding its expiry; else None.

    A session is live when ``UserSession.is_live`` holds, its user exists and is active, and (with
    ``SESSION_MAX_AGE_DAYS`` set) it was created within that many days. The expiry slides on every
    use, but the row is written at most once per ``SESSION_TOUCH_INTERVAL_SECONDS``, so that busy
    clients do not write on every request.
    """
    if not token or len(token) > 200:
        return None
    now = utcnow()
    # One query brings the session, its user and the user's account (which every page shows).
    # No autoflush: looking a session up never writes the request's pending changes.
    with db.session.no_autoflush:
        session = db.session.scalar(
            _session_statement(), {"token_hash": hash_token(token), "now": now, "created_after": _created_after(now)}
        )
    if session is None:
        return None
    if app_name is not None and session.app != app_name:
        return None
    if _due_for_slide(session.last_used_at, now):
        expires_at = _slide(session.id, now)
        # Keep the identity map in step without marking the object dirty.
        set_committed_value(session, "last_used_at", now)
        set_committed_value(session, "expires_at", expires_at)
    return session


def _slide(session_id: int, now: dt.datetime) -> dt.datetime:
    """Extend a session to a full lifetime from ``now``, in a transaction of its own; return the
    new expiry.

    Its own connection and commit, so that sliding never commits (or rolls back) whatever the
    request has pending: services add to the request's transaction and the view decides. The
    request looks its session up before it writes anything (``web.init_app`` makes sure), so this
    short write never waits on the request's own locks.
    """
    expires_at = now + _lifetime()
    with db.engine.begin() as connection:
        connection.execute(
            update(UserSession).where(UserSession.id == session_id).values(last_used_at=now, expires_at=expires_at)
        )
    return expires_at


def _due_for_slide(last_used_at: dt.datetime, now: dt.datetime) -> bool:
    return now - last_used_at >= dt.timedelta(seconds=current_app.config["SESSION_TOUCH_INTERVAL_SECONDS"])


@dataclass(frozen=True)
class AppSessionUser:
    """The person behind an app's bearer token, as the API needs them: plain values.

    The desktop and mobile apps (and the phone system's backend) check their token on every call,
    so this path reads a handful of columns with one Core statement and builds no ORM objects.
    It is what flask-login's ``current_user`` is on an API request made with a bearer token.
    """

    id: int
    email: str
    name: str
    roles: str
    account_id: int
    account_slug: str

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def role_list(self) -> list[str]:
        return [role for role in self.roles.split(",") if role]

    @property
    def apps(self) -> frozenset[str]:
        return apps_for_roles(self.role_list)


@dataclass(frozen=True)
class AppSession:
    """A live desktop or mobile session, as plain values (see ``AppSessionUser``)."""

    id: int
    app: str
    expires_at: dt.datetime
    user: AppSessionUser


@functools.cache
def _session_statement() -> Select[tuple[UserSession]]:
    """The cookie lookup, built once (see ``_app_session_statement``): the session with its user
    and the user's account, which every page shows, in one query."""
    return (
        select(UserSession)
        .join(UserSession.user)
        .join(User.account)
        .options(contains_eager(UserSession.user).contains_eager(User.account))
        .where(_live_with_active_user())
    )


def _live_with_active_user() -> ColumnElement[bool]:
    """``UserSession.live_at`` at the ``now`` parameter, an active user, and the optional
    absolute lifetime at the ``created_after`` parameter: the rule both lookups share."""
    return and_(
        UserSession.token_hash == bindparam("token_hash"),
        UserSession.live_at(bindparam("now", type_=DateTime)),
        UserSession.created_at > bindparam("created_after"),
        User.status == ACTIVE,
    )


#: ``created_after`` when no absolute lifetime is set: every session qualifies.
_NO_MAX_AGE = dt.datetime(1970, 1, 1)


def _created_after(now: dt.datetime) -> dt.datetime:
    """Sessions created before this are too old under ``SESSION_MAX_AGE_DAYS`` (off when 0/unset).

    The sliding 21 days are the product's promise; an operator who must also bound how long one
    sign-in can last (a compliance rule) sets this, and a session that old is refused however
    recently it was used.
    """
    max_age_days = current_app.config.get("SESSION_MAX_AGE_DAYS") or 0
    return now - dt.timedelta(days=max_age_days) if max_age_days > 0 else _NO_MAX_AGE


@functools.cache
def _app_session_statement() -> Select[Any]:
    """The bearer lookup, built once: a statement object reused on every request keeps its
    compiled form and cache key, so a lookup costs the database round trip and little else."""
    return (
        select(
            UserSession.id,
            UserSession.app,
            UserSession.expires_at,
            UserSession.last_used_at,
            User.id,
            User.email,
            User.name,
            User.roles,
            User.account_id,
            Account.slug,
        )
        .join(User, User.id == UserSession.user_id)
        .join(Account, Account.id == User.account_id)
        .where(_live_with_active_user())
    )


def find_live_app_session(token: str | None, apps: tuple[str, ...]) -> AppSession | None:
    """The live session of one of ``apps`` for a bearer ``token``, sliding it; else None.

    The same rule as ``find_live_session`` (``UserSession.live_at``: not revoked, not expired; an
    active user; the optional absolute lifetime) in one prepared statement on the request's
    connection, and the same throttled slide. The caller checks roles.
    """
    if not token or len(token) > 200:
        return None
    now = utcnow()
    # A connection of its own in autocommit mode: one read needs no BEGIN and no ROLLBACK, which
    # on PostgreSQL are two of the request's round trips.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = (
            connection.execute(
                _app_session_statement(),
                {"token_hash": hash_token(token), "now": now, "created_after": _created_after(now)},
            )
            .tuples()
            .first()
        )
    if row is None or row[1] not in apps:
        return None
    session_id, app_name, expires_at, last_used_at, user_id, email, name, roles, account_id, slug = row
    if _due_for_slide(last_used_at, now):
        expires_at = _slide(session_id, now)
    return AppSession(session_id, app_name, expires_at, AppSessionUser(user_id, email, name, roles, account_id, slug))


#: Why a session ended, as the person is told on the sign-in page (the ``ended`` argument).
#: Sign-out, a newer sign-in and unknown tokens say nothing.
ENDED_BY: dict[str, str] = {
    "user_deactivated": "administrator",
    "user_deleted": "administrator",
    "missing_from_import": "administrator",
    "role_removed": "administrator",
    "revoked_by_operator": "administrator",
    "revoked_by_admin": "administrator",
    "sso_required": "sso_required",
    "scim_deactivated": "provisioning",
    "revoked_by_support": "support",
    "signed_out_by_owner": "yourself",
    "code_replayed": "security",
}


def why_session_ended(token: str | None) -> str | None:
    """Why the session behind ``token`` no longer works, in the words of ``ENDED_BY`` (or
    ``expired``); None when it never existed or its person ended it here (sign-out).

    Asked only when a request comes back with a token that no longer opens a session, so that
    the sign-in page can say "You were signed out by your company's administrator".
    """
    if not token or len(token) > 200:
        return None
    row = db.session.execute(
        select(UserSession.revoked_reason, UserSession.expires_at).where(UserSession.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    reason, expires_at = row
    if reason is not None:
        return ENDED_BY.get(reason)
    return "expired" if expires_at <= utcnow() else None


def revoke_session(session: UserSession, reason: str, *, actor: str | None = None) -> bool:
    """Revoke one session and audit it; False (and no event) if it was already revoked.

    The one way a single session ends early: sign-out, support, the owner's "sign out", a
    replayed app code, a new sign-in in the same browser. The caller commits.
    """
    if session.revoked_at is not None:
        return False
    session.revoked_at = utcnow()
    session.revoked_reason = reason
    audit.record(
        "session.revoke",
        account_id=session.account_id,
        subject_email=session.user.email if session.user is not None else None,
        actor=actor,
        details={"session_id": session.id, "reason": reason, "app": session.app},
    )
    return True


def revoke_sessions_for_user(
    user: User,
    reason: str,
    *,
    actor: str | None = None,
    keep_session_id: int | None = None,
    apps: Iterable[str] | None = None,
) -> int:
    """Revoke every live session of ``user`` (web and app) and audit it; returns how many.

    The one way all of a person's sessions end: deactivation, deletion, support's "revoke all",
    the owner's "sign out everywhere else" (``keep_session_id`` spares the one in use), and a lost
    role (``apps`` limits it to the sessions of the apps that role opened). One UPDATE, so that a
    user with thousands of sessions costs one statement. The caller commits.
    """
    query = update(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    if keep_session_id is not None:
        query = query.where(UserSession.id != keep_session_id)
    app_names = sorted(apps) if apps is not None else None
    if app_names is not None:
        query = query.where(UserSession.app.in_(app_names))
    result = db.session.execute(
        query.values(revoked_at=utcnow(), revoked_reason=reason).execution_options(synchronize_session="fetch")
    )
    revoked = cast(CursorResult[Any], result).rowcount
    audit.record(
        "session.revoke_all",
        account_id=user.account_id,
        subject_email=user.email,
        actor=actor,
        details={"revoked": revoked, "reason": reason}
        | ({"kept_session_id": keep_session_id} if keep_session_id is not None else {})
        | ({"apps": app_names} if app_names is not None else {}),
    )
    return revoked


def revoke_app_sessions_for_users(
    lost_apps: dict[int, frozenset[str]], reason: str, *, account_id: int, actor: str | None = None
) -> int:
    """Revoke the live sessions of each user id's lost apps, with one summary audit event.

    For bulk role changes (a CSV import updates thousands of users): one UPDATE per distinct set
    of lost apps (a handful), not one per user. Returns how many sessions were revoked. The caller
    commits.
    """
    by_apps: dict[frozenset[str], list[int]] = {}
    for user_id, apps in lost_apps.items():
        if apps:
            by_apps.setdefault(apps, []).append(user_id)
    if not by_apps:
        return 0
    now = utcnow()
    revoked = 0
    for apps, user_ids in by_apps.items():
        result = db.session.execute(
            update(UserSession)
            .where(
                UserSession.user_id.in_(user_ids),
                UserSession.app.in_(sorted(apps)),
                UserSession.revoked_at.is_(None),
            )
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session="fetch")
        )
        revoked += cast(CursorResult[Any], result).rowcount
    audit.record(
        "session.revoke_many",
        account_id=account_id,
        actor=actor,
        details={"revoked": revoked, "reason": reason, "users": sum(len(ids) for ids in by_apps.values())},
    )
    return revoked


def revoke_password_sessions(account_id: int, reason: str, *, actor: str | None = None) -> int:
    """Revoke the account's live password sessions (portal, no IdP connection) and audit the count.

    "SSO required" switched on: sign-ins through the IdP (web and app) stay, a password sign-in
    made before the switch ends at once. One UPDATE. The caller commits.
    """
    result = db.session.execute(
        update(UserSession)
        .where(
            UserSession.account_id == account_id,
            UserSession.connection_id.is_(None),
            UserSession.app == "portal",
            UserSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow(), revoked_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    revoked = cast(CursorResult[Any], result).rowcount
    audit.record(
        "session.revoke_many",
        account_id=account_id,
        actor=actor,
        details={"revoked": revoked, "reason": reason, "password_sessions_only": True},
    )
    return revoked
