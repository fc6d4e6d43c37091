"""Salesforce as the IdP: a SAML connected app, or a SAML external client app deployed as metadata.

Since Spring '26 customers can create new connected apps only after Salesforce Support enables it;
existing connected apps keep working. The replacement is an external client app whose SAML
settings are deployed through the Metadata API (ExternalClientApplication +
ExtlClntAppConfigurablePolicies + ExtlClntAppSamlConfigurablePolicies). The walkthrough covers
both. Checked against Salesforce Help and the Metadata API Developer Guide; see docs/idp-facts.md.
"""

from typing import ClassVar

from app.idp_plugins.base import (
    NAMEID_UNSPECIFIED,
    IdpPlugin,
    OptionHelp,
    SetupFile,
    SetupPath,
    SetupStep,
    SetupValue,
)

#: The external client app's API name used in the metadata files below.
_ECA_NAME = "PhoneSystemSSO"
#: Where the Salesforce CLI project keeps the metadata components.
_SOURCE_DIR = "force-app/main/default/"

#: The three metadata components of the external client app, our values filled in on the page.
_ECA_FILES = (
    SetupFile(
        path=_SOURCE_DIR + "externalClientApps/" + _ECA_NAME + ".eca-meta.xml",
        content=(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ExternalClientApplication xmlns="http://soap.sforce.com/2006/04/metadata">\n'
            "    <contactEmail>{admin_email}</contactEmail>\n"
            "    <distributionState>Local</distributionState>\n"
            "    <label>Phone system SSO</label>\n"
            "</ExternalClientApplication>\n"
        ),
    ),
    SetupFile(
        path=_SOURCE_DIR + "extlClntAppPolicies/" + _ECA_NAME + ".ecaPlcy-meta.xml",
        content=(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ExtlClntAppConfigurablePolicies xmlns="http://soap.sforce.com/2006/04/metadata">\n'
            "    <externalClientApplication>" + _ECA_NAME + "</externalClientApplication>\n"
            "    <isEnabled>true</isEnabled>\n"
            "    <isSamlPluginEnabled>true</isSamlPluginEnabled>\n"
            "    <label>" + _ECA_NAME + " policies</label>\n"
            "    <startPage>Custom</startPage>\n"
            "    <startUrl>{start_url}</startUrl>\n"
            "</ExtlClntAppConfigurablePolicies>\n"
        ),
    ),
    SetupFile(
        path=_SOURCE_DIR + "extlClntAppSamlConfigurablePolicies/" + _ECA_NAME + ".ecaSamlPlcy-meta.xml",
        content=(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ExtlClntAppSamlConfigurablePolicies xmlns="http://soap.sforce.com/2006/04/metadata">\n'
            "    <acsUrl>{acs_url}</acsUrl>\n"
            "    <customAttributes>\n"
            "        <formula>$User.Email</formula>\n"
            "        <key>email</key>\n"
            "    </customAttributes>\n"
            "    <entityUrl>{sp_entity_id}</entityUrl>\n"
            "    <externalClientApplication>" + _ECA_NAME + "</externalClientApplication>\n"
            "    <label>" + _ECA_NAME + " SAML</label>\n"
            "    <nameIdFormat>Unspecified</nameIdFormat>\n"
            "    <signingAlgorithmType>SHA256</signingAlgorithmType>\n"
            "    <subjectType>PersistentId</subjectType>\n"
            "</ExtlClntAppSamlConfigurablePolicies>\n"
        ),
    ),
)

#: The two ways to register us; the walkthrough shows one at a time.
CONNECTED_APP = "connected-app"
EXTERNAL_CLIENT_APP = "external-client-app"


class SalesforcePlugin(IdpPlugin):
    """Salesforce: the default subject is the username, so the email travels in an attribute."""

    key = "salesforce"
    display_name = "Salesforce"
    #: Salesforce's Name ID Format defaults to Unspecified.
    nameid_format = NAMEID_UNSPECIFIED
    #: The steps add the custom attribute ``email`` = ``$User.Email``. They also set the subject to
    #: a Persistent ID, so a Salesforce username (which looks like an email but often is not the
    #: user's mailbox) can never be mistaken for the email through the NameID fallback.
    email_attributes = ("email", "Email", "User.Email")
    #: The Metadata API Developer Guide (ExtlClntAppSamlConfigurablePolicies.signingAlgorithmType)
    #: says Salesforce puts its signature "in the SAML response—in both the response body and in
    #: the SAML assertion", so both are signed.
    #: Accepted whichever of the two it signs (a connection can require one: hardening).
    signed_element = "any"
    #: IdP-initiated from the App Launcher (my-domain/idp/login?app=<app id>); front-channel Single Logout.
    supports_idp_initiated = True
    supports_slo = True
    single_logout_help = OptionHelp(
        offered=True,
        body=(
            "In Setup, App Manager, edit the connected app. Under Web App Settings check "
            "'Enable Single Logout', paste our address into 'Single Logout URL' and set "
            "'Single Logout Binding' to HTTP Redirect."
        ),
        values=(SetupValue("Single Logout URL", "sls_url"), SetupValue("Single Logout Binding", "", "HTTP Redirect")),
    )
    encryption_help = OptionHelp(
        offered=True,
        body=(
            "In the connected app's SAML settings, check 'Encrypt SAML Response', upload our encryption "
            "certificate as 'Encryption Certificate' and set 'Encryption Method' to AES-256 (never Triple DES)."
        ),
        values=(SetupValue("Encryption Certificate", "sp_encryption_certificate"),),
    )
    signed_requests_help = OptionHelp(
        offered=True,
        body=(
            "In the connected app's SAML settings, check 'Verify Request Signatures' and upload our "
            "signing certificate as its Certificate."
        ),
        values=(SetupValue("Certificate", "sp_certificate"),),
    )
    metadata_source = "url"
    #: The org's identity provider metadata (Setup > Identity Provider > Download Metadata).
    metadata_url_pattern = "https://{my_domain}.my.salesforce.com/.well-known/samlidp.xml"
    #: Self-signed certificates with a 2048- or 3072-bit key expire after one year (4096: two).
    certificate_lifetime_years = 1
    setup_paths = (
        SetupPath(
            key=CONNECTED_APP,
            label="A connected app",
            description=(
                "You already have a connected app for us, or Salesforce Support enabled the creation of new "
                "connected apps in your org. Everything happens in Setup."
            ),
        ),
        SetupPath(
            key=EXTERNAL_CLIENT_APP,
            label="An external client app, deployed with the Salesforce CLI",
            description=(
                "Salesforce's replacement for new connected apps: three metadata files (our values already "
                "filled in) deployed with the sf command. Developer, Performance and Unlimited editions."
            ),
        ),
    )
    setup_steps = (
        SetupStep(
            title="Enable Salesforce as an identity provider",
            body=(
                "In Setup, type Identity Provider in Quick Find and open it. If it is not enabled yet, "
                "click Enable Identity Provider, choose a certificate and Save. Salesforce creates a "
                "self-signed certificate when needed; it expires after one year, and we warn you "
                "before it does."
            ),
        ),
        SetupStep(
            title="Choose how to register us",
            body=(
                "Since Spring '26 Salesforce no longer lets you create a new connected app unless "
                "Salesforce Support enables it for your org; existing connected apps keep working. "
                "The replacement is an external client app, whose SAML settings are deployed as "
                "metadata with the Salesforce CLI. Choose the way that fits your org; the steps for "
                "it follow."
            ),
            offers_paths=True,
        ),
        SetupStep(
            title="Configure the connected app",
            body=(
                "In Setup > App Manager, edit your existing connected app for us (or click New "
                "Connected App if Support enabled creation; give it a name and contact email). In "
                "Web App Settings, select Enable SAML and enter these values. Subject Type Persistent "
                "ID keeps the Salesforce username out of the NameID: the username looks like an "
                "email address but often is not the user's mailbox, so the next step sends the real "
                "email. Leave Verify Request Signatures unchecked (our sign-in requests are not "
                "signed) and Encrypt SAML Response unchecked. Save."
            ),
            values=(
                SetupValue("Start URL", "start_url"),
                SetupValue("Entity Id", "sp_entity_id"),
                SetupValue("ACS URL", "acs_url"),
                SetupValue("Subject Type", "subject_type", literal="Persistent ID"),
                SetupValue(
                    "Name ID Format",
                    "nameid_format",
                    literal="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
                ),
                SetupValue("IdP Certificate", "idp_certificate", literal="The certificate chosen in step 1"),
                SetupValue("Signing Algorithm for SAML Messages", "signing_algorithm", literal="SHA256"),
            ),
            path=CONNECTED_APP,
        ),
        SetupStep(
            title="Send the user's email",
            body=(
                "Open the connected app's Manage page (App Manager > the app > Manage). Under Custom "
                "Attributes click New and add the attribute below, so every response carries the "
                "user's real email. Then, under Profiles or Permission Sets, add those of the people "
                "who use {account_name}'s phone system."
            ),
            values=(
                SetupValue("Attribute key", "attribute_key", literal="email", typed=True),
                SetupValue("Attribute value", "attribute_value", literal="$User.Email", typed=True),
            ),
            path=CONNECTED_APP,
        ),
        SetupStep(
            title="Write the external client app metadata",
            body=(
                'You need the Salesforce CLI (sf), the user permissions "Create, edit, and delete '
                'External Client Apps" and "View all External Client Apps, view their settings, and '
                'edit their policies", and API version 63.0 or later. Create a project with the '
                "command below and set sourceApiVersion in phone-sso/sfdx-project.json to 63.0 or "
                "later. Then save the three files below in phone-sso, each at the path shown (our "
                "values are already filled in, and your email address as the contact). The custom attribute "
                "email = $User.Email sends the user's real email; subjectType PersistentId keeps the "
                "Salesforce username out of the NameID. If your org's external client app pages offer "
                "Enable SAML, you may enter the values below there instead of deploying files."
            ),
            values=(
                SetupValue("Create the project", "", literal="sf project generate --name phone-sso", typed=True),
                SetupValue("entityUrl", "sp_entity_id"),
                SetupValue("acsUrl", "acs_url"),
                SetupValue("startUrl", "start_url"),
                SetupValue("subjectType", "subject_type", literal="PersistentId", typed=True),
                SetupValue("nameIdFormat", "nameid_format", literal="Unspecified", typed=True),
                SetupValue("signingAlgorithmType", "signing_algorithm", literal="SHA256", typed=True),
                SetupValue("customAttributes key", "attribute_key", literal="email", typed=True),
                SetupValue("customAttributes formula", "attribute_formula", literal="$User.Email", typed=True),
            ),
            files=_ECA_FILES,
            path=EXTERNAL_CLIENT_APP,
        ),
        SetupStep(
            title="Deploy the external client app",
            body=(
                "From the phone-sso folder, sign in to your org and deploy with the two commands "
                "below. Do not add a certificate element: with one, Salesforce requires every "
                "sign-in request to be signed, and ours are not. Then in Setup > External Client App "
                "Manager, open the app and, under Policies, choose the profiles or permission sets of "
                "the people who use {account_name}'s phone system."
            ),
            values=(
                SetupValue("Sign in to your org", "", literal="sf org login web --alias phone-sso-org", typed=True),
                SetupValue(
                    "Deploy",
                    "",
                    literal="sf project deploy start --source-dir force-app --target-org phone-sso-org",
                    typed=True,
                ),
            ),
            path=EXTERNAL_CLIENT_APP,
        ),
        SetupStep(
            title="Give users access and copy the metadata URL",
            body=(
                "Only users with one of the chosen profiles or permission sets can sign in. Back in "
                "Setup > Identity Provider, copy the metadata URL (your My Domain followed by "
                "/.well-known/samlidp.xml), or click Download Metadata, and give it to us on the next "
                "page."
            ),
        ),
    )

    #: Salesforce as an identity provider has no SCIM client for custom SAML apps.
    provisioning_unavailable = (
        "Salesforce, as an identity provider, does not provision users into a custom SAML app over SCIM. "
        "Keep {account_name}'s users in step with a CSV import instead (Users > Import)."
    )
    hints: ClassVar[dict[str, str]] = {
        "USER_NOT_FOUND": (
            "Salesforce sent an identifier that matches no user of {account_name}. If it looks like "
            "a Salesforce username (for example with a sandbox suffix), the email attribute is "
            "missing: add the custom attribute email = $User.Email (connected app: Manage > Custom "
            "Attributes; external client app: customAttributes in the .ecaSamlPlcy file, then "
            "deploy again). The username is not always the user's email; we match on the email."
        ),
        "SAML_NO_EMAIL": (
            "Salesforce did not send the user's email. Add the custom attribute email = $User.Email "
            "(connected app: Manage > Custom Attributes; external client app: customAttributes in "
            "the .ecaSamlPlcy file, then deploy again), and check the user's Email in Salesforce."
        ),
        "SAML_AUDIENCE_MISMATCH": (
            "Set the connected app's Entity Id (external client app: entityUrl) to {sp_entity_id} exactly."
        ),
        "SAML_AUDIENCE_MISSING": (
            "Salesforce sent no audience. Set Entity Id (external client app: entityUrl) to {sp_entity_id}."
        ),
        "SAML_DESTINATION_MISMATCH": (
            "Set the connected app's ACS URL (external client app: acsUrl) to {acs_url} exactly."
        ),
        "SAML_RECIPIENT_MISMATCH": (
            "Set the connected app's ACS URL (external client app: acsUrl) to {acs_url} exactly."
        ),
        "SAML_WEAK_ALGORITHM": (
            "Set Signing Algorithm for SAML Messages to SHA256 in the connected app (external client "
            "app: signingAlgorithmType SHA256, then deploy again)."
        ),
        "SAML_UNSIGNED": (
            "Salesforce's answer carried no signature this connection accepts: the response or the "
            "assertion must be signed (or the one this connection was set to require)."
        ),
        "SAML_SIGNATURE_INVALID": (
            "The identity provider certificate changed (self-signed certificates expire after a "
            "year). Give us the metadata URL again, or download the metadata from Setup > Identity "
            "Provider and upload it."
        ),
        "SAML_ISSUER_MISMATCH": (
            "The issuer is your My Domain URL unless an Issuer was set on the app. If you renamed My "
            "Domain or changed the Issuer, import the identity provider metadata again."
        ),
        "SAML_STATUS_ERROR": (
            "Salesforce refused the sign-in. Check that the user has one of the app's profiles or "
            "permission sets, and that Verify Request Signatures is unchecked (external client app: "
            "no certificate element), because our requests are not signed."
        ),
        "SAML_UNSOLICITED": (
            "The user started from the Salesforce App Launcher, which sends an answer we did not ask "
            "for. Set the app's Start URL (external client app: startUrl) to {start_url}."
        ),
    }
