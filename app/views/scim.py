"""The SCIM 2.0 service provider under ``/scim/v2/``: thin, every answer ``application/scim+json``.

Authentication is the account's SCIM bearer token (``app.services.scim_tokens``); the token
decides the account, so one base URL serves every account. Every refusal is a SCIM error body with
its status and ``scimType``; no body, filter or path reaches a 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from app.extensions import csrf, db, login_manager
from app.services import provisioning as scim
from app.services.provisioning import ScimError
from app.services.scim_tokens import auth_failures_since, authenticate, record_auth_failure, scim_base_url
from app.sessions.web import bearer_token

log = logging.getLogger(__name__)

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
# No CSRF: an IdP calls this API with a bearer token in the Authorization header, which a browser
# never sends by itself, so a cross-site request cannot act with it.
csrf.exempt(bp)

SCIM_JSON = "application/scim+json"
#: The largest request body read (a group PATCH of a few thousand members fits).
MAX_BODY_BYTES = 1024 * 1024
#: Known endpoints, to tell a wrong method (405) from a wrong address (404).
ENDPOINTS = ("ServiceProviderConfig", "ResourceTypes", "Schemas", "Users", "Groups")


def scim_response(body: dict[str, Any] | None, status: int = 200, **headers: str) -> Response:
    text = "" if body is None else json.dumps(body, default=str)
    response = Response(text, status=status, mimetype=SCIM_JSON if body is not None else None)
    for name, value in headers.items():
        response.headers[name] = value
    return response


def error_response(err: ScimError) -> Response:
    response = scim_response(err.body(), err.status)
    if err.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="scim"'
    return response


@bp.before_request
def authenticate_token() -> Response | None:
    """The token's account serves the request; any other token, or none, is 401."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return error_response(ScimError(413, None, "the request body is too large"))
    token = authenticate(bearer_token(request))
    if token is None:
        return _refuse_token()
    g.scim_token = token
    # A SCIM request is never a signed-in person: tell flask-login so, or the audit trail's
    # ``current_user`` would look the SCIM token up as a session on every event.
    g._login_user = login_manager.anonymous_user()
    return None


def _refuse_token() -> Response:
    """401, audited; an address that keeps guessing gets 429 for a while (like password sign-ins)."""
    config = current_app.config
    window = config["PASSWORD_FAILURE_WINDOW_SECONDS"]
    if auth_failures_since(request.remote_addr, window) >= config["PASSWORD_MAX_FAILURES"] * 5:
        response = error_response(ScimError(429, None, "too many requests with a wrong token; wait and try again"))
        response.headers["Retry-After"] = str(window)
        return response
    record_auth_failure(has_header="Authorization" in request.headers)
    db.session.commit()
    return error_response(ScimError(401, None, "a valid SCIM bearer token is required"))


@bp.errorhandler(ScimError)
def handle_scim_error(err: ScimError) -> Response:
    db.session.rollback()
    return error_response(err)


@bp.errorhandler(IntegrityError)
def handle_conflict(_exc: IntegrityError) -> Response:
    """Two requests created the same user (or membership) at once: the second is told so."""
    db.session.rollback()
    return error_response(ScimError(409, "uniqueness", "this resource was just created by another request"))


@bp.errorhandler(HTTPException)
def handle_http_error(exc: HTTPException) -> Response:
    db.session.rollback()
    return error_response(ScimError(exc.code or 500, None, exc.description or exc.name))


@bp.errorhandler(Exception)
def handle_unexpected(exc: Exception) -> Response:
    log.exception("unhandled SCIM error on %s %s", request.method, request.path)
    db.session.rollback()
    return error_response(ScimError(500, None, "something went wrong on our side"))


def _body() -> Any:
    data = request.get_data(cache=False)
    if not data:
        raise ScimError(400, "invalidSyntax", "a JSON request body is required")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise ScimError(400, "invalidSyntax", "the request body is not valid JSON") from None


def _base_url() -> str:
    return scim_base_url()


def committed(view: Callable[..., Response]) -> Callable[..., Response]:
    """Commit what the service added when the view answers without an error."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        response = view(*args, **kwargs)
        db.session.commit()
        return response

    return wrapped


# --- discovery ---------------------------------------------------------------------------------


@bp.get("/ServiceProviderConfig")
def service_provider_config() -> Response:
    return scim_response(scim.service_provider_config(_base_url()))


@bp.get("/ResourceTypes")
def resource_types() -> Response:
    types = [scim.resource_type(name, _base_url()) for name in scim.RESOURCE_TYPES]
    return scim_response(scim.list_response(types, total=len(types), start_index=1))


@bp.get("/ResourceTypes/<name>")
def resource_type(name: str) -> Response:
    if name not in scim.RESOURCE_TYPES:
        raise ScimError(404, None, "no such resource type")
    return scim_response(scim.resource_type(name, _base_url()))


@bp.get("/Schemas")
def schemas() -> Response:
    found = [scim.schema(schema_id, _base_url()) for schema_id in scim.SCHEMA_IDS]
    return scim_response(scim.list_response(found, total=len(found), start_index=1))


@bp.get("/Schemas/<path:schema_id>")
def schema(schema_id: str) -> Response:
    if schema_id not in scim.SCHEMA_IDS:
        raise ScimError(404, None, "no such schema")
    return scim_response(scim.schema(schema_id, _base_url()))


# --- users -------------------------------------------------------------------------------------


def _answer(resource: Any, model: Any, status: int = 200) -> Response:
    """A resource as JSON, with the requested attributes; a 201 carries its Location."""
    body = scim.dump(resource, scim.response_parameters(model, request.args))
    return scim_response(body, status, Location=body["meta"]["location"]) if status == 201 else scim_response(body)


def _user_answer(user: Any, status: int = 200) -> Response:
    return _answer(scim.user_resource(user, _base_url()), scim.UserResource, status)


@bp.get("/Users")
def list_users() -> Response:
    query = scim.parse_list_query(scim.UserResource, request.args)
    return scim_response(scim.users_page(g.scim_token.account, query, _base_url()))


@bp.post("/Users/.search")
def search_users() -> Response:
    query = scim.parse_list_query(scim.UserResource, _search_args(_body()))
    return scim_response(scim.users_page(g.scim_token.account, query, _base_url()))


def _search_args(body: Any) -> dict[str, Any]:
    """A SearchRequest body as the query parameters it stands for (RFC 7644 3.4.3)."""
    if not isinstance(body, dict):
        raise ScimError(400, "invalidSyntax", "the request body must be a JSON object")
    args: dict[str, Any] = {}
    for key in ("filter", "startIndex", "count", "sortBy"):
        if body.get(key) is not None:
            args[key] = body[key]
    for key in ("attributes", "excludedAttributes"):
        value = body.get(key)
        if isinstance(value, list):
            args[key] = ",".join(str(item) for item in value)
        elif value is not None:
            args[key] = str(value)
    return args


@bp.post("/.search")
def search_all() -> Response:
    return scim_response(scim.search_all(g.scim_token.account, _search_args(_body()), _base_url()))


@bp.post("/Users")
@committed
def create_user() -> Response:
    user = scim.create_user(g.scim_token.account, _body(), g.scim_token)
    return _user_answer(user, 201)


@bp.get("/Users/<user_id>")
def get_user(user_id: str) -> Response:
    return _user_answer(scim.get_user(g.scim_token.account, user_id))


@bp.put("/Users/<user_id>")
@committed
def replace_user(user_id: str) -> Response:
    account = g.scim_token.account
    user = scim.replace_user(account, scim.get_user(account, user_id), _body(), g.scim_token)
    return _user_answer(user)


@bp.patch("/Users/<user_id>")
@committed
def patch_user(user_id: str) -> Response:
    account = g.scim_token.account
    user = scim.patch_user(account, scim.get_user(account, user_id), _body(), g.scim_token, _base_url())
    return _user_answer(user)


@bp.delete("/Users/<user_id>")
@committed
def delete_user(user_id: str) -> Response:
    account = g.scim_token.account
    scim.delete_user(account, scim.get_user(account, user_id), g.scim_token)
    return scim_response(None, 204)


# --- groups ------------------------------------------------------------------------------------


def _group_answer(group: Any, status: int = 200) -> Response:
    return _answer(scim.group_resource(group, _base_url()), scim.GroupResource, status)


@bp.get("/Groups")
def list_groups() -> Response:
    query = scim.parse_list_query(scim.GroupResource, request.args)
    return scim_response(scim.groups_page(g.scim_token.account, query, _base_url()))


@bp.post("/Groups/.search")
def search_groups() -> Response:
    query = scim.parse_list_query(scim.GroupResource, _search_args(_body()))
    return scim_response(scim.groups_page(g.scim_token.account, query, _base_url()))


@bp.post("/Groups")
@committed
def create_group() -> Response:
    return _group_answer(scim.create_group(g.scim_token.account, _body(), g.scim_token), 201)


@bp.get("/Groups/<group_id>")
def get_group(group_id: str) -> Response:
    return _group_answer(scim.get_group(g.scim_token.account, group_id))


@bp.put("/Groups/<group_id>")
@committed
def replace_group(group_id: str) -> Response:
    account = g.scim_token.account
    return _group_answer(scim.replace_group(account, scim.get_group(account, group_id), _body(), g.scim_token))


@bp.patch("/Groups/<group_id>")
@committed
def patch_group(group_id: str) -> Response:
    account = g.scim_token.account
    group = scim.patch_group(account, scim.get_group(account, group_id), _body(), g.scim_token, _base_url())
    return _group_answer(group)


@bp.delete("/Groups/<group_id>")
@committed
def delete_group(group_id: str) -> Response:
    account = g.scim_token.account
    scim.delete_group(account, scim.get_group(account, group_id), g.scim_token)
    return scim_response(None, 204)


@bp.route("/", defaults={"rest": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(rest: str) -> Response:
    """Any other address or method, as a SCIM error (not the portal's HTML page)."""
    first = rest.split("/", 1)[0]
    if first in ENDPOINTS and rest.count("/") <= 1:
        raise ScimError(405, None, f"{request.method} is not allowed at this address")
    if first == "Bulk":
        raise ScimError(501, None, "bulk operations are not supported (see ServiceProviderConfig)")
    raise ScimError(404, None, "not found")
