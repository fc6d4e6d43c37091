"""What a destructive action will do, in words and counts, for its confirmation page.

Each function reads the counts it names (sessions, devices, users, certificates) at the moment
the page is shown, and returns the sentence and the facts worth knowing, so that an admin confirms
"Alice will be signed out of 3 open sessions on 2 devices", not "Are you sure?".
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select

from app.extensions import db
from app.formatting import plural
from app.models import IdpConnection, ScimToken, User, UserSession
from app.models.idp_connection import ENABLED, IdpCertificate
from app.models.user import ACTIVE
from app.roles import Actor
from app.services.session_display import device_label, relative_time
from app.timeutil import utcnow


@dataclass(frozen=True)
class Consequence:
    """The sentence that names what will happen, and further facts (one per line)."""

    sentence: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpenSessions:
    """How many places someone is signed in: live sessions, and the devices they are on."""

    sessions: int
    devices: int

    def words(self) -> str:
        """ "3 open sessions on 2 devices"."""
        return f"{plural(self.sessions, 'open session')} on {plural(self.devices, 'device')}"


def open_sessions(user_id: int, *, except_session_id: int | None = None) -> OpenSessions:
    """A user's live sessions and on how many devices (distinct user agents; one query).

    Devices are told apart by user agent: sessions without one count as one device, and two
    laptops with the same browser as one (nothing else tells them apart).
    """
    query = select(func.count(UserSession.id), func.count(distinct(func.coalesce(UserSession.user_agent, "")))).where(
        UserSession.user_id == user_id, UserSession.live_at(utcnow())
    )
    if except_session_id is not None:
        query = query.where(UserSession.id != except_session_id)
    sessions, devices = db.session.execute(query).one()
    return OpenSessions(sessions or 0, devices or 0)


def _who(user: User) -> str:
    return user.name or user.email


def sign_out_everywhere(user: User) -> Consequence:
    """Every session of ``user`` ends (support's or an admin's "revoke all")."""
    found = open_sessions(user.id)
    if not found.sessions:
        return Consequence(f"{_who(user)} is not signed in anywhere right now: no session ends.")
    return Consequence(
        f"{_who(user)} will be signed out of {found.words()}.",
        ("Web browsers and the desktop and mobile apps are refused at their next request.",),
    )


def sign_out_others(user: Actor, keep_session_id: int | None) -> Consequence:
    """The owner's "sign out all other sessions": every session but the one in use."""
    found = open_sessions(user.id, except_session_id=keep_session_id)
    if not found.sessions:
        return Consequence("You are signed in only here: no other session ends.")
    return Consequence(
        f"You will be signed out of {plural(found.sessions, 'other session')} on "
        f"{plural(found.devices, 'device')}; this session stays signed in."
    )


def sign_out_one(session: UserSession, whose: str) -> Consequence:
    """One session ends (``whose``: "Your" or "alice@acme.example's")."""
    device = device_label(session.user_agent, session.app)
    if not session.is_live():
        return Consequence(f"{whose} {device} session has already ended: nothing will change.")
    return Consequence(
        f"{whose} {device} session, last used {relative_time(session.last_used_at)}, will be signed out at once.",
        ("Other sessions go on.",),
    )


def deactivate(user: User) -> Consequence:
    found = open_sessions(user.id)
    signed_out = f"will be signed out of {found.words()}" if found.sessions else "is not signed in anywhere now"
    return Consequence(
        f"{_who(user)} {signed_out} and cannot sign in again until an admin reactivates them.",
        ("Their roles and history stay, so reactivating gives back the same access.",),
    )


def delete(user: User) -> Consequence:
    found = open_sessions(user.id)
    signed_out = f" and signed out of {found.words()}" if found.sessions else " (not signed in anywhere now)"
    return Consequence(
        f"{user.email} will be deleted for good{signed_out}.",
        ("Their sessions stay in the support console, detached, for the record.",),
    )


def _sso_users(connection: IdpConnection) -> int:
    return (
        db.session.scalar(
            select(func.count(User.id)).where(User.account_id == connection.account_id, User.status == ACTIVE)
        )
        or 0
    )


def _through_it(connection: IdpConnection) -> int:
    """Live sessions that signed in through ``connection``."""
    return (
        db.session.scalar(
            select(func.count(UserSession.id)).where(
                UserSession.connection_id == connection.id, UserSession.live_at(utcnow())
            )
        )
        or 0
    )


def _stop_sign_ins(connection: IdpConnection) -> str:
    users = _sso_users(connection)
    return (
        f"{connection.name} will stop accepting sign-ins for {connection.account.name}; "
        f"{plural(users, 'user')} who sign{'s' if users == 1 else ''} in with SSO cannot use it until it is "
        f"enabled again (those with a password can still sign in with it)."
    )


def _sessions_stay(connection: IdpConnection) -> str:
    live = _through_it(connection)
    verb = "stays" if live == 1 else "stay"
    return f"{plural(live, 'open session')} started through it {verb} signed in until {'it ends' if live == 1 else 'they end'}."


def _sso_required_note(connection: IdpConnection) -> tuple[str, ...]:
    if connection.status == ENABLED and connection.account.sso_required:
        return (f'{connection.account.name} requires SSO: turn off "SSO required" first, or this is refused.',)
    return ()


def disable_connection(connection: IdpConnection) -> Consequence:
    return Consequence(
        _stop_sign_ins(connection),
        (*_sso_required_note(connection), _sessions_stay(connection), "Its settings stay: you can enable it again."),
    )


def delete_connection(connection: IdpConnection, idp_name: str, acs_url: str) -> Consequence:
    certificates = len(connection.certificates)
    removed = f"Its settings and {plural(certificates, 'certificate')} are removed; the sign-in history stays in the audit log."
    also = f"Also remove the application in {idp_name}, or it keeps pointing at {acs_url}."
    if connection.status == ENABLED:
        return Consequence(
            _stop_sign_ins(connection) + " Deleting cannot be undone.",
            (*_sso_required_note(connection), _sessions_stay(connection), removed, also),
        )
    return Consequence(
        f"The {connection.status} connection {connection.name} will be deleted for good; nobody signs in through it now.",
        (removed, also),
    )


def remove_certificate(connection: IdpConnection, certificate: IdpCertificate) -> Consequence:
    others = len(connection.certificates) - 1
    return Consequence(
        f"{connection.name} sign-ins signed with the certificate {certificate.fingerprint_sha256[:23]}… "
        f"(expires {certificate.not_after:%Y-%m-%d}) will be refused.",
        (
            f"{plural(others, 'other certificate')} {'stays' if others == 1 else 'stay'} trusted."
            if others
            else "No certificate is left: add one before this connection is enabled again.",
        ),
    )


def revoke_scim_token(token: ScimToken, live_tokens: int) -> Consequence:
    others = max(live_tokens - (1 if token.is_live else 0), 0)
    used = f"last used {relative_time(token.last_used_at)}" if token.last_used_at else "never used"
    return Consequence(
        f"Your identity provider's next request with the token “{token.name}” ({used}) will be refused: "
        "users and groups stop updating from it until it uses another token.",
        (f"{plural(others, 'other live token')} {'keeps' if others == 1 else 'keep'} working.",),
    )
