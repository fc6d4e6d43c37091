"""SCIM 2.0 provisioning (RFC 7643, RFC 7644): the account's IdP keeps its users and groups here.

The wire format, the filter grammar and PATCH come from ``scim2-models`` (pydantic models of the
RFC resources, a parser of the filter and path grammar, and PATCH applied to a resource): this
module maps those resources onto our ``User`` and ``ScimGroup`` and keeps the product's rules:

- ``userName`` is the email, normalised and checked exactly as at sign-in; the user belongs to
  the token's account only, and an email held by another account is a neutral ``uniqueness``.
- ``active: false`` goes through ``deactivate_user`` (every session revoked in the same
  transaction), ``active: true`` through ``reactivate_user``, DELETE through ``delete_user``.
- Roles are the ``roles`` attribute's values (``admin``, ``agent``) plus the roles the account
  maps to the user's groups (``ScimGroupRole``); an app no longer opened loses its sessions.
- Every change is audited with the token's name as the actor.

A PATCH is applied by the library to the resource as we would return it, and the result is then
saved like a PUT: one path for every way an IdP says the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, cast

from pydantic import Field, ValidationError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ComplexAttribute,
    Context,
    Error,
    ETag,
    Filter,
    GroupMembership,
    Meta,
    Mutability,
    Patch,
    PatchOp,
    Reference,
    Required,
    Resource,
    ResourceType,
    ResponseParameters,
    SCIMException,
    ScimFilter,
    ScimPolicy,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)
from scim2_models.path import (
    CompareOperator,
    Comparison,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from scim2_models.urn import URN
from sqlalchemy import ColumnElement, Table, and_, false, func, not_, or_, select, true

from app import audit
from app.errors import CodedError
from app.extensions import db
from app.models import Account, ScimGroup, ScimGroupMember, ScimGroupRole, ScimToken, User
from app.models.user import ACTIVE, SOURCE_SCIM
from app.roles import CUSTOMER_ROLES, STAFF_ROLES
from app.services import users as user_service
from app.services.users import UserError, check_email, check_name, normalise_email
from app.timeutil import utcnow

log = logging.getLogger(__name__)

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
#: The most resources one list answer holds (declared as ``filter.maxResults``).
MAX_RESULTS = 1000
#: What ``count`` is when the client does not say.
DEFAULT_COUNT = 100
#: Group ids start with this, so that no group shares its id with a user: RFC 7643 3.1 wants an
#: id unique across every resource of the service provider (a root search lists both).
GROUP_ID_PREFIX = "g"
#: The longest filter read (a userName filter is under 400 characters).
MAX_FILTER_LENGTH = 2000

#: How far an IdP may depart from the RFC: attributes we do not keep are ignored (Entra sends the
#: enterprise extension, Okta its own profile attributes); Entra's ``remove`` with a ``value``
#: selects what to remove; a path filter naming no entry (Entra's ``emails[type eq "work"].value``
#: on a user without one) creates it.
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


# --- errors ------------------------------------------------------------------------------------


class ScimError(CodedError):
    """A SCIM refusal: an HTTP status and an RFC 7644 ``scimType`` beside our stable code."""

    def __init__(self, status: int, scim_type: str | None, message: str) -> None:
        super().__init__(f"SCIM_{(scim_type or str(status)).upper()}", message)
        self.status = status
        self.scim_type = scim_type

    @classmethod
    def from_library(cls, exc: SCIMException) -> ScimError:
        return cls(exc.status, exc.scim_type or None, exc.detail)

    @classmethod
    def from_validation(cls, exc: ValidationError) -> ScimError:
        """The first error pydantic found, in SCIM terms (the library keeps its ``scimType``)."""
        first = Error.from_validation_errors(exc)[0]
        return cls(first.status or 400, first.scim_type or "invalidValue", (first.detail or "invalid value")[:500])

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schemas": [str(Error.__schema__)], "status": str(self.status), "detail": self.message}
        if self.scim_type:
            data["scimType"] = self.scim_type
        return data


def not_found(kind: str, resource_id: str) -> ScimError:
    return ScimError(404, None, f"{kind} {resource_id[:64]} not found")


# --- the resources, as this service provider publishes them -------------------------------------


class Name(ComplexAttribute):
    """The name parts an IdP sends; our ``User.name`` is derived from them."""

    formatted: str | None = None
    family_name: str | None = None
    given_name: str | None = None


class EmailValue(ComplexAttribute):
    value: str | None = None
    type: str | None = Field(None, examples=["work", "home", "other"])
    primary: bool | None = None


class RoleValue(ComplexAttribute):
    #: The customer roles; published as the attribute's canonical values.
    value: str | None = Field(None, examples=sorted(CUSTOMER_ROLES))
    display: str | None = None
    type: str | None = None
    primary: bool | None = None


class UserResource(Resource[Any]):
    """The SCIM User this service keeps: the core schema's attributes the product uses."""

    __schema__ = URN(USER_SCHEMA)

    #: The email address, normalised as at sign-in; unique across the whole system.
    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    name: Name | None = None
    display_name: str | None = None
    active: bool | None = None
    emails: list[EmailValue] | None = None
    roles: list[RoleValue] | None = None
    groups: Annotated[list[GroupMembership] | None, Mutability.read_only] = None


#: A reference to a SCIM resource of type "User" (the name is SCIM's referenceType, not a class).
UserReference = Reference.__class_getitem__("User")


class Member(ComplexAttribute):
    """A group member: a user of the same account (nested groups are not supported)."""

    value: Annotated[str | None, Mutability.immutable] = None
    ref: Annotated[UserReference | None, Mutability.immutable] = Field(
        None, serialization_alias="$ref", validation_alias="$ref"
    )
    type: Annotated[str | None, Mutability.immutable] = Field(None, examples=["User"])


class GroupResource(Resource[Any]):
    """The SCIM Group this service keeps."""

    __schema__ = URN(GROUP_SCHEMA)

    display_name: Annotated[str | None, Required.true] = None
    members: list[Member] | None = None


def service_provider_config(base_url: str) -> dict[str, Any]:
    """What is supported: PATCH and filters; not bulk, sorting, ETags or password changes."""
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="Bearer token",
                description="A SCIM token created on the account's SCIM page or with `flask scim token create`.",
                primary=True,
            )
        ],
        meta=Meta(resource_type="ServiceProviderConfig", location=f"{base_url}/ServiceProviderConfig"),
    )
    return config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


RESOURCE_TYPES = {
    "User": (UserResource, "/Users", "User Account"),
    "Group": (GroupResource, "/Groups", "Group"),
}


def resource_type(name: str, base_url: str) -> dict[str, Any]:
    model, endpoint, description = RESOURCE_TYPES[name]
    return ResourceType(
        id=name,
        name=name,
        description=description,
        endpoint=endpoint,
        schema_=URN(str(model.__schema__)),
        meta=Meta(resource_type="ResourceType", location=f"{base_url}/ResourceTypes/{name}"),
    ).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def schema(schema_id: str, base_url: str) -> dict[str, Any]:
    model = {USER_SCHEMA: UserResource, GROUP_SCHEMA: GroupResource}[schema_id]
    described = model.to_schema()
    described.meta = Meta(resource_type="Schema", location=f"{base_url}/Schemas/{schema_id}")
    return described.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


SCHEMA_IDS = (USER_SCHEMA, GROUP_SCHEMA)


def list_response(resources: list[dict[str, Any]], *, total: int, start_index: int) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


# --- request parsing ---------------------------------------------------------------------------

R = TypeVar("R", bound=Resource[Any])


def _validate(model: type[R], payload: Any, context: Context) -> R:
    if not isinstance(payload, dict):
        raise ScimError(400, "invalidSyntax", "the request body must be a JSON object")
    try:
        with POLICY:
            return model.model_validate(payload, scim_ctx=context)
    except ValidationError as exc:
        raise ScimError.from_validation(exc) from None
    except SCIMException as exc:
        raise ScimError.from_library(exc) from None


@dataclass(frozen=True)
class ListQuery:
    """A list request's parameters, checked."""

    filter: ScimFilter[Any] | None
    start_index: int
    count: int
    response_parameters: ResponseParameters[Any] | None


def _positive_int(args: Mapping[str, Any], name: str, default: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ScimError(400, "invalidValue", f"{name} must be an integer") from None


def response_parameters(model: type[Resource[Any]], args: Mapping[str, Any]) -> ResponseParameters[Any] | None:
    """``attributes`` / ``excludedAttributes``, checked against ``model``."""
    attributes = args.get("attributes")
    excluded = args.get("excludedAttributes")
    if not attributes and not excluded:
        return None
    try:
        return ResponseParameters[model].model_validate(
            {"attributes": attributes or None, "excluded_attributes": excluded or None}
        )
    except ValidationError as exc:
        raise ScimError(
            400, "invalidPath", Error.from_validation_errors(exc)[0].detail or "invalid attribute"
        ) from None


def parse_list_query(model: type[Resource[Any]], args: Mapping[str, Any]) -> ListQuery:
    """Read ``filter``, ``startIndex``, ``count``, ``attributes``; refuse sorting (not supported)."""
    if args.get("sortBy"):
        raise ScimError(400, "invalidValue", "sorting is not supported (see ServiceProviderConfig)")
    text = args.get("filter")
    parsed: ScimFilter[Any] | None = None
    if text:
        if not isinstance(text, str) or len(text) > MAX_FILTER_LENGTH:
            raise ScimError(400, "invalidFilter", "the filter is too long")
        try:
            with POLICY:
                parsed = ScimFilter[model](text)
        except SCIMException as exc:
            raise ScimError(400, "invalidFilter", exc.detail) from None
        except (ValidationError, ValueError, TypeError) as exc:
            raise ScimError(400, "invalidFilter", f"invalid filter: {str(exc)[:200]}") from None
    start_index = max(1, _positive_int(args, "startIndex", 1))
    count = min(MAX_RESULTS, max(0, _positive_int(args, "count", DEFAULT_COUNT)))
    return ListQuery(parsed, start_index, count, response_parameters(model, args))


def dump(resource: Resource[Any], params: ResponseParameters[Any] | None = None) -> dict[str, Any]:
    return resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params)


# --- filters as SQL ----------------------------------------------------------------------------


class _Attribute:
    """A filterable attribute: one column, and how a compared value is stored in it."""

    def __init__(self, column: Any, prepare: Callable[[Any], Any] = lambda value: value) -> None:
        self.column = column
        self.prepare = prepare

    def compare(self, op: CompareOperator, raw: Any) -> ColumnElement[bool]:
        column, value = self.column, self.prepare(raw)
        if op == CompareOperator.eq:
            return column.is_(None) if value is None else column == value
        if op == CompareOperator.ne:
            return column.is_not(None) if value is None else or_(column != value, column.is_(None))
        if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
            if not isinstance(value, str):
                raise ScimError(400, "invalidFilter", f"{op.value} needs a string")
            method = {"co": column.contains, "sw": column.startswith, "ew": column.endswith}[op.value]
            return method(value, autoescape=True)
        if isinstance(value, bool) or value is None:
            raise ScimError(400, "invalidFilter", f"{op.value} cannot compare this value")
        return {"gt": column > value, "ge": column >= value, "lt": column < value, "le": column <= value}[op.value]

    def present(self) -> ColumnElement[bool]:
        column = self.column
        return and_(column.is_not(None), column != "") if column.type.python_type is str else column.is_not(None)


class _Active(_Attribute):
    """``active`` is ``status = 'active'`` in our table; it compares with true or false only."""

    def __init__(self) -> None:
        super().__init__(User.status)

    def compare(self, op: CompareOperator, raw: Any) -> ColumnElement[bool]:
        if op not in (CompareOperator.eq, CompareOperator.ne) or not isinstance(raw, bool):
            raise ScimError(400, "invalidFilter", "active compares with eq or ne and true or false")
        return (User.status == ACTIVE) if raw == (op == CompareOperator.eq) else (User.status != ACTIVE)

    def present(self) -> ColumnElement[bool]:
        return true()


class _AnyEntry(_Attribute):
    """``type`` and ``primary`` inside a value filter: the product keeps one email per user, which
    stands for every kind, so ``emails[type eq "work" and value eq "x"]`` selects by value alone."""

    def __init__(self) -> None:
        super().__init__(None)

    def compare(self, op: CompareOperator, raw: Any) -> ColumnElement[bool]:
        return false() if op == CompareOperator.ne else true()

    def present(self) -> ColumnElement[bool]:
        return true()


class _SqlFilter(FilterVisitor[ColumnElement[bool]]):
    """A parsed filter as a WHERE clause over one table; an attribute it cannot map is refused.

    ``attributes`` maps a lower-cased attribute path (``username``, ``emails.value``) to how it is
    stored.
    """

    def __init__(self, attributes: Mapping[str, _Attribute]) -> None:
        self.attributes = attributes

    def _attribute(self, attr: str, sub_attr: str | None, uri: str | None) -> _Attribute:
        key = attr.lower() + (f".{sub_attr.lower()}" if sub_attr else "")
        if uri and uri.lower() not in (USER_SCHEMA.lower(), GROUP_SCHEMA.lower()):
            raise ScimError(400, "invalidFilter", f"filtering on {uri}:{key} is not supported")
        if key not in self.attributes:
            raise ScimError(400, "invalidFilter", f"filtering on {key!r} is not supported")
        return self.attributes[key]

    def visit_comparison(self, node: Comparison) -> ColumnElement[bool]:
        path = node.attr_path
        return self._attribute(path.attr, path.sub_attr, path.uri).compare(node.op, node.value)

    def visit_present(self, node: Present) -> ColumnElement[bool]:
        path = node.attr_path
        return self._attribute(path.attr, path.sub_attr, path.uri).present()

    def visit_not(self, node: Not) -> ColumnElement[bool]:
        return not_(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement[bool]:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)

    def visit_value_path(self, node: ValuePath) -> ColumnElement[bool]:
        """``emails[type eq "work" and value eq "x"]``: each inner test on a sub-attribute."""
        prefix = node.attr_path.attr.lower() + "."
        inner = {key.removeprefix(prefix): item for key, item in self.attributes.items() if key.startswith(prefix)}
        if not inner:
            raise ScimError(400, "invalidFilter", f"filtering on {node.attr_path.attr!r} is not supported")
        return _SqlFilter(inner | {"type": _AnyEntry(), "primary": _AnyEntry()}).visit(node.val_filter)


def _email_value(value: Any) -> Any:
    return normalise_email(value) if isinstance(value, str) else value


def _id_value(value: Any) -> Any:
    """A SCIM id as our integer key; anything else matches no row."""
    text = str(value)
    return int(text) if text.isdigit() and len(text) <= 18 else -1


def _group_id_value(value: Any) -> Any:
    text = str(value)
    return _id_value(text.removeprefix(GROUP_ID_PREFIX)) if text.startswith(GROUP_ID_PREFIX) else -1


def _time_value(value: Any) -> Any:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ScimError(400, "invalidFilter", "a time must be an ISO 8601 dateTime") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo is not None else parsed


USER_ATTRIBUTES: dict[str, _Attribute] = {
    "id": _Attribute(User.id, _id_value),
    "username": _Attribute(User.email, _email_value),
    "emails": _Attribute(User.email, _email_value),
    "emails.value": _Attribute(User.email, _email_value),
    "externalid": _Attribute(User.external_id),
    "displayname": _Attribute(User.name),
    "name.formatted": _Attribute(User.name),
    "active": _Active(),
    "meta.created": _Attribute(User.created_at, _time_value),
    "meta.lastmodified": _Attribute(User.updated_at, _time_value),
}

GROUP_ATTRIBUTES: dict[str, _Attribute] = {
    "id": _Attribute(ScimGroup.id, _group_id_value),
    "displayname": _Attribute(ScimGroup.display_name),
    "externalid": _Attribute(ScimGroup.external_id),
    "meta.created": _Attribute(ScimGroup.created_at, _time_value),
    "meta.lastmodified": _Attribute(ScimGroup.updated_at, _time_value),
}


def _where(parsed: ScimFilter[Any] | None, attributes: Mapping[str, _Attribute]) -> ColumnElement[bool] | None:
    if parsed is None:
        return None
    return _SqlFilter(attributes).visit(parsed.ast)


# --- users: our row as a SCIM resource ---------------------------------------------------------


def _location(base_url: str, kind: str, resource_id: int | str) -> str:
    return f"{base_url}/{kind}/{resource_id}"


def _groups_of(user_ids: Iterable[int]) -> dict[int, list[ScimGroup]]:
    ids = list(user_ids)
    found: dict[int, list[ScimGroup]] = {user_id: [] for user_id in ids}
    if not ids:
        return found
    rows = db.session.execute(
        select(ScimGroupMember.user_id, ScimGroup)
        .join(ScimGroup, ScimGroup.id == ScimGroupMember.group_id)
        .where(ScimGroupMember.user_id.in_(ids))
        .order_by(ScimGroup.id)
    )
    for user_id, group in rows:
        found[user_id].append(group)
    return found


def _direct_roles(user: User) -> list[str]:
    """The roles the ``roles`` attribute shows: as the IdP set them, else the user's customer roles."""
    if user.scim_roles is not None:
        return [role for role in user.scim_roles.split(",") if role]
    return [role for role in user.role_list if role in CUSTOMER_ROLES]


def user_resource(user: User, base_url: str, groups: list[ScimGroup] | None = None) -> UserResource:
    """Our user as SCIM: the profile attributes as the IdP sent them, the rest from our columns."""
    # A user the IdP keeps shows exactly what it sent; another shows what our columns hold.
    managed = user.scim_profile is not None
    profile = user.scim_profile or {}
    if groups is None:
        groups = _groups_of([user.id])[user.id]
    stored_roles = profile.get("roles")
    roles = stored_roles if stored_roles is not None else [{"value": role} for role in _direct_roles(user)]
    # A PATCH that removed ``active`` left it unassigned: the user is deactivated, and shown so.
    active = None if profile.get(ACTIVE_UNASSIGNED) else user.status == ACTIVE
    payload: dict[str, Any] = {
        "schemas": [USER_SCHEMA],
        "id": str(user.id),
        "externalId": user.external_id,
        "userName": user.email,
        "name": profile.get("name") if managed else ({"formatted": user.name} if user.name else None),
        "displayName": profile.get("displayName") if managed else (user.name or None),
        "active": active,
        "emails": profile.get("emails") if managed else [{"value": user.email, "type": "work", "primary": True}],
        "roles": roles or None,
        "groups": [
            {
                "value": group_scim_id(group),
                "$ref": _location(base_url, "Groups", group_scim_id(group)),
                "display": group.display_name,
            }
            for group in groups
        ]
        or None,
        "meta": {
            "resourceType": "User",
            "created": user.created_at.isoformat() + "Z",
            "lastModified": (user.scim_updated_at or user.updated_at).isoformat() + "Z",
            "location": _location(base_url, "Users", user.id),
        },
    }
    with POLICY:
        return UserResource.model_validate(
            {key: value for key, value in payload.items() if value is not None}, scim_ctx=None
        )


def get_user(account: Account, user_id: str) -> User:
    """A user of ``account`` by SCIM id; another account's user is "not found", as is garbage."""
    if not user_id.isdigit() or len(user_id) > 18:
        raise not_found("User", user_id)
    user = db.session.get(User, int(user_id))
    if user is None or user.account_id != account.id:
        raise not_found("User", user_id)
    return user


def list_users(account: Account, query: ListQuery) -> tuple[int, list[User]]:
    """One page of the account's users matching the filter, by id, and how many match in all."""
    where = [User.account_id == account.id]
    clause = _where(query.filter, USER_ATTRIBUTES)
    if clause is not None:
        where.append(clause)
    total = db.session.scalar(select(func.count()).select_from(User).where(*where)) or 0
    if query.count == 0 or query.start_index > total:
        return total, []
    users = list(
        db.session.scalars(
            select(User).where(*where).order_by(User.id).offset(query.start_index - 1).limit(query.count)
        )
    )
    return total, users


def users_page(account: Account, query: ListQuery, base_url: str) -> dict[str, Any]:
    total, users = list_users(account, query)
    groups = _groups_of(user.id for user in users)
    resources = [dump(user_resource(user, base_url, groups[user.id]), query.response_parameters) for user in users]
    return list_response(resources, total=total, start_index=query.start_index)


def search_all(account: Account, args: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """POST ``/.search`` at the root: users, then groups, as one list (RFC 7644 3.4.3).

    The filter is read against each type; an attribute one type lacks matches none of it.
    """
    if args.get("sortBy"):
        raise ScimError(400, "invalidValue", "sorting is not supported (see ServiceProviderConfig)")
    queries: list[tuple[ListQuery | None, Any]] = []
    refusal: ScimError | None = None
    query: ListQuery | None
    for model, columns, kind in ((UserResource, USER_ATTRIBUTES, User), (GroupResource, GROUP_ATTRIBUTES, ScimGroup)):
        try:
            # attributes / excludedAttributes are read per type below (each names its own).
            query = parse_list_query(
                model, {key: args[key] for key in ("filter", "startIndex", "count") if key in args}
            )
            _where(query.filter, columns)
        except ScimError as exc:
            refusal = exc
            queries.append((None, kind))
            continue
        queries.append((query, kind))
    if all(query is None for query, _kind in queries) and refusal is not None:
        raise refusal
    start_index = max(1, _positive_int(args, "startIndex", 1))
    count = min(MAX_RESULTS, max(0, _positive_int(args, "count", DEFAULT_COUNT)))
    resources: list[dict[str, Any]] = []
    total = 0
    for query, kind in queries:
        if query is None:
            continue
        model = UserResource if kind is User else GroupResource
        params = response_parameters(model, _known_attributes(model, args))
        columns = USER_ATTRIBUTES if kind is User else GROUP_ATTRIBUTES
        where = [kind.account_id == account.id]
        clause = _where(query.filter, columns)
        if clause is not None:
            where.append(clause)
        matching = db.session.scalar(select(func.count()).select_from(kind).where(*where)) or 0
        offset = max(0, start_index - 1 - total)
        room = count - len(resources)
        if room > 0 and offset < matching:
            rows = db.session.scalars(select(kind).where(*where).order_by(kind.id).offset(offset).limit(room))
            for row in rows:
                resource = user_resource(row, base_url) if kind is User else group_resource(row, base_url)
                resources.append(dump(resource, params))
        total += matching
    return list_response(resources, total=total, start_index=start_index)


def _known_attributes(model: type[Resource[Any]], args: Mapping[str, Any]) -> dict[str, Any]:
    """``attributes`` / ``excludedAttributes`` keeping the names ``model`` declares (a root search
    names the attributes of several types)."""
    kept: dict[str, Any] = {}
    for key in ("attributes", "excludedAttributes"):
        names = [name.strip() for name in str(args.get(key) or "").split(",") if name.strip()]
        known = []
        for name in names:
            try:
                response_parameters(model, {key: name})
            except ScimError:
                continue
            known.append(name)
        if known:
            kept[key] = ",".join(known)
    return kept


# --- users: writing ----------------------------------------------------------------------------


def _actor(token: ScimToken) -> str:
    """The audit actor of everything ``token`` does: its name, marked as SCIM."""
    return f"scim:{token.name}"[:320]


def _name_of(resource: UserResource) -> str:
    """Our one display name: displayName, else the formatted name, else given + family."""
    parts = resource.name
    candidates = [
        resource.display_name,
        parts.formatted if parts else None,
        " ".join(part for part in ((parts.given_name, parts.family_name) if parts else ()) if part),
    ]
    text = next((candidate.strip() for candidate in candidates if candidate and candidate.strip()), "")
    try:
        return check_name(text)
    except UserError as exc:
        raise ScimError(400, "invalidValue", exc.message) from None


def _email_of(resource: UserResource) -> str:
    if not resource.user_name:
        raise ScimError(400, "invalidValue", "userName is required: it is the user's email address")
    try:
        return check_email(resource.user_name)
    except UserError:
        raise ScimError(400, "invalidValue", "userName must be the user's email address") from None


def _roles_of(resource: UserResource) -> list[str] | None:
    """The ``roles`` attribute's values, checked; None when the attribute is absent."""
    if resource.roles is None:
        return None
    roles: set[str] = set()
    for entry in resource.roles:
        value = (entry.value or "").strip().lower()
        if not value:
            continue
        if value not in CUSTOMER_ROLES:
            raise ScimError(
                400, "invalidValue", f"unknown role {value[:40]!r}; roles are {', '.join(sorted(CUSTOMER_ROLES))}"
            )
        roles.add(value)
    return sorted(roles)


#: Marks a user whose ``active`` a PATCH removed (RFC 7643 leaves its meaning to us: not active).
ACTIVE_UNASSIGNED = "activeUnassigned"


def _profile_of(resource: UserResource, *, active_unassigned: bool) -> dict[str, Any]:
    """The attributes returned as sent (stored as SCIM JSON)."""
    dumped = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    profile: dict[str, Any] = {key: dumped[key] for key in ("name", "displayName", "emails", "roles") if key in dumped}
    if active_unassigned:
        profile[ACTIVE_UNASSIGNED] = True
    return profile


def _check_email_free(email: str, account: Account, user: User | None) -> None:
    """An email held by anyone else is refused with the same neutral words, whatever the account."""
    holder = user_service.find_user_by_email(email)
    if holder is not None and (user is None or holder.id != user.id):
        if holder.account_id != account.id:
            log.info("scim: userName held by another account (account %s)", account.id)
        raise ScimError(409, "uniqueness", "this userName is not available")


def _mapped_roles(account_id: int, groups: Iterable[ScimGroup]) -> set[str]:
    names = {group.display_name.strip().casefold() for group in groups}
    if not names:
        return set()
    return set(
        db.session.scalars(
            select(ScimGroupRole.role).where(ScimGroupRole.account_id == account_id, ScimGroupRole.group_key.in_(names))
        )
    )


def refresh_roles(user: User, actor: str, groups: list[ScimGroup] | None = None) -> None:
    """Set the user's roles to the IdP's: the ``roles`` attribute plus their groups' mapped roles.

    Staff roles stay and apps the user no longer opens lose their sessions (``update_user`` sees to both).
    """
    direct = set(_direct_roles(user))
    if groups is None:
        groups = _groups_of([user.id])[user.id]
    wanted = sorted(direct | _mapped_roles(user.account_id, groups))
    # update_user ends the sessions of the apps a lost role opened (one revocation service).
    user_service.update_user(user, name=user.name, roles=wanted, actor=actor)


def _save_user(account: Account, user: User | None, resource: UserResource, token: ScimToken, *, action: str) -> User:
    """Write ``resource`` onto ``user`` (a new one when None): the one path of create, PUT and PATCH."""
    actor = _actor(token)
    email = _email_of(resource)
    name = _name_of(resource)
    roles = _roles_of(resource)
    external_id = (resource.external_id or None) and resource.external_id[:256]
    _check_email_free(email, account, user)
    created = user is None
    if user is None:
        try:
            user = user_service.create_user(account, email, roles=roles or [], name=name, actor=actor)
        except UserError:
            # Checked above; only a concurrent create of the same email gets here.
            raise ScimError(409, "uniqueness", "this userName is not available") from None
        # Created with its roles: a new user is in no group, so its roles are the IdP's own.
        user.scim_roles = ",".join(roles or [])
    before = {"email": user.email, "name": user.name, "external_id": user.external_id, "active": user.is_active}
    previous_direct = user.scim_roles
    if user.email != email:
        user.email = email
    if user.name != name:
        user_service.update_user(user, name=name, roles=[r for r in user.role_list if r in CUSTOMER_ROLES], actor=actor)
    user.external_id = external_id
    # Only a PATCH removing ``active`` leaves it unassigned (a create starts active, a PUT keeps it).
    active_unassigned = resource.active is None and not created
    user.scim_profile = _profile_of(resource, active_unassigned=active_unassigned)
    user.source = SOURCE_SCIM
    user.scim_updated_at = utcnow()
    new_direct = ",".join(roles or [])
    if previous_direct is None and not roles:
        user.scim_roles = ""
    elif new_direct != previous_direct:
        user.scim_roles = new_direct
        refresh_roles(user, actor)
    db.session.flush()
    if (resource.active is False or active_unassigned) and user.is_active:
        user_service.deactivate_user(user, actor=actor, reason="scim_deactivated")
    elif resource.active is True and not user.is_active:
        user_service.reactivate_user(user, actor=actor)
    after = {"email": user.email, "name": user.name, "external_id": user.external_id, "active": user.is_active}
    audit.record(
        action,
        account_id=account.id,
        subject_email=user.email,
        actor=actor,
        details={"user_id": user.id, "token_id": token.id, "created": created}
        | ({"before": before, "after": after} if not created and before != after else {}),
    )
    return user


def create_user(account: Account, payload: Any, token: ScimToken) -> User:
    """POST /Users: a new user of the token's account, active unless the IdP says otherwise."""
    resource = _validate(UserResource, payload, Context.RESOURCE_CREATION_REQUEST)
    return _save_user(account, None, resource, token, action="scim.user.create")


def replace_user(account: Account, user: User, payload: Any, token: ScimToken) -> User:
    """PUT /Users/{id}. A PUT without ``active`` keeps the user's state: deactivating someone is
    too consequential to infer from an attribute left out (Okta and Entra always send it)."""
    resource = _validate(UserResource, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    if resource.active is None:
        resource.active = user.is_active
    return _save_user(account, user, resource, token, action="scim.user.replace")


def _without_null_selectors(payload: dict[str, Any]) -> dict[str, Any]:
    """Drop the null keys of a remove's value entries: Entra sends ``{"$ref": null, "value": id}``
    to name a member by its value, and a null would otherwise select only members without one."""
    operations = payload.get("Operations")
    if not isinstance(operations, list):
        return payload
    cleaned = []
    for operation in operations:
        if (
            isinstance(operation, dict)
            and str(operation.get("op", "")).lower() == "remove"
            and isinstance(operation.get("value"), list)
        ):
            operation = operation | {
                "value": [
                    {key: item for key, item in entry.items() if item is not None} if isinstance(entry, dict) else entry
                    for entry in operation["value"]
                ]
            }
        cleaned.append(operation)
    return payload | {"Operations": cleaned}


def _apply_patch(model: type[R], resource: R, payload: Any) -> bool:
    if not isinstance(payload, dict):
        raise ScimError(400, "invalidSyntax", "the request body must be a JSON object")
    payload = _without_null_selectors(payload)
    try:
        with POLICY:
            patch = PatchOp[model].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
            return patch.patch(resource)
    except ValidationError as exc:
        raise ScimError.from_validation(exc) from None
    except SCIMException as exc:
        raise ScimError.from_library(exc) from None
    except (ValueError, TypeError) as exc:
        raise ScimError(400, "invalidValue", f"the patch cannot be applied: {str(exc)[:200]}") from None


def patch_user(account: Account, user: User, payload: Any, token: ScimToken, base_url: str) -> User:
    """PATCH /Users/{id}: the operations applied to the user as we show it, then saved like a PUT."""
    resource = user_resource(user, base_url)
    if not _apply_patch(UserResource, resource, payload):
        return user
    return _save_user(account, user, resource, token, action="scim.user.patch")


def delete_user(account: Account, user: User, token: ScimToken) -> None:
    """DELETE /Users/{id}, through the one delete hook (every session revoked first)."""
    actor = _actor(token)
    email = user.email
    user_service.delete_user(user, actor=actor)
    audit.record(
        "scim.user.delete", account_id=account.id, subject_email=email, actor=actor, details={"token_id": token.id}
    )


# --- groups ------------------------------------------------------------------------------------


def _member_ids(group_id: int) -> list[int]:
    return list(
        db.session.scalars(
            select(ScimGroupMember.user_id)
            .where(ScimGroupMember.group_id == group_id)
            .order_by(ScimGroupMember.user_id)
        )
    )


def group_resource(group: ScimGroup, base_url: str, member_ids: list[int] | None = None) -> GroupResource:
    if member_ids is None:
        member_ids = _member_ids(group.id)
    payload: dict[str, Any] = {
        "schemas": [GROUP_SCHEMA],
        "id": group_scim_id(group),
        "displayName": group.display_name,
        "externalId": group.external_id,
        "members": [
            {"value": str(user_id), "$ref": _location(base_url, "Users", user_id), "type": "User"}
            for user_id in member_ids
        ]
        or None,
        "meta": {
            "resourceType": "Group",
            "created": group.created_at.isoformat() + "Z",
            "lastModified": group.updated_at.isoformat() + "Z",
            "location": _location(base_url, "Groups", group_scim_id(group)),
        },
    }
    with POLICY:
        return GroupResource.model_validate({key: value for key, value in payload.items() if value is not None})


def group_scim_id(group: ScimGroup) -> str:
    return f"{GROUP_ID_PREFIX}{group.id}"


def get_group(account: Account, group_id: str) -> ScimGroup:
    number = group_id.removeprefix(GROUP_ID_PREFIX)
    if not group_id.startswith(GROUP_ID_PREFIX) or not number.isdigit() or len(number) > 18:
        raise not_found("Group", group_id)
    group = db.session.get(ScimGroup, int(number))
    if group is None or group.account_id != account.id:
        raise not_found("Group", group_id)
    return group


def groups_page(account: Account, query: ListQuery, base_url: str) -> dict[str, Any]:
    where = [ScimGroup.account_id == account.id]
    clause = _where(query.filter, GROUP_ATTRIBUTES)
    if clause is not None:
        where.append(clause)
    total = db.session.scalar(select(func.count()).select_from(ScimGroup).where(*where)) or 0
    groups: list[ScimGroup] = []
    if query.count and query.start_index <= total:
        groups = list(
            db.session.scalars(
                select(ScimGroup).where(*where).order_by(ScimGroup.id).offset(query.start_index - 1).limit(query.count)
            )
        )
    resources = [dump(group_resource(group, base_url), query.response_parameters) for group in groups]
    return list_response(resources, total=total, start_index=query.start_index)


def _member_users(account: Account, resource: GroupResource) -> set[int]:
    """The users the resource names, all of this account; anything else is ``invalidValue``."""
    ids: set[int] = set()
    for member in resource.members or []:
        value = (member.value or "").strip()
        if member.type and member.type.lower() != "user":
            raise ScimError(400, "invalidValue", "only users can be group members")
        if not value.isdigit() or len(value) > 18:
            raise ScimError(400, "invalidValue", f"no user {value[:64]!r} in this account")
        ids.add(int(value))
    if ids:
        found = set(db.session.scalars(select(User.id).where(User.id.in_(sorted(ids)), User.account_id == account.id)))
        missing = ids - found
        if missing:
            raise ScimError(400, "invalidValue", f"no user {min(missing)} in this account")
    return ids


def _display_name_of(resource: GroupResource) -> str:
    name = (resource.display_name or "").strip()
    if not name or len(name) > 256 or not name.isprintable():
        raise ScimError(400, "invalidValue", "displayName is required: printable, 256 characters at most")
    return name


def _save_group(
    account: Account, group: ScimGroup | None, resource: GroupResource, token: ScimToken, *, action: str
) -> ScimGroup:
    actor = _actor(token)
    name = _display_name_of(resource)
    wanted = _member_users(account, resource)
    if group is None:
        group = ScimGroup(account_id=account.id, display_name=name)
        db.session.add(group)
        db.session.flush()
        current: set[int] = set()
    else:
        current = set(_member_ids(group.id))
    renamed = group.display_name != name
    group.display_name = name
    group.external_id = (resource.external_id or None) and resource.external_id[:256]
    group.updated_at = utcnow()
    added, removed = wanted - current, current - wanted
    if added:
        db.session.execute(
            cast(Table, ScimGroupMember.__table__).insert(),
            [{"group_id": group.id, "user_id": user_id} for user_id in sorted(added)],
        )
    if removed:
        db.session.execute(
            cast(Table, ScimGroupMember.__table__)
            .delete()
            .where(ScimGroupMember.group_id == group.id, ScimGroupMember.user_id.in_(sorted(removed)))
        )
    db.session.flush()
    affected = (wanted | current) if renamed else (added | removed)
    _refresh_members(sorted(affected), actor)
    audit.record(
        action,
        account_id=account.id,
        actor=actor,
        details={
            "group_id": group.id,
            "display_name": name,
            "members_added": len(added),
            "members_removed": len(removed),
            "token_id": token.id,
        },
    )
    return group


def _refresh_members(user_ids: list[int], actor: str) -> None:
    for user_id in user_ids:
        user = db.session.get(User, user_id)
        if user is None:
            continue
        if user.scim_roles is None:
            user.scim_roles = ",".join(role for role in user.role_list if role in CUSTOMER_ROLES)
        refresh_roles(user, actor)


def create_group(account: Account, payload: Any, token: ScimToken) -> ScimGroup:
    resource = _validate(GroupResource, payload, Context.RESOURCE_CREATION_REQUEST)
    return _save_group(account, None, resource, token, action="scim.group.create")


def replace_group(account: Account, group: ScimGroup, payload: Any, token: ScimToken) -> ScimGroup:
    resource = _validate(GroupResource, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    return _save_group(account, group, resource, token, action="scim.group.replace")


def patch_group(account: Account, group: ScimGroup, payload: Any, token: ScimToken, base_url: str) -> ScimGroup:
    resource = group_resource(group, base_url)
    if not _apply_patch(GroupResource, resource, payload):
        return group
    return _save_group(account, group, resource, token, action="scim.group.patch")


def delete_group(account: Account, group: ScimGroup, token: ScimToken) -> None:
    actor = _actor(token)
    members = _member_ids(group.id)
    db.session.execute(cast(Table, ScimGroupMember.__table__).delete().where(ScimGroupMember.group_id == group.id))
    audit.record(
        "scim.group.delete",
        account_id=account.id,
        actor=actor,
        details={"group_id": group.id, "display_name": group.display_name, "token_id": token.id},
    )
    db.session.delete(group)
    db.session.flush()
    _refresh_members(members, actor)


# --- the group -> role mapping (the SCIM page and `flask scim groups`) --------------------------


def group_key(name: str) -> str:
    return name.strip().casefold()


def list_group_roles(account_id: int) -> list[ScimGroupRole]:
    return list(
        db.session.scalars(
            select(ScimGroupRole).where(ScimGroupRole.account_id == account_id).order_by(ScimGroupRole.group_key)
        )
    )


def _users_in_groups_named(account_id: int, key: str) -> list[int]:
    groups = db.session.scalars(select(ScimGroup).where(ScimGroup.account_id == account_id))
    ids = [group.id for group in groups if group_key(group.display_name) == key]
    if not ids:
        return []
    return sorted(set(db.session.scalars(select(ScimGroupMember.user_id).where(ScimGroupMember.group_id.in_(ids)))))


def map_group(account: Account, name: str, role: str, *, actor: str | None = None) -> ScimGroupRole:
    """Members of the IdP group ``name`` get ``role``; members already pushed get it now."""
    name = name.strip()
    role = role.strip().lower()
    if not name or len(name) > 256 or not name.isprintable():
        raise CodedError("GROUP_NAME_INVALID", "the group name must be printable, 256 characters at most")
    if role not in CUSTOMER_ROLES or role in STAFF_ROLES:
        raise CodedError("ROLE_UNKNOWN", f"unknown role {role!r} (allowed: {', '.join(sorted(CUSTOMER_ROLES))})")
    key = group_key(name)
    mapping = db.session.scalar(
        select(ScimGroupRole).where(ScimGroupRole.account_id == account.id, ScimGroupRole.group_key == key)
    )
    if mapping is None:
        mapping = ScimGroupRole(account_id=account.id, group_key=key, group_name=name, role=role)
        db.session.add(mapping)
    else:
        mapping.group_name, mapping.role = name, role
    db.session.flush()
    audit.record("scim.group_role.map", account_id=account.id, actor=actor, details={"group": name, "role": role})
    _refresh_members(_users_in_groups_named(account.id, key), actor or "cli")
    return mapping


def unmap_group(account: Account, name: str, *, actor: str | None = None) -> bool:
    """Remove the mapping of group ``name``; its members lose the role (and the apps' sessions)."""
    key = group_key(name)
    mapping = db.session.scalar(
        select(ScimGroupRole).where(ScimGroupRole.account_id == account.id, ScimGroupRole.group_key == key)
    )
    if mapping is None:
        return False
    audit.record(
        "scim.group_role.unmap",
        account_id=account.id,
        actor=actor,
        details={"group": mapping.group_name, "role": mapping.role},
    )
    db.session.delete(mapping)
    db.session.flush()
    _refresh_members(_users_in_groups_named(account.id, key), actor or "cli")
    return True
