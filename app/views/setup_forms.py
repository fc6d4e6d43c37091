"""Forms of the IdP setup wizard. Each subclasses ``app.views.forms.Form`` (CSRF-protected).

The import forms only bound sizes: what the metadata, URL or certificate *means* is checked by the
connection services, which answer with a stable error code and a message the admin can act on.
"""

from __future__ import annotations

from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, Optional

from app.idp_plugins import PLUGINS
from app.views.forms import Form


class NewConnectionForm(Form):
    """Step 1: which identity provider the account uses."""

    provider = RadioField(
        "Identity provider",
        choices=[SelectChoice(plugin.key, plugin.display_name) for plugin in PLUGINS],
        validators=[InputRequired(message="Choose your identity provider.")],
    )
    name = StringField("Name (optional)", validators=[Optional(), Length(max=200)])
    submit = SubmitField("Create the connection")


class MetadataFileForm(Form):
    """Import by uploading the IdP's metadata XML file."""

    metadata_file = FileField("Metadata file (XML)")
    submit = SubmitField("Read the file")


class MetadataPasteForm(Form):
    """Import by pasting the metadata XML."""

    metadata_xml = TextAreaField("Metadata XML")
    submit = SubmitField("Read the XML")


class MetadataUrlForm(Form):
    """Import from the IdP's metadata URL, which the server fetches."""

    metadata_url = StringField("Metadata URL", validators=[Length(max=2048)])
    submit = SubmitField("Fetch and read")


class ManualIdpForm(Form):
    """The IdP side typed in by hand, for IdPs without metadata."""

    entity_id = StringField("IdP entity ID (Issuer)", validators=[Length(max=1024)])
    sso_url = StringField("IdP SSO URL (HTTP-Redirect or HTTP-POST)", validators=[Length(max=2048)])
    slo_url = StringField("IdP logout URL (optional)", validators=[Length(max=2048)])
    certificate = TextAreaField("IdP signing certificate (PEM or base64)", validators=[Length(max=20000)])
    submit = SubmitField("Check these values")


class ConfirmImportForm(Form):
    """Apply what the review page showed (carried in a signed token)."""

    review_token = HiddenField(validators=[DataRequired()])
    submit = SubmitField("Save these IdP details")


class ConnectionSettingsForm(Form):
    """The settings an admin may change on a connection; empty means the provider's default."""

    name = StringField("Name", validators=[Optional(), Length(max=200)])
    email_attributes = TextAreaField(
        "Attributes that carry the email, one per line", validators=[Optional(), Length(max=2000)]
    )
    signed_element = SelectField("What the IdP must sign", validate_choice=True)
    nameid_format = SelectField("NameID format we ask for", validate_choice=True)
    allow_idp_initiated = BooleanField("Accept sign-ins started from the IdP's app launcher (IdP-initiated)")
    submit = SubmitField("Save settings")


class SecurityOptionsForm(Form):
    """Single Logout, assertion encryption and request signing: each off until turned on."""

    single_logout = BooleanField("Single Logout: signing out here signs out at the IdP, and the reverse")
    encrypt_assertions = SelectField(
        "Encrypted assertions",
        choices=[
            SelectChoice("off", "Off: plain assertions only"),
            SelectChoice("accept", "Accept encrypted and plain assertions (while the IdP switches)"),
            SelectChoice("require", "Require encrypted assertions"),
        ],
        validate_choice=True,
    )
    sign_requests = BooleanField("Sign our sign-in requests (AuthnRequests, RSA-SHA256)")
    submit = SubmitField("Save security options")


class ConfirmActionForm(Form):
    """A button that needs a ticked confirmation, for actions that stop sign-ins."""

    confirm = BooleanField("I understand", validators=[DataRequired(message="Tick the box to confirm.")])
    submit = SubmitField("Confirm")


class SetupPathForm(Form):
    """One of the walkthrough's setup paths, chosen with its button (one small form per path)."""

    path = HiddenField(validators=[DataRequired(), Length(max=40)])
    submit = SubmitField("Choose")


class SsoRequiredForm(Form):
    """Switch the account's "SSO required" on or off."""

    required = HiddenField(validators=[AnyOf(("on", "off"))])
    submit = SubmitField("Save")
