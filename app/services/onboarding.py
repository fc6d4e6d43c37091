"""The portal home's "what next": an admin's setup checklist, and anyone's apps and sessions.

The home page used to be a dead end. An admin who has never seen SAML needs to know what is done and
what comes next: connect the IdP, add the people, require SSO, and keep the IdP's certificate from
expiring. Each item's state is computed here, from the same rules the setup pages apply (the wizard's
next step, ``sso_ready_connection``, ``EXPIRY_WARNING_DAYS``), so the checklist never says "done"
where the page it links to would disagree. Read only: nothing here changes or audits anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app, url_for
from sqlalchemy import func, select

from app.extensions import db
from app.idp_plugins import get_plugin
from app.models import Account, IdpConnection, User
from app.models.idp_connection import DRAFT, ENABLED, TESTED
from app.models.user import ACTIVE
from app.roles import APPS, Actor, apps_for_roles
from app.saml import EXPIRY_WARNING_DAYS
from app.services.accounts import sso_ready_connection
from app.services.scim_tokens import live_tokens
from app.services.session_queries import live_session_count
from app.services.setup_wizard import is_staff, wizard_step
from app.timeutil import utcnow

#: An item's state: finished, to be done now, or to be done once an earlier item is finished.
DONE, TO_DO, WAITING = "done", "todo", "waiting"

#: How the apps are called on the page, in the order of ``app.roles.APPS``.
APP_LABELS = {"portal": "Account Portal", "desktop": "Desktop app", "mobile": "Mobile app"}

#: The connection states, most advanced first: the checklist follows the one furthest along.
_PROGRESS = (ENABLED, TESTED, DRAFT)


@dataclass(frozen=True)
class ConnectItem:
    """Connect your IdP: the account's connection furthest along, if any."""

    #: ``none``, ``draft``, ``tested`` or ``enabled``.
    status: str
    connection_id: int | None = None
    connection_name: str | None = None
    provider_name: str | None = None
    #: The wizard's next step for that connection (``configure``, ``import``, ``test``, ``enable``,
    #: ``live``); None without a connection.
    next_step: str | None = None

    @property
    def state(self) -> str:
        return DONE if self.status == ENABLED else TO_DO


@dataclass(frozen=True)
class UsersItem:
    """Add users: how many can sign in, how many are deactivated, whether SCIM can add them."""

    active: int
    deactivated: int
    #: Whether the account has a live SCIM token (its IdP may be provisioning users).
    scim_on: bool

    @property
    def state(self) -> str:
        # The admin reading this is one active user; the company starts when someone else is added.
        return DONE if self.active > 1 else TO_DO


@dataclass(frozen=True)
class SsoRequiredItem:
    """Require SSO: whether it is on, and whether it can be turned on yet."""

    required: bool
    #: Whether a tested, enabled connection exists (the setup page refuses the switch without one).
    ready: bool

    @property
    def state(self) -> str:
        if self.required:
            return DONE
        return TO_DO if self.ready else WAITING


@dataclass(frozen=True)
class CertificateItem:
    """Certificate expiry: the enabled connection whose IdP signing certificate expires first."""

    connection_id: int | None = None
    connection_name: str | None = None
    not_after: dt.datetime | None = None
    #: Whole days until ``not_after`` (negative once expired); None without an enabled connection.
    days_left: int | None = None

    @property
    def expired(self) -> bool:
        return self.days_left is not None and self.days_left < 0

    @property
    def warn(self) -> bool:
        """Whether it expires within ``EXPIRY_WARNING_DAYS`` (or has expired)."""
        return self.days_left is not None and self.days_left < EXPIRY_WARNING_DAYS

    @property
    def state(self) -> str:
        if self.days_left is None:
            return WAITING
        return TO_DO if self.warn else DONE


@dataclass(frozen=True)
class AdminChecklist:
    """One account's setup, item by item, in the order an admin does it."""

    account: Account
    connect: ConnectItem
    users: UsersItem
    sso_required: SsoRequiredItem
    certificates: CertificateItem

    @property
    def states(self) -> list[str]:
        return [item.state for item in (self.connect, self.users, self.sso_required, self.certificates)]

    @property
    def done_count(self) -> int:
        return self.states.count(DONE)

    @property
    def total(self) -> int:
        return len(self.states)


@dataclass(frozen=True)
class PersonSummary:
    """What anyone signed in to the portal sees about themselves: their apps and their sessions."""

    roles: list[str]
    #: ``(app key, label)`` for each app the roles open, in the product's order.
    apps: list[tuple[str, str]]
    #: Live sessions of this person, web and apps (this one included).
    live_sessions: int
    #: Support staff: the home links to the support console.
    is_staff: bool


def _connect_item(connections: list[IdpConnection]) -> ConnectItem:
    for status in _PROGRESS:
        candidates = [connection for connection in connections if connection.status == status]
        if candidates:
            # Among equals, the newest: the one the admin is working on.
            connection = max(candidates, key=lambda row: row.id)
            return ConnectItem(
                status=status,
                connection_id=connection.id,
                connection_name=connection.name,
                provider_name=get_plugin(connection.plugin_key).display_name,
                next_step=wizard_step(connection),
            )
    return ConnectItem(status="none")


def _users_item(account: Account) -> UsersItem:
    counts = dict(
        db.session.execute(
            select(User.status, func.count(User.id)).where(User.account_id == account.id).group_by(User.status)
        )
        .tuples()
        .all()
    )
    active = counts.pop(ACTIVE, 0)
    return UsersItem(active=active, deactivated=sum(counts.values()), scim_on=bool(live_tokens(account.id)))


def _certificate_item(connections: list[IdpConnection], now: dt.datetime) -> CertificateItem:
    """The soonest expiry among enabled connections, each counted by its *latest* IdP certificate.

    An old certificate kept beside a newer one is a finished rollover, not a lockout (the rule of
    ``app.services.certificate_alerts``); a connection that is not enabled signs nobody in yet.
    """
    latest = [
        (max(cert.not_after for cert in connection.certificates), connection)
        for connection in connections
        if connection.status == ENABLED and connection.certificates
    ]
    if not latest:
        return CertificateItem()
    not_after, connection = min(latest, key=lambda pair: (pair[0], pair[1].id))
    return CertificateItem(
        connection_id=connection.id,
        connection_name=connection.name,
        not_after=not_after,
        days_left=(not_after - now).days,
    )


def admin_checklist(account: Account, *, now: dt.datetime | None = None) -> AdminChecklist:
    """The setup checklist of ``account``: for its own admins only (the caller checks who asks)."""
    connections = list(
        db.session.scalars(
            select(IdpConnection).where(IdpConnection.account_id == account.id).order_by(IdpConnection.id)
        )
    )
    return AdminChecklist(
        account=account,
        connect=_connect_item(connections),
        users=_users_item(account),
        sso_required=SsoRequiredItem(required=account.sso_required, ready=sso_ready_connection(account) is not None),
        certificates=_certificate_item(connections, now or utcnow()),
    )


def person_summary(user: Actor) -> PersonSummary:
    """``user``'s roles, the apps they open and how many places they are signed in."""
    opens = apps_for_roles(user.role_list)
    return PersonSummary(
        roles=user.role_list,
        apps=[(app, APP_LABELS[app]) for app in APPS if app in opens],
        live_sessions=live_session_count(user.id),
        is_staff=is_staff(user),
    )


def demo_idp_metadata_url() -> str | None:
    """The built-in demo IdP's metadata URL to offer an admin connecting an IdP, or None.

    Only under development settings with the demo IdP on: never where a customer could mistake it
    for a real identity provider. Built on ``BASE_URL``, the one address sign-ins work on.
    """
    if current_app.config.get("ENV_NAME") != "development" or not current_app.config.get("DEMO_IDP"):
        return None
    return current_app.config["BASE_URL"] + url_for("demo_idp.metadata")
