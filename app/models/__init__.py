"""The models, one module per aggregate. Importing this package registers every table."""

from app.models.account import Account
from app.models.app_authorization import AppAuthorizationCode, AppAuthorizationRequest
from app.models.audit_event import AuditEvent
from app.models.idp_connection import IdpCertificate, IdpConnection
from app.models.scim_group import ScimGroup
from app.models.scim_group_member import ScimGroupMember
from app.models.scim_group_role import ScimGroupRole
from app.models.scim_token import ScimToken
from app.models.session import PendingRequest, UsedAssertion, UserSession
from app.models.user import User

__all__ = [
    "Account",
    "AppAuthorizationCode",
    "AppAuthorizationRequest",
    "AuditEvent",
    "IdpCertificate",
    "IdpConnection",
    "PendingRequest",
    "ScimGroup",
    "ScimGroupMember",
    "ScimGroupRole",
    "ScimToken",
    "UsedAssertion",
    "User",
    "UserSession",
]
