"""Session lists: the support console's sessions across accounts, one session's detail, and a
user's own live sessions (their sessions page, and the count an admin sees before deactivating)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, func, select

from app.extensions import db
from app.models import Account, IdpConnection, User, UserSession
from app.roles import APPS
from app.services.listing import (
    PAGE_SIZE,
    Cursor,
    Page,
    account_id_for_slug,
    choice,
    day_range,
    keyset_page,
    start_of,
)
from app.services.users import normalise_email
from app.timeutil import utcnow

#: What a session can be: in use, ended by time, or ended by someone.
STATES = ("active", "expired", "revoked")


@dataclass(frozen=True)
class SessionFilters:
    """What the staff member asked to see."""

    account: str = ""
    email: str = ""
    app: str = ""
    state: str = ""
    used_from: dt.date | None = None
    used_to: dt.date | None = None

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> SessionFilters:
        used_from, used_to = day_range(args, "used_from", "used_to", "last-used")
        return cls(
            account=(args.get("account") or "").strip().lower()[:64],
            email=normalise_email(args.get("email") or "")[:320],
            app=choice(args, "app", APPS, "FILTER_APP_INVALID"),
            state=choice(args, "state", STATES, "FILTER_STATE_INVALID"),
            used_from=used_from,
            used_to=used_to,
        )

    def as_args(self) -> dict[str, str]:
        """The filters as query-string arguments, for page links."""
        values = {
            "account": self.account,
            "email": self.email,
            "app": self.app,
            "state": self.state,
            "used_from": self.used_from.isoformat() if self.used_from else "",
            "used_to": self.used_to.isoformat() if self.used_to else "",
        }
        return {key: value for key, value in values.items() if value}


def session_state(session: UserSession, now: dt.datetime) -> str:
    if session.revoked_at is not None:
        return "revoked"
    return "active" if session.expires_at > now else "expired"


def _state_clause(state: str, now: dt.datetime) -> ColumnElement[bool]:
    if state == "revoked":
        return UserSession.revoked_at.is_not(None)
    if state == "expired":
        return and_(UserSession.revoked_at.is_(None), UserSession.expires_at <= now)
    return and_(UserSession.revoked_at.is_(None), UserSession.expires_at > now)


# --- sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    """A session as the console lists it."""

    session: UserSession
    email: str | None
    account_slug: str
    state: str


@dataclass
class SessionList:
    """A page of sessions, and what the staff member should know about an empty one."""

    page: Page[UserSession]
    rows: list[SessionRow] = field(default_factory=list)
    #: Why nothing can match (an unknown account or email), shown above the empty list.
    note: str = ""


def list_sessions(
    filters: SessionFilters, *, after: Cursor | None = None, before: Cursor | None = None, limit: int = PAGE_SIZE
) -> SessionList:
    """Sessions of every account matching ``filters``, newest first, one page."""
    now = utcnow()
    query = select(UserSession)
    if filters.account:
        account_id = account_id_for_slug(filters.account)
        if account_id is None:
            return SessionList(Page([]), note=f"There is no account “{filters.account}”.")
        query = query.where(UserSession.account_id == account_id)
    if filters.email:
        user_id = db.session.scalar(select(User.id).where(User.email == filters.email))
        if user_id is None:
            return SessionList(Page([]), note=f"No user has the email {filters.email}.")
        query = query.where(UserSession.user_id == user_id)
    if filters.app:
        query = query.where(UserSession.app == filters.app)
    if filters.state:
        query = query.where(_state_clause(filters.state, now))
    if filters.used_from:
        query = query.where(UserSession.last_used_at >= start_of(filters.used_from))
    if filters.used_to:
        end = start_of(filters.used_to + dt.timedelta(days=1))
        # A session is created before it is last used: the second bound lets the index skip
        # straight to the right place instead of reading every newer session.
        query = query.where(UserSession.last_used_at < end, UserSession.created_at < end)
    page = keyset_page(query, UserSession.created_at, UserSession.id, after=after, before=before, limit=limit)
    return SessionList(page, rows=_session_rows(page.rows, now))


def _session_rows(sessions: list[UserSession], now: dt.datetime) -> list[SessionRow]:
    """Attach email and account slug with one query each (not one per row)."""
    user_ids = {s.user_id for s in sessions if s.user_id is not None}
    account_ids = {s.account_id for s in sessions}
    emails: dict[int, str] = (
        dict(db.session.execute(select(User.id, User.email).where(User.id.in_(user_ids))).tuples().all())
        if user_ids
        else {}
    )
    slugs: dict[int, str] = (
        dict(db.session.execute(select(Account.id, Account.slug).where(Account.id.in_(account_ids))).tuples().all())
        if account_ids
        else {}
    )
    return [
        SessionRow(s, emails.get(s.user_id) if s.user_id else None, slugs.get(s.account_id, "?"), session_state(s, now))
        for s in sessions
    ]


@dataclass(frozen=True)
class SessionDetail:
    """Everything support may need about one session."""

    session: UserSession
    user: User | None
    account: Account
    connection: IdpConnection | None
    state: str


def session_detail(session_id: int) -> SessionDetail | None:
    session = db.session.get(UserSession, session_id)
    if session is None:
        return None
    user = db.session.get(User, session.user_id) if session.user_id else None
    connection = db.session.get(IdpConnection, session.connection_id) if session.connection_id else None
    account = db.session.get(Account, session.account_id)
    if account is None:  # deleted with its sessions (ON DELETE CASCADE) between the two reads
        return None
    return SessionDetail(session, user, account, connection, session_state(session, utcnow()))


# --- your sessions ---------------------------------------------------------------------------

#: More live sessions than this are not listed one by one ("sign out the others" ends them all).
OWN_SESSIONS_LIMIT = 100


def live_session_count(user_id: int) -> int:
    """How many places a user is signed in right now (web and apps)."""
    return (
        db.session.scalar(
            select(func.count(UserSession.id)).where(
                UserSession.user_id == user_id, UserSession.revoked_at.is_(None), UserSession.expires_at > utcnow()
            )
        )
        or 0
    )


def live_sessions_of(user_id: int) -> list[UserSession]:
    """A user's live sessions (web and app), most recently used first."""
    return list(
        db.session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None), UserSession.expires_at > utcnow())
            .order_by(UserSession.last_used_at.desc(), UserSession.id.desc())
            .limit(OWN_SESSIONS_LIMIT)
        )
    )
