"""What a connection asks of its IdP: the plugin's defaults, overridden per connection.

The one place that resolves "plugin default vs connection override", for the SAML settings, the
setup pages and the connection service alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.idp_plugins import get_plugin
from app.models import IdpConnection

#: The settings a connection may override, as stored in ``IdpConnection.settings``.
OVERRIDABLE = ("email_attributes", "signed_element", "nameid_format")
#: Security features a connection turns on, stored in ``IdpConnection.settings`` too, with their
#: values when the admin has not chosen: every one is off until turned on (not a plugin default).
FEATURE_DEFAULTS: dict[str, Any] = {"single_logout": False, "encrypt_assertions": "off", "sign_requests": False}
#: ``encrypt_assertions``: ``off`` (plain only), ``accept`` (plain or encrypted), ``require``.
ENCRYPTION_MODES = ("off", "accept", "require")


@dataclass(frozen=True)
class ConnectionOptions:
    """The options in force for one connection, and which of them it overrides."""

    #: What must carry the IdP's signature: ``any`` (the assertion, or the Response around it),
    #: or, as per-connection hardening, exactly ``assertion``, ``response`` or ``both``.
    signed_element: str
    #: The NameID format the AuthnRequest asks for.
    nameid_format: str
    #: Attributes that may carry the email, in the order they are tried.
    email_attributes: tuple[str, ...]
    #: The names (of ``OVERRIDABLE``) whose value comes from the connection, not the plugin.
    overridden: frozenset[str]
    #: Answer the IdP's LogoutRequests at the SLS, and send one on "Sign out".
    single_logout: bool = False
    #: ``off``, ``accept`` or ``require`` (see ``ENCRYPTION_MODES``).
    encrypt_assertions: str = "off"
    #: Sign AuthnRequests (Redirect-binding query signature, RSA-SHA256).
    sign_requests: bool = False


def overrides_of(connection: IdpConnection) -> dict[str, Any]:
    """The connection's own values for the overridable settings (absent means the default)."""
    stored = connection.settings or {}
    return {name: stored[name] for name in OVERRIDABLE if stored.get(name)}


def features_of(connection: IdpConnection) -> dict[str, Any]:
    """The security features in force (``FEATURE_DEFAULTS`` where the connection has no value)."""
    stored = connection.settings or {}
    return {name: stored.get(name, default) for name, default in FEATURE_DEFAULTS.items()}


def resolve_options(connection: IdpConnection) -> ConnectionOptions:
    """The options in force: each override where the connection has one, else the plugin's."""
    plugin = get_plugin(connection.plugin_key)
    own = overrides_of(connection)
    features = features_of(connection)
    return ConnectionOptions(
        signed_element=own.get("signed_element", plugin.signed_element),
        nameid_format=own.get("nameid_format", plugin.nameid_format),
        email_attributes=tuple(own.get("email_attributes", plugin.email_attributes)),
        overridden=frozenset(own),
        single_logout=bool(features["single_logout"]),
        encrypt_assertions=str(features["encrypt_assertions"]),
        sign_requests=bool(features["sign_requests"]),
    )
