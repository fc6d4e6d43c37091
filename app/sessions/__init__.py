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
from typing import Any, Protocol, cast

from flask import current_app
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    DateTime,
    Dialect,
    Engine,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from app import audit
from app.extensions import db, pooled_driver_connection
from app.models import Account, User, UserSession
from app.models.user import ACTIVE
from app.roles import Actor, apps_for_roles
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


class SessionOwner(Protocol):
    """Whom a new session belongs to: a ``User``, or a plain row of its id and account."""

    @property
    def id(self) -> int: ...

    @property
    def account_id(self) -> int: ...


def _session_values(
    user: SessionOwner,
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
    user: SessionOwner,
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


def find_live_session(token: str | None, *, app_name: str | None = None) -> LiveSession | None:
    """Return the live session for ``token`` (and its active user), sliding its expiry; else None.

    A session is live when ``UserSession.is_live`` holds, its user exists and is active, and (with
    ``SESSION_MAX_AGE_DAYS`` set) it was created within that many days. The expiry slides on every
    use, but the row is written at most once per ``SESSION_TOUCH_INTERVAL_SECONDS``, so that busy
    clients do not write on every request. With ``app_name``, a session of another app is None.
    """
    session = _find_live(token)
    if session is None or (app_name is not None and session.app != app_name):
        return None
    return session


def find_live_app_session(token: str | None, apps: tuple[str, ...]) -> LiveSession | None:
    """The live session of one of ``apps`` for a bearer ``token``, sliding it; else None.

    The same rule and the same one statement as ``find_live_session``. The caller checks roles.
    """
    session = _find_live(token)
    if session is None or session.app not in apps:
        return None
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


class SessionUser:
    """The person behind a live session (cookie or bearer token), as plain values.

    Every request checks its session, so the check reads a handful of columns with one Core
    statement and builds no ORM objects: this is flask-login's ``current_user``. The few pages
    that need the ORM rows ask for them (``account``, ``record``): the request's database session
    then loads each once (the identity map keeps it for the rest of the request).
    """

    __slots__ = ("account_id", "account_slug", "email", "id", "name", "roles")

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, id: int, email: str, name: str, roles: str, account_id: int, account_slug: str) -> None:
        self.id = id
        self.email = email
        self.name = name
        self.roles = roles
        self.account_id = account_id
        self.account_slug = account_slug

    def get_id(self) -> str:
        return str(self.id)

    @property
    def role_list(self) -> list[str]:
        return [role for role in self.roles.split(",") if role]

    @property
    def apps(self) -> frozenset[str]:
        return apps_for_roles(self.role_list)

    @property
    def account(self) -> Account:
        """The user's account (ORM), loaded on first use in the request."""
        return cast(Account, db.session.get(Account, self.account_id))

    @property
    def record(self) -> User:
        """The user's row (ORM), for the services that change it; loaded on first use in the request."""
        return cast(User, db.session.get(User, self.id))


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A live session (web or app), as plain values (see ``SessionUser``); ``record`` is its row."""

    id: int
    app: str
    created_at: dt.datetime
    expires_at: dt.datetime
    connection_id: int | None
    user: SessionUser

    @property
    def record(self) -> UserSession | None:
        """The session's row (ORM), for the pages that revoke or show it; loaded on first use in
        the request (None if it was deleted since the lookup)."""
        return db.session.get(UserSession, self.id)


def _live_with_active_user() -> ColumnElement[bool]:
    """``UserSession.live_at`` at the ``now`` parameter, an active user, and the optional
    absolute lifetime at the ``created_after`` parameter: the rule of the lookup."""
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
def _live_session_statement() -> Select[Any]:
    """The lookup, built once: a statement object reused on every request keeps its compiled form
    and cache key, so a lookup costs the database round trip and little else."""
    return (
        select(
            UserSession.id,
            UserSession.app,
            UserSession.created_at,
            UserSession.expires_at,
            UserSession.last_used_at,
            UserSession.connection_id,
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


def _find_live(token: str | None) -> LiveSession | None:
    """The live session behind ``token``, slid when due; one statement (and the throttled slide)."""
    if not token or len(token) > 200:
        return None
    now = utcnow()
    row = _read_live_row({"token_hash": hash_token(token), "now": now, "created_after": _created_after(now)})
    if row is None:
        return None
    session_id, app_name, created_at, expires_at, last_used_at, connection_id, *person = row
    if _due_for_slide(last_used_at, now):
        expires_at = _slide(session_id, now)
    return LiveSession(session_id, app_name, created_at, expires_at, connection_id, SessionUser(*person))


def _read_live_row(params: dict[str, Any]) -> tuple[Any, ...] | None:
    """Run the lookup on a connection of its own in autocommit mode, reading once more if the
    pooled connection turns out dead.

    Autocommit: one read needs no BEGIN and no ROLLBACK, which on PostgreSQL are two round trips.
    Read once more: pooled connections are pinged only after an idle spell
    (``check_connections_after_idle``), so one cut a moment ago fails its first statement; the
    driver's disconnect error has then invalidated the pool, and the next read, on a fresh
    connection, is the one that counts (a read is safe to repeat). A connection that cannot be
    made is reported at once (503), never tried again here. The request's database session is
    not touched, so a request never loses or commits anything it had pending.
    """
    engine = db.engine
    dispatch = engine.dispatch
    if engine.dialect.driver == "psycopg" and not (dispatch.before_cursor_execute or dispatch.after_cursor_execute):
        read, row = _read_live_row_psycopg(engine, params)
        if read:
            return row
    try:
        return _read_live_row_core(engine, params)
    except DBAPIError as exc:
        # Retried only when a statement failed on a connection that turned out dead (statement
        # set): a failure to connect at all would only fail again.
        if not exc.connection_invalidated or exc.statement is None:
            raise
    return _read_live_row_core(engine, params)


def _read_live_row_core(engine: Engine, params: dict[str, Any]) -> tuple[Any, ...] | None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        return connection.execute(_live_session_statement(), params).tuples().first()


@functools.lru_cache(maxsize=16)
def _psycopg_lookup(dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """The lookup compiled once for ``dialect``: its SQL and the constant parameters it binds."""
    compiled = _live_session_statement().compile(dialect=dialect)
    return compiled.string, {key: value for key, value in compiled.params.items() if value is not None}


def _read_live_row_psycopg(engine: Engine, params: dict[str, Any]) -> tuple[bool, tuple[Any, ...] | None]:
    """The lookup straight on the pooled psycopg connection: the same compiled statement, with
    none of the execution context and result object that SQLAlchemy builds around each
    statement (two thirds of the lookup's CPU). psycopg adapts and returns every column's type
    as the Core path does (text, integers, naive timestamps).

    Taken only while nothing listens to the engine's statements (SQLAlchemy's cursor events: a
    tracer, a test counting statements), so that whatever watches them sees this one too.
    Returns (read, row). When no connection can be had, raises what ``Engine.connect`` would
    (an outage: 503). When the statement fails, the connection is discarded and (False, None)
    sends the read to the Core path, which handles errors as every other statement's (pool
    invalidation, 503s).
    """
    dialect = engine.dialect
    sql, constants = _psycopg_lookup(dialect)
    pooled = pooled_driver_connection(engine)
    try:
        driver: Any = pooled.driver_connection
        driver.autocommit = True
        try:
            return True, driver.execute(sql, {**constants, **params}).fetchone()
        finally:
            driver.autocommit = False
    except dialect.loaded_dbapi.Error as err:
        pooled.invalidate(err)
        return False, None
    finally:
        pooled.close()


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
    user: Actor,
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
