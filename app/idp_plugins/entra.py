"""Microsoft Entra ID (Azure AD) as the IdP: a non-gallery enterprise application with SAML.

Checked against Microsoft Learn ("Enable single sign-on for an enterprise application",
"Advanced certificate signing options in a SAML token", "Manage certificates for federated single
sign-on", "Customize SAML token claims", "Single sign-on SAML protocol"); see docs/idp-facts.md.
"""

from typing import ClassVar

from app.idp_plugins.base import NAMEID_EMAIL, IdpPlugin, OptionHelp, SetupStep, SetupValue

_EMAIL_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"


class EntraPlugin(IdpPlugin):
    """Microsoft Entra ID: signs the assertion with SHA-256, honours the requested NameID format."""

    key = "entra"
    display_name = "Microsoft Entra ID (Azure AD)"
    #: Entra honours the NameIDPolicy format of the request, so ask for emailAddress (a transient
    #: request would get a new random NameID at every sign-in).
    nameid_format = NAMEID_EMAIL
    #: Default claims: emailaddress = user.mail (empty for users without a mailbox), NameID =
    #: user.userprincipalname; the NameID is the fallback when the mail claim is missing.
    email_attributes = (_EMAIL_CLAIM, "email", "mail")
    #: Signing Option defaults to "Sign SAML assertion", Signing Algorithm to SHA-256.
    #: Accepted whichever of the two it signs (a connection can require one: hardening).
    signed_element = "any"
    #: From My Apps (IdP-initiated) and SP-initiated; Entra also offers SAML Single Logout.
    supports_idp_initiated = True
    supports_slo = True
    single_logout_help = OptionHelp(
        offered=True,
        body=(
            "In the enterprise application, open Single sign-on, edit Basic SAML Configuration and paste "
            "our address into 'Logout Url (Optional)'. Entra ID sends and answers logout messages in the "
            "HTTP-Redirect binding and needs no certificate for it."
        ),
        values=(SetupValue("Logout Url (Optional)", "sls_url"),),
    )
    encryption_help = OptionHelp(
        offered=True,
        body=(
            "In the enterprise application's menu open Token encryption, choose Import Certificate and "
            "upload our encryption certificate (save it as a .cer file), then use '...' on it and "
            "Activate token encryption certificate. Entra ID encrypts with AES-256 and RSA-OAEP; there "
            "is no algorithm to pick."
        ),
        values=(SetupValue("Token encryption certificate", "sp_encryption_certificate"),),
    )
    signed_requests_help = OptionHelp(
        offered=True,
        body=(
            "Under Single sign-on, SAML Certificates, edit 'Verification certificates (optional)': check "
            "'Require verification certificates' and upload our signing certificate. Entra ID then refuses "
            "unsigned requests."
        ),
        values=(SetupValue("Verification certificate", "sp_certificate"),),
    )
    metadata_source = "url"
    #: The "App Federation Metadata Url" shown under SAML Certificates.
    metadata_url_pattern = (
        "https://login.microsoftonline.com/{tenant_id}/federationmetadata/2007-06/federationmetadata.xml?appid={app_id}"
    )
    #: The generated signing certificate is valid for three years.
    certificate_lifetime_years = 3
    setup_steps = (
        SetupStep(
            title="Create an enterprise application",
            body=(
                "Sign in to the Microsoft Entra admin center as at least a Cloud Application "
                "Administrator. Browse to Entra ID > Enterprise apps > All applications, select New "
                "application, then Create your own application. Name it, for example "
                '"{account_name} phone system", choose "Integrate any other application you don\'t '
                'find in the gallery (Non-gallery)" and select Create.'
            ),
        ),
        SetupStep(
            title="Choose SAML single sign-on",
            body="In the application's left menu, under Manage, select Single sign-on, then SAML.",
        ),
        SetupStep(
            title="Fill in the Basic SAML Configuration",
            body=(
                "Select Edit in the Basic SAML Configuration section, enter these values and select "
                "Save. Use our URL as the Identifier, not the application ID: when the Identifier is "
                'a GUID, Entra sends the audience as "spn:" followed by that GUID. Leave Relay '
                "State and Logout Url empty."
            ),
            values=(
                SetupValue("Identifier (Entity ID)", "sp_entity_id"),
                SetupValue("Reply URL (Assertion Consumer Service URL)", "acs_url"),
                SetupValue("Sign on URL", "start_url"),
            ),
        ),
        SetupStep(
            title="Check Attributes & Claims",
            body=(
                "Keep the default claims. The emailaddress claim must come from user.mail: users "
                "whose Email (mail) field is empty in Entra cannot sign in until it is filled in. If "
                "your user principal names are not your email addresses, also edit Unique User "
                "Identifier (Name ID) and set its source attribute to user.mail."
            ),
            values=(
                SetupValue(_EMAIL_CLAIM, "email_claim", literal="user.mail", typed=True),
                SetupValue("Unique User Identifier (Name ID)", "nameid", literal="user.userprincipalname", typed=True),
            ),
        ),
        SetupStep(
            title="Copy the App Federation Metadata Url",
            body=(
                "In the SAML Certificates section, copy the App Federation Metadata Url and paste it "
                "on the next page; we read the sign-in URL, issuer and certificate from it. Keep the "
                "default signing settings below. Add a Notification Email that is read: Entra warns "
                "60, 30 and 7 days before the three-year certificate expires."
            ),
            values=(
                SetupValue("Signing Option", "signing_option", literal="Sign SAML assertion"),
                SetupValue("Signing Algorithm", "signing_algorithm", literal="SHA-256"),
            ),
        ),
        SetupStep(
            title="Assign users and groups",
            body=(
                "Under Manage, select Users and groups, then Add user/group, and assign the people "
                "(or groups) who use {account_name}'s phone system. Entra refuses users who are not "
                "assigned. Each of them must also exist here with the same email address."
            ),
        ),
    )

    #: Microsoft Learn, "Tutorial: Develop and plan provisioning for a SCIM endpoint" and
    #: "Integrate your SCIM endpoint with the Microsoft Entra provisioning service".
    provisioning_steps = (
        SetupStep(
            "Open Provisioning",
            "In the Microsoft Entra admin center open Identity > Applications > Enterprise applications > "
            "your portal app > Provisioning, and click Get started (or New configuration). Set "
            "Provisioning Mode to Automatic.",
        ),
        SetupStep(
            "Admin Credentials",
            "Fill in the two fields below, click Test Connection (it must say the credentials are "
            "authorized), then Save.",
            (
                SetupValue("Tenant URL", "scim_base_url"),
                SetupValue("Secret Token", "", literal="the SCIM token created above (shown once)"),
            ),
        ),
        SetupStep(
            "Attribute mappings",
            "Under Mappings open Provision Microsoft Entra ID Users. userName must carry the email "
            "address (userPrincipalName when it is the email, else mail); keep externalId = objectId and "
            'active = Switch([IsSoftDeleted], ...). To give roles from Entra, map roles[primary eq "True"].value '
            "to admin or agent; or push groups (Provision Microsoft Entra ID Groups: Yes) and map their "
            "names on this page.",
        ),
        SetupStep(
            "Start provisioning",
            "Under Settings choose Scope: Sync only assigned users and groups, set Provisioning Status to "
            "On and Save. Entra provisions every 40 minutes; Provision on demand applies one user now. "
            "A user Entra disables or removes is signed out of the portal and the apps at once.",
        ),
    )
    hints: ClassVar[dict[str, str]] = {
        "SAML_AUDIENCE_MISMATCH": (
            "Entra sent a different audience. In Basic SAML Configuration, set Identifier (Entity "
            "ID) to {sp_entity_id} and make it the default. If the audience we received starts with "
            '"spn:", the Identifier is the application ID (a GUID): Entra then sends "spn:" and '
            "the GUID. Replace it with {sp_entity_id}. (AADSTS700016 is the reverse: Entra did not "
            "find our Identifier on any application.)"
        ),
        "SAML_AUDIENCE_MISSING": (
            "Entra sent no audience. Set Identifier (Entity ID) to {sp_entity_id} in Basic SAML Configuration."
        ),
        "SAML_DESTINATION_MISMATCH": (
            "In Basic SAML Configuration, set Reply URL (Assertion Consumer Service URL) to "
            "{acs_url} and make it the default."
        ),
        "SAML_RECIPIENT_MISMATCH": (
            "In Basic SAML Configuration, set Reply URL (Assertion Consumer Service URL) to "
            "{acs_url} and make it the default."
        ),
        "SAML_WEAK_ALGORITHM": "In SAML Certificates, select Edit and set Signing Algorithm to SHA-256.",
        "SAML_UNSIGNED": (
            "In SAML Certificates, select Edit and set Signing Option to Sign SAML assertion (or "
            "Sign SAML response and assertion)."
        ),
        "SAML_SIGNATURE_INVALID": (
            "The signing certificate changed (a new certificate was made active in SAML "
            "Certificates). Import the App Federation Metadata Url again so we trust the new "
            "certificate."
        ),
        "SAML_ISSUER_MISMATCH": (
            "Entra's issuer is https://sts.windows.net/ followed by your tenant ID and a trailing "
            "slash. Import the App Federation Metadata Url of this application again."
        ),
        "SAML_NO_EMAIL": (
            "The user has no email in Entra. Fill in the user's Email (Properties > Contact "
            "information), and check in Attributes & Claims that the emailaddress claim comes "
            "from user.mail."
        ),
        "SAML_STATUS_ERROR": (
            "Entra refused the sign-in; the message carries an AADSTS code. AADSTS700016: no "
            "application has the Identifier {sp_entity_id}; set it in Basic SAML Configuration. "
            "AADSTS750054: the request did not arrive with the HTTP-Redirect binding, usually "
            "because someone opened Entra's sign-in URL directly; start from {start_url} instead. "
            "AADSTS75011: the way the user signed in does not match the authentication method the "
            "request asked for; sign out of Microsoft and try again, and tell support if it "
            "persists. AADSTS50105: the user is not assigned; add them under Users and groups."
        ),
        "SAML_NOT_YET_VALID": (
            "Entra dates assertions to the millisecond with no margin, so a small clock difference "
            "is enough to refuse one. Try again; if it keeps happening, tell support."
        ),
        "SAML_UNSOLICITED": (
            "The user started from My Apps, which sends an answer we did not ask for. Set Sign on "
            "URL to {start_url} in Basic SAML Configuration so the tile starts a normal sign-in."
        ),
        "USER_NOT_FOUND": (
            "Entra sent an address no user of {account_name} has. It sends the user's mail, or the "
            "user principal name when mail is empty; add the user here with that address or fill "
            "in their Email in Entra."
        ),
    }
