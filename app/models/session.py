"""Server-side sign-in sessions, pending AuthnRequests and the assertion replay cache."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, DateTime, ForeignKey, Index, String, Text, and_, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.user import User
from app.timeutil import utcnow


class UserSession(Model):
    """A signed-in browser or app. The client holds a random token; only its hash is kept here."""

    __tablename__ = "sessions"
    __table_args__ = (
        #: One user's sessions, newest first: their own list, a revocation, the last sign-in, and the
        #: console's email filter over a few users. The filters' columns follow, so that SQLite
        #: checks a state, app, account or last-use filter in the index and fetches only the rows
        #: of the page (SQLite, 1M sessions, 250 users' active sessions: 3.5 -> 0.5 ms).
        Index(
            "ix_sessions_user_id_created_at_state",
            "user_id",
            "created_at",
            "id",
            "revoked_at",
            "expires_at",
            "app",
            "account_id",
            "last_used_at",
        ),
        Index("ix_sessions_created_at_id", "created_at", "id"),
        #: The support console's list of one account, newest first, paged by (created_at, id).
        Index("ix_sessions_account_id_created_at_id", "account_id", "created_at", "id"),
        #: An IdP's LogoutRequest ends the sessions of one NameID through one connection.
        Index("ix_sessions_connection_id_saml_name_id", "connection_id", "saml_name_id"),
        # The console's other filters, each read in its own order (see
        # ``app.services.session_queries.ORDERS``), so that every page, the last one too, is a
        # bounded seek. Partial indexes: only the rows the filter can show.
        #: Every session by expiry (the purge's search). With the id, not expires_at alone: a
        #: PostgreSQL plan that picked a one-column index for the console's lists then had to
        #: sort every session sharing an expiry (thousands when used in the same second).
        Index("ix_sessions_expires_at_id", "expires_at", "id"),
        #: Active (``expires_at > now``) and expired (``<= now``) sessions, latest expiry first.
        Index(
            "ix_sessions_unrevoked_expires_at_id",
            "expires_at",
            "id",
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
        #: One account's active or expired sessions, latest expiry first.
        Index(
            "ix_sessions_account_unrevoked_expires_at_id",
            "account_id",
            "expires_at",
            "id",
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
        #: Revoked sessions, newest first.
        Index(
            "ix_sessions_revoked_created_at_id",
            "created_at",
            "id",
            sqlite_where=text("revoked_at IS NOT NULL"),
            postgresql_where=text("revoked_at IS NOT NULL"),
        ),
        #: One app's sessions, newest first.
        Index("ix_sessions_app_created_at_id", "app", "created_at", "id"),
        #: Sessions last used in a range of days, most recently used first. The account and
        #: state columns follow, so that SQLite checks a combined filter (an account, active)
        #: in the index, not in each of the range's rows (SQLite, 1M sessions: 40-55 -> 2-8 ms).
        Index(
            "ix_sessions_last_used_at_id_account_state",
            "last_used_at",
            "id",
            "account_id",
            "revoked_at",
            "expires_at",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 (hex) of the token the client holds.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Null once the user is deleted (the row stays, revoked, for support and audit).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    #: ``portal``, ``desktop`` or ``mobile``.
    app: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    #: How the user signed in: the IdP connection (null for a password sign-in).
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("idp_connections.id", ondelete="SET NULL"), nullable=True
    )
    #: ``sso`` or ``password``: how the user signed in, kept when the connection is deleted (its
    #: ``connection_id`` is then null, like a password sign-in's). Null on sessions from before it
    #: was recorded: read ``connection_id`` then.
    signin_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    saml_name_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    saml_session_index: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: Why it was revoked (``logout``, ``user_deactivated``, ``revoked_by_support``, ...).
    revoked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)

    user: Mapped[User | None] = relationship()

    # The one rule for "is this session live", in Python and in SQL, side by side so that they
    # cannot drift apart: not revoked and not expired. (Whether its user may still use it is the
    # session store's question: see ``app.sessions.find_live_session``.)

    def is_live(self, now: datetime | None = None) -> bool:
        """True when not revoked and not expired."""
        now = now or utcnow()
        return self.revoked_at is None and self.expires_at > now

    @classmethod
    def live_at(cls, now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
        """The SQL form of ``is_live``: not revoked and not expired at ``now``."""
        return and_(cls.revoked_at.is_(None), cls.expires_at > now)


class PendingRequest(Model):
    """An AuthnRequest we sent and whose Response we still expect (checked against InResponseTo)."""

    __tablename__ = "pending_requests"

    #: The AuthnRequest ID (starts with a letter, as Entra ID requires).
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("idp_connections.id", ondelete="CASCADE"), index=True)
    app: Mapped[str] = mapped_column(String(20))
    #: Where to go after sign-in: a path on this site.
    next_path: Mapped[str] = mapped_column(Text, default="/")
    #: SHA-256 of the random value in this browser's binding cookie.
    browser_binding_hash: Mapped[str] = mapped_column(String(64), index=True)
    #: What started the request: ``login`` (a sign-in) or ``test`` (an admin's test sign-in), or a
    #: reference to an app authorisation request.
    purpose: Mapped[str] = mapped_column(String(200), default="login")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class UsedAssertion(Model):
    """Replay cache: an assertion ID, per connection, that already signed someone in."""

    __tablename__ = "used_assertions"

    connection_id: Mapped[int] = mapped_column(ForeignKey("idp_connections.id", ondelete="CASCADE"), primary_key=True)
    assertion_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    #: Kept until the assertion could no longer be accepted anyway.
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
