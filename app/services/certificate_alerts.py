"""Certificates about to lock a company out: the IdP's signing certificates and the SP's keys.

One rule for the portal home, the SSO setup pages, the support console and ``flask idp check-certs``:
an enabled connection alerts when the *latest* of its IdP signing certificates expires within
``EXPIRY_WARNING_DAYS`` (an old certificate beside a fresh one is a finished rollover, not a risk),
likewise for its SP encryption keys, and when its SP signing certificate does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import Account, IdpConnection
from app.models.idp_connection import ENABLED
from app.saml import EXPIRY_WARNING_DAYS, active_encryption_keys, certificate_info, expiry_state
from app.timeutil import utcnow

#: What an alert is about, in the words the pages use.
KIND_LABELS = {
    "idp_signing": "identity provider signing certificate",
    "sp_signing": "our signing certificate",
    "sp_encryption": "our encryption certificate",
}


@dataclass(frozen=True)
class CertificateAlert:
    """One certificate expiring (or expired) on one enabled connection."""

    account_id: int
    account_slug: str
    connection_id: int
    connection_name: str
    #: ``idp_signing``, ``sp_signing`` or ``sp_encryption``.
    kind: str
    fingerprint_sha256: str
    not_after: dt.datetime
    #: ``expiring`` or ``expired``.
    state: str

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def days_left(self) -> int:
        return (self.not_after - utcnow()).days

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"not_after": self.not_after.isoformat(), "days_left": self.days_left}


def _alerts_of(connection: IdpConnection, now: dt.datetime) -> list[CertificateAlert]:
    candidates: list[tuple[str, str, dt.datetime]] = []
    if connection.certificates:
        latest = max(connection.certificates, key=lambda cert: cert.not_after)
        candidates.append(("idp_signing", latest.fingerprint_sha256, latest.not_after))
    sp = certificate_info(connection.sp_certificate)
    candidates.append(("sp_signing", sp.fingerprint_sha256, sp.not_after))
    keys = active_encryption_keys(connection)
    if keys:
        newest = max(keys, key=lambda key: key.not_after)
        candidates.append(("sp_encryption", newest.fingerprint_sha256, newest.not_after))
    alerts = []
    for kind, fingerprint, not_after in candidates:
        state = expiry_state(not_after, now)
        if state != "valid":
            alerts.append(
                CertificateAlert(
                    account_id=connection.account_id,
                    account_slug=connection.account.slug,
                    connection_id=connection.id,
                    connection_name=connection.name,
                    kind=kind,
                    fingerprint_sha256=fingerprint,
                    not_after=not_after,
                    state=state,
                )
            )
    return alerts


def certificate_alerts(account: Account | None = None, *, now: dt.datetime | None = None) -> list[CertificateAlert]:
    """Alerts of ``account``'s enabled connections, or of every account's; soonest first."""
    query = (
        select(IdpConnection)
        .where(IdpConnection.status == ENABLED)
        .options(joinedload(IdpConnection.account))
        .order_by(IdpConnection.id)
    )
    if account is not None:
        query = query.where(IdpConnection.account_id == account.id)
    moment = now or utcnow()
    alerts = [alert for connection in db.session.scalars(query) for alert in _alerts_of(connection, moment)]
    return sorted(alerts, key=lambda alert: (alert.not_after, alert.connection_id))


__all__ = ["EXPIRY_WARNING_DAYS", "CertificateAlert", "certificate_alerts"]
