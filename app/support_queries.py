"""Read-only list queries: the support console (sessions, the audit log and accounts, across
accounts), an admin's users, and a user's own sessions.

Lists are newest first with keyset pagination on ``(created_at, id)``: a page is found by seeking
the composite index to the cursor, so page 10,000 costs what page 1 costs (OFFSET would read and
throw away every row before it). Filters come from query strings typed by people, so every value
is checked and a bad one raises ``FilterError`` with a stable code, never a database error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from app.extensions import db
from app.models import Account, AuditEvent, IdpConnection, User, UserSession
from app.models.idp_connection import ENABLED
from app.models.user import ACTIVE, DEACTIVATED
from app.roles import APPS, CUSTOMER_ROLES
from app.timeutil import utcnow
from app.users import normalise_email

#: Rows per page.
PAGE_SIZE = 50
#: What a session can be: in use, ended by time, or ended by someone.
STATES = ("active", "expired", "revoked")
OUTCOMES = ("success", "failure")
USER_STATUSES = (ACTIVE, DEACTIVATED)

T = TypeVar("T")


class FilterError(ValueError):
    """A filter or cursor that cannot be used; the message says what to type instead."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- cursors and pages -----------------------------------------------------------------------

_CURSOR = re.compile(r"(\d{20})\.(\d{1,18})")


@dataclass(frozen=True)
class Cursor:
    """A position in a newest-first list: the ``(created_at, id)`` of a row."""

    created_at: dt.datetime
    id: int

    def encode(self) -> str:
        return f"{self.created_at:%Y%m%d%H%M%S%f}.{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """Read a cursor from a link; None when absent, FilterError when it is not one of ours."""
        if not text:
            return None
        match = _CURSOR.fullmatch(text.strip())
        try:
            if match is None:
                raise ValueError(text)
            return cls(dt.datetime.strptime(match.group(1), "%Y%m%d%H%M%S%f"), int(match.group(2)))
        except ValueError:
            raise FilterError("CURSOR_INVALID", "This page link is damaged. Start again from the first page.") from None


@dataclass
class Page(Generic[T]):
    """One page of a list, with the cursors of its neighbours (None at either end)."""

    rows: list[T]
    older: str | None = None
    newer: str | None = None


class Keyed(Protocol):
    """A row of a newest-first list: it has the two columns of the cursor."""

    created_at: dt.datetime
    id: int


K = TypeVar("K", bound=Keyed)


def _cursor_of(row: Keyed) -> str:
    return Cursor(row.created_at, row.id).encode()


def keyset_page(
    query: Select[tuple[K]],
    created: InstrumentedAttribute,
    ident: InstrumentedAttribute,
    *,
    after: Cursor | None,
    before: Cursor | None,
    limit: int = PAGE_SIZE,
) -> Page[K]:
    """Run ``query`` (one entity) for the page older than ``after`` (or newer than ``before``),
    newest first. One row more than the page is read, to know whether another page follows."""
    key = tuple_(created, ident)
    if before is not None:
        newer = list(db.session.scalars(
            query.where(key > tuple_(before.created_at, before.id)).order_by(created.asc(), ident.asc()).limit(limit + 1)
        ))
        rows = list(reversed(newer[:limit]))
        return Page(
            rows,
            older=_cursor_of(rows[-1]) if rows else None,
            newer=_cursor_of(rows[0]) if len(newer) > limit else None,
        )
    if after is not None:
        query = query.where(key < tuple_(after.created_at, after.id))
    older = list(db.session.scalars(query.order_by(created.desc(), ident.desc()).limit(limit + 1)))
    rows = older[:limit]
    return Page(
        rows,
        older=_cursor_of(rows[-1]) if len(older) > limit else None,
        newer=_cursor_of(rows[0]) if after is not None and rows else None,
    )


# --- filters ---------------------------------------------------------------------------------

def parse_day(text: str | None, label: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` day from a form field (what ``<input type=date>`` sends), or None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise FilterError(
            "FILTER_DATE_INVALID", f"“{text[:40]}” is not a date ({label}): use the form YYYY-MM-DD, e.g. 2025-03-31."
        ) from None
    if not 2000 <= day.year <= 2999:
        raise FilterError("FILTER_DATE_INVALID", f"{text} is out of range ({label}): use a date between 2000 and 2999.")
    return day


def _day_range(args: Mapping[str, str], start: str, end: str, label: str) -> tuple[dt.date | None, dt.date | None]:
    first = parse_day(args.get(start), f"{label} from")
    last = parse_day(args.get(end), f"{label} to")
    if first and last and first > last:
        raise FilterError("FILTER_DATE_RANGE", f"The {label} range ends ({last}) before it starts ({first}).")
    return first, last


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min)


def _choice(args: Mapping[str, str], name: str, allowed: tuple[str, ...], code: str) -> str:
    value = (args.get(name) or "").strip().lower()
    if value and value not in allowed:
        raise FilterError(code, f"Unknown {name} “{value[:40]}”: choose one of {', '.join(allowed)}.")
    return value


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
        used_from, used_to = _day_range(args, "used_from", "used_to", "last-used")
        return cls(
            account=(args.get("account") or "").strip().lower()[:64],
            email=normalise_email(args.get("email") or "")[:320],
            app=_choice(args, "app", APPS, "FILTER_APP_INVALID"),
            state=_choice(args, "state", STATES, "FILTER_STATE_INVALID"),
            used_from=used_from,
            used_to=used_to,
        )

    def as_args(self) -> dict[str, str]:
        """The filters as query-string arguments, for page links."""
        values = {
            "account": self.account, "email": self.email, "app": self.app, "state": self.state,
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


def _account_id(slug: str) -> int | None:
    return db.session.scalar(select(Account.id).where(Account.slug == slug))


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
        account_id = _account_id(filters.account)
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
        query = query.where(UserSession.last_used_at >= _start_of(filters.used_from))
    if filters.used_to:
        end = _start_of(filters.used_to + dt.timedelta(days=1))
        # A session is created before it is last used: the second bound lets the index skip
        # straight to the right place instead of reading every newer session.
        query = query.where(UserSession.last_used_at < end, UserSession.created_at < end)
    page = keyset_page(query, UserSession.created_at, UserSession.id, after=after, before=before, limit=limit)
    return SessionList(page, rows=_session_rows(page.rows, now))


def _session_rows(sessions: list[UserSession], now: dt.datetime) -> list[SessionRow]:
    """Attach email and account slug with one query each (not one per row)."""
    user_ids = {s.user_id for s in sessions if s.user_id is not None}
    account_ids = {s.account_id for s in sessions}
    emails = dict(db.session.execute(select(User.id, User.email).where(User.id.in_(user_ids))).all()) if user_ids else {}
    slugs = dict(db.session.execute(select(Account.id, Account.slug).where(Account.id.in_(account_ids))).all()) if account_ids else {}
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
    return SessionDetail(session, user, account, connection, session_state(session, utcnow()))


# --- audit log -------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditFilters:
    """Filters of the audit log."""

    account: str = ""
    #: An exact action (``user.deactivate``) or a prefix ending in a dot (``signin.``).
    action: str = ""
    outcome: str = ""
    error_code: str = ""
    #: The user acted on (or who tried to sign in).
    email: str = ""
    #: Who acted: an email, or ``cli`` / ``anonymous``.
    actor: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> AuditFilters:
        date_from, date_to = _day_range(args, "date_from", "date_to", "date")
        action = (args.get("action") or "").strip().lower()[:64]
        if action and not re.fullmatch(r"[a-z0-9_.]+", action):
            raise FilterError("FILTER_ACTION_INVALID", "An action is made of letters, digits, dots and underscores (e.g. user.deactivate or signin.).")
        error_code = (args.get("error_code") or "").strip().upper()[:64]
        if error_code and not re.fullmatch(r"[A-Z0-9_]+", error_code):
            raise FilterError("FILTER_CODE_INVALID", "An error code is made of capital letters, digits and underscores (e.g. USER_NOT_FOUND).")
        return cls(
            account=(args.get("account") or "").strip().lower()[:64],
            action=action,
            outcome=_choice(args, "outcome", OUTCOMES, "FILTER_OUTCOME_INVALID"),
            error_code=error_code,
            email=normalise_email(args.get("email") or "")[:320],
            actor=normalise_email(args.get("actor") or "")[:320],
            date_from=date_from,
            date_to=date_to,
        )

    def as_args(self) -> dict[str, str]:
        values = {
            "account": self.account, "action": self.action, "outcome": self.outcome, "error_code": self.error_code,
            "email": self.email, "actor": self.actor, "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
        }
        return {key: value for key, value in values.items() if value}


@dataclass
class AuditList:
    page: Page[AuditEvent]
    note: str = ""


def list_audit_events(
    filters: AuditFilters, *, after: Cursor | None = None, before: Cursor | None = None, limit: int = PAGE_SIZE
) -> AuditList:
    """Audit events matching ``filters``, newest first, one page."""
    query = select(AuditEvent)
    if filters.account:
        account_id = _account_id(filters.account)
        if account_id is None:
            return AuditList(Page([]), note=f"There is no account “{filters.account}”.")
        query = query.where(AuditEvent.account_id == account_id)
    if filters.action:
        if filters.action.endswith("."):
            query = query.where(AuditEvent.action.startswith(filters.action, autoescape=True))
        else:
            query = query.where(AuditEvent.action == filters.action)
    if filters.outcome:
        query = query.where(AuditEvent.outcome == filters.outcome)
    if filters.error_code:
        query = query.where(AuditEvent.error_code == filters.error_code)
    # Subject and actor are separate filters: each is one indexed equality (an OR of the two
    # would make SQLite read the whole log in date order).
    if filters.email:
        query = query.where(AuditEvent.subject_email == filters.email)
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.date_from:
        query = query.where(AuditEvent.created_at >= _start_of(filters.date_from))
    if filters.date_to:
        query = query.where(AuditEvent.created_at < _start_of(filters.date_to + dt.timedelta(days=1)))
    page = keyset_page(query, AuditEvent.created_at, AuditEvent.id, after=after, before=before, limit=limit)
    return AuditList(page)


# --- accounts --------------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountRow:
    """An account with its user counts and how its users sign in."""

    account: Account
    users: int
    active_users: int
    #: Statuses of its IdP connections (``enabled``, ``tested``, ``draft``), one per connection.
    connection_statuses: tuple[str, ...]

    @property
    def sso_enabled(self) -> bool:
        return ENABLED in self.connection_statuses


def list_accounts(search: str = "", *, after: str | None = None, limit: int = PAGE_SIZE) -> tuple[list[AccountRow], str | None]:
    """Accounts by slug (keyset on the unique slug), with counts in two grouped queries."""
    query = select(Account).order_by(Account.slug).limit(limit + 1)
    search = search.strip().lower()[:100]
    if search:
        query = query.where(
            or_(Account.slug.contains(search, autoescape=True), func.lower(Account.name).contains(search, autoescape=True))
        )
    if after:
        query = query.where(Account.slug > after[:64])
    accounts = list(db.session.scalars(query))
    more = len(accounts) > limit
    accounts = accounts[:limit]
    ids = [account.id for account in accounts]
    counts: dict[int, tuple[int, int]] = {}
    statuses: dict[int, list[str]] = {}
    if ids:
        for account_id, total, active in db.session.execute(
            select(User.account_id, func.count(User.id), func.count(User.id).filter(User.status == ACTIVE))
            .where(User.account_id.in_(ids))
            .group_by(User.account_id)
        ):
            counts[account_id] = (total, active)
        for account_id, status in db.session.execute(
            select(IdpConnection.account_id, IdpConnection.status).where(IdpConnection.account_id.in_(ids))
        ):
            statuses.setdefault(account_id, []).append(status)
    rows = [
        AccountRow(account, *counts.get(account.id, (0, 0)), tuple(sorted(statuses.get(account.id, []))))
        for account in accounts
    ]
    return rows, accounts[-1].slug if more else None


# --- an account's users (admin pages) --------------------------------------------------------

@dataclass(frozen=True)
class UserFilters:
    """Search and filters of an admin's user list."""

    #: Part of an email or a name.
    search: str = ""
    role: str = ""
    status: str = ""

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> UserFilters:
        return cls(
            search=(args.get("q") or "").strip()[:100],
            role=_choice(args, "role", tuple(CUSTOMER_ROLES), "FILTER_ROLE_INVALID"),
            status=_choice(args, "status", USER_STATUSES, "FILTER_STATUS_INVALID"),
        )

    def as_args(self) -> dict[str, str]:
        values = {"q": self.search, "role": self.role, "status": self.status}
        return {key: value for key, value in values.items() if value}


@dataclass
class UserList:
    """A page of users by email, the number matching in all, and the neighbouring pages' cursors."""

    users: list[User]
    total: int
    #: The last email of this page, when a next page exists.
    next_after: str | None
    #: The first email of this page, when a previous page exists.
    previous_before: str | None


def _has_role(role: str) -> ColumnElement[bool]:
    """``roles`` holds sorted, comma-separated names: match the whole name, never a part of one."""
    return or_(
        User.roles == role,
        User.roles.startswith(f"{role},", autoescape=True),
        User.roles.endswith(f",{role}", autoescape=True),
        User.roles.contains(f",{role},", autoescape=True),
    )


def list_users(
    account_id: int, filters: UserFilters, *, after: str | None = None, before: str | None = None,
    limit: int = PAGE_SIZE,
) -> UserList:
    """The users of one account, by email (keyset on the unique email), one page."""
    query = select(User).where(User.account_id == account_id)
    if filters.search:
        needle = filters.search.lower()
        query = query.where(
            or_(User.email.contains(needle, autoescape=True), func.lower(User.name).contains(needle, autoescape=True))
        )
    if filters.role:
        query = query.where(_has_role(filters.role))
    if filters.status:
        query = query.where(User.status == filters.status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if before:
        users = list(db.session.scalars(query.where(User.email < before[:320]).order_by(User.email.desc()).limit(limit + 1)))
        more_before = len(users) > limit
        users = list(reversed(users[:limit]))
        return UserList(users, total, users[-1].email if users else None, users[0].email if more_before and users else None)
    if after:
        query = query.where(User.email > after[:320])
    users = list(db.session.scalars(query.order_by(User.email).limit(limit + 1)))
    more_after = len(users) > limit
    users = users[:limit]
    return UserList(users, total, users[-1].email if more_after else None, users[0].email if after and users else None)


# --- your sessions ---------------------------------------------------------------------------

#: More live sessions than this are not listed one by one ("sign out the others" ends them all).
OWN_SESSIONS_LIMIT = 100


def live_session_count(user_id: int) -> int:
    """How many places a user is signed in right now (web and apps)."""
    return db.session.scalar(
        select(func.count(UserSession.id)).where(
            UserSession.user_id == user_id, UserSession.revoked_at.is_(None), UserSession.expires_at > utcnow()
        )
    ) or 0


def live_sessions_of(user_id: int) -> list[UserSession]:
    """A user's live sessions (web and app), most recently used first."""
    return list(db.session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None), UserSession.expires_at > utcnow())
        .order_by(UserSession.last_used_at.desc(), UserSession.id.desc())
        .limit(OWN_SESSIONS_LIMIT)
    ))
