"""Every value a person types into their IdP from a walkthrough has a Copy button: our URLs and
certificates, and the literals typed by hand (``user.email``, attribute names, commands). What stays
a bare ``<code>`` is a choice in the IdP's menus ("Signed", "Unspecified"), checked on every
provider's walkthrough and on each of Salesforce's setup paths."""

from __future__ import annotations

import re

import lxml.html
import pytest

from app.idp_plugins import PLUGINS
from app.models.idp_connection import DRAFT
from tests.helpers.web import log_in

#: Values the vendors' screens have the admin *type* (text fields, formulas, files, commands),
#: written down here independently of the plugins' own ``typed`` flags.
TYPED_BY_HAND = {
    "user.email",  # Okta attribute statement value
    "email",  # the attribute name: Okta, Google, OneLogin, Salesforce
    "$User.Email",  # Salesforce custom attribute formula
    "user.mail",  # Entra source attribute
    "{$user.email}",  # OneLogin SCIM JSON template
    "PersistentId",  # Salesforce external client app metadata
}

#: Looks typed whatever a plugin says: a URL, or an attribute expression like ``user.login``.
LOOKS_TYPED = re.compile(r"^(https?://\S+|\$?[A-Za-z]+\.[A-Za-z.]+|\{\$[^}]+\})$")

PAGES = [(plugin.key, path.key if path else None) for plugin in PLUGINS for path in (plugin.setup_paths or (None,))]


@pytest.mark.parametrize(("plugin_key", "path"), PAGES, ids=[f"{key}-{path or 'all'}" for key, path in PAGES])
def test_every_typed_value_has_a_copy_button(client, make_account, make_user, make_connection, plugin_key, path):
    account = make_account("acme", "Acme Corp")
    log_in(client, make_user(account, "admin@acme.example", "admin"))
    connection = make_connection(account, plugin_key, status=DRAFT)
    response = client.get(
        f"/setup/connections/{connection.id}/walkthrough", query_string={"path": path} if path else {}
    )
    page = lxml.html.fromstring(response.get_data(as_text=True))
    [walkthrough] = page.xpath('//ol[@data-testid="walkthrough"]')

    copied: list[str] = []
    for button in walkthrough.xpath(".//button[@data-copy]"):
        [field] = page.xpath(f'//*[@id="{button.get("data-copy")[1:]}"]')
        assert field.tag in ("input", "textarea")  # what copy.js selects and copies
        assert button.text_content().strip() == "Copy"
        copied.append(field.get("value") if field.tag == "input" else field.text_content())
    bare = [code.text_content() for code in walkthrough.xpath(".//code")]

    assert copied, "a walkthrough without a single Copy button"
    for text in bare:
        assert text not in TYPED_BY_HAND, f"{text!r} is typed by hand but has no Copy button"
        assert not LOOKS_TYPED.match(text), f"{text!r} looks typed but has no Copy button"
    # The plugin's own data agrees: each copyable value it shows is among the copied ones.
    plugin = next(plugin for plugin in PLUGINS if plugin.key == plugin_key)
    shown_steps = [step for step in plugin.setup_steps if step.path in (None, path)]
    for step in shown_steps:
        for value in step.values:
            if value.literal is not None:
                assert (value.literal in copied) == value.copyable, (step.title, value.label)
                assert (value.literal in bare) != value.copyable, (step.title, value.label)
    assert TYPED_BY_HAND & set(copied) or plugin_key == "generic"
