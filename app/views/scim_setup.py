"""An account's SCIM provisioning page: tokens, the group-to-role mapping, and each IdP's steps.

The account's admins manage it; staff (role ``support``) may read it for any account but change
nothing (rule 8: staff never change who can sign in to a customer's account). Tokens and the
mapping go through ``app.services.scim_tokens`` and ``app.services.provisioning``.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import HiddenField, SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import AnyOf, DataRequired, Length, Optional, Regexp

from app.errors import CodedError
from app.extensions import db
from app.idp_plugins import PLUGINS
from app.idp_plugins.render import render_provisioning
from app.models import Account, ScimToken
from app.roles import CUSTOMER_ROLES
from app.services import confirmations, provisioning
from app.services.scim_tokens import MAX_LIVE_TOKENS, create_token, list_tokens, revoke_token, scim_base_url
from app.views.access import role_required
from app.views.confirm import Confirmation, render_confirmation
from app.views.forms import Form

log = logging.getLogger(__name__)

bp = Blueprint("scim_setup", __name__, url_prefix="/setup/accounts/<slug>/scim")

ADMIN_ROLE = "admin"
STAFF_ROLE = "support"


class NewTokenForm(Form):
    """Create a SCIM token (its secret is shown once, on the page this answers)."""

    name = StringField("Token name", validators=[Optional(), Length(max=100)], description="For example Okta")
    submit = SubmitField("Create a SCIM token")


class RevokeTokenForm(Form):
    """Revoke one token: the IdP's next request with it is refused."""

    token_id = HiddenField(validators=[DataRequired(), Regexp(r"^\d{1,9}$")])
    submit = SubmitField("Revoke")


class GroupRoleForm(Form):
    """Members of an IdP group get a role."""

    group = StringField("IdP group name", validators=[DataRequired(), Length(max=256)])
    role = SelectField(
        "Role",
        choices=[SelectChoice(role, role.capitalize()) for role in sorted(CUSTOMER_ROLES)],
        validators=[AnyOf(sorted(CUSTOMER_ROLES))],
    )
    submit = SubmitField("Map the group")


class UnmapGroupForm(Form):
    group = HiddenField(validators=[DataRequired(), Length(max=256)])
    submit = SubmitField("Remove")


def _account(slug: str) -> Account:
    """The page's account: an admin's own, or any for staff; anything else is 404."""
    account = db.session.scalar(select(Account).where(Account.slug == slug))
    if account is None or not (_is_staff() or _is_own_admin(account)):
        abort(404)
    return account


def _is_staff() -> bool:
    return STAFF_ROLE in current_user.role_list


def _is_own_admin(account: Account) -> bool:
    return ADMIN_ROLE in current_user.role_list and current_user.account_id == account.id


def _managed_account(slug: str) -> Account:
    """The account, for a change: only its own admins (staff read, never change)."""
    account = _account(slug)
    if not _is_own_admin(account):
        abort(403, "Only the account's admins change its SCIM provisioning; staff may read it.")
    return account


def _render(account: Account, *, new_token: str | None = None, status: int = 200, **forms: Form) -> tuple[str, int]:
    values = {"scim_base_url": scim_base_url(), "account_name": account.name}
    providers = [
        (
            plugin,
            render_provisioning(plugin, values),
            plugin.provisioning_unavailable.format_map(values) if plugin.provisioning_unavailable else None,
        )
        for plugin in PLUGINS
    ]
    tokens = list_tokens(account.id)
    return render_template(
        "setup/scim.html",
        account=account,
        base_url=scim_base_url(),
        tokens=tokens,
        live_count=sum(1 for token in tokens if token.is_live),
        max_live=MAX_LIVE_TOKENS,
        mappings=provisioning.list_group_roles(account.id),
        providers=providers,
        new_token=new_token,
        may_manage=_is_own_admin(account),
        token_form=forms.get("token_form") or NewTokenForm(formdata=None),
        mapping_form=forms.get("mapping_form") or GroupRoleForm(formdata=None),
        unmap_form=UnmapGroupForm(formdata=None),
    ), status


@bp.get("/")
@role_required(ADMIN_ROLE, STAFF_ROLE)
def page(slug: str) -> tuple[str, int]:
    return _render(_account(slug))


@bp.post("/tokens")
@role_required(ADMIN_ROLE)
def new_token(slug: str) -> tuple[str, int]:
    """Create a token and show it once, on this answer (never stored, never in a redirect)."""
    account = _managed_account(slug)
    form = NewTokenForm()
    if not form.validate_on_submit():
        return _render(account, status=422, token_form=form)
    try:
        created = create_token(account, name=form.name.data or "", actor=current_user.email)
    except CodedError as exc:
        form.name.errors = [exc.message[:1].upper() + exc.message[1:] + "."]
        return _render(account, status=422, token_form=form)
    db.session.commit()
    return _render(account, new_token=created.token)


@bp.get("/tokens/<id:token_id>/revoke")
@role_required(ADMIN_ROLE)
def confirm_revoke(slug: str, token_id: int) -> Response | tuple[str, int]:
    """What revoking a token stops, before the POST to ``revoke`` (only the account's admins)."""
    account = _managed_account(slug)
    token = db.session.get(ScimToken, token_id)
    if token is None or token.account_id != account.id:
        abort(404)
    if not token.is_live:
        flash(f"Token {token.name} was already revoked.", "info")
        return redirect(url_for("scim_setup.page", slug=account.slug))
    said = confirmations.revoke_scim_token(token, sum(1 for t in list_tokens(account.id) if t.is_live))
    return render_confirmation(
        Confirmation(
            title=f"Revoke the SCIM token “{token.name}”?",
            consequence=said.sentence,
            details=said.details,
            action=url_for("scim_setup.revoke", slug=account.slug),
            button="Revoke the token",
            cancel=url_for("scim_setup.page", slug=account.slug),
            hidden={"token_id": str(token.id)},
            testid="confirm-revoke-token",
            breadcrumb=(
                (f"SSO setup for {account.name}", url_for("setup.connections", slug=account.slug)),
                ("SCIM provisioning", url_for("scim_setup.page", slug=account.slug)),
            ),
        )
    )


@bp.post("/tokens/revoke")
@role_required(ADMIN_ROLE)
def revoke(slug: str) -> Response:
    account = _managed_account(slug)
    form = RevokeTokenForm()
    if not form.validate_on_submit():
        abort(400, "The token to revoke is missing.")
    token = db.session.get(ScimToken, int(form.token_id.data))
    if token is None or token.account_id != account.id:
        abort(404)
    if revoke_token(token, actor=current_user.email):
        db.session.commit()
        flash(f"Token {token.name} revoked: the IdP's next request with it is refused.", "success")
    return redirect(url_for("scim_setup.page", slug=account.slug))


@bp.post("/groups")
@role_required(ADMIN_ROLE)
def map_group(slug: str) -> Response | tuple[str, int]:
    account = _managed_account(slug)
    form = GroupRoleForm()
    if not form.validate_on_submit():
        return _render(account, status=422, mapping_form=form)
    try:
        provisioning.map_group(account, form.group.data, form.role.data, actor=current_user.email)
    except CodedError as exc:
        db.session.rollback()
        form.group.errors = [exc.message[:1].upper() + exc.message[1:] + "."]
        return _render(account, status=422, mapping_form=form)
    db.session.commit()
    flash(f"Members of {form.group.data.strip()} get the role {form.role.data}.", "success")
    return redirect(url_for("scim_setup.page", slug=account.slug))


@bp.post("/groups/remove")
@role_required(ADMIN_ROLE)
def unmap_group(slug: str) -> Response:
    account = _managed_account(slug)
    form = UnmapGroupForm()
    if not form.validate_on_submit():
        abort(400, "The group to remove is missing.")
    if provisioning.unmap_group(account, form.group.data, actor=current_user.email):
        db.session.commit()
        flash(f"Members of {form.group.data} no longer get a role from it.", "success")
    return redirect(url_for("scim_setup.page", slug=account.slug))
