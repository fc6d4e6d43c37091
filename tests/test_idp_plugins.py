"""Contract tests for the IdP plugins: every plugin's data renders, and the registry guards it."""

from __future__ import annotations

import re
from string import Formatter

import pytest

from app.errors import ERROR_CODES
from app.idp_plugins import PLUGINS, PluginRegistryError, check_registry, get_plugin
from app.idp_plugins.base import (
    NAMEID_EMAIL,
    SP_VALUE_KEYS,
    IdpPlugin,
    OptionHelp,
    SetupFile,
    SetupPath,
    SetupStep,
    SetupValue,
)
from app.idp_plugins.generic import GenericPlugin
from app.idp_plugins.render import (
    RenderedStep,
    find_path,
    render_hint,
    render_option_help,
    render_setup_file,
    render_walkthrough,
    steps_on_path,
)

pytestmark = pytest.mark.filterwarnings("error")


ACS_URL = "https://sso.example.com/saml/42/acs"

#: A full set of SP values, one per key, as the setup page would pass them.
SAMPLE_VALUES: dict[str, str] = {
    "acs_url": ACS_URL,
    "sp_entity_id": "https://sso.example.com/saml/42/metadata",
    "metadata_url": "https://sso.example.com/saml/42/metadata",
    "sls_url": "https://sso.example.com/saml/42/sls",
    "sp_certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    "sp_encryption_certificate": "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----",
    "start_url": "https://sso.example.com/login",
    "account_name": "Acme Corp",
    "admin_email": "admin@acme.example",
    "acs_url_regex": "^" + re.escape(ACS_URL) + "$",
}

PLUGIN_IDS = [plugin.key for plugin in PLUGINS]


def _placeholders(text: str) -> set[str]:
    """The ``{names}`` a plugin text uses."""
    return {name for _, name, _, _ in Formatter().parse(text) if name is not None}


def _texts(plugin: type[IdpPlugin]) -> list[str]:
    """Every text of a plugin that gets placeholders filled."""
    texts = [text for step in plugin.setup_steps for text in (step.title, step.body)]
    texts += [file.content for step in plugin.setup_steps for file in step.files]
    options = [plugin.single_logout_help.body, plugin.encryption_help.body, plugin.signed_requests_help.body]
    return texts + list(plugin.hints.values()) + options


def _make_plugin(name: str, **attributes: object) -> type[IdpPlugin]:
    """A throwaway, otherwise valid plugin class for registry tests."""
    defaults: dict[str, object] = {
        "key": "throwaway",
        "display_name": "Throwaway IdP",
        "setup_steps": (SetupStep(title="Do it", body="Paste {acs_url}."),),
        "single_logout_help": OptionHelp(offered=False, body="No Single Logout."),
        "encryption_help": OptionHelp(offered=False, body="No encryption."),
        "signed_requests_help": OptionHelp(offered=False, body="No request signing."),
    }
    return type(name, (IdpPlugin,), {**defaults, **attributes})


def test_sample_values_cover_every_key() -> None:
    assert set(SAMPLE_VALUES) == set(SP_VALUE_KEYS)


def test_registry_order_and_keys() -> None:
    assert PLUGIN_IDS == ["google", "entra", "okta", "onelogin", "salesforce", "generic"]
    assert set(check_registry()) == set(PLUGIN_IDS)
    assert get_plugin("no-such-plugin") is GenericPlugin


@pytest.mark.parametrize("plugin", PLUGINS, ids=PLUGIN_IDS)
class TestPluginContract:
    def test_data_is_complete(self, plugin: type[IdpPlugin]) -> None:
        assert plugin.display_name
        assert plugin.setup_steps
        assert plugin.email_attributes
        assert plugin.signed_element == "any"
        assert plugin.nameid_format.endswith((":emailAddress", ":unspecified"))
        assert plugin.metadata_source in ("url", "file")
        lifetime = plugin.certificate_lifetime_years
        assert lifetime is None or lifetime > 0

    def test_every_step_renders_completely(self, plugin: type[IdpPlugin]) -> None:
        steps = render_walkthrough(plugin, SAMPLE_VALUES)
        assert len(steps) == len(plugin.setup_steps)
        for step in steps:
            assert isinstance(step, RenderedStep)
            for text in (
                step.title,
                step.body,
                *(v.label for v in step.values),
                *(v.value for v in step.values),
                *(f.content for f in step.files),
            ):
                assert "{" not in text and "}" not in text, f"{plugin.key}: unfilled text {text!r}"
            assert all(value.value for value in step.values)

    def test_rendered_values_are_the_connection_values(self, plugin: type[IdpPlugin]) -> None:
        for step, rendered in zip(plugin.setup_steps, render_walkthrough(plugin, SAMPLE_VALUES), strict=True):
            for value, shown in zip(step.values, rendered.values, strict=True):
                expected = value.literal if value.literal is not None else SAMPLE_VALUES[value.key]
                assert shown.value == expected

    def test_every_setup_value_key_is_known(self, plugin: type[IdpPlugin]) -> None:
        for step in plugin.setup_steps:
            for value in step.values:
                assert value.label
                assert value.literal is not None or value.key in SP_VALUE_KEYS, (step.title, value.key)

    def test_every_placeholder_is_known(self, plugin: type[IdpPlugin]) -> None:
        for text in _texts(plugin):
            assert _placeholders(text) <= set(SP_VALUE_KEYS), text

    def test_hints_are_keyed_by_error_codes_and_render(self, plugin: type[IdpPlugin]) -> None:
        assert set(plugin.hints) <= set(ERROR_CODES)
        for code in plugin.hints:
            hint = render_hint(plugin, code, SAMPLE_VALUES)
            assert hint and "{" not in hint and "}" not in hint

    def test_every_error_code_renders_or_is_none(self, plugin: type[IdpPlugin]) -> None:
        for code in sorted(ERROR_CODES):
            hint = render_hint(plugin, code, SAMPLE_VALUES)
            assert hint is None or ("{" not in hint and "}" not in hint)

    def test_metadata_url_pattern_matches_source(self, plugin: type[IdpPlugin]) -> None:
        if plugin.metadata_source == "file":
            assert plugin.metadata_url_pattern is None
        elif plugin.metadata_url_pattern is not None:
            assert plugin.metadata_url_pattern.startswith("https://")


def test_check_registry_refuses_a_duplicate_key() -> None:
    twin = _make_plugin("TwinOfOkta", key="okta")
    with pytest.raises(PluginRegistryError, match="okta"):
        check_registry((*PLUGINS, twin))


def test_check_registry_refuses_a_hint_for_an_unknown_error_code() -> None:
    misspelt = _make_plugin("Misspelt", hints={"SAML_AUDIENCE_MISMACH": "Check the audience."})
    with pytest.raises(PluginRegistryError, match="SAML_AUDIENCE_MISMACH"):
        check_registry((misspelt,))


def test_check_registry_refuses_a_plugin_without_steps() -> None:
    stepless = _make_plugin("Stepless", setup_steps=())
    with pytest.raises(PluginRegistryError, match="no setup steps"):
        check_registry((stepless,))


def test_check_registry_refuses_transient_nameids() -> None:
    transient = _make_plugin("Transient", nameid_format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient")
    with pytest.raises(PluginRegistryError, match="transient"):
        check_registry((transient,))


def test_check_registry_refuses_an_unknown_value_key() -> None:
    step = SetupStep(title="Paste", body="Paste it.", values=(SetupValue("ACS", "acs_uri"),))
    typo = _make_plugin("Typo", setup_steps=(step,))
    with pytest.raises(PluginRegistryError, match="acs_uri"):
        check_registry((typo,))


_PATHS = (SetupPath("one", "One way", "The first."), SetupPath("two", "Another way", "The second."))


@pytest.mark.parametrize(
    ("steps", "paths", "message"),
    [
        ((SetupStep("Do", "It.", path="one"),), (), "unknown path"),
        ((SetupStep("Pick", "One.", offers_paths=True),), (), "exactly one step"),
        ((SetupStep("Do", "It."),), _PATHS, "exactly one step"),
        ((SetupStep("Pick", "One.", offers_paths=True), SetupStep("Do", "It.", path="three")), _PATHS, "unknown path"),
        (
            (SetupStep("Do", "It.", path="one"), SetupStep("Pick", "One.", offers_paths=True)),
            _PATHS,
            "before the choice",
        ),
        ((SetupStep("Pick", "One.", offers_paths=True),), (_PATHS[0], _PATHS[0]), "unique"),
        ((SetupStep("Pick", "One.", offers_paths=True),), (SetupPath("Bad Key", "x", "y"),), "dashes"),
        (
            (SetupStep("Save", "Them.", files=(SetupFile("a/x.xml", "<a/>"), SetupFile("b/x.xml", "<b/>"))),),
            (),
            "share a name",
        ),
    ],
)
def test_check_registry_refuses_bad_setup_paths_and_files(steps, paths, message) -> None:
    with pytest.raises(PluginRegistryError, match=message):
        check_registry((_make_plugin("Pathy", setup_steps=steps, setup_paths=paths),))


def test_steps_on_path_stops_at_the_choice_and_then_shows_one_path() -> None:
    steps = (
        SetupStep("First", "Shared."),
        SetupStep("Pick", "One.", offers_paths=True),
        SetupStep("One A", "A.", path="one"),
        SetupStep("Two A", "B {acs_url}.", path="two", files=(SetupFile("dir/f.xml", "<u>{acs_url}</u>"),)),
        SetupStep("Last", "Shared again."),
    )
    plugin = _make_plugin("Pathy", setup_steps=steps, setup_paths=_PATHS)
    assert check_registry((plugin,))
    rendered = render_walkthrough(plugin, SAMPLE_VALUES)
    titles = lambda key: [step.title for step in steps_on_path(rendered, find_path(plugin, key))]  # noqa: E731
    assert titles(None) == titles("nonsense") == ["First", "Pick"]
    assert titles("one") == ["First", "Pick", "One A", "Last"]
    assert titles("two") == ["First", "Pick", "Two A", "Last"]
    file = render_setup_file(plugin, SAMPLE_VALUES, "f.xml")
    assert file is not None and file.content == f"<u>{ACS_URL}</u>" and file.path == "dir/f.xml"
    assert file.media_type == "application/xml"
    assert render_setup_file(plugin, SAMPLE_VALUES, "dir/f.xml") is None


def test_check_registry_accepts_a_valid_throwaway_plugin() -> None:
    plugin = _make_plugin("Fine", nameid_format=NAMEID_EMAIL)
    assert check_registry((plugin,)) == {"throwaway": plugin}


def test_render_walkthrough_names_an_unknown_placeholder() -> None:
    plugin = _make_plugin("Typo", setup_steps=(SetupStep(title="Paste", body="Paste {acs_uri}."),))
    with pytest.raises(KeyError, match="acs_uri"):
        render_walkthrough(plugin, SAMPLE_VALUES)


def test_render_walkthrough_names_a_missing_value() -> None:
    values = {key: value for key, value in SAMPLE_VALUES.items() if key != "sp_entity_id"}
    with pytest.raises(KeyError, match="sp_entity_id"):
        render_walkthrough(get_plugin("okta"), values)


def test_render_derives_the_acs_url_regex() -> None:
    values = {key: value for key, value in SAMPLE_VALUES.items() if key != "acs_url_regex"}
    steps = render_walkthrough(get_plugin("onelogin"), values)
    validator = next(
        value.value for step in steps for value in step.values if value.label == "ACS (Consumer) URL Validator"
    )
    assert re.fullmatch(validator, ACS_URL)
    assert not re.fullmatch(validator, ACS_URL + "/evil")
    assert not re.fullmatch(validator, ACS_URL.replace("sso.example", "ssoXexample"))


def test_render_hint_falls_back_to_generic() -> None:
    plugin = _make_plugin("Hintless", hints={})
    assert render_hint(plugin, "SAML_DESTINATION_MISMATCH", SAMPLE_VALUES) == (
        f"Set the application's ACS URL to {ACS_URL} exactly."
    )
    assert render_hint(plugin, "NO_ROLE_FOR_APP", SAMPLE_VALUES) is None


def test_render_hint_prefers_the_plugin_hint() -> None:
    hint = render_hint(get_plugin("okta"), "SAML_AUDIENCE_MISMATCH", SAMPLE_VALUES)
    assert hint is not None and "Audience URI (SP Entity ID)" in hint
    assert SAMPLE_VALUES["sp_entity_id"] in hint


# Per-plugin facts the walkthroughs and the SAML core rely on.


def test_okta_steps_show_the_sp_values() -> None:
    labels = {value.label for step in get_plugin("okta").setup_steps for value in step.values}
    assert {"Single sign-on URL", "Audience URI (SP Entity ID)"} <= labels


def test_google_metadata_is_a_file() -> None:
    google = get_plugin("google")
    assert google.metadata_source == "file"
    assert google.metadata_url_pattern is None
    labels = {value.label for step in google.setup_steps for value in step.values}
    assert {"ACS URL", "Entity ID"} <= labels


def test_onelogin_weak_algorithm_hint_says_sha256() -> None:
    hint = render_hint(get_plugin("onelogin"), "SAML_WEAK_ALGORITHM", SAMPLE_VALUES)
    assert hint is not None and "SHA-256" in hint
    labels = [value.label for step in get_plugin("onelogin").setup_steps for value in step.values]
    for label in ("Audience (EntityID)", "Recipient", "ACS (Consumer) URL Validator", "ACS (Consumer) URL"):
        assert label in labels


def test_entra_audience_hint_explains_spn() -> None:
    entra = get_plugin("entra")
    hint = render_hint(entra, "SAML_AUDIENCE_MISMATCH", SAMPLE_VALUES)
    assert hint is not None and "spn:" in hint
    status = render_hint(entra, "SAML_STATUS_ERROR", SAMPLE_VALUES)
    assert status is not None
    for code in ("AADSTS700016", "AADSTS750054", "AADSTS75011"):
        assert code in status
    assert entra.email_attributes[0] == "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
    labels = {value.label for step in entra.setup_steps for value in step.values}
    assert {"Identifier (Entity ID)", "Reply URL (Assertion Consumer Service URL)"} <= labels


def test_salesforce_covers_both_paths_and_sends_the_email() -> None:
    salesforce = get_plugin("salesforce")
    text = " ".join(
        " ".join([step.title, step.body, *(value.value for value in step.values), *(f.content for f in step.files)])
        for step in render_walkthrough(salesforce, SAMPLE_VALUES)
    )
    assert "external client app" in text
    assert "connected app" in text
    assert "sf project deploy start" in text
    assert "<acsUrl>" + ACS_URL + "</acsUrl>" in text
    assert "<entityUrl>" + SAMPLE_VALUES["sp_entity_id"] + "</entityUrl>" in text
    assert "$User.Email" in text
    assert salesforce.email_attributes[0] == "email"
    for code in ("USER_NOT_FOUND", "SAML_NO_EMAIL"):
        hint = render_hint(salesforce, code, SAMPLE_VALUES)
        assert hint is not None and "$User.Email" in hint


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda plugin: plugin.key)
def test_every_plugin_explains_the_optional_features_in_its_own_words(plugin):
    """Single Logout, encryption and request signing: where the IdP sets each, or that it does not."""
    values = {key: f"<{key}>" for key in SP_VALUE_KEYS}
    options = render_option_help(plugin, values)
    assert [option.title for option in options] == ["Single Logout", "Encrypted assertions", "Signed sign-in requests"]
    assert options[0].offered == plugin.supports_slo
    for option in options:
        assert "{" not in option.body and option.body
        if option.offered and option.title == "Single Logout":
            assert any(value.value == "<sls_url>" for value in option.values) or "<sls_url>" in option.body
        if option.offered and option.title == "Encrypted assertions":
            assert any(value.value == "<sp_encryption_certificate>" for value in option.values)
    if plugin.key == "google":
        assert "no SAML Single Logout" in options[0].body


def test_check_registry_refuses_a_plugin_without_option_help() -> None:
    silent = _make_plugin("Silent", encryption_help=OptionHelp(offered=True, body=""))
    with pytest.raises(PluginRegistryError, match="encryption_help"):
        check_registry((silent,))
