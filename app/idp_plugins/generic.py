"""Any SAML 2.0 identity provider, configured from its metadata or by hand."""

from typing import ClassVar

from app.idp_plugins.base import NAMEID_EMAIL, IdpPlugin, OptionHelp, SetupStep, SetupValue


class GenericPlugin(IdpPlugin):
    """A standards-following SAML 2.0 IdP with no product-specific quirks."""

    key = "generic"
    display_name = "Other SAML 2.0 identity provider"
    nameid_format = NAMEID_EMAIL
    email_attributes = (
        "email",
        "mail",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "urn:oid:0.9.2342.19200300.100.1.3",
    )
    #: Accepted whichever of the two it signs (a connection can require one: hardening).
    signed_element = "any"
    supports_idp_initiated = True
    supports_slo = True
    single_logout_help = OptionHelp(
        offered=True,
        body=(
            "Give your identity provider our Single Logout service (HTTP-Redirect or HTTP-POST binding) "
            "and our signing certificate, or let it read our metadata again: it lists both once Single "
            "Logout is on. It must sign its logout messages."
        ),
        values=(SetupValue("Single Logout URL", "sls_url"), SetupValue("Signing certificate", "sp_certificate")),
    )
    encryption_help = OptionHelp(
        offered=True,
        body=(
            "Upload our encryption certificate (also in our metadata) and choose RSA-OAEP key transport "
            "with AES-256-GCM or AES-256-CBC content. RSA 1.5 key transport is refused."
        ),
        values=(SetupValue("Encryption certificate", "sp_encryption_certificate"),),
    )
    signed_requests_help = OptionHelp(
        offered=True,
        body=(
            "If your identity provider can check AuthnRequest signatures, give it our signing "
            "certificate (also in our metadata, which then says AuthnRequestsSigned)."
        ),
        values=(SetupValue("Signing certificate", "sp_certificate"),),
    )
    metadata_source = "url"
    setup_steps = (
        SetupStep(
            title="Create a SAML application in your identity provider",
            body=(
                "In your identity provider's admin console, add a new SAML 2.0 application (it may "
                "be called a 'service provider', 'relying party' or 'custom SAML app'). If it can "
                "read service provider metadata, give it our metadata URL and skip to the next step."
            ),
            values=(SetupValue("Service provider metadata URL", "metadata_url"),),
        ),
        SetupStep(
            title="Enter the service provider values",
            body=("Otherwise enter these values. The Assertion Consumer Service must use the HTTP-POST binding."),
            values=(
                SetupValue("Entity ID / Audience", "sp_entity_id"),
                SetupValue("Assertion Consumer Service (ACS) URL", "acs_url"),
                SetupValue("Name ID format", "nameid", literal="EmailAddress"),
                SetupValue("Signature algorithm", "algorithm", literal="RSA-SHA256"),
            ),
        ),
        SetupStep(
            title="Send the user's email address",
            body=(
                "Send the user's email address as the NameID, or in an attribute named 'email'. "
                "Sign the assertion (or the whole response) with SHA-256."
            ),
        ),
        SetupStep(
            title="Give users access and copy the IdP details",
            body=(
                "Assign the application to the people who should use {account_name}'s phone "
                "system, then copy your identity provider's metadata URL (or download its metadata "
                "file) and import it on the next page."
            ),
        ),
    )

    provisioning_steps = (
        SetupStep(
            "Any SCIM 2.0 client",
            "Point the IdP's SCIM 2.0 client at the base URL below and send the token in the "
            "Authorization header. userName must be the person's email address. Supported: Users and "
            "Groups, filters (eq, co, sw, ew, pr, and, or, not), PATCH, attributes / excludedAttributes. "
            "Not supported: bulk, sorting, ETags, password changes (see /ServiceProviderConfig).",
            (
                SetupValue("SCIM base URL", "scim_base_url"),
                SetupValue("Authorization header", "", literal="Bearer <the SCIM token created above (shown once)>"),
            ),
        ),
    )
    hints: ClassVar[dict[str, str]] = {
        "SAML_AUDIENCE_MISMATCH": "Set the application's Entity ID / Audience to {sp_entity_id} exactly.",
        "SAML_DESTINATION_MISMATCH": "Set the application's ACS URL to {acs_url} exactly.",
        "SAML_WEAK_ALGORITHM": "Switch the application's signature algorithm to RSA-SHA256.",
        "SAML_SIGNATURE_INVALID": (
            "The response was not signed by a certificate we know. Re-import the identity "
            "provider's metadata, or add its current signing certificate."
        ),
        "SAML_NO_EMAIL": "Send the user's email address as the NameID or in an attribute named 'email'.",
    }
