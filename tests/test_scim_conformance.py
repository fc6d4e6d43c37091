"""scim2-tester, the RFC 7643/7644 conformance checker, against our SCIM service provider.

It discovers the service (ServiceProviderConfig, ResourceTypes, Schemas), then creates, reads,
lists, searches, replaces, patches and deletes Users and Groups with random values. Every check
must pass: what the service does not support (bulk, sorting, ETags, password changes) is declared
in ServiceProviderConfig, and the checker does not test it.
"""

from __future__ import annotations

from collections.abc import Sequence

from scim2_client.engines.wsgi import WSGISCIMClient
from scim2_tester import Status, check_server

from tests.scim_helpers import USER_SCHEMA, new_token


class ExampleEmails(Sequence[str]):
    """Distinct email addresses, computed on demand: the checker fills ``userName`` from a
    field's examples when it has some (else a UUID, which our rules refuse: userName is the email)."""

    def __len__(self) -> int:
        return 10**9

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        return f"tester{index}@scim-tester.example"


def test_scim2_tester_passes_every_check(app, make_account):
    account = make_account()
    token = new_token(account, name="scim2-tester")
    client = WSGISCIMClient(app, base_url="https://sso.test/scim/v2", headers={"Authorization": f"Bearer {token}"})
    client.discover()
    user_model = client.provider.model_for(USER_SCHEMA)
    user_model.model_fields["user_name"].examples = ExampleEmails()

    results = check_server(client, raise_exceptions=False)

    failed = [f"{r.title} {r.resource_type}: {r.reason}" for r in results if r.status != Status.SUCCESS]
    assert failed == []
    titles = {r.title for r in results}
    # The checks that matter most ran (a discovery failure would skip them silently).
    assert {"object_creation", "object_replacement", "check_replace_attribute", "search_with_attributes"} <= titles
    assert len(results) >= 70


def test_service_provider_config_declares_what_is_not_supported(client, make_account):
    from tests.scim_helpers import Idp

    idp = Idp(client, new_token(make_account()))
    config = idp.get("/ServiceProviderConfig").json
    assert config["patch"]["supported"] is True
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["bulk"]["supported"] is False
    assert config["sort"]["supported"] is False
    assert config["etag"]["supported"] is False
    assert config["changePassword"]["supported"] is False
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
