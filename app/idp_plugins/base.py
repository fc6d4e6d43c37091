"""The plugin base: what one IdP product brings on top of the generic SAML 2.0 core.

A plugin is a *type* (this class, data only); an ``IdpConnection`` row is an *instance* with one
customer's values. Plugins hold defaults, setup steps and hints, never control flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"

#: What must carry the IdP's signature. ``any``: the assertion must be covered by a valid signature,
#: on the assertion itself or on the enclosing Response (SAML profiles errata E26), which is what
#: every IdP sends in one of its modes. ``assertion`` / ``response`` / ``both`` are per-connection
#: hardening options that require that particular element to be signed.
SignedElement = Literal["any", "assertion", "response", "both"]
SIGNED_ELEMENTS: tuple[SignedElement, ...] = ("any", "assertion", "response", "both")

#: The SP values a setup step may show, by key; ``app.idp_plugins.sp_values`` builds them.
SP_VALUE_KEYS = (
    "acs_url",
    "sp_entity_id",
    "metadata_url",
    "sls_url",
    "sp_certificate",
    "start_url",
    "account_name",
    # A regular expression matching exactly ``acs_url`` (OneLogin's "ACS (Consumer) URL Validator");
    # ``render`` derives it from ``acs_url`` when the caller does not supply it.
    "acs_url_regex",
    # The SP's current encryption certificate (PEM), or a note to turn encryption on first.
    "sp_encryption_certificate",
    # The email address of the admin reading the walkthrough (a contact email the IdP asks for).
    "admin_email",
)


#: The values a provisioning (SCIM) step may show, by key; the account's SCIM page supplies them.
SCIM_VALUE_KEYS = ("scim_base_url", "account_name")


@dataclass(frozen=True)
class SetupValue:
    """One value the admin copies into the IdP: the IdP's own field label and our value's key."""

    #: The field label exactly as the IdP's screen shows it ("Audience URI (SP Entity ID)").
    label: str
    #: One of ``SP_VALUE_KEYS``, or a literal value when ``literal`` is set.
    key: str
    #: A fixed value to show instead of one of ours (e.g. ``SHA-256``, ``EmailAddress``).
    literal: str | None = None
    #: Whether the admin *types* the literal into a text field (an attribute name, ``user.email``,
    #: a command): it then gets a Copy button like our own values, because a typo there breaks the
    #: sign-in silently. A choice in a menu or a checkbox (``Signed``) is shown as a setting instead.
    #: Our own values (no ``literal``) are always copied.
    typed: bool = False

    @property
    def copyable(self) -> bool:
        """Whether the page shows this value with a Copy button (ours, or a literal to type)."""
        return self.literal is None or self.typed


@dataclass(frozen=True)
class OptionHelp:
    """How the IdP sets one optional security feature, in its own screens' words."""

    #: False when the IdP does not offer the feature; ``body`` then says so plainly.
    offered: bool
    #: Plain-text instructions with ``{placeholders}`` like a setup step's.
    body: str
    #: Values shown with copy buttons, in the order the IdP's form asks for them.
    values: tuple[SetupValue, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class SetupFile:
    """A file the admin saves as it is (an XML metadata component): shown whole, copyable and
    downloadable, with ``{placeholders}`` filled like a step's body."""

    #: Where the file goes in the admin's project (``force-app/.../X.eca-meta.xml``); its last part
    #: is the download's file name and must be unique within the plugin.
    path: str
    #: The file's text with ``{placeholders}`` for SP values.
    content: str
    #: The Content-Type of the download.
    media_type: str = "application/xml"

    @property
    def name(self) -> str:
        """The file name alone: what the download is saved as."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SetupPath:
    """One of several ways to set the IdP up (Salesforce: a connected app, or an external client
    app deployed as metadata); the admin chooses one and sees only its steps."""

    #: Short key used in the page's address (``?path=connected-app``): letters, digits, dashes.
    key: str
    #: What the choice is called on the page ("A connected app").
    label: str
    #: When to choose it, in one or two sentences.
    description: str


@dataclass(frozen=True)
class SetupStep:
    """One step of the walkthrough, in the order of the IdP's own screens."""

    title: str
    #: Plain-text instructions; ``{placeholders}`` are SP value keys, filled per connection.
    body: str
    #: Values shown with copy buttons, in the order the IdP's form asks for them.
    values: tuple[SetupValue, ...] = field(default_factory=tuple)
    #: The key of the ``SetupPath`` this step belongs to; None for a step every path shares.
    path: str | None = None
    #: Whether this step asks the admin to choose one of the plugin's ``setup_paths``; the steps
    #: after it are shown once a path is chosen.
    offers_paths: bool = False
    #: Files to save as they are, each shown in a copyable block with a download link.
    files: tuple[SetupFile, ...] = field(default_factory=tuple)


class IdpPlugin:
    """Base class for IdP plugins. Subclasses override the class attributes; nothing else."""

    #: Registry key, stored on connections (``okta``).
    key: ClassVar[str]
    #: Name shown to admins ("Okta").
    display_name: ClassVar[str]
    #: NameID format to request in the AuthnRequest (never ``transient``).
    nameid_format: ClassVar[str] = NAMEID_EMAIL
    #: Attributes that may carry the email, tried in order; the NameID is the fallback when it
    #: is an email address.
    email_attributes: ClassVar[tuple[str, ...]] = ("email",)
    #: What must be signed by default: ``any`` (assertion or Response) for every plugin, so that
    #: switching the IdP's signing option never breaks a working connection; a connection may
    #: harden it to ``assertion``, ``response`` or ``both``.
    signed_element: ClassVar[SignedElement] = "any"
    supports_idp_initiated: ClassVar[bool] = True
    supports_slo: ClassVar[bool] = False
    #: Where the IdP sets Single Logout (its SLO URL field, the SP certificate it needs); its
    #: ``offered`` must equal ``supports_slo``.
    single_logout_help: ClassVar[OptionHelp]
    #: Where the IdP turns on assertion encryption (the certificate to upload, the algorithms).
    encryption_help: ClassVar[OptionHelp]
    #: Whether the IdP checks signed AuthnRequests, and where our signing certificate goes.
    signed_requests_help: ClassVar[OptionHelp]
    #: How the admin gets the IdP metadata: ``url`` (we fetch it) or ``file`` (they download it).
    metadata_source: ClassVar[Literal["url", "file"]] = "file"
    #: Pattern of the metadata URL with ``{placeholders}`` for the admin's own values, if any.
    metadata_url_pattern: ClassVar[str | None] = None
    #: Usual lifetime of the IdP's signing certificate, in years (for expiry warnings).
    certificate_lifetime_years: ClassVar[float | None] = None
    #: The walkthrough, in the IdP's own screen order.
    setup_steps: ClassVar[tuple[SetupStep, ...]] = ()
    #: The ways to set the IdP up when it has several; a step that ``offers_paths`` asks which one,
    #: and steps with a ``path`` are shown only on theirs. Empty for a single way.
    setup_paths: ClassVar[tuple[SetupPath, ...]] = ()
    #: The SCIM provisioning walkthrough, in the IdP's own screen order; its values come from
    #: ``SCIM_VALUE_KEYS``. Empty when the IdP cannot provision this kind of app (then say so in
    #: ``provisioning_unavailable``) or has no steps of its own (the generic ones apply).
    provisioning_steps: ClassVar[tuple[SetupStep, ...]] = ()
    #: Said instead of steps when the IdP cannot provision a custom SAML app (and what to do).
    provisioning_unavailable: ClassVar[str | None] = None
    #: Troubleshooting hints keyed by our error codes (``SAML_AUDIENCE_MISMATCH``); may use
    #: ``{placeholders}`` like the steps.
    hints: ClassVar[dict[str, str]] = {}
