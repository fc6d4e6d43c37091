"""What an admin reads about one sign-in attempt through a connection (a test sign-in's result,
a row of the connection's diagnostics): a sentence about the person, with names and not ids,
and the one action that fixes it, where there is one.

The person signing in never sees these words: their page keeps the short text of
``app.errors.ErrorCode.message``. Everything here is read from the audit event the attempt left
and from the connection and users as they are now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.errors import AdminContext, admin_text
from app.idp_plugins import get_plugin
from app.models import AuditEvent, IdpConnection, User
from app.saml import resolve_options
from app.services.signin import match_user

#: How a person calls each app.
APP_LABELS = {"portal": "the Account Portal", "desktop": "the desktop app", "mobile": "the mobile app"}
#: Attributes that carry a first name, then a full name, as IdPs name them (compared lower-case).
FIRST_NAME_ATTRIBUTES = (
    "firstname",
    "givenname",
    "given_name",
    "user.firstname",
    "urn:oid:2.5.4.42",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
)
FULL_NAME_ATTRIBUTES = (
    "displayname",
    "name",
    "fullname",
    "cn",
    "urn:oid:2.16.840.1.113730.3.1.241",
    "http://schemas.microsoft.com/identity/claims/displayname",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
)
LAST_NAME_ATTRIBUTES = (
    "lastname",
    "surname",
    "sn",
    "family_name",
    "user.lastname",
    "urn:oid:2.5.4.4",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
)
#: Refusals about the person (the SAML exchange worked): the fix is a user here, not the IdP.
PERSON_CODES = frozenset({"USER_NOT_FOUND", "USER_DEACTIVATED", "NO_ROLE_FOR_APP"})
#: Refusals where the certificate that signed matters.
SIGNATURE_CODES = frozenset({"SAML_SIGNATURE_INVALID", "SLO_SIGNATURE_INVALID"})
#: Refusals fixed by importing the IdP's details again.
IMPORT_AGAIN_CODES = frozenset({"SAML_SIGNATURE_INVALID", "SAML_ISSUER_MISMATCH", "IDP_SSO_URL_INVALID"})
#: Refusals fixed in this connection's own settings.
SETTINGS_CODES = frozenset(
    {"SAML_UNSOLICITED", "SAML_ENCRYPTION_REQUIRED", "SAML_ENCRYPTION_OFF", "SAML_NO_EMAIL", "SLO_NOT_ENABLED"}
)
#: Longest name we repeat from an IdP (a name is shown, never trusted).
_NAME_MAX = 80


@dataclass(frozen=True)
class Action:
    """A link to the page that fixes it: the template builds the URL (``url_for(endpoint, **values)``)."""

    label: str
    endpoint: str
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrustedCertificate:
    fingerprint_sha256: str
    not_after: dt.datetime


@dataclass(frozen=True)
class SignerComparison:
    """The certificates a refused answer named as its signer, beside the ones we trust.

    ``claimed`` comes from the answer's own KeyInfo: anyone can write any certificate there, so it
    is shown to help the admin compare, and never used to verify anything.
    """

    claimed: tuple[str, ...]
    trusted: tuple[TrustedCertificate, ...]

    @property
    def names_a_trusted_certificate(self) -> bool:
        trusted = {cert.fingerprint_sha256 for cert in self.trusted}
        return any(fingerprint in trusted for fingerprint in self.claimed)


@dataclass(frozen=True)
class Explanation:
    """One attempt, for the admin."""

    #: The sentence about the person and what to do.
    text: str
    #: None when the attempt succeeded.
    code: str | None
    #: What fixes it, where a page of ours does.
    action: Action | None = None
    #: For a signature failure: who signed, and whom we trust.
    signer: SignerComparison | None = None
    #: The SAML exchange worked and only the person would be refused: enabling is not the fix.
    person_refused: bool = False


def _first_value(attributes: Mapping[str, Sequence[str]], names: tuple[str, ...]) -> str:
    by_name = {name.lower(): values for name, values in attributes.items()}
    for name in names:
        for value in by_name.get(name, ()):
            if value and value.strip():
                return " ".join(value.split())[:_NAME_MAX]
    return ""


def person_names(attributes: Mapping[str, Sequence[str]]) -> tuple[str, str]:
    """(what to call the person, their full name) from the attributes the IdP sent; empty when none.

    The first name reads best in a sentence ("Dave signed in at Okta"); the full name prefills the
    new-user form.
    """
    first = _first_value(attributes, FIRST_NAME_ATTRIBUTES)
    full = _first_value(attributes, FULL_NAME_ATTRIBUTES)
    if not full and first:
        last = _first_value(attributes, LAST_NAME_ATTRIBUTES)
        full = f"{first} {last}".strip()
    return first or full, full


def _roles_in_words(roles: Sequence[str]) -> str:
    roles = [role for role in roles if role]
    if not roles:
        return "no role"
    if len(roles) == 1:
        return f"{roles[0]} only"
    return ", ".join(roles[:-1]) + f" and {roles[-1]}"


def _trusted(connection: IdpConnection) -> tuple[TrustedCertificate, ...]:
    return tuple(TrustedCertificate(cert.fingerprint_sha256, cert.not_after) for cert in connection.certificates)


def _action(
    code: str, connection: IdpConnection, email: str, full_name: str, user: User | None, is_test: bool
) -> Action | None:
    """The one page that fixes ``code``, judged on the users as they are now."""
    plugin = get_plugin(connection.plugin_key)
    if code == "USER_NOT_FOUND" and email:
        if user is not None:  # added since the attempt
            if is_test:
                return Action(f"Test again: {email} is a user now", "setup.test_page", {"connection_id": connection.id})
            return Action(f"Open {email}", "admin.user", {"user_id": user.id})
        values = {"email": email, **({"name": full_name} if full_name else {})}
        return Action(f"Add {email} as a user", "admin.new_user", values)
    if code == "USER_DEACTIVATED" and user is not None:
        return Action(f"Open {user.email} to reactivate", "admin.user", {"user_id": user.id})
    if code == "NO_ROLE_FOR_APP" and user is not None:
        return Action(f"Change {user.email}'s roles", "admin.user", {"user_id": user.id})
    if code in IMPORT_AGAIN_CODES:
        return Action(
            f"Import {plugin.display_name}'s details again", "setup.import_idp", {"connection_id": connection.id}
        )
    if code in SETTINGS_CODES:
        return Action("Open this connection's settings", "setup.settings", {"connection_id": connection.id})
    return None


def explain_attempt(connection: IdpConnection, event: AuditEvent) -> Explanation:
    """The admin's reading of one sign-in or test sign-in ``event`` through ``connection``."""
    details: dict[str, Any] = dict(event.details or {})
    plugin = get_plugin(connection.plugin_key)
    email = str(details.get("email") or event.subject_email or "")
    first, full_name = person_names(details.get("attributes") or {})
    app_name = str(details.get("app") or "portal")
    user = match_user(connection.account_id, email) if email else None
    roles = details.get("user_roles")
    if roles is None and user is not None:
        roles = user.role_list
    context = AdminContext(
        person=first or email or AdminContext.person,
        email=email or AdminContext.email,
        idp=plugin.display_name,
        connection=connection.name,
        account=connection.account.name,
        app=APP_LABELS.get(app_name, app_name),
        roles=_roles_in_words(roles or []),
        email_attribute=(resolve_options(connection).email_attributes or ("email",))[0],
    )
    code = event.error_code
    if event.outcome == "success" or code is None:
        where = APP_LABELS.get(app_name, app_name)
        if event.action == "connection.test":
            text = f"{context.person} signed in at {context.idp} as {context.email}, and would get into {where}."
        else:
            text = f"{context.person} signed in through {connection.name} to {where}."
        return Explanation(text=text, code=None)
    signer = None
    if code in SIGNATURE_CODES:
        claimed = tuple(part.strip() for part in str(details.get("signed_with") or "").split(",") if part.strip())
        signer = SignerComparison(claimed, _trusted(connection))
    return Explanation(
        text=admin_text(code, context),
        code=code,
        action=_action(code, connection, email, full_name, user, event.action == "connection.test"),
        signer=signer,
        person_refused=code in PERSON_CODES,
    )
