"""The demo IdP's pages. Registered only when ``DEMO_IDP`` is on (development settings)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response as WerkzeugResponse
from wtforms import EmailField, HiddenField, SubmitField
from wtforms.validators import Optional

from app.demo_idp.idp import (
    AssertionSpec,
    LogoutSpec,
    build_logout_request,
    build_logout_response,
    decode_authn_request,
    encode,
    new_id,
    redirect_query,
    signed_response,
    verify_redirect_signature,
)
from app.demo_idp.setup import DEMO_PEOPLE, demo_idp_entity_id, demo_idp_key_pair
from app.extensions import db
from app.models import IdpConnection
from app.saml import resolve_options, sp_values
from app.views.forms import Form

bp = Blueprint("demo_idp", __name__, url_prefix="/demo-idp")


class DemoSignInForm(Form):
    """The demo IdP's "sign in as" button."""

    email = HiddenField()
    #: Any address, to try the flow with users of one's own account in development.
    other_email = EmailField("Or any email address", validators=[Optional()])
    request_id = HiddenField()
    connection_id = HiddenField()
    relay_state = HiddenField()
    submit = SubmitField("Sign in")


def _connection_for_sp(entity_id: str) -> IdpConnection | None:
    """The connection whose SP entity ID sent this request, if it trusts the demo IdP."""
    for connection in db.session.scalars(
        select(IdpConnection).where(IdpConnection.idp_entity_id == demo_idp_entity_id())
    ):
        if sp_values(connection).sp_entity_id == entity_id:
            return connection
    return None


@bp.get("/sso")
def sso() -> str:
    """Receive an AuthnRequest (HTTP-Redirect) and show who to sign in as."""
    try:
        authn_request = decode_authn_request(request.args["SAMLRequest"])
    except Exception:  # noqa: BLE001 - the demo IdP answers any junk with a 400
        abort(400, "The demo IdP could not read this SAMLRequest.")
    issuer = authn_request.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer") or ""
    connection = _connection_for_sp(issuer.strip())
    if connection is None:
        abort(400, f"The demo IdP does not know the service provider {issuer!r}.")
    forms = [
        (
            person,
            DemoSignInForm(
                formdata=None,
                data={
                    "email": person.email,
                    "request_id": authn_request.get("ID"),
                    "connection_id": connection.id,
                    "relay_state": request.args.get("RelayState", ""),
                },
            ),
        )
        for person in DEMO_PEOPLE
    ]
    other = DemoSignInForm(
        formdata=None,
        data={
            "request_id": authn_request.get("ID"),
            "connection_id": connection.id,
            "relay_state": request.args.get("RelayState", ""),
        },
    )
    return render_template("demo_idp/sso.html", forms=forms, other=other)


@bp.get("/metadata")
def metadata() -> Response:
    """The demo IdP's metadata, to import in the setup wizard like a real IdP's."""
    _key, cert_pem = demo_idp_key_pair()
    body = "".join(line for line in cert_pem.strip().splitlines() if "-----" not in line)
    xml = render_template(
        "demo_idp/metadata.xml",
        entity_id=demo_idp_entity_id(),
        sso_url=url_for("demo_idp.sso", _external=False),
        slo_url=url_for("demo_idp.slo", _external=False),
        base_url=current_app.config["BASE_URL"],
        certificate=body,
    )
    return Response(xml, mimetype="application/samlmetadata+xml")


@bp.post("/sso")
def sign_in() -> str:
    """Sign a response for the chosen person and post it to the SP's ACS."""
    form = DemoSignInForm()
    if not form.validate():
        abort(400, "The demo sign-in form was incomplete.")
    connection = db.session.get(IdpConnection, int(form.connection_id.data or 0))
    email = (form.other_email.data or form.email.data or "").strip()
    person = next((p for p in DEMO_PEOPLE if p.email == email), None)
    if connection is None or not email:
        abort(400, "Unknown demo user or service provider.")
    name = person.name if person else email.split("@")[0]
    values = sp_values(connection)
    key_pem, cert_pem = demo_idp_key_pair()
    spec = AssertionSpec(
        issuer=demo_idp_entity_id(),
        acs_url=values.acs_url,
        audience=values.sp_entity_id,
        name_id=email,
        in_response_to=form.request_id.data or None,
        attributes={"email": [email], "name": [name]},
    )
    spec.session_index = new_id()
    # The demo IdP's own session (in Flask's signed cookie): who is signed in here, at which SP.
    session["demo_idp"] = {"email": email, "connection_id": connection.id, "session_index": spec.session_index}
    response = signed_response(spec, key_pem, cert_pem, sign_assertion=True, sign_response=True)
    return render_template(
        "demo_idp/post.html",
        acs_url=values.acs_url,
        saml_response=encode(response),
        relay_state=form.relay_state.data,
    )


# --- Single Logout: the demo IdP sends LogoutRequests and answers the SP's ----------------------


class DemoLogoutForm(Form):
    """The demo IdP's "sign out" button."""

    submit = SubmitField("Sign out of the demo IdP")


@bp.get("/")
def home() -> str:
    """Who is signed in at the demo IdP, with its sign-out button."""
    return render_template("demo_idp/home.html", signed_in=session.get("demo_idp"), form=DemoLogoutForm())


@bp.post("/logout")
def logout() -> WerkzeugResponse | str:
    """End the demo IdP session; with Single Logout on at the SP, send it a signed LogoutRequest."""
    if not DemoLogoutForm().validate():
        abort(400, "The demo sign-out form was incomplete.")
    signed_in = session.pop("demo_idp", None)
    connection = db.session.get(IdpConnection, int(signed_in["connection_id"])) if signed_in else None
    if connection is None or not resolve_options(connection).single_logout:
        return render_template("demo_idp/home.html", signed_in=None, form=DemoLogoutForm(), notice="signed_out_here")
    values = sp_values(connection)
    spec = LogoutSpec(
        issuer=demo_idp_entity_id(),
        destination=values.sls_url,
        name_id=signed_in["email"],
        session_indexes=(signed_in["session_index"],),
    )
    key_pem, _cert = demo_idp_key_pair()
    return redirect(f"{values.sls_url}?{redirect_query('SAMLRequest', build_logout_request(spec), key_pem)}")


@bp.get("/slo")
def slo() -> WerkzeugResponse | str:
    """The demo IdP's Single Logout endpoint (HTTP-Redirect): the SP's LogoutRequest, or its
    LogoutResponse to ours."""
    query = request.query_string.decode("latin-1")  # the signed octets, as sent
    kind = "SAMLRequest" if "SAMLRequest" in request.args else "SAMLResponse"
    try:
        message = decode_authn_request(request.args[kind])
    except Exception:  # noqa: BLE001 - the demo IdP answers any junk with a 400
        abort(400, "The demo IdP could not read this logout message.")
    issuer = message.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer") or ""
    connection = _connection_for_sp(issuer.strip())
    if connection is None or not verify_redirect_signature(query, kind, connection.sp_certificate):
        abort(400, "The demo IdP does not know this service provider, or its signature is wrong.")
    if kind == "SAMLResponse":
        status = message.find(
            "{urn:oasis:names:tc:SAML:2.0:protocol}Status/{urn:oasis:names:tc:SAML:2.0:protocol}StatusCode"
        )
        confirmed = status is not None and status.get("Value", "").endswith(":Success")
        notice = "signed_out_everywhere" if confirmed else "sp_did_not_confirm"
        return render_template("demo_idp/home.html", signed_in=None, form=DemoLogoutForm(), notice=notice)
    session.pop("demo_idp", None)
    values = sp_values(connection)
    spec = LogoutSpec(issuer=demo_idp_entity_id(), destination=values.sls_url, in_response_to=message.get("ID"))
    key_pem, _cert = demo_idp_key_pair()
    answer = redirect_query("SAMLResponse", build_logout_response(spec), key_pem, request.args.get("RelayState"))
    return redirect(f"{values.sls_url}?{answer}")
