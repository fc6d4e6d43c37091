"""The models, one module per aggregate. Importing this package registers every table."""

from app.models.account import Account
from app.models.audit_event import AuditEvent
from app.models.idp_connection import IdpCertificate, IdpConnection
from app.models.session import PendingRequest, UsedAssertion, UserSession
from app.models.user import User

__all__ = [
    "Account",
    "AuditEvent",
    "IdpCertificate",
    "IdpConnection",
    "PendingRequest",
    "UsedAssertion",
    "User",
    "UserSession",
]
