"""Google Workspace as the IdP: a custom SAML app in the Google Admin console.

Checked against Google's Admin Help ("Set up your own custom SAML app", "Maintain SAML
certificates", "SAML app error messages"); see docs/idp-facts.md.
"""

from typing import ClassVar

from app.idp_plugins.base import NAMEID_UNSPECIFIED, IdpPlugin, OptionHelp, SetupStep, SetupValue


class GooglePlugin(IdpPlugin):
    """Google Workspace: metadata is a downloaded file, the NameID is the primary email."""

    key = "google"
    display_name = "Google Workspace"
    #: Google's own default Name ID format is UNSPECIFIED; asking for "unspecified" accepts the
    #: EMAIL format the steps recommend as well as an untouched default.
    nameid_format = NAMEID_UNSPECIFIED
    #: Google sends no attribute unless the admin maps one (the steps map Primary email to
    #: ``email``); the NameID (Primary email by default) is the usual carrier.
    email_attributes = (
        "email",
        "Email",
        "mail",
        "emailAddress",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    )
    #: With "Signed response" left unchecked, Google signs the assertion only.
    #: Accepted whichever of the two it signs (a connection can require one: hardening).
    signed_element = "any"
    #: Users can start from the Google app launcher; the Start URL sends them through our login.
    supports_idp_initiated = True
    supports_slo = False
    single_logout_help = OptionHelp(
        offered=False,
        body=(
            "Google Workspace has no SAML Single Logout: signing out of Google does not sign anyone out "
            "of this product, and signing out here does not sign out of Google. Leave Single Logout off."
        ),
    )
    encryption_help = OptionHelp(
        offered=False,
        body="Google Workspace does not encrypt SAML assertions. Leave assertion encryption off.",
    )
    signed_requests_help = OptionHelp(
        offered=False,
        body="Google Workspace does not check AuthnRequest signatures. Request signing is harmless but useless here.",
    )
    #: Google publishes no metadata URL: the admin downloads GoogleIDPMetadata.xml.
    metadata_source = "file"
    metadata_url_pattern = None
    #: "X.509 certificates have a five-year lifetime" (Maintain SAML certificates).
    certificate_lifetime_years = 5
    setup_steps = (
        SetupStep(
            title="Add a custom SAML app",
            body=(
                "Sign in to the Google Admin console (admin.google.com) as a super administrator. "
                "Go to Menu > Apps > Web and mobile apps, click Add app, then Add custom SAML app. "
                'Enter an App name your users will recognise, for example "{account_name} phone '
                'system", and click Continue.'
            ),
        ),
        SetupStep(
            title="Download the Google Identity Provider details",
            body=(
                "On the Google Identity Provider details page, click DOWNLOAD METADATA and keep the "
                "GoogleIDPMetadata.xml file: you will upload it here at the end. Google has no "
                "metadata URL, so this file is how we learn its SSO URL, Entity ID and certificate. "
                "Click Continue."
            ),
        ),
        SetupStep(
            title="Enter the Service provider details",
            body=(
                "Copy these values into the Service provider details page. Leave Signed response "
                "unchecked: Google then signs the assertion, which is what we verify. Name ID "
                "format EMAIL with Name ID Basic Information > Primary email sends each user's "
                "primary address. Click Continue."
            ),
            values=(
                SetupValue("ACS URL", "acs_url"),
                SetupValue("Entity ID", "sp_entity_id"),
                SetupValue("Start URL", "start_url"),
                SetupValue("Signed response", "signed_response", literal="Unchecked"),
                SetupValue("Name ID format", "nameid_format", literal="EMAIL"),
                SetupValue("Name ID", "nameid", literal="Basic Information > Primary email"),
            ),
        ),
        SetupStep(
            title="Map the email attribute",
            body=(
                "On the Attribute mapping page, click ADD MAPPING, choose Primary email under Google "
                "Directory attributes and type email as the App attribute. Click Finish."
            ),
            values=(
                SetupValue("Google Directory attributes", "directory_attribute", literal="Primary email"),
                SetupValue("App attributes", "app_attribute", literal="email", typed=True),
            ),
        ),
        SetupStep(
            title="Turn on User access",
            body=(
                "A new custom SAML app is OFF for everyone. Open the app, click User access, choose "
                "ON for everyone (or turn it on for the organizational units or groups whose people "
                "use {account_name}'s phone system) and click Save. Changes usually apply within "
                "minutes but can take up to 24 hours; until then Google shows users "
                '"403 app_not_enabled_for_user".'
            ),
        ),
        SetupStep(
            title="Upload the Google metadata here",
            body=(
                "On the next page, upload the GoogleIDPMetadata.xml file you downloaded in step 2. "
                "Google's signing certificate lasts five years; when you rotate it (Security > "
                "Authentication > SSO with SAML applications), download the metadata again and "
                "upload it here before switching the app to the new certificate."
            ),
        ),
    )

    #: Google provisions only to apps from its own catalogue, never to a custom SAML app.
    provisioning_unavailable = (
        "Google Workspace cannot provision users into a custom SAML app: its automatic provisioning "
        "exists only for apps in Google's own catalogue. Keep {account_name}'s users in step with a CSV "
        "import instead (Users > Import), exported from the Admin console's user list."
    )
    hints: ClassVar[dict[str, str]] = {
        "SAML_AUDIENCE_MISMATCH": (
            "In the Google Admin console, open the app's Service provider details and set Entity ID "
            "to {sp_entity_id} exactly (it is case-sensitive). When the Entity ID matches no app, "
            'Google itself answers "403 app_not_configured_for_user" before reaching us.'
        ),
        "SAML_AUDIENCE_MISSING": (
            "Google sent no audience. Set Entity ID in the app's Service provider details to {sp_entity_id}."
        ),
        "SAML_DESTINATION_MISMATCH": ("In the app's Service provider details, set ACS URL to {acs_url} exactly."),
        "SAML_RECIPIENT_MISMATCH": ("In the app's Service provider details, set ACS URL to {acs_url} exactly."),
        "SAML_UNSIGNED": (
            "Google's answer carried no signature over the assertion that this connection accepts. "
            "Google signs the assertion, or the whole response when Signed response is checked; "
            "either is accepted unless this connection was set to require one of them."
        ),
        "SAML_SIGNATURE_INVALID": (
            "The signature does not match the certificate we have. If the app was switched to a new "
            "certificate, download the metadata again (app > DOWNLOAD METADATA) and upload it here."
        ),
        "SAML_ISSUER_MISMATCH": (
            "Google's Entity ID for this app is not the one we imported. Download the app's "
            "metadata again and upload it here."
        ),
        "SAML_NO_EMAIL": (
            "Set Name ID format to EMAIL and Name ID to Basic Information > Primary email in the "
            "app's Service provider details, or add an attribute mapping from Primary email to "
            "email."
        ),
        "SAML_STATUS_ERROR": (
            'Google refused the sign-in. "app_not_enabled_for_user": turn the app ON under User '
            "access for the user's organizational unit or group, then wait a few minutes (up to 24 "
            'hours). "app_not_configured_for_user": the app\'s Entity ID is not {sp_entity_id}.'
        ),
        "SAML_UNSOLICITED": (
            "The user started from the Google app launcher, which sends an answer we did not ask "
            "for. Set the app's Start URL to {start_url} so the tile starts a normal sign-in."
        ),
        "USER_NOT_FOUND": (
            "Google sent the user's primary email, and no user of {account_name} has it. Add the "
            "user here with their primary Google address (an alias is not sent), or correct the "
            "address. If the user cannot open the app at all, turn it ON under User access."
        ),
    }
