"""OneLogin as the IdP: the "SAML Custom Connector (Advanced)" app.

Labels checked against OneLogin-based setup guides and OneLogin's certificate help; see
docs/idp-facts.md.
"""

from typing import ClassVar

from app.idp_plugins.base import NAMEID_UNSPECIFIED, IdpPlugin, OptionHelp, SetupStep, SetupValue


class OneLoginPlugin(IdpPlugin):
    """OneLogin: signs the assertion, but with SHA-1 until the admin picks SHA-256."""

    key = "onelogin"
    display_name = "OneLogin"
    #: The steps set "SAML nameID format" to Email; asking for "unspecified" also accepts an
    #: untouched connector.
    nameid_format = NAMEID_UNSPECIFIED
    #: The steps add the parameter ``email`` with "Include in SAML assertion".
    email_attributes = ("email", "Email", "User.email")
    #: "SAML signature element" set to Assertion (the steps say so explicitly).
    #: Accepted whichever of the two it signs (a connection can require one: hardening).
    signed_element = "any"
    supports_idp_initiated = True
    supports_slo = True
    single_logout_help = OptionHelp(
        offered=True,
        body=(
            "In the app's Configuration tab, paste our address into 'Single Logout URL'. OneLogin signs "
            "its logout messages with the certificate on the SSO tab, which we already have."
        ),
        values=(SetupValue("Single Logout URL", "sls_url"),),
    )
    encryption_help = OptionHelp(
        offered=True,
        body=(
            "In the SSO tab, set 'SAML Encryption Method' to AES-256-CBC (never TRIPLEDES-CBC); in the "
            "Configuration tab check 'Encrypt assertion' and paste our encryption certificate into "
            "'SP Certificate'."
        ),
        values=(SetupValue("SP Certificate", "sp_encryption_certificate"),),
    )
    signed_requests_help = OptionHelp(
        offered=False,
        body="OneLogin does not check AuthnRequest signatures. Request signing is harmless but useless here.",
    )
    metadata_source = "url"
    #: The "Issuer URL" on the SSO tab is also the metadata URL (older tenants:
    #: https://app.onelogin.com/saml/metadata/<app id>).
    metadata_url_pattern = "https://{subdomain}.onelogin.com/saml/metadata/{app_id}"
    #: The admin chooses each certificate's expiration in Security > Certificates; no fixed default
    #: could be confirmed, so expiry warnings must read the certificate itself.
    certificate_lifetime_years = None
    setup_steps = (
        SetupStep(
            title="Add the SAML Custom Connector (Advanced)",
            body=(
                "In OneLogin's administration, go to Applications > Applications and click Add App. "
                'Search for "SAML Custom Connector (Advanced)" and select it. Enter a Display Name '
                'your users will recognise, for example "{account_name} phone system", and click '
                "Save."
            ),
        ),
        SetupStep(
            title="Fill in the Configuration tab",
            body=(
                "Select Configuration in the left menu and enter these values. The ACS (Consumer) URL "
                "Validator is a regular expression; the value below matches our ACS URL exactly. "
                "Leave Single Logout URL empty. Setting SAML initiator to Service Provider makes the "
                "portal tile start a normal sign-in at the Login URL. Click Save."
            ),
            values=(
                SetupValue("Audience (EntityID)", "sp_entity_id"),
                SetupValue("Recipient", "acs_url"),
                SetupValue("ACS (Consumer) URL Validator", "acs_url_regex"),
                SetupValue("ACS (Consumer) URL", "acs_url"),
                SetupValue("Login URL", "start_url"),
                SetupValue("SAML initiator", "saml_initiator", literal="Service Provider"),
                SetupValue("SAML nameID format", "nameid_format", literal="Email"),
                SetupValue("SAML signature element", "signature_element", literal="Assertion"),
            ),
        ),
        SetupStep(
            title="Add the email parameter",
            body=(
                "Select Parameters, click the + button and add a field named email whose value is "
                'the user\'s Email, with "Include in SAML assertion" checked. Save.'
            ),
            values=(
                SetupValue("Field name", "parameter_name", literal="email", typed=True),
                SetupValue("Flags", "parameter_flags", literal="Include in SAML assertion"),
                SetupValue("Value", "parameter_value", literal="Email"),
            ),
        ),
        SetupStep(
            title="Switch the SSO tab to SHA-256",
            body=(
                "Select SSO. OneLogin signs with SHA-1 unless you change it, and we refuse SHA-1: set "
                "SAML Signature Algorithm to SHA-256 and click Save. Then copy the Issuer URL (it is "
                "also the app's metadata URL) and paste it on the next page."
            ),
            values=(SetupValue("SAML Signature Algorithm", "signature_algorithm", literal="SHA-256"),),
        ),
        SetupStep(
            title="Give users access",
            body=(
                "Give the app to the people who use {account_name}'s phone system: add it to a role "
                "they hold (Users > Roles > Applications) or to each user (Users > the user > "
                "Applications). OneLogin refuses users without access."
            ),
        ),
    )

    #: OneLogin's "SCIM Provisioner with SAML (SCIM v2 Core)" connector (its custom SAML connector
    #: has no provisioning).
    provisioning_steps = (
        SetupStep(
            "Use OneLogin's SCIM app",
            "OneLogin provisions only through its SCIM Provisioner with SAML (SCIM v2 Core) app. In "
            "Applications > Add App search for it and add it (it can also carry the SAML sign-in, with the "
            "same values as the SAML steps).",
        ),
        SetupStep(
            "Configuration",
            "On the app's Configuration tab fill in the fields below, set API Connection to Enabled and Save.",
            (
                SetupValue("SCIM Base URL", "scim_base_url"),
                SetupValue("SCIM Bearer Token", "", literal="the SCIM token created above (shown once)"),
                SetupValue("SCIM JSON Template: userName", "", literal="{$user.email}", typed=True),
            ),
        ),
        SetupStep(
            "Provisioning",
            "On the Provisioning tab tick Enable provisioning. For When users are deleted in OneLogin "
            "choose Delete; for When user accounts are suspended choose Suspend. Save. On the "
            "Parameters tab tick Include in User Provisioning for Groups to push group membership.",
        ),
    )
    hints: ClassVar[dict[str, str]] = {
        "SAML_WEAK_ALGORITHM": (
            "OneLogin signs with SHA-1 by default, and we refuse SHA-1. In the app's SSO tab set "
            "SAML Signature Algorithm to SHA-256 and click Save; no change is needed here."
        ),
        "SAML_AUDIENCE_MISMATCH": (
            "In the app's Configuration tab, set Audience (EntityID) to {sp_entity_id} exactly."
        ),
        "SAML_AUDIENCE_MISSING": (
            "OneLogin sent no audience. Set Audience (EntityID) to {sp_entity_id} in the app's Configuration tab."
        ),
        "SAML_RECIPIENT_MISMATCH": "In the app's Configuration tab, set Recipient to {acs_url}.",
        "SAML_DESTINATION_MISMATCH": (
            "In the app's Configuration tab, set ACS (Consumer) URL to {acs_url} and ACS (Consumer) "
            "URL Validator to {acs_url_regex}."
        ),
        "SAML_UNSIGNED": (
            "OneLogin's answer carried no signature this connection accepts. In the app's "
            "Configuration tab, set SAML signature element to Assertion, Response or Both."
        ),
        "SAML_SIGNATURE_INVALID": (
            "The app now signs with another certificate (changed on its SSO tab or in Security > "
            "Certificates). Import the Issuer URL again so we trust the new certificate."
        ),
        "SAML_ISSUER_MISMATCH": (
            "The response came from another OneLogin app. Import this app's Issuer URL (SSO tab) again."
        ),
        "SAML_NO_EMAIL": (
            "In the app's Parameters, add email with the user's Email as value and check \"Include "
            'in SAML assertion"; or set SAML nameID format to Email in the Configuration tab.'
        ),
        "SAML_STATUS_ERROR": (
            "OneLogin refused the sign-in: check that the user has the app (through a role or "
            "directly) and that ACS (Consumer) URL Validator is {acs_url_regex}."
        ),
        "SAML_UNSOLICITED": (
            "The user started from the OneLogin portal, which sends an answer we did not ask for. "
            "Set SAML initiator to Service Provider and Login URL to {start_url}."
        ),
        "USER_NOT_FOUND": (
            "OneLogin sent an address no user of {account_name} has. Check the user's Email in "
            "OneLogin, or add the user here with that address."
        ),
    }
