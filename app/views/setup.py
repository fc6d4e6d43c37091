"""The guided IdP setup wizard: choose the provider, follow its steps, import the IdP side, test,
enable; then edit, disable, delete, roll certificates over and read the diagnostics.

Open to the account's admins, and to staff (role ``support``) for every account, read only: every
state-changing request, and the pages that are only a form for a change, need the right to change
(``app.services.setup_wizard.may_change``); staff get 403 ``STAFF_READ_ONLY``, audited as
``access.refused``, and the pages they read show no change controls. Another account's objects
answer 404, so that their existence is not revealed. SAML work goes through
``app.saml.core`` and the connection services; this module only reads forms and renders pages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from app.extensions import db
from app.formatting import plural
from app.idp_plugins import PLUGINS, get_plugin
from app.idp_plugins.base import IdpPlugin
from app.idp_plugins.render import (
    find_path,
    render_hint,
    render_option_help,
    render_setup_file,
    render_walkthrough,
    steps_on_path,
)
from app.models import Account, IdpConnection
from app.models.idp_connection import ENABLED
from app.roles import apps_for_roles
from app.saml import MAX_METADATA_BYTES, MetadataError, overrides_of, resolve_options, sp_values, start_login
from app.services import confirmations
from app.services.accounts import set_sso_required, sso_ready_connection
from app.services.attempt_explanations import explain_attempt
from app.services.certificate_alerts import certificate_alerts
from app.services.connection_tests import TEST_ACTION, find_test_event, has_successful_test, recent_signin_attempts
from app.services.connections import (
    IMPORT_METHODS,
    NAMEID_FORMATS,
    SIGNED_ELEMENTS,
    ConnectionChangeError,
    certificate_rows,
    certificates_removable,
    choose_setup_path,
    connection_summaries,
    create_connection,
    delete_connection,
    disable_connection,
    enable_connection,
    import_idp_side,
    open_import_review,
    other_enabled_connections,
    preview_import,
    read_idp_side,
    record_import_failure,
    refresh_from_metadata_url,
    remove_certificate,
    seal_import_review,
    summarise,
    update_connection_options,
    update_connection_settings,
)
from app.services.onboarding import demo_idp_metadata_url
from app.services.setup_wizard import (
    ReadOnlyAccessError,
    accounts_for_staff,
    idp_side_complete,
    is_staff,
    may_change,
    readable_account,
    readable_connection,
    walkthrough_values,
    wizard_step,
)
from app.sessions.web import browser_binding, clear_session_cookie, current_session, set_binding_cookie
from app.views.access import SAFE_METHODS, refuse_read_only, role_required
from app.views.confirm import Confirmation, render_confirmation
from app.views.forms import Form
from app.views.setup_forms import (
    ConfirmActionForm,
    ConfirmImportForm,
    ConnectionSettingsForm,
    ManualIdpForm,
    MetadataFileForm,
    MetadataPasteForm,
    MetadataUrlForm,
    NewConnectionForm,
    SecurityOptionsForm,
    SetupPathForm,
    SsoRequiredForm,
)

log = logging.getLogger(__name__)

bp = Blueprint("setup", __name__, url_prefix="/setup")
bp.register_error_handler(ReadOnlyAccessError, refuse_read_only)

#: Who may open the wizard: an account's admins, and staff for every account (staff read only).
MANAGER_ROLES = ("admin", "support")
#: A bad form or bad metadata: the page is shown again with the reason.
UNPROCESSABLE = 422

NAMEID_LABELS = {
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress": "Email address",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified": "Unspecified",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent": "Persistent",
}
SIGNED_LABELS = {
    "any": "The response or the assertion (either one)",
    "assertion": "The assertion",
    "response": "The whole response",
    "both": "Both the response and the assertion",
}


# --- access ------------------------------------------------------------------------------------


def _check_change(account_id: int, *, change: bool) -> None:
    """Refuse a change by someone who may only read; remember for the templates what they may do.

    Every state-changing method counts as a change, whatever the route says, so that a new POST
    route is covered without anyone remembering to mark it.
    """
    g.setup_can_change = may_change(current_user, account_id)
    if (change or request.method not in SAFE_METHODS) and not g.setup_can_change:
        raise ReadOnlyAccessError(account_id)


def _account_or_404(slug: str, *, change: bool = False) -> Account:
    """The account if this person may read its setup (and change it, with ``change``); else 404/403."""
    account = readable_account(current_user, slug)
    if account is None:
        abort(404)
    _check_change(account.id, change=change)
    return account


def _connection_or_404(connection_id: int, *, change: bool = False) -> IdpConnection:
    """The connection if this person may read its account's setup (and change it, with ``change``)."""
    connection = readable_connection(current_user, connection_id)
    if connection is None:
        abort(404)
    _check_change(connection.account_id, change=change)
    return connection


@bp.context_processor
def _change_controls() -> dict[str, bool]:
    """``can_change``: whether the page shows its change buttons and forms (not to staff)."""
    return {"can_change": bool(g.get("setup_can_change", False))}


def _render_connection_page(
    template: str, connection: IdpConnection, status: int = 200, **context: object
) -> tuple[str, int]:
    """Render a page about one connection with what every such page shows (header, progress)."""
    return render_template(
        template,
        connection=connection,
        plugin=get_plugin(connection.plugin_key),
        sp=sp_values(connection),
        wizard_step=wizard_step(connection),
        idp_side_complete=idp_side_complete(connection),
        **context,
    ), status


# --- account pages -----------------------------------------------------------------------------


@bp.get("/")
@role_required(*MANAGER_ROLES)
def index() -> Response | str:
    """Admins go to their account's connections; staff choose an account first."""
    if not is_staff(current_user):
        return redirect(url_for("setup.connections", slug=current_user.account.slug))
    query_text = request.args.get("q", "").strip()[:100]
    accounts, counts = accounts_for_staff(query_text)
    return render_template("setup/accounts.html", accounts=accounts, counts=counts, query_text=query_text)


@bp.get("/accounts/<slug>/")
@role_required(*MANAGER_ROLES)
def connections(slug: str) -> str:
    """The account's IdP connections, their state and certificate expiry, and "SSO required"."""
    account = _account_or_404(slug)
    rows = connection_summaries(account)
    return render_template(
        "setup/connections.html",
        account=account,
        rows=rows,
        ready=sso_ready_connection(account),
        cert_alerts=certificate_alerts(account),
        sso_form=SsoRequiredForm(formdata=None, data={"required": "off" if account.sso_required else "on"}),
    )


@bp.post("/accounts/<slug>/sso-required")
@role_required(*MANAGER_ROLES)
def sso_required(slug: str) -> Response:
    """Switch "SSO required" on (only with a tested, enabled connection) or off."""
    account = _account_or_404(slug)
    form = SsoRequiredForm()
    if not form.validate():
        flash("Choose whether SSO is required.", "error")
        return redirect(url_for("setup.connections", slug=account.slug))
    required = form.required.data == "on"
    own = current_session()
    try:
        set_sso_required(account, required)
        db.session.commit()
    except ConnectionChangeError as err:
        db.session.rollback()
        flash(str(err), "error")
        return redirect(url_for("setup.connections", slug=account.slug))
    if own is not None and own.revoked_at is not None:
        # The admin signed in with a password: that session ended with the others. Sign in with SSO.
        flash(
            "SSO is now required. You had signed in with a password, so that session has ended: sign in with SSO.",
            "info",
        )
        response = redirect(url_for("auth.login", next=url_for("setup.connections", slug=account.slug)))
        clear_session_cookie(response)
        return response
    if required:
        flash("SSO is now required: users of this account can no longer sign in with a password.", "success")
    else:
        flash("SSO is no longer required: users with a password may use it again.", "success")
    return redirect(url_for("setup.connections", slug=account.slug))


@bp.route("/accounts/<slug>/connections/new", methods=["GET", "POST"])
@role_required(*MANAGER_ROLES)
def new_connection(slug: str) -> Response | tuple[str, int]:
    """Step 1: choose the identity provider; creates a draft connection with its own SP key."""
    account = _account_or_404(slug, change=True)
    form = NewConnectionForm()
    if form.validate_on_submit():
        try:
            connection = create_connection(account, form.provider.data, name=(form.name.data or "").strip())
        except ConnectionChangeError as err:
            db.session.rollback()
            form.provider.errors = [str(err)]
        else:
            db.session.commit()
            return redirect(url_for("setup.walkthrough", connection_id=connection.id))
    status = UNPROCESSABLE if form.is_submitted() else 200
    return render_template("setup/new.html", account=account, form=form, plugins=PLUGINS), status


# --- one connection ----------------------------------------------------------------------------


@bp.get("/connections/<id:connection_id>/")
@role_required(*MANAGER_ROLES)
def connection(connection_id: int) -> tuple[str, int]:
    """The connection's hub: next step, IdP side, certificates, settings, recent sign-ins."""
    connection = _connection_or_404(connection_id)
    attempts = recent_signin_attempts(connection)
    last_test = next((event for event in attempts if event.action == TEST_ACTION), None)
    return _render_connection_page(
        "setup/connection.html",
        connection,
        summary=summarise(connection),
        certificates=certificate_rows(connection),
        attempts=[(event, explain_attempt(connection, event)) for event in attempts],
        last_test=(last_test, explain_attempt(connection, last_test)) if last_test else None,
        replaces=other_enabled_connections(connection) if connection.status != ENABLED else [],
        proven=has_successful_test(connection),
        options=resolve_options(connection),
        nameid_labels=NAMEID_LABELS,
        signed_labels=SIGNED_LABELS,
    )


@bp.get("/connections/<id:connection_id>/walkthrough")
@role_required(*MANAGER_ROLES)
def walkthrough(connection_id: int) -> tuple[str, int]:
    """Step 2: the provider's own screens, in order, with this connection's values to copy.

    A provider with several setup paths (Salesforce) asks which one the admin takes; the admin's
    choice is kept on the connection (``choose_path``), so the wizard's links come back to it. A
    path in the address (``?path=``: staff, who change nothing, and bookmarks) is shown instead.
    """
    connection = _connection_or_404(connection_id)
    plugin = get_plugin(connection.plugin_key)
    values = walkthrough_values(connection, current_user)
    chosen = find_path(plugin, request.args.get("path")) or find_path(plugin, connection.setup_path)
    return _render_connection_page(
        "setup/walkthrough.html",
        connection,
        steps=steps_on_path(render_walkthrough(plugin, values), chosen),
        paths=plugin.setup_paths,
        chosen_path=chosen,
        options=render_option_help(plugin, values),
    )


@bp.post("/connections/<id:connection_id>/walkthrough/path")
@role_required(*MANAGER_ROLES)
def choose_path(connection_id: int) -> Response:
    """Keep the setup path the admin chose (or changed to), then show its steps."""
    connection = _connection_or_404(connection_id, change=True)
    form = SetupPathForm()
    if not form.validate():
        flash("Choose one of the ways to register us below. (SETUP_PATH_UNKNOWN)", "error")
    else:
        try:
            path = choose_setup_path(connection, form.path.data)
            db.session.commit()
        except ConnectionChangeError as err:
            db.session.rollback()
            flash(f"{err.message} ({err.code})", "error")
        else:
            flash(f"Showing the steps for {path.label[0].lower()}{path.label[1:]}.", "success")
    return redirect(url_for("setup.walkthrough", connection_id=connection.id, _anchor="path-choice"), code=303)


@bp.get("/connections/<id:connection_id>/walkthrough/files/<name>")
@role_required(*MANAGER_ROLES)
def walkthrough_file(connection_id: int, name: str) -> Response:
    """One of the walkthrough's files (Salesforce's metadata XML) with this connection's values, as
    a download: the admin saves it into their project instead of copying it by hand."""
    connection = _connection_or_404(connection_id)
    file = render_setup_file(get_plugin(connection.plugin_key), walkthrough_values(connection, current_user), name)
    if file is None:
        abort(404)
    return Response(
        file.content,
        content_type=f"{file.media_type}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{file.name}"'},
    )


_F = TypeVar("_F", bound=Form)


@dataclass(frozen=True)
class ImportForms:
    """The four ways to give the IdP side, one form each; only the submitted one reads the request."""

    file: MetadataFileForm
    paste: MetadataPasteForm
    url: MetadataUrlForm
    manual: ManualIdpForm

    @classmethod
    def build(cls, submitted: str | None = None) -> ImportForms:
        def form(method: str, form_class: type[_F]) -> _F:
            return form_class() if method == submitted else form_class(formdata=None)

        return cls(
            form("file", MetadataFileForm),
            form("paste", MetadataPasteForm),
            form("url", MetadataUrlForm),
            form("manual", ManualIdpForm),
        )


def _render_import(
    connection: IdpConnection,
    forms: ImportForms,
    *,
    method: str | None = None,
    error: MetadataError | None = None,
    status: int = 200,
) -> tuple[str, int]:
    plugin = get_plugin(connection.plugin_key)
    open_method = method or ("url" if plugin.metadata_source == "url" else "file")
    return _render_connection_page(
        "setup/import.html",
        connection,
        status,
        forms=forms,
        open_method=open_method,
        error=error,
        max_kb=MAX_METADATA_BYTES // 1024,
        demo_metadata_url=demo_idp_metadata_url(),
    )


@bp.get("/connections/<id:connection_id>/import")
@role_required(*MANAGER_ROLES)
def import_idp(connection_id: int) -> tuple[str, int]:
    """Step 3: give us the IdP side: metadata file, pasted XML, metadata URL, or typed in."""
    connection = _connection_or_404(connection_id, change=True)
    forms = ImportForms.build()
    if connection.idp_metadata_url:
        forms.url.metadata_url.data = connection.idp_metadata_url
    return _render_import(connection, forms)


@bp.post("/connections/<id:connection_id>/import/<method>")
@role_required(*MANAGER_ROLES)
def import_read(connection_id: int, method: str) -> tuple[str, int]:
    """Read what the admin gave and show the review; bad input is explained and nothing is saved."""
    connection = _connection_or_404(connection_id)
    if method not in IMPORT_METHODS:
        abort(404)
    forms = ImportForms.build(method)
    form: Form = getattr(forms, method)
    if not form.validate():
        errors = "; ".join(message for messages in form.errors.values() for message in messages)
        return _render_import(
            connection,
            forms,
            method=method,
            status=UNPROCESSABLE,
            error=MetadataError("FORM_INVALID", errors or "Check the form and send it again."),
        )
    url = (forms.url.metadata_url.data or "").strip() if method == "url" else None
    try:
        if method == "file":
            upload = forms.file.metadata_file.data
            # One byte more than the cap, so that an oversized file is refused without reading it all.
            raw = upload.stream.read(MAX_METADATA_BYTES + 1) if upload else b""
            idp = read_idp_side("file", raw=raw)
        elif method == "paste":
            idp = read_idp_side("paste", raw=forms.paste.metadata_xml.data or "")
        elif method == "url":
            idp = read_idp_side("url", url=url)
        else:
            idp = read_idp_side(
                "manual",
                entity_id=forms.manual.entity_id.data or "",
                sso_url=forms.manual.sso_url.data or "",
                slo_url=forms.manual.slo_url.data or "",
                certificate=forms.manual.certificate.data or "",
            )
    except MetadataError as err:
        db.session.rollback()
        record_import_failure(connection, err, method=method, url=url)
        db.session.commit()
        log.info("IdP import refused for connection %s: %s", connection.id, err.code)
        return _render_import(connection, forms, method=method, error=err, status=UNPROCESSABLE)
    preview = preview_import(connection, idp, method=method, metadata_url=url)
    confirm = ConfirmImportForm(formdata=None, data={"review_token": seal_import_review(connection, preview)})
    return _render_connection_page("setup/review.html", connection, preview=preview, form=confirm)


@bp.post("/connections/<id:connection_id>/import/confirm")
@role_required(*MANAGER_ROLES)
def import_confirm(connection_id: int) -> Response:
    """Save the reviewed IdP side: certificates are added, the ones already there are kept."""
    connection = _connection_or_404(connection_id)
    form = ConfirmImportForm()
    try:
        if not form.validate():
            raise MetadataError("IMPORT_REVIEW_INVALID", "This review could not be read. Import the metadata again.")
        idp, method, url = open_import_review(connection, form.review_token.data)
        added = import_idp_side(connection, idp, method=method, metadata_url=url)
        db.session.commit()
    except MetadataError as err:
        db.session.rollback()
        record_import_failure(connection, err, method="review")
        db.session.commit()
        flash(f"{err.message} ({err.code})", "error")
        return redirect(url_for("setup.import_idp", connection_id=connection.id))
    flash(f"Saved the IdP details ({plural(added, 'new certificate')}).", "success")
    if connection.status == ENABLED:
        return redirect(url_for("setup.connection", connection_id=connection.id))
    return redirect(url_for("setup.test_page", connection_id=connection.id))


@bp.post("/connections/<id:connection_id>/refresh")
@role_required(*MANAGER_ROLES)
def refresh(connection_id: int) -> Response:
    """Re-import the metadata URL now (certificate rollover): new certificates are added."""
    connection = _connection_or_404(connection_id)
    try:
        added = refresh_from_metadata_url(connection)
        db.session.commit()
    except MetadataError as err:
        db.session.rollback()
        record_import_failure(connection, err, method="url", url=connection.idp_metadata_url)
        db.session.commit()
        flash(f"{err.message} ({err.code})", "error")
    else:
        if added:
            flash(f"Re-imported the metadata URL: {plural(added, 'new certificate')} added.", "success")
        else:
            flash("Re-imported the metadata URL: no new certificate.", "info")
    return redirect(url_for("setup.connection", connection_id=connection.id))


@bp.route("/connections/<id:connection_id>/test", methods=["GET", "POST"])
@role_required(*MANAGER_ROLES)
def test_page(connection_id: int) -> Response | tuple[str, int]:
    """Step 4: a test sign-in at the IdP. It creates no session; a valid answer marks it tested."""
    connection = _connection_or_404(connection_id)
    if request.method == "GET":
        return _render_connection_page(
            "setup/test.html",
            connection,
            attempts=recent_signin_attempts(connection, limit=10, actions=(TEST_ACTION,)),
        )
    if not idp_side_complete(connection):
        flash("Import the IdP details first: the test needs its SSO URL and signing certificate.", "error")
        return redirect(url_for("setup.import_idp", connection_id=connection.id))
    binding, is_new = browser_binding()
    location = start_login(
        connection,
        app_name="portal",
        next_path=url_for("setup.connection", connection_id=connection.id),
        browser_binding=binding,
        purpose="test",
    )
    db.session.commit()
    response = redirect(location)
    if is_new:
        set_binding_cookie(response, binding)
    return response


@bp.get("/connections/<id:connection_id>/tests/<id:event_id>")
@role_required(*MANAGER_ROLES)
def test_result(connection_id: int, event_id: int) -> tuple[str, int]:
    """What a test sign-in brought, whether it would let the user in, and how to fix a failure."""
    connection = _connection_or_404(connection_id)
    event = find_test_event(connection, event_id)
    if event is None:
        abort(404)
    plugin = get_plugin(connection.plugin_key)
    details = event.details or {}
    code = event.error_code
    return _render_connection_page(
        "setup/test_result.html",
        connection,
        event=event,
        details=details,
        explanation=explain_attempt(connection, event),
        replaces=other_enabled_connections(connection) if connection.status != ENABLED else [],
        hint=render_hint(plugin, code, walkthrough_values(connection, current_user)) if code else None,
        saml_worked=bool(details.get("issuer")),
        user_apps=sorted(apps_for_roles(details.get("user_roles") or [])),
        nameid_labels=NAMEID_LABELS,
    )


@bp.post("/connections/<id:connection_id>/enable")
@role_required(*MANAGER_ROLES)
def enable(connection_id: int) -> Response:
    """Step 5: turn "Sign in with SSO" on through this connection (it must have been tested)."""
    connection = _connection_or_404(connection_id)
    # Named before enabling: afterwards they are no longer enabled, and "since" would be lost.
    rivals = other_enabled_connections(connection)
    try:
        replaced = enable_connection(connection, require_test=True)
        db.session.commit()
    except ConnectionChangeError as err:
        db.session.rollback()
        flash(str(err), "error")
        return redirect(url_for("setup.connection", connection_id=connection.id))
    labels = [rival.label for rival in rivals if rival.connection.id in replaced]
    note = f" It replaces {' and '.join(labels)}." if labels else ""
    flash(f"{connection.name} is enabled: users of {connection.account.name} sign in through it.{note}", "success")
    return redirect(url_for("setup.connection", connection_id=connection.id))


def _connection_breadcrumb(connection: IdpConnection) -> tuple[tuple[str, str], ...]:
    return (
        (f"SSO setup for {connection.account.name}", url_for("setup.connections", slug=connection.account.slug)),
        (connection.name, url_for("setup.connection", connection_id=connection.id)),
    )


@bp.route("/connections/<id:connection_id>/disable", methods=["GET", "POST"])
@role_required(*MANAGER_ROLES)
def disable(connection_id: int) -> Response | tuple[str, int]:
    """Confirm, then stop sign-ins through this connection (the POST needs ``confirm=y``, which the
    confirmation page sends)."""
    connection = _connection_or_404(connection_id, change=True)
    if request.method == "GET":
        if connection.status != ENABLED:
            flash(f"{connection.name} is not enabled: there is nothing to disable.", "info")
            return redirect(url_for("setup.connection", connection_id=connection.id))
        said = confirmations.disable_connection(connection)
        return render_confirmation(
            Confirmation(
                title=f"Disable {connection.name}?",
                consequence=said.sentence,
                details=said.details,
                action=url_for("setup.disable", connection_id=connection.id),
                button="Disable sign-ins",
                cancel=url_for("setup.connection", connection_id=connection.id),
                hidden={"confirm": "y"},
                testid="confirm-disable",
                breadcrumb=_connection_breadcrumb(connection),
            )
        )
    form = ConfirmActionForm()
    if not form.validate():
        flash("Tick the box to confirm that users can no longer sign in through this connection.", "error")
        return redirect(url_for("setup.connection", connection_id=connection.id))
    try:
        disable_connection(connection)
        db.session.commit()
    except ConnectionChangeError as err:
        db.session.rollback()
        flash(str(err), "error")
    else:
        flash(f"{connection.name} is disabled: nobody can sign in through it until you enable it again.", "success")
    return redirect(url_for("setup.connection", connection_id=connection.id))


@bp.route("/connections/<id:connection_id>/delete", methods=["GET", "POST"])
@role_required(*MANAGER_ROLES)
def delete(connection_id: int) -> Response | tuple[str, int]:
    """Delete the connection after a confirmation page."""
    connection = _connection_or_404(connection_id, change=True)
    form = ConfirmActionForm()
    if request.method == "POST" and form.validate():
        account_slug, name = connection.account.slug, connection.name
        try:
            delete_connection(connection)
            db.session.commit()
        except ConnectionChangeError as err:
            db.session.rollback()
            flash(str(err), "error")
            return redirect(url_for("setup.connection", connection_id=connection_id))
        flash(f"Deleted the connection {name}.", "success")
        return redirect(url_for("setup.connections", slug=account_slug))
    said = confirmations.delete_connection(
        connection, get_plugin(connection.plugin_key).display_name, sp_values(connection).acs_url
    )
    return render_confirmation(
        Confirmation(
            title=f"Delete {connection.name}?",
            consequence=said.sentence,
            details=said.details,
            action=url_for("setup.delete", connection_id=connection.id),
            button="Delete the connection",
            cancel=url_for("setup.connection", connection_id=connection.id),
            tick_box="Yes, delete this connection",
            error="Tick the box to confirm the deletion." if request.method == "POST" else "",
            testid="delete-confirm",
            breadcrumb=_connection_breadcrumb(connection),
        ),
        UNPROCESSABLE if request.method == "POST" else 200,
    )


@bp.route("/connections/<id:connection_id>/certificates/<id:certificate_id>/remove", methods=["GET", "POST"])
@role_required(*MANAGER_ROLES)
def remove_cert(connection_id: int, certificate_id: int) -> Response | tuple[str, int]:
    """Confirm, then remove an old IdP certificate after a rollover."""
    connection = _connection_or_404(connection_id, change=True)
    if request.method == "GET":
        certificate = next((cert for cert in connection.certificates if cert.id == certificate_id), None)
        if certificate is None:
            abort(404)
        if not certificates_removable(connection):
            flash("This is the connection's only signing certificate: add the new one before removing it.", "error")
            return redirect(url_for("setup.connection", connection_id=connection.id))
        said = confirmations.remove_certificate(connection, certificate)
        return render_confirmation(
            Confirmation(
                title="Remove this signing certificate?",
                consequence=said.sentence,
                details=said.details,
                action=url_for("setup.remove_cert", connection_id=connection.id, certificate_id=certificate.id),
                button="Remove the certificate",
                cancel=url_for("setup.connection", connection_id=connection.id),
                testid="confirm-remove-certificate",
                breadcrumb=_connection_breadcrumb(connection),
            )
        )
    try:
        removed = remove_certificate(connection, certificate_id)
        db.session.commit()
    except ConnectionChangeError as err:
        db.session.rollback()
        flash(str(err), "error")
    else:
        flash(f"Removed the certificate {removed.fingerprint_sha256[:23]}….", "success")
    return redirect(url_for("setup.connection", connection_id=connection.id))


def _settings_form(connection: IdpConnection, plugin: type[IdpPlugin], *, formdata: bool) -> ConnectionSettingsForm:
    own = overrides_of(connection)
    data = {
        "name": connection.name,
        "email_attributes": "\n".join(own.get("email_attributes", [])),
        "signed_element": own.get("signed_element", ""),
        "nameid_format": own.get("nameid_format", ""),
        "allow_idp_initiated": connection.allow_idp_initiated,
    }
    form = ConnectionSettingsForm() if formdata else ConnectionSettingsForm(formdata=None, data=data)
    signed_default = SIGNED_LABELS[plugin.signed_element].lower()
    nameid_default = NAMEID_LABELS.get(plugin.nameid_format, plugin.nameid_format)
    form.signed_element.choices = [SelectChoice("", f"{plugin.display_name}'s default: {signed_default}")] + [
        SelectChoice(value, SIGNED_LABELS[value]) for value in SIGNED_ELEMENTS
    ]
    form.nameid_format.choices = [SelectChoice("", f"{plugin.display_name}'s default: {nameid_default}")] + [
        SelectChoice(value, NAMEID_LABELS[value]) for value in NAMEID_FORMATS
    ]
    return form


@bp.route("/connections/<id:connection_id>/settings", methods=["GET", "POST"])
@role_required(*MANAGER_ROLES)
def settings(connection_id: int) -> Response | tuple[str, int]:
    """Edit the name, the email attributes, what must be signed, the NameID format, IdP-initiated."""
    connection = _connection_or_404(connection_id, change=True)
    plugin = get_plugin(connection.plugin_key)
    form = _settings_form(connection, plugin, formdata=request.method == "POST")
    error = None
    if request.method == "POST":
        if form.validate():
            try:
                changed = update_connection_settings(
                    connection,
                    name=form.name.data or "",
                    email_attributes=(form.email_attributes.data or "").splitlines(),
                    signed_element=form.signed_element.data or None,
                    nameid_format=form.nameid_format.data or None,
                    allow_idp_initiated=bool(form.allow_idp_initiated.data),
                )
                db.session.commit()
            except ConnectionChangeError as err:
                db.session.rollback()
                error = str(err)
            else:
                flash("Settings saved." if changed else "Nothing changed.", "success" if changed else "info")
                return redirect(url_for("setup.connection", connection_id=connection.id))
        else:
            error = "; ".join(message for messages in form.errors.values() for message in messages)
    status = UNPROCESSABLE if request.method == "POST" else 200
    options = resolve_options(connection)
    options_form = SecurityOptionsForm(
        formdata=None,
        data={
            "single_logout": options.single_logout,
            "encrypt_assertions": options.encrypt_assertions,
            "sign_requests": options.sign_requests,
        },
    )
    return _render_connection_page(
        "setup/settings.html",
        connection,
        status,
        form=form,
        error=error,
        default_attributes=plugin.email_attributes,
        options_form=options_form,
        option_help=render_option_help(plugin, walkthrough_values(connection, current_user)),
    )


@bp.post("/connections/<id:connection_id>/options")
@role_required(*MANAGER_ROLES)
def security_options(connection_id: int) -> Response:
    """Turn Single Logout, assertion encryption and request signing on or off (same checks as
    ``flask idp set``)."""
    connection = _connection_or_404(connection_id)
    form = SecurityOptionsForm()
    if not form.validate():
        flash("Choose one of the offered values. Nothing was saved.", "error")
        return redirect(url_for("setup.settings", connection_id=connection.id))
    try:
        changed = update_connection_options(
            connection,
            single_logout=bool(form.single_logout.data),
            encrypt_assertions=form.encrypt_assertions.data,
            sign_requests=bool(form.sign_requests.data),
        )
        db.session.commit()
    except ConnectionChangeError as err:
        db.session.rollback()
        flash(f"{err.message} Nothing was saved.", "error")
        return redirect(url_for("setup.settings", connection_id=connection.id))
    flash("Security options saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("setup.settings", connection_id=connection.id))
