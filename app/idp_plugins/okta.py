"""Okta as the IdP: a SAML 2.0 app integration created with the App Integration Wizard.

Checked against Okta Help ("Application Integration Wizard SAML field reference"); see
docs/idp-facts.md.
"""

from typing import ClassVar

from app.idp_plugins.base import NAMEID_UNSPECIFIED, IdpPlugin, OptionHelp, SetupStep, SetupValue


class OktaPlugin(IdpPlugin):
    """Okta: signs both the response and the assertion, metadata at a per-app URL."""

    key = "okta"
    display_name = "Okta"
    #: Okta's wizard defaults Name ID format to Unspecified and tells admins to keep it unless the
    #: app says otherwise; with Application username = Email the NameID is still the email.
    nameid_format = NAMEID_UNSPECIFIED
    #: The steps add the Attribute Statement ``email`` = ``user.email``.
    email_attributes = ("email", "Email", "mail")
    #: Response and Assertion Signature both default to Signed (RSA-SHA256).
    #: Accepted whichever of the two it signs (a connection can require one: hardening).
    signed_element = "any"
    #: From the dashboard tile (IdP-initiated); SLO exists but only SP-initiated with signed requests.
    supports_idp_initiated = True
    supports_slo = True
    single_logout_help = OptionHelp(
        offered=True,
        body=(
            "In the app's General tab, edit SAML Settings and click Show Advanced Settings. Check "
            "'Enable Single Logout', paste the values below, and upload our signing certificate as "
            "'Signature Certificate' (Okta signs nothing it cannot check). Okta then sends LogoutRequests "
            "to us and answers ours."
        ),
        values=(
            SetupValue("Single Logout URL", "sls_url"),
            SetupValue("SP Issuer", "sp_entity_id"),
            SetupValue("Signature Certificate", "sp_certificate"),
        ),
    )
    encryption_help = OptionHelp(
        offered=True,
        body=(
            "Under Show Advanced Settings, set 'Assertion Encryption' to Encrypted, 'Encryption Algorithm' "
            "to AES256-GCM (or AES256-CBC), 'Key Transport Algorithm' to RSA-OAEP (never RSA1_5, which we "
            "refuse), and upload our encryption certificate as 'Encryption Certificate'."
        ),
        values=(SetupValue("Encryption Certificate", "sp_encryption_certificate"),),
    )
    signed_requests_help = OptionHelp(
        offered=True,
        body=(
            "Under Show Advanced Settings, check 'Signed Requests'. Okta checks the signature with the "
            "certificate uploaded as 'Signature Certificate'."
        ),
        values=(SetupValue("Signature Certificate", "sp_certificate"),),
    )
    metadata_source = "url"
    #: The "Metadata URL" on the app's Sign On tab.
    metadata_url_pattern = "https://{okta_domain}/app/{app_id}/sso/saml/metadata"
    #: Okta's app signing certificates last ten years and are not rotated automatically
    #: (from IDP_NOTES; not re-checked in Okta's docs).
    certificate_lifetime_years = 10
    setup_steps = (
        SetupStep(
            title="Create a SAML 2.0 app integration",
            body=(
                "In the Okta Admin Console, go to Applications > Applications and click Create App "
                "Integration. Select SAML 2.0 and click Next."
            ),
        ),
        SetupStep(
            title="General Settings",
            body=(
                'Enter an App name your users will recognise, for example "{account_name} phone '
                'system", optionally upload a logo, and click Next.'
            ),
        ),
        SetupStep(
            title="Configure SAML: SAML Settings",
            body=(
                'Copy these values into the General section. Keep "Use this for Recipient URL and '
                'Destination URL" selected (the default). Okta refuses a Single sign-on URL that '
                "contains an underscore. Under Show Advanced Settings, keep Response and Assertion "
                "Signature set to Signed with RSA-SHA256: we check both signatures."
            ),
            values=(
                SetupValue("Single sign-on URL", "acs_url"),
                SetupValue("Use this for Recipient URL and Destination URL", "recipient_checkbox", literal="Selected"),
                SetupValue("Audience URI (SP Entity ID)", "sp_entity_id"),
                SetupValue("Default RelayState", "relay_state", literal="(leave blank)"),
                SetupValue("Name ID format", "nameid_format", literal="Unspecified"),
                SetupValue("Application username", "app_username", literal="Email"),
                SetupValue("Response", "response_signed", literal="Signed"),
                SetupValue("Assertion Signature", "assertion_signed", literal="Signed"),
                SetupValue("Signature Algorithm", "signature_algorithm", literal="RSA-SHA256"),
            ),
        ),
        SetupStep(
            title="Configure SAML: Attribute Statements",
            body=(
                "Under Attribute Statements, add one statement so we receive the user's email even "
                "if the Okta username is not an email address. Click Next."
            ),
            values=(
                SetupValue("Name", "attribute_name", literal="email", typed=True),
                SetupValue("Name format", "attribute_name_format", literal="Unspecified"),
                SetupValue("Value", "attribute_value", literal="user.email", typed=True),
            ),
        ),
        SetupStep(
            title="Feedback",
            body='Select "I\'m an Okta customer adding an internal app" and click Finish.',
        ),
        SetupStep(
            title="Copy the Metadata URL",
            body=(
                "On the app's Sign On tab, under SAML 2.0, copy the Metadata URL and paste it on the "
                "next page; we read Okta's sign-in URL, issuer and certificate from it."
            ),
        ),
        SetupStep(
            title="Assign people and groups",
            body=(
                "On the Assignments tab, click Assign and assign the people or groups who use "
                "{account_name}'s phone system. Okta refuses users who are not assigned."
            ),
        ),
    )

    #: Okta Help, "Add SCIM provisioning to app integrations" and "Provisioning tab" field names.
    provisioning_steps = (
        SetupStep(
            "Turn on SCIM provisioning",
            "In the Okta Admin Console open Applications > Applications > your portal app. On the General "
            "tab, under App Settings, click Edit, set Provisioning to SCIM and click Save. A Provisioning "
            "tab appears.",
        ),
        SetupStep(
            "Connect Okta to {account_name}'s portal",
            "On the Provisioning tab open Integration and click Edit. Fill in the fields below. Under "
            "Supported provisioning actions tick Import New Users and Profile Updates, Push New Users, "
            "Push Profile Updates and Push Groups. Click Test Connector Configuration, then Save.",
            (
                SetupValue("SCIM connector base URL", "scim_base_url"),
                SetupValue("Unique identifier field for users", "", literal="userName", typed=True),
                SetupValue("Authentication Mode", "", literal="HTTP Header"),
                SetupValue("Authorization (Bearer)", "", literal="the SCIM token created above (shown once)"),
            ),
        ),
        SetupStep(
            "Choose what Okta does to the portal",
            "On the Provisioning tab open To App and click Edit. Enable Create Users, Update User "
            "Attributes and Deactivate Users, then Save. A user Okta deactivates or unassigns is "
            "signed out of the portal and the apps at once.",
        ),
        SetupStep(
            "Assign people and push groups",
            "Assign people or groups on the Assignments tab. On the Push Groups tab push the groups whose "
            "names you map to a role on this page: their members get that role. The Username must be "
            "the person's email address.",
        ),
    )
    hints: ClassVar[dict[str, str]] = {
        "SAML_AUDIENCE_MISMATCH": (
            "In Okta, open the app's General tab, click Edit under SAML Settings and set Audience "
            "URI (SP Entity ID) to {sp_entity_id} exactly."
        ),
        "SAML_AUDIENCE_MISSING": (
            "Okta sent no audience. Set Audience URI (SP Entity ID) to {sp_entity_id} in the app's SAML Settings."
        ),
        "SAML_DESTINATION_MISMATCH": (
            "In the app's SAML Settings, set Single sign-on URL to {acs_url} and keep \"Use this for "
            'Recipient URL and Destination URL" selected.'
        ),
        "SAML_RECIPIENT_MISMATCH": (
            "In the app's SAML Settings, set Single sign-on URL to {acs_url} and keep \"Use this for "
            'Recipient URL and Destination URL" selected (or set Recipient URL to {acs_url}).'
        ),
        "SAML_UNSIGNED": (
            "Okta's answer carried no signature this connection accepts. In the app's SAML Settings, "
            "under Show Advanced Settings, set Response and Assertion Signature to Signed."
        ),
        "SAML_WEAK_ALGORITHM": (
            "In the app's SAML Settings, under Show Advanced Settings, set Signature Algorithm to "
            "RSA-SHA256 and Digest Algorithm to SHA256."
        ),
        "SAML_SIGNATURE_INVALID": (
            "The signing certificate changed (a new one was activated on the Sign On tab). Import the "
            "Metadata URL again so we trust the new certificate."
        ),
        "SAML_ISSUER_MISMATCH": (
            "The response came from another Okta app or org. Import this app's Metadata URL (Sign On tab) again."
        ),
        "SAML_NO_EMAIL": (
            "Add the Attribute Statement email = user.email in the app's SAML Settings, and set "
            "Application username to Email."
        ),
        "SAML_STATUS_ERROR": (
            "Okta refused the sign-in, most often because the user is not assigned to the app: "
            "assign them on the Assignments tab."
        ),
        "SAML_UNSOLICITED": (
            "The user started from the Okta dashboard tile, which sends an answer we did not ask for. "
            "Start from {start_url}, or ask support to accept dashboard sign-ins for this connection."
        ),
        "USER_NOT_FOUND": (
            "Okta sent an identifier no user of {account_name} has, often the Okta username instead "
            "of the email. Set Application username to Email and add the Attribute Statement email = "
            "user.email, or add the user here with the address Okta sends."
        ),
    }
