"""The account admin's pages: the users of their own account, and the CSV import.

Only users with the ``admin`` role, and only for their own account: another account's user
answers 404, so that its existence is not revealed. Staff (role ``support``) never change users: a
staff member without the admin role of their own account gets 403 ``STAFF_READ_ONLY`` (audited) on
every state-changing request here, and one who is an admin of their own account manages that
account only, like any admin. Deactivation and deletion go through
``app.services.users`` (which revokes every session in the same transaction); the import goes through
``app.services.imports``. This module reads forms and renders pages.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.file import FileField, FileRequired
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    SubmitField,
    widgets,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp

from app.extensions import db
from app.formatting import plural
from app.models import ImportJob, User
from app.models.user import ACTIVE, DEACTIVATED
from app.roles import CUSTOMER_ROLES
from app.services import confirmations, import_jobs
from app.services.import_jobs import ImportJobError, NotYourImport
from app.services.imports import MAX_ROWS
from app.services.listing import FilterError
from app.services.session_queries import describe_live_sessions, live_session_count
from app.services.setup_wizard import ReadOnlyAccessError, is_staff, require_change
from app.services.user_directory import UserFilters, list_users
from app.services.users import UserError, create_user, deactivate_user, delete_user, reactivate_user, update_user
from app.sessions import revoke_sessions_for_user
from app.views.access import SAFE_METHODS, refuse_read_only, role_required
from app.views.confirm import Confirmation, render_confirmation
from app.views.forms import Form

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.register_error_handler(ReadOnlyAccessError, refuse_read_only)


@bp.before_request
def _staff_change_nothing() -> None:
    """A change by staff who are not an admin of their own account: 403 ``STAFF_READ_ONLY``, audited.

    Before any view, so that every state-changing route of this blueprint, present or future, is
    covered. Others (agents, anonymous) meet the views' own checks (role, sign-in) as before.
    """
    if request.method not in SAFE_METHODS and current_user.is_authenticated and is_staff(current_user):
        require_change(current_user, current_user.account_id)


ADMIN_ROLE = "admin"
#: Why a session ended when an admin signed its user out everywhere.
SIGNED_OUT_BY_ADMIN = "revoked_by_admin"
ROLE_CHOICES = [SelectChoice(role, role.capitalize()) for role in CUSTOMER_ROLES]
ROLE_HELP = {"admin": "Account Portal, desktop and mobile apps", "agent": "desktop and mobile apps"}


class RolesField(SelectMultipleField):
    """Customer roles as a list of checkboxes."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class UserForm(Form):
    """A user's name and roles (the email is set once, at creation)."""

    name = StringField("Name", validators=[Optional(), Length(max=200)])
    roles = RolesField("Roles", choices=ROLE_CHOICES, validators=[DataRequired("Choose at least one role.")])
    submit = SubmitField("Save")


class NewUserForm(UserForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    submit = SubmitField("Create user")


class ActionForm(Form):
    """A button that changes something (CSRF-protected POST)."""

    submit = SubmitField("Confirm")


class DeleteForm(Form):
    """Deletion cannot be undone: the admin ticks a box to say they mean it."""

    confirm = BooleanField(
        "I understand that this user is deleted for good", validators=[DataRequired("Tick the box to confirm.")]
    )
    submit = SubmitField("Delete user")


class ImportForm(Form):
    """Upload a CSV: it is kept on the server, checked, and shown as a preview to apply in one step."""

    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file.")])
    deactivate_missing = BooleanField("Deactivate (and sign out) users of the account who are not in the file")
    submit = SubmitField("Preview")


class ApplyImportForm(Form):
    """ "Apply these changes": the previewed file, named by its SHA-256 (the upload stays on the server)."""

    sha256 = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])
    submit = SubmitField("Apply")


class CancelImportForm(Form):
    """Cancel an import before its write starts."""

    submit = SubmitField("Cancel import")


def _sentence(exc: Exception) -> str:
    """A service's refusal as a sentence on the form."""
    text = str(exc).rstrip(".")
    return text[:1].upper() + text[1:] + "."


def _own_user(user_id: int) -> User:
    """A user of the admin's own account, or 404 (never another account's)."""
    user = db.session.get(User, user_id)
    if user is None or user.account_id != current_user.account_id:
        abort(404, "There is no such user in your account.")
    return user


@bp.get("/")
@role_required(ADMIN_ROLE)
def index() -> Response:
    return redirect(url_for("admin.users"))


@bp.get("/users")
@role_required(ADMIN_ROLE)
def users() -> tuple[str, int] | str:
    """The account's users: search, filters by role and status, pages of 50 by email."""
    try:
        filters = UserFilters.parse(request.args)
        result = list_users(
            current_user.account_id, filters, after=request.args.get("after"), before=request.args.get("before")
        )
    except FilterError as err:
        return render_template("admin/users.html", filters=None, result=None, error=err, args=request.args), 400
    return render_template("admin/users.html", filters=filters, result=result, error=None, args=request.args)


@bp.route("/users/new", methods=["GET", "POST"])
@role_required(ADMIN_ROLE)
def new_user() -> Response | str | tuple[str, int]:
    """Add one user. ``?email=&name=`` prefill the form: a test sign-in's result links here with
    the person its IdP sent ("Add dave@example.com as a user"); nothing is created until submitted."""
    if request.method == "GET":
        prefill = {"email": request.args.get("email", "")[:320], "name": request.args.get("name", "")[:200]}
        form = NewUserForm(formdata=None, data=prefill)
    else:
        form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = create_user(current_user.account, form.email.data, roles=form.roles.data, name=form.name.data or "")
            db.session.commit()
        except UserError as exc:
            db.session.rollback()
            form.email.errors = [*form.email.errors, _sentence(exc)]
        else:
            flash(f"Created {user.email}. They can sign in with single sign-on now.", "success")
            return redirect(url_for("admin.user", user_id=user.id))
    status = 422 if form.is_submitted() else 200
    return render_template("admin/user_new.html", form=form, role_help=ROLE_HELP), status


@bp.route("/users/<id:user_id>", methods=["GET", "POST"])
@role_required(ADMIN_ROLE)
def user(user_id: int) -> Response | str | tuple[str, int]:
    """One user: facts, the name and roles form, and the buttons that lead to each action."""
    target = _own_user(user_id)
    form = UserForm(obj=None, data={"name": target.name, "roles": [r for r in target.role_list if r in CUSTOMER_ROLES]})
    if request.method == "POST":
        form = UserForm()
        if form.validate():
            if target.id == current_user.id and ADMIN_ROLE not in form.roles.data:
                form.roles.errors = [
                    *form.roles.errors,
                    "You cannot take the admin role from yourself: ask another admin.",
                ]
            else:
                try:
                    changed = update_user(target, name=form.name.data or "", roles=form.roles.data)
                    db.session.commit()
                except UserError as exc:
                    db.session.rollback()
                    form.name.errors = [*form.name.errors, _sentence(exc)]
                else:
                    flash("Saved." if changed else "Nothing to change.", "success" if changed else "info")
                    return redirect(url_for("admin.user", user_id=target.id))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "admin/user.html",
        target=target,
        form=form,
        action_form=ActionForm(),
        role_help=ROLE_HELP,
        live_sessions=live_session_count(target.id),
        sessions=describe_live_sessions(target.id),
        is_self=target.id == current_user.id,
    ), status


def _refuse_self(target: User, verb: str) -> Response | None:
    if target.id == current_user.id:
        flash(f"You cannot {verb} your own user: ask another admin of your account.", "error")
        return redirect(url_for("admin.user", user_id=target.id))
    return None


@bp.route("/users/<id:user_id>/deactivate", methods=["GET", "POST"])
@role_required(ADMIN_ROLE)
def deactivate(user_id: int) -> Response | tuple[str, int]:
    """Confirm, then deactivate: every session of the user ends in the same transaction."""
    target = _own_user(user_id)
    refused = _refuse_self(target, "deactivate")
    if refused:
        return refused
    form = ActionForm()
    if form.validate_on_submit():
        if target.status == DEACTIVATED:
            flash(f"{target.email} was already deactivated.", "info")
        else:
            revoked = deactivate_user(target)
            db.session.commit()
            flash(f"Deactivated {target.email}; {plural(revoked, 'session')} signed out everywhere.", "success")
        return redirect(url_for("admin.user", user_id=target.id))
    said = confirmations.deactivate(target)
    return render_confirmation(
        Confirmation(
            title=f"Deactivate {target.email}?",
            consequence=said.sentence,
            details=said.details,
            action=url_for("admin.deactivate", user_id=target.id),
            button="Deactivate and sign out",
            cancel=url_for("admin.user", user_id=target.id),
            testid="confirm-deactivate",
            breadcrumb=_user_breadcrumb(target),
        )
    )


def _user_breadcrumb(target: User) -> tuple[tuple[str, str], ...]:
    return (("Users", url_for("admin.users")), (target.email, url_for("admin.user", user_id=target.id)))


@bp.route("/users/<id:user_id>/revoke-sessions", methods=["GET", "POST"])
@role_required(ADMIN_ROLE)
def revoke_sessions(user_id: int) -> Response | tuple[str, int]:
    """Confirm, then sign the user out everywhere (they may sign in again: see deactivate)."""
    target = _own_user(user_id)
    form = ActionForm()
    if form.validate_on_submit():
        revoked = revoke_sessions_for_user(target, SIGNED_OUT_BY_ADMIN, actor=current_user.email)
        db.session.commit()
        flash(f"Signed {target.email} out of {plural(revoked, 'session')}.", "success")
        return redirect(url_for("admin.user", user_id=target.id))
    said = confirmations.sign_out_everywhere(target)
    return render_confirmation(
        Confirmation(
            title=f"Sign {target.email} out everywhere?",
            consequence=said.sentence,
            details=(*said.details, "They can sign in again: to stop that, deactivate them."),
            action=url_for("admin.revoke_sessions", user_id=target.id),
            button="Sign out everywhere",
            cancel=url_for("admin.user", user_id=target.id),
            testid="confirm-revoke-sessions",
            breadcrumb=_user_breadcrumb(target),
        )
    )


@bp.post("/users/<id:user_id>/reactivate")
@role_required(ADMIN_ROLE)
def reactivate(user_id: int) -> Response:
    target = _own_user(user_id)
    if target.status != ACTIVE:
        reactivate_user(target)
        db.session.commit()
        flash(f"Reactivated {target.email}. They can sign in again.", "success")
    return redirect(url_for("admin.user", user_id=target.id))


@bp.route("/users/<id:user_id>/delete", methods=["GET", "POST"])
@role_required(ADMIN_ROLE)
def delete(user_id: int) -> Response | str | tuple[str, int]:
    """Confirm with a tick box, then delete: sessions end first and stay, detached, for the record."""
    target = _own_user(user_id)
    refused = _refuse_self(target, "delete")
    if refused:
        return refused
    form = DeleteForm()
    if form.validate_on_submit():
        email = target.email
        revoked = delete_user(target)
        db.session.commit()
        flash(f"Deleted {email}; {plural(revoked, 'session')} signed out everywhere.", "success")
        return redirect(url_for("admin.users"))
    said = confirmations.delete(target)
    return render_confirmation(
        Confirmation(
            title=f"Delete {target.email}?",
            consequence=said.sentence,
            details=(*said.details, "To keep the user but stop their access, deactivate them instead."),
            action=url_for("admin.delete", user_id=target.id),
            button="Delete user",
            cancel=url_for("admin.user", user_id=target.id),
            tick_box=form.confirm.label.text,
            error=" ".join(form.confirm.errors),
            testid="confirm-delete",
            breadcrumb=_user_breadcrumb(target),
        ),
        422 if form.is_submitted() else 200,
    )


#: What the template CSV holds: the header and one example row.
TEMPLATE_CSV = "email,name,roles\r\nana@example.com,Ana Lima,admin;agent\r\n"


@bp.route("/import", methods=["GET", "POST"])
@role_required(ADMIN_ROLE)
def import_page() -> Response | tuple[str, int]:
    """Upload a CSV once: it is kept on the server and checked, then its page shows the preview."""
    form = ImportForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        jobs = import_jobs.recent_jobs(current_user)
        db.session.commit()  # a job found dead or expired is marked so
        return render_template("admin/import.html", form=form, jobs=jobs, max_rows=MAX_ROWS), status
    job, created = import_jobs.store_upload(
        current_user.account,
        current_user,
        form.file.data.stream,
        filename=form.file.data.filename or "users.csv",
        deactivate_missing=form.deactivate_missing.data,
    )
    db.session.commit()
    if created:
        if import_jobs.runs_inline(job):
            import_jobs.run(job.id, import_jobs.run_check)
        else:
            import_jobs.start(job.id, import_jobs.run_check)
    return redirect(url_for("admin.import_job", job_id=job.id), 303)


@bp.route("/import/template.csv")
@role_required(ADMIN_ROLE)
def import_template() -> Response:
    """A CSV to fill in: the header and one example row."""
    return Response(
        TEMPLATE_CSV,
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="users-template.csv"'},
    )


def _own_job(job_id: int) -> ImportJob:
    """The admin's own job; another account's (or none) is 404, another admin's raises ``NotYourImport``."""
    job = import_jobs.job_for(current_user, job_id)
    if job is None:
        abort(404)
    return job


def _render_job(job: ImportJob, refusal: ImportJobError | None = None, status: int = 200) -> tuple[str, int]:
    return render_template(
        "admin/import_job.html",
        job=job,
        report=import_jobs.preview(job),
        status=import_jobs.status(job),
        changes=import_jobs.changes,
        refusal=refusal,
        apply_form=ApplyImportForm(formdata=None, data={"sha256": job.sha256}),
        cancel_form=CancelImportForm(formdata=None),
    ), status


@bp.route("/import/<id:job_id>")
@role_required(ADMIN_ROLE)
def import_job(job_id: int) -> tuple[str, int]:
    """One import: its progress while it runs, the preview with one "Apply" button, the outcome."""
    job = _own_job(job_id)
    db.session.commit()
    return _render_job(job)


@bp.route("/import/<id:job_id>/status")
@role_required(ADMIN_ROLE)
def import_status(job_id: int) -> Response | tuple[Response, int]:
    """The job's state and counts as JSON, for the page's progress bar."""
    try:
        job = _own_job(job_id)
    except NotYourImport as exc:
        return jsonify(error=exc.code, message=exc.message), exc.status
    db.session.commit()
    return jsonify(import_jobs.status(job))


def _refused(job: ImportJob, action: str, exc: ImportJobError) -> tuple[str, int]:
    """An apply or cancel that cannot happen: audited, and the job's page with the reason."""
    db.session.rollback()
    import_jobs.record_refused(job, action, exc, current_user.account_id)
    db.session.commit()
    db.session.refresh(job)
    return _render_job(job, refusal=exc, status=exc.status)


@bp.route("/import/<id:job_id>/apply", methods=["POST"])
@role_required(ADMIN_ROLE)
def import_apply(job_id: int) -> Response | tuple[str, int]:
    """Apply exactly the previewed file, once; a large one as a job with a progress bar."""
    job = _own_job(job_id)
    db.session.commit()  # a job found expired or lost stays marked so, whatever follows
    form = ApplyImportForm()
    form.validate_on_submit()
    try:
        import_jobs.request_apply(job, form.sha256.data or "")
    except ImportJobError as exc:
        return _refused(job, "user.import.apply", exc)
    db.session.commit()
    if import_jobs.runs_inline(job):
        import_jobs.run(job.id, import_jobs.run_write)
    else:
        import_jobs.start(job.id, import_jobs.run_write)
    return redirect(url_for("admin.import_job", job_id=job.id), 303)


@bp.route("/import/<id:job_id>/cancel", methods=["POST"])
@role_required(ADMIN_ROLE)
def import_cancel(job_id: int) -> Response | tuple[str, int]:
    """Cancel before the write starts: the upload is dropped and nothing is changed."""
    job = _own_job(job_id)
    db.session.commit()
    if not CancelImportForm().validate_on_submit():
        abort(400)
    try:
        import_jobs.cancel(job)
    except ImportJobError as exc:
        return _refused(job, "user.import.cancel", exc)
    db.session.commit()
    flash("Import cancelled: nothing was changed.", "success")
    return redirect(url_for("admin.import_job", job_id=job.id), 303)


@bp.errorhandler(NotYourImport)
def not_your_import(exc: NotYourImport) -> tuple[str, int]:
    """Another admin's import of the same account: say so, change nothing, audit it."""
    db.session.rollback()
    action = {"admin.import_apply": "user.import.apply", "admin.import_cancel": "user.import.cancel"}
    import_jobs.record_refused(
        None, action.get(request.endpoint or "", "user.import.view"), exc, current_user.account_id
    )
    db.session.commit()
    return render_template("admin/import_refused.html", refusal=exc), exc.status


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_exc: RequestEntityTooLarge) -> tuple[str, int]:
    """An upload over IMPORT_MAX_BYTES: say how large a file may be, on the page it came from."""
    limit_mb = current_app.config["IMPORT_MAX_BYTES"] // (1024 * 1024)
    return render_template(
        "errors/http.html",
        status=413,
        code="IMPORT_TOO_LARGE",
        title="This file is too large",
        message=f"Files up to {limit_mb} MB can be imported. Split the file into smaller ones (up to {MAX_ROWS:,} users each) and import them one after the other.",
    ), 413
