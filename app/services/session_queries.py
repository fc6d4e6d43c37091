"""Session lists: the support console's sessions across accounts, one session's detail, and a
user's own live sessions (their sessions page, and the count an admin sees before deactivating)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Select, and_, func, literal_column, select
from sqlalchemy.orm import InstrumentedAttribute

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
from app.services.session_display import SessionView, describe_sessions, device_label, signin_method_label
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
    # Each clause names ``revoked_at IS NULL`` / ``IS NOT NULL`` as the partial indexes' WHERE
    # does: that is what lets SQLite and PostgreSQL use them.
    if state == "revoked":
        return UserSession.revoked_at.is_not(None)
    if state == "expired":
        return and_(UserSession.revoked_at.is_(None), UserSession.expires_at <= now)
    return UserSession.live_at(now)


#: How a list of sessions is ordered, latest first: the column, and what the page says about it.
#: Without a state or last-use filter, newest first. A last-use filter lists the most recently used
#: first (the ``(last_used_at, id)`` index reads only the range asked for). Active and expired
#: sessions are listed by expiry, which slides with each use: latest first is most recently used
#: first (the partial index on ``(expires_at, id) WHERE revoked_at IS NULL`` holds exactly the
#: sessions that can be either, split at ``now``). In creation order, a page of active sessions
#: deep in the list would read every older, long-expired session to find none.
ORDERS = {
    "created": "Newest first",
    "last_used": "Most recently used first",
    "expires": "Latest expiry first (the most recently used first)",
}


def _order(filters: SessionFilters, *, few_users: bool = False) -> str:
    """The order of a filtered list. ``few_users``: the email filter matched few enough people to
    name them by id; their sessions are few, read from ``(user_id, created_at, ...)`` newest first
    (another order would walk that order's index over every session, checking each one's user)."""
    if few_users:
        return "created"
    if filters.used_from or filters.used_to:
        return "last_used"
    if filters.state in ("active", "expired"):
        return "expires"
    return "created"


# --- sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    """A session as the console lists it."""

    session: UserSession
    email: str | None
    account_slug: str
    state: str
    #: "Chrome on macOS", "Desktop app on Windows".
    device: str = ""
    #: "SSO via Okta", "Password".
    method: str = ""


@dataclass
class SessionList:
    """A page of sessions, and what the staff member should know about an empty one."""

    page: Page[UserSession]
    rows: list[SessionRow] = field(default_factory=list)
    #: The column the page is ordered by, latest first: a key of ``ORDERS``.
    order: str = "created"
    #: Why nothing can match (an unknown account or email), shown above the empty list.
    note: str = ""


@dataclass(frozen=True)
class SessionQuery:
    """A filtered list before paging: the conditions every listed session meets, and the column
    to order by (latest first, then the id). ``where`` is None, with a ``note`` why, when nothing
    can match."""

    where: tuple[ColumnElement[bool], ...] | None
    column: InstrumentedAttribute[dt.datetime]
    order: str
    note: str = ""

    def select(self) -> Select[tuple[UserSession]]:
        """Every matching session, unordered (for counts and checks)."""
        return select(UserSession).where(*(self.where or ()))


def session_query(filters: SessionFilters, now: dt.datetime) -> SessionQuery:
    """The sessions matching ``filters`` at ``now``, and the order ``_order`` picks for them."""
    users = _email_matches(filters.email) if filters.email else None
    order = _order(filters, few_users=isinstance(users, list))
    column = {
        "created": UserSession.created_at,
        "last_used": UserSession.last_used_at,
        "expires": UserSession.expires_at,
    }[order]
    where: list[ColumnElement[bool]] = []
    if filters.account:
        account_id = account_id_for_slug(filters.account)
        if account_id is None:
            return SessionQuery(None, column, order, note=f"There is no account “{filters.account}”.")
        where.append(UserSession.account_id == account_id)
    if filters.email:
        if users is None:
            return SessionQuery(None, column, order, note=_no_email_note(filters.email))
        if isinstance(users, list):
            where.append(UserSession.user_id.in_(users))
        else:
            # ``user_id + 0``: not the bare column, so that SQLite does not read the sessions of
            # thousands of users through the (user_id, created_at, ...) index and sort them all, but
            # walks the list's own order, checking each session's user against the matching ones
            # (common enough, past EMAIL_USER_IDS_LIMIT, to fill a page soon).
            where.append((UserSession.user_id + literal_column("0")).in_(users))
    if filters.app:
        where.append(UserSession.app == filters.app)
    if filters.state:
        where.append(_state_clause(filters.state, now))
    if filters.used_from:
        where.append(UserSession.last_used_at >= start_of(filters.used_from))
    if filters.used_to:
        where.append(UserSession.last_used_at < start_of(filters.used_to + dt.timedelta(days=1)))
    return SessionQuery(tuple(where), column, order)


#: Up to this many users whose email matches are named by id, so that their sessions are read from
#: the ``(user_id, created_at, ...)`` index, the other filters checked there, and sorted; with
#: more, the list walks its order's index and checks each session's user against the matching
#: users, which then are common enough to fill a page soon (1M sessions of 50,000 users: past 1,000
#: users, at least one session in 50 matches).
#: Measured by bench/support_list.py (the "email part" rows) on both sides of this number.
EMAIL_USER_IDS_LIMIT = 1000


def _email_matches(fragment: str) -> list[int] | Select[tuple[int]] | None:
    """The users whose email contains ``fragment`` (already lower-cased, as emails are stored):
    their ids, or a subquery when there are many, or None when nobody matches.

    ``%`` and ``_`` typed by staff are matched as themselves (``autoescape``), not as wildcards.
    """
    matching = select(User.id).where(User.email.contains(fragment, autoescape=True))
    ids = list(db.session.scalars(matching.limit(EMAIL_USER_IDS_LIMIT + 1)))
    if not ids:
        return None
    return ids if len(ids) <= EMAIL_USER_IDS_LIMIT else matching


def _no_email_note(fragment: str) -> str:
    """What an empty result says: about an address when a whole one was typed, else a fragment."""
    local, _, domain = fragment.partition("@")
    if local and "." in domain:
        return f"No user has the email {fragment}."
    return f"No user's email contains “{fragment}”."


def list_sessions(
    filters: SessionFilters, *, after: Cursor | None = None, before: Cursor | None = None, limit: int = PAGE_SIZE
) -> SessionList:
    """Sessions of every account matching ``filters``, one page, in the order ``_order`` picks."""
    now = utcnow()
    found = session_query(filters, now)
    if found.where is None:
        return SessionList(Page([]), order=found.order, note=found.note)
    page = keyset_page(
        select(UserSession), found.column, UserSession.id, after=after, before=before, limit=limit, where=found.where
    )
    return SessionList(page, rows=_session_rows(page.rows, now), order=found.order)


def connection_names(sessions: list[UserSession]) -> dict[int, str]:
    """The display names of the connections ``sessions`` signed in through (one query)."""
    ids = {s.connection_id for s in sessions if s.connection_id is not None}
    if not ids:
        return {}
    return dict(
        db.session.execute(select(IdpConnection.id, IdpConnection.name).where(IdpConnection.id.in_(ids))).tuples().all()
    )


def _session_rows(sessions: list[UserSession], now: dt.datetime) -> list[SessionRow]:
    """Attach email, account slug and connection name with one query each (not one per row)."""
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
    names = connection_names(sessions)
    return [
        SessionRow(
            s,
            emails.get(s.user_id) if s.user_id else None,
            slugs.get(s.account_id, "?"),
            session_state(s, now),
            device_label(s.user_agent, s.app),
            signin_method_label(s, names.get(s.connection_id) if s.connection_id else None),
        )
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
    device: str = ""
    method: str = ""


def session_detail(session_id: int) -> SessionDetail | None:
    session = db.session.get(UserSession, session_id)
    if session is None:
        return None
    user = db.session.get(User, session.user_id) if session.user_id else None
    connection = db.session.get(IdpConnection, session.connection_id) if session.connection_id else None
    account = db.session.get(Account, session.account_id)
    if account is None:  # deleted with its sessions (ON DELETE CASCADE) between the two reads
        return None
    return SessionDetail(
        session,
        user,
        account,
        connection,
        session_state(session, utcnow()),
        device_label(session.user_agent, session.app),
        signin_method_label(session, connection.name if connection else None),
    )


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


def describe_live_sessions(user_id: int) -> list[SessionView]:
    """A user's live sessions, most recently used first, each with its device and sign-in method."""
    sessions = live_sessions_of(user_id)
    return describe_sessions(sessions, connection_names(sessions))


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
