"""The models, one module per aggregate. Importing this package registers every table."""

from app.models.account import Account
from app.models.app_authorization import AppAuthorizationCode, AppAuthorizationRequest
from app.models.audit_event import AuditEvent
from app.models.idp_connection import IdpCertificate, IdpConnection
from app.models.import_job import ImportJob
from app.models.rate_limit import RateLimitCounter
from app.models.scim_group import ScimGroup
from app.models.scim_group_member import ScimGroupMember
from app.models.scim_group_role import ScimGroupRole
from app.models.scim_token import ScimToken
from app.models.session import PendingRequest, UsedAssertion, UserSession
from app.models.signin_result import SignInResult
from app.models.sp_encryption_key import SpEncryptionKey
from app.models.user import User

#: The largest id a primary key holds (PostgreSQL INTEGER); URLs and commands refuse larger ones.
MAX_ID = 2**31 - 1

__all__ = [
    "MAX_ID",
    "Account",
    "AppAuthorizationCode",
    "AppAuthorizationRequest",
    "AuditEvent",
    "IdpCertificate",
    "IdpConnection",
    "ImportJob",
    "PendingRequest",
    "RateLimitCounter",
    "ScimGroup",
    "ScimGroupMember",
    "ScimGroupRole",
    "ScimToken",
    "SignInResult",
    "SpEncryptionKey",
    "UsedAssertion",
    "User",
    "UserSession",
]
